#include "storage/blob/blob_store_conformance.h"

#include <stdlib.h>

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/keys.h"

namespace berth::storage::testing {

void BlobStoreConformance::SetUp() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "berth-blob-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  scratch_ = tmpl;
  auto store = GetParam().open(scratch_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
}

void BlobStoreConformance::TearDown() {
  store_.reset();
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
}

namespace {

// Deterministic, position-dependent bytes, so that misplaced chunks are detected.
std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string ReadAll(BlobReader& reader) {
  std::string out;
  char buf[4096];
  uint64_t offset = 0;
  for (;;) {
    auto n = reader.ReadAt(offset, std::span<char>(buf, sizeof(buf)));
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) break;
    out.append(buf, *n);
    offset += *n;
  }
  return out;
}

Status Append(BlobStore& store, std::string_view id, uint64_t offset, std::string_view data) {
  BERTH_ASSIGN_OR_RETURN(auto writer, store.AppendUpload(id, offset));
  BERTH_RETURN_IF_ERROR(writer->Write(std::span<const char>(data.data(), data.size())));
  return writer->Close();
}

// Uploads `content` in one chunk and commits it; returns its digest.
Result<oci::Digest> PutBlob(BlobStore& store, std::string_view content) {
  std::string id = NewUploadId();
  BERTH_RETURN_IF_ERROR(store.CreateUpload(id));
  BERTH_RETURN_IF_ERROR(Append(store, id, 0, content));
  oci::Digest digest = oci::Digest::Of(content);
  BERTH_RETURN_IF_ERROR(store.CommitUpload(id, digest));
  return digest;
}

std::string ReadBlob(BlobStore& store, const oci::Digest& digest) {
  auto reader = store.Open(digest);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return {};
  return ReadAll(**reader);
}

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// Expects `expr` (a Status or a Result<T>) to fail with `want`.
#define EXPECT_CODE(expr, want)                                                           \
  do {                                                                                    \
    const Status _st = StatusOf(expr);                                                    \
    EXPECT_EQ(CodeName(_st.code()), CodeName(want)) << #expr << " -> " << _st.ToString(); \
  } while (0)

}  // namespace

TEST_P(BlobStoreConformance, MissingBlobIsBlobUnknown) {
  oci::Digest d = oci::Digest::Of("never stored");
  EXPECT_CODE((store().Stat(d)), Code::kBlobUnknown);
  EXPECT_CODE((store().Open(d)), Code::kBlobUnknown);
  EXPECT_CODE((store().Delete(d)), Code::kBlobUnknown);
}

TEST_P(BlobStoreConformance, MissingUploadIsUploadUnknown) {
  std::string id = NewUploadId();
  EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
  EXPECT_CODE((store().AppendUpload(id, 0)), Code::kUploadUnknown);
  EXPECT_CODE((store().OpenUpload(id)), Code::kUploadUnknown);
  EXPECT_CODE((store().CommitUpload(id, oci::Digest::Of(""))), Code::kUploadUnknown);
  EXPECT_CODE((store().DeleteUpload(id)), Code::kUploadUnknown);
}

TEST_P(BlobStoreConformance, MalformedUploadIdsAreRejected) {
  for (std::string id : {"", "../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789",
                         "0123456789abcdef0123456789abcde/", "0123"}) {
    SCOPED_TRACE(id);
    EXPECT_FALSE(store().CreateUpload(id).ok());
    EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
    EXPECT_CODE((store().AppendUpload(id, 0)), Code::kUploadUnknown);
    EXPECT_CODE((store().OpenUpload(id)), Code::kUploadUnknown);
    EXPECT_CODE((store().CommitUpload(id, oci::Digest::Of(""))), Code::kUploadUnknown);
    EXPECT_CODE((store().DeleteUpload(id)), Code::kUploadUnknown);
  }
  EXPECT_CODE((store().CreateUpload("../escape")), Code::kInvalidArgument);
}

TEST_P(BlobStoreConformance, CreateUploadStartsEmptyAndIdsAreUnique) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  auto size = store().UploadSize(id);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 0u);
  EXPECT_CODE((store().CreateUpload(id)), Code::kAlreadyExists);
}

