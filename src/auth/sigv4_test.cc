#include "auth/sigv4.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

// ---- The AWS SigV4 test suite (aws-sig-v4-test-suite, as vendored in
// awslabs/aws-c-auth tests/aws-signing-test-suite/v4/*/header-signed-request.txt).
// Every case: AKIDEXAMPLE, region us-east-1, service "service", 20150830T123600Z,
// host example.amazonaws.com.

constexpr char kSuiteKey[] = "AKIDEXAMPLE";
constexpr char kSuiteSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr int64_t kSuiteTime = 1440938160;  // 2015-08-30T12:36:00Z

struct SuiteCase {
  const char* name;
  const char* method;
  std::string path;  // as in the test suite's request line
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host and X-Amz-Date
  std::string body;
  const char* signed_headers;
  const char* signature;
};

std::vector<SuiteCase> SuiteCases() {
  return {
      {"get-vanilla",
       "GET",
       "/",
       "",
       {},
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"post-vanilla",
       "POST",
       "/",
       "",
       {},
       "",
       "host;x-amz-date",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/",
       "Param2=value2&Param1=value1",
       {},
       "",
       "host;x-amz-date",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/",
       "Param1=value1",
       {},
       "",
       "host;x-amz-date",
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-vanilla-query-unreserved",
       "GET",
       "/",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       {},
       "",
       "host;x-amz-date",
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/",
       "\xE1\x88\xB4=bar",
       {},
       "",
       "host;x-amz-date",
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-vanilla-query-order-encoded",
       "GET",
       "/",
       "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
       {},
       "",
       "host;x-amz-date",
       "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
      {"get-unreserved",
       "GET",
       "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "",
       {},
       "",
       "host;x-amz-date",
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       "",
       {},
       "",
       "host;x-amz-date",
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space-normalized",
       "GET",
       "/example space/",
       "",
       {},
       "",
       "host;x-amz-date",
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-slashes-normalized",
       "GET",
       "//example//",
       "",
       {},
       "",
       "host;x-amz-date",
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-slash-dot-slash-normalized",
       "GET",
       "/./",
       "",
       {},
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-relative-relative-normalized",
       "GET",
       "/example1/example2/../..",
       "",
       {},
       "",
       "host;x-amz-date",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-header-key-duplicate",
       "GET",
       "/",
       "",
       {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
       "",
       "host;my-header1;x-amz-date",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order",
       "GET",
       "/",
       "",
       {{"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"}},
       "",
       "host;my-header1;x-amz-date",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim",
       "GET",
       "/",
       "",
       {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
       "",
       "host;my-header1;my-header2;x-amz-date",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       "",
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Content-Length", "13"},
        {"x-amz-content-sha256",
         "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
       "Param1=value1",
       "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
       "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
  };
}

CredentialLookup LookupOf(std::string key, std::string secret,
                          std::string account = "123456789012") {
  return [key, secret, account](std::string_view id) -> Result<SigningCredential> {
    if (id != key) return Status::NotFound("no such key");
    SigningCredential c;
    c.secret_access_key = secret;
    c.caller.account_id = account;
    c.caller.principal_arn = "arn:aws:iam::" + account + ":user/alice";
    return c;
  };
}

std::string SuiteAuthorization(const SuiteCase& c) {
  return std::string(
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
             "aws4_request, SignedHeaders=") +
         c.signed_headers + ", Signature=" + c.signature;
}

TEST(SigV4TestSuite, EveryVectorVerifies) {
  ManualClock clock(kSuiteTime * 1000);
  SigV4Options opts;
  opts.service = "service";
  opts.region = "us-east-1";
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    std::string authz = SuiteAuthorization(c);
    SigV4Request req;
    req.method = c.method;
    req.path = c.path;
    req.query = c.query;
    req.headers.emplace_back("Host", "example.amazonaws.com");
    for (const auto& [k, v] : c.headers) req.headers.emplace_back(k, v);
    req.headers.emplace_back("Authorization", authz);
    req.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
    req.payload_sha256 = Sha256Hex(c.body);
    auto v = VerifySigV4(req, LookupOf(kSuiteKey, kSuiteSecret), clock, opts);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(v->caller.access_key_id, "AKIDEXAMPLE");
    EXPECT_EQ(v->region, "us-east-1");
    EXPECT_EQ(v->request_time_seconds, kSuiteTime);
  }
}

TEST(SigV4TestSuite, SignerReproducesEveryVector) {
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    std::string body_hash = Sha256Hex(c.body);
    SigningRequest req;
    req.method = c.method;
    req.path = c.path;
    req.query = c.query;
    req.headers.emplace_back("Host", "example.amazonaws.com");
    for (const auto& [k, v] : c.headers) req.headers.emplace_back(k, v);
    req.payload_sha256 = body_hash;
    req.access_key_id = kSuiteKey;
    req.secret_access_key = kSuiteSecret;
    req.region = "us-east-1";
    req.service = "service";
    req.time_seconds = kSuiteTime;
    auto s = SignRequest(req);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->amz_date, "20150830T123600Z");
    EXPECT_EQ(s->signed_headers, c.signed_headers);
    EXPECT_EQ(s->signature, c.signature);
    EXPECT_EQ(s->authorization, SuiteAuthorization(c));
  }
}

TEST(SigV4TestSuite, GetVanillaCanonicalRequestAndStringToSign) {
  SigningRequest req;
  req.method = "GET";
  req.path = "/";
  req.headers = {{"Host", "example.amazonaws.com"}};
  req.payload_sha256 = kEmptyPayloadSha256;
  req.access_key_id = kSuiteKey;
  req.secret_access_key = kSuiteSecret;
  req.region = "us-east-1";
  req.service = "service";
  req.time_seconds = kSuiteTime;
  auto s = SignRequest(req);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s->string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
}

TEST(DeriveSigningKey, MatchesAwsDocumentationExample) {
  // "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
  EXPECT_EQ(HexEncode(DeriveSigningKey(kSuiteSecret, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

// ---- Requests captured from botocore 1.43.11 (aws CLI / boto3) with
// src/auth/testdata/capture_botocore_sigv4.py: the ECR JSON 1.1 calls exactly as
// sent on the wire (plus the Host header urllib3 adds), clock frozen at
// 2024-05-06T07:08:09Z, key AKIAIOSFODNN7EXAMPLE, region us-west-2.

constexpr char kBotoKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kBotoSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr int64_t kBotoTime = 1714979289;  // 2024-05-06T07:08:09Z
constexpr char kCreateRepositoryBody[] = R"({"repositoryName": "team/app"})";
constexpr char kCreateRepositoryAuthorization[] =
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240506/us-west-2/ecr/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
    "Signature=77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17";

// Owns the strings the HeaderList views point into.
struct BotoRequest {
  std::vector<std::pair<std::string, std::string>> header_storage;
  std::string body;
  SigV4Request Request() const {
    SigV4Request r;
    r.method = "POST";
    r.path = "/";
    r.query = "";
    for (const auto& [k, v] : header_storage) r.headers.emplace_back(k, v);
    r.payload_sha256 = Sha256Hex(body);
    return r;
  }
  void Set(const std::string& name, const std::string& value) {
    for (auto& [k, v] : header_storage) {
      if (k == name) v = value;
    }
  }
  void Remove(const std::string& name) {
    std::erase_if(header_storage, [&](const auto& kv) { return kv.first == name; });
  }
};

BotoRequest CreateRepositoryFromBotocore() {
  BotoRequest r;
  r.header_storage = {
      {"Host", "localhost:5000"},
      {"Accept-Encoding", "identity"},
      {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.CreateRepository"},
      {"Content-Type", "application/x-amz-json-1.1"},
      {"User-Agent",
       "Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v657 md/arch#x86_64 "
       "lang/python#3.11.7 md/pyimpl#CPython m/D,N,e,Z,b cfg/retry-mode#legacy "
       "Botocore/1.43.11"},
      {"X-Amz-Date", "20240506T070809Z"},
      {"Authorization", kCreateRepositoryAuthorization},
      {"amz-sdk-invocation-id", "94778732-cf2d-415d-8c1d-448d7c5d9dd6"},
      {"amz-sdk-request", "attempt=1"},
      {"Content-Length", "30"},
  };
  r.body = kCreateRepositoryBody;
  return r;
}

AuthResult<SigV4Verified, SigV4Error> VerifyAt(const SigV4Request& req, int64_t now_seconds,
                                               const SigV4Options& opts = {}) {
  ManualClock clock(now_seconds * 1000);
  return VerifySigV4(req, LookupOf(kBotoKey, kBotoSecret), clock, opts);
}

TEST(SigV4Botocore, CreateRepositoryVerifies) {
  auto boto = CreateRepositoryFromBotocore();
  SigV4Options opts;
  opts.region = "us-west-2";
  auto v = VerifyAt(boto.Request(), kBotoTime + 3, opts);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->caller.authenticated);
  EXPECT_EQ(v->caller.access_key_id, kBotoKey);
  EXPECT_EQ(v->caller.account_id, "123456789012");
  EXPECT_EQ(v->caller.principal_arn, "arn:aws:iam::123456789012:user/alice");
  EXPECT_FALSE(v->caller.unrestricted);
  EXPECT_EQ(v->region, "us-west-2");
  EXPECT_EQ(v->request_time_seconds, kBotoTime);
}

TEST(SigV4Botocore, GetAuthorizationTokenWithPortInHostVerifies) {
  BotoRequest r;
  r.header_storage = {
      {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"},
      {"Content-Type", "application/x-amz-json-1.1"},
      {"User-Agent", "Boto3/1.43.11 Botocore/1.43.11"},
      {"X-Amz-Date", "20240506T070809Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240506/us-west-2/ecr/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
       "Signature=2c2b1a03dd10103d8153fce8c9399ea8c2668470c93478736da731ba5a378df7"},
      {"amz-sdk-invocation-id", "aaf6986a-251b-442b-959b-810318e46e05"},
      {"amz-sdk-request", "attempt=1"},
      {"Content-Length", "2"},
      {"Host", "127.0.0.1:8443"},
  };
  r.body = "{}";
  auto v = VerifyAt(r.Request(), kBotoTime);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

TEST(SigV4Botocore, PathQueryAndHeaderCanonicalizationMatchBotocore) {
  // GET /v2/team/a%20b/./x//tags/list?n=10&last=a%2Fb&empty signed by SigV4Auth:
  // botocore removes "." and empty segments and encodes the raw path again.
  SigV4Request req;
  req.method = "GET";
  req.path = "/v2/team/a%20b/./x//tags/list";
  req.query = "n=10&last=a%2Fb&empty";
  req.headers = {
      {"X-Custom", "  a   b  "},
      {"Host", "localhost:5000"},
      {"X-Amz-Date", "20240506T070809Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240506/us-west-2/ecr/aws4_request, "
       "SignedHeaders=host;x-amz-date;x-custom, "
       "Signature=835867777640b32fad029b7bb40607e5c2f1e9cca0e55a9b95e65c8a28a84513"},
  };
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  auto v = VerifyAt(req, kBotoTime);
  EXPECT_TRUE(v.ok()) << v.status().ToString();

  // botocore's CanonicalRequest for the same request (SigV4Auth.canonical_request).
  SigningRequest s;
  s.method = "GET";
  s.path = req.path;
  s.query = req.query;
  s.headers = {{"X-Custom", "  a   b  "}, {"Host", "localhost:5000"}};
  s.payload_sha256 = kEmptyPayloadSha256;
  s.access_key_id = kBotoKey;
  s.secret_access_key = kBotoSecret;
  s.region = "us-west-2";
  s.service = "ecr";
  s.time_seconds = kBotoTime;
  auto signed_req = SignRequest(s);
  ASSERT_TRUE(signed_req.ok());
  EXPECT_EQ(signed_req->canonical_request,
            "GET\n/v2/team/a%2520b/x/tags/list\nempty=&last=a%2Fb&n=10\n"
            "host:localhost:5000\nx-amz-date:20240506T070809Z\nx-custom:a b\n\n"
            "host;x-amz-date;x-custom\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signed_req->signature,
            "835867777640b32fad029b7bb40607e5c2f1e9cca0e55a9b95e65c8a28a84513");
}

TEST(SigV4Botocore, DateHeaderInsteadOfXAmzDateVerifies) {
  BotoRequest r;
  r.header_storage = {
      {"Host", "localhost:5000"},
      {"Content-Type", "application/x-amz-json-1.1"},
      {"Date", "Mon, 06 May 2024 07:08:09 -0000"},
      {"Authorization",
       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240506/us-west-2/ecr/aws4_request, "
       "SignedHeaders=content-type;date;host, "
       "Signature=d9163d142c953e00d78d93e88efcfed2ba767bb8034d56544516e414cb07f165"},
  };
  r.body = "{}";
  auto v = VerifyAt(r.Request(), kBotoTime);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->request_time_seconds, kBotoTime);
}

TEST(SigV4Signer, ReproducesBotocoreCreateRepository) {
  SigningRequest s;
  s.method = "POST";
  s.path = "/";
  // What botocore had when it signed; user-agent is never signed.
  s.headers = {{"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.CreateRepository"},
               {"Content-Type", "application/x-amz-json-1.1"},
               {"User-Agent", "berth/0.1.0"},
               {"Host", "localhost:5000"}};
  std::string hash = Sha256Hex(kCreateRepositoryBody);
  s.payload_sha256 = hash;
  s.access_key_id = kBotoKey;
  s.secret_access_key = kBotoSecret;
  s.region = "us-west-2";
  s.service = "ecr";
  s.time_seconds = kBotoTime;
  auto out = SignRequest(s);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->authorization, kCreateRepositoryAuthorization);
  EXPECT_EQ(out->amz_date, "20240506T070809Z");
}

TEST(SigV4Signer, RequiresHost) {
  SigningRequest s;
  s.method = "POST";
  s.path = "/";
  s.payload_sha256 = kEmptyPayloadSha256;
  s.access_key_id = kBotoKey;
  s.secret_access_key = kBotoSecret;
  s.region = "us-west-2";
  s.service = "ecr";
  auto out = SignRequest(s);
  EXPECT_TRUE(out.status().Is(Code::kInvalidArgument));
  s.headers = {{"Host", "h"}};
  s.secret_access_key = "";
  EXPECT_TRUE(SignRequest(s).status().Is(Code::kInvalidArgument));
}

TEST(SigV4Signer, IgnoresGivenAuthorizationAndDate) {
  SigningRequest s;
  s.method = "GET";
  s.path = "/";
  s.headers = {{"Host", "example.amazonaws.com"},
               {"Authorization", "old"},
               {"X-Amz-Date", "20000101T000000Z"}};
  s.payload_sha256 = kEmptyPayloadSha256;
  s.access_key_id = kSuiteKey;
  s.secret_access_key = kSuiteSecret;
  s.region = "us-east-1";
  s.service = "service";
  s.time_seconds = kSuiteTime;
  auto out = SignRequest(s);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// ---- Negative cases, on the botocore CreateRepository request.

TEST(SigV4Verify, WrongSecretIsSignatureMismatch) {
  auto boto = CreateRepositoryFromBotocore();
  ManualClock clock(kBotoTime * 1000);
  auto v = VerifySigV4(boto.Request(), LookupOf(kBotoKey, "not-the-secret"), clock);
  EXPECT_EQ(v.kind(), SigV4Error::kSignatureMismatch);
  EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
  EXPECT_NE(v.status().message().find("does not match"), std::string::npos);
}

TEST(SigV4Verify, UnknownKey) {
  auto boto = CreateRepositoryFromBotocore();
  ManualClock clock(kBotoTime * 1000);
  auto v = VerifySigV4(boto.Request(), LookupOf("AKIAOTHERKEY00000000", kBotoSecret), clock);
  EXPECT_EQ(v.kind(), SigV4Error::kUnknownAccessKey);
  EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
  EXPECT_NE(v.status().message().find("AKIAIOSFODNN7EXAMPLE"), std::string::npos);
}

TEST(SigV4Verify, LookupFailureIsInternal) {
  auto boto = CreateRepositoryFromBotocore();
  ManualClock clock(kBotoTime * 1000);
  CredentialLookup broken = [](std::string_view) -> Result<SigningCredential> {
    return Status::IoError("disk on fire");
  };
  auto v = VerifySigV4(boto.Request(), broken, clock);
  EXPECT_EQ(v.kind(), SigV4Error::kInternal);
  EXPECT_TRUE(v.status().Is(Code::kInternal));
}

TEST(SigV4Verify, RequestTwentyMinutesOldIsExpired) {
  auto boto = CreateRepositoryFromBotocore();
  auto v = VerifyAt(boto.Request(), kBotoTime + 20 * 60);
  EXPECT_EQ(v.kind(), SigV4Error::kRequestTimeSkewed);
  EXPECT_EQ(v.status().message(),
            "Signature expired: 20240506T070809Z is now earlier than 20240506T071309Z "
            "(20240506T072809Z - 15 min.)");
}

TEST(SigV4Verify, RequestTwentyMinutesAheadIsNotYetCurrent) {
  auto boto = CreateRepositoryFromBotocore();
  auto v = VerifyAt(boto.Request(), kBotoTime - 20 * 60);
  EXPECT_EQ(v.kind(), SigV4Error::kRequestTimeSkewed);
  EXPECT_EQ(v.status().message(),
            "Signature not yet current: 20240506T070809Z is still later than 20240506T070309Z "
            "(20240506T064809Z + 15 min.)");
}

TEST(SigV4Verify, SkewOfExactlyFifteenMinutesIsAccepted) {
  auto boto = CreateRepositoryFromBotocore();
  EXPECT_TRUE(VerifyAt(boto.Request(), kBotoTime + 15 * 60).ok());
  EXPECT_TRUE(VerifyAt(boto.Request(), kBotoTime - 15 * 60).ok());
  EXPECT_FALSE(VerifyAt(boto.Request(), kBotoTime + 15 * 60 + 1).ok());
  SigV4Options tight;
  tight.max_skew_seconds = 30;
  auto v = VerifyAt(boto.Request(), kBotoTime + 31, tight);
  EXPECT_EQ(v.kind(), SigV4Error::kRequestTimeSkewed);
  EXPECT_NE(v.status().message().find("- 30 sec.)"), std::string::npos);
}

TEST(SigV4Verify, BodyChangedAfterSigningIsSignatureMismatch) {
  auto boto = CreateRepositoryFromBotocore();
  boto.body = R"({"repositoryName": "team/evil"})";
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kSignatureMismatch);
}

TEST(SigV4Verify, SignedHeaderAlteredIsSignatureMismatch) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DeleteRepository");
  EXPECT_EQ(VerifyAt(boto.Request(), kBotoTime).kind(), SigV4Error::kSignatureMismatch);
  boto = CreateRepositoryFromBotocore();
  boto.Set("Host", "evil.example:5000");
  EXPECT_EQ(VerifyAt(boto.Request(), kBotoTime).kind(), SigV4Error::kSignatureMismatch);
}

TEST(SigV4Verify, UnsignedHeadersMayChange) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("User-Agent", "something else");
  boto.Set("amz-sdk-request", "attempt=2");
  EXPECT_TRUE(VerifyAt(boto.Request(), kBotoTime).ok());
}

TEST(SigV4Verify, HeaderNamesAreCaseInsensitive) {
  auto boto = CreateRepositoryFromBotocore();
  for (auto& [k, v] : boto.header_storage) {
    for (char& c : k) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  EXPECT_TRUE(VerifyAt(boto.Request(), kBotoTime).ok());
}

TEST(SigV4Verify, MethodPathAndQueryAreSigned) {
  auto boto = CreateRepositoryFromBotocore();
  SigV4Request req = boto.Request();
  req.method = "PUT";
  EXPECT_EQ(VerifyAt(req, kBotoTime).kind(), SigV4Error::kSignatureMismatch);
  req = boto.Request();
  req.path = "/other";
  EXPECT_EQ(VerifyAt(req, kBotoTime).kind(), SigV4Error::kSignatureMismatch);
  req = boto.Request();
  req.query = "x=1";
  EXPECT_EQ(VerifyAt(req, kBotoTime).kind(), SigV4Error::kSignatureMismatch);
}

std::string WithSignedHeaders(const std::string& signed_headers) {
  return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240506/us-west-2/ecr/aws4_request, "
         "SignedHeaders=" +
         signed_headers +
         ", Signature=77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17";
}

TEST(SigV4Verify, UnsignedHostIsRefused) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("Authorization", WithSignedHeaders("content-type;x-amz-date;x-amz-target"));
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kHeaderNotSigned);
  EXPECT_NE(v.status().message().find("'host'"), std::string::npos);
}

TEST(SigV4Verify, UnsignedDateIsRefused) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("Authorization", WithSignedHeaders("content-type;host;x-amz-target"));
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kHeaderNotSigned);
  EXPECT_NE(v.status().message().find("'x-amz-date'"), std::string::npos);
}

// A signature that left x-amz-target out validated: a captured DescribeImages could be
// replayed as DeleteRepository (same body, another target).
TEST(SigV4Verify, UnsignedTargetOrContentTypeIsRefusedWhenRequired) {
  auto boto = CreateRepositoryFromBotocore();
  SigV4Options opts;
  opts.signed_when_present = {"x-amz-target", "content-type"};
  boto.Set("Authorization", WithSignedHeaders("content-type;host;x-amz-date"));
  auto v = VerifyAt(boto.Request(), kBotoTime, opts);
  EXPECT_EQ(v.kind(), SigV4Error::kHeaderNotSigned);
  EXPECT_NE(v.status().message().find("'x-amz-target'"), std::string::npos);
  boto.Set("Authorization", WithSignedHeaders("host;x-amz-date;x-amz-target"));
  v = VerifyAt(boto.Request(), kBotoTime, opts);
  EXPECT_EQ(v.kind(), SigV4Error::kHeaderNotSigned);
  EXPECT_NE(v.status().message().find("'content-type'"), std::string::npos);
  // Only when present: a request without Content-Type need not sign it (the signature
  // then fails to match, as the header list differs from what botocore signed).
  boto.Remove("Content-Type");
  v = VerifyAt(boto.Request(), kBotoTime, opts);
  EXPECT_NE(v.kind(), SigV4Error::kHeaderNotSigned);
}

TEST(SigV4Verify, SignedHeaderAbsentFromRequestIsRefused) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Remove("X-Amz-Target");
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kHeaderNotSigned);
  EXPECT_NE(v.status().message().find("x-amz-target"), std::string::npos);
}

