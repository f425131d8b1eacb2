#include "storage/blob/fs/fs_blob_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
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
    ::testing::Values(BlobStoreBackend{"fs",
                                       [](const fs::path& scratch) {
                                         return OpenFsBlobStore(scratch / "data");
                                       }},
                      BlobStoreBackend{"fs_buffered",
                                       [](const fs::path& scratch) {
                                         return OpenFsBlobStore(scratch / "data",
                                                                {.direct_io = false});
                                       }}),
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
  void Reopen(FsBlobStoreOptions options = {}) {
    store_.reset();
    auto store = OpenFsBlobStore(root_, options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  Result<UploadCursor> Append(std::string_view id, uint64_t offset, std::string_view data) {
    BERTH_ASSIGN_OR_RETURN(auto writer, store_->AppendUpload(id, UploadCursor{offset, {}}));
    BERTH_RETURN_IF_ERROR(writer->Write(std::span<const char>(data.data(), data.size())));
    return writer->Close();
  }
  // The cursor of an upload as its file stands.
  UploadCursor At(std::string_view id) {
    return UploadCursor{fs::file_size(root_ / UploadKey(id)), {}};
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
  ASSERT_TRUE(store_->CommitUpload(id, At(id), digest).ok());
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
  ASSERT_TRUE(store_->CommitUpload(id, At(id), digest).ok());
  struct stat st;
  ASSERT_EQ(::stat((root_ / BlobKey(digest)).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u);
}

TEST_F(FsBlobStoreTest, ReaderExposesFdForSendfile) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  ASSERT_TRUE(Append(id, 0, "sendfile me").ok());
  oci::Digest digest = oci::Digest::Of("sendfile me");
  ASSERT_TRUE(store_->CommitUpload(id, At(id), digest).ok());
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
  ASSERT_TRUE(store_->CommitUpload(id, At(id), digest).ok());
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
  auto first = store_->AppendUpload(id, UploadCursor{0, {}});
  ASSERT_TRUE(first.ok());
  auto second = store_->AppendUpload(id, UploadCursor{0, {}});
  EXPECT_EQ(second.status().code(), Code::kRangeInvalid);
  // Nor can the upload be committed while it is being written.
  EXPECT_EQ(store_->CommitUpload(id, UploadCursor{}, oci::Digest::Of("")).code(), Code::kRangeInvalid);
  ASSERT_TRUE((*first)->Write(std::span<const char>("abc", 3)).ok());
  ASSERT_TRUE((*first)->Close().ok());
  EXPECT_FALSE((*first)->Write(std::span<const char>("d", 1)).ok());  // closed
  EXPECT_TRUE(store_->AppendUpload(id, UploadCursor{3, {}}).ok());
}

TEST_F(FsBlobStoreTest, WriterDestroyedWithoutCloseReleasesTheUpload) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  {
    auto writer = store_->AppendUpload(id, UploadCursor{0, {}});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(std::span<const char>("ab", 2)).ok());
  }
  auto writer = store_->AppendUpload(id, UploadCursor{2, {}});
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
  ASSERT_TRUE(store_->CommitUpload(id, At(id), digest).ok());
  std::string pending = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(pending).ok());
  ASSERT_TRUE(Append(pending, 0, "half").ok());

  Reopen();
  auto stat = store_->Stat(digest);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, 7u);
  EXPECT_EQ(At(pending).size, 4u);
  EXPECT_TRUE(Append(pending, 4, "-done").ok());
}

TEST_F(FsBlobStoreTest, DeletedUploadFileIsUploadUnknown) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store_->CreateUpload(id).ok());
  fs::remove(root_ / UploadKey(id));
  EXPECT_EQ(store_->AppendUpload(id, UploadCursor{0, {}}).status().code(), Code::kUploadUnknown);
}

// ---- direct I/O

// True when the file system under `dir` accepts O_DIRECT (tmpfs before Linux 6.6 and
// some FUSE file systems do not; the store then writes through the page cache).
bool SupportsDirectIo(const fs::path& dir) {
  fs::path probe = dir / "odirect-probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT, 0644);
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0;
}

// Pages of `path`'s first `len` bytes that are in the page cache.
size_t ResidentPages(const fs::path& path, size_t len) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return SIZE_MAX;
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  size_t pages = len / 4096;
  std::vector<unsigned char> vec(pages);
  size_t resident = 0;
  if (::mincore(map, len, vec.data()) == 0) {
    for (unsigned char v : vec) resident += v & 1;
  } else {
    resident = SIZE_MAX;
  }
  ::munmap(map, len);
  return resident;
}

std::string Pattern(size_t n, size_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + i / 4096) & 0xff);
  return s;
}

