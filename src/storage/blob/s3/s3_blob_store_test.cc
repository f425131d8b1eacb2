// The S3 BlobStore against a real object store: the shared conformance suite, then
// what only an object store has (parts, tails, copies, presigned URLs, bucket checks).
//
// Needs BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY, BERTH_TEST_S3_SECRET_KEY and
// optionally BERTH_TEST_S3_REGION and BERTH_TEST_S3_BUCKET (default "berth-test",
// created when absent). tests/services/radosgw.sh starts a throwaway radosgw and writes
// them to DIR/env:
//   tests/services/radosgw.sh start /tmp/rgw && set -a && . /tmp/rgw/env && set +a
// Without them the tests are skipped, except under CI (CI set), where they fail: CI must
// never pass by skipping. Each test works under a key prefix of its own, derived from
// its scratch directory, and deletes it afterwards.
#include "storage/blob/s3/s3_blob_store.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/blob/blob_store_conformance.h"
#include "storage/blob/s3/s3_client.h"
#include "storage/keys.h"

namespace berth::storage {
namespace {

namespace fs = std::filesystem;
using s3::S3Client;
using testing::BlobStoreBackend;
using testing::BlobStoreBackendName;
using testing::BlobStoreConformance;

constexpr uint64_t kMiB = 1 << 20;
// S3's minimum part: the most parts for the bytes the tests move.
constexpr uint64_t kPartSize = 5 * kMiB;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool InCi() {
  std::string ci = Env("CI");
  return !ci.empty() && ci != "false" && ci != "0";
}

struct TestEnv {
  std::string endpoint, access_key, secret_key, region, bucket;
  bool complete() const { return !endpoint.empty() && !access_key.empty() && !secret_key.empty(); }
};

const TestEnv& GetEnv() {
  static const TestEnv env = [] {
    TestEnv e{Env("BERTH_TEST_S3_ENDPOINT"), Env("BERTH_TEST_S3_ACCESS_KEY"),
              Env("BERTH_TEST_S3_SECRET_KEY"), Env("BERTH_TEST_S3_REGION"),
              Env("BERTH_TEST_S3_BUCKET")};
    if (e.region.empty()) e.region = "us-east-1";
    if (e.bucket.empty()) e.bucket = "berth-test";
    return e;
  }();
  return env;
}

constexpr const char* kMissingEnv =
    "BERTH_TEST_S3_ENDPOINT, BERTH_TEST_S3_ACCESS_KEY and BERTH_TEST_S3_SECRET_KEY are not set "
    "(start a radosgw with tests/services/radosgw.sh start DIR, then source DIR/env)";

// Skipped without the environment, but never under CI.
std::string SkipReason() {
  if (GetEnv().complete() || InCi()) return "";
  return kMissingEnv;
}

s3::S3Config Config(std::string prefix, std::string bucket = GetEnv().bucket) {
  s3::S3Config c;
  c.endpoint = GetEnv().endpoint;
  c.bucket = std::move(bucket);
  c.region = GetEnv().region;
  c.prefix = std::move(prefix);
  return c;
}

s3::S3Credentials Credentials() {
  return s3::S3Credentials{GetEnv().access_key, GetEnv().secret_key, "", "test environment"};
}

// The bucket, created once per process.
Status EnsureBucket() {
  static std::once_flag once;
  static Status status;
  std::call_once(once, [] {
    auto client = S3Client::Create(Config(""), Credentials());
    status = client.ok() ? (*client)->CreateBucket() : client.status();
  });
  return status;
}

// A prefix of the test's own: "berth-test/<scratch dir name>/".
std::string PrefixFor(const fs::path& scratch) {
  return "berth-test/" + scratch.filename().string() + "/";
}

S3BlobStoreOptions OptionsFor(const fs::path& scratch) {
  S3BlobStoreOptions o;
  o.config = Config(PrefixFor(scratch));
  o.credentials = Credentials();
  o.part_size = kPartSize;
  return o;
}

Result<std::unique_ptr<BlobStore>> OpenForTest(const S3BlobStoreOptions& options) {
  if (!GetEnv().complete()) {
    return Status::FailedPrecondition(std::string("CI is set and ") + kMissingEnv);
  }
  BERTH_RETURN_IF_ERROR(EnsureBucket());
  return OpenS3BlobStore(options);
}

// Deletes every object and multipart upload under the prefix.
void DeletePrefix(const std::string& prefix) {
  if (!GetEnv().complete()) return;
  auto client = S3Client::Create(Config(prefix), Credentials());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  S3Client& c = **client;
  for (;;) {
    auto mpus = c.ListMultipartUploads("");
    ASSERT_TRUE(mpus.ok()) << mpus.status().ToString();
    for (const auto& u : mpus->uploads) (void)c.AbortMultipartUpload(u.key, u.upload_id);
    if (!mpus->truncated) break;
  }
  for (;;) {
    s3::ListObjectsRequest req;
    auto page = c.ListObjectsV2(req);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    if (page->objects.empty()) break;
    std::vector<std::string> keys;
    for (const auto& o : page->objects) keys.push_back(o.key);
    auto failures = c.DeleteObjects(keys);
    ASSERT_TRUE(failures.ok()) << failures.status().ToString();
    ASSERT_TRUE(failures->empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    S3, BlobStoreConformance,
    ::testing::Values(BlobStoreBackend{
        "s3", [](const fs::path& scratch) { return OpenForTest(OptionsFor(scratch)); },
        [](const fs::path& scratch) { DeletePrefix(PrefixFor(scratch)); }, SkipReason}),
    BlobStoreBackendName);

// ---- S3-specific tests

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 7;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// What the hooks saw, across every store of a test.
struct Observed {
  std::mutex mu;
  std::map<int, int> uploads_of_part;  // part number → times uploaded
  uint64_t part_bytes = 0;
  uint64_t upload_bytes_read = 0;
  size_t max_buffer = 0;
  int parts_uploaded = 0;
};

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!GetEnv().complete()) {
      if (InCi()) FAIL() << "CI is set and " << kMissingEnv;
      GTEST_SKIP() << kMissingEnv;
    }
    std::string tmpl = (fs::temp_directory_path() / "berth-s3-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    scratch_ = tmpl;
  }
  void TearDown() override {
    stores_.clear();
    if (!scratch_.empty()) {
      DeletePrefix(PrefixFor(scratch_));
      std::error_code ec;
      fs::remove_all(scratch_, ec);
    }
  }

  S3BlobStoreOptions Options() {
    S3BlobStoreOptions o = OptionsFor(scratch_);
    o.hooks.on_part_uploaded = [this](int part, uint64_t bytes) {
      std::lock_guard lock(observed_.mu);
      ++observed_.uploads_of_part[part];
      observed_.part_bytes += bytes;
      ++observed_.parts_uploaded;
    };
    o.hooks.on_upload_bytes_read = [this](uint64_t bytes) {
      std::lock_guard lock(observed_.mu);
      observed_.upload_bytes_read += bytes;
    };
    o.hooks.on_buffer_reserved = [this](size_t capacity) {
      std::lock_guard lock(observed_.mu);
      observed_.max_buffer = std::max(observed_.max_buffer, capacity);
    };
    return o;
  }

  // A store (a node) over the test's prefix; the test owns it.
  BlobStore& Node(const S3BlobStoreOptions& options) {
    auto store = OpenForTest(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) std::abort();
    stores_.push_back(std::move(store).value());
    return *stores_.back();
  }
  BlobStore& Node() { return Node(Options()); }

  // A client over the test's prefix, for looking behind the store's back.
  std::unique_ptr<S3Client> RawClient() {
    auto client = S3Client::Create(Config(PrefixFor(scratch_)), Credentials());
    EXPECT_TRUE(client.ok());
    return std::move(client).value();
  }

  static Result<UploadCursor> Append(BlobStore& store, std::string_view id, const UploadCursor& at,
                                     std::string_view data, size_t piece) {
    BERTH_ASSIGN_OR_RETURN(auto writer, store.AppendUpload(id, at));
    while (!data.empty()) {
      size_t n = std::min(piece, data.size());
      BERTH_RETURN_IF_ERROR(writer->Write(std::span<const char>(data.data(), n)));
      data.remove_prefix(n);
    }
    return writer->Close();
  }

  static oci::Digest DigestOfBlob(BlobStore& store, const oci::Digest& digest, uint64_t* size) {
    auto reader = store.Open(digest);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return oci::Digest();
    oci::Hasher hasher;
    std::string buf(1 << 20, '\0');
    uint64_t offset = 0;
    for (;;) {
      auto n = (*reader)->ReadAt(offset, std::span<char>(buf));
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      hasher.Update(std::span<const char>(buf.data(), *n));
      offset += *n;
    }
    *size = offset;
    return hasher.Peek();
  }

  fs::path scratch_;
  Observed observed_;
  std::vector<std::unique_ptr<BlobStore>> stores_;
};

// Parts go out while the body arrives, each as soon as a part's worth is buffered, and
// a writer never holds more than one part buffer, however the bytes are cut.
TEST_F(S3BlobStoreTest, PartsStreamAsBytesArriveWithOnePartBufferPerWriter) {
  BlobStore& store = Node();
  std::string id = NewUploadId();
  auto cursor = store.CreateUpload(id);
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  std::string content = Pattern(23 * kMiB + 3, 1);
  auto writer = store.AppendUpload(id, *cursor);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  const size_t piece = kMiB + 17;
  size_t offset = 0;
  while (offset < content.size()) {
    size_t n = std::min(piece, content.size() - offset);
    ASSERT_TRUE((*writer)->Write(std::span<const char>(content.data() + offset, n)).ok());
    offset += n;
    std::lock_guard lock(observed_.mu);
    // Every full part is already in the store, before Close.
    EXPECT_EQ(observed_.parts_uploaded, static_cast<int>(offset / kPartSize)) << offset;
    EXPECT_LE(observed_.max_buffer, kPartSize);
    EXPECT_EQ((*writer)->size(), offset);
  }
  auto closed = (*writer)->Close();
  ASSERT_TRUE(closed.ok()) << closed.status().ToString();
  EXPECT_EQ(closed->size, content.size());

  // One large Write: whole parts go from the caller's memory, no bigger buffer.
  std::string more = Pattern(17 * kMiB + 5, 2);
  auto w2 = store.AppendUpload(id, *closed);
  ASSERT_TRUE(w2.ok()) << w2.status().ToString();
  ASSERT_TRUE((*w2)->Write(std::span<const char>(more.data(), more.size())).ok());
  auto c2 = (*w2)->Close();
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  content += more;
  EXPECT_EQ(c2->size, content.size());
  {
    std::lock_guard lock(observed_.mu);
    EXPECT_LE(observed_.max_buffer, kPartSize);
    EXPECT_EQ(observed_.parts_uploaded, static_cast<int>(content.size() / kPartSize));
    for (const auto& [part, times] : observed_.uploads_of_part) {
      EXPECT_EQ(times, 1) << "part " << part << " uploaded more than once";
    }
  }
  // The state is compact text.
  EXPECT_LT(c2->state.size(), 400u) << c2->state;
  EXPECT_EQ(c2->state.find('\0'), std::string::npos);

  oci::Digest digest = oci::Digest::Of(content);
  ASSERT_TRUE(store.CommitUpload(id, *c2, digest).ok());
  uint64_t size = 0;
  EXPECT_EQ(DigestOfBlob(store, digest, &size), digest);
  EXPECT_EQ(size, content.size());
}

// A small append buffers only what it needs, not a whole part.
TEST_F(S3BlobStoreTest, SmallUploadsDoNotAllocateAWholePart) {
  BlobStore& store = Node();
  std::string id = NewUploadId();
  auto cursor = store.CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  cursor = Append(store, id, *cursor, "tiny", 4);
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  EXPECT_LE(observed_.max_buffer, 64u << 10);
  ASSERT_TRUE(store.CommitUpload(id, *cursor, oci::Digest::Of("tiny")).ok());
}

// 100+ MiB in chunks of odd sizes, each appended by a fresh writer on alternating
// nodes: every append re-reads only the previous tail (less than a part), no part is
// ever uploaded twice, and the blob reads back with the right digest.
TEST_F(S3BlobStoreTest, LargeUploadInOddChunksOnAlternatingNodesReadsOnlyTails) {
  BlobStore& a = Node();
  BlobStore& b = Node();
  const std::vector<size_t> pattern = {
      7 * kMiB + 3, 1, 13 * kMiB + 11, 333 * 1024 + 1, kPartSize, 2 * kMiB - 1, 9 * kMiB + 7, 4099};
  std::vector<size_t> chunks;
  size_t total = 0;
  for (size_t i = 0; total < 100 * kMiB; ++i) {
    chunks.push_back(pattern[i % pattern.size()]);
    total += chunks.back();
  }
  std::string content = Pattern(total, 3);
  std::string id = NewUploadId();
  auto created = a.CreateUpload(id);
  ASSERT_TRUE(created.ok());
  UploadCursor cursor = *created;
  size_t offset = 0;
  uint64_t expected_reads = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    SCOPED_TRACE("chunk " + std::to_string(i));
    BlobStore& node = i % 2 == 0 ? a : b;
    expected_reads += cursor.size % kPartSize;  // the tail of the cursor appended to
    uint64_t read_before;
    {
      std::lock_guard lock(observed_.mu);
      read_before = observed_.upload_bytes_read;
    }
    auto next = Append(node, id, cursor, std::string_view(content).substr(offset, chunks[i]),
                       i % 3 == 0 ? 64 * 1024 : 1000 * 1000 + 1);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    offset += chunks[i];
    ASSERT_EQ(next->size, offset);
    {
      std::lock_guard lock(observed_.mu);
      EXPECT_LT(observed_.upload_bytes_read - read_before, kPartSize);
    }
    cursor = *next;
  }
  {
    std::lock_guard lock(observed_.mu);
    EXPECT_EQ(observed_.upload_bytes_read, expected_reads);
    EXPECT_EQ(observed_.parts_uploaded, static_cast<int>(total / kPartSize));
    EXPECT_EQ(observed_.part_bytes, total / kPartSize * kPartSize);
    for (const auto& [part, times] : observed_.uploads_of_part) {
      EXPECT_EQ(times, 1) << "part " << part << " uploaded more than once";
    }
    EXPECT_LE(observed_.max_buffer, kPartSize);
  }
  oci::Digest digest = oci::Digest::Of(content);
  content.clear();
  content.shrink_to_fit();
  EXPECT_EQ(a.Stat(digest).status().code(), Code::kBlobUnknown);
  ASSERT_TRUE(b.CommitUpload(id, cursor, digest).ok());
  uint64_t size = 0;
  EXPECT_EQ(DigestOfBlob(a, digest, &size), digest);
  EXPECT_EQ(size, total);
  auto uploads = a.ListUploads("", 100);
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
}

// A request that outlived its lease and rewrote a part behind the recorded cursor is
// caught at commit, not turned into a blob with the wrong bytes.
TEST_F(S3BlobStoreTest, PartRewrittenBehindTheCursorIsDetectedAtCommit) {
  BlobStore& store = Node();
  std::string id = NewUploadId();
  auto c0 = store.CreateUpload(id);
  ASSERT_TRUE(c0.ok());
  std::string content = Pattern(kPartSize + 10, 4);
  auto c1 = Append(store, id, *c0, content, 1 << 20);  // part 1 and a tail
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  auto zombie = store.AppendUpload(id, *c1);  // opened from the same cursor, runs late
  ASSERT_TRUE(zombie.ok());
  std::string more = Pattern(kPartSize, 5);
  auto c2 = Append(store, id, *c1, more, 1 << 20);  // part 2 and a tail
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  content += more;
  // The late writer fills part 2 of the same multipart upload with other bytes.
  std::string other = Pattern(kPartSize, 6);
  ASSERT_TRUE((*zombie)->Write(std::span<const char>(other.data(), other.size())).ok());
  Status st = store.CommitUpload(id, *c2, oci::Digest::Of(content));
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_EQ(store.Stat(oci::Digest::Of(content)).status().code(), Code::kBlobUnknown);
  EXPECT_TRUE(store.DeleteUpload(id, *c2).ok());
}

// A commit cut short at any step is finished by the next attempt, and the blob only
// ever appears whole.
TEST_F(S3BlobStoreTest, InterruptedCommitIsFinishedByARetry) {
  for (std::string step : {"completed", "copied"}) {
    for (size_t size : {size_t{1000}, 2 * kPartSize + 77}) {
      SCOPED_TRACE(step + " " + std::to_string(size));
      // Shared with the hook, which lives as long as the store (the whole test).
      auto crash = std::make_shared<std::atomic<bool>>(true);
      S3BlobStoreOptions options = Options();
      options.hooks.commit_fault = [crash, step](std::string_view at) {
        if (at == step && crash->exchange(false)) return Status::Unavailable("crash at " + step);
        return Status::Ok();
      };
      BlobStore& store = Node(options);
      std::string content = Pattern(size, static_cast<uint32_t>(size));
      oci::Digest digest = oci::Digest::Of(content);
      std::string id = NewUploadId();
      auto cursor = store.CreateUpload(id);
      ASSERT_TRUE(cursor.ok());
      cursor = Append(store, id, *cursor, content, 1 << 20);
      ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
      Status first = store.CommitUpload(id, *cursor, digest);
      if (size < kPartSize && step == "completed") {
        EXPECT_TRUE(first.ok()) << "no multipart upload to complete";
      } else {
        EXPECT_EQ(first.code(), Code::kUnavailable) << first.ToString();
        EXPECT_EQ(store.Stat(digest).ok(), step == "copied");
        Status retry = Node().CommitUpload(id, *cursor, digest);
        ASSERT_TRUE(retry.ok()) << retry.ToString();
      }
      auto stat = store.Stat(digest);
      ASSERT_TRUE(stat.ok()) << stat.status().ToString();
      EXPECT_EQ(stat->size, size);
      uint64_t read = 0;
      EXPECT_EQ(DigestOfBlob(store, digest, &read), digest);
      EXPECT_EQ(store.AppendUpload(id, *cursor).status().code(), Code::kUploadUnknown);
      auto uploads = store.ListUploads("", 100);
      ASSERT_TRUE(uploads.ok());
      EXPECT_TRUE(uploads->empty());
      ASSERT_TRUE(store.Delete(digest).ok());
    }
  }
}

// A blob of one part or more stays where its parts were uploaded: the blob key holds
// only a pointer to it, so completion copies nothing (no CopyObject, which AWS stops at
// 5 GiB, and no second copy of the bytes), whatever the size. Delete removes both.
TEST_F(S3BlobStoreTest, LargeBlobStaysWhereItWasUploadedBehindAPointer) {
  BlobStore& store = Node();
  auto raw = RawClient();
  const uint64_t size = 2 * kPartSize + 3;
  std::string content = Pattern(size, 9);
  oci::Digest digest = oci::Digest::Of(content);
  std::string id = NewUploadId();
  auto cursor = store.CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  cursor = Append(store, id, *cursor, content, 3 << 20);
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  ASSERT_TRUE(store.CommitUpload(id, *cursor, digest).ok());

  auto pointer = raw->HeadObject(BlobKey(digest));
  ASSERT_TRUE(pointer.ok()) << pointer.status().ToString();
  EXPECT_EQ(pointer->size, 0u);
  EXPECT_EQ(pointer->metadata["berth-data"], UploadDataKey(id));
  EXPECT_EQ(pointer->metadata["berth-size"], std::to_string(size));
  auto data = raw->HeadObject(UploadDataKey(id));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size, size);
  EXPECT_NE(data->etag.find("-3"), std::string::npos) << "the completed multipart object itself";