TEST_P(BlobStoreConformance, UploadInChunksThenCommit) {
  std::string content = Pattern(300000, 1);
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  uint64_t offset = 0;
  for (size_t chunk : {1u, 4095u, 100000u, 0u, 195904u}) {
    auto writer = store().AppendUpload(id, offset);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    EXPECT_EQ((*writer)->size(), offset);
    // Several writes per writer, as a streaming body arrives in buffers.
    std::string_view part = std::string_view(content).substr(offset, chunk);
    size_t half = part.size() / 2;
    ASSERT_TRUE((*writer)->Write(std::span<const char>(part.data(), half)).ok());
    ASSERT_TRUE(
        (*writer)->Write(std::span<const char>(part.data() + half, part.size() - half)).ok());
    EXPECT_EQ((*writer)->size(), offset + chunk);
    ASSERT_TRUE((*writer)->Close().ok());
    offset += chunk;
    auto size = store().UploadSize(id);
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, offset);
  }
  ASSERT_EQ(offset, content.size());

  oci::Digest digest = oci::Digest::Of(content);
  EXPECT_CODE((store().Stat(digest)), Code::kBlobUnknown);  // not visible before commit
  ASSERT_TRUE(store().CommitUpload(id, digest).ok());

  auto stat = store().Stat(digest);
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->size, content.size());
  EXPECT_EQ(ReadBlob(store(), digest), content);
  // The upload is gone.
  EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
  EXPECT_CODE((store().OpenUpload(id)), Code::kUploadUnknown);
  EXPECT_CODE((store().CommitUpload(id, digest)), Code::kUploadUnknown);
}

TEST_P(BlobStoreConformance, AppendWithWrongOffsetIsRangeInvalid) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  ASSERT_TRUE(Append(store(), id, 0, "hello").ok());
  EXPECT_CODE((store().AppendUpload(id, 0)), Code::kRangeInvalid);  // stale writer
  EXPECT_CODE((store().AppendUpload(id, 4)), Code::kRangeInvalid);
  EXPECT_CODE((store().AppendUpload(id, 6)), Code::kRangeInvalid);  // gap
  EXPECT_CODE((Append(store(), id, 0, "XXXXX")), Code::kRangeInvalid);
  ASSERT_TRUE(Append(store(), id, 5, " world").ok());
  auto reader = store().OpenUpload(id);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadAll(**reader), "hello world");
}

TEST_P(BlobStoreConformance, OpenUploadReadsBytesSoFar) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  std::string first = Pattern(10000, 2);
  ASSERT_TRUE(Append(store(), id, 0, first).ok());
  auto reader = store().OpenUpload(id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), first.size());
  EXPECT_EQ(ReadAll(**reader), first);
  // Rebuilding a hash state from the bytes so far yields the digest of the prefix.
  oci::Hasher hasher;
  std::string again = ReadAll(**reader);
  hasher.Update(std::string_view(again));
  EXPECT_EQ(hasher.Peek(), oci::Digest::Of(first));
}

TEST_P(BlobStoreConformance, ReadAtRanges) {
  std::string content = Pattern(100000, 3);
  auto digest = PutBlob(store(), content);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  auto reader = store().Open(*digest);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->size(), content.size());

  std::string buf(1000, '\0');
  // Middle.
  auto n = (*reader)->ReadAt(12345, std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 1000u);
  EXPECT_EQ(buf, content.substr(12345, 1000));
  // First byte.
  n = (*reader)->ReadAt(0, std::span<char>(buf.data(), 1));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(buf[0], content[0]);
  // Short read at the end.
  n = (*reader)->ReadAt(content.size() - 10, std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 10u);
  EXPECT_EQ(buf.substr(0, 10), content.substr(content.size() - 10));
  // At and beyond the end.
  n = (*reader)->ReadAt(content.size(), std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  n = (*reader)->ReadAt(content.size() + 5000, std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  // Random access out of order.
  for (uint64_t off : {90000u, 10u, 50000u, 99999u}) {
    n = (*reader)->ReadAt(off, std::span<char>(buf.data(), 7));
    ASSERT_TRUE(n.ok());
    size_t want = std::min<size_t>(7, content.size() - off);
    ASSERT_EQ(*n, want);
    EXPECT_EQ(buf.substr(0, want), content.substr(off, want));
  }
}

TEST_P(BlobStoreConformance, EmptyBlob) {
  auto digest = PutBlob(store(), "");
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  auto stat = store().Stat(*digest);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, 0u);
  EXPECT_EQ(ReadBlob(store(), *digest), "");
}

