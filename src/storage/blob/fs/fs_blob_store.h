// Local-filesystem BlobStore: keys become paths under a root directory.
// Commit = fsync(file) + rename into place + fsync(directory).
#pragma once

#include <filesystem>
#include <memory>

#include "storage/blob/blob_store.h"

namespace berth::storage {

// Creates the directory layout under `root` if needed.
Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::filesystem::path& root);

}  // namespace berth::storage
