#include "bench/workloads.h"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include "bench/proc.h"

namespace berth::bench {
namespace {

using bhttp::verb;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view kAcceptManifests =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
constexpr uint64_t kGiB = 1ull << 30;
// Seeds of the fixed blobs every manifest references; fixed across runs so that a
// later run (--skip-setup) can predict every manifest's digest.
constexpr uint64_t kLayerSeed = 0xbe47'0000;
constexpr int kLayers = 4;
constexpr uint64_t kLayerSize = 1024;
// Seeds of the blobs blob-pull and mixed read.
constexpr uint64_t kPullSeed = 0xbe47'1000'0000;

const std::vector<std::string> kNames = {"ping",
                                         "blob-push",
                                         "blob-push-chunked",
                                         "blob-pull",
                                         "manifest-put",
                                         "manifest-get-tag",
                                         "manifest-get-digest",
                                         "manifest-head-tag",
                                         "manifest-head-digest",
                                         "index-push",
                                         "tags-list",
                                         "catalog",
                                         "mixed",
                                         "idle"};

bool IsBlobWorkload(std::string_view name) {
  return name == "blob-push" || name == "blob-push-chunked" || name == "blob-pull";
}

std::string Describe(const ClientRequest& req) {
  return std::string(bhttp::to_string(req.method)) + " " + req.target;
}

// "GET /v2/x/manifests/t1: expected 200, got 404: {...}"
Status Unexpected(const ClientRequest& req, const ClientResponse& res, unsigned want) {
  std::string body = res.body.substr(0, 400);
  for (char& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Status(Code::kFailedPrecondition,
                Describe(req) + ": expected status " + std::to_string(want) + ", got " +
                    std::to_string(res.status) + (body.empty() ? "" : ": " + body));
}

Status Mismatch(const ClientRequest& req, std::string_view what, std::string_view want,
                std::string_view got) {
  return Status(Code::kFailedPrecondition, Describe(req) + ": " + std::string(what) +
                                               " mismatch: expected '" + std::string(want) +
                                               "', got '" + std::string(got) + "'");
}

Status MissingHeader(const ClientRequest& req, std::string_view header) {
  return Status(Code::kFailedPrecondition,
                Describe(req) + ": response has no " + std::string(header) + " header");
}

// Docker-Content-Digest, when present, must equal `want`; `required` makes absence an error.
Status CheckDigestHeader(const ClientRequest& req, const ClientResponse& res,
                         const oci::Digest& want, bool required) {
  std::string_view got = res.Header("Docker-Content-Digest");
  if (got.empty()) return required ? MissingHeader(req, "Docker-Content-Digest") : Status();
  if (got != want.str()) return Mismatch(req, "Docker-Content-Digest", want.str(), got);
  return {};
}

Status CheckContentLength(const ClientRequest& req, const ClientResponse& res, uint64_t want) {
  std::string_view got = res.Header("Content-Length");
  if (got.empty()) return MissingHeader(req, "Content-Length");
  if (got != std::to_string(want))
    return Mismatch(req, "Content-Length", std::to_string(want), got);
  return {};
}

// The images, indexes and blobs the manifest workloads use. Pure functions of their
// index, so every run (and --skip-setup) agrees on the bytes.
class ManifestSet {
 public:
  ManifestSet() {
    for (int l = 0; l < kLayers; ++l) {
      std::string bytes(kLayerSize, '\0');
      RandomContent(kLayerSeed + l, kLayerSize).Read(bytes);
      layers_.push_back(std::move(bytes));
      layer_digests_.push_back(oci::Digest::Of(layers_.back()));
    }
    config_ = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[)";
    for (int l = 0; l < kLayers; ++l) {
      config_ += (l ? ",\"" : "\"") + layer_digests_[l].str() + "\"";
    }
    config_ += "]}}";
    config_digest_ = oci::Digest::Of(config_);
  }

  const std::string& config() const { return config_; }
  const oci::Digest& config_digest() const { return config_digest_; }
  const std::vector<std::string>& layers() const { return layers_; }
  const std::vector<oci::Digest>& layer_digests() const { return layer_digests_; }

  // Image manifest `i`: the config and `layers` layers, told apart by an annotation.
  std::string Image(uint64_t i, int layers = kLayers) const {
    std::string m;
    m.reserve(1200);
    m += R"({"schemaVersion":2,"mediaType":")";
    m += kOciManifest;
    m += R"(","config":{"mediaType":")";
    m += kOciConfig;
    m += R"(","digest":")" + config_digest_.str() + R"(","size":)" +
         std::to_string(config_.size()) + R"(},"layers":[)";
    for (int l = 0; l < layers; ++l) {
      if (l) m += ',';
      m += R"({"mediaType":")";
      m += kOciLayer;
      m += R"(","digest":")" + layer_digests_[l].str() + R"(","size":)" +
           std::to_string(kLayerSize) + "}";
    }
    m += R"(],"annotations":{"org.example.berth.bench.index":")" + std::to_string(i) + "\"}}";
    return m;
  }

  // An index of two images (amd64, arm64), told apart by an annotation.
  static std::string Index(uint64_t j, const std::string& amd64, const std::string& arm64) {
    std::string m = R"({"schemaVersion":2,"mediaType":")";
    m += kOciIndex;
    m += R"(","manifests":[)";
    auto entry = [&](const std::string& bytes, std::string_view arch) {
      m += R"({"mediaType":")";
      m += kOciManifest;
      m += R"(","digest":")" + oci::Digest::Of(bytes).str() + R"(","size":)" +
           std::to_string(bytes.size()) + R"(,"platform":{"architecture":")";
      m += arch;
      m += R"(","os":"linux"}})";
    };
    entry(amd64, "amd64");
    m += ',';
    entry(arm64, "arm64");
    m += R"(],"annotations":{"org.example.berth.bench.index":")" + std::to_string(j) + "\"}}";
    return m;
  }

  static std::string Tag(uint64_t i) { return "t" + std::to_string(i); }

 private:
  std::string config_;
  oci::Digest config_digest_;
  std::vector<std::string> layers_;
  std::vector<oci::Digest> layer_digests_;
};

