#include "storage/meta/metadata_store_conformance.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "oci/digest.h"
#include "storage/keys.h"

namespace berth::storage::testing {

void MetadataStoreConformance::SetUp() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "berth-meta-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  scratch_ = tmpl;
  auto store = GetParam().open(scratch_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  store_ = std::move(store).value();
}

void MetadataStoreConformance::TearDown() {
  store_.reset();
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
}

namespace {

using Strings = std::vector<std::string>;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr std::string_view kImageType = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kIndexType = "application/vnd.oci.image.index.v1+json";

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

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    const Status _st = StatusOf(expr);                          \
    ASSERT_TRUE(_st.ok()) << #expr << " -> " << _st.ToString(); \
  } while (0)

oci::Digest D(std::string_view content) { return oci::Digest::Of(content); }

// ECR's untagging: the image goes with its last tag.
const RemoveTagOptions kUntagDeletesImage{.delete_untagged_manifest = true};

// Moves an upload to `offset` as a writer does: lease, compare-and-set, release.
Status AdvanceTo(MetadataStore& s, std::string_view id, uint64_t offset, int64_t now) {
  BERTH_ASSIGN_OR_RETURN(UploadRecord u, s.LeaseUpload(id, "advance-to", now, 60'000));
  UploadProgress p;
  p.offset = offset;
  p.updated_at_ms = now;
  return s.AdvanceUpload(id, "advance-to", u.offset, p);
}

std::vector<oci::Digest> Sorted(std::vector<oci::Digest> v) {
  std::sort(v.begin(), v.end());
  return v;
}

ManifestRecord Image(std::string_view repo, std::string bytes, std::vector<oci::Digest> blobs) {
  ManifestRecord m;
  m.repository = std::string(repo);
  m.digest = D(bytes);
  m.media_type = std::string(kImageType);
  m.size = static_cast<int64_t>(bytes.size());
  m.bytes = std::move(bytes);
  m.pushed_at_ms = kT0;
  m.annotations_json = "{}";
  m.blob_refs = std::move(blobs);
  return m;
}

ManifestRecord Index(std::string_view repo, std::string bytes, std::vector<oci::Digest> children) {
  ManifestRecord m = Image(repo, std::move(bytes), {});
  m.media_type = std::string(kIndexType);
  m.child_refs = std::move(children);
  return m;
}

ManifestRecord Referrer(std::string_view repo, std::string bytes, const oci::Digest& subject,
                        std::string artifact_type) {
  ManifestRecord m = Image(repo, std::move(bytes), {});
  m.subject = subject;
  m.artifact_type = std::move(artifact_type);
  return m;
}

}  // namespace

// Helpers that need the fixture.
#define REPO(name) ASSERT_OK(store().CreateRepository({name, kT0}))

namespace {

// Records `content` as a committed blob linked into `repo`.
oci::Digest AddBlob(MetadataStore& s, std::string_view repo, std::string_view content) {
  BlobRecord b{D(content), content.size(), kT0};
  Status st = s.CommitBlob(repo, b, "");
  EXPECT_TRUE(st.ok()) << st.ToString();
  return b.digest;
}

// Pushes a one-layer image into `repo` (blobs first, as the registry does).
ManifestRecord PushImage(MetadataStore& s, std::string_view repo, std::string_view name,
                         std::string_view tag) {
  oci::Digest config = AddBlob(s, repo, std::string("config of ") + std::string(name));
  oci::Digest layer = AddBlob(s, repo, std::string("layer of ") + std::string(name));
  ManifestRecord m = Image(repo, "{\"image\":\"" + std::string(name) + "\"}", {config, layer});
  Status st = s.PutManifest(m, tag).status();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return m;
}

UploadRecord Upload(std::string id, std::string repo, uint64_t offset, int64_t updated) {
  return UploadRecord{std::move(id), std::move(repo), offset, updated - 10, updated};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Health and repositories.

TEST_P(MetadataStoreConformance, Check) { EXPECT_TRUE(store().Check().ok()); }

TEST_P(MetadataStoreConformance, CreateAndGetRepository) {
  ASSERT_OK(store().CreateRepository({"library/ubuntu", kT0 + 5}));
  auto repo = store().GetRepository("library/ubuntu");
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  EXPECT_EQ(repo->name, "library/ubuntu");
  EXPECT_EQ(repo->created_at_ms, kT0 + 5);
  EXPECT_CODE(store().CreateRepository({"library/ubuntu", kT0}), Code::kAlreadyExists);
  // The first creation time stays.
  EXPECT_EQ(store().GetRepository("library/ubuntu")->created_at_ms, kT0 + 5);
}

TEST_P(MetadataStoreConformance, MissingRepositoryIsNameUnknown) {
  auto repo = store().GetRepository("nope/missing");
  EXPECT_CODE(repo, Code::kNameUnknown);
  EXPECT_NE(repo.status().message().find("nope/missing"), std::string::npos);
  oci::Digest d = D("x");
  EXPECT_CODE(store().DeleteRepository("nope/missing", false), Code::kNameUnknown);
  EXPECT_CODE(store().DeleteRepository("nope/missing", true), Code::kNameUnknown);
  EXPECT_CODE(store().CommitBlob("nope/missing", {d, 1, kT0}, ""), Code::kNameUnknown);
  EXPECT_CODE(store().GetLinkedBlob("nope/missing", d), Code::kNameUnknown);
  EXPECT_CODE(store().LinkBlob("nope/missing", d), Code::kNameUnknown);
  EXPECT_CODE(store().UnlinkBlob("nope/missing", d), Code::kNameUnknown);
  EXPECT_CODE(store().ListLinkedBlobs("nope/missing", "", 10), Code::kNameUnknown);
  EXPECT_CODE(store().PutManifest(Image("nope/missing", "{}", {}), "latest"), Code::kNameUnknown);
  EXPECT_CODE(store().GetManifest("nope/missing", d), Code::kNameUnknown);
  EXPECT_CODE(store().GetManifestByTag("nope/missing", "latest"), Code::kNameUnknown);
  EXPECT_CODE(store().ListTags("nope/missing", "", 10), Code::kNameUnknown);
  EXPECT_CODE(store().TagsOf("nope/missing", d, "", 1000), Code::kNameUnknown);
  EXPECT_CODE(store().DeleteTag("nope/missing", "latest"), Code::kNameUnknown);
  EXPECT_CODE(store().DeleteManifest("nope/missing", d), Code::kNameUnknown);
  EXPECT_CODE(store().ListReferrers("nope/missing", d, "", "", 1000), Code::kNameUnknown);
  EXPECT_CODE(store().CreateUpload(Upload(NewUploadId(), "nope/missing", 0, kT0)),
              Code::kNameUnknown);
  auto put = store().PutManifest(Image("nope/missing", "{}", {}), "");
  EXPECT_EQ(put.status().message(), "repository nope/missing not found");
  // The ECR attributes and views too.
  EXPECT_CODE(store().SetTagMutability("nope/missing", {TagMutability::kImmutable, {}}),
              Code::kNameUnknown);
  EXPECT_CODE(store().SetRepositoryPolicy("nope/missing", "{}"), Code::kNameUnknown);
  EXPECT_CODE(store().DeleteRepositoryPolicy("nope/missing"), Code::kNameUnknown);
  EXPECT_CODE(store().UpdateRepositoryTags("nope/missing", {{"k", "v"}}, {}, 50),
              Code::kNameUnknown);
  EXPECT_CODE(store().RemoveTag("nope/missing", "latest", kUntagDeletesImage), Code::kNameUnknown);
  EXPECT_CODE(store().ListImages("nope/missing", TagFilter::kAny, "", 10), Code::kNameUnknown);
  EXPECT_CODE(store().GetImage("nope/missing", d), Code::kNameUnknown);
  // Recording a pull of something gone is not an error.
  ASSERT_OK(store().RecordPulls({{"nope/missing", d, kT0}}));
}

TEST_P(MetadataStoreConformance, ListRepositoriesSortedAndPaginatedByName) {
  for (const char* name : {"c", "a/b", "b", "a", "a/a", "d-e", "d"}) {
    ASSERT_OK(store().CreateRepository({name, kT0}));
  }
  auto all = store().ListRepositories("", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (Strings{"a", "a/a", "a/b", "b", "c", "d", "d-e"}));

  auto page = store().ListRepositories("", 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (Strings{"a", "a/a", "a/b"}));
  page = store().ListRepositories("a/b", 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (Strings{"b", "c", "d"}));
  page = store().ListRepositories("d", 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (Strings{"d-e"}));
  page = store().ListRepositories("d-e", 3);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->empty());
  // `after` need not be an existing name.
  page = store().ListRepositories("a/c", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (Strings{"b", "c"}));
  page = store().ListRepositories("", 0);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->empty());
}

TEST_P(MetadataStoreConformance, ListRepositoriesEmpty) {
  auto page = store().ListRepositories("", 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->empty());
}

TEST_P(MetadataStoreConformance, DeleteEmptyRepository) {
  REPO("empty");
  ASSERT_OK(store().CreateRepository({"other", kT0}));
  ASSERT_OK(store().DeleteRepository("empty", false));
  EXPECT_CODE(store().GetRepository("empty"), Code::kNameUnknown);
  EXPECT_CODE(store().DeleteRepository("empty", false), Code::kNameUnknown);
  EXPECT_EQ(*store().ListRepositories("", 10), (Strings{"other"}));
}

TEST_P(MetadataStoreConformance, DeleteRepositoryWithManifestsNeedsForce) {
  REPO("app");
  REPO("keep");
  ManifestRecord m = PushImage(store(), "app", "one", "latest");
  PushImage(store(), "keep", "one", "latest");  // same manifest in another repository
  std::string upload = NewUploadId();
  ASSERT_OK(store().CreateUpload(Upload(upload, "app", 0, kT0)));

  EXPECT_CODE(store().DeleteRepository("app", false), Code::kFailedPrecondition);
  // Nothing was removed.
  EXPECT_TRUE(store().GetManifestByTag("app", "latest").ok());
  EXPECT_TRUE(store().GetUpload(upload).ok());

  ASSERT_OK(store().DeleteRepository("app", true));
  EXPECT_CODE(store().GetRepository("app"), Code::kNameUnknown);
  EXPECT_CODE(store().GetUpload(upload), Code::kUploadUnknown);
  auto stale = store().ListStaleUploads(kT0 + 1'000'000, 10);
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->empty());

  // A new repository with the same name starts empty: no manifests, tags, links.
  REPO("app");
  EXPECT_CODE(store().GetManifest("app", m.digest), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "latest"), Code::kManifestUnknown);
  EXPECT_TRUE(store().ListTags("app", "", 10)->empty());
  EXPECT_CODE(store().GetLinkedBlob("app", m.blob_refs[0]), Code::kBlobUnknown);

