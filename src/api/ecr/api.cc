#include "api/ecr/api.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <charconv>
#include <exception>

#include "api/ecr/download_url.h"
#include "api/ecr/errors.h"
#include "api/ecr/handlers.h"
#include "oci/digest.h"

namespace berth::api::ecr {
namespace {

using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

// Bodies up to this size are parsed on the I/O thread; larger ones on the pool.
constexpr size_t kParseInlineBytes = 64 * 1024;

// Reads the whole body, up to `limit` bytes (kTooLarge beyond), hashing it as it
// arrives into `sha256` (SigV4 signs the body's SHA-256).
asio::awaitable<Result<std::string>> ReadBody(http::Request& req, uint64_t limit,
                                              oci::Hasher& sha256) {
  auto len = req.body->content_length();
  if (len && *len > limit) {
    co_return Status(Code::kTooLarge, "the request body is " + std::to_string(*len) +
                                          " bytes; the limit is " + std::to_string(limit));
  }
  std::string body;
  body.resize(len ? *len : 64 * 1024);
  size_t used = 0;
  while (true) {
    if (used == body.size()) {
      if (len || body.size() > limit) {
        if (!len) {
          co_return Status(Code::kTooLarge,
                           "the request body exceeds the limit of " + std::to_string(limit));
        }
        // Content-Length reached: the body is complete.
        break;
      }
      body.resize(std::min<uint64_t>(body.size() * 2, limit + 1));
    }
    auto n = co_await req.body->Read(std::span<char>(body.data() + used, body.size() - used));
    if (!n.ok()) co_return n.status();
    if (*n == 0) break;
    sha256.Update(std::span<const char>(body.data() + used, *n));
    used += *n;
  }
  body.resize(used);
  co_return body;
}

std::string_view TargetOf(const http::Request& req) {
  auto it = req.headers->find("X-Amz-Target");
  return it == req.headers->end() ? std::string_view() : std::string_view(it->value());
}

// Members some exceptions carry beyond the message.
json::object ExtraMembers(std::string_view type, const Status& st, const EcrCall& call) {
  json::object extra;
  if (type != "InvalidLayerPartException") return extra;
  extra["registryId"] = call.account;
  for (std::string_view key : {"repositoryName", "uploadId"}) {
    if (const json::value* v = call.input.if_contains(key); v != nullptr && v->is_string()) {
      extra[key] = v->get_string();
    }
  }
  // The registry reports how many bytes it holds; the last valid one is before that.
  uint64_t received = 0;
  const std::string& d = st.detail();
  auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), received);
  if (ec == std::errc() && p == d.data() + d.size() && received > 0) {
    extra["lastValidByteReceived"] = received - 1;
  }
  return extra;
}

http::Response Finish(http::Response res, const http::Request& req) {
  res.headers.set("x-amzn-RequestId", req.request_id);
  return res;
}

}  // namespace

EcrApi::EcrApi(registry::Registry& registry, http::BlockingPool& pool, const Clock& clock,
               EcrOptions options)
    : registry_(registry), pool_(pool), clock_(clock), options_(std::move(options)) {
  while (!options_.public_url.empty() && options_.public_url.back() == '/') {
    options_.public_url.pop_back();
  }
}

bool EcrApi::IsEcrRequest(const http::Request& req) {
  return req.method == verb::post && req.path == "/";
}

http::Response EcrApi::ProtocolError(const http::Request& req, int http_status,
                                     const std::string& message) {
  http::Response res = Finish(ErrorResponse("SerializationException", message), req);
  res.status = static_cast<http::bhttp::status>(http_status);
  return res;
}

bool EcrApi::IsDownloadRequest(const http::Request& req) {
  return (req.method == verb::get || req.method == verb::head) &&
         req.path.starts_with(kDownloadPathPrefix);
}

std::string EcrApi::CallerAccount(const auth::Caller& caller) const {
  if (caller.authenticated && !caller.unrestricted && !caller.account_id.empty()) {
    return caller.account_id;
  }
  return options_.default_account_id;
}