// ------------------------------------------------------------- registry operations

asio::awaitable<Result<ClientResponse>> Send(Client& c, ClientRequest& req,
                                             BodySink* sink = nullptr) {
  auto res = co_await c.Do(req, sink);
  if (!res.ok()) {
    co_return Status(res.status().code(), Describe(req) + ": " + res.status().message());
  }
  co_return res;
}

asio::awaitable<Status> Ping(Client& c) {
  ClientRequest req;
  req.target = "/v2/";
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status != 200) co_return Unexpected(req, *res, 200);
  co_return Status();
}

// POST an upload session; returns the Location target.
asio::awaitable<Result<std::string>> StartUpload(Client& c, const std::string& repo) {
  ClientRequest req;
  req.method = verb::post;
  req.target = "/v2/" + repo + "/blobs/uploads/";
  req.scope = repo;
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status != 202) co_return Unexpected(req, *res, 202);
  std::string_view loc = res->Header("Location");
  if (loc.empty()) co_return MissingHeader(req, "Location");
  co_return TargetFromLocation(loc);
}

asio::awaitable<Status> FinishBlob(Client& c, ClientRequest& req, BodySink* sink,
                                   const oci::Digest& digest) {
  auto res = co_await Send(c, req, sink);
  if (!res.ok()) co_return res.status();
  if (res->status != 201) co_return Unexpected(req, *res, 201);
  if (res->Header("Location").empty()) co_return MissingHeader(req, "Location");
  co_return CheckDigestHeader(req, *res, digest, false);
}

// Monolithic push: POST, then PUT ?digest= with the whole blob (or one POST ?digest=).
asio::awaitable<Status> PushBlob(Client& c, const std::string& repo, BodySource& body,
                                 const oci::Digest& digest, bool single_post) {
  ClientRequest req;
  req.scope = repo;
  req.source = &body;
  req.AddHeader("Content-Type", "application/octet-stream");
  if (single_post) {
    req.method = verb::post;
    req.target = WithQuery("/v2/" + repo + "/blobs/uploads/", "digest", digest.str());
  } else {
    auto loc = co_await StartUpload(c, repo);
    if (!loc.ok()) co_return loc.status();
    req.method = verb::put;
    req.target = WithQuery(std::move(*loc), "digest", digest.str());
  }
  co_return co_await FinishBlob(c, req, nullptr, digest);
}

asio::awaitable<Status> PushSmallBlob(Client& c, const std::string& repo,
                                      const std::string& bytes) {
  struct StringSource final : BodySource {
    std::string_view s;
    size_t pos = 0;
    uint64_t size() const override { return s.size(); }
    size_t Read(std::span<char> out) override {
      size_t n = std::min(out.size(), s.size() - pos);
      std::copy_n(s.data() + pos, n, out.data());
      pos += n;
      return n;
    }
    void Rewind() override { pos = 0; }
  } src;
  src.s = bytes;
  co_return co_await PushBlob(c, repo, src, oci::Digest::Of(bytes), false);
}

// Links `digest` from `from` (cross-repository mount); pushes `bytes` if the registry
// does not mount.
asio::awaitable<Status> MountBlob(Client& c, const std::string& repo, const std::string& from,
                                  const oci::Digest& digest, const std::string& bytes) {
  ClientRequest req;
  req.method = verb::post;
  req.target =
      WithQuery(WithQuery("/v2/" + repo + "/blobs/uploads/", "mount", digest.str()), "from", from);
  req.scope = repo;
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status == 201) co_return CheckDigestHeader(req, *res, digest, false);
  if (res->status != 202) co_return Unexpected(req, *res, 201);
  co_return co_await PushSmallBlob(c, repo, bytes);
}

asio::awaitable<Result<uint64_t>> PutManifest(Client& c, const std::string& repo,
                                              const std::string& ref, const std::string& bytes,
                                              std::string_view media_type) {
  ClientRequest req;
  req.method = verb::put;
  req.target = "/v2/" + repo + "/manifests/" + ref;
  req.scope = repo;
  req.body = bytes;
  req.AddHeader("Content-Type", media_type);
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status != 201) co_return Unexpected(req, *res, 201);
  if (res->Header("Location").empty()) co_return MissingHeader(req, "Location");
  if (Status st = CheckDigestHeader(req, *res, oci::Digest::Of(bytes), true); !st.ok()) {
    co_return st;
  }
  co_return static_cast<uint64_t>(bytes.size());
}