  // The other repository is untouched; blob records are global and stay.
  auto kept = store().GetManifestByTag("keep", "latest");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->digest, m.digest);
  EXPECT_TRUE(store().GetLinkedBlob("keep", m.blob_refs[0]).ok());
  EXPECT_TRUE(store().GetBlob(m.blob_refs[0]).ok());
}

TEST_P(MetadataStoreConformance, DeleteRepositoryWithoutManifestsDropsLinksAndUploads) {
  REPO("links-only");
  oci::Digest blob = AddBlob(store(), "links-only", "some layer");
  std::string upload = NewUploadId();
  ASSERT_OK(store().CreateUpload(Upload(upload, "links-only", 0, kT0)));
  ASSERT_OK(store().DeleteRepository("links-only", false));
  EXPECT_CODE(store().GetUpload(upload), Code::kUploadUnknown);
  REPO("links-only");
  EXPECT_CODE(store().GetLinkedBlob("links-only", blob), Code::kBlobUnknown);
  EXPECT_TRUE(store().GetBlob(blob).ok());
}

// ---------------------------------------------------------------------------------------
// Repository attributes (the ECR control plane).

TEST_P(MetadataStoreConformance, NewRepositoryHasDefaultAttributes) {
  REPO("plain");
  auto repo = store().GetRepository("plain");
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  EXPECT_EQ(repo->account_id, "");
  EXPECT_EQ(repo->tag_mutability, (TagMutabilitySetting{TagMutability::kMutable, {}}));
  EXPECT_FALSE(repo->scan_on_push);
  EXPECT_EQ(repo->encryption_type, "AES256");
  EXPECT_EQ(repo->kms_key, "");
  EXPECT_TRUE(repo->tags.empty());
  EXPECT_FALSE(repo->policy.has_value());
}

TEST_P(MetadataStoreConformance, CreateRepositoryStoresEveryAttribute) {
  RepositoryRecord r;
  r.name = "team/app";
  r.created_at_ms = kT0 + 7;
  r.account_id = "123456789012";
  r.tag_mutability = {TagMutability::kImmutableWithExclusion, {"latest", "dev-*"}};
  r.scan_on_push = true;
  r.encryption_type = "KMS";
  r.kms_key = "arn:aws:kms:us-east-1:123456789012:key/abc";
  r.tags = {{"env", "prod"}, {"team", "a b"}, {"empty", ""}};
  r.policy = R"({"Version":"2012-10-17","Statement":[]})";
  ASSERT_OK(store().CreateRepository(r));
  auto got = store().GetRepository("team/app");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->name, r.name);
  EXPECT_EQ(got->created_at_ms, kT0 + 7);
  EXPECT_EQ(got->account_id, r.account_id);
  EXPECT_EQ(got->tag_mutability, r.tag_mutability);
  EXPECT_TRUE(got->scan_on_push);
  EXPECT_EQ(got->encryption_type, "KMS");
  EXPECT_EQ(got->kms_key, r.kms_key);
  // Tags come back sorted by key.
  EXPECT_EQ(got->tags, (std::vector<ResourceTag>{{"empty", ""}, {"env", "prod"}, {"team", "a b"}}));
  EXPECT_EQ(got->policy, r.policy);
  // A failed creation (name taken) stores none of its attributes.
  RepositoryRecord again = r;
  again.account_id = "999999999999";
  again.tags = {{"x", "y"}};
  EXPECT_CODE(store().CreateRepository(again), Code::kAlreadyExists);
  EXPECT_EQ(store().GetRepository("team/app")->account_id, r.account_id);
  EXPECT_EQ(store().GetRepository("team/app")->tags.size(), 3u);
}

