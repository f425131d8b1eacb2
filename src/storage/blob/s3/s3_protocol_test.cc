#include "storage/blob/s3/s3_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/crypto.h"
#include "auth/sigv4.h"

namespace berth::storage::s3 {
namespace {

using std::chrono::milliseconds;

S3Config ConfigOf(std::string endpoint, std::string bucket, bool path_style = true) {
  S3Config c;
  c.endpoint = std::move(endpoint);
  c.bucket = std::move(bucket);
  c.path_style = path_style;
  return c;
}

std::string HeaderOf(const Headers& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

// ---- Addressing ----

TEST(S3Addressing, PathStyleKeepsThePortAndPutsTheBucketInThePath) {
  auto ep = ResolveEndpoint(ConfigOf("http://127.0.0.1:7480", "registry"));
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  EXPECT_FALSE(ep->tls);
  EXPECT_EQ(ep->connect_host, "127.0.0.1");
  EXPECT_EQ(ep->port, "7480");
  EXPECT_EQ(ep->host_header, "127.0.0.1:7480");
  EXPECT_EQ(ep->url_base, "http://127.0.0.1:7480");
  EXPECT_EQ(RequestPath(*ep, "blobs/sha256/ab/abcd"), "/registry/blobs/sha256/ab/abcd");
  EXPECT_EQ(RequestPath(*ep, ""), "/registry");
}

TEST(S3Addressing, VirtualHostPutsTheBucketInTheHostName) {
  auto ep = ResolveEndpoint(ConfigOf("https://S3.amazonaws.com/", "examplebucket", false));
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->connect_host, "examplebucket.s3.amazonaws.com");
  EXPECT_EQ(ep->port, "443");
  EXPECT_EQ(ep->host_header, "examplebucket.s3.amazonaws.com");
  EXPECT_EQ(ep->display, "https://S3.amazonaws.com");
  EXPECT_EQ(RequestPath(*ep, "test.txt"), "/test.txt");
  EXPECT_EQ(RequestPath(*ep, ""), "/");
}

TEST(S3Addressing, DefaultPortIsLeftOutOfHostAndIpv6KeepsBrackets) {
  auto ep = ResolveEndpoint(ConfigOf("http://minio:80", "b-1"));
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host_header, "minio");
  EXPECT_EQ(ep->port, "80");
  auto v6 = ResolveEndpoint(ConfigOf("http://[::1]:9000", "b-1"));
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->connect_host, "::1");
  EXPECT_EQ(v6->host_header, "[::1]:9000");
}

TEST(S3Addressing, RefusesWhatItCannotAddress) {
  for (const auto& [endpoint, bucket, path_style, needle] :
       std::vector<std::tuple<std::string, std::string, bool, std::string>>{
           {"ftp://h", "b-1", true, "scheme 'ftp'"},
           {"127.0.0.1:7480", "b-1", true, "expected http://HOST:PORT"},
           {"http://h/prefix", "b-1", true, "has a path"},
           {"http://key:secret@h", "b-1", true, "user info"},
           {"http://h:0", "b-1", true, "bad port"},
           {"http://h", "", true, "bucket name is empty"},
           {"http://h", "a/b", true, "not valid"},
           {"http://h", "Upper_Case", false, "virtual-host"},
           {"http://10.0.0.1:7480", "bucket", false, "IP address"},
       }) {
    auto ep = ResolveEndpoint(ConfigOf(endpoint, bucket, path_style));
    ASSERT_TRUE(ep.status().Is(Code::kInvalidArgument)) << endpoint << " " << bucket;
    EXPECT_NE(ep.status().message().find(needle), std::string::npos) << ep.status().message();
  }
  // radosgw's relaxed names are fine in a path.
  EXPECT_TRUE(ResolveEndpoint(ConfigOf("http://h", "Upper_Case")).ok());
}

