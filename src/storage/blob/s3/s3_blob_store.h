// S3 BlobStore: blobs and uploads as objects in one bucket of an S3-compatible object
// store (Ceph radosgw, AWS S3, MinIO), so that any number of Berth nodes share them.
//
// Layout (keys from storage/keys.h, under S3Config::prefix):
//   blobs/<alg>/<2 hex>/<hex>                one object per committed blob
//   uploads/<id>                             marker: the upload exists
//   data/<id>                                the multipart upload of its full parts;
//                                            the bytes of the blob it becomes
//   uploads/<id>/tail-<offset>-<nonce>       bytes after the last full part
// An upload streams into a multipart upload, one part each time a writer's buffer of
// `part_size` bytes fills; Close() stores the remainder as a small tail object, and the
// UploadCursor's state names the multipart upload, the parts and the tail, so that the
// next append (on any node) re-reads only the tail. CommitUpload completes the
// multipart upload with the tail as its last part, in place, and writes a pointer to
// it at the blob's key: no byte is copied. The protocol, and why, is in
// s3_blob_store.cc.
//
// Thread-safe: the store and its client may be used by any number of threads; readers
// and writers are not thread-safe (one user each). Every method blocks on network
// I/O: call them from the blocking pool, never from an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "storage/blob/blob_store.h"
#include "storage/blob/s3/s3_client.h"
#include "storage/blob/s3/s3_credentials.h"

namespace berth::storage {

// Observation points for tests and metrics. Each may be empty; each is called on the
// thread doing the work and must be thread-safe.
struct S3BlobStoreHooks {
  // A writer uploaded part `part_number` of `bytes` bytes.
  std::function<void(int part_number, uint64_t bytes)> on_part_uploaded;
  // AppendUpload read `bytes` bytes of an upload back from the store (its tail).
  std::function<void(uint64_t bytes)> on_upload_bytes_read;
  // A writer's part buffer now holds `capacity` bytes of memory.
  std::function<void(size_t capacity)> on_buffer_reserved;
  // Fault point, called as CommitUpload passes each step: "completed" (the multipart
  // upload is complete at data/<id>) and "copied" (the blob is in place, the
  // upload not yet removed). A non-OK status ends the commit there, as a crash would.
  std::function<Status(std::string_view step)> commit_fault;
};

struct S3BlobStoreOptions {
  // Endpoint, bucket, key prefix, retries. Required: endpoint and bucket.
  s3::S3Config config;
  // Required (see s3_credentials.h for where they come from).
  s3::S3Credentials credentials;
  // Size of every part of an upload but the last, and the most memory a writer holds.
  // 5 MiB (S3's minimum part) to 5 GiB. An upload holds at most 9,999 full parts plus
  // its tail, so this caps an upload at ~10,000 × part_size (78 GiB at the default).
  // An upload keeps the part size it started with. Default: 8 MiB.
  uint64_t part_size = 8 << 20;
  // DownloadUrl answers with a presigned GET, so clients fetch blobs straight from the
  // store. Default: false (bytes go through the node).
  bool redirect = false;
  S3BlobStoreHooks hooks;
  // Clock and sleep seams of the client (tests).
  s3::S3ClientHooks client_hooks;
};

// Checks the options and builds the client; does not connect (Check() does).
// kInvalidArgument for bad options.
Result<std::unique_ptr<BlobStore>> OpenS3BlobStore(const S3BlobStoreOptions& options);

}  // namespace berth::storage
