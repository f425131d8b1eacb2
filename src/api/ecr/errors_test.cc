#include "api/ecr/errors.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace berth::api::ecr {
namespace {

using http::bhttp::status;

TEST(ExceptionForTest, OperationSpecificMeaningsWin) {
  EXPECT_EQ(ExceptionFor(Code::kAlreadyExists, "CreateRepository").type,
            "RepositoryAlreadyExistsException");
  EXPECT_EQ(ExceptionFor(Code::kAlreadyExists, "PutImage").type, "ImageAlreadyExistsException");
  EXPECT_EQ(ExceptionFor(Code::kAlreadyExists, "CompleteLayerUpload").type,
            "LayerAlreadyExistsException");
  EXPECT_EQ(ExceptionFor(Code::kFailedPrecondition, "DeleteRepository").type,
            "RepositoryNotEmptyException");
  EXPECT_EQ(ExceptionFor(Code::kNotFound, "GetRepositoryPolicy").type,
            "RepositoryPolicyNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kNotFound, "DeleteRepositoryPolicy").type,
            "RepositoryPolicyNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kTagInvalid, "PutImage").type, "ImageTagAlreadyExistsException");
  EXPECT_EQ(ExceptionFor(Code::kDigestInvalid, "PutImage").type,
            "ImageDigestDoesNotMatchException");
  EXPECT_EQ(ExceptionFor(Code::kManifestUnknown, "PutImage").type,
            "ReferencedImagesNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kManifestBlobUnknown, "PutImage").type, "LayersNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kDigestInvalid, "CompleteLayerUpload").type,
            "InvalidLayerException");
  EXPECT_EQ(ExceptionFor(Code::kSizeInvalid, "CompleteLayerUpload").type, "EmptyUploadException");
  for (const char* op : {"CreateRepository", "TagResource", "UntagResource"}) {
    EXPECT_EQ(ExceptionFor(Code::kTagInvalid, op).type, "InvalidTagParameterException") << op;
  }
  EXPECT_EQ(ExceptionFor(Code::kOutOfRange, "TagResource").type, "TooManyTagsException");
  EXPECT_EQ(ExceptionFor(Code::kOutOfRange, "CreateRepository").type, "TooManyTagsException");
}

TEST(ExceptionForTest, Defaults) {
  EXPECT_EQ(ExceptionFor(Code::kNameUnknown, "DescribeImages").type, "RepositoryNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kManifestUnknown, "DescribeImages").type, "ImageNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kUploadUnknown, "UploadLayerPart").type, "UploadNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kRangeInvalid, "UploadLayerPart").type, "InvalidLayerPartException");
  EXPECT_EQ(ExceptionFor(Code::kBlobUnknown, "GetDownloadUrlForLayer").type,
            "LayersNotFoundException");
  EXPECT_EQ(ExceptionFor(Code::kUnimplemented, "X").type, "UnknownOperationException");
  EXPECT_EQ(ExceptionFor(Code::kDenied, "X").type, "AccessDeniedException");
  // Outside their operations, these codes are bad arguments.
  EXPECT_EQ(ExceptionFor(Code::kTagInvalid, "BatchGetImage").type, "InvalidParameterException");
  EXPECT_EQ(ExceptionFor(Code::kDigestInvalid, "GetDownloadUrlForLayer").type,
            "InvalidParameterException");
  EXPECT_EQ(ExceptionFor(Code::kAlreadyExists, "TagResource").type, "InvalidParameterException");
  for (Code c : {Code::kInvalidArgument, Code::kNameInvalid, Code::kManifestInvalid,
                 Code::kTooLarge, Code::kUnsupported}) {
    Exception e = ExceptionFor(c, "PutImage");
    EXPECT_EQ(e.type, "InvalidParameterException") << CodeName(c);
    EXPECT_EQ(e.status, status::bad_request);
  }
}

TEST(ExceptionForTest, StorageFailuresAreServerExceptions) {
  for (Code c : {Code::kIoError, Code::kCorruption, Code::kInternal, Code::kUnavailable}) {
    Exception e = ExceptionFor(c, "DescribeImages");
    EXPECT_EQ(e.type, "ServerException") << CodeName(c);
    EXPECT_EQ(e.status, status::internal_server_error);
  }
}

TEST(ErrorResponseTest, AwsJsonShape) {
  http::Response r =
      ErrorResponse(Status(Code::kNameUnknown, "no such repository"), "DescribeImages");
  EXPECT_EQ(r.status, status::bad_request);
  EXPECT_EQ(r.headers[http::bhttp::field::content_type], "application/x-amz-json-1.1");
  auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body["__type"], "RepositoryNotFoundException");
  EXPECT_EQ(body["message"], "no such repository");
}

TEST(ErrorResponseTest, ServerExceptionHidesItsCause) {
  http::Response r = ErrorResponse(Status::IoError("disk /dev/sda1 on fire"), "PutImage");
  EXPECT_EQ(r.status, status::internal_server_error);
  EXPECT_EQ(r.body.find("sda1"), std::string::npos);
  EXPECT_EQ(boost::json::parse(r.body).as_object()["__type"], "ServerException");
}

// A backend outage says which store does not answer, with a 503 SDKs retry (as the
// /v2 API does), instead of a bare 500.
TEST(ErrorResponseTest, UnavailableStorageIs503NamingIt) {
  http::Response r = ErrorResponse(
      Status(Code::kUnavailable, "metadata store: postgres: connection refused"), "PutImage");
  EXPECT_EQ(r.status, status::service_unavailable);
  auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body["__type"], "ServerException");
  EXPECT_EQ(body["message"], "metadata store: postgres: connection refused");
}

TEST(ErrorResponseTest, ExtraMembersAreKept) {
  http::Response r = ErrorResponse("InvalidLayerPartException", "bad part",
                                   boost::json::object{{"lastValidByteReceived", 41}});
  auto body = boost::json::parse(r.body).as_object();
  EXPECT_EQ(body["__type"], "InvalidLayerPartException");
  EXPECT_EQ(body["lastValidByteReceived"], 41);
}

}  // namespace
}  // namespace berth::api::ecr
