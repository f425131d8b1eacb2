#include "oci/manifest.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>

#include "oci/media_types.h"

namespace berth::oci {
namespace {

constexpr std::pair<std::string_view, std::string_view> kDigests[] = {
    {"$CONFIG", "sha256:b79606fb3afea5bd1609ed40b622142f1c98125abcfe89a76a661b0e8e343910"},
    {"$LAYER1", "sha256:77ea7eee3d80b1a38f83906dd3048e2689457eb90e18a7d12f839c5ae37106a2"},
    {"$LAYER2", "sha256:95cf1a2e1698fe3ca1fcc3f653119146b271d0b62e487ec264441e886a11bd06"},
    {"$AMD64", "sha256:48e6aed16ede5afb3855adb6aeb7c33ab69aeb08edf580c6fe28ab0b6278fc05"},
    {"$ARM64", "sha256:7779d56e2c4f6680a0195eed8f59cc9fd6f13a8f128679e7cffa4bf8c5407b35"},
    {"$SUBJECT", "sha256:a9491f4c1bf7b0cffbadcba2db8f028e4b3f2867cb59e1f3a0bc1968f3c51242"},
    {"$EMPTY", "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
};

// Fixtures name digests as $CONFIG, $LAYER1, ... so the JSON stays readable.
std::string Json(std::string s) {
  for (const auto& [placeholder, digest] : kDigests) {
    for (size_t pos; (pos = s.find(placeholder)) != std::string::npos;) {
      s.replace(pos, placeholder.size(), digest);
    }
  }
  return s;
}

std::string D(std::string_view placeholder) { return Json(std::string(placeholder)); }

const std::string kDockerImageJson = Json(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 7023,
    "digest": "$CONFIG"
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 32654,
      "digest": "$LAYER1"
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 16724,
      "digest": "$LAYER2"
    }
  ]
})");

// OCI image without a mediaType field (the field is optional in image-spec 1.0).
const std::string kOciImageJson = Json(R"({
  "schemaVersion": 2,
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "size": 1470,
    "digest": "$CONFIG"
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "size": 3370706,
      "digest": "$LAYER1",
      "annotations": {"org.opencontainers.image.title": "rootfs.tar.gz"}
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
})");

const std::string kOciIndexJson = Json(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7143,
      "digest": "$AMD64",
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "size": 7682,
      "digest": "$ARM64",
      "platform": {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "os.version": "6.1",
        "os.features": ["sse4", "fancy"]
      },
      "annotations": {"com.example.key": "value"}
    }
  ],
  "annotations": {"com.example.index": "yes"}
})");

const std::string kDockerListJson = Json(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 528,
      "digest": "$AMD64",
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 528,
      "digest": "$ARM64",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}
    }
  ]
})");

// A signature-style artifact: empty config, artifactType, subject, no layers.
const std::string kArtifactJson = Json(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "$EMPTY",
    "size": 2,
    "data": "e30="
  },
  "layers": [],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "$SUBJECT",
    "size": 1234
  },
  "annotations": {"org.opencontainers.image.created": "2024-05-01T00:00:00Z"}
})");

const std::string kSchema1Json = R"({
  "schemaVersion": 1,
  "name": "library/hello",
  "tag": "latest",
  "architecture": "amd64",
  "fsLayers": [{"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}],
  "history": [{"v1Compatibility": "{}"}]
})";

Result<ParsedManifest> Parse(std::string_view bytes, std::string_view content_type = {}) {
  return ParseManifest(bytes, content_type);
}