// GET or HEAD a manifest and check it is `bytes`.
asio::awaitable<Result<uint64_t>> FetchManifest(Client& c, const std::string& repo,
                                                const std::string& ref, const std::string& bytes,
                                                std::string_view media_type, bool head,
                                                bool verify) {
  ClientRequest req;
  req.method = head ? verb::head : verb::get;
  req.target = "/v2/" + repo + "/manifests/" + ref;
  req.scope = repo;
  req.AddHeader("Accept", kAcceptManifests);
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status != 200) co_return Unexpected(req, *res, 200);
  oci::Digest want = oci::Digest::Of(bytes);
  if (Status st = CheckDigestHeader(req, *res, want, true); !st.ok()) co_return st;
  if (Status st = CheckContentLength(req, *res, bytes.size()); !st.ok()) co_return st;
  if (head) co_return uint64_t{0};
  std::string_view ct = res->Header("Content-Type");
  if (ct != media_type) co_return Mismatch(req, "Content-Type", media_type, ct);
  if (res->body.size() != bytes.size()) {
    co_return Mismatch(req, "body length", std::to_string(bytes.size()),
                       std::to_string(res->body.size()));
  }
  if (verify) {
    oci::Digest got = oci::Digest::Of(res->body);
    if (got != want) co_return Mismatch(req, "manifest body digest", want.str(), got.str());
  }
  co_return static_cast<uint64_t>(res->body_bytes);
}

asio::awaitable<Result<uint64_t>> PullBlob(Client& c, const std::string& repo,
                                           const oci::Digest& digest, uint64_t size, bool verify) {
  ClientRequest req;
  req.target = "/v2/" + repo + "/blobs/" + digest.str();
  req.scope = repo;
  HashingSink sink(verify, digest.algorithm());
  auto res = co_await Send(c, req, &sink);
  if (!res.ok()) co_return res.status();
  if (res->status != 200) co_return Unexpected(req, *res, 200);
  if (Status st = CheckContentLength(req, *res, size); !st.ok()) co_return st;
  if (Status st = CheckDigestHeader(req, *res, digest, false); !st.ok()) co_return st;
  if (sink.bytes() != size) {
    co_return Mismatch(req, "body length", std::to_string(size), std::to_string(sink.bytes()));
  }
  if (verify) {
    oci::Digest got = sink.digest();
    if (got != digest) co_return Mismatch(req, "blob body digest", digest.str(), got.str());
  }
  co_return size;
}

// GET a JSON listing; checks `field` is a non-empty array of strings.
asio::awaitable<Result<uint64_t>> FetchListing(Client& c, std::string target, std::string scope,
                                               std::string_view field, uint64_t page,
                                               std::string last, std::string_view want_name) {
  ClientRequest req;
  req.target = std::move(target);
  if (page > 0) req.target = WithQuery(std::move(req.target), "n", std::to_string(page));
  if (!last.empty()) req.target = WithQuery(std::move(req.target), "last", last);
  req.scope = std::move(scope);
  auto res = co_await Send(c, req);
  if (!res.ok()) co_return res.status();
  if (res->status != 200) co_return Unexpected(req, *res, 200);
  boost::system::error_code ec;
  auto doc = boost::json::parse(res->body, ec);
  if (ec || !doc.is_object()) {
    co_return Status(
        Code::kFailedPrecondition,
        Describe(req) + ": response is not a JSON object: " + res->body.substr(0, 200));
  }
  const auto* arr = doc.as_object().if_contains(field);
  if (arr == nullptr || !arr->is_array()) {
    co_return Status(Code::kFailedPrecondition,
                     Describe(req) + ": response has no \"" + std::string(field) + "\" array");
  }
  if (arr->as_array().empty()) {
    co_return Status(Code::kFailedPrecondition,
                     Describe(req) + ": \"" + std::string(field) + "\" is empty");
  }
  // More than n entries is tolerated: Distribution 2.8 ignores n for tags lists.
  for (const auto& v : arr->as_array()) {
    if (!v.is_string()) {
      co_return Status(Code::kFailedPrecondition, Describe(req) + ": a non-string entry");
    }
  }
  if (!want_name.empty()) {
    const auto* name = doc.as_object().if_contains("name");
    if (name == nullptr || !name->is_string() || name->as_string() != want_name) {
      co_return Mismatch(req, "\"name\"", want_name,
                         name && name->is_string() ? std::string_view(name->as_string()) : "");
    }
  }
  co_return static_cast<uint64_t>(res->body_bytes);
}

}  // namespace

// --------------------------------------------------------------------- workloads

