// GET, HEAD, PUT, DELETE /v2/<name>/manifests/<reference>
#include "api/distribution/errors.h"
#include "api/distribution/handlers.h"
#include "oci/media_types.h"
#include "oci/reference.h"

namespace berth::api::distribution {

using http::bhttp::field;
using http::bhttp::status;
using http::bhttp::verb;

namespace {

std::string_view MediaTypeOnly(std::string_view v) {
  auto semi = v.find(';');
  v = v.substr(0, semi);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return v;
}

// Content negotiation: Berth serves manifests exactly as pushed. A client that lists
// only Docker schema 1 types cannot read them; every other Accept set gets the stored
// bytes (clients send several Accept lines; all of them are read).
Status Negotiate(const Request& req, std::string_view stored) {
  auto accepts = req.HeaderList(field::accept);
  if (accepts.empty()) return {};
  bool only_schema1 = true;
  for (std::string_view a : accepts) {
    a = MediaTypeOnly(a);
    if (a == stored || a == "*/*" || a == "application/json") return {};
    if (a != oci::kDockerSchema1 && a != oci::kDockerSchema1Signed) only_schema1 = false;
  }
  if (!only_schema1) return {};
  return Status(Code::kManifestUnknown,
                "the manifest is " + std::string(stored) +
                    " but the client accepts only Docker schema 1, which Berth does not serve; "
                    "upgrade the client");
}

asio::awaitable<Response> Get(Ctx& ctx, Request& req, const RouteMatch& m,
                              const oci::Reference& ref) {
  // Most pulls are answered from the manifest cache, here on the I/O thread; a miss
  // reads the store on the pool's read lane (which fills the cache).
  std::shared_ptr<const storage::ManifestRecord> rec = ctx.registry.CachedManifest(m.name, ref);
  if (rec == nullptr) {
    auto got = co_await ctx.pool.RunRead([&] { return ctx.registry.GetManifest(m.name, ref); });
    if (!got.ok()) co_return ErrorResponse(got.status());
    rec = std::move(got).value();
  }
  // ECR's lastRecordedPullTime: a GET is a pull (noted in memory, written in batches).
  if (req.method == verb::get) ctx.registry.RecordPull(m.name, rec->digest);
  if (Status st = Negotiate(req, rec->media_type); !st.ok()) co_return ErrorResponse(st);
  Response res;
  res.headers.set(field::content_type, rec->media_type);
  res.headers.set("Docker-Content-Digest", rec->digest.str());
  res.headers.set(field::etag, "\"" + rec->digest.str() + "\"");
  if (req.method == verb::head) {
    res.head_length = rec->bytes.size();
  } else {
    res.body = rec->bytes;  // the cache keeps its copy
  }
  co_return res;
}

// Reads the manifest body, bounded by the limit (413 above it).
asio::awaitable<Result<std::string>> ReadManifestBody(Request& req, uint64_t limit) {
  auto len = req.body->content_length();
  auto too_large = [&](uint64_t got) {
    return Status(Code::kTooLarge, "manifest is " + std::to_string(got) +
                                       " bytes or more; the limit is " + std::to_string(limit));
  };
  if (len && *len > limit) co_return too_large(*len);
  std::string body;
  body.resize(len ? *len : 64 * 1024);
  size_t used = 0;
  while (true) {
    if (used == body.size()) {
      if (body.size() > limit) co_return too_large(body.size());
      body.resize(std::min<uint64_t>(body.size() * 2, limit + 1));
    }
    auto n = co_await req.body->Read(std::span<char>(body.data() + used, body.size() - used));
    if (!n.ok()) co_return n.status();
    if (*n == 0) break;
    used += *n;
  }
  if (used > limit) co_return too_large(used);
  body.resize(used);
  co_return body;
}

asio::awaitable<Response> Put(Ctx& ctx, Request& req, const RouteMatch& m,
                              const oci::Reference& ref) {
  auto body = co_await ReadManifestBody(req, ctx.options.max_manifest_bytes);
  if (!body.ok()) {
    Response res = ErrorResponse(body.status());
    if (body.status().Is(Code::kTooLarge)) res.close = true;
    co_return res;
  }
  std::string content_type(req.Header(field::content_type));
  auto put = co_await ctx.pool.Run([&] {
    return ctx.registry.PutManifest(m.name, ref, content_type, std::move(*body));
  });
  if (!put.ok()) co_return ErrorResponse(put.status());
  Response res;
  res.status = status::created;
  res.headers.set(field::location, "/v2/" + m.name + "/manifests/" + put->digest.str());
  res.headers.set("Docker-Content-Digest", put->digest.str());
  if (put->subject) res.headers.set("OCI-Subject", put->subject->str());
  co_return res;
}

}  // namespace

asio::awaitable<Response> HandleManifest(Ctx& ctx, Request& req, const RouteMatch& m) {
  if (Status st = oci::ValidateRepositoryName(m.name); !st.ok()) co_return ErrorResponse(st);
  auto ref = oci::ParseReference(m.ref);
  if (!ref.ok()) {
    // A read of a reference that cannot be a tag finds nothing (the OCI conformance
    // suite expects 404); a push under it is refused as TAG_INVALID.
    bool read = req.method == verb::get || req.method == verb::head;
    if (read && ref.status().Is(Code::kTagInvalid)) {
      co_return ErrorResponse(Status(Code::kManifestUnknown,
                                     "manifest unknown: '" + m.ref.substr(0, 256) +
                                         "' is neither a valid tag nor a digest"));
    }
    co_return ErrorResponse(ref.status());
  }
  switch (req.method) {
    case verb::get:
    case verb::head: co_return co_await Get(ctx, req, m, *ref);
    case verb::put: co_return co_await Put(ctx, req, m, *ref);
    case verb::delete_: {
      Status st = co_await ctx.pool.Run([&] { return ctx.registry.DeleteManifest(m.name, *ref); });
      if (!st.ok()) co_return ErrorResponse(st);
      Response res;
      res.status = status::accepted;
      co_return res;
    }
    default: co_return MethodNotAllowed(req);
  }
}

}  // namespace berth::api::distribution
