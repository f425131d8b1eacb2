#include "auth/shared_documents.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "auth/crypto.h"
#include "auth/shared_documents_testing.h"

namespace berth::auth {
namespace {

constexpr int64_t kNowMs = 1714979289000;

// The shape of storage::MetadataStore's settings, without storage/.
class FakeSettings {
 public:
  Result<std::string> GetSetting(std::string_view name) {
    if (fail) return Status::Unavailable("database down");
    auto it = values.find(std::string(name));
    if (it == values.end()) return Status::NotFound("no setting");
    return it->second;
  }
  Status SwapSetting(std::string_view name, const std::optional<std::string>& expected,
                     std::string_view value) {
    auto it = values.find(std::string(name));
    std::optional<std::string> current;
    if (it != values.end()) current = it->second;
    if (current != expected) return Status(Code::kAborted, "changed");
    values[std::string(name)] = std::string(value);
    return Status::Ok();
  }
  std::map<std::string, std::string> values;
  bool fail = false;
};

TEST(MemorySharedDocuments, CompareAndSet) {
  MemorySharedDocuments docs;
  EXPECT_FALSE(docs.Get("a")->has_value());
  ASSERT_TRUE(docs.Swap("a", std::nullopt, std::string("v1\0\xff", 4)).ok());
  EXPECT_EQ(**docs.Get("a"), std::string("v1\0\xff", 4));
  EXPECT_TRUE(docs.Swap("a", std::nullopt, "v2").Is(Code::kAborted));
  EXPECT_TRUE(docs.Swap("a", std::string("v1"), "v2").Is(Code::kAborted));
  ASSERT_TRUE(docs.Swap("a", std::string("v1\0\xff", 4), "v2").ok());
  EXPECT_EQ(**docs.Get("a"), "v2");
  EXPECT_TRUE(docs.Swap("b", std::string("v2"), "x").Is(Code::kAborted));
  EXPECT_FALSE(docs.Get("b")->has_value());
}

TEST(SettingsDocuments, AdaptsGetSettingAndSwapSetting) {
  FakeSettings settings;
  SettingsDocuments<FakeSettings> docs(settings);
  EXPECT_FALSE(docs.Get("k")->has_value());  // kNotFound is "absent", not an error
  ASSERT_TRUE(docs.Swap("k", std::nullopt, "one").ok());
  EXPECT_EQ(**docs.Get("k"), "one");
  EXPECT_TRUE(docs.Swap("k", std::nullopt, "two").Is(Code::kAborted));
  settings.fail = true;
  EXPECT_TRUE(docs.Get("k").status().Is(Code::kUnavailable));
}

TEST(UpdateSharedDocument, ConcurrentIncrementsLoseNone) {
  MemorySharedDocuments docs;
  constexpr int kThreads = 8, kEach = 25;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        auto r = UpdateSharedDocument(
            docs, "counter", 1000,
            [](const std::optional<std::string>& cur) -> Result<std::optional<std::string>> {
              int n = cur.has_value() ? std::stoi(*cur) : 0;
              return std::optional<std::string>(std::to_string(n + 1));
            });
        EXPECT_TRUE(r.ok()) << r.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(**docs.Get("counter"), std::to_string(kThreads * kEach));
}

TEST(UpdateSharedDocument, LeavesUnchangedReportsErrorsAndGivesUp) {
  MemorySharedDocuments docs;
  ASSERT_TRUE(docs.Swap("d", std::nullopt, "v").ok());
  auto keep = UpdateSharedDocument(
      docs, "d", 5, [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
        return std::optional<std::string>();
      });
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(**keep, "v");

  auto refuse = UpdateSharedDocument(
      docs, "d", 5, [](const std::optional<std::string>&) -> Result<std::optional<std::string>> {
        return Status::InvalidArgument("no");
      });
  EXPECT_TRUE(refuse.status().Is(Code::kInvalidArgument));

  // Someone else changes the document between every read and swap.
  int calls = 0;
  auto starved = UpdateSharedDocument(
      docs, "d", 3,
      [&](const std::optional<std::string>& cur) -> Result<std::optional<std::string>> {
        ++calls;
        EXPECT_TRUE(docs.Swap("d", cur, *cur + "!").ok());
        return std::optional<std::string>("mine");
      });
  EXPECT_TRUE(starved.status().Is(Code::kAborted));
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(**docs.Get("d"), "v!!!");
}

TEST(SharedSecret, OneSecretForEveryCaller) {
  MemorySharedDocuments docs;
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      auto s = SharedSecret(docs, kDownloadUrlSecretName, 32);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      got[t] = *s;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 1u);
  EXPECT_EQ(got[0].size(), 32u);
  EXPECT_EQ(**docs.Get(kDownloadUrlSecretName), HexEncode(got[0]));  // stored as hex
  EXPECT_EQ(*SharedSecret(docs, kDownloadUrlSecretName, 32), got[0]);
  EXPECT_NE(*SharedSecret(docs, "other", 32), got[0]);
}

TEST(SharedSecret, RefusesACorruptValueAndZeroBytes) {
  MemorySharedDocuments docs;
  ASSERT_TRUE(docs.Swap("s", std::nullopt, "not hex").ok());
  EXPECT_TRUE(SharedSecret(docs, "s", 32).status().Is(Code::kCorruption));
  EXPECT_TRUE(SharedSecret(docs, "t", 0).status().Is(Code::kInvalidArgument));
}

Result<std::shared_ptr<const std::string>> ParseUpper(const std::optional<std::string>& text) {
  if (text.has_value() && *text == "bad") return Status::InvalidArgument("bad");
  std::string v = text.value_or("<absent>");
  for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return std::make_shared<const std::string>(std::move(v));
}

TEST(SharedDocumentCache, ReReadsWhenOldAndKeepsTheLastGoodValue) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  ManualClock clock(kNowMs);
  SharedDocumentCache<std::string> cache(docs, "doc", clock, ParseUpper);
  ASSERT_TRUE(cache.Load().ok());
  EXPECT_EQ(*cache.Get(1000), "<ABSENT>");
  ASSERT_TRUE(mem.Swap("doc", std::nullopt, "v1").ok());
  clock.Advance(999);
  EXPECT_EQ(*cache.Get(1000), "<ABSENT>");
  EXPECT_EQ(docs.gets(), 1);
  clock.Advance(1);
  auto v1 = cache.Get(1000);
  EXPECT_EQ(*v1, "V1");
  EXPECT_EQ(docs.gets(), 2);