TEST(SigV4Verify, NoDateHeaderIsMalformed) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Remove("X-Amz-Date");
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kMalformed);
  EXPECT_NE(v.status().message().find("'X-Amz-Date' or a 'Date'"), std::string::npos);
}

TEST(SigV4Verify, UnparsableDateIsMalformed) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("X-Amz-Date", "2024-05-06T07:08:09Z");
  EXPECT_EQ(VerifyAt(boto.Request(), kBotoTime).kind(), SigV4Error::kMalformed);
}

TEST(SigV4Verify, ScopeDateNotMatchingXAmzDate) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Set("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240505/us-west-2/ecr/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
           "Signature=77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17");
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kScopeDateMismatch);
  EXPECT_NE(v.status().message().find("'20240505' != '20240506'"), std::string::npos);
}

TEST(SigV4Verify, WrongServiceIsRefused) {
  // A valid signature, but for S3.
  SigningRequest s;
  s.method = "POST";
  s.path = "/";
  s.headers = {{"Host", "localhost:5000"}};
  s.payload_sha256 = kEmptyPayloadSha256;
  s.access_key_id = kBotoKey;
  s.secret_access_key = kBotoSecret;
  s.region = "us-west-2";
  s.service = "s3";
  s.time_seconds = kBotoTime;
  auto signed_req = SignRequest(s);
  ASSERT_TRUE(signed_req.ok());
  SigV4Request req;
  req.method = "POST";
  req.path = "/";
  req.headers = {{"Host", "localhost:5000"},
                 {"X-Amz-Date", signed_req->amz_date},
                 {"Authorization", signed_req->authorization}};
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  auto v = VerifyAt(req, kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kWrongService);
  EXPECT_NE(v.status().message().find("'ecr'"), std::string::npos);
  SigV4Options s3;
  s3.service = "s3";
  EXPECT_TRUE(VerifyAt(req, kBotoTime, s3).ok());
}