// Asserts kManifestInvalid with a message containing each of `needles`.
void ExpectInvalid(const Result<ParsedManifest>& r,
                   std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(r.ok()) << "manifest was accepted";
  EXPECT_EQ(r.status().code(), Code::kManifestInvalid) << r.status().ToString();
  for (std::string_view needle : needles) {
    EXPECT_NE(r.status().message().find(needle), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << needle << "'";
  }
}

// Replaces the first occurrence of `from` in `s`; the fixture must contain it.
std::string Replace(std::string s, std::string_view from, std::string_view to) {
  size_t pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << "fixture lacks '" << from << "'";
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

TEST(ParseManifest, DockerSchema2Image) {
  Result<ParsedManifest> r = Parse(kDockerImageJson, kDockerManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kImage);
  EXPECT_EQ(r->media_type, kDockerManifest);
  ASSERT_TRUE(r->config.has_value());
  EXPECT_EQ(r->config->media_type, kDockerConfig);
  EXPECT_EQ(r->config->digest.str(), D("$CONFIG"));
  EXPECT_EQ(r->config->size, 7023);
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_EQ(r->layers[0].digest.str(), D("$LAYER1"));
  EXPECT_EQ(r->layers[0].size, 32654);
  EXPECT_EQ(r->layers[1].digest.str(), D("$LAYER2"));
  EXPECT_TRUE(r->manifests.empty());
  EXPECT_FALSE(r->subject.has_value());
  // With no artifactType, an image's artifact type is its config media type.
  EXPECT_EQ(r->artifact_type, kDockerConfig);
}

TEST(ParseManifest, BlobsListsConfigFirstThenLayersInOrder) {
  Result<ParsedManifest> r = Parse(kDockerImageJson, kDockerManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<Descriptor> blobs = r->blobs();
  ASSERT_EQ(blobs.size(), 3u);
  EXPECT_EQ(blobs[0].digest.str(), D("$CONFIG"));
  EXPECT_EQ(blobs[1].digest.str(), D("$LAYER1"));
  EXPECT_EQ(blobs[2].digest.str(), D("$LAYER2"));
}

TEST(ParseManifest, OciImageTypeTakenFromContentTypeWhenFieldAbsent) {
  Result<ParsedManifest> r = Parse(kOciImageJson, kOciManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kImage);
  EXPECT_EQ(r->media_type, kOciManifest);
  ASSERT_EQ(r->layers.size(), 1u);
  EXPECT_EQ(r->layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(r->layers[0].size, 3370706);
  EXPECT_EQ(r->layers[0].annotations.at("org.opencontainers.image.title"), "rootfs.tar.gz");
  EXPECT_EQ(r->annotations.at("org.opencontainers.image.created"), "2024-01-01T00:00:00Z");
  EXPECT_EQ(r->artifact_type, kOciConfig);
}

TEST(ParseManifest, OciImageTypeInferredFromConfigWithoutAnyMediaType) {
  for (std::string_view ct : {"", "application/json", "application/octet-stream"}) {
    Result<ParsedManifest> r = Parse(kOciImageJson, ct);
    ASSERT_TRUE(r.ok()) << ct << ": " << r.status().ToString();
    EXPECT_EQ(r->media_type, kOciManifest) << ct;
    EXPECT_EQ(r->kind, ManifestKind::kImage);
  }
}

TEST(ParseManifest, ContentTypeParametersAndCaseAreIgnored) {
  Result<ParsedManifest> r = Parse(
      kDockerImageJson, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->media_type, kDockerManifest);

  r = Parse(kOciImageJson, " Application/VND.OCI.image.manifest.v1+json ;charset=UTF-8");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->media_type, kOciManifest);

  // The decorated Content-Type is still recognised as a manifest type, so it takes
  // part in the consistency checks rather than being ignored.
  ExpectInvalid(
      Parse(kDockerImageJson, "application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
      {"mediaType", kOciManifest});
  ExpectInvalid(Parse(kOciImageJson, "application/vnd.oci.image.index.v1+json;charset=utf-8"),
                {"manifests", "missing"});
}

TEST(ParseManifest, OciIndexWithPlatforms) {
  Result<ParsedManifest> r = Parse(kOciIndexJson, kOciIndex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kIndex);
  EXPECT_EQ(r->media_type, kOciIndex);
  EXPECT_FALSE(r->config.has_value());
  EXPECT_TRUE(r->layers.empty());
  EXPECT_TRUE(r->blobs().empty());
  EXPECT_TRUE(r->artifact_type.empty());
  ASSERT_EQ(r->manifests.size(), 2u);

  const Descriptor& amd64 = r->manifests[0];
  EXPECT_EQ(amd64.digest.str(), D("$AMD64"));
  EXPECT_EQ(amd64.size, 7143);
  ASSERT_TRUE(amd64.platform.has_value());
  EXPECT_EQ(amd64.platform->os, "linux");
  EXPECT_EQ(amd64.platform->architecture, "amd64");
  EXPECT_EQ(amd64.platform->variant, "");

  const Descriptor& arm64 = r->manifests[1];
  ASSERT_TRUE(arm64.platform.has_value());
  EXPECT_EQ(arm64.platform->architecture, "arm64");
  EXPECT_EQ(arm64.platform->variant, "v8");
  EXPECT_EQ(arm64.platform->os_version, "6.1");
  EXPECT_EQ(arm64.platform->os_features, (std::vector<std::string>{"sse4", "fancy"}));
  EXPECT_EQ(arm64.annotations.at("com.example.key"), "value");
  EXPECT_EQ(r->annotations.at("com.example.index"), "yes");
}

TEST(ParseManifest, OciIndexInferredFromManifestsArray) {
  std::string body =
      Replace(kOciIndexJson, R"("mediaType": "application/vnd.oci.image.index.v1+json",)", "");
  Result<ParsedManifest> r = Parse(body, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kIndex);
  EXPECT_EQ(r->media_type, kOciIndex);
}

TEST(ParseManifest, EmptyIndexIsAccepted) {
  Result<ParsedManifest> r = Parse(R"({"schemaVersion":2,"manifests":[]})", kOciIndex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kIndex);
  EXPECT_TRUE(r->manifests.empty());
}

TEST(ParseManifest, DockerManifestList) {
  Result<ParsedManifest> r = Parse(kDockerListJson, kDockerManifestList);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kIndex);
  EXPECT_EQ(r->media_type, kDockerManifestList);
  ASSERT_EQ(r->manifests.size(), 2u);
  EXPECT_EQ(r->manifests[0].media_type, kDockerManifest);
  ASSERT_TRUE(r->manifests[1].platform.has_value());
  EXPECT_EQ(r->manifests[1].platform->architecture, "arm");
  EXPECT_EQ(r->manifests[1].platform->variant, "v7");
}

TEST(ParseManifest, ArtifactWithArtifactTypeSubjectAndNoLayers) {
  Result<ParsedManifest> r = Parse(kArtifactJson, kOciManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, ManifestKind::kImage);
  EXPECT_EQ(r->artifact_type, "application/vnd.example.sbom.v1");
  EXPECT_TRUE(r->layers.empty());
  ASSERT_TRUE(r->config.has_value());
  EXPECT_EQ(r->config->media_type, kOciEmptyJson);
  EXPECT_EQ(r->config->size, 2);
  ASSERT_TRUE(r->subject.has_value());
  EXPECT_EQ(r->subject->digest.str(), D("$SUBJECT"));
  EXPECT_EQ(r->subject->size, 1234);
  EXPECT_EQ(r->subject->media_type, kOciManifest);
  EXPECT_EQ(r->blobs().size(), 1u);  // just the config
  EXPECT_EQ(r->annotations.at("org.opencontainers.image.created"), "2024-05-01T00:00:00Z");
}

TEST(ParseManifest, IndexCanCarryArtifactTypeAndSubject) {
  std::string body = Json(R"({"schemaVersion":2,
    "mediaType":"application/vnd.oci.image.index.v1+json",
    "artifactType":"application/vnd.example.bundle",
    "manifests":[],
    "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
               "digest":"$SUBJECT","size":10}})");
  Result<ParsedManifest> r = Parse(body, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->artifact_type, "application/vnd.example.bundle");
  ASSERT_TRUE(r->subject.has_value());
  EXPECT_EQ(r->subject->digest.str(), D("$SUBJECT"));
}

TEST(ParseManifest, MissingOrNullSubjectIsFine) {
  Result<ParsedManifest> r = Parse(kDockerImageJson, kDockerManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->subject.has_value());

  std::string body = Replace(kOciImageJson, R"("schemaVersion": 2,)",
                             R"("schemaVersion": 2, "subject": null, "artifactType": null,)");
  r = Parse(body, kOciManifest);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->subject.has_value());
  EXPECT_EQ(r->artifact_type, kOciConfig);
}