TEST_P(MetadataStoreConformance, ListRepositoryRecordsPerAccountPaginatedByName) {
  for (const char* name : {"c", "a", "b/x", "b", "e"}) {
    RepositoryRecord r{name, kT0};
    r.account_id = "111111111111";
    r.tags = {{"name", name}};
    ASSERT_OK(store().CreateRepository(r));
  }
  RepositoryRecord other{"d", kT0};
  other.account_id = "222222222222";
  ASSERT_OK(store().CreateRepository(other));
  REPO("unowned");

  auto names = [](const Result<std::vector<RepositoryRecord>>& page) {
    Strings out;
    for (const auto& r : *page) out.push_back(r.name);
    return out;
  };
  auto all = store().ListRepositoryRecords("111111111111", "", 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(names(all), (Strings{"a", "b", "b/x", "c", "e"}));
  for (const auto& r : *all) {
    EXPECT_EQ(r.account_id, "111111111111");
    EXPECT_EQ(r.tags, (std::vector<ResourceTag>{{"name", r.name}})) << r.name;
  }
  auto page = store().ListRepositoryRecords("111111111111", "", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(names(page), (Strings{"a", "b"}));
  page = store().ListRepositoryRecords("111111111111", "b", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(names(page), (Strings{"b/x", "c"}));
  EXPECT_EQ((*page)[1].tags, (std::vector<ResourceTag>{{"name", "c"}}));
  page = store().ListRepositoryRecords("111111111111", "c", 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(names(page), (Strings{"e"}));
  EXPECT_TRUE(store().ListRepositoryRecords("111111111111", "e", 2)->empty());
  EXPECT_TRUE(store().ListRepositoryRecords("111111111111", "", 0)->empty());
  EXPECT_EQ(names(store().ListRepositoryRecords("222222222222", "", 10)), (Strings{"d"}));
  EXPECT_TRUE(store().ListRepositoryRecords("333333333333", "", 10)->empty());
  EXPECT_EQ(names(store().ListRepositoryRecords("", "", 10)), (Strings{"unowned"}));
}

TEST_P(MetadataStoreConformance, AssignUnownedRepositoriesOnlyTouchesThoseWithoutAccount) {
  REPO("old/one");
  REPO("old/two");
  RepositoryRecord owned{"owned", kT0};
  owned.account_id = "222222222222";
  ASSERT_OK(store().CreateRepository(owned));
  auto n = store().AssignUnownedRepositories("111111111111");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(store().GetRepository("old/one")->account_id, "111111111111");
  EXPECT_EQ(store().GetRepository("owned")->account_id, "222222222222");
  EXPECT_EQ(*store().AssignUnownedRepositories("333333333333"), 0u);
  EXPECT_EQ(store().ListRepositoryRecords("111111111111", "", 10)->size(), 2u);
}

TEST_P(MetadataStoreConformance, SetTagMutabilityReplacesTheSetting) {
  REPO("app");
  TagMutabilitySetting imm{TagMutability::kMutableWithExclusion, {"release-*", "v*.*"}};
  ASSERT_OK(store().SetTagMutability("app", imm));
  EXPECT_EQ(store().GetRepository("app")->tag_mutability, imm);
  ASSERT_OK(store().SetTagMutability("app", {TagMutability::kImmutable, {}}));
  EXPECT_EQ(store().GetRepository("app")->tag_mutability,
            (TagMutabilitySetting{TagMutability::kImmutable, {}}));
}

TEST_P(MetadataStoreConformance, RepositoryPolicySetReplaceDelete) {
  REPO("app");
  EXPECT_CODE(store().DeleteRepositoryPolicy("app"), Code::kNotFound);
  std::string p1 = R"({"Statement":[{"Effect":"Allow"}]})";
  std::string p2 = "{\n  \"Statement\": {\"Effect\": \"Deny\"}\n}\n";  // kept verbatim
  ASSERT_OK(store().SetRepositoryPolicy("app", p1));
  EXPECT_EQ(store().GetRepository("app")->policy, p1);
  ASSERT_OK(store().SetRepositoryPolicy("app", p2));
  EXPECT_EQ(store().GetRepository("app")->policy, p2);
  auto old = store().DeleteRepositoryPolicy("app");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(*old, p2);
  EXPECT_FALSE(store().GetRepository("app")->policy.has_value());
  EXPECT_CODE(store().DeleteRepositoryPolicy("app"), Code::kNotFound);
}

TEST_P(MetadataStoreConformance, UpdateRepositoryTagsSetsRemovesAndLimits) {
  REPO("app");
  ASSERT_OK(store().UpdateRepositoryTags("app", {{"b", "1"}, {"a", "2"}}, {}, 3));
  EXPECT_EQ(store().GetRepository("app")->tags, (std::vector<ResourceTag>{{"a", "2"}, {"b", "1"}}));
  // Replace a value, add one, remove one; unknown keys are ignored.
  ASSERT_OK(store().UpdateRepositoryTags("app", {{"a", "3"}, {"c", ""}}, {"b", "zzz"}, 3));
  EXPECT_EQ(store().GetRepository("app")->tags, (std::vector<ResourceTag>{{"a", "3"}, {"c", ""}}));
  // Over the limit: nothing changes.
  EXPECT_CODE(store().UpdateRepositoryTags("app", {{"d", "4"}, {"e", "5"}}, {}, 3),
              Code::kOutOfRange);
  EXPECT_EQ(store().GetRepository("app")->tags, (std::vector<ResourceTag>{{"a", "3"}, {"c", ""}}));
  // Removing makes room in the same call.
  ASSERT_OK(store().UpdateRepositoryTags("app", {{"d", "4"}, {"e", "5"}}, {"a"}, 3));
  EXPECT_EQ(store().GetRepository("app")->tags,
            (std::vector<ResourceTag>{{"c", ""}, {"d", "4"}, {"e", "5"}}));
}

TEST_P(MetadataStoreConformance, DeleteRepositoryDropsItsAttributes) {
  RepositoryRecord r{"app", kT0};
  r.account_id = "111111111111";
  r.tags = {{"k", "v"}};
  r.policy = "{\"Statement\":[]}";
  r.tag_mutability = {TagMutability::kImmutable, {}};
  ASSERT_OK(store().CreateRepository(r));
  ASSERT_OK(store().DeleteRepository("app", false));
  REPO("app");
  auto got = store().GetRepository("app");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->tags.empty());
  EXPECT_FALSE(got->policy.has_value());
  EXPECT_EQ(got->tag_mutability.mode, TagMutability::kMutable);
  EXPECT_EQ(got->account_id, "");
}

// ---------------------------------------------------------------------------------------
// Blobs and links.

TEST_P(MetadataStoreConformance, CommitBlobRecordsAndLinks) {
  REPO("a");
  oci::Digest d = D("layer");
  ASSERT_OK(store().CommitBlob("a", {d, 5, kT0 + 1}, ""));
  auto linked = store().GetLinkedBlob("a", d);
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  EXPECT_EQ(linked->digest, d);
  EXPECT_EQ(linked->size, 5u);
  EXPECT_EQ(linked->created_at_ms, kT0 + 1);
  auto global = store().GetBlob(d);
  ASSERT_TRUE(global.ok());
  EXPECT_EQ(global->size, 5u);
  // Committing again is harmless.
  ASSERT_OK(store().CommitBlob("a", {d, 5, kT0 + 2}, ""));
  EXPECT_EQ(store().GetLinkedBlob("a", d)->size, 5u);
}

TEST_P(MetadataStoreConformance, MissingBlobIsBlobUnknown) {
  REPO("a");
  oci::Digest d = D("never");
  auto linked = store().GetLinkedBlob("a", d);
  EXPECT_CODE(linked, Code::kBlobUnknown);
  EXPECT_CODE(store().GetBlob(d), Code::kBlobUnknown);
  EXPECT_CODE(store().LinkBlob("a", d), Code::kBlobUnknown);
  EXPECT_CODE(store().UnlinkBlob("a", d), Code::kBlobUnknown);
}

TEST_P(MetadataStoreConformance, LinksAreIsolatedBetweenRepositories) {
  REPO("a");
  REPO("b");
  oci::Digest d = AddBlob(store(), "a", "shared layer");
  EXPECT_TRUE(store().GetLinkedBlob("a", d).ok());
  EXPECT_CODE(store().GetLinkedBlob("b", d), Code::kBlobUnknown);
  // The registry holds it, though: it can be mounted.
  EXPECT_TRUE(store().GetBlob(d).ok());

  ASSERT_OK(store().LinkBlob("b", d));
  auto in_b = store().GetLinkedBlob("b", d);
  ASSERT_TRUE(in_b.ok());
  EXPECT_EQ(in_b->size, std::string_view("shared layer").size());
  ASSERT_OK(store().LinkBlob("b", d));  // idempotent

  ASSERT_OK(store().UnlinkBlob("a", d));
  EXPECT_CODE(store().GetLinkedBlob("a", d), Code::kBlobUnknown);
  EXPECT_TRUE(store().GetLinkedBlob("b", d).ok());
  EXPECT_TRUE(store().GetBlob(d).ok());
  EXPECT_CODE(store().UnlinkBlob("a", d), Code::kBlobUnknown);
}

TEST_P(MetadataStoreConformance, ListLinkedBlobsPagesByDigestPerRepository) {
  REPO("a");
  REPO("b");
  REPO("empty");
  std::vector<oci::Digest> in_a;
  for (int i = 0; i < 7; ++i) in_a.push_back(AddBlob(store(), "a", "blob " + std::to_string(i)));
  oci::Digest only_b = AddBlob(store(), "b", "only in b");
  std::sort(in_a.begin(), in_a.end(),
            [](const oci::Digest& x, const oci::Digest& y) { return x.str() < y.str(); });

  std::vector<oci::Digest> seen;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto got = store().ListLinkedBlobs("a", after, 3);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->empty()) break;
    EXPECT_LE(got->size(), 3u);
    for (const BlobRecord& b : *got) {
      EXPECT_EQ(b.created_at_ms, kT0);
      EXPECT_EQ(b.size, std::string_view("blob 0").size());
      seen.push_back(b.digest);
    }
    after = got->back().digest.str();
  }
  EXPECT_EQ(seen, in_a);

  auto b = store().ListLinkedBlobs("b", "", 100);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].digest, only_b);
  // Unlinking takes it out of the listing; the blob itself stays in the registry.
  ASSERT_OK(store().UnlinkBlob("b", only_b));
  b = store().ListLinkedBlobs("b", "", 100);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->empty());
  auto empty = store().ListLinkedBlobs("empty", "", 100);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_P(MetadataStoreConformance, CommitBlobDeletesTheUploadSession) {
  REPO("a");
  std::string id = NewUploadId();
  std::string other = NewUploadId();
  ASSERT_OK(store().CreateUpload(Upload(id, "a", 0, kT0)));
  ASSERT_OK(store().CreateUpload(Upload(other, "a", 0, kT0)));
  ASSERT_OK(AdvanceTo(store(), id, 4, kT0 + 1));
  ASSERT_OK(store().CommitBlob("a", {D("data"), 4, kT0}, id));
  EXPECT_CODE(store().GetUpload(id), Code::kUploadUnknown);
  EXPECT_TRUE(store().GetUpload(other).ok());
  EXPECT_TRUE(store().GetLinkedBlob("a", D("data")).ok());
}

TEST_P(MetadataStoreConformance, CommitBlobFailureChangesNothing) {
  std::string id = NewUploadId();
  REPO("a");
  ASSERT_OK(store().CreateUpload(Upload(id, "a", 0, kT0)));
  EXPECT_CODE(store().CommitBlob("missing", {D("data"), 4, kT0}, id), Code::kNameUnknown);
  EXPECT_TRUE(store().GetUpload(id).ok());
  EXPECT_CODE(store().GetBlob(D("data")), Code::kBlobUnknown);
}

// ---------------------------------------------------------------------------------------
// Manifests.

TEST_P(MetadataStoreConformance, PutAndGetManifestRoundTrip) {
  REPO("app");
  oci::Digest config = AddBlob(store(), "app", "config");
  oci::Digest l1 = AddBlob(store(), "app", "layer 1");
  oci::Digest l2 = AddBlob(store(), "app", "layer 2");
  // Exact bytes, including a NUL and non-UTF-8, must come back unchanged.
  static constexpr char kBytes[] = "{\"schemaVersion\":2}\n\0\xff\xfe trailing ";
  std::string bytes(kBytes, sizeof(kBytes) - 1);
  ManifestRecord m = Image("app", bytes, {l2, config, l1});
  m.artifact_type = "application/vnd.example+type";
  m.annotations_json = R"({"org.opencontainers.image.title":"x"})";
  m.pushed_at_ms = kT0 + 42;
  m.subject = D("some subject");
  ASSERT_OK(store().PutManifest(m, "v1"));

  for (auto got : {store().GetManifest("app", m.digest), store().GetManifestByTag("app", "v1")}) {
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->repository, "app");
    EXPECT_EQ(got->digest, m.digest);
    EXPECT_EQ(got->bytes, bytes);
    EXPECT_EQ(got->size, static_cast<int64_t>(bytes.size()));
    EXPECT_EQ(got->media_type, kImageType);
    EXPECT_EQ(got->artifact_type, m.artifact_type);
    EXPECT_EQ(got->annotations_json, m.annotations_json);
    EXPECT_EQ(got->pushed_at_ms, kT0 + 42);
    ASSERT_TRUE(got->subject.has_value());
    EXPECT_EQ(*got->subject, D("some subject"));
    // References come back sorted.
    EXPECT_EQ(got->blob_refs, Sorted({config, l1, l2}));
    EXPECT_TRUE(got->child_refs.empty());
  }
}

