// Local-filesystem BlobStore: keys become paths under a root directory.
// Commit = fsync(file) + rename into place + fsync(directory).
#pragma once

#include <filesystem>
#include <memory>

#include "storage/blob/blob_store.h"

namespace berth::storage {

struct FsBlobStoreOptions {
  // Write uploads with O_DIRECT (aligned blocks straight to disk, no page cache) where
  // the file system allows it; falls back to buffered writes where it does not.
  bool direct_io = true;
};

// Creates the directory layout under `root` if needed.
Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::filesystem::path& root,
                                                   FsBlobStoreOptions options = {});

}  // namespace berth::storage