TEST(SigV4Verify, WrongRegionWhenOneIsConfigured) {
  auto boto = CreateRepositoryFromBotocore();
  SigV4Options opts;
  opts.region = "eu-west-1";
  auto v = VerifyAt(boto.Request(), kBotoTime, opts);
  EXPECT_EQ(v.kind(), SigV4Error::kWrongRegion);
  EXPECT_NE(v.status().message().find("us-west-2"), std::string::npos);
  // AWS's own wording first, so clients and people recognise it.
  EXPECT_TRUE(v.status().message().starts_with("Credential should be scoped to a valid region."))
      << v.status().message();
}

TEST(SigV4Verify, MissingAuthorization) {
  auto boto = CreateRepositoryFromBotocore();
  boto.Remove("Authorization");
  auto v = VerifyAt(boto.Request(), kBotoTime);
  EXPECT_EQ(v.kind(), SigV4Error::kMissingAuthentication);
  EXPECT_TRUE(v.status().Is(Code::kUnauthorized));
}

TEST(SigV4Verify, TwoAuthorizationHeadersAreMalformed) {
  auto boto = CreateRepositoryFromBotocore();
  boto.header_storage.emplace_back("authorization", kCreateRepositoryAuthorization);
  EXPECT_EQ(VerifyAt(boto.Request(), kBotoTime).kind(), SigV4Error::kMalformed);
}