class Workload {
 public:
  Workload(Runner& runner, std::string name)
      : runner_(runner),
        o_(runner.options()),
        name_(std::move(name)),
        repo_(runner.RepositoryFor(name_)) {}
  virtual ~Workload() = default;
  const std::string& name() const { return name_; }
  const std::string& repository() const { return repo_; }
  // Untimed preparation; `skip` = assume an earlier run created the data.
  virtual Status Setup(bool skip) { return {}; }
  virtual asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) = 0;

 protected:
  // Pushes the fixed config and layer blobs into `repo`.
  Status PushManifestBlobs(const std::string& repo) {
    return Phase(1, 1, [this, repo](Client& c, uint64_t) -> asio::awaitable<Result<uint64_t>> {
      return PushFixedBlobs(c, repo);
    });
  }
  asio::awaitable<Result<uint64_t>> PushFixedBlobs(Client& c, std::string repo) {
    if (Status st = co_await PushSmallBlob(c, repo, set_.config()); !st.ok()) co_return st;
    for (const auto& layer : set_.layers()) {
      if (Status st = co_await PushSmallBlob(c, repo, layer); !st.ok()) co_return st;
    }
    co_return uint64_t{0};
  }
  // Puts images 0..n-1 as tags t0..t(n-1).
  Status PutImages(const std::string& repo, uint64_t n) {
    if (Status st = PushManifestBlobs(repo); !st.ok()) return st;
    return Phase(n, o_.concurrency,
                 [this, repo](Client& c, uint64_t i) { return PutImage(c, repo, i); });
  }
  asio::awaitable<Result<uint64_t>> PutImage(Client& c, std::string repo, uint64_t i) {
    std::string bytes = set_.Image(i);
    co_return co_await PutManifest(c, repo, ManifestSet::Tag(i), bytes, kOciManifest);
  }
  Status Phase(uint64_t n, int conc, const Runner::OpFn& fn) {
    auto r = runner_.RunPhase(n, 0, std::max(1, std::min<int>(conc, static_cast<int>(n))), fn);
    return r.ok() ? Status() : Status(r.status().code(), "setup: " + r.status().message());
  }

  Runner& runner_;
  const BenchOptions& o_;
  std::string name_;
  std::string repo_;
  ManifestSet set_;
};

namespace {

class PingWorkload final : public Workload {
 public:
  using Workload::Workload;
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t) override {
    if (Status st = co_await Ping(c); !st.ok()) co_return st;
    co_return uint64_t{0};
  }
};

// Holds connections open without requests (server memory per idle connection).
class IdleWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool) override {
    hold_until_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(hold_seconds()));
    return {};
  }
  double hold_seconds() const { return o_.duration_s > 0 ? o_.duration_s : 10.0; }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t) override {
    // Warm() already opened and pinged this connection; now it idles.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_at(hold_until_);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return uint64_t{0};
  }
  void Rearm() {
    hold_until_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(hold_seconds()));
  }

 private:
  Clock::time_point hold_until_;
};

class BlobPushWorkload final : public Workload {
 public:
  BlobPushWorkload(Runner& r, std::string name, bool chunked)
      : Workload(r, std::move(name)), chunked_(chunked) {}

  Status Setup(bool) override {
    // Monolithic pushes need the digest before the first byte: compute them now,
    // untimed, when the count is known (with --duration they are computed per push).
    if (!chunked_ && o_.count > 0) {
      digests_.resize(o_.count);
      runner_.ParallelCpu(
          o_.count, [this](uint64_t i) { digests_[i] = RandomContentDigest(Seed(i), o_.size); });
    }
    return {};
  }

  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    if (chunked_) co_return co_await Chunked(c, i);
    oci::Digest digest = i < digests_.size() ? digests_[i] : RandomContentDigest(Seed(i), o_.size);
    ContentSource body(Seed(i), o_.size, 0, o_.size);
    if (Status st = co_await PushBlob(c, repo_, body, digest, o_.single_post); !st.ok()) {
      co_return st;
    }
    co_return o_.size;
  }

 private:
  uint64_t Seed(uint64_t i) const { return runner_.run_seed() ^ ((i + 1) * 0x9e3779b97f4a7c15ULL); }

  // POST, PATCH chunk by chunk (hashing as it sends), PUT ?digest=.
  asio::awaitable<Result<uint64_t>> Chunked(Client& c, uint64_t i) {
    auto loc = co_await StartUpload(c, repo_);
    if (!loc.ok()) co_return loc.status();
    std::string target = std::move(*loc);
    oci::Hasher hasher;
    uint64_t chunk = std::max<uint64_t>(o_.chunk_size, 1);
    for (uint64_t off = 0; off < o_.size; off += chunk) {
      uint64_t end = std::min(o_.size, off + chunk);
      ContentSource body(Seed(i), o_.size, off, end, &hasher);
      ClientRequest req;
      req.method = verb::patch;
      req.target = target;
      req.scope = repo_;
      req.source = &body;
      req.AddHeader("Content-Type", "application/octet-stream");
      req.AddHeader("Content-Range", std::to_string(off) + "-" + std::to_string(end - 1));
      auto res = co_await Send(c, req);
      if (!res.ok()) co_return res.status();
      if (res->status != 202) co_return Unexpected(req, *res, 202);
      std::string_view next = res->Header("Location");
      if (next.empty()) co_return MissingHeader(req, "Location");
      std::string_view range = res->Header("Range");
      std::string want_range = "0-" + std::to_string(end - 1);
      if (range.empty()) co_return MissingHeader(req, "Range");
      if (range != want_range) co_return Mismatch(req, "Range", want_range, range);
      target = TargetFromLocation(next);
    }
    oci::Digest digest = hasher.Peek();
    ClientRequest req;
    req.method = verb::put;
    req.target = WithQuery(std::move(target), "digest", digest.str());
    req.scope = repo_;
    if (Status st = co_await FinishBlob(c, req, nullptr, digest); !st.ok()) co_return st;
    co_return o_.size;
  }

  bool chunked_;
  std::vector<oci::Digest> digests_;
};

