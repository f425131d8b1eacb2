// The ECR dispatcher end to end, without sockets: request in, response out, over a
// real Registry (local files + SQLite).
#include "api/ecr/api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "api/ecr/download_url.h"
#include "storage/blob/fs/fs_blob_store.h"
#include "storage/meta/sqlite/sqlite_metadata_store.h"

namespace berth::api::ecr {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

class StringBody final : public http::BodyReader {
 public:
  explicit StringBody(std::string data) : data_(std::move(data)) {}
  asio::awaitable<Result<size_t>> Read(std::span<char> out) override {
    size_t n = std::min(out.size(), data_.size() - pos_);
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    co_return n;
  }
  std::optional<uint64_t> content_length() const override { return data_.size(); }
  bool done() const override { return pos_ == data_.size(); }
  uint64_t bytes_read() const override { return pos_; }

 private:
  std::string data_;
  size_t pos_ = 0;
};

class EcrApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("berth-ecr-api-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    blobs_ = std::move(storage::OpenFsBlobStore(dir_)).value();
    meta_ = std::move(storage::OpenSqliteMetadataStore(dir_ / "meta.db")).value();
    registry::Options o;
    o.account_id = "111111111111";
    reg_ = std::make_unique<registry::Registry>(*blobs_, *meta_, clock_, o);
    EcrOptions e;
    e.default_account_id = "111111111111";
    e.public_url = "http://registry.test:5000/";
    e.download_url_key = "test key";
    api_ = std::make_unique<EcrApi>(*reg_, pool_, clock_, e);
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    work_.reset();
    io_.stop();
    io_thread_.join();
    fs::remove_all(dir_);
  }

  struct Reply {
    http::Response res;
    json::object body;
  };

  // Runs `fn(req)` on the I/O context and waits for its response.
  template <typename Fn>
  http::Response Run(http::Request& req, Fn fn) {
    auto fut = asio::co_spawn(io_, fn(req), asio::use_future);
    return fut.get();
  }

  Reply Call(std::string_view target, std::string body,
             std::string_view content_type = "application/x-amz-json-1.1") {
    http::bhttp::fields headers;
    if (!target.empty()) headers.set("X-Amz-Target", target);
    if (!content_type.empty()) headers.set(field::content_type, content_type);
    StringBody reader(std::move(body));
    http::Request req;
    req.method = verb::post;
    req.method_string = "POST";
    req.path = "/";
    req.headers = &headers;
    req.body = &reader;
    req.request_id = "rid-1";
    Reply r;
    r.res = Run(req, [&](http::Request& rq) { return api_->Handle(rq, caller_); });
    std::error_code ec;
    json::value v = json::parse(r.res.body, ec);
    if (!ec && v.is_object()) r.body = v.get_object();
    return r;
  }
  Reply Op(std::string_view op, std::string body = "{}") {
    return Call(std::string(kTargetPrefix) + std::string(op), std::move(body));
  }

  fs::path dir_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<storage::BlobStore> blobs_;
  std::unique_ptr<storage::MetadataStore> meta_;
  std::unique_ptr<registry::Registry> reg_;
  http::BlockingPool pool_{2};
  std::unique_ptr<EcrApi> api_;
  auth::Caller caller_ = [] {
    auth::Caller c;
    c.unrestricted = true;  // as with authentication off
    return c;
  }();
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread io_thread_;
};

TEST_F(EcrApiTest, UnknownOrMissingOperation) {
  for (std::string_view target :
       {"", "AmazonEC2ContainerRegistry_V20150921.Nope", "DescribeImages"}) {
    Reply r = Call(target, "{}");
    EXPECT_EQ(r.res.status, status::bad_request) << target;
    EXPECT_EQ(r.body["__type"], "UnknownOperationException") << target;
    EXPECT_EQ(r.res.headers[field::content_type], "application/x-amz-json-1.1");
    EXPECT_EQ(r.res.headers["x-amzn-RequestId"], "rid-1");
  }
}

TEST_F(EcrApiTest, MalformedBodiesAreSerializationExceptions) {
  for (std::string_view body : {"{", "[1,2]", "\"text\"", "{\"a\":}"}) {
    Reply r = Op("DescribeRepositories", std::string(body));
    EXPECT_EQ(r.body["__type"], "SerializationException") << body;
  }
  Reply r = Call(std::string(kTargetPrefix) + "DescribeRepositories", "{}", "text/xml");
  EXPECT_EQ(r.body["__type"], "SerializationException");
}