TEST_P(BlobStoreConformance, CommitOfExistingDigestKeepsOneCopyAndDropsUpload) {
  std::string content = Pattern(5000, 4);
  auto digest = PutBlob(store(), content);
  ASSERT_TRUE(digest.ok());
  auto reader_before = store().Open(*digest);
  ASSERT_TRUE(reader_before.ok());

  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  ASSERT_TRUE(Append(store(), id, 0, content).ok());
  ASSERT_TRUE(store().CommitUpload(id, *digest).ok());
  EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
  EXPECT_EQ(ReadBlob(store(), *digest), content);
  // A reader opened before the second commit still reads the whole blob.
  EXPECT_EQ(ReadAll(**reader_before), content);
}

TEST_P(BlobStoreConformance, DeleteUpload) {
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  ASSERT_TRUE(Append(store(), id, 0, "partial").ok());
  ASSERT_TRUE(store().DeleteUpload(id).ok());
  EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
  EXPECT_CODE((store().CommitUpload(id, oci::Digest::Of("partial"))), Code::kUploadUnknown);
  EXPECT_CODE((store().Stat(oci::Digest::Of("partial"))), Code::kBlobUnknown);
  EXPECT_CODE((store().DeleteUpload(id)), Code::kUploadUnknown);
  // The id can be reused after deletion.
  EXPECT_TRUE(store().CreateUpload(id).ok());
}

TEST_P(BlobStoreConformance, DeleteBlob) {
  auto a = PutBlob(store(), "blob a");
  auto b = PutBlob(store(), "blob b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store().Delete(*a).ok());
  EXPECT_CODE((store().Stat(*a)), Code::kBlobUnknown);
  EXPECT_CODE((store().Open(*a)), Code::kBlobUnknown);
  EXPECT_CODE((store().Delete(*a)), Code::kBlobUnknown);
  EXPECT_EQ(ReadBlob(store(), *b), "blob b");
  // The same content can be pushed again.
  auto again = PutBlob(store(), "blob a");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ReadBlob(store(), *a), "blob a");
}

TEST_P(BlobStoreConformance, Sha512Blob) {
  std::string content = Pattern(777, 5);
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  ASSERT_TRUE(Append(store(), id, 0, content).ok());
  oci::Digest digest = oci::Digest::Of(content, oci::DigestAlgorithm::kSha512);
  ASSERT_TRUE(store().CommitUpload(id, digest).ok());
  EXPECT_EQ(ReadBlob(store(), digest), content);
  // Different algorithm, different blob.
  EXPECT_CODE((store().Stat(oci::Digest::Of(content))), Code::kBlobUnknown);
}

TEST_P(BlobStoreConformance, ConcurrentWritersOnDifferentUploads) {
  constexpr int kThreads = 8;
  constexpr int kChunks = 40;
  constexpr size_t kChunkSize = 3000;
  std::vector<std::string> contents;
  for (int t = 0; t < kThreads; ++t) contents.push_back(Pattern(kChunks * kChunkSize, 100 + t));
  std::vector<std::string> ids(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ids[t] = NewUploadId();
      if (!store().CreateUpload(ids[t]).ok()) {
        ++failures;
        return;
      }
      for (int c = 0; c < kChunks; ++c) {
        std::string_view chunk = std::string_view(contents[t]).substr(c * kChunkSize, kChunkSize);
        if (!Append(store(), ids[t], c * kChunkSize, chunk).ok()) {
          ++failures;
          return;
        }
      }
      if (!store().CommitUpload(ids[t], oci::Digest::Of(contents[t])).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(ReadBlob(store(), oci::Digest::Of(contents[t])), contents[t]) << "thread " << t;
  }
}

TEST_P(BlobStoreConformance, ConcurrentCommitsOfTheSameDigest) {
  constexpr int kThreads = 6;
  std::string content = Pattern(50000, 6);
  oci::Digest digest = oci::Digest::Of(content);
  std::vector<std::string> ids;
  for (int t = 0; t < kThreads; ++t) {
    ids.push_back(NewUploadId());
    ASSERT_TRUE(store().CreateUpload(ids.back()).ok());
    ASSERT_TRUE(Append(store(), ids.back(), 0, content).ok());
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      if (!store().CommitUpload(ids[t], digest).ok()) ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ReadBlob(store(), digest), content);
  for (const auto& id : ids) EXPECT_CODE((store().UploadSize(id)), Code::kUploadUnknown);
}

TEST_P(BlobStoreConformance, ConcurrentReadersOfOneBlob) {
  std::string content = Pattern(200000, 7);
  auto digest = PutBlob(store(), content);
  ASSERT_TRUE(digest.ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        if (ReadBlob(store(), *digest) != content) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace berth::storage::testing