// The blobs blob-pull and mixed read: `n` blobs of --size.
struct PullSet {
  std::vector<oci::Digest> digests;
  static uint64_t Seed(uint64_t k) { return kPullSeed + k; }
};

Status PreparePullSet(Runner& runner, Workload& w, const std::string& repo, uint64_t n, bool skip,
                      PullSet& set) {
  const auto& o = runner.options();
  set.digests.resize(n);
  runner.ParallelCpu(
      n, [&](uint64_t k) { set.digests[k] = RandomContentDigest(PullSet::Seed(k), o.size); });
  if (skip) return {};
  auto r = runner.RunPhase(n, 0, std::max(1, std::min<int>(o.concurrency, static_cast<int>(n))),
                           [&](Client& c, uint64_t k) -> asio::awaitable<Result<uint64_t>> {
                             return [](Client& c, std::string repo, uint64_t seed, uint64_t size,
                                       oci::Digest d) -> asio::awaitable<Result<uint64_t>> {
                               ContentSource body(seed, size, 0, size);
                               Status st = co_await PushBlob(c, repo, body, d, false);
                               if (!st.ok()) co_return st;
                               co_return size;
                             }(c, repo, PullSet::Seed(k), o.size, set.digests[k]);
                           });
  return r.ok() ? Status() : Status(r.status().code(), "setup: " + r.status().message());
}

class BlobPullWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override {
    uint64_t n = std::clamp<uint64_t>(o_.concurrency, 1, 16);
    if (o_.count > 0) n = std::min(n, o_.count);
    BERTH_RETURN_IF_ERROR(PreparePullSet(runner_, *this, repo_, n, skip, set_));
    // One untimed pull of each blob first, so that the timed pulls measure serving hot
    // blobs from the page cache on every registry, whether or not its uploads left
    // them there (Berth's O_DIRECT uploads do not; Distribution's buffered ones do).
    auto r = runner_.RunPhase(n, 0, std::max(1, std::min<int>(o_.concurrency, static_cast<int>(n))),
                              [&](Client& c, uint64_t k) -> asio::awaitable<Result<uint64_t>> {
                                return PullBlob(c, repo_, set_.digests[k], o_.size, false);
                              });
    return r.ok() ? Status() : Status(r.status().code(), "warm-up: " + r.status().message());
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    const oci::Digest& d = set_.digests[i % set_.digests.size()];
    co_return co_await PullBlob(c, repo_, d, o_.size, o_.verify);
  }

 private:
  PullSet set_;
};

class ManifestPutWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override { return skip ? Status() : PushManifestBlobs(repo_); }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    return PutImage(c, repo_, o_.first_index + i);
  }
};

class ManifestGetWorkload final : public Workload {
 public:
  ManifestGetWorkload(Runner& r, std::string name, bool by_digest, bool head)
      : Workload(r, std::move(name)), by_digest_(by_digest), head_(head) {}
  Status Setup(bool skip) override {
    return skip ? Status() : PutImages(repo_, std::max<uint64_t>(o_.tags, 1));
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    // A random tag each time: a big repository is not read in key order.
    uint64_t n = std::max<uint64_t>(o_.tags, 1);
    uint64_t r = SplitMix64::Mix(runner_.run_seed() ^ i);
    uint64_t k = o_.hot > 0 && o_.hot < n ? (r % o_.hot) * (n / o_.hot) : r % n;
    std::string bytes = set_.Image(k);
    std::string ref = by_digest_ ? oci::Digest::Of(bytes).str() : ManifestSet::Tag(k);
    co_return co_await FetchManifest(c, repo_, ref, bytes, kOciManifest, head_, o_.verify);
  }

 private:
  bool by_digest_;
  bool head_;
};

class IndexPushWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override {
    amd64_ = set_.Image(0);
    arm64_ = set_.Image(1);
    return skip ? Status() : PutImages(repo_, 2);
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    std::string bytes = ManifestSet::Index(i, amd64_, arm64_);
    co_return co_await PutManifest(c, repo_, "i" + std::to_string(i), bytes, kOciIndex);
  }

 private:
  std::string amd64_, arm64_;
};

class TagsListWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override {
    return skip ? Status() : PutImages(repo_, std::max<uint64_t>(o_.tags, 1));
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t) override {
    return FetchListing(c, "/v2/" + repo_ + "/tags/list", repo_, "tags", o_.page, o_.last, repo_);
  }
};

class CatalogWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override {
    if (skip) return {};
    if (Status st = PushManifestBlobs(repo_); !st.ok()) return st;
    // Each repository gets a one-layer image; its blobs are mounted from repo_.
    return Phase(std::max<uint64_t>(o_.repos, 1), o_.concurrency,
                 [this](Client& c, uint64_t i) { return MakeRepo(c, i); });
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t) override {
    return FetchListing(c, "/v2/_catalog", "", "repositories", o_.page, o_.last, "");
  }

 private:
  asio::awaitable<Result<uint64_t>> MakeRepo(Client& c, uint64_t i) {
    std::string repo = repo_ + "/r" + std::to_string(i);
    Status st = co_await MountBlob(c, repo, repo_, set_.config_digest(), set_.config());
    if (!st.ok()) co_return st;
    st = co_await MountBlob(c, repo, repo_, set_.layer_digests()[0], set_.layers()[0]);
    if (!st.ok()) co_return st;
    co_return co_await PutManifest(c, repo, "latest", set_.Image(i, 1), kOciManifest);
  }
};

// Pull-heavy traffic: 45 % manifest GET by tag, 15 % manifest HEAD, 30 % blob GET,
// 5 % tags list, 5 % manifest PUT (a new tag).
class MixedWorkload final : public Workload {
 public:
  using Workload::Workload;
  Status Setup(bool skip) override {
    uint64_t n = std::clamp<uint64_t>(o_.concurrency, 1, 16);
    if (Status st = PreparePullSet(runner_, *this, repo_, n, skip, pulls_); !st.ok()) return st;
    return skip ? Status() : PutImages(repo_, std::max<uint64_t>(o_.tags, 1));
  }
  asio::awaitable<Result<uint64_t>> Op(Client& c, uint64_t i) override {
    SplitMix64 rng(runner_.run_seed() ^ (i * 0x2545f4914f6cdd1dULL));
    uint64_t roll = rng.Below(100);
    uint64_t k = rng.Below(std::max<uint64_t>(o_.tags, 1));
    if (roll < 60) {
      co_return co_await FetchManifest(c, repo_, ManifestSet::Tag(k), set_.Image(k), kOciManifest,
                                       roll >= 45, o_.verify);
    }
    if (roll < 90) {
      const oci::Digest& d = pulls_.digests[rng.Below(pulls_.digests.size())];
      co_return co_await PullBlob(c, repo_, d, o_.size, o_.verify);
    }
    if (roll < 95) {
      co_return co_await FetchListing(c, "/v2/" + repo_ + "/tags/list", repo_, "tags", o_.page, "",
                                      repo_);
    }
    uint64_t j = 1'000'000'000ull + i;
    std::string bytes = set_.Image(j);
    co_return co_await PutManifest(
        c, repo_, "m" + std::to_string(runner_.run_seed() % 100000) + "-" + std::to_string(i),
        bytes, kOciManifest);
  }

 private:
  PullSet pulls_;
};

std::unique_ptr<Workload> MakeWorkload(Runner& r, const std::string& name) {
  if (name == "ping") return std::make_unique<PingWorkload>(r, name);
  if (name == "idle") return std::make_unique<IdleWorkload>(r, name);
  if (name == "blob-push") return std::make_unique<BlobPushWorkload>(r, name, false);
  if (name == "blob-push-chunked") return std::make_unique<BlobPushWorkload>(r, name, true);
  if (name == "blob-pull") return std::make_unique<BlobPullWorkload>(r, name);
  if (name == "manifest-put") return std::make_unique<ManifestPutWorkload>(r, name);
  if (name == "manifest-get-tag")
    return std::make_unique<ManifestGetWorkload>(r, name, false, false);
  if (name == "manifest-get-digest")
    return std::make_unique<ManifestGetWorkload>(r, name, true, false);
  if (name == "manifest-head-tag")
    return std::make_unique<ManifestGetWorkload>(r, name, false, true);
  if (name == "manifest-head-digest")
    return std::make_unique<ManifestGetWorkload>(r, name, true, true);
  if (name == "index-push") return std::make_unique<IndexPushWorkload>(r, name);
  if (name == "tags-list") return std::make_unique<TagsListWorkload>(r, name);
  if (name == "catalog") return std::make_unique<CatalogWorkload>(r, name);
  if (name == "mixed") return std::make_unique<MixedWorkload>(r, name);
  return nullptr;
}

// ------------------------------------------------------------------------ phases

struct Shared {
  uint64_t count = 0;
  std::optional<Clock::time_point> deadline;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  Status first_error;  // guarded by mu

  void Fail(Status st) {
    std::lock_guard lock(mu);
    if (first_error.ok()) first_error = std::move(st);
    stop = true;
  }
};

struct PerThread {
  LatencyHistogram hist;
  uint64_t ops = 0;
  uint64_t bytes = 0;
};