TEST(S3Addressing, KeysAreEncodedOnceWithSlashesKept) {
  auto ep = ResolveEndpoint(ConfigOf("http://h:1", "b-1"));
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(RequestPath(*ep, "a b/c+d~e=f%/\xC3\xA9"), "/b-1/a%20b/c%2Bd~e%3Df%25/%C3%A9");
  EXPECT_EQ(EncodeQuery({{"uploads", ""}}), "uploads");
  EXPECT_EQ(EncodeQuery({{"list-type", "2"}, {"prefix", "a/b c"}}), "list-type=2&prefix=a%2Fb%20c");
}

TEST(S3Addressing, RangeHeader) {
  auto whole = RangeHeader({0, std::nullopt});
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->has_value());
  EXPECT_EQ(**RangeHeader({10, std::nullopt}), "bytes=10-");
  EXPECT_EQ(**RangeHeader({0, 10}), "bytes=0-9");
  EXPECT_EQ(**RangeHeader({5, 1}), "bytes=5-5");
  EXPECT_TRUE(RangeHeader({5, 0}).status().Is(Code::kInvalidArgument));
  EXPECT_TRUE(RangeHeader({UINT64_MAX, 2}).status().Is(Code::kInvalidArgument));
}

// ---- Signing: AWS's published S3 examples, through the request builder the client uses.

constexpr int64_t kAwsExampleTime = 1369353600;  // 2013-05-24T00:00:00Z

S3Credentials AwsExampleCredentials() {
  return S3Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "",
                       "test"};
}

S3Endpoint AwsExampleEndpoint() {
  return *ResolveEndpoint(ConfigOf("https://s3.amazonaws.com", "examplebucket", false));
}

