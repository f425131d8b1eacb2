#include "cli/storage_setup.h"

#include "storage/blob/fs/fs_blob_store.h"
#include "storage/blob/s3/s3_blob_store.h"
#include "storage/blob/s3/s3_client.h"
#include "storage/blob/s3/s3_credentials.h"
#include "storage/meta/postgres/postgres_metadata_store.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::cli {
namespace {

Status Named(std::string_view what, const Status& st) {
  return Status(st.code(), std::string(what) + ": " + st.message(), st.detail());
}

Result<std::unique_ptr<storage::BlobStore>> OpenS3(const config::S3StorageConfig& c) {
  storage::S3BlobStoreOptions opts;
  opts.config.endpoint = c.endpoint;
  opts.config.bucket = c.bucket;
  opts.config.region = c.region;
  opts.config.prefix = c.prefix;
  opts.config.path_style = c.path_style;
  opts.part_size = c.part_size;
  opts.redirect = c.redirect;
  auto creds = storage::s3::LoadS3Credentials(storage::s3::ProcessEnvironment());
  if (!creds.ok()) return creds.status();
  opts.credentials = *creds;

  if (c.create_bucket) {
    auto client = storage::s3::S3Client::Create(opts.config, opts.credentials);
    if (!client.ok()) return client.status();
    if (Status head = (*client)->HeadBucket(); !head.ok()) {
      // Only a missing bucket is ours to fix; refused credentials or an endpoint that
      // does not answer are reported as they are.
      if (!head.Is(Code::kFailedPrecondition)) return head;
      if (Status made = (*client)->CreateBucket(); !made.ok()) {
        return Status(made.code(), "cannot create bucket " + c.bucket + " at " + c.endpoint +
                                       " (storage.blobs.s3.create_bucket): " + made.message());
      }
    }
  }
  auto store = storage::OpenS3BlobStore(opts);
  if (!store.ok()) return store.status();
  if (Status st = (*store)->Check(); !st.ok()) {
    if (st.Is(Code::kFailedPrecondition) && !c.create_bucket) {
      return Status(st.code(), st.message() +
                                   " (create it, or set storage.blobs.s3.create_bucket: true)");
    }
    return st;
  }
  return store;
}

}  // namespace

Result<Stores> OpenStores(const config::Config& cfg, const std::filesystem::path& data_dir) {
  Stores out;
  const auto& blobs = cfg.storage.blobs;
  if (blobs.type == "s3") {
    auto store = OpenS3(blobs.s3);
    if (!store.ok()) return Named("storage.blobs (s3)", store.status());
    out.blobs = std::move(*store);
    out.description = "s3 " + blobs.s3.endpoint + " bucket " + blobs.s3.bucket +
                      (blobs.s3.prefix.empty() ? "" : " prefix " + blobs.s3.prefix);
  } else {
    auto store = storage::OpenFsBlobStore(data_dir, {.direct_io = cfg.uploads.direct_io});
    if (!store.ok()) return Named("storage.blobs (filesystem)", store.status());
    out.blobs = std::move(*store);
    out.description = "filesystem " + data_dir.string();
  }
  std::string meta_description;
  auto meta = OpenMetadataStore(cfg, data_dir, &meta_description);
  if (!meta.ok()) return meta.status();
  out.meta = std::move(*meta);
  out.description += " + " + meta_description;
  return out;
}

Result<std::unique_ptr<storage::MetadataStore>> OpenMetadataStore(
    const config::Config& cfg, const std::filesystem::path& data_dir, std::string* description) {
  const auto& meta = cfg.storage.metadata;
  if (meta.type == "postgres") {
    storage::PostgresOptions opts;
    opts.url = meta.postgres.url;
    opts.max_connections = static_cast<size_t>(meta.postgres.max_connections);
    auto store = storage::OpenPostgresMetadataStore(opts);
    if (!store.ok()) return Named("storage.metadata (postgres)", store.status());
    if (description) *description = "postgres";
    return store;
  }
  auto path = data_dir / "meta.db";
  auto store = storage::OpenSqliteMetadataStore(path);
  if (!store.ok()) return Named("storage.metadata (sqlite)", store.status());
  if (description) *description = "sqlite " + path.string();
  return store;
}

}  // namespace berth::cli