asio::awaitable<void> Worker(Client& client, const Runner::OpFn& fn, Shared& sh, PerThread& pt) {
  try {
    while (!sh.stop.load(std::memory_order_relaxed)) {
      if (sh.deadline && Clock::now() >= *sh.deadline) break;
      uint64_t i = sh.next.fetch_add(1, std::memory_order_relaxed);
      if (sh.count > 0 && i >= sh.count) break;
      auto t0 = Clock::now();
      Result<uint64_t> r = co_await fn(client, i);
      auto t1 = Clock::now();
      if (!r.ok()) {
        sh.Fail(r.status());
        break;
      }
      pt.hist.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      ++pt.ops;
      pt.bytes += *r;
    }
  } catch (const std::exception& e) {
    sh.Fail(Status::Internal(std::string("unexpected exception: ") + e.what()));
  }
}

}  // namespace

const std::vector<std::string>& WorkloadNames() { return kNames; }

bool IsWorkload(std::string_view name) {
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

Runner::Runner(BenchOptions options) : options_(std::move(options)) {}
Runner::~Runner() {
  // Connections close before their io_contexts go.
  clients_.clear();
}

std::string Runner::RepositoryFor(std::string_view workload) const {
  if (!options_.repository.empty()) return options_.repository;
  return options_.repo_prefix + "/" + std::string(workload);
}

Status Runner::Init() {
  BERTH_ASSIGN_OR_RETURN(endpoint_, Endpoint::Parse(options_.url));
  BERTH_RETURN_IF_ERROR(endpoint_.Resolve());
  if (options_.concurrency < 1) return Status::InvalidArgument("--concurrency must be >= 1");
  if (options_.size == 0 && (options_.count > 0 || options_.duration_s > 0)) {
    // size 0 is legal for blobs (the empty blob), keep it.
  }
  try {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    if (options_.insecure) {
      tls_->set_verify_mode(asio::ssl::verify_none);
    } else {
      tls_->set_verify_mode(asio::ssl::verify_peer);
      tls_->set_default_verify_paths();
      if (!options_.cacert.empty()) tls_->load_verify_file(options_.cacert);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("TLS setup: ") + e.what());
  }
  auth_ = std::make_unique<Authenticator>(options_.credentials, tls_.get(), options_.timeout_s);
  int threads = options_.threads > 0
                    ? options_.threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  threads = std::min(threads, options_.concurrency);
  for (int t = 0; t < threads; ++t) iocs_.push_back(std::make_unique<asio::io_context>(1));
  if (options_.repo_prefix.empty()) {
    unsigned char b[4];
    RAND_bytes(b, sizeof b);
    char hex[9];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
    options_.repo_prefix = std::string("berth-bench/") + hex;
  }
  RAND_bytes(reinterpret_cast<unsigned char*>(&run_seed_), sizeof run_seed_);
  return {};
}

Client& Runner::ClientAt(int index) {
  while (static_cast<int>(clients_.size()) <= index) {
    int k = static_cast<int>(clients_.size());
    auto& ioc = *iocs_[k % iocs_.size()];
    clients_.push_back(std::make_unique<Client>(ioc.get_executor(), endpoint_,
                                                endpoint_.tls ? tls_.get() : nullptr,
                                                options_.timeout_s, *auth_));
  }
  return *clients_[index];
}

void Runner::ParallelCpu(uint64_t count, const std::function<void(uint64_t)>& fn) {
  std::atomic<uint64_t> next{0};
  std::vector<std::thread> pool;
  int n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int t = 0; t < n; ++t) {
    pool.emplace_back([&] {
      for (uint64_t i; (i = next.fetch_add(1)) < count;) fn(i);
    });
  }
  for (auto& t : pool) t.join();
}

Result<Runner::PhaseResult> Runner::RunPhase(uint64_t count, double duration_s, int concurrency,
                                             const OpFn& fn) {
  if (count == 0 && duration_s <= 0)
    return Status::InvalidArgument("a phase needs a count or a duration");
  Shared sh;
  sh.count = count;
  std::vector<PerThread> per(iocs_.size());
  for (int w = 0; w < concurrency; ++w) ClientAt(w);
  for (auto& ioc : iocs_) ioc->restart();
  auto start = Clock::now();
  if (duration_s > 0) {
    sh.deadline = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(duration_s));
  }
  for (int w = 0; w < concurrency; ++w) {
    size_t t = static_cast<size_t>(w) % iocs_.size();
    asio::co_spawn(*iocs_[t], Worker(*clients_[w], fn, sh, per[t]), asio::detached);
  }
  std::vector<std::thread> threads;
  for (size_t t = 1; t < iocs_.size(); ++t) threads.emplace_back([this, t] { iocs_[t]->run(); });
  iocs_[0]->run();
  for (auto& th : threads) th.join();
  auto end = Clock::now();
  if (!sh.first_error.ok()) return sh.first_error;
  PhaseResult r;
  r.seconds = std::chrono::duration<double>(end - start).count();
  for (auto& p : per) {
    r.hist.Merge(p.hist);
    r.ops += p.ops;
    r.bytes += p.bytes;
  }
  return r;
}