TEST_P(MetadataStoreConformance, PullReadsReturnWhatTheFullReadsDo) {
  REPO("app");
  oci::Digest layer = AddBlob(store(), "app", "layer");
  ManifestRecord m = Image("app", "{\"pull\":1}", {layer});
  m.subject = D("some subject");
  ASSERT_OK(store().PutManifest(m, "v1"));

  for (auto got : {store().GetManifestForPull("app", m.digest),
                   store().GetManifestByTagForPull("app", "v1")}) {
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->repository, "app");
    EXPECT_EQ(got->digest, m.digest);
    EXPECT_EQ(got->bytes, m.bytes);
    EXPECT_EQ(got->size, m.size);
    EXPECT_EQ(got->media_type, kImageType);
    EXPECT_EQ(got->pushed_at_ms, m.pushed_at_ms);
    EXPECT_EQ(got->subject, m.subject);
  }
  // The same errors as GetManifest and GetManifestByTag.
  EXPECT_CODE(store().GetManifestForPull("nope/missing", m.digest), Code::kNameUnknown);
  EXPECT_CODE(store().GetManifestByTagForPull("nope/missing", "v1"), Code::kNameUnknown);
  EXPECT_CODE(store().GetManifestForPull("app", D("nothing")), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTagForPull("app", "v2"), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, ManifestWithoutSubjectOrTag) {
  REPO("app");
  ManifestRecord m = Image("app", "{\"bare\":true}", {});
  ASSERT_OK(store().PutManifest(m, ""));
  auto got = store().GetManifest("app", m.digest);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->subject.has_value());
  EXPECT_EQ(got->artifact_type, "");
  EXPECT_EQ(got->annotations_json, "{}");
  EXPECT_TRUE(store().ListTags("app", "", 10)->empty());
  EXPECT_TRUE(store().TagsOf("app", m.digest, "", 1000)->empty());
}

TEST_P(MetadataStoreConformance, MissingManifestIsManifestUnknown) {
  REPO("app");
  EXPECT_CODE(store().GetManifest("app", D("nothing")), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "latest"), Code::kManifestUnknown);
  EXPECT_CODE(store().DeleteManifest("app", D("nothing")), Code::kManifestUnknown);
  EXPECT_CODE(store().DeleteTag("app", "latest"), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, PutManifestWithUnlinkedBlobFails) {
  REPO("app");
  REPO("other");
  oci::Digest config = AddBlob(store(), "app", "config");
  oci::Digest elsewhere = AddBlob(store(), "other", "layer only in other");
  oci::Digest nowhere = D("layer nowhere");
  for (const oci::Digest& missing : {elsewhere, nowhere}) {
    ManifestRecord m = Image("app", "{\"layer\":\"" + missing.str() + "\"}", {config, missing});
    Status st = store().PutManifest(m, "latest").status();
    EXPECT_CODE(st, Code::kManifestBlobUnknown);
    EXPECT_EQ(st.detail(), missing.str());
    EXPECT_NE(st.message().find(missing.str()), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("app"), std::string::npos) << st.message();
    // Nothing of it is visible.
    EXPECT_CODE(store().GetManifest("app", m.digest), Code::kManifestUnknown);
    EXPECT_CODE(store().GetManifestByTag("app", "latest"), Code::kManifestUnknown);
  }
  // After a mount it goes through.
  ASSERT_OK(store().LinkBlob("app", elsewhere));
  EXPECT_TRUE(
      store().PutManifest(Image("app", "{\"mounted\":1}", {config, elsewhere}), "latest").ok());
}

TEST_P(MetadataStoreConformance, PutIndexWithMissingChildFails) {
  REPO("app");
  REPO("other");
  ManifestRecord amd64 = PushImage(store(), "app", "amd64", "");
  ManifestRecord arm64 = PushImage(store(), "other", "arm64", "");  // wrong repository
  ManifestRecord index = Index("app", "{\"index\":1}", {amd64.digest, arm64.digest});
  Status st = store().PutManifest(index, "latest").status();
  EXPECT_CODE(st, Code::kManifestBlobUnknown);
  EXPECT_EQ(st.detail(), arm64.digest.str());
  EXPECT_NE(st.message().find(arm64.digest.str()), std::string::npos) << st.message();
  EXPECT_CODE(store().GetManifest("app", index.digest), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "latest"), Code::kManifestUnknown);

  // Push the child into this repository, then the index goes through.
  ManifestRecord arm64_here = arm64;
  arm64_here.repository = "app";
  for (const auto& b : arm64.blob_refs) ASSERT_OK(store().LinkBlob("app", b));
  ASSERT_OK(store().PutManifest(arm64_here, ""));
  ASSERT_OK(store().PutManifest(index, "latest"));
  auto got = store().GetManifestByTag("app", "latest");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->media_type, kIndexType);
  EXPECT_EQ(got->child_refs, Sorted({amd64.digest, arm64.digest}));
  EXPECT_TRUE(got->blob_refs.empty());
}

TEST_P(MetadataStoreConformance, RePutOfTheSameManifestIsIdempotent) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "one", "v1");
  ManifestRecord again = m;
  again.pushed_at_ms = kT0 + 1000;
  ASSERT_OK(store().PutManifest(again, "v1"));
  ASSERT_OK(store().PutManifest(again, "v2"));
  auto got = store().GetManifest("app", m.digest);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, m.bytes);
  EXPECT_EQ(got->pushed_at_ms, kT0);  // the first push is kept
  EXPECT_EQ(got->blob_refs, Sorted(m.blob_refs));
  EXPECT_EQ(*store().TagsOf("app", m.digest, "", 1000), (Strings{"v1", "v2"}));
  // The stored references are those of the first push (same digest, same bytes).
  ManifestRecord more_refs = m;
  more_refs.blob_refs.push_back(AddBlob(store(), "app", "an extra blob"));
  ASSERT_OK(store().PutManifest(more_refs, ""));
  EXPECT_EQ(store().GetManifest("app", m.digest)->blob_refs, Sorted(m.blob_refs));
  // A re-put still requires its references.
  ASSERT_OK(store().UnlinkBlob("app", m.blob_refs[1]));
  EXPECT_CODE(store().PutManifest(m, "v3"), Code::kManifestBlobUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "v3"), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, SameManifestInTwoRepositoriesIsIndependent) {
  REPO("a");
  REPO("b");
  ManifestRecord in_a = PushImage(store(), "a", "same", "latest");
  ManifestRecord in_b = PushImage(store(), "b", "same", "latest");
  ASSERT_EQ(in_a.digest, in_b.digest);
  ASSERT_OK(store().DeleteManifest("a", in_a.digest));
  EXPECT_CODE(store().GetManifest("a", in_a.digest), Code::kManifestUnknown);
  auto got = store().GetManifestByTag("b", "latest");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->repository, "b");
  EXPECT_EQ(got->digest, in_b.digest);
}

// ---------------------------------------------------------------------------------------
// Tags.

TEST_P(MetadataStoreConformance, TagMovesAtomically) {
  REPO("app");
  ManifestRecord v1 = PushImage(store(), "app", "first", "latest");
  ManifestRecord v2 = PushImage(store(), "app", "second", "latest");
  auto got = store().GetManifestByTag("app", "latest");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->digest, v2.digest);
  EXPECT_EQ(got->bytes, v2.bytes);
  EXPECT_TRUE(store().TagsOf("app", v1.digest, "", 1000)->empty());
  EXPECT_EQ(*store().TagsOf("app", v2.digest, "", 1000), (Strings{"latest"}));
  // The old manifest remains, untagged.
  EXPECT_TRUE(store().GetManifest("app", v1.digest).ok());
  EXPECT_EQ(*store().ListTags("app", "", 10), (Strings{"latest"}));
}

TEST_P(MetadataStoreConformance, TagsAreSortedAndPaginated) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "one", "");
  for (const char* tag : {"v1.10", "latest", "v1.2", "V0", "a_b", "1.0", "v1.2-rc"}) {
    ASSERT_OK(store().PutManifest(m, tag));
  }
  Strings all = {"1.0", "V0", "a_b", "latest", "v1.10", "v1.2", "v1.2-rc"};  // byte order
  EXPECT_EQ(*store().ListTags("app", "", 100), all);
  EXPECT_EQ(*store().ListTags("app", "", 2), (Strings{"1.0", "V0"}));
  EXPECT_EQ(*store().ListTags("app", "V0", 2), (Strings{"a_b", "latest"}));
  EXPECT_EQ(*store().ListTags("app", "latest", 2), (Strings{"v1.10", "v1.2"}));
  EXPECT_EQ(*store().ListTags("app", "v1.2", 2), (Strings{"v1.2-rc"}));
  EXPECT_TRUE(store().ListTags("app", "v1.2-rc", 2)->empty());
  EXPECT_TRUE(store().ListTags("app", "", 0)->empty());
  EXPECT_EQ(*store().ListTags("app", "m", 1), (Strings{"v1.10"}));  // `after` need not exist
  EXPECT_EQ(*store().TagsOf("app", m.digest, "", 1000), all);
}

TEST_P(MetadataStoreConformance, TagsOfListsOnlyThatManifestsTags) {
  REPO("app");
  ManifestRecord a = PushImage(store(), "app", "a", "z-a");
  ManifestRecord b = PushImage(store(), "app", "b", "b1");
  ASSERT_OK(store().PutManifest(a, "a-1"));
  ASSERT_OK(store().PutManifest(b, "b0"));
  EXPECT_EQ(*store().TagsOf("app", a.digest, "", 1000), (Strings{"a-1", "z-a"}));
  EXPECT_EQ(*store().TagsOf("app", b.digest, "", 1000), (Strings{"b0", "b1"}));
  EXPECT_TRUE(store().TagsOf("app", D("unknown"), "", 1000)->empty());
}

