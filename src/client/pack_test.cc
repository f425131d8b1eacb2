#include "client/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "client/json_util.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;

fs::path Fresh(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("berth-pack-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void Write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

// Builds the same tree in two directories with different creation orders and mtimes.
void MakeTree(const fs::path& root, bool reverse) {
  std::vector<std::pair<std::string, std::string>> files = {
      {"bin/app", "#!/bin/sh\necho hi\n"}, {"etc/conf", "x=1\n"}, {"a/b/c/d.txt", "deep"}};
  if (reverse) std::reverse(files.begin(), files.end());
  for (const auto& [p, s] : files) Write(root / p, s);
  fs::permissions(root / "bin/app", fs::perms(0755));
  fs::create_symlink("app", root / "bin/link");
  if (reverse) {
    // Different mtimes must not matter.
    struct timespec ts[2] = {{12345, 0}, {12345, 0}};
    utimensat(AT_FDCWD, (root / "etc/conf").c_str(), ts, 0);
  }
}

PackOptions Options(const fs::path& dir) {
  PackOptions o;
  o.dir = dir;
  o.platform = oci::Platform{"linux", "arm64", "v8", {}, {}};
  o.entrypoint = {"/bin/app"};
  o.env = {"A=1"};
  return o;
}

TEST(Pack, SameInputSameDigests) {
  fs::path a = Fresh("a");
  fs::path b = Fresh("b");
  MakeTree(a, false);
  MakeTree(b, true);
  auto x = PackDirectory(Options(a), Fresh("wa"));
  auto y = PackDirectory(Options(b), Fresh("wb"));
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(x->layer_digest, y->layer_digest);
  EXPECT_EQ(x->diff_id, y->diff_id);
  EXPECT_EQ(x->config_digest, y->config_digest);
  EXPECT_EQ(x->manifest.digest, y->manifest.digest);

  PackOptions other = Options(a);
  other.mtime = 1700000000;
  auto z = PackDirectory(other, Fresh("wc"));
  ASSERT_TRUE(z.ok());
  EXPECT_NE(z->layer_digest, x->layer_digest);
}

TEST(Pack, LayerIsSortedWithFixedOwnership) {
  fs::path a = Fresh("sorted");
  MakeTree(a, true);
  auto img = PackDirectory(Options(a), Fresh("ws"));
  ASSERT_TRUE(img.ok());
  archive* r = archive_read_new();
  archive_read_support_filter_gzip(r);
  archive_read_support_format_tar(r);
  ASSERT_EQ(archive_read_open_filename(r, img->layer_path.c_str(), 1 << 16), ARCHIVE_OK);
  std::vector<std::string> names;
  archive_entry* e;
  while (archive_read_next_header(r, &e) == ARCHIVE_OK) {
    names.emplace_back(archive_entry_pathname(e));
    EXPECT_EQ(archive_entry_uid(e), 0);
    EXPECT_EQ(archive_entry_gid(e), 0);
    EXPECT_EQ(archive_entry_mtime(e), 0);
    if (names.back() == "bin/app") {
      EXPECT_EQ(archive_entry_perm(e), 0755);
    }
    if (names.back() == "bin/link") {
      EXPECT_STREQ(archive_entry_symlink(e), "app");
    }
  }
  archive_read_free(r);
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(names, sorted);
  EXPECT_EQ(names.size(), 9u);  // a/ a/b/ a/b/c/ a/b/c/d.txt bin/ bin/app bin/link etc/ etc/conf
  // gzip header: no mtime (bytes 4..7 are zero).
  std::ifstream in(img->layer_path, std::ios::binary);
  char h[8];
  in.read(h, 8);
  EXPECT_EQ(static_cast<unsigned char>(h[0]), 0x1f);
  EXPECT_EQ(h[4] | h[5] | h[6] | h[7], 0);
}

TEST(Pack, ConfigCarriesPlatformEntrypointEnv) {
  fs::path a = Fresh("cfg");
  MakeTree(a, false);
  auto img = PackDirectory(Options(a), Fresh("wcfg"));
  ASSERT_TRUE(img.ok());
  auto v = ParseJson(img->config, "config");
  ASSERT_TRUE(v.ok());
  const auto& o = v->as_object();
  EXPECT_EQ(JsonString(o, "architecture"), "arm64");
  EXPECT_EQ(JsonString(o, "variant"), "v8");
  EXPECT_EQ(JsonString(o, "created"), "1970-01-01T00:00:00Z");
  const auto* c = JsonObject(o, "config");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->at("Entrypoint").as_array().at(0).as_string(), "/bin/app");
  EXPECT_EQ(c->at("Env").as_array().size(), 2u);  // default PATH + A=1
  EXPECT_EQ(o.at("rootfs").at("diff_ids").as_array().at(0).as_string(), img->diff_id.str());
}

TEST(Pack, RejectsBadInput) {
  PackOptions o = Options("/nonexistent/berth");
  EXPECT_EQ(PackDirectory(o, Fresh("wbad")).status().code(), Code::kInvalidArgument);
  o.dir = Fresh("envbad");
  o.env = {"NOEQUALS"};
  EXPECT_EQ(PackDirectory(o, Fresh("wbad2")).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace berth::client
