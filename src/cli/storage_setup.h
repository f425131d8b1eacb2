// Opens the blob store and the metadata store that `berth serve` and `berth admin` use,
// as configured under `storage:` (config/config.h): files + SQLite in data_dir by
// default, an S3 bucket and/or a PostgreSQL database for several nodes.
//
// Every failure names the backend and what is wrong, so that a node that cannot start
// says why: an endpoint that does not answer, credentials the bucket refuses, a missing
// bucket (created instead when storage.blobs.s3.create_bucket is true), a database
// that is unreachable or whose schema is newer than this binary.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "base/status.h"
#include "config/config.h"
#include "storage/blob/blob_store.h"
#include "storage/meta/metadata_store.h"

namespace berth::cli {

struct Stores {
  std::unique_ptr<storage::BlobStore> blobs;
  std::unique_ptr<storage::MetadataStore> meta;
  // "filesystem /var/lib/berth + sqlite /var/lib/berth/meta.db", for the log.
  std::string description;
};

// Opens both stores and checks that each answers. `data_dir` must exist.
Result<Stores> OpenStores(const config::Config& cfg, const std::filesystem::path& data_dir);

// Opens only the metadata store (what `berth admin` edits). `description` as above.
Result<std::unique_ptr<storage::MetadataStore>> OpenMetadataStore(
    const config::Config& cfg, const std::filesystem::path& data_dir, std::string* description);

}  // namespace berth::cli