TEST_P(MetadataStoreConformance, DeleteTagKeepsTheManifest) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "one", "v1");
  ASSERT_OK(store().PutManifest(m, "v2"));
  ASSERT_OK(store().DeleteTag("app", "v1"));
  EXPECT_CODE(store().GetManifestByTag("app", "v1"), Code::kManifestUnknown);
  EXPECT_TRUE(store().GetManifestByTag("app", "v2").ok());
  EXPECT_TRUE(store().GetManifest("app", m.digest).ok());
  EXPECT_EQ(*store().ListTags("app", "", 10), (Strings{"v2"}));
  EXPECT_CODE(store().DeleteTag("app", "v1"), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, DeleteManifestRemovesItsTags) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "one", "v1");
  ManifestRecord other = PushImage(store(), "app", "two", "keep");
  ASSERT_OK(store().PutManifest(m, "v2"));
  ASSERT_OK(store().DeleteManifest("app", m.digest));
  EXPECT_CODE(store().GetManifest("app", m.digest), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "v1"), Code::kManifestUnknown);
  EXPECT_CODE(store().GetManifestByTag("app", "v2"), Code::kManifestUnknown);
  EXPECT_EQ(*store().ListTags("app", "", 10), (Strings{"keep"}));
  EXPECT_CODE(store().DeleteManifest("app", m.digest), Code::kManifestUnknown);
  // Its blobs stay linked (garbage collection decides), and it can be pushed again.
  EXPECT_TRUE(store().GetLinkedBlob("app", m.blob_refs[0]).ok());
  ASSERT_OK(store().PutManifest(m, "v1"));
  EXPECT_EQ(store().GetManifestByTag("app", "v1")->blob_refs, Sorted(m.blob_refs));
  EXPECT_TRUE(store().GetManifest("app", other.digest).ok());
}

TEST_P(MetadataStoreConformance, ReferencedChildCannotBeDeletedUntilTheIndexIs) {
  REPO("app");
  ManifestRecord amd64 = PushImage(store(), "app", "amd64", "");
  ManifestRecord arm64 = PushImage(store(), "app", "arm64", "");
  ManifestRecord index = Index("app", "{\"index\":2}", {amd64.digest, arm64.digest});
  ASSERT_OK(store().PutManifest(index, "latest"));

  Status st = store().DeleteManifest("app", arm64.digest);
  EXPECT_CODE(st, Code::kManifestReferenced);
  EXPECT_EQ(st.detail(), index.digest.str());
  EXPECT_NE(st.message().find(arm64.digest.str()), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(index.digest.str()), std::string::npos) << st.message();
  EXPECT_TRUE(store().GetManifest("app", arm64.digest).ok());

  ASSERT_OK(store().DeleteManifest("app", index.digest));
  EXPECT_CODE(store().GetManifestByTag("app", "latest"), Code::kManifestUnknown);
  ASSERT_OK(store().DeleteManifest("app", arm64.digest));
  ASSERT_OK(store().DeleteManifest("app", amd64.digest));
}

TEST_P(MetadataStoreConformance, ChildReferencedByTwoIndexes) {
  REPO("app");
  ManifestRecord child = PushImage(store(), "app", "child", "");
  ManifestRecord i1 = Index("app", "{\"index\":\"one\"}", {child.digest});
  ManifestRecord i2 = Index("app", "{\"index\":\"two\"}", {child.digest});
  ASSERT_OK(store().PutManifest(i1, "i1"));
  ASSERT_OK(store().PutManifest(i2, "i2"));
  ASSERT_OK(store().DeleteManifest("app", i1.digest));
  Status st = store().DeleteManifest("app", child.digest);
  EXPECT_CODE(st, Code::kManifestReferenced);
  EXPECT_EQ(st.detail(), i2.digest.str());
  ASSERT_OK(store().DeleteManifest("app", i2.digest));
  ASSERT_OK(store().DeleteManifest("app", child.digest));
}

TEST_P(MetadataStoreConformance, IndexInAnotherRepositoryDoesNotPinAChild) {
  REPO("a");
  REPO("b");
  ManifestRecord child_a = PushImage(store(), "a", "child", "");
  ManifestRecord child_b = PushImage(store(), "b", "child", "");
  ASSERT_OK(store().PutManifest(Index("b", "{\"index\":\"b\"}", {child_b.digest}), "latest"));
  EXPECT_TRUE(store().DeleteManifest("a", child_a.digest).ok());
  EXPECT_CODE(store().DeleteManifest("b", child_b.digest), Code::kManifestReferenced);
}

// ---------------------------------------------------------------------------------------
// Tag rules, outcomes and image sizes.

TEST_P(MetadataStoreConformance, PutManifestReportsWhatChanged) {
  REPO("app");
  oci::Digest layer = AddBlob(store(), "app", "layer");
  ManifestRecord m = Image("app", "{\"outcome\":1}", {layer});
  auto first = store().PutManifest(m, "v1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->manifest_created);
  EXPECT_FALSE(first->tag_unchanged);
  auto same = store().PutManifest(m, "v1");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->manifest_created);
  EXPECT_TRUE(same->tag_unchanged);
  auto retag = store().PutManifest(m, "v2");
  ASSERT_TRUE(retag.ok());
  EXPECT_FALSE(retag->manifest_created);
  EXPECT_FALSE(retag->tag_unchanged);
  auto untagged = store().PutManifest(m, "");
  ASSERT_TRUE(untagged.ok());
  EXPECT_FALSE(untagged->manifest_created);
  EXPECT_FALSE(untagged->tag_unchanged);
}

TEST_P(MetadataStoreConformance, ImmutableTagCannotMove) {
  REPO("app");
  ManifestRecord v1 = PushImage(store(), "app", "one", "");
  ManifestRecord v2 = PushImage(store(), "app", "two", "");
  ManifestRecord v3 = Image("app", "{\"never\":3}", {});
  PutManifestOptions immutable{true};
  ASSERT_OK(store().PutManifest(v1, "release", immutable));  // a new tag is fine
  // Pointing it at the manifest it already names is fine too.
  auto again = store().PutManifest(v1, "release", immutable);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->tag_unchanged);
  Status st = store().PutManifest(v2, "release", immutable).status();
  EXPECT_CODE(st, Code::kTagInvalid);
  EXPECT_EQ(st.detail(), "release");
  // Nothing changed: the tag, and a manifest the failed push carried is not stored.
  EXPECT_EQ(store().GetManifestByTag("app", "release")->digest, v1.digest);
  EXPECT_CODE(store().PutManifest(v3, "release", immutable), Code::kTagInvalid);
  EXPECT_CODE(store().GetManifest("app", v3.digest), Code::kManifestUnknown);
  // Without the rule the tag moves.
  ASSERT_OK(store().PutManifest(v2, "release"));
  EXPECT_EQ(store().GetManifestByTag("app", "release")->digest, v2.digest);
}