TEST(ParseManifest, MalformedJsonIsManifestInvalid) {
  for (std::string_view body :
       {"   ", "{", "not json", "{\"schemaVersion\": 2,}", "{'schemaVersion': 2}", "{} trailing",
        "{}{}", "{\"a\": 1 /* comment */}"}) {
    SCOPED_TRACE(body);
    ExpectInvalid(Parse(body, kOciManifest), {"JSON"});
  }
}

TEST(ParseManifest, EmptyBodyIsManifestInvalid) {
  ExpectInvalid(Parse("", kOciManifest), {"manifest is empty"});
}

TEST(ParseManifest, EveryTruncationOfAValidManifestIsRejected) {
  ASSERT_TRUE(Parse(kOciIndexJson, "").ok());
  ASSERT_EQ(kOciIndexJson.back(), '}');  // so every strict prefix is incomplete
  for (size_t n = 1; n < kOciIndexJson.size(); ++n) {
    Result<ParsedManifest> r = Parse(std::string_view(kOciIndexJson).substr(0, n), kOciIndex);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(r.status().code(), Code::kManifestInvalid);
  }
}

TEST(ParseManifest, InvalidUtf8IsRejected) {
  std::string body = Replace(kDockerImageJson, "\"schemaVersion\"", "\"schemaVersion\xff\"");
  ExpectInvalid(Parse(body, kDockerManifest), {"JSON"});
}