  auto stat = Node().Stat(digest);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, size);
  uint64_t read = 0;
  EXPECT_EQ(DigestOfBlob(Node(), digest, &read), digest);
  EXPECT_EQ(read, size);
  auto listed = store.ListBlobs("", 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].size, size);

  ASSERT_TRUE(store.Delete(digest).ok());
  EXPECT_EQ(store.Stat(digest).status().code(), Code::kBlobUnknown);
  EXPECT_EQ(raw->HeadObject(UploadDataKey(id)).status().code(), Code::kNotFound);
}

// Two large uploads of one digest committed at once: one pointer wins, the other
// upload's data object goes, and nothing of either upload is left.
TEST_F(S3BlobStoreTest, RacingLargeCommitsOfOneDigestKeepOneCopy) {
  auto raw = RawClient();
  std::string content = Pattern(kPartSize + 10, 4);
  oci::Digest digest = oci::Digest::Of(content);
  std::vector<std::string> ids;
  std::vector<UploadCursor> cursors;
  BlobStore& a = Node();
  BlobStore& b = Node();
  for (int i = 0; i < 2; ++i) {
    ids.push_back(NewUploadId());
    auto c = a.CreateUpload(ids.back());
    ASSERT_TRUE(c.ok());
    c = Append(a, ids.back(), *c, content, 1 << 20);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cursors.push_back(*c);
  }
  Status results[2];
  std::thread t0([&] { results[0] = a.CommitUpload(ids[0], cursors[0], digest); });
  std::thread t1([&] { results[1] = b.CommitUpload(ids[1], cursors[1], digest); });
  t0.join();
  t1.join();
  ASSERT_TRUE(results[0].ok()) << results[0].ToString();
  ASSERT_TRUE(results[1].ok()) << results[1].ToString();
  uint64_t read = 0;
  EXPECT_EQ(DigestOfBlob(a, digest, &read), digest);
  int data_objects = 0;
  for (const auto& id : ids) data_objects += raw->HeadObject(UploadDataKey(id)).ok() ? 1 : 0;
  EXPECT_EQ(data_objects, 1);
  auto uploads = a.ListUploads("", 10);
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());
}

