#include "storage/blob/blob_store_conformance.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/keys.h"

namespace berth::storage::testing {

void BlobStoreConformance::SetUp() {
  if (GetParam().skip_reason) {
    std::string why = GetParam().skip_reason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "berth-blob-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  scratch_ = tmpl;
  auto store = GetParam().open(scratch_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
}

void BlobStoreConformance::TearDown() {
  store_.reset();
  other_.reset();
  if (GetParam().cleanup && !scratch_.empty()) GetParam().cleanup(scratch_);
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
}

BlobStore& BlobStoreConformance::other_node() {
  if (!other_) {
    auto store = GetParam().open(scratch_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) other_ = std::move(store).value();
  }
  return other_ ? *other_ : *store_;
}

namespace {

constexpr size_t kMiB = 1024 * 1024;

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

std::string ReadAll(BlobReader& reader, size_t buffer = 64 * 1024) {
  std::string out;
  std::string buf(buffer, '\0');
  uint64_t offset = 0;
  for (;;) {
    auto n = reader.ReadAt(offset, std::span<char>(buf.data(), buf.size()));
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) break;
    out.append(buf.data(), *n);
    offset += *n;
  }
  return out;
}

// One request's worth of appending: opens a writer at `at`, writes `data` in pieces
// of at most `piece` bytes (as a streaming body arrives), closes it, and returns the
// cursor to record.
Result<UploadCursor> Append(BlobStore& store, std::string_view id, const UploadCursor& at,
                            std::string_view data, size_t piece = 64 * 1024) {
  BERTH_ASSIGN_OR_RETURN(auto writer, store.AppendUpload(id, at));
  if (writer->size() != at.size) return Status::Internal("writer opened at the wrong size");
  while (!data.empty()) {
    size_t n = std::min(piece, data.size());
    BERTH_RETURN_IF_ERROR(writer->Write(std::span<const char>(data.data(), n)));
    data.remove_prefix(n);
  }
  return writer->Close();
}

// Uploads `content` in one request and commits it; returns its digest.
Result<oci::Digest> PutBlob(BlobStore& store, std::string_view content,
                            oci::DigestAlgorithm alg = oci::DigestAlgorithm::kSha256) {
  std::string id = NewUploadId();
  BERTH_ASSIGN_OR_RETURN(UploadCursor cursor, store.CreateUpload(id));
  BERTH_ASSIGN_OR_RETURN(cursor, Append(store, id, cursor, content));
  oci::Digest digest = oci::Digest::Of(content, alg);
  BERTH_RETURN_IF_ERROR(store.CommitUpload(id, cursor, digest));
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
  EXPECT_CODE((store().AppendUpload(id, UploadCursor{})), Code::kUploadUnknown);
  EXPECT_CODE((store().CommitUpload(id, UploadCursor{}, oci::Digest::Of(""))),
              Code::kUploadUnknown);
  EXPECT_CODE((store().DeleteUpload(id, std::nullopt)), Code::kUploadUnknown);
}

TEST_P(BlobStoreConformance, MalformedUploadIdsAreRejected) {
  for (std::string id : {"", "../../etc/passwd", "ABCDEF0123456789ABCDEF0123456789",
                         "0123456789abcdef0123456789abcde/", "0123"}) {
    SCOPED_TRACE(id);
    EXPECT_FALSE(store().CreateUpload(id).ok());
    EXPECT_CODE((store().AppendUpload(id, UploadCursor{})), Code::kUploadUnknown);
    EXPECT_CODE((store().CommitUpload(id, UploadCursor{}, oci::Digest::Of(""))),
                Code::kUploadUnknown);
    EXPECT_CODE((store().DeleteUpload(id, std::nullopt)), Code::kUploadUnknown);
  }
  EXPECT_CODE((store().CreateUpload("../escape")), Code::kInvalidArgument);
}

TEST_P(BlobStoreConformance, CreateUploadStartsEmptyAndIdsAreUnique) {
  std::string id = NewUploadId();
  auto cursor = store().CreateUpload(id);
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  EXPECT_EQ(cursor->size, 0u);
  EXPECT_CODE((store().CreateUpload(id)), Code::kAlreadyExists);
}

// Chunks of every size an OCI client sends — a few bytes (conformance suites), a few
// MiB (containerd, buildah), more than an object store's minimum part — each appended
// by a new writer from the cursor the previous one returned, alternating between two
// instances of the store as requests alternate between nodes.
TEST_P(BlobStoreConformance, UploadInChunksOnAlternatingNodesThenCommit) {
  std::vector<size_t> chunks = {1, 4095, 100000, 0, 3 * kMiB, 3 * kMiB, 7,
                                6 * kMiB + 5, 5 * kMiB, 1, 2 * kMiB + 3};
  size_t total = 0;
  for (size_t c : chunks) total += c;
  std::string content = Pattern(total, 1);
  std::string id = NewUploadId();
  auto created = store().CreateUpload(id);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  UploadCursor cursor = *created;
  uint64_t offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    SCOPED_TRACE("chunk " + std::to_string(i));
    BlobStore& node = i % 2 == 0 ? store() : other_node();
    auto next = Append(node, id, cursor, std::string_view(content).substr(offset, chunks[i]),
                       i % 3 == 0 ? 1000 : 256 * 1024);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    offset += chunks[i];
    EXPECT_EQ(next->size, offset);
    cursor = *next;
  }
  ASSERT_EQ(offset, content.size());

  oci::Digest digest = oci::Digest::Of(content);
  EXPECT_CODE((store().Stat(digest)), Code::kBlobUnknown);  // not visible before commit
  ASSERT_TRUE(other_node().CommitUpload(id, cursor, digest).ok());

  auto stat = store().Stat(digest);
  ASSERT_TRUE(stat.ok()) << stat.status().ToString();
  EXPECT_EQ(stat->size, content.size());
  EXPECT_TRUE(ReadBlob(store(), digest) == content);
  // The upload is gone.
  EXPECT_CODE((store().AppendUpload(id, cursor)), Code::kUploadUnknown);
  EXPECT_CODE((store().CommitUpload(id, cursor, digest)), Code::kUploadUnknown);
}

// A request that wrote bytes and died before its cursor was recorded: those bytes were
// never acknowledged, and the next append from the recorded cursor replaces them.
TEST_P(BlobStoreConformance, BytesAfterTheRecordedCursorAreDiscarded) {
  std::string id = NewUploadId();
  auto c0 = store().CreateUpload(id);
  ASSERT_TRUE(c0.ok());
  auto c1 = Append(store(), id, *c0, "hello");
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  // Closed but never recorded (the node died before its metadata write).
  auto lost = Append(store(), id, *c1, Pattern(6 * kMiB, 9));
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  // Written and never closed (the node died mid-request).
  {
    auto writer = store().AppendUpload(id, *c1);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Write(std::span<const char>("JUNKJUNK", 8)).ok());
  }
  auto c2 = Append(other_node(), id, *c1, " world");
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  EXPECT_EQ(c2->size, 11u);
  oci::Digest digest = oci::Digest::Of("hello world");
  ASSERT_TRUE(store().CommitUpload(id, *c2, digest).ok());
  EXPECT_EQ(ReadBlob(store(), digest), "hello world");
}

TEST_P(BlobStoreConformance, ManyTinyAppends) {
  std::string content = Pattern(700, 2);
  std::string id = NewUploadId();
  auto cursor = store().CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  for (size_t off = 0; off < content.size(); off += 7) {
    cursor = Append(off % 14 == 0 ? store() : other_node(), id, *cursor,
                    std::string_view(content).substr(off, 7));
    ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  }
  oci::Digest digest = oci::Digest::Of(content);
  ASSERT_TRUE(store().CommitUpload(id, *cursor, digest).ok());
  EXPECT_EQ(ReadBlob(store(), digest), content);
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
  // Sequential continuation.
  n = (*reader)->ReadAt(13345, std::span<char>(buf));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 1000u);
  EXPECT_EQ(buf, content.substr(13345, 1000));
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

TEST_P(BlobStoreConformance, LargeBlobReadsBackSequentially) {
  std::string content = Pattern(13 * kMiB + 17, 8);
  auto digest = PutBlob(store(), content);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  auto reader = other_node().Open(*digest);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE(ReadAll(**reader, 256 * 1024) == content);
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
  auto cursor = store().CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  cursor = Append(store(), id, *cursor, content);
  ASSERT_TRUE(cursor.ok());
  ASSERT_TRUE(store().CommitUpload(id, *cursor, *digest).ok());
  EXPECT_CODE((store().AppendUpload(id, *cursor)), Code::kUploadUnknown);
  EXPECT_EQ(ReadBlob(store(), *digest), content);
  // A reader opened before the second commit still reads the whole blob.
  EXPECT_EQ(ReadAll(**reader_before), content);
}

TEST_P(BlobStoreConformance, DeleteUpload) {
  for (bool with_cursor : {true, false}) {
    SCOPED_TRACE(with_cursor ? "with cursor" : "without cursor");
    std::string id = NewUploadId();
    auto cursor = store().CreateUpload(id);
    ASSERT_TRUE(cursor.ok());
    cursor = Append(store(), id, *cursor, "partial");
    ASSERT_TRUE(cursor.ok());
    // An upload with a part behind it, as a large chunk leaves on an object store.
    cursor = Append(store(), id, *cursor, Pattern(6 * kMiB, 5));
    ASSERT_TRUE(cursor.ok());
    std::optional<UploadCursor> at;
    if (with_cursor) at = *cursor;
    ASSERT_TRUE(store().DeleteUpload(id, at).ok());
    EXPECT_CODE((store().AppendUpload(id, *cursor)), Code::kUploadUnknown);
    EXPECT_CODE((store().CommitUpload(id, *cursor, oci::Digest::Of("partial"))),
                Code::kUploadUnknown);
    EXPECT_CODE((store().Stat(oci::Digest::Of("partial"))), Code::kBlobUnknown);
    EXPECT_CODE((store().DeleteUpload(id, at)), Code::kUploadUnknown);
    auto listed = store().ListUploads("", 1000);
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(std::count(listed->begin(), listed->end(), id), 0);
    // The id can be reused after deletion.
    EXPECT_TRUE(store().CreateUpload(id).ok());
  }
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
  auto digest = PutBlob(store(), content, oci::DigestAlgorithm::kSha512);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(ReadBlob(store(), *digest), content);
  // Different algorithm, different blob.
  EXPECT_CODE((store().Stat(oci::Digest::Of(content))), Code::kBlobUnknown);
}

TEST_P(BlobStoreConformance, ListBlobsPagesInDigestOrder) {
  std::vector<std::pair<std::string, uint64_t>> want;
  for (int i = 0; i < 7; ++i) {
    std::string content = Pattern(100 + i, 40 + i);
    auto d = PutBlob(store(), content,
                     i == 3 ? oci::DigestAlgorithm::kSha512 : oci::DigestAlgorithm::kSha256);
    ASSERT_TRUE(d.ok());
    want.emplace_back(d->str(), content.size());
  }
  // An upload in progress is not a blob.
  std::string id = NewUploadId();
  ASSERT_TRUE(store().CreateUpload(id).ok());
  std::sort(want.begin(), want.end());
  std::vector<std::pair<std::string, uint64_t>> got;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = other_node().ListBlobs(after, 3);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->size(), 3u);
    for (const auto& b : *page) got.emplace_back(b.digest.str(), b.size);
    if (page->size() < 3) break;
    after = page->back().digest.str();
  }
  EXPECT_EQ(got, want);
}

