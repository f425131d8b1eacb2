// SQLite MetadataStore: WAL journal, synchronous=FULL, versioned schema migrations.
#pragma once

#include <filesystem>
#include <memory>

#include "storage/meta/metadata_store.h"

namespace berth::storage {

struct SqliteOptions {
  // WAL size (pages) at which a background thread checkpoints it into the database;
  // at 8 times this the writer completes the checkpoint itself. SQLite's default.
  int checkpoint_frames = 1000;
};

// Opens (creating and migrating as needed) the database at `path`.
Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& path,
                                                               const SqliteOptions& options = {});

}  // namespace berth::storage