TEST_P(MetadataStoreConformance, ConcurrentPushesOfAnImmutableTagHaveOneWinner) {
  REPO("app");
  constexpr int kThreads = 8;
  std::vector<ManifestRecord> images;
  for (int t = 0; t < kThreads; ++t) {
    images.push_back(PushImage(store(), "app", "racer " + std::to_string(t), ""));
  }
  std::atomic<int> won{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto put = store().PutManifest(images[t], "stable", PutManifestOptions{true});
      if (put.ok()) {
        ++won;
      } else if (put.status().Is(Code::kTagInvalid)) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  auto winner = store().GetManifestByTag("app", "stable");
  ASSERT_TRUE(winner.ok());
  int holders = 0;
  for (const auto& m : images) holders += m.digest == winner->digest ? 1 : 0;
  EXPECT_EQ(holders, 1);
}

TEST_P(MetadataStoreConformance, ImageSizeIsStored) {
  REPO("app");
  oci::Digest layer = AddBlob(store(), "app", "sized layer");
  ManifestRecord m = Image("app", "{\"sized\":1}", {layer});
  m.image_size = 123456789012;
  ASSERT_OK(store().PutManifest(m, "v1"));
  EXPECT_EQ(store().GetManifest("app", m.digest)->image_size, 123456789012);
  EXPECT_EQ(store().GetManifestByTag("app", "v1")->image_size, 123456789012);
  EXPECT_EQ(store().GetImage("app", m.digest)->manifest.image_size, 123456789012);
  EXPECT_EQ(store().ListImages("app", TagFilter::kAny, "", 10)->front().manifest.image_size,
            123456789012);
}

// ---------------------------------------------------------------------------------------
// Image listings, tag removal and pull times.

TEST_P(MetadataStoreConformance, GetImageCarriesTagsAndNoBytes) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "img", "b");
  ASSERT_OK(store().PutManifest(m, "a"));
  ManifestRecord ref = Referrer("app", "{\"sig\":1}", m.digest, "application/vnd.sig");
  ASSERT_OK(store().PutManifest(ref, ""));
  auto img = store().GetImage("app", m.digest);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->manifest.repository, "app");
  EXPECT_EQ(img->manifest.digest, m.digest);
  EXPECT_EQ(img->manifest.media_type, kImageType);
  EXPECT_EQ(img->manifest.size, static_cast<int64_t>(m.bytes.size()));
  EXPECT_EQ(img->manifest.pushed_at_ms, kT0);
  EXPECT_TRUE(img->manifest.bytes.empty());
  EXPECT_TRUE(img->manifest.blob_refs.empty());
  EXPECT_FALSE(img->manifest.subject.has_value());
  EXPECT_EQ(img->tags, (Strings{"a", "b"}));
  EXPECT_EQ(img->last_pulled_at_ms, 0);
  auto r = store().GetImage("app", ref.digest);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tags.empty());
  ASSERT_TRUE(r->manifest.subject.has_value());
  EXPECT_EQ(*r->manifest.subject, m.digest);
  EXPECT_EQ(r->manifest.artifact_type, "application/vnd.sig");
  EXPECT_CODE(store().GetImage("app", D("nothing")), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, ListImagesFiltersByTagStatusAndPaginatesByDigest) {
  REPO("app");
  REPO("other");
  std::vector<ManifestRecord> tagged, untagged;
  for (int i = 0; i < 5; ++i) {
    ManifestRecord m =
        PushImage(store(), "app", "t" + std::to_string(i), "tag" + std::to_string(i));
    ASSERT_OK(store().PutManifest(m, "also" + std::to_string(i)));
    tagged.push_back(m);
    untagged.push_back(PushImage(store(), "app", "u" + std::to_string(i), ""));
  }
  PushImage(store(), "other", "elsewhere", "x");
  auto digests = [](const std::vector<ManifestRecord>& v) {
    std::vector<oci::Digest> out;
    for (const auto& m : v) out.push_back(m.digest);
    return Sorted(out);
  };
  auto listed = [](const Result<std::vector<ImageRecord>>& page) {
    std::vector<oci::Digest> out;
    for (const auto& i : *page) out.push_back(i.manifest.digest);
    return out;
  };
  std::vector<oci::Digest> all = digests(tagged);
  for (const auto& d : digests(untagged)) all.push_back(d);
  std::sort(all.begin(), all.end());

  auto any = store().ListImages("app", TagFilter::kAny, "", 100);
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  EXPECT_EQ(listed(any), all);
  for (const auto& img : *any) {
    EXPECT_TRUE(img.manifest.bytes.empty());
    bool is_tagged = std::any_of(tagged.begin(), tagged.end(),
                                 [&](const auto& m) { return m.digest == img.manifest.digest; });
    if (is_tagged) {
      ASSERT_EQ(img.tags.size(), 2u);
      EXPECT_TRUE(img.tags[0].starts_with("also"));  // sorted
      EXPECT_TRUE(img.tags[1].starts_with("tag"));
    } else {
      EXPECT_TRUE(img.tags.empty());
    }
  }
  EXPECT_EQ(listed(store().ListImages("app", TagFilter::kTagged, "", 100)), digests(tagged));
  EXPECT_EQ(listed(store().ListImages("app", TagFilter::kUntagged, "", 100)), digests(untagged));

  // Pages of 3, keyed by the last digest; tags stay with their image across pages.
  std::vector<oci::Digest> paged;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store().ListImages("app", TagFilter::kAny, after, 3);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    EXPECT_LE(page->size(), 3u);
    for (const auto& img : *page) {
      paged.push_back(img.manifest.digest);
      if (std::any_of(tagged.begin(), tagged.end(),
                      [&](const auto& m) { return m.digest == img.manifest.digest; })) {
        EXPECT_EQ(img.tags.size(), 2u);
      }
    }
    after = page->back().manifest.digest.str();
  }
  EXPECT_EQ(paged, all);
  auto tagged_page = store().ListImages("app", TagFilter::kTagged, digests(tagged)[1].str(), 2);
  ASSERT_TRUE(tagged_page.ok());
  EXPECT_EQ(listed(tagged_page),
            (std::vector<oci::Digest>{digests(tagged)[2], digests(tagged)[3]}));
  EXPECT_TRUE(store().ListImages("app", TagFilter::kAny, "", 0)->empty());
  EXPECT_TRUE(store().ListImages("app", TagFilter::kAny, all.back().str(), 10)->empty());
}

TEST_P(MetadataStoreConformance, RecordPullsOnlyMovesForward) {
  REPO("app");
  ManifestRecord a = PushImage(store(), "app", "a", "a");
  ManifestRecord b = PushImage(store(), "app", "b", "");
  ASSERT_OK(store().RecordPulls({{"app", a.digest, kT0 + 100}, {"app", b.digest, kT0 + 50}}));
  EXPECT_EQ(store().GetImage("app", a.digest)->last_pulled_at_ms, kT0 + 100);
  EXPECT_EQ(store().GetImage("app", b.digest)->last_pulled_at_ms, kT0 + 50);
  // An older pull never lowers it; pulls of what is gone are ignored.
  ASSERT_OK(store().RecordPulls({{"app", a.digest, kT0 + 10},
                                 {"app", D("gone"), kT0 + 500},
                                 {"no/such", a.digest, kT0 + 500},
                                 {"app", b.digest, kT0 + 60}}));
  EXPECT_EQ(store().GetImage("app", a.digest)->last_pulled_at_ms, kT0 + 100);
  EXPECT_EQ(store().GetImage("app", b.digest)->last_pulled_at_ms, kT0 + 60);
  auto listed = store().ListImages("app", TagFilter::kTagged, "", 10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().last_pulled_at_ms, kT0 + 100);
  ASSERT_OK(store().RecordPulls({}));
}

TEST_P(MetadataStoreConformance, RemoveTagDeletesAnImageWithItsLastTag) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "img", "v1");
  ASSERT_OK(store().PutManifest(m, "v2"));
  auto first = store().RemoveTag("app", "v1", kUntagDeletesImage);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->digest, m.digest);
  EXPECT_FALSE(first->manifest_deleted);  // v2 keeps it
  EXPECT_TRUE(store().GetManifest("app", m.digest).ok());
  auto last = store().RemoveTag("app", "v2", kUntagDeletesImage);
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->manifest_deleted);
  EXPECT_CODE(store().GetManifest("app", m.digest), Code::kManifestUnknown);
  EXPECT_TRUE(store().ListTags("app", "", 10)->empty());
  // Its blobs stay linked (garbage collection decides) and it can be pushed again.
  EXPECT_TRUE(store().GetLinkedBlob("app", m.blob_refs[0]).ok());
  ASSERT_OK(store().PutManifest(m, "v3"));
  EXPECT_EQ(store().GetManifest("app", m.digest)->blob_refs, Sorted(m.blob_refs));
  EXPECT_CODE(store().RemoveTag("app", "v1", kUntagDeletesImage), Code::kManifestUnknown);
}

TEST_P(MetadataStoreConformance, RemoveTagKeepsAnImageAnIndexLists) {
  REPO("app");
  ManifestRecord child = PushImage(store(), "app", "child", "child-tag");
  ManifestRecord index = Index("app", "{\"index\":\"keeps\"}", {child.digest});
  ASSERT_OK(store().PutManifest(index, "list"));
  auto removed = store().RemoveTag("app", "child-tag", kUntagDeletesImage);
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(removed->manifest_deleted);
  EXPECT_TRUE(store().GetManifest("app", child.digest).ok());
  EXPECT_TRUE(store().TagsOf("app", child.digest, "", 1000)->empty());
  // The index's last tag takes the index; the child, untagged, stays.
  auto gone = store().RemoveTag("app", "list", kUntagDeletesImage);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->manifest_deleted);
  EXPECT_CODE(store().GetManifest("app", index.digest), Code::kManifestUnknown);
  EXPECT_TRUE(store().GetManifest("app", child.digest).ok());
  ASSERT_OK(store().DeleteManifest("app", child.digest));  // no longer pinned
}

// ---------------------------------------------------------------------------------------
// Referrers.

TEST_P(MetadataStoreConformance, ReferrersWithArtifactTypeFilter) {
  REPO("app");
  REPO("other");
  ManifestRecord image = PushImage(store(), "app", "image", "latest");
  ManifestRecord sig1 = Referrer("app", "{\"sig\":1}", image.digest, "application/vnd.sig");
  ManifestRecord sig2 = Referrer("app", "{\"sig\":2}", image.digest, "application/vnd.sig");
  ManifestRecord sbom = Referrer("app", "{\"sbom\":1}", image.digest, "application/vnd.sbom");
  sbom.annotations_json = R"({"created":"now"})";
  ManifestRecord unrelated =
      Referrer("app", "{\"sig\":3}", D("other subject"), "application/vnd.sig");
  ManifestRecord elsewhere = Referrer("other", "{\"sig\":4}", image.digest, "application/vnd.sig");
  for (const auto* m : {&sig1, &sig2, &sbom, &unrelated, &elsewhere}) {
    ASSERT_OK(store().PutManifest(*m, ""));
  }

  auto all = store().ListReferrers("app", image.digest, "", "", 1000);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<oci::Digest> want = Sorted({sig1.digest, sig2.digest, sbom.digest});
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const ManifestRecord& r = (*all)[i];
    EXPECT_EQ(r.digest, want[i]);
    EXPECT_EQ(r.repository, "app");
    EXPECT_TRUE(r.bytes.empty()) << "listings carry no bytes";
    ASSERT_TRUE(r.subject.has_value());
    EXPECT_EQ(*r.subject, image.digest);
    EXPECT_EQ(r.media_type, kImageType);
    if (r.digest == sbom.digest) {
      EXPECT_EQ(r.artifact_type, "application/vnd.sbom");
      EXPECT_EQ(r.annotations_json, sbom.annotations_json);
      EXPECT_EQ(r.size, static_cast<int64_t>(sbom.bytes.size()));
    } else {
      EXPECT_EQ(r.artifact_type, "application/vnd.sig");
    }
  }

  auto sigs = store().ListReferrers("app", image.digest, "application/vnd.sig", "", 1000);
  ASSERT_TRUE(sigs.ok());
  ASSERT_EQ(sigs->size(), 2u);
  std::vector<oci::Digest> want_sigs = Sorted({sig1.digest, sig2.digest});
  EXPECT_EQ((*sigs)[0].digest, want_sigs[0]);
  EXPECT_EQ((*sigs)[1].digest, want_sigs[1]);
  EXPECT_TRUE(store().ListReferrers("app", image.digest, "application/none", "", 1000)->empty());
  EXPECT_TRUE(store().ListReferrers("app", D("no referrers"), "", "", 1000)->empty());

  // Referrers of a subject not (yet) pushed are listed too (OCI allows either order).
  auto dangling = store().ListReferrers("app", D("other subject"), "", "", 1000);
  ASSERT_TRUE(dangling.ok());
  ASSERT_EQ(dangling->size(), 1u);
  EXPECT_EQ((*dangling)[0].digest, unrelated.digest);

  // Deleting a referrer removes it from the list.
  ASSERT_OK(store().DeleteManifest("app", sig1.digest));
  auto after = store().ListReferrers("app", image.digest, "application/vnd.sig", "", 1000);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].digest, sig2.digest);
}

