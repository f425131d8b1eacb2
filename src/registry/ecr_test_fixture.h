// Test-only: a Registry over fresh local stores, with helpers to push content, for
// the tests of the ECR rules (repositories_test.cc, images_test.cc).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "registry/registry.h"
#include "storage/blob/fs/fs_blob_store.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::registry::testing {

inline constexpr std::string_view kAccount = "111111111111";

class EcrRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("berth-ecr-registry-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    blobs_ = std::move(storage::OpenFsBlobStore(dir_)).value();
    meta_ = std::move(storage::OpenSqliteMetadataStore(dir_ / "meta.db")).value();
    Reopen(true);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Reopen(bool create_on_push) {
    Options o;
    o.create_on_push = create_on_push;
    o.account_id = std::string(kAccount);
    reg_ = std::make_unique<Registry>(*blobs_, *meta_, clock_, o);
  }

  storage::RepositoryRecord Repo(std::string name, storage::TagMutabilitySetting mutability = {}) {
    storage::RepositoryRecord r;
    r.name = std::move(name);
    r.tag_mutability = std::move(mutability);
    auto created = reg_->CreateRepository(r);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : r;
  }

  oci::Digest PushBlob(const std::string& repo, const std::string& data) {
    auto up = reg_->StartUpload(repo);
    EXPECT_TRUE(up.ok()) << up.status().ToString();
    auto app = reg_->BeginAppend(repo, up->id, 0);
    EXPECT_TRUE(app.ok()) << app.status().ToString();
    EXPECT_TRUE((*app)->Write(data).ok());
    EXPECT_TRUE((*app)->Finish().ok());
    oci::Digest d = oci::Digest::Of(data);
    EXPECT_TRUE(reg_->CompleteUpload(repo, up->id, d).ok());
    return d;
  }

  // An OCI image manifest with one config and the given layers (sizes as declared).
  std::string ImageManifest(const std::string& repo, const std::string& name,
                            std::vector<int64_t> layer_sizes = {5}) {
    oci::Digest config = PushBlob(repo, "config of " + name);
    std::string m =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
        R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
        config.str() + R"(","size":2},"layers":[)";
    for (size_t i = 0; i < layer_sizes.size(); ++i) {
      oci::Digest layer = PushBlob(repo, "layer " + std::to_string(i) + " of " + name);
      if (i > 0) m += ",";
      m += R"({"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
           layer.str() + R"(","size":)" + std::to_string(layer_sizes[i]) + "}";
    }
    return m + "]}";
  }

  std::string IndexOf(const std::vector<oci::Digest>& children) {
    std::string m =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
    for (size_t i = 0; i < children.size(); ++i) {
      if (i > 0) m += ",";
      m += R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
           children[i].str() + R"(","size":100,"platform":{"os":"linux","architecture":"arch)" +
           std::to_string(i) + R"("}})";
    }
    return m + "]}";
  }

  // /v2 push of a manifest under a tag (or by digest when `tag` is empty).
  Result<PutManifestResult> PushV2(const std::string& repo, const std::string& tag,
                                   std::string manifest) {
    oci::Reference ref =
        tag.empty() ? oci::Reference{oci::Digest::Of(manifest)} : oci::Reference{tag};
    return reg_->PutManifest(repo, ref, "", std::move(manifest));
  }

  std::filesystem::path dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::MetadataStore> meta_;
  std::unique_ptr<Registry> reg_;
};

}  // namespace berth::registry::testing
