// SQLite MetadataStore: WAL journal, synchronous=FULL, versioned schema migrations.
#pragma once

#include <filesystem>
#include <memory>

#include "storage/meta/metadata_store.h"

namespace berth::storage {

// Opens (creating and migrating as needed) the database at `path`.
Result<std::unique_ptr<MetadataStore>> OpenSqliteMetadataStore(const std::filesystem::path& path);

}  // namespace berth::storage