Status Runner::Warm(int concurrency) {
  Shared sh;
  for (int w = 0; w < concurrency; ++w) ClientAt(w);
  for (auto& ioc : iocs_) ioc->restart();
  for (int w = 0; w < concurrency; ++w) {
    Client& c = *clients_[w];
    if (c.connection().is_open()) continue;
    asio::co_spawn(
        *iocs_[static_cast<size_t>(w) % iocs_.size()],
        [](Client& c, Shared& sh) -> asio::awaitable<void> {
          Status st = co_await Ping(c);
          if (!st.ok()) sh.Fail(Status(st.code(), "opening connections: " + st.message()));
        }(c, sh),
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (size_t t = 1; t < iocs_.size(); ++t) threads.emplace_back([this, t] { iocs_[t]->run(); });
  iocs_[0]->run();
  for (auto& th : threads) th.join();
  return sh.first_error;
}

Result<WorkloadResult> Runner::Run(std::string_view name) {
  auto wl = MakeWorkload(*this, std::string(name));
  if (!wl) return Status::InvalidArgument("unknown workload '" + std::string(name) + "'");
  auto fail = [&](const Status& st) {
    return Status(st.code(), std::string(name) + ": " + st.message());
  };
  WorkloadResult res;
  res.workload = std::string(name);
  res.repository = wl->repository();
  res.concurrency = options_.concurrency;
  res.threads = threads();
  bool blob = IsBlobWorkload(name) || name == "mixed";
  if (blob) res.size = options_.size;

  uint64_t count = options_.count;
  double duration = options_.duration_s;
  if (name == "idle") {
    count = static_cast<uint64_t>(options_.concurrency);
    duration = 0;
  } else if (count == 0 && duration <= 0) {
    if (IsBlobWorkload(name)) {
      uint64_t per = std::max<uint64_t>(options_.size, 1);
      count = std::clamp<uint64_t>(kGiB / per, 2, 1024);
    } else {
      duration = 5;
    }
  }
  // Setup sees the effective count (blob-push precomputes digests for it).
  uint64_t saved_count = options_.count;
  options_.count = count;
  auto setup_start = Clock::now();
  Status st = wl->Setup(options_.skip_setup);
  options_.count = saved_count;
  if (!st.ok()) return fail(st);
  // Memory before this workload's connections exist (idle measures what they cost).
  uint64_t rss_before_connect = options_.server_pid > 0 ? CurrentRssKib(options_.server_pid) : 0;
  if (Status w = Warm(options_.concurrency); !w.ok()) return fail(w);
  res.setup_seconds = std::chrono::duration<double>(Clock::now() - setup_start).count();
  if (auto* idle = dynamic_cast<IdleWorkload*>(wl.get())) idle->Rearm();

  std::optional<ProcessSample> before;
  if (options_.server_pid > 0) {
    auto s = SampleProcess(options_.server_pid);
    if (!s.ok()) return fail(Status(s.status().code(), "--server-pid: " + s.status().message()));
    before = *s;
  }
  std::atomic<bool> sampling{true};
  std::atomic<uint64_t> rss_max{before ? before->memory.vm_rss_kib : 0};
  std::thread sampler;
  if (before) {
    sampler = std::thread([&] {
      while (sampling.load()) {
        uint64_t rss = CurrentRssKib(options_.server_pid);
        uint64_t cur = rss_max.load();
        while (rss > cur && !rss_max.compare_exchange_weak(cur, rss)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ProcessCpu self_before = SelfCpu();
  Workload* w = wl.get();
  auto phase = RunPhase(count, duration, options_.concurrency,
                        [w](Client& c, uint64_t i) { return w->Op(c, i); });
  ProcessCpu self_after = SelfCpu();
  sampling = false;
  if (sampler.joinable()) sampler.join();
  if (!phase.ok()) return fail(phase.status());

  res.ops = phase->ops;
  res.bytes = phase->bytes;
  res.seconds = phase->seconds;
  res.ops_per_s = res.seconds > 0 ? res.ops / res.seconds : 0;
  res.mb_per_s = res.seconds > 0 ? res.bytes / res.seconds / 1e6 : 0;
  res.latency = Summarize(phase->hist);
  res.client_cpu_s =
      (self_after.user_s + self_after.system_s) - (self_before.user_s + self_before.system_s);
  if (before) {
    auto after = SampleProcess(options_.server_pid);
    if (!after.ok()) {
      return fail(Status(after.status().code(),
                         "the server process is gone after the run: " + after.status().message()));
    }
    ServerUsage u;
    u.pid = options_.server_pid;
    u.user_s = after->cpu.user_s - before->cpu.user_s;
    u.system_s = after->cpu.system_s - before->cpu.system_s;
    u.cpu_s = u.user_s + u.system_s;
    if (res.bytes > 0 && res.size > 0)
      u.cpu_s_per_gib = u.cpu_s / (static_cast<double>(res.bytes) / kGiB);
    u.cpu_ms_per_op = res.ops > 0 ? u.cpu_s * 1000.0 / res.ops : 0;
    u.vm_hwm_kib = after->memory.vm_hwm_kib;
    u.vm_rss_kib = after->memory.vm_rss_kib;
    u.vm_rss_before_kib = rss_before_connect > 0 ? rss_before_connect : before->memory.vm_rss_kib;
    u.vm_rss_max_kib = std::max<uint64_t>(rss_max.load(), u.vm_rss_kib);
    res.server = u;
  }
  return res;
}

}  // namespace berth::bench