// ---------------------------------------------------------------------------------------
// Upload sessions.

TEST_P(MetadataStoreConformance, UploadSessionsCrud) {
  REPO("app");
  std::string id = NewUploadId();
  ASSERT_OK(store().CreateUpload({id, "app", 0, kT0, kT0 + 1}));
  auto got = store().GetUpload(id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->repository, "app");
  EXPECT_EQ(got->offset, 0u);
  EXPECT_EQ(got->created_at_ms, kT0);
  EXPECT_EQ(got->updated_at_ms, kT0 + 1);
  EXPECT_CODE(store().CreateUpload({id, "app", 0, kT0, kT0}), Code::kAlreadyExists);

  uint64_t big = uint64_t{5} << 40;  // offsets beyond 32 bits
  ASSERT_OK(AdvanceTo(store(), id, big, kT0 + 100));
  got = store().GetUpload(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->offset, big);
  EXPECT_EQ(got->updated_at_ms, kT0 + 100);
  EXPECT_EQ(got->created_at_ms, kT0);

  ASSERT_OK(store().DeleteUpload(id));
  EXPECT_CODE(store().GetUpload(id), Code::kUploadUnknown);
  EXPECT_CODE(AdvanceTo(store(), id, 1, kT0), Code::kUploadUnknown);
  EXPECT_CODE(store().DeleteUpload(id), Code::kUploadUnknown);
  EXPECT_CODE(store().GetUpload(NewUploadId()), Code::kUploadUnknown);
}

TEST_P(MetadataStoreConformance, ListStaleUploadsOldestFirst) {
  REPO("a");
  REPO("b");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(NewUploadId());
  ASSERT_OK(store().CreateUpload(Upload(ids[0], "a", 0, kT0 + 300)));
  ASSERT_OK(store().CreateUpload(Upload(ids[1], "b", 7, kT0 + 100)));
  ASSERT_OK(store().CreateUpload(Upload(ids[2], "a", 0, kT0 + 200)));
  ASSERT_OK(store().CreateUpload(Upload(ids[3], "a", 0, kT0 + 400)));
  ASSERT_OK(store().CreateUpload(Upload(ids[4], "b", 0, kT0 + 350)));

  auto stale = store().ListStaleUploads(kT0 + 350, 10);  // strictly before
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  ASSERT_EQ(stale->size(), 3u);
  EXPECT_EQ((*stale)[0].id, ids[1]);
  EXPECT_EQ((*stale)[0].repository, "b");
  EXPECT_EQ((*stale)[0].offset, 7u);
  EXPECT_EQ((*stale)[0].updated_at_ms, kT0 + 100);
  EXPECT_EQ((*stale)[1].id, ids[2]);
  EXPECT_EQ((*stale)[2].id, ids[0]);

  auto limited = store().ListStaleUploads(kT0 + 1000, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[0].id, ids[1]);
  EXPECT_EQ((*limited)[1].id, ids[2]);

  // Activity makes a session fresh again.
  ASSERT_OK(AdvanceTo(store(), ids[1], 100, kT0 + 500));
  stale = store().ListStaleUploads(kT0 + 350, 10);
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 2u);
  EXPECT_EQ((*stale)[0].id, ids[2]);
  EXPECT_EQ((*stale)[1].id, ids[0]);
  EXPECT_TRUE(store().ListStaleUploads(kT0, 10)->empty());
}


TEST_P(MetadataStoreConformance, UploadLeaseHasOneHolderUntilItExpires) {
  REPO("app");
  std::string id = NewUploadId();
  ASSERT_OK(store().CreateUpload(Upload(id, "app", 0, kT0)));
  auto a = store().LeaseUpload(id, "node-a", kT0, 1000);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->lease_token, "node-a");
  EXPECT_EQ(a->lease_expires_ms, kT0 + 1000);
  // Another writer is refused while the lease lives; the detail is the offset.
  auto b = store().LeaseUpload(id, "node-b", kT0 + 999, 1000);
  EXPECT_CODE(b, Code::kAborted);
  EXPECT_EQ(b.status().detail(), "0");
  // The holder renews.
  ASSERT_TRUE(store().LeaseUpload(id, "node-a", kT0 + 900, 1000).ok());
  EXPECT_CODE(store().LeaseUpload(id, "node-b", kT0 + 1500, 1000), Code::kAborted);
  // An expired lease (its holder died) is taken over.
  auto c = store().LeaseUpload(id, "node-b", kT0 + 1901, 1000);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(store().GetUpload(id)->lease_token, "node-b");
  // Release frees it at once; a release by a non-holder does nothing.
  ASSERT_OK(store().ReleaseUpload(id, "node-a"));
  EXPECT_CODE(store().LeaseUpload(id, "node-c", kT0 + 2000, 1000), Code::kAborted);
  ASSERT_OK(store().ReleaseUpload(id, "node-b"));
  EXPECT_TRUE(store().LeaseUpload(id, "node-c", kT0 + 2000, 1000).ok());
  EXPECT_CODE(store().LeaseUpload(NewUploadId(), "x", kT0, 1000), Code::kUploadUnknown);
}