TEST(ParseManifest, NonObjectJsonIsRejected) {
  for (std::string_view body : {"[]", "\"manifest\"", "42", "null", "true", "[{}]"}) {
    SCOPED_TRACE(body);
    ExpectInvalid(Parse(body, kOciManifest), {"JSON object"});
  }
}

TEST(ParseManifest, SchemaVersion1IsExplainedAsUnsupported) {
  constexpr std::string_view kMessage =
      "Docker image manifest schema 1 is not supported; push the image in Docker schema 2 or OCI "
      "format";
  ExpectInvalid(Parse(kSchema1Json, ""), {kMessage});
  ExpectInvalid(Parse(kSchema1Json, kDockerSchema1), {kMessage});
  ExpectInvalid(Parse(kSchema1Json, kDockerSchema1Signed), {kMessage});
  // The schema 1 Content-Type alone is enough, whatever the body claims.
  ExpectInvalid(Parse(kDockerImageJson, kDockerSchema1Signed), {kMessage});
  ExpectInvalid(Parse(kDockerImageJson, std::string(kDockerSchema1) + "; charset=utf-8"),
                {kMessage});
  // So is a schema 1 mediaType field.
  ExpectInvalid(Parse(Replace(kDockerImageJson, kDockerManifest, kDockerSchema1), ""), {kMessage});
}

TEST(ParseManifest, SchemaVersionMustBeTheInteger2) {
  std::string_view field = R"("schemaVersion": 2)";
  ExpectInvalid(Parse(Replace(kDockerImageJson, field, R"("schemaVersion": 3)"), ""),
                {"schemaVersion", "3"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, field, R"("schemaVersion": "2")"), ""),
                {"schemaVersion", "string"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, field, R"("schemaVersion": 2.0)"), ""),
                {"schemaVersion"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, field, R"("schemaVersion": -2)"), ""),
                {"schemaVersion"});
  ExpectInvalid(
      Parse(Replace(kDockerImageJson, field, R"("schemaVersion": 18446744073709551615)"), ""),
      {"schemaVersion"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, field, R"("other": 2)"), ""),
                {"schemaVersion", "missing"});
}

TEST(ParseManifest, ContentTypeContradictingMediaTypeNamesBoth) {
  ExpectInvalid(Parse(kDockerImageJson, kOciManifest),
                {"mediaType", kDockerManifest, kOciManifest});
  ExpectInvalid(Parse(kOciIndexJson, kDockerManifestList),
                {"mediaType", kOciIndex, kDockerManifestList});
}

TEST(ParseManifest, ContentTypeAloneDecidesKindSoShapeMustMatch) {
  // Sent as an index, but the body is an image without mediaType.
  ExpectInvalid(Parse(kOciImageJson, kOciIndex), {"manifests", "missing"});
}

TEST(ParseManifest, UnsupportedMediaTypeFieldIsRejected) {
  std::string body =
      Replace(kDockerImageJson, kDockerManifest, "application/vnd.oci.artifact.manifest.v1+json");
  ExpectInvalid(Parse(body, ""), {"mediaType", "application/vnd.oci.artifact.manifest.v1+json"});
  ExpectInvalid(
      Parse(Replace(kDockerImageJson, R"("mediaType": "application/vnd.docker.distribution)",
                    R"("mediaType": 5, "x": "application/vnd.docker.distribution)"),
            ""),
      {"mediaType", "string"});
}

