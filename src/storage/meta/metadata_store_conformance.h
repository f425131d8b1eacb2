// The MetadataStore conformance suite: the behaviour every backend (sqlite, postgres,
// ...) must show. A backend's test file instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreConformance,
//                            ::testing::Values(MetadataStoreBackend{
//                                "sqlite", [](const std::filesystem::path& scratch) {
//                                  return OpenSqliteMetadataStore(scratch / "meta.db");
//                                }}),
//                            MetadataStoreBackendName);
//
// The tests themselves live in metadata_store_conformance.cc.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "storage/meta/metadata_store.h"

namespace berth::storage::testing {

struct MetadataStoreBackend {
  std::string name;  // a valid GoogleTest name: letters, digits, '_'
  // Opens a fresh, empty store. `scratch` is a new empty directory owned by the test
  // (removed after it) that a local backend may put its files in; a server backend
  // should use a fresh database or schema instead.
  std::function<Result<std::unique_ptr<MetadataStore>>(const std::filesystem::path& scratch)> open;
};

inline void PrintTo(const MetadataStoreBackend& backend, std::ostream* os) { *os << backend.name; }

inline std::string MetadataStoreBackendName(
    const ::testing::TestParamInfo<MetadataStoreBackend>& info) {
  return info.param.name;
}

class MetadataStoreConformance : public ::testing::TestWithParam<MetadataStoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  MetadataStore& store() { return *store_; }
  const std::filesystem::path& scratch() const { return scratch_; }

 private:
  std::filesystem::path scratch_;
  std::unique_ptr<MetadataStore> store_;
};

}  // namespace berth::storage::testing