size_t CollectBody(char* data, size_t size, size_t nmemb, void* out) {
  static_cast<std::string*>(out)->append(data, size * nmemb);
  return size * nmemb;
}

// A plain GET, without credentials. Returns the HTTP status (0 on a transport error).
long HttpGet(const std::string& url, std::string* body) {
  CURL* curl = curl_easy_init();
  if (!curl) return 0;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  long code = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  return code;
}

TEST_F(S3BlobStoreTest, PresignedDownloadUrlIsFetchableWithoutCredentials) {
  S3BlobStoreOptions options = Options();
  options.redirect = true;
  BlobStore& store = Node(options);
  std::string content = Pattern(300000, 7);
  std::string id = NewUploadId();
  auto cursor = store.CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  cursor = Append(store, id, *cursor, content, 1 << 20);
  ASSERT_TRUE(cursor.ok());
  oci::Digest digest = oci::Digest::Of(content);
  ASSERT_TRUE(store.CommitUpload(id, *cursor, digest).ok());

  auto url = store.DownloadUrl(digest, 300);
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  ASSERT_TRUE(url->has_value());
  EXPECT_TRUE((*url)->starts_with(GetEnv().endpoint)) << **url;
  EXPECT_NE((*url)->find("X-Amz-Signature="), std::string::npos);
  std::string body;
  EXPECT_EQ(HttpGet(**url, &body), 200);
  EXPECT_TRUE(body == content);

  // The signature is what grants access.
  std::string tampered = **url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  body.clear();
  EXPECT_EQ(HttpGet(tampered, &body), 403);
  body.clear();
  EXPECT_EQ(HttpGet(GetEnv().endpoint + "/" + GetEnv().bucket + "/" + PrefixFor(scratch_) +
                        BlobKey(digest),
                    &body),
            403);

  // Without redirect, bytes go through the node.
  auto none = Node().DownloadUrl(digest, 300);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(S3BlobStoreTest, CheckNamesWhatIsWrong) {
  EXPECT_TRUE(Node().Check().ok());

  S3BlobStoreOptions missing = Options();
  missing.config.bucket = "berth-missing-" + NewUploadId().substr(0, 12);
  auto store = OpenS3BlobStore(missing);
  ASSERT_TRUE(store.ok());
  Status st = (*store)->Check();
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find(missing.config.bucket), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(GetEnv().endpoint), std::string::npos) << st.ToString();

  S3BlobStoreOptions refused = Options();
  refused.credentials.secret_access_key = "not-the-secret";
  store = OpenS3BlobStore(refused);
  ASSERT_TRUE(store.ok());
  st = (*store)->Check();
  EXPECT_EQ(st.code(), Code::kUnauthorized) << st.ToString();
  EXPECT_NE(st.message().find("credentials refused"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(GetEnv().endpoint), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(GetEnv().bucket), std::string::npos) << st.ToString();

  S3BlobStoreOptions unknown_key = Options();
  unknown_key.credentials.access_key_id = "BERTHNOSUCHKEY000000";
  store = OpenS3BlobStore(unknown_key);
  ASSERT_TRUE(store.ok());
  st = (*store)->Check();
  EXPECT_EQ(st.code(), Code::kUnauthorized) << st.ToString();

  // Nothing listens on port 1.
  S3BlobStoreOptions unreachable = Options();
  unreachable.config.endpoint = "http://127.0.0.1:1";
  unreachable.config.max_retries = 0;
  store = OpenS3BlobStore(unreachable);
  ASSERT_TRUE(store.ok());
  st = (*store)->Check();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("127.0.0.1:1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find(GetEnv().bucket), std::string::npos) << st.ToString();
  // An outage is kUnavailable everywhere, never "blob unknown".
  EXPECT_EQ((*store)->Stat(oci::Digest::Of("x")).status().code(), Code::kUnavailable);
  EXPECT_EQ((*store)->AppendUpload(NewUploadId(), UploadCursor{}).status().code(),
            Code::kUnavailable);
}

// Uploads the store holds anything for are listed, also one whose marker a crash
// removed, and DeleteUpload without a cursor removes all of it.
TEST_F(S3BlobStoreTest, OrphanedUploadObjectsAreListedAndDeleted) {
  BlobStore& store = Node();
  std::string id = NewUploadId();
  auto cursor = store.CreateUpload(id);
  ASSERT_TRUE(cursor.ok());
  cursor = Append(store, id, *cursor, Pattern(kPartSize + 100, 8), 1 << 20);
  ASSERT_TRUE(cursor.ok());
  auto raw = RawClient();
  ASSERT_TRUE(raw->DeleteObject(UploadKey(id)).ok());  // the marker
  auto listed = store.ListUploads("", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{id});
  ASSERT_TRUE(store.DeleteUpload(id, std::nullopt).ok());
  listed = store.ListUploads("", 10);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  auto mpus = raw->ListMultipartUploads("");
  ASSERT_TRUE(mpus.ok());
  EXPECT_TRUE(mpus->uploads.empty());
  s3::ListObjectsRequest req;
  auto objects = raw->ListObjectsV2(req);
  ASSERT_TRUE(objects.ok());
  EXPECT_TRUE(objects->objects.empty());
}

TEST_F(S3BlobStoreTest, CursorsAreCheckedAgainstTheStore) {
  BlobStore& store = Node();
  std::string id = NewUploadId();
  auto c0 = store.CreateUpload(id);
  ASSERT_TRUE(c0.ok());
  // More bytes than the store holds.
  EXPECT_EQ(store.AppendUpload(id, UploadCursor{10, ""}).status().code(), Code::kRangeInvalid);
  EXPECT_EQ(store.AppendUpload(id, UploadCursor{0, "what?"}).status().code(), Code::kCorruption);
  auto c1 = Append(store, id, *c0, "abc", 3);
  ASSERT_TRUE(c1.ok());
  UploadCursor longer = *c1;
  longer.size += 1;
  EXPECT_FALSE(store.AppendUpload(id, longer).ok());
  // The tail gone (damaged store): the append says so.
  auto raw = RawClient();
  s3::ListObjectsRequest req;
  req.prefix = UploadObjectsPrefix(id);
  auto objects = raw->ListObjectsV2(req);
  ASSERT_TRUE(objects.ok());
  for (const auto& o : objects->objects) ASSERT_TRUE(raw->DeleteObject(o.key).ok());
  EXPECT_EQ(store.AppendUpload(id, *c1).status().code(), Code::kRangeInvalid);
  EXPECT_EQ(store.CommitUpload(id, *c1, oci::Digest::Of("abc")).code(), Code::kRangeInvalid);
}

TEST(S3BlobStoreOptionsTest, RefusesPartSizesS3CannotUse) {
  S3BlobStoreOptions o;
  o.config.endpoint = "http://127.0.0.1:9";
  o.config.bucket = "b";
  o.credentials = {"k", "s", "", "test"};
  o.part_size = 4 * kMiB;
  EXPECT_EQ(OpenS3BlobStore(o).status().code(), Code::kInvalidArgument);
  o.part_size = 8 * kMiB;
  EXPECT_TRUE(OpenS3BlobStore(o).ok());
}

}  // namespace
}  // namespace berth::storage