TEST_P(BlobStoreConformance, ListUploadsPagesAndForgetsCommitted) {
  std::vector<std::string> ids;
  std::vector<UploadCursor> cursors;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(NewUploadId());
    auto c = store().CreateUpload(ids.back());
    ASSERT_TRUE(c.ok());
    c = Append(store(), ids.back(), *c, "upload " + std::to_string(i));
    ASSERT_TRUE(c.ok());
    cursors.push_back(*c);
  }
  ASSERT_TRUE(store().CommitUpload(ids[0], cursors[0], oci::Digest::Of("upload 0")).ok());
  std::vector<std::string> want(ids.begin() + 1, ids.end());
  std::sort(want.begin(), want.end());
  std::vector<std::string> got;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = other_node().ListUploads(after, 2);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->size(), 2u);
    got.insert(got.end(), page->begin(), page->end());
    if (page->size() < 2) break;
    after = page->back();
  }
  EXPECT_EQ(got, want);
}

TEST_P(BlobStoreConformance, ConcurrentWritersOnDifferentUploads) {
  constexpr int kThreads = 8;
  constexpr int kChunks = 20;
  constexpr size_t kChunkSize = 3000;
  std::vector<std::string> contents;
  for (int t = 0; t < kThreads; ++t) contents.push_back(Pattern(kChunks * kChunkSize, 100 + t));
  std::vector<std::string> ids(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ids[t] = NewUploadId();
      auto cursor = store().CreateUpload(ids[t]);
      if (!cursor.ok()) {
        ++failures;
        return;
      }
      for (int c = 0; c < kChunks; ++c) {
        std::string_view chunk = std::string_view(contents[t]).substr(c * kChunkSize, kChunkSize);
        cursor = Append(store(), ids[t], *cursor, chunk);
        if (!cursor.ok()) {
          ++failures;
          return;
        }
      }
      if (!store().CommitUpload(ids[t], *cursor, oci::Digest::Of(contents[t])).ok()) ++failures;
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
  std::vector<UploadCursor> cursors;
  for (int t = 0; t < kThreads; ++t) {
    ids.push_back(NewUploadId());
    auto c = store().CreateUpload(ids.back());
    ASSERT_TRUE(c.ok());
    c = Append(store(), ids.back(), *c, content);
    ASSERT_TRUE(c.ok());
    cursors.push_back(*c);
  }
  // Opened before the threads start: other_node() opens lazily and is not thread-safe.
  BlobStore& other = other_node();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      BlobStore& node = t % 2 == 0 ? store() : other;
      Status st = node.CommitUpload(ids[t], cursors[t], digest);
      if (!st.ok()) {
        ++failures;
        ADD_FAILURE() << "commit " << t << ": " << st.ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(ReadBlob(store(), digest), content);
  for (size_t t = 0; t < ids.size(); ++t) {
    EXPECT_CODE((store().AppendUpload(ids[t], cursors[t])), Code::kUploadUnknown);
  }
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