  // Same text: the same object, not a re-parse.
  clock.Advance(1000);
  EXPECT_EQ(cache.Get(1000), v1);

  // A document that stops parsing, or a store that fails: the last good value stays.
  ASSERT_TRUE(mem.Swap("doc", std::string("v1"), "bad").ok());
  clock.Advance(1000);
  EXPECT_EQ(*cache.Get(1000), "V1");
  docs.set_fail(true);
  clock.Advance(1000);
  EXPECT_EQ(*cache.Get(1000), "V1");
  docs.set_fail(false);
  ASSERT_TRUE(mem.Swap("doc", std::string("bad"), "v2").ok());
  clock.Advance(1000);
  EXPECT_EQ(*cache.Get(1000), "V2");
}

TEST(SharedDocumentCache, AReadInFlightDoesNotUndoThisNodesWrite) {
  MemorySharedDocuments mem;
  CountingDocuments docs(mem);
  ManualClock clock(kNowMs);
  SharedDocumentCache<std::string> cache(docs, "doc", clock, ParseUpper);
  ASSERT_TRUE(cache.Load().ok());
  clock.Advance(1000);
  // While the refresh reads (the old, absent document), this node writes and installs.
  docs.OnNextGet([&] {
    ASSERT_TRUE(mem.Swap("doc", std::nullopt, "mine").ok());
    cache.Install("mine", std::make_shared<const std::string>("MINE"));
  });
  EXPECT_EQ(*cache.Get(1000), "MINE");
  EXPECT_EQ(*cache.Get(1000), "MINE");
}

}  // namespace
}  // namespace berth::auth