TEST(ParseManifest, TypeCannotBeInferredFromAmbiguousOrEmptyShape) {
  ExpectInvalid(Parse(R"({"schemaVersion": 2})", ""), {"mediaType", "config", "manifests"});
  ExpectInvalid(Parse(R"({"schemaVersion": 2, "config": {}, "manifests": []})", ""),
                {"mediaType", "ambiguous"});
}

TEST(ParseManifest, ImageNeedsConfigAndLayersArray) {
  ExpectInvalid(Parse(R"({"schemaVersion": 2, "layers": []})", kOciManifest),
                {"config", "missing"});
  std::string no_layers = Json(R"({"schemaVersion": 2,
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                 "digest": "$CONFIG", "size": 1}})");
  ExpectInvalid(Parse(no_layers, kOciManifest), {"layers", "missing"});
  std::string layers_object = Json(R"({"schemaVersion": 2,
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                 "digest": "$CONFIG", "size": 1},
      "layers": {}})");
  ExpectInvalid(Parse(layers_object, kOciManifest), {"layers", "array"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, R"("config": {)", R"("config": [], "x": {)"), ""),
                {"config", "object"});
}

TEST(ParseManifest, IndexNeedsManifestsArrayOfDescriptors) {
  ExpectInvalid(Parse(R"({"schemaVersion":2,"manifests":{}})", kOciIndex), {"manifests", "array"});
  ExpectInvalid(Parse(R"({"schemaVersion":2,"manifests":["sha256:abc"]})", kOciIndex),
                {"manifests[0]", "object"});
}

TEST(ParseManifest, BadDescriptorDigestNamesTheField) {
  std::string body = Replace(kDockerImageJson, D("$LAYER2"), "sha256:totallywrong");
  ExpectInvalid(Parse(body, kDockerManifest), {"layers[1].digest"});
  body = Replace(kDockerImageJson, D("$CONFIG"), "md5:d41d8cd98f00b204e9800998ecf8427e");
  ExpectInvalid(Parse(body, kDockerManifest), {"config.digest", "md5"});
  body = Replace(kOciIndexJson, D("$ARM64"), "sha256:ABC");
  ExpectInvalid(Parse(body, ""), {"manifests[1].digest"});
  body = Replace(kArtifactJson, D("$SUBJECT"), "nocolon");
  ExpectInvalid(Parse(body, ""), {"subject.digest"});
  body = Replace(kDockerImageJson, "\"digest\": \"" + D("$LAYER1") + "\"", "\"digest\": 12");
  ExpectInvalid(Parse(body, ""), {"layers[0].digest", "string"});
}