TEST(S3Signing, GetObjectWithRangeMatchesAwsExample) {
  auto req =
      SignS3Request(AwsExampleEndpoint(), AwsExampleCredentials(), "us-east-1", "GET", "test.txt",
                    {}, {{"Range", "bytes=0-9"}}, auth::kEmptyPayloadSha256, kAwsExampleTime);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->target, "/test.txt");
  EXPECT_EQ(HeaderOf(req->headers, "Host"), "examplebucket.s3.amazonaws.com");
  EXPECT_EQ(HeaderOf(req->headers, "X-Amz-Date"), "20130524T000000Z");
  EXPECT_EQ(HeaderOf(req->headers, "x-amz-content-sha256"), auth::kEmptyPayloadSha256);
  EXPECT_EQ(HeaderOf(req->headers, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3Signing, ListObjectsMatchesAwsExample) {
  auto req = SignS3Request(AwsExampleEndpoint(), AwsExampleCredentials(), "us-east-1", "GET", "",
                           {{"max-keys", "2"}, {"prefix", "J"}}, {}, auth::kEmptyPayloadSha256,
                           kAwsExampleTime);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->target, "/?max-keys=2&prefix=J");
  EXPECT_NE(HeaderOf(req->headers, "Authorization")
                .find("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            std::string::npos);
}

TEST(S3Signing, PutObjectMatchesAwsExample) {
  const std::string payload = auth::Sha256Hex("Welcome to Amazon S3.");
  auto req = SignS3Request(
      AwsExampleEndpoint(), AwsExampleCredentials(), "us-east-1", "PUT", "test$file.text", {},
      {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
      payload, kAwsExampleTime);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->target, "/test%24file.text");
  EXPECT_NE(HeaderOf(req->headers, "Authorization")
                .find("Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
            std::string::npos);
}

TEST(S3Signing, SessionTokenIsSentAndSigned) {
  S3Credentials creds = AwsExampleCredentials();
  creds.session_token = "FwoGZXIvYXdzEXAMPLE";
  auto req = SignS3Request(AwsExampleEndpoint(), creds, "us-east-1", "GET", "k", {}, {},
                           auth::kEmptyPayloadSha256, kAwsExampleTime);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(HeaderOf(req->headers, "x-amz-security-token"), "FwoGZXIvYXdzEXAMPLE");
  EXPECT_NE(HeaderOf(req->headers, "Authorization")
                .find("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos);
}

TEST(S3Signing, PresignedUrlMatchesAwsExample) {
  auto url = PresignS3Url(AwsExampleEndpoint(), AwsExampleCredentials(), "us-east-1", "GET",
                          "test.txt", 86400, kAwsExampleTime);
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(*url,
            "https://examplebucket.s3.amazonaws.com/test.txt"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_TRUE(PresignS3Url(AwsExampleEndpoint(), AwsExampleCredentials(), "us-east-1", "GET",
                           "test.txt", 604801, kAwsExampleTime)
                  .status()
                  .Is(Code::kInvalidArgument));
}

TEST(S3Signing, PresignedUrlPathStyleWithPort) {
  auto ep = ResolveEndpoint(ConfigOf("http://127.0.0.1:7480", "reg"));
  ASSERT_TRUE(ep.ok());
  auto url =
      PresignS3Url(*ep, AwsExampleCredentials(), "us-east-1", "GET", "a b/c", 60, kAwsExampleTime);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->rfind("http://127.0.0.1:7480/reg/a%20b/c?X-Amz-Algorithm=AWS4-HMAC-SHA256&", 0),
            0u)
      << *url;
}

// ---- XML ----

TEST(S3Xml, ParsesElementsTextEntitiesAndCdata) {
  auto doc = xml::Parse(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->"
      "<s3:Root xmlns:s3=\"x\" a='1 > 0'><A>x &amp; y &lt;&gt;&quot;&apos; &#65;&#x263A;</A>"
      "<B/><C><![CDATA[<raw&>]]></C><!-- inner --><A>second</A></s3:Root>\n");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Root");
  ASSERT_EQ(doc->children.size(), 4u);
  EXPECT_EQ(doc->ChildText("A"), "x & y <>\"' A\xE2\x98\xBA");
  EXPECT_NE(doc->Child("B"), nullptr);
  EXPECT_EQ(doc->ChildText("B"), "");
  EXPECT_EQ(doc->ChildText("C"), "<raw&>");
  EXPECT_EQ(doc->ChildText("Missing"), "");
  EXPECT_EQ(doc->children[3].text, "second");
}

TEST(S3Xml, RefusesMalformedDocuments) {
  std::string deep;
  for (int i = 0; i < 70; ++i) deep += "<a>";
  for (int i = 0; i < 70; ++i) deep += "</a>";
  for (const std::string& bad : std::vector<std::string>{
           "",
           "text",
           "<a>",
           "<a></b>",
           "<a>&bogus;</a>",
           "<a>&#xZZ;</a>",
           "<a x=1></a>",
           "<a></a><b></b>",
           "<a><![CDATA[x</a>",
           deep,
       }) {
    auto doc = xml::Parse(bad);
    EXPECT_TRUE(doc.status().Is(Code::kCorruption)) << bad.substr(0, 40);
  }
}

TEST(S3Xml, Escape) {
  EXPECT_EQ(xml::Escape("\"etag\" <a&b> 'c'"), "&quot;etag&quot; &lt;a&amp;b&gt; &apos;c&apos;");
}

// ---- Responses ----

TEST(S3Responses, ErrorBody) {
  auto e =
      ParseErrorBody(404,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                     "<Message>The specified key does not exist.</Message><Key>k</Key>"
                     "<RequestId>tx1</RequestId></Error>");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->http_status, 404);
  EXPECT_EQ(e->code, "NoSuchKey");
  EXPECT_EQ(e->message, "The specified key does not exist.");
  EXPECT_EQ(e->request_id, "tx1");
  EXPECT_FALSE(ParseErrorBody(500, "").has_value());
  EXPECT_FALSE(ParseErrorBody(502, "<html>bad gateway</html>").has_value());
  EXPECT_FALSE(ParseErrorBody(200, "<CompleteMultipartUploadResult/>").has_value());
}

TEST(S3Responses, ListObjectsV2DecodesKeysAndStripsThePrefix) {
  auto page = ParseListObjectsV2(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>reg%2F</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
      "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
      "<Contents><Key>reg%2Fa+b%2Bc</Key><Size>5</Size><ETag>&quot;e1&quot;</ETag></Contents>"
      "<Contents><Key>reg/%C3%A9</Key><Size>0</Size><ETag>\"e2\"</ETag></Contents>"
      "<CommonPrefixes><Prefix>reg%2Fdir%2F</Prefix></CommonPrefixes>"
      "</ListBucketResult>",
      "reg/");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "a b+c");
  EXPECT_EQ(page->objects[0].size, 5u);
  EXPECT_EQ(page->objects[0].etag, "\"e1\"");
  EXPECT_EQ(page->objects[1].key, "\xC3\xA9");
  ASSERT_EQ(page->common_prefixes.size(), 1u);
  EXPECT_EQ(page->common_prefixes[0], "dir/");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Responses, ListObjectsV2WithoutEncodingKeepsKeysAsSent) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>a+b%20</Key><Size>1</Size></Contents></ListBucketResult>",
      "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->objects.at(0).key, "a+b%20");
  EXPECT_FALSE(page->truncated);
}

TEST(S3Responses, ListObjectsV2Malformed) {
  EXPECT_TRUE(ParseListObjectsV2("<ListBucketResult><Contents><Key>a</Key><Size>x</Size>"
                                 "</Contents></ListBucketResult>",
                                 "")
                  .status()
                  .Is(Code::kCorruption));
  EXPECT_TRUE(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                 "</ListBucketResult>",
                                 "")
                  .status()
                  .Is(Code::kCorruption));
  EXPECT_TRUE(ParseListObjectsV2("<Error/>", "").status().Is(Code::kCorruption));
}

TEST(S3Responses, ListParts) {
  auto page = ParseListParts(
      "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
      "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>"
      "<MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
      "<Part><PartNumber>1</PartNumber><LastModified>x</LastModified><ETag>\"a\"</ETag>"
      "<Size>5242880</Size></Part>"
      "<Part><PartNumber>2</PartNumber><ETag>\"b\"</ETag><Size>1</Size></Part>"
      "</ListPartsResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_EQ(page->parts[0].part_number, 1);
  EXPECT_EQ(page->parts[0].size, 5242880u);
  EXPECT_EQ(page->parts[1].etag, "\"b\"");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_part_number_marker, 2);
}

TEST(S3Responses, ListMultipartUploadsDecodesKeysAndStripsThePrefix) {
  auto page = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker>"
      "<UploadIdMarker></UploadIdMarker><NextKeyMarker>reg/uploads/a%20b/data</NextKeyMarker>"
      "<NextUploadIdMarker>2~y</NextUploadIdMarker><EncodingType>url</EncodingType>"
      "<MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
      "<Upload><Key>reg/uploads/a/data</Key><UploadId>2~x</UploadId>"
      "<Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload>"
      "<Upload><Key>reg/uploads/a%20b/data</Key><UploadId>2~y</UploadId></Upload>"
      "</ListMultipartUploadsResult>",
      "reg/");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].key, "uploads/a/data");
  EXPECT_EQ(page->uploads[0].upload_id, "2~x");
  EXPECT_EQ(page->uploads[1].key, "uploads/a b/data");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "reg/uploads/a b/data");  // full key, sent back as is
  EXPECT_EQ(page->next_upload_id_marker, "2~y");

  auto empty = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
      "");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->uploads.empty());
  EXPECT_FALSE(empty->truncated);
  EXPECT_TRUE(ParseListMultipartUploads("<ListMultipartUploadsResult><IsTruncated>true"
                                        "</IsTruncated></ListMultipartUploadsResult>",
                                        "")
                  .status()
                  .Is(Code::kCorruption));
  EXPECT_TRUE(ParseListMultipartUploads("<ListMultipartUploadsResult><Upload><Key>k</Key>"
                                        "</Upload></ListMultipartUploadsResult>",
                                        "")
                  .status()
                  .Is(Code::kCorruption));
}