// Aligned whole blocks skip the page cache with direct I/O and go through it without:
// the upload's pages are not resident after a direct write.
TEST_F(FsBlobStoreTest, DirectWritesBypassThePageCache) {
  if (!SupportsDirectIo(root_)) GTEST_SKIP() << "no O_DIRECT on " << root_;
  constexpr size_t kLen = 4 << 20;
  IoBuffer buf(kLen);
  std::string pattern = Pattern(kLen, 1);
  std::memcpy(buf.data(), pattern.data(), kLen);
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    Reopen({.direct_io = direct});
    std::string id = NewUploadId();
    ASSERT_TRUE(store_->CreateUpload(id).ok());
    auto writer = store_->AppendUpload(id, UploadCursor{0, {}});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(std::span<const char>(buf.data(), kLen)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
    size_t resident = ResidentPages(root_ / UploadKey(id), kLen);
    if (direct) {
      EXPECT_EQ(resident, 0u);
    } else {
      EXPECT_EQ(resident, kLen / 4096);
    }
    auto reader = store_->OpenUpload(id, At(id));
    ASSERT_TRUE(reader.ok());
    std::string back(kLen, '\0');
    ASSERT_EQ(*(*reader)->ReadAt(0, std::span<char>(back.data(), kLen)), kLen);
    EXPECT_TRUE(back == pattern);
  }
}

// Odd sizes, unaligned source buffers and appends that resume mid-block (the partial
// block is read back and rewritten from its aligned start) keep exactly the bytes sent.
TEST_F(FsBlobStoreTest, OddSizedAppendsKeepEveryByte) {
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    Reopen({.direct_io = direct});
    std::string id = NewUploadId();
    ASSERT_TRUE(store_->CreateUpload(id).ok());
    IoBuffer aligned(3 << 20);
    std::string expect;
    // (size, aligned source?, appends in one writer)
    const std::vector<std::vector<std::pair<size_t, bool>>> sessions = {
        {{1, false}},
        {{4095, false}, {4097, true}},
        {{(1 << 20) + 3, true}, {3 << 20, true}},
        {{8192, true}, {17, false}, {2 << 20, true}},
        {{4096 - 17 - ((1 << 20) + 3 + 8192) % 4096, false}},
        {{3 << 20, true}},
    };
    size_t seed = 0;
    for (const auto& session : sessions) {
      auto writer = store_->AppendUpload(id, UploadCursor{expect.size(), {}});
      ASSERT_TRUE(writer.ok()) << writer.status().ToString();
      for (auto [n, from_aligned] : session) {
        std::string part = Pattern(n, ++seed);
        const char* src = part.data();
        if (from_aligned) {
          std::memcpy(aligned.data(), part.data(), n);
          src = aligned.data();
        }
        ASSERT_TRUE((*writer)->Write(std::span<const char>(src, n)).ok());
        expect += part;
        EXPECT_EQ((*writer)->size(), expect.size());
      }
      ASSERT_TRUE((*writer)->Close().ok());
      ASSERT_EQ(At(id).size, expect.size());
    }
    auto reader = store_->OpenUpload(id, At(id));
    ASSERT_TRUE(reader.ok());
    std::string back(expect.size(), '\0');
    ASSERT_EQ(*(*reader)->ReadAt(0, std::span<char>(back.data(), back.size())), expect.size());
    EXPECT_TRUE(back == expect) << "content differs";
  }
}

// A write that fails half-way (here: the file size limit, as a full disk would) leaves
// a writer whose size is what the file really holds, so the client resumes from there.
TEST_F(FsBlobStoreTest, FailedWriteReportsTheBytesOnDisk) {
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "direct" : "buffered");
    Reopen({.direct_io = direct});
    std::string id = NewUploadId();
    ASSERT_TRUE(store_->CreateUpload(id).ok());
    constexpr size_t kLimit = (1 << 20) + 8192;
    IoBuffer buf(3 << 20);
    std::string pattern = Pattern(3 << 20, 9);
    std::memcpy(buf.data(), pattern.data(), pattern.size());
    auto writer = store_->AppendUpload(id, UploadCursor{0, {}});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write(std::span<const char>(buf.data(), 5)).ok());
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old_limit;
    ::getrlimit(RLIMIT_FSIZE, &old_limit);
    rlimit limit = old_limit;
    limit.rlim_cur = kLimit;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
    Status st = (*writer)->Write(std::span<const char>(buf.data() + 5, (3 << 20) - 5));
    Status closed = (*writer)->Close().status();
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_FALSE(st.ok() && closed.ok());
    std::optional<uint64_t> on_disk = At(id).size;
    EXPECT_LE(*on_disk, kLimit);
    EXPECT_EQ((*writer)->size(), *on_disk);
    // What is there is the start of what was sent, and appending resumes after it.
    auto reader = store_->OpenUpload(id, At(id));
    ASSERT_TRUE(reader.ok());
    std::string back(*on_disk, '\0');
    ASSERT_EQ(*(*reader)->ReadAt(0, std::span<char>(back.data(), back.size())), *on_disk);
    EXPECT_TRUE(back == pattern.substr(0, *on_disk));
    EXPECT_TRUE(Append(id, *on_disk, pattern.substr(*on_disk, 100)).ok());
  }
}

}  // namespace
}  // namespace berth::storage