TEST(ParseManifest, BadDescriptorSizeNamesTheField) {
  std::string_view size = R"("size": 16724)";
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("size": -1)"), ""),
                {"layers[1].size", "negative"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("size": "16724")"), ""),
                {"layers[1].size", "integer"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("size": 1.5)"), ""),
                {"layers[1].size", "integer"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("size": 1e3)"), ""),
                {"layers[1].size", "integer"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("size": 18446744073709551615)"), ""),
                {"layers[1].size"});
  ExpectInvalid(Parse(Replace(kDockerImageJson, size, R"("sighs": 16724)"), ""),
                {"layers[1].size", "missing"});
}

TEST(ParseManifest, ZeroSizeDescriptorIsAccepted) {
  Result<ParsedManifest> r =
      Parse(Replace(kDockerImageJson, R"("size": 16724)", R"("size": 0)"), "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->layers[1].size, 0);
}

TEST(ParseManifest, DescriptorMediaTypeIsRequired) {
  std::string body = Replace(
      kDockerImageJson, R"("mediaType": "application/vnd.docker.container.image.v1+json",)", "");
  ExpectInvalid(Parse(body, ""), {"config.mediaType", "missing"});
  body = Replace(kDockerImageJson, "application/vnd.docker.container.image.v1+json", "");
  ExpectInvalid(Parse(body, ""), {"config.mediaType", "empty"});
}

TEST(ParseManifest, AnnotationsMustMapStringsToStrings) {
  std::string body = Replace(kOciImageJson, R"("2024-01-01T00:00:00Z")", "7");
  ExpectInvalid(Parse(body, ""), {"annotations", "org.opencontainers.image.created", "string"});
  body = Replace(kOciImageJson, R"({"org.opencontainers.image.title": "rootfs.tar.gz"})",
                 R"(["rootfs.tar.gz"])");
  ExpectInvalid(Parse(body, ""), {"layers[0].annotations", "object"});
}

TEST(ParseManifest, PlatformFieldsMustHaveTheRightTypes) {
  ExpectInvalid(Parse(Replace(kOciIndexJson, R"(["sse4", "fancy"])", R"("sse4")"), ""),
                {"manifests[1].platform.os.features", "array"});
  ExpectInvalid(Parse(Replace(kOciIndexJson, R"(["sse4", "fancy"])", R"(["sse4", 1])"), ""),
                {"manifests[1].platform.os.features[1]", "string"});
  ExpectInvalid(Parse(Replace(kOciIndexJson, R"("variant": "v8")", R"("variant": 8)"), ""),
                {"manifests[1].platform.variant", "string"});
  ExpectInvalid(
      Parse(Replace(kOciIndexJson, R"({"architecture": "amd64", "os": "linux"})", "\"linux\""), ""),
      {"manifests[0].platform", "object"});
}

TEST(ParseManifest, BadSubjectIsRejected) {
  std::string body = Replace(kArtifactJson, R"("size": 1234)", R"("size": -5)");
  ExpectInvalid(Parse(body, ""), {"subject.size"});
  body = Replace(kArtifactJson, R"("subject": {)", R"("subject": "x", "y": {)");
  ExpectInvalid(Parse(body, ""), {"subject", "object"});
}

TEST(ParseManifest, ArtifactTypeMustBeAString) {
  std::string body = Replace(kArtifactJson, R"("application/vnd.example.sbom.v1")", "{}");
  ExpectInvalid(Parse(body, ""), {"artifactType", "string"});
}

TEST(ParseManifest, DuplicateKeysLastOneWinsLikeGoClients) {
  // Go's encoding/json (docker, containerd, crane) keeps the last duplicate; agreeing with
  // the clients means the registry validates the same document they act on.
  std::string body = Replace(kDockerImageJson, R"("layers": [)", R"("layers": [], "layers": [)");
  Result<ParsedManifest> r = Parse(body, "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->layers.size(), 2u);
}

TEST(ParseManifest, UnknownFieldsAreIgnored) {
  std::string body = Replace(kDockerImageJson, R"("schemaVersion": 2,)",
                             R"("schemaVersion": 2, "x-vendor": {"deep": [1, 2, {"a": null}]},)");
  EXPECT_TRUE(Parse(body, "").ok());
}

TEST(ParseManifest, DeeplyNestedInputDoesNotCrash) {
  for (size_t depth : {33u, 1000u, 200000u}) {
    SCOPED_TRACE(depth);
    std::string arrays = std::string(depth, '[') + std::string(depth, ']');
    ExpectInvalid(Parse(arrays, ""), {"JSON"});
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"a\":";
    objects += '1';
    objects.append(depth, '}');
    ExpectInvalid(Parse(objects, ""), {"JSON"});
    // Nesting hidden in an otherwise valid manifest.
    std::string body = Replace(kDockerImageJson, R"("schemaVersion": 2,)",
                               "\"schemaVersion\": 2, \"junk\": " + arrays + ",");
    ExpectInvalid(Parse(body, ""), {"JSON"});
    // Unbalanced nesting (truncated garbage).
    ExpectInvalid(Parse(std::string(depth, '['), ""), {"JSON"});
  }
}

TEST(ParseManifest, RandomByteCorruptionNeverCrashes) {
  std::mt19937 rng(1234);
  const std::string fixtures[] = {kDockerImageJson, kOciIndexJson, kArtifactJson, kDockerListJson};
  for (int i = 0; i < 20000; ++i) {
    std::string body = fixtures[i % std::size(fixtures)];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      body[rng() % body.size()] = static_cast<char>(rng() % 256);
    }
    Result<ParsedManifest> r = Parse(body, "");
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kManifestInvalid) << r.status().ToString();
    }
  }
}

}  // namespace
}  // namespace berth::oci
