#include "storage/blob/fs/fs_blob_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "oci/digest.h"
#include "storage/blob/blob_store_conformance.h"
#include "storage/keys.h"

namespace berth::storage {
namespace {

namespace fs = std::filesystem;
using testing::BlobStoreBackend;
using testing::BlobStoreBackendName;
using testing::BlobStoreConformance;

INSTANTIATE_TEST_SUITE_P(
    Fs, BlobStoreConformance,
    ::testing::Values(BlobStoreBackend{
        "fs", [](const fs::path& scratch) { return OpenFsBlobStore(scratch / "data"); }}),
    BlobStoreBackendName);

class FsBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth-fsblob-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void Reopen() {
    store_.reset();
    auto store = OpenFsBlobStore(root_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  Status Append(std::string_view id, uint64_t offset, std::string_view data) {
    BERTH_ASSIGN_OR_RETURN(auto writer, store_->AppendUpload(id, offset));
    BERTH_RETURN_IF_ERROR(writer->Write(std::span<const char>(data.data(), data.size())));
    return writer->Close();
  }

  // Regular files anywhere under root/blobs.
  std::vector<fs::path> BlobFiles() const {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(root_ / "blobs")) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    return files;
  }

  fs::path root_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(FsBlobStoreTest, OpenCreatesLayout) {
  EXPECT_TRUE(fs::is_directory(root_ / "blobs"));
  EXPECT_TRUE(fs::is_directory(root_ / "uploads"));
}

TEST_F(FsBlobStoreTest, OpenFailsWhenRootIsAFile) {
  fs::path file = root_ / "plain-file";
  {
    FILE* f = fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
  }
  auto store = OpenFsBlobStore(file);
  EXPECT_FALSE(store.ok());
}

TEST_F(FsBlobStoreTest, NothingUnderBlobsBeforeCommit) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "layer bytes").ok());
  EXPECT_TRUE(BlobFiles().empty());
  EXPECT_TRUE(fs::is_regular_file(root_ / UploadKey(id)));
  EXPECT_EQ(fs::file_size(root_ / UploadKey(id)), 11u);

  oci::Digest digest = oci::Digest::Of("layer bytes");
  ASSERT_TRUE(store_->CommitUpload(id, digest).ok());
  std::vector<fs::path> files = BlobFiles();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], root_ / BlobKey(digest));
  EXPECT_FALSE(fs::exists(root_ / UploadKey(id)));
  // blobs/sha256/<2 hex>/<hex>
  EXPECT_EQ(files[0].parent_path().filename().string(), std::string(digest.hex().substr(0, 2)));
}

TEST_F(FsBlobStoreTest, CommittedBlobIsReadOnly) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "x").ok());
  oci::Digest digest = oci::Digest::Of("x");
  ASSERT_TRUE(store_->CommitUpload(id, digest).ok());
  struct stat st;
  ASSERT_EQ(::stat((root_ / BlobKey(digest)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);
}

TEST_F(FsBlobStoreTest, ReaderExposesFdForSendfile) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "sendfile me").ok());
  oci::Digest digest = oci::Digest::Of("sendfile me");
  ASSERT_TRUE(store_->CommitUpload(id, digest).ok());
  auto reader = store_->Open(digest);
  ASSERT_TRUE(reader.ok());
  int fd = (*reader)->native_fd();
  ASSERT_GE(fd, 0);
  char buf[32];
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 0), 11);
  EXPECT_EQ(std::string(buf, 11), "sendfile me");
}

TEST_F(FsBlobStoreTest, OpenReaderSurvivesDelete) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "still here").ok());
  oci::Digest digest = oci::Digest::Of("still here");
  ASSERT_TRUE(store_->CommitUpload(id, digest).ok());
  auto reader = store_->Open(digest);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Delete(digest).ok());
  char buf[16];
  auto n = (*reader)->ReadAt(0, std::span<char>(buf, sizeof(buf)));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "still here");
}

TEST_F(FsBlobStoreTest, SecondWriterOnTheSameUploadIsRefused) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  auto first = store_->AppendUpload(id, 0);
  ASSERT_TRUE(first.ok());
  auto second = store_->AppendUpload(id, 0);
  EXPECT_EQ(second.status().code(), Code::kRangeInvalid);
  // Nor can the upload be committed while it is being written.
  EXPECT_EQ(store_->CommitUpload(id, oci::Digest::Of("")).code(), Code::kRangeInvalid);
  ASSERT_TRUE((*first)->Write(std::span<const char>("abc", 3)).ok());
  ASSERT_TRUE((*first)->Close().ok());
  EXPECT_FALSE((*first)->Write(std::span<const char>("d", 1)).ok());  // closed
  EXPECT_TRUE(store_->AppendUpload(id, 3).ok());
}

TEST_F(FsBlobStoreTest, WriterDestroyedWithoutCloseReleasesTheUpload) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  {
    auto writer = store_->AppendUpload(id, 0);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(std::span<const char>("ab", 2)).ok());
  }
  auto writer = store_->AppendUpload(id, 2);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
}

TEST_F(FsBlobStoreTest, UploadIdsCannotEscapeTheRoot) {
  fs::create_directories(root_ / "outside");
  EXPECT_FALSE(store_->CreateUpload("../outside/x").ok());
  EXPECT_FALSE(store_->CreateUpload("../../../../tmp/evil").ok());
  EXPECT_TRUE(fs::is_empty(root_ / "outside"));
  EXPECT_TRUE(fs::is_empty(root_ / "uploads"));
}

TEST_F(FsBlobStoreTest, DataSurvivesReopen) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "durable").ok());
  oci::Digest digest = oci::Digest::Of("durable");
  ASSERT_TRUE(store_->CommitUpload(id, digest).ok());
  std::string pending = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(pending).ok());
  ASSERT_TRUE(Append(pending, 0, "half").ok());

  Reopen();
  auto stat = store_->Stat(digest);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, 7u);
  auto size = store_->UploadSize(pending);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 4u);
  EXPECT_TRUE(Append(pending, 4, "-done").ok());
}

TEST_F(FsBlobStoreTest, DeletedUploadFileIsUploadUnknown) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  fs::remove(root_ / UploadKey(id));
  EXPECT_EQ(store_->AppendUpload(id, 0).status().code(), Code::kUploadUnknown);
}

}  // namespace
}  // namespace berth::storage