TEST_F(EcrApiTest, MissingOrInvalidMembersNameTheMember) {
  Reply r = Op("CreateRepository", "{}");
  EXPECT_EQ(r.res.status, status::bad_request);
  EXPECT_EQ(r.body["__type"], "InvalidParameterException");
  EXPECT_NE(r.body["message"].as_string().find("repositoryName"), json::string::npos);
  r = Op("DescribeImages", R"({"repositoryName":"app","maxResults":"ten"})");
  EXPECT_EQ(r.body["__type"], "InvalidParameterException");
  EXPECT_NE(r.body["message"].as_string().find("maxResults"), json::string::npos);
  r = Op("ListImages", R"({"repositoryName":"app","registryId":"42"})");
  EXPECT_NE(r.body["message"].as_string().find("registryId"), json::string::npos);
}

TEST_F(EcrApiTest, EmptyBodyIsAnEmptyInput) {
  Reply r = Op("DescribeRepositories", "");
  EXPECT_EQ(r.res.status, status::ok) << r.res.body;
  EXPECT_EQ(r.body["repositories"], json::array());
  r = Op("GetAuthorizationToken", "");
  ASSERT_EQ(r.res.status, status::ok) << r.res.body;
  json::object data = r.body["authorizationData"].as_array()[0].as_object();
  EXPECT_EQ(data["authorizationToken"], "QVdTOnVuYXV0aGVudGljYXRlZA==");  // AWS:unauthenticated
  EXPECT_EQ(data["proxyEndpoint"], "http://registry.test:5000");
  EXPECT_EQ(data["expiresAt"], json::value(1'700'000'000 + 12 * 3600));
}

TEST_F(EcrApiTest, CreateDescribeAndErrors) {
  Reply r =
      Op("CreateRepository", R"({"repositoryName":"team/app","tags":[{"Key":"k","Value":"v"}]})");
  ASSERT_EQ(r.res.status, status::ok) << r.res.body;
  EXPECT_EQ(r.res.headers[field::content_type], "application/x-amz-json-1.1");
  json::object repo = r.body["repository"].as_object();
  EXPECT_EQ(repo["repositoryUri"], "registry.test:5000/team/app");
  EXPECT_EQ(repo["registryId"], "111111111111");
  EXPECT_EQ(repo["createdAt"], json::value(1'700'000'000));
  r = Op("CreateRepository", R"({"repositoryName":"team/app"})");
  EXPECT_EQ(r.body["__type"], "RepositoryAlreadyExistsException");
  r = Op("DescribeImages", R"({"repositoryName":"team/nope"})");
  EXPECT_EQ(r.body["__type"], "RepositoryNotFoundException");
  EXPECT_EQ(r.body["message"],
            "The repository with name 'team/nope' does not exist in the "
            "registry with id '111111111111'");
  // Another account's registry does not see it.
  r = Op("DescribeImages", R"({"repositoryName":"team/app","registryId":"222222222222"})");
  EXPECT_EQ(r.body["__type"], "RepositoryNotFoundException");
  r = Op("ListTagsForResource",
         R"({"resourceArn":"arn:aws:ecr:us-east-1:111111111111:repository/team/app"})");
  EXPECT_EQ(r.body["tags"], json::parse(R"([{"Key":"k","Value":"v"}])"));
}

TEST_F(EcrApiTest, DecodeExposesWhatAuthorizationNeeds) {
  http::bhttp::fields headers;
  headers.set("X-Amz-Target", std::string(kTargetPrefix) + "PutImage");
  StringBody body(
      R"({"repositoryName":"team/app","imageManifest":"{}","registryId":"222222222222"})");
  http::Request req;
  req.method = verb::post;
  req.path = "/";
  req.headers = &headers;
  req.body = &body;
  auto fut = asio::co_spawn(io_, api_->Decode(req, caller_), asio::use_future);
  auto decoded = fut.get();
  ASSERT_TRUE(std::holds_alternative<EcrCall>(decoded));
  const EcrCall& call = std::get<EcrCall>(decoded);
  EXPECT_EQ(call.operation->action, "ecr:PutImage");
  EXPECT_EQ(call.account, "222222222222");
  EXPECT_EQ(call.resources,
            (std::vector<std::string>{"arn:aws:ecr:us-east-1:222222222222:repository/team/app"}));
  EXPECT_EQ(req.route, "PutImage");
  EXPECT_EQ(call.body_sha256,
            oci::Digest::Of(
                R"({"repositoryName":"team/app","imageManifest":"{}","registryId":"222222222222"})")
                .hex());
}

// partLastByte - partFirstByte + 1 overflowed int64 (undefined behaviour) for a part
// claiming all of 0-INT64_MAX.
TEST_F(EcrApiTest, UploadLayerPartRangeOverflowIsRefused) {
  ASSERT_EQ(Op("CreateRepository", R"({"repositoryName":"app1"})").res.status, status::ok);
  Reply up = Op("InitiateLayerUpload", R"({"repositoryName":"app1"})");
  ASSERT_EQ(up.res.status, status::ok) << up.res.body;
  std::string id(up.body["uploadId"].as_string());
  Reply part = Op("UploadLayerPart",
                  R"({"repositoryName":"app1","uploadId":")" + id +
                      R"(","partFirstByte":0,"partLastByte":9223372036854775807,)"
                      R"("layerPartBlob":"aGVsbG8="})");
  EXPECT_EQ(part.body["__type"], "InvalidLayerPartException") << part.res.body;
  EXPECT_NE(part.res.body.find("9223372036854775807"), std::string::npos) << part.res.body;
}

TEST_F(EcrApiTest, LayerUploadAndPresignedDownload) {
  ASSERT_EQ(Op("CreateRepository", R"({"repositoryName":"app1"})").res.status, status::ok);
  Reply up = Op("InitiateLayerUpload", R"({"repositoryName":"app1"})");
  ASSERT_EQ(up.res.status, status::ok) << up.res.body;
  std::string id(up.body["uploadId"].as_string());
  EXPECT_EQ(id.size(), 36u);  // a UUID
  // "hello" in base64; a part that does not continue the upload is refused.
  Reply bad = Op("UploadLayerPart",
                 R"({"repositoryName":"app1","uploadId":")" + id +
                     R"(","partFirstByte":3,"partLastByte":7,"layerPartBlob":"aGVsbG8="})");
  EXPECT_EQ(bad.body["__type"], "InvalidLayerPartException");
  EXPECT_EQ(bad.body["uploadId"], json::value(id));
  Reply part = Op("UploadLayerPart",
                  R"({"repositoryName":"app1","uploadId":")" + id +
                      R"(","partFirstByte":0,"partLastByte":4,"layerPartBlob":"aGVsbG8="})");
  ASSERT_EQ(part.res.status, status::ok) << part.res.body;
  EXPECT_EQ(part.body["lastByteReceived"], 4);
  std::string digest = oci::Digest::Of("hello").str();
  Reply done = Op("CompleteLayerUpload", R"({"repositoryName":"app1","uploadId":")" + id +
                                             R"(","layerDigests":[")" + digest + R"("]})");
  ASSERT_EQ(done.res.status, status::ok) << done.res.body;
  EXPECT_EQ(done.body["layerDigest"], json::value(digest));
  Reply url = Op("GetDownloadUrlForLayer",
                 R"({"repositoryName":"app1","layerDigest":")" + digest + R"("})");
  ASSERT_EQ(url.res.status, status::ok) << url.res.body;
  std::string download(url.body["downloadUrl"].as_string());
  constexpr std::string_view kBase = "http://registry.test:5000/ecr-download/";
  ASSERT_TRUE(download.starts_with(kBase)) << download;

  http::bhttp::fields headers;
  StringBody empty("");
  http::Request get;
  get.method = verb::get;
  get.path = download.substr(kBase.size() - std::string_view("/ecr-download/").size());
  get.headers = &headers;
  get.body = &empty;
  ASSERT_TRUE(EcrApi::IsDownloadRequest(get));
  http::Response res = Run(get, [&](http::Request& rq) { return api_->HandleDownload(rq); });
  EXPECT_EQ(res.status, status::ok);
  ASSERT_TRUE(res.file.has_value());
  EXPECT_EQ(res.file->length, 5u);
  get.path += "x";  // a tampered signature
  res = Run(get, [&](http::Request& rq) { return api_->HandleDownload(rq); });
  EXPECT_EQ(res.status, status::forbidden);
  clock_.Advance(3601 * 1000);  // and an expired URL
  get.path.pop_back();
  res = Run(get, [&](http::Request& rq) { return api_->HandleDownload(rq); });
  EXPECT_EQ(res.status, status::forbidden);
}

}  // namespace
}  // namespace berth::api::ecr
