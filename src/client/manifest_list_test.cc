#include "client/manifest_list.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>

#include "client/json_util.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

ListEntry Entry(std::string_view mt, std::string arch, std::string variant, std::string raw) {
  ListEntry e;
  e.ref = "127.0.0.1:5999/demo:" + arch;
  e.descriptor.media_type = std::string(mt);
  e.raw = std::move(raw);
  e.descriptor.digest = oci::Digest::Of(e.raw);
  e.descriptor.size = static_cast<int64_t>(e.raw.size());
  e.descriptor.platform = oci::Platform{"linux", std::move(arch), std::move(variant), {}, {}};
  return e;
}

TEST(BuildListJson, DockerBytesAndMediaTypeRule) {
  std::vector<ListEntry> es = {Entry(oci::kDockerManifest, "amd64", "", R"({"a":1})"),
                               Entry(oci::kDockerManifest, "arm64", "v8", R"({"b":2})")};
  std::string mt;
  std::string json = BuildListJson(es, "", &mt);
  EXPECT_EQ(mt, oci::kDockerManifestList);
  // docker CLI: json.MarshalIndent(list, "", "   "), no trailing newline.
  std::string want = "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" +
                     std::string(oci::kDockerManifestList) +
                     "\",\n   \"manifests\": [\n      {\n         \"mediaType\": \"" +
                     std::string(oci::kDockerManifest) + "\",\n         \"size\": 7,\n" +
                     "         \"digest\": \"" + es[0].descriptor.digest.str() +
                     "\",\n         \"platform\": {\n            \"architecture\": \"amd64\",\n"
                     "            \"os\": \"linux\"\n         }\n      },\n";
  EXPECT_EQ(json.substr(0, want.size()), want);
  EXPECT_NE(json.back(), '\n');
  es.push_back(Entry(oci::kOciManifest, "s390x", "", R"({"c":3})"));
  BuildListJson(es, "", &mt);
  EXPECT_EQ(mt, oci::kDockerManifestList);  // the first entry decides, as in docker
  std::rotate(es.begin(), es.end() - 1, es.end());
  BuildListJson(es, "", &mt);
  EXPECT_EQ(mt, oci::kOciIndex);
  BuildListJson(es, "docker", &mt);
  EXPECT_EQ(mt, oci::kDockerManifestList);
}

TEST(ListEntry, JsonRoundTrip) {
  ListEntry e = Entry(oci::kOciManifest, "arm64", "v8", R"({"schemaVersion":2})");
  e.format = "oci";
  e.copy_child = true;
  auto o = EntryToJson(e);
  EXPECT_TRUE(o.contains("OCIManifest"));
  auto back = EntryFromJson(o, "test");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->raw, e.raw);
  EXPECT_EQ(back->descriptor.digest, e.descriptor.digest);
  EXPECT_EQ(back->descriptor.platform->variant, "v8");
  EXPECT_EQ(back->format, "oci");
  EXPECT_TRUE(back->copy_child);
}

TEST(ManifestListStore, PutLoadRemove) {
  auto root = std::filesystem::temp_directory_path() /
              ("berth-lists-" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  ManifestListStore store(root);
  auto list = *ParseImageName("127.0.0.1:5999/demo:list");
  EXPECT_EQ(store.Load(list).status().code(), Code::kNotFound);
  EXPECT_EQ(store.Load(list).status().message(), "No such manifest: 127.0.0.1:5999/demo:list");
  ASSERT_TRUE(store.Put(list, *ParseImageName("127.0.0.1:5999/demo:b"),
                        Entry(oci::kDockerManifest, "b", "", "{}")).ok());
  ASSERT_TRUE(store.Put(list, *ParseImageName("127.0.0.1:5999/demo:a"),
                        Entry(oci::kDockerManifest, "a", "", "[]")).ok());
  EXPECT_TRUE(std::filesystem::exists(root / "127.0.0.1-5999_demo-list" / "127.0.0.1-5999_demo-a"));
  auto es = store.Load(list);
  ASSERT_TRUE(es.ok());
  ASSERT_EQ(es->size(), 2u);
  EXPECT_EQ((*es)[0].descriptor.platform->architecture, "a");  // file-name order
  EXPECT_FALSE(store.EntryFile(list, *ParseImageName("127.0.0.1:5999/demo:zz")).ok());
  EXPECT_TRUE(store.Remove(list).ok());
  EXPECT_FALSE(store.Exists(list));
  std::filesystem::remove_all(root);
}

TEST(GoJson, EscapesLikeGo) {
  boost::json::object o;
  o["k"] = "<a&b>\n";
  EXPECT_EQ(GoJson(o), R"({"k":"\u003ca\u0026b\u003e\n"})");
  EXPECT_EQ(GoJson(o, "\t"), "{\n\t\"k\": \"\\u003ca\\u0026b\\u003e\\n\"\n}");
  EXPECT_EQ(GoJson(boost::json::array{}), "[]");
}

}  // namespace
}  // namespace berth::client