TEST(S3Responses, MultipartResults) {
  auto id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
      "<UploadId>2~abc</UploadId></InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "2~abc");
  EXPECT_TRUE(ParseInitiateMultipartUpload("<InitiateMultipartUploadResult/>")
                  .status()
                  .Is(Code::kCorruption));
  auto etag = ParseResultETag(
      "<CompleteMultipartUploadResult><Location>l</Location><ETag>&quot;3858f62230ac3c915f300c6643"
      "12c63f-9&quot;</ETag></CompleteMultipartUploadResult>",
      "CompleteMultipartUploadResult");
  ASSERT_TRUE(etag.ok());
  EXPECT_EQ(*etag, "\"3858f62230ac3c915f300c664312c63f-9\"");
  EXPECT_TRUE(
      ParseResultETag("<CopyObjectResult/>", "CopyPartResult").status().Is(Code::kCorruption));
}

TEST(S3Responses, DeleteResultListsFailures) {
  auto failures = ParseDeleteResult(
      "<DeleteResult><Deleted><Key>p/ok</Key></Deleted><Error><Key>p/locked</Key>"
      "<Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>",
      "p/");
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 1u);
  EXPECT_EQ(failures->at(0).key, "locked");
  EXPECT_EQ(failures->at(0).code, "AccessDenied");
}