TEST_P(MetadataStoreConformance, AdvanceUploadIsCompareAndSet) {
  REPO("app");
  std::string id = NewUploadId();
  UploadRecord rec = Upload(id, "app", 0, kT0);
  rec.blob_state = "created";
  ASSERT_OK(store().CreateUpload(rec));
  EXPECT_EQ(store().GetUpload(id)->blob_state, "created");
  ASSERT_TRUE(store().LeaseUpload(id, "w1", kT0, 10'000).ok());
  UploadProgress p;
  p.offset = 5;
  p.hash_state = "sha256;state-after-5";
  p.blob_state = "part-1;etag=\"abc\"";
  p.updated_at_ms = kT0 + 5;
  p.release = false;
  ASSERT_OK(store().AdvanceUpload(id, "w1", 0, p));
  auto got = store().GetUpload(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->offset, 5u);
  EXPECT_EQ(got->hash_state, p.hash_state);
  EXPECT_EQ(got->blob_state, p.blob_state);
  EXPECT_EQ(got->updated_at_ms, kT0 + 5);
  EXPECT_EQ(got->lease_token, "w1");  // kept: release = false
  // A stale offset loses, and says where the upload is.
  p.offset = 9;
  auto stale = store().AdvanceUpload(id, "w1", 0, p);
  EXPECT_CODE(stale, Code::kRangeInvalid);
  EXPECT_EQ(stale.detail(), "5");
  // So does a writer without the lease.
  EXPECT_CODE(store().AdvanceUpload(id, "w2", 5, p), Code::kRangeInvalid);
  EXPECT_EQ(store().GetUpload(id)->offset, 5u);
  p.release = true;
  ASSERT_OK(store().AdvanceUpload(id, "w1", 5, p));
  got = store().GetUpload(id);
  EXPECT_EQ(got->offset, 9u);
  EXPECT_EQ(got->lease_token, "");
  EXPECT_TRUE(store().LeaseUpload(id, "w2", kT0 + 6, 10'000).ok());
  EXPECT_CODE(store().AdvanceUpload(NewUploadId(), "w2", 0, p), Code::kUploadUnknown);
}

TEST_P(MetadataStoreConformance, ConcurrentLeasesOfOneUploadHaveOneWinner) {
  REPO("app");
  std::string id = NewUploadId();
  ASSERT_OK(store().CreateUpload(Upload(id, "app", 0, kT0)));
  constexpr int kThreads = 8;
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store().LeaseUpload(id, "writer-" + std::to_string(t), kT0, 60'000);
      if (r.ok()) ++won;
      if (r.status().Is(Code::kAborted)) ++refused;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
}

TEST_P(MetadataStoreConformance, TagsOfAndReferrersPageByKey) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "paged", "t00");
  Strings want = {"t00"};
  for (int i = 1; i < 25; ++i) {
    std::string tag = (i < 10 ? "t0" : "t") + std::to_string(i);
    ASSERT_OK(store().PutManifest(m, tag).status());
    want.push_back(tag);
  }
  Strings got;
  for (std::string after;;) {
    auto page = store().TagsOf("app", m.digest, after, 7);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->size(), 7u);
    got.insert(got.end(), page->begin(), page->end());
    if (page->size() < 7) break;
    after = page->back();
  }
  EXPECT_EQ(got, want);

  std::vector<oci::Digest> referrers;
  for (int i = 0; i < 9; ++i) {
    ManifestRecord r = Referrer("app", "{\"sig\":" + std::to_string(i) + "}", m.digest,
                                i % 3 == 0 ? "application/vnd.sbom" : "application/vnd.sig");
    ASSERT_OK(store().PutManifest(r, "").status());
    referrers.push_back(r.digest);
  }
  std::vector<oci::Digest> listed;
  for (std::string after;;) {
    auto page = store().ListReferrers("app", m.digest, "", after, 4);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_LE(page->size(), 4u);
    for (const auto& r : *page) listed.push_back(r.digest);
    if (page->size() < 4) break;
    after = page->back().digest.str();
  }
  EXPECT_EQ(listed, Sorted(referrers));
  auto sboms = store().ListReferrers("app", m.digest, "application/vnd.sbom", "", 2);
  ASSERT_TRUE(sboms.ok());
  EXPECT_EQ(sboms->size(), 2u);
}

// Whether a manifest goes with its last tag is the registry's call, not the store's.
TEST_P(MetadataStoreConformance, RemoveTagKeepsTheManifestUnlessAsked) {
  REPO("app");
  ManifestRecord m = PushImage(store(), "app", "kept", "only");
  auto removed = store().RemoveTag("app", "only", RemoveTagOptions{});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->digest, m.digest);
  EXPECT_FALSE(removed->manifest_deleted);
  EXPECT_TRUE(store().GetManifest("app", m.digest).ok());
  EXPECT_TRUE(store().TagsOf("app", m.digest, "", 10)->empty());
}

TEST_P(MetadataStoreConformance, SettingsAreCompareAndSet) {
  EXPECT_CODE(store().GetSetting("token.key"), Code::kNotFound);
  ASSERT_OK(store().SwapSetting("token.key", std::nullopt, std::string("k1\0\xff", 4)));
  EXPECT_EQ(*store().GetSetting("token.key"), std::string("k1\0\xff", 4));
  // The first of two nodes starting at once wins; the other reads the winner's value.
  EXPECT_CODE(store().SwapSetting("token.key", std::nullopt, "k2"), Code::kAborted);
  EXPECT_CODE(store().SwapSetting("token.key", std::string("wrong"), "k2"), Code::kAborted);
  ASSERT_OK(store().SwapSetting("token.key", std::string("k1\0\xff", 4), "k2"));
  EXPECT_EQ(*store().GetSetting("token.key"), "k2");
  EXPECT_CODE(store().GetSetting("other"), Code::kNotFound);
}

TEST_P(MetadataStoreConformance, JobLeasesHaveOneHolderUntilTheyExpire) {
  auto a = store().AcquireLease("upload-sweep", "node-a", kT0, 1000);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(*a);
  EXPECT_FALSE(*store().AcquireLease("upload-sweep", "node-b", kT0 + 500, 1000));
  EXPECT_TRUE(*store().AcquireLease("other-job", "node-b", kT0 + 500, 1000));
  EXPECT_TRUE(*store().AcquireLease("upload-sweep", "node-a", kT0 + 900, 1000));  // renew
  EXPECT_FALSE(*store().AcquireLease("upload-sweep", "node-b", kT0 + 1800, 1000));
  EXPECT_TRUE(*store().AcquireLease("upload-sweep", "node-b", kT0 + 1900, 1000));  // expired
  EXPECT_FALSE(*store().AcquireLease("upload-sweep", "node-a", kT0 + 1901, 1000));
}

// ---------------------------------------------------------------------------------------
// Concurrency.

TEST_P(MetadataStoreConformance, ConcurrentPushesOfTheSameTagHaveOneWinner) {
  REPO("app");
  constexpr int kThreads = 8;
  constexpr int kRounds = 20;
  std::vector<ManifestRecord> images;
  for (int t = 0; t < kThreads; ++t) {
    images.push_back(PushImage(store(), "app", "image " + std::to_string(t), ""));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        // Each push also carries a tag of its own, so transactions are not trivial.
        if (!store().PutManifest(images[t], "latest").ok()) ++failures;
        if (!store().PutManifest(images[t], "t" + std::to_string(t)).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  auto winner = store().GetManifestByTag("app", "latest");
  ASSERT_TRUE(winner.ok());
  int holders = 0;
  for (const auto& m : images) {
    auto tags = store().TagsOf("app", m.digest, "", 1000);
    ASSERT_TRUE(tags.ok());
    bool has_latest = std::find(tags->begin(), tags->end(), "latest") != tags->end();
    if (has_latest) {
      ++holders;
      EXPECT_EQ(m.digest, winner->digest);
      EXPECT_EQ(m.bytes, winner->bytes);
    }
  }
  EXPECT_EQ(holders, 1);
  auto tags = store().ListTags("app", "", 100);
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(tags->size(), static_cast<size_t>(kThreads + 1));
}

TEST_P(MetadataStoreConformance, ReadersNeverSeeTornState) {
  REPO("app");
  constexpr int kImages = 4;
  std::vector<ManifestRecord> images;
  for (int i = 0; i < kImages; ++i) {
    images.push_back(PushImage(store(), "app", "img" + std::to_string(i), i == 0 ? "latest" : ""));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto got = store().GetManifestByTag("app", "latest");
        ++reads;
        // The tag always resolves, to complete manifest whose bytes match its digest.
        if (!got.ok() || D(got->bytes) != got->digest || got->blob_refs.size() != 2) ++bad;
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 30; ++i) {
        if (!store().PutManifest(images[(w + i) % kImages], "latest").ok()) ++bad;
      }
    });
  }
  for (auto& th : writers) th.join();
  while (reads.load() < 10) std::this_thread::yield();
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(MetadataStoreConformance, ConcurrentWritersAcrossRepositories) {
  constexpr int kThreads = 8;
  constexpr int kImages = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string repo = "team/repo" + std::to_string(t);
      if (!store().CreateRepository({repo, kT0}).ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < kImages; ++i) {
        std::string name = repo + "-" + std::to_string(i);
        oci::Digest layer = D("layer " + name);
        if (!store().CommitBlob(repo, {layer, 1, kT0}, "").ok()) ++failures;
        ManifestRecord m = Image(repo, "{\"m\":\"" + name + "\"}", {layer});
        if (!store().PutManifest(m, "v" + std::to_string(i)).ok()) ++failures;
        // A failing write in the middle of the others must not disturb them.
        if (store()
                .PutManifest(Image(repo, "{\"bad\":\"" + name + "\"}", {D("missing")}), "bad")
                .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  auto repos = store().ListRepositories("", 100);
  ASSERT_TRUE(repos.ok());
  EXPECT_EQ(repos->size(), static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    std::string repo = "team/repo" + std::to_string(t);
    auto tags = store().ListTags(repo, "", 100);
    ASSERT_TRUE(tags.ok());
    EXPECT_EQ(tags->size(), static_cast<size_t>(kImages)) << repo;
    EXPECT_CODE(store().GetManifestByTag(repo, "bad"), Code::kManifestUnknown);
    auto m = store().GetManifestByTag(repo, "v3");
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->blob_refs, (std::vector<oci::Digest>{D("layer " + repo + "-3")}));
  }
}

// ---------------------------------------------------------------------------------------
// The read epoch (caches above the store rely on it).

TEST_P(MetadataStoreConformance, ReadEpochMovesWithEveryChangeToRepositoriesManifestsAndTags) {
  if (!store().ReadEpoch().has_value()) GTEST_SKIP() << "the backend reports no read epoch";
  REPO("app");
  ManifestRecord one = PushImage(store(), "app", "one", "v1");
  ManifestRecord two = PushImage(store(), "app", "two", "");
  ManifestRecord three = PushImage(store(), "app", "three", "keep");
  // After each write below the epoch must be even again, with a new value.
  uint64_t before = *store().ReadEpoch();
  auto expect_moved = [&](const char* what) {
    uint64_t now = *store().ReadEpoch();
    EXPECT_NE(now, before) << what;
    EXPECT_EQ(now % 2, 0u) << what;
    before = now;
  };
  EXPECT_EQ(before % 2, 0u);
  ASSERT_OK(store().CreateRepository({"other", kT0}));
  expect_moved("CreateRepository");
  ASSERT_OK(store().PutManifest(two, "v1"));
  expect_moved("PutManifest moving a tag");
  ASSERT_OK(store().PutManifest(one, "v2"));
  expect_moved("PutManifest adding a tag to a stored manifest");
  ASSERT_OK(store().DeleteTag("app", "v2"));
  expect_moved("DeleteTag");
  ASSERT_OK(store().RemoveTag("app", "v1", kUntagDeletesImage));
  expect_moved("RemoveTag");
  ASSERT_OK(store().DeleteManifest("app", one.digest));
  expect_moved("DeleteManifest");
  ASSERT_OK(store().SetTagMutability("app", {TagMutability::kImmutable, {}}));
  expect_moved("SetTagMutability");
  ASSERT_OK(store().SetRepositoryPolicy("app", "{\"Statement\":[]}"));
  expect_moved("SetRepositoryPolicy");
  ASSERT_OK(store().DeleteRepositoryPolicy("app"));
  expect_moved("DeleteRepositoryPolicy");
  ASSERT_OK(store().UpdateRepositoryTags("app", {{"team", "a"}}, {}, 50));
  expect_moved("UpdateRepositoryTags");
  ASSERT_OK(store().CreateRepository({"unowned", kT0}));
  expect_moved("CreateRepository");
  ASSERT_OK(store().AssignUnownedRepositories("111111111111"));
  expect_moved("AssignUnownedRepositories");
  ASSERT_OK(store().DeleteRepository("app", true));
  expect_moved("DeleteRepository");
  EXPECT_CODE(store().GetManifest("app", three.digest), Code::kNameUnknown);
}

#undef REPO

}  // namespace berth::storage::testing