TEST(SigV4Verify, PayloadHashHeader) {
  auto boto = CreateRepositoryFromBotocore();
  // A matching x-amz-content-sha256 that was not signed changes nothing.
  boto.header_storage.emplace_back("x-amz-content-sha256", Sha256Hex(kCreateRepositoryBody));
  EXPECT_TRUE(VerifyAt(boto.Request(), kBotoTime).ok());
  // One that does not match the body is refused before the signature is checked.
  boto.Set("x-amz-content-sha256", Sha256Hex("other"));
  EXPECT_EQ(VerifyAt(boto.Request(), kBotoTime).kind(), SigV4Error::kPayloadHashMismatch);
  // A body that was not hashed: the header is trusted (and the caller checks it).
  boto.Set("x-amz-content-sha256", Sha256Hex(kCreateRepositoryBody));
  SigV4Request req = boto.Request();
  req.payload_sha256.reset();
  EXPECT_TRUE(VerifyAt(req, kBotoTime).ok());
  // Neither a hash nor the header.
  boto.Remove("x-amz-content-sha256");
  req = boto.Request();
  req.payload_sha256.reset();
  EXPECT_EQ(VerifyAt(req, kBotoTime).kind(), SigV4Error::kMalformed);
}

TEST(SigV4Verify, UnsignedPayloadOnlyWhenAllowed) {
  SigningRequest s;
  s.method = "PUT";
  s.path = "/upload";
  s.headers = {{"Host", "localhost:5000"}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
  s.payload_sha256 = kUnsignedPayload;
  s.access_key_id = kBotoKey;
  s.secret_access_key = kBotoSecret;
  s.region = "us-west-2";
  s.service = "ecr";
  s.time_seconds = kBotoTime;
  auto signed_req = SignRequest(s);
  ASSERT_TRUE(signed_req.ok());
  EXPECT_EQ(signed_req->signed_headers, "host;x-amz-content-sha256;x-amz-date");
  SigV4Request req;
  req.method = "PUT";
  req.path = "/upload";
  req.headers = {{"Host", "localhost:5000"},
                 {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                 {"X-Amz-Date", signed_req->amz_date},
                 {"Authorization", signed_req->authorization}};
  req.payload_sha256 = Sha256Hex("anything");
  EXPECT_EQ(VerifyAt(req, kBotoTime).kind(), SigV4Error::kPayloadHashMismatch);
  SigV4Options allow;
  allow.allow_unsigned_payload = true;
  EXPECT_TRUE(VerifyAt(req, kBotoTime, allow).ok());
}

TEST(SigV4ParseAuthorization, WellFormed) {
  auto a = ParseAuthorizationHeader(kCreateRepositoryAuthorization);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->access_key_id, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(a->date, "20240506");
  EXPECT_EQ(a->region, "us-west-2");
  EXPECT_EQ(a->service, "ecr");
  EXPECT_EQ(a->signed_headers,
            (std::vector<std::string>{"content-type", "host", "x-amz-date", "x-amz-target"}));
  EXPECT_EQ(a->signed_headers_text, "content-type;host;x-amz-date;x-amz-target");
  EXPECT_EQ(a->signature, "77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17");
  // Without spaces after commas, as some SDKs send it.
  auto b = ParseAuthorizationHeader(
      "AWS4-HMAC-SHA256 Credential=K/20240506/r/ecr/aws4_request,SignedHeaders=host,"
      "Signature=77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17");
  EXPECT_TRUE(b.ok()) << b.status().ToString();
}

TEST(SigV4ParseAuthorization, MalformedHeaders) {
  const std::string sig =
      "Signature=77fa12df0299f0d9a500f8897f8947ed16af97e0b7b0546b8704e37102cfde17";
  const std::string cred = "Credential=K/20240506/us-west-2/ecr/aws4_request";
  struct Case {
    std::string header;
    std::string message_part;
  };
  std::vector<Case> cases = {
      {"Basic QVdTOnBhc3M=", "unsupported authorization type 'Basic'"},
      {"AWS4-HMAC-SHA1 " + cred + ", SignedHeaders=host, " + sig, "AWS4-HMAC-SHA1"},
      {"AWS4-HMAC-SHA256", "requires 'Credential'"},
      {"AWS4-HMAC-SHA256 SignedHeaders=host, " + sig, "requires 'Credential'"},
      {"AWS4-HMAC-SHA256 " + cred + ", " + sig, "requires 'SignedHeaders'"},
      {"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host", "requires 'Signature'"},
      {"AWS4-HMAC-SHA256 " + cred + ", " + cred + ", SignedHeaders=host, " + sig, "repeats"},
      {"AWS4-HMAC-SHA256 " + cred + ", Foo=bar, SignedHeaders=host, " + sig, "unknown component"},
      {"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders, " + sig, "name=value"},
      {"AWS4-HMAC-SHA256 Credential=K/20240506/us-west-2/ecr, SignedHeaders=host, " + sig,
       "ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"},
      {"AWS4-HMAC-SHA256 Credential=K/2024056/us-west-2/ecr/aws4_request, SignedHeaders=host, " +
           sig,
       "ACCESS_KEY_ID/YYYYMMDD"},
      {"AWS4-HMAC-SHA256 Credential=/20240506/us-west-2/ecr/aws4_request, SignedHeaders=host, " +
           sig,
       "ACCESS_KEY_ID/YYYYMMDD"},
      {"AWS4-HMAC-SHA256 Credential=K/20240506/us-west-2/ecr/aws5_request, SignedHeaders=host, " +
           sig,
       "valid terminator"},
      {"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=Host, " + sig, "lower-case"},
      {"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x-amz-date, " + sig, "lower-case"},
      {"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=abc", "64 lower-case"},
      {"AWS4-HMAC-SHA256 " + cred +
           ", SignedHeaders=host, "
           "Signature=77FA12DF0299F0D9A500F8897F8947ED16AF97E0B7B0546B8704E37102CFDE17",
       "64 lower-case"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    auto a = ParseAuthorizationHeader(c.header);
    EXPECT_EQ(a.kind(), SigV4Error::kMalformed);
    EXPECT_TRUE(a.status().Is(Code::kUnauthorized));
    EXPECT_NE(a.status().message().find(c.message_part), std::string::npos) << a.status().message();
  }
}

TEST(SigV4Canonical, UriEncode) {
  EXPECT_EQ(UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(UriEncode("a b/c+d=e:f%", false), "a%20b%2Fc%2Bd%3De%3Af%25");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", false), "%E1%88%B4");
  EXPECT_EQ(UriEncode(std::string("\0", 1), false), "%00");
}

TEST(SigV4Canonical, CanonicalUriFollowsBotocore) {
  struct Case {
    const char* raw;
    const char* canonical;
  };
  for (const Case& c : std::vector<Case>{
           {"", "/"},
           {"/", "/"},
           {"//", "/"},
           {"/a/b", "/a/b"},
           {"/a/b/", "/a/b/"},
           {"/a/./b", "/a/b"},
           {"/a/../b", "/b"},
           {"/../..", "/"},
           {"/a//b//", "/a/b/"},
           {"/v2/team/app/manifests/sha256:abc", "/v2/team/app/manifests/sha256%3Aabc"},
           {"/a%20b", "/a%2520b"},  // encoded again, as botocore does for non-S3 services
           {"/a b", "/a%20b"},
           {"/~user", "/~user"},
       }) {
    EXPECT_EQ(CanonicalUri(c.raw), c.canonical) << c.raw;
  }
}

TEST(SigV4Canonical, CanonicalQueryString) {
  struct Case {
    const char* raw;
    const char* canonical;
  };
  for (const Case& c : std::vector<Case>{
           {"", ""},
           {"a=1", "a=1"},
           {"b=2&a=1", "a=1&b=2"},
           {"a=2&a=1", "a=1&a=2"},
           {"B=1&a=1", "B=1&a=1"},  // byte order: upper case sorts first
           {"flag", "flag="},
           {"a=1&&b=2", "a=1&b=2"},
           {"a=x%2fy", "a=x%2Fy"},  // escapes normalized to upper-case hex
           {"a=x/y", "a=x%2Fy"},
           {"a=b c", "a=b%20c"},
           {"a=b+c", "a=b%2Bc"},  // '+' is a literal plus, not a space
           {"a=%zz", "a=%25zz"},  // a malformed escape is a literal '%'
           {"k=v=w", "k=v%3Dw"},
       }) {
    EXPECT_EQ(CanonicalQueryString(c.raw), c.canonical) << c.raw;
  }
}

TEST(SigV4Canonical, CanonicalHeaderValue) {
  EXPECT_EQ(CanonicalHeaderValue("  a   b  "), "a b");
  EXPECT_EQ(CanonicalHeaderValue("\ta\t\tB\r\n c "), "a B c");
  EXPECT_EQ(CanonicalHeaderValue(""), "");
  EXPECT_EQ(CanonicalHeaderValue("   "), "");
}

TEST(SigV4Dates, FormatAndParseAmzDate) {
  EXPECT_EQ(FormatAmzDate(0), "19700101T000000Z");
  EXPECT_EQ(FormatAmzDate(kSuiteTime), "20150830T123600Z");
  EXPECT_EQ(FormatAmzDate(951782400), "20000229T000000Z");  // leap day
  EXPECT_EQ(*ParseAmzDate("20150830T123600Z"), kSuiteTime);
  EXPECT_EQ(*ParseAmzDate("20000229T000000Z"), 951782400);
  for (int64_t t : {int64_t{0}, kSuiteTime, kBotoTime, int64_t{4102444799}}) {
    EXPECT_EQ(*ParseAmzDate(FormatAmzDate(t)), t);
  }
  for (const char* bad : {"", "20150830T123600", "20150830 123600Z", "2015083XT123600Z",
                          "20150230T000000Z", "20150830T243600Z", "20151330T000000Z",
                          "20150830T123660Z", "19690101T000000Z", "20150830T123600ZZ"}) {
    auto t = ParseAmzDate(bad);
    EXPECT_TRUE(t.status().Is(Code::kUnauthorized)) << bad;
  }
}

TEST(SigV4Dates, ParseHttpDate) {
  EXPECT_EQ(*ParseHttpDate("Sun, 30 Aug 2015 12:36:00 GMT"), kSuiteTime);
  EXPECT_EQ(*ParseHttpDate("Mon, 06 May 2024 07:08:09 -0000"), kBotoTime);
  EXPECT_EQ(*ParseHttpDate("Mon, 6 May 2024 07:08:09 +0000"), kBotoTime);
  EXPECT_EQ(*ParseHttpDate("Mon, 06 May 2024 07:08:09 UTC"), kBotoTime);
  for (const char* bad : {"", "Mon 06 May 2024 07:08:09 GMT", "Mon, 06 Mai 2024 07:08:09 GMT",
                          "Mon, 06 May 2024 07:08:09 +0200", "Mon, 32 May 2024 07:08:09 GMT",
                          "Mon, 06 May 2024 7:08:09 GMT", "2024-05-06T07:08:09Z"}) {
    EXPECT_FALSE(ParseHttpDate(bad).ok()) << bad;
  }
}

TEST(SigV4Errors, NamesAreDistinct) {
  std::vector<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(SigV4Error::kInternal); ++i) {
    names.push_back(SigV4ErrorName(static_cast<SigV4Error>(i)));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
  EXPECT_EQ(SigV4ErrorName(SigV4Error::kSignatureMismatch), "signature_mismatch");
}


// ---- S3: the published examples of "Signature Calculations for the Authorization
// Header" and "Query String Authentication" (AWS S3 API reference, sig-v4-header-based-
// auth and sigv4-query-string-auth): bucket "examplebucket" addressed virtual-host style,
// 2013-05-24T00:00:00Z, us-east-1. The expected values are AWS's.

constexpr char kS3Key[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kS3Secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kS3Host[] = "examplebucket.s3.amazonaws.com";
constexpr int64_t kS3Time = 1369353600;  // 2013-05-24T00:00:00Z

SigningRequest S3Example(const char* method, const char* path, const char* query,
                         std::string_view payload_sha256) {
  SigningRequest s;
  s.method = method;
  s.path = path;
  s.query = query;
  s.payload_sha256 = payload_sha256;
  s.access_key_id = kS3Key;
  s.secret_access_key = kS3Secret;
  s.region = "us-east-1";
  s.service = "s3";
  s.time_seconds = kS3Time;
  s.uri_mode = UriMode::kS3;
  return s;
}

TEST(SigV4S3Examples, GetObjectWithRange) {
  SigningRequest s = S3Example("GET", "/test.txt", "", kEmptyPayloadSha256);
  s.headers = {{"Host", kS3Host},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptyPayloadSha256}};
  auto out = SignRequest(s);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(Sha256Hex(out->canonical_request),
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(out->authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3Examples, PutObjectEncodesTheKeyOnce) {
  const std::string payload = Sha256Hex("Welcome to Amazon S3.");
  ASSERT_EQ(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // The same request whether the key is sent raw or already encoded: S3 encodes once.
  for (const char* path : {"/test$file.text", "/test%24file.text"}) {
    SigningRequest s = S3Example("PUT", path, "", payload);
    s.headers = {{"Host", kS3Host},
                 {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                 {"x-amz-content-sha256", payload}};
    auto out = SignRequest(s);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->canonical_request.substr(0, 22), "PUT\n/test%24file.text\n") << path;
    EXPECT_EQ(Sha256Hex(out->canonical_request),
              "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d")
        << path;
    EXPECT_EQ(out->signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
    EXPECT_EQ(out->signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
        << path;
  }
}

TEST(SigV4S3Examples, GetBucketLifecycle) {
  SigningRequest s = S3Example("GET", "/", "lifecycle", kEmptyPayloadSha256);
  s.headers = {{"Host", kS3Host}, {"x-amz-content-sha256", kEmptyPayloadSha256}};
  auto out = SignRequest(s);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(Sha256Hex(out->canonical_request),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(out->signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4S3Examples, ListObjects) {
  SigningRequest s = S3Example("GET", "/", "max-keys=2&prefix=J", kEmptyPayloadSha256);
  s.headers = {{"Host", kS3Host}, {"x-amz-content-sha256", kEmptyPayloadSha256}};
  auto out = SignRequest(s);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(Sha256Hex(out->canonical_request),
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(out->signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4S3Examples, PresignedGetObject) {
  PresigningRequest p;
  p.method = "GET";
  p.path = "/test.txt";
  p.headers = {{"Host", kS3Host}};
  p.access_key_id = kS3Key;
  p.secret_access_key = kS3Secret;
  p.region = "us-east-1";
  p.service = "s3";
  p.time_seconds = kS3Time;
  p.expires_seconds = 86400;
  p.uri_mode = UriMode::kS3;
  auto out = Presign(p);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(Sha256Hex(out->canonical_request),
            "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
  EXPECT_EQ(out->signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_EQ(out->query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Presign, SessionTokenIsSignedAndExpiryIsBounded) {
  PresigningRequest p;
  p.method = "GET";
  p.path = "/b/k";
  p.headers = {{"host", "127.0.0.1:7480"}};
  p.access_key_id = kS3Key;
  p.secret_access_key = kS3Secret;
  p.region = "us-east-1";
  p.service = "s3";
  p.time_seconds = kS3Time;
  p.expires_seconds = 60;
  p.uri_mode = UriMode::kS3;
  auto plain = Presign(p);
  ASSERT_TRUE(plain.ok());
  p.session_token = "tok/en+=";
  auto with_token = Presign(p);
  ASSERT_TRUE(with_token.ok());
  EXPECT_NE(with_token->signature, plain->signature);
  EXPECT_NE(with_token->query.find("&X-Amz-Security-Token=tok%2Fen%2B%3D&"), std::string::npos);
  p.expires_seconds = 0;
  EXPECT_TRUE(Presign(p).status().Is(Code::kInvalidArgument));
  p.expires_seconds = 604801;
  EXPECT_TRUE(Presign(p).status().Is(Code::kInvalidArgument));
  p.expires_seconds = 604800;
  EXPECT_TRUE(Presign(p).ok());
  p.headers = {};
  EXPECT_TRUE(Presign(p).status().Is(Code::kInvalidArgument));
}

TEST(SigV4Canonical, CanonicalUriS3EncodesOnceAndKeepsSegments) {
  struct Case {
    const char* raw;
    const char* canonical;
  };
  for (const Case& c : std::vector<Case>{
           {"", "/"},
           {"/", "/"},
           {"//a//b/", "//a//b/"},
           {"/a/./b/../c", "/a/./b/../c"},
           {"/a%20b", "/a%20b"},
           {"/a b", "/a%20b"},
           {"/a%2Fb", "/a/b"},  // '/' is never encoded in an S3 path
           {"/k%25", "/k%25"},
           {"/sha256:abc", "/sha256%3Aabc"},
       }) {
    EXPECT_EQ(CanonicalUri(c.raw, UriMode::kS3), c.canonical) << c.raw;
  }
  // The default stays the botocore rule for other services.
  EXPECT_EQ(CanonicalUri("/a%20b", UriMode::kNormalized), "/a%2520b");
}

}  // namespace
}  // namespace berth::auth