TEST(S3Responses, RequestBodies) {
  std::vector<CompletedPart> parts = {{1, "\"a\""}, {2, "\"b\""}};
  EXPECT_EQ(CompleteMultipartUploadBody(parts),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
  std::vector<std::string> keys = {"a&b", "c"};
  EXPECT_EQ(DeleteObjectsBody(keys),
            "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>"
            "<Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>");
}

// ---- Errors and retries ----

OpContext Ctx(std::string_view key = "reg/k", std::string_view op = "GetObject") {
  return OpContext{op, "http://rgw:7480", "bkt", key, "up-1", "AKIDX"};
}

TEST(S3Errors, MapsEachFailureOnce) {
  struct Case {
    S3Error error;
    OpContext ctx;
    Code code;
    std::string needle;
  };
  for (const Case& c : std::vector<Case>{
           {{404, "NoSuchKey", "The specified key does not exist.", ""},
            Ctx(),
            Code::kNotFound,
            "object reg/k does not exist in bucket bkt"},
           {{404, "", "", ""}, Ctx("reg/k", "HeadObject"), Code::kNotFound, "reg/k"},
           {{404, "NoSuchBucket", "", ""},
            Ctx(),
            Code::kFailedPrecondition,
            "bucket bkt does not exist at http://rgw:7480"},
           {{404, "", "", ""},
            Ctx("", "HeadBucket"),
            Code::kFailedPrecondition,
            "bucket bkt does not exist at http://rgw:7480"},
           {{404, "NoSuchUpload", "", ""},
            Ctx("reg/k", "UploadPart"),
            Code::kUploadUnknown,
            "multipart upload up-1 of reg/k"},
           {{403, "SignatureDoesNotMatch", "The request signature we calculated...", "tx9"},
            Ctx(),
            Code::kUnauthorized,
            "credentials refused by http://rgw:7480: SignatureDoesNotMatch"},
           {{403, "InvalidAccessKeyId", "", ""}, Ctx(), Code::kUnauthorized, "AKIDX"},
           {{403, "", "", ""}, Ctx("", "HeadBucket"), Code::kUnauthorized, "HTTP 403"},
           {{416, "InvalidRange", "", ""}, Ctx(), Code::kRangeInvalid, "InvalidRange"},
           {{412, "PreconditionFailed", "", ""}, Ctx(), Code::kAborted, "changed"},
           {{409, "BucketAlreadyExists", "", ""},
            Ctx("", "CreateBucket"),
            Code::kAlreadyExists,
            "bucket bkt"},
           {{409, "BucketNotEmpty", "", ""},
            Ctx("", "DeleteBucket"),
            Code::kFailedPrecondition,
            "not empty"},
           {{503, "SlowDown", "Please reduce your request rate.", ""},
            Ctx(),
            Code::kUnavailable,
            "object store http://rgw:7480 failed GetObject reg/k: SlowDown"},
           {{200, "InternalError", "", ""},
            Ctx("reg/k", "CompleteMultipartUpload"),
            Code::kUnavailable,
            "InternalError"},
           {{501, "NotImplemented", "", ""}, Ctx(), Code::kUnimplemented, "does not implement"},
           {{400, "EntityTooSmall", "", ""},
            Ctx("reg/k", "CompleteMultipartUpload"),
            Code::kInvalidArgument,
            "EntityTooSmall"},
           {{301, "PermanentRedirect", "", ""}, Ctx(), Code::kInternal, "PermanentRedirect"},
       }) {
    Status s = ErrorStatus(c.error, c.ctx, 1);
    EXPECT_EQ(s.code(), c.code) << c.error.code << " " << s.ToString();
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.message();
  }
  Status after = ErrorStatus({500, "InternalError", "boom", ""}, Ctx(), 5);
  EXPECT_NE(after.message().find("after 5 attempts"), std::string::npos) << after.message();
}

TEST(S3Errors, Unreachable) {
  Status s = UnreachableStatus("connect to rgw:7480: Connection refused", Ctx("", "HeadBucket"), 3);
  EXPECT_TRUE(s.Is(Code::kUnavailable));
  EXPECT_EQ(s.message(),
            "object store http://rgw:7480 unreachable: connect to rgw:7480: Connection refused "
            "(HeadBucket, after 3 attempts)");
}

TEST(S3Retry, RetryableErrors) {
  for (const S3Error& e : std::vector<S3Error>{{500, "InternalError", "", ""},
                                               {503, "SlowDown", "", ""},
                                               {502, "", "", ""},
                                               {429, "", "", ""},
                                               {400, "RequestTimeout", "", ""},
                                               {200, "InternalError", "", ""},
                                               {200, "SlowDown", "", ""}}) {
    EXPECT_TRUE(IsRetryable(e)) << e.http_status << " " << e.code;
  }
  for (const S3Error& e : std::vector<S3Error>{{501, "NotImplemented", "", ""},
                                               {404, "NoSuchKey", "", ""},
                                               {403, "SignatureDoesNotMatch", "", ""},
                                               {400, "InvalidPart", "", ""},
                                               {200, "", "", ""}}) {
    EXPECT_FALSE(IsRetryable(e)) << e.http_status << " " << e.code;
  }
}

TEST(S3Retry, ExponentialBackoffWithFullJitterAndCap) {
  const milliseconds base(100), cap(5000);
  EXPECT_EQ(RetryDelay(1, base, cap, 0.0).count(), 0);
  EXPECT_EQ(RetryDelay(1, base, cap, 0.5).count(), 50);
  EXPECT_EQ(RetryDelay(2, base, cap, 0.5).count(), 100);
  EXPECT_EQ(RetryDelay(3, base, cap, 0.5).count(), 200);
  EXPECT_EQ(RetryDelay(3, base, cap, 0.999).count(), 399);
  EXPECT_EQ(RetryDelay(7, base, cap, 0.5).count(), 2500);  // 6400 capped at 5000
  EXPECT_EQ(RetryDelay(1000, base, cap, 0.5).count(), 2500);
  EXPECT_EQ(RetryDelay(0, base, cap, 0.5).count(), 0);
  EXPECT_EQ(RetryDelay(2, milliseconds(0), cap, 0.5).count(), 0);
}

}  // namespace
}  // namespace berth::storage::s3