asio::awaitable<std::variant<EcrCall, http::Response>> EcrApi::Decode(http::Request& req,
                                                                      const auth::Caller& caller) {
  req.route = "ecr";
  std::string_view target = TargetOf(req);
  EcrCall call;
  call.operation = FindOperation(target);
  if (call.operation == nullptr) {
    std::string shown(target.substr(0, 128));
    co_return Finish(ErrorResponse("UnknownOperationException",
                                   shown.empty() ? "the X-Amz-Target header is missing"
                                                 : "unknown operation '" + shown + "'"),
                     req);
  }
  req.route = call.operation->name;  // static storage: the operation table
  std::string_view content_type = req.Header(field::content_type);
  if (!content_type.empty() && !content_type.starts_with("application/x-amz-json-1.")) {
    co_return Finish(ErrorResponse("SerializationException",
                                   "the request body must be application/x-amz-json-1.1, not " +
                                       std::string(content_type.substr(0, 128))),
                     req);
  }
  oci::Hasher sha256;
  auto body = co_await ReadBody(req, options_.max_request_bytes, sha256);
  if (!body.ok()) {
    http::Response res = Finish(ErrorResponse(body.status(), call.operation->name), req);
    res.close = true;  // the rest of an oversized body is not worth reading
    co_return res;
  }
  call.body_sha256 = std::string(sha256.Peek().hex());
  if (!body->empty()) {  // empty input is {}
    // Parsing a large body (UploadLayerPart: up to ~27 MiB) is CPU work for the pool.
    // (No co_await inside a conditional expression: GCC 12 miscompiles it.)
    std::error_code ec;
    json::value parsed;
    if (body->size() <= kParseInlineBytes) {
      parsed = json::parse(*body, ec);
    } else {
      parsed = co_await pool_.Run([&] { return json::parse(*body, ec); });
    }
    if (ec) {
      co_return Finish(ErrorResponse("SerializationException",
                                     "the request body is not valid JSON: " + ec.message()),
                       req);
    }
    if (!parsed.is_object()) {
      co_return Finish(
          ErrorResponse("SerializationException", "the request body must be a JSON object"), req);
    }
    call.input = std::move(parsed.get_object());
  }
  if (Status st = Resolve(call, caller); !st.ok()) {
    co_return Finish(ErrorResponse(st, call.operation->name), req);
  }
  co_return call;
}

Status EcrApi::Resolve(EcrCall& call, const auth::Caller& caller) const {
  BERTH_ASSIGN_OR_RETURN(call.account,
                         AccountOf(*call.operation, call.input, CallerAccount(caller)));
  BERTH_ASSIGN_OR_RETURN(call.resources,
                         ResourcesOf(*call.operation, call.input, call.account, options_.region));
  return {};
}

http::Response EcrApi::Refuse(const http::Request& req, std::string_view type,
                              const std::string& message) const {
  return Finish(ErrorResponse(type, message), req);
}

asio::awaitable<http::Response> EcrApi::Execute(http::Request& req, const auth::Caller& caller,
                                                const EcrCall& call) {
  Ctx ctx{registry_, pool_, clock_, options_, caller, call};
  Result<json::object> out = Status::Internal("handler did not run");
  try {
    out = co_await call.operation->handler(ctx, call.input);
  } catch (const std::exception& e) {
    // Handlers read JSON through non-throwing accessors; this is a broken invariant
    // (or bad_alloc), reported as a ServerException rather than the HTTP layer's reply.
    out = Status::Internal(std::string("handler threw: ") + e.what());
  }
  if (!out.ok()) {
    const Status& st = out.status();
    Exception e = ExceptionFor(st.code(), call.operation->name);
    if (e.status == status::internal_server_error) {
      spdlog::error("ecr request failed request_id={} operation={} error=\"{}\"", req.request_id,
                    call.operation->name, st.ToString());
    }
    co_return Finish(ErrorResponse(st, call.operation->name, ExtraMembers(e.type, st, call)), req);
  }
  http::Response res;
  res.headers.set(field::content_type, kJsonContentType);
  res.body = json::serialize(*out);
  co_return Finish(std::move(res), req);
}

asio::awaitable<http::Response> EcrApi::Handle(http::Request& req, const auth::Caller& caller) {
  auto decoded = co_await Decode(req, caller);
  if (auto* res = std::get_if<http::Response>(&decoded)) co_return std::move(*res);
  co_return co_await Execute(req, caller, std::get<EcrCall>(decoded));
}

}  // namespace berth::api::ecr
