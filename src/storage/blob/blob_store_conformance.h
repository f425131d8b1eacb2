// The BlobStore conformance suite: the behaviour every backend (fs, s3, memory, ...)
// must show. A backend's test file instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Fs, BlobStoreConformance,
//                            ::testing::Values(BlobStoreBackend{
//                                "fs", [](const std::filesystem::path& scratch) {
//                                  return OpenFsBlobStore(scratch);
//                                }}),
//                            BlobStoreBackendName);
//
// The tests themselves live in blob_store_conformance.cc.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "storage/blob/blob_store.h"

namespace berth::storage::testing {

struct BlobStoreBackend {
  std::string name;  // a valid GoogleTest name: letters, digits, '_'
  // Opens a fresh, empty store. `scratch` is a new empty directory owned by the test
  // (removed after it) that a local backend may use as its root; a remote backend
  // should use a fresh prefix or bucket derived from it instead. Called again with the
  // same `scratch`, it must open another instance over the same storage: that is how
  // the suite plays a second node continuing an upload.
  std::function<Result<std::unique_ptr<BlobStore>>(const std::filesystem::path& scratch)> open;
  // Removes what `open` created outside `scratch` (a bucket); may be empty.
  std::function<void(const std::filesystem::path& scratch)> cleanup;
  // Why the backend cannot run here (a remote service that is not configured), or ""
  // when it can; the suite's tests are then skipped with that message. May be empty.
  std::function<std::string()> skip_reason;
};

inline void PrintTo(const BlobStoreBackend& backend, std::ostream* os) { *os << backend.name; }

inline std::string BlobStoreBackendName(const ::testing::TestParamInfo<BlobStoreBackend>& info) {
  return info.param.name;
}

class BlobStoreConformance : public ::testing::TestWithParam<BlobStoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  BlobStore& store() { return *store_; }
  // Another instance over the same storage (another node). Opened on first use, so
  // call it once before starting threads that use it.
  BlobStore& other_node();
  const std::filesystem::path& scratch() const { return scratch_; }

 private:
  std::filesystem::path scratch_;
  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<BlobStore> other_;
};

}  // namespace berth::storage::testing
