#include "client/registry_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/json_util.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

bool IsLoopback(std::string_view host) {
  std::string_view h = host;
  if (h.starts_with("[")) {
    return h.starts_with("[::1]");
  }
  h = h.substr(0, h.find(':'));
  return h == "localhost" || h.starts_with("127.");
}

std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string QueryEscape(std::string_view s) {
  std::string e = Escape(s);
  std::string out;
  for (char c : e) {
    if (c == '/') {
      out += "%2F";
    } else if (c == ':') {
      out += "%3A";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool Transient(const Status& st) { return st.Is(Code::kUnavailable); }

bool TransientHttp(int status) { return status >= 500 || status == 429 || status == 408; }

// "0-1023" or "bytes=0-1023" → 1024 (bytes received).
std::optional<uint64_t> ParseRangeEnd(std::string_view r) {
  if (r.starts_with("bytes=")) r.remove_prefix(6);
  auto dash = r.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  uint64_t start = 0;
  uint64_t end = 0;
  auto s = r.substr(0, dash);
  auto e = r.substr(dash + 1);
  if (std::from_chars(s.data(), s.data() + s.size(), start).ec != std::errc() ||
      std::from_chars(e.data(), e.data() + e.size(), end).ec != std::errc()) {
    return std::nullopt;
  }
  if (start == 0 && end == 0) return 0;  // "0-0": nothing (or one byte) yet; resend from 0
  return end + 1;
}

std::string StripParams(std::string_view ct) {
  auto semi = ct.find(';');
  std::string_view s = ct.substr(0, semi);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

Code CodeForOciError(std::string_view code) {
  if (code == "MANIFEST_UNKNOWN") return Code::kManifestUnknown;
  if (code == "NAME_UNKNOWN") return Code::kNameUnknown;
  if (code == "BLOB_UNKNOWN") return Code::kBlobUnknown;
  if (code == "BLOB_UPLOAD_UNKNOWN") return Code::kUploadUnknown;
  if (code == "BLOB_UPLOAD_INVALID") return Code::kUploadInvalid;
  if (code == "DIGEST_INVALID") return Code::kDigestInvalid;
  if (code == "MANIFEST_INVALID" || code == "MANIFEST_UNVERIFIED") return Code::kManifestInvalid;
  if (code == "MANIFEST_BLOB_UNKNOWN") return Code::kManifestBlobUnknown;
  if (code == "NAME_INVALID") return Code::kNameInvalid;
  if (code == "TAG_INVALID") return Code::kTagInvalid;
  if (code == "SIZE_INVALID") return Code::kSizeInvalid;
  if (code == "UNAUTHORIZED") return Code::kUnauthorized;
  if (code == "DENIED") return Code::kDenied;
  if (code == "UNSUPPORTED") return Code::kUnsupported;
  if (code == "TOOMANYREQUESTS") return Code::kUnavailable;
  return Code::kOk;
}

// A BodySource over [start, start+len) of a local blob. Keeps one fd open.
class FileBody {
 public:
  FileBody(const LocalBlob& blob, uint64_t start, uint64_t len) : blob_(blob), start_(start) {
    source_.size = len;
    source_.read_at = [this](uint64_t off, char* buf, size_t n) -> Result<size_t> {
      if (fd_ < 0) {
        fd_ = ::open(blob_.path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) return Status::FromErrno("cannot open " + blob_.path.string(), errno);
      }
      ssize_t r;
      do {
        r = ::pread(fd_, buf, n, static_cast<off_t>(blob_.offset + start_ + off));
      } while (r < 0 && errno == EINTR);
      if (r < 0) return Status::FromErrno("cannot read " + blob_.path.string(), errno);
      return static_cast<size_t>(r);
    };
  }
  ~FileBody() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  const BodySource* source() const { return &source_; }

 private:
  LocalBlob blob_;
  uint64_t start_;
  int fd_ = -1;
  BodySource source_;
};

struct UploadState {
  std::string location;
};

std::optional<UploadState> LoadState(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto v = ParseJson(ss.str(), file.string());
  if (!v.ok() || !v->is_object()) return std::nullopt;
  UploadState s;
  s.location = JsonString(v->as_object(), "location");
  if (s.location.empty()) return std::nullopt;
  return s;
}

void SaveState(const fs::path& file, const json::object& o) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  fs::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << GoJson(o, "  ");
    if (!out) return;  // best effort: resume is an optimization
  }
  fs::rename(tmp, file, ec);
}

}  // namespace

const std::vector<std::string> kAllManifestTypes = {
    std::string(oci::kOciIndex), std::string(oci::kOciManifest),
    std::string(oci::kDockerManifestList), std::string(oci::kDockerManifest)};

std::string PullScope(std::string_view repo) { return "repository:" + std::string(repo) + ":pull"; }
std::string PushScope(std::string_view repo) {
  return "repository:" + std::string(repo) + ":pull,push";
}

Status ErrorFromResponse(const HttpResponse& resp, std::string_view what) {
  std::string oci_code;
  std::string message;
  boost::system::error_code ec;
  json::value v = json::parse(resp.body, ec);
  if (!ec && v.is_object()) {
    if (const json::array* errs = JsonArray(v.as_object(), "errors"); errs && !errs->empty() &&
                                                                        (*errs)[0].is_object()) {
      oci_code = JsonString((*errs)[0].as_object(), "code");
      message = JsonString((*errs)[0].as_object(), "message");
    } else {
      message = JsonString(v.as_object(), "message");
    }
  }
  Code code = CodeForOciError(oci_code);
  if (code == Code::kOk) {
    switch (resp.status) {
      case 401: code = Code::kUnauthorized; break;
      case 403: code = Code::kDenied; break;
      case 404: code = Code::kNotFound; break;
      case 405: code = Code::kUnsupported; break;
      case 413: code = Code::kTooLarge; break;
      case 416: code = Code::kRangeInvalid; break;
      default: code = TransientHttp(resp.status) ? Code::kUnavailable : Code::kFailedPrecondition;
    }
  }
  std::string text = std::string(what) + ": ";
  if (!message.empty()) {
    text += message + " (HTTP " + std::to_string(resp.status) +
            (oci_code.empty() ? "" : " " + oci_code) + ")";
  } else {
    text += "registry answered HTTP " + std::to_string(resp.status);
  }
  return Status(code, text, oci_code);
}

RegistryClient::RegistryClient(std::string host, RegistryOptions options,
                               std::optional<Credentials> creds)
    : options_(std::move(options)), creds_(std::move(creds)) {
  if (host.starts_with("http://")) {
    forced_scheme_ = "http";
    host = host.substr(7);
  } else if (host.starts_with("https://")) {
    forced_scheme_ = "https";
    host = host.substr(8);
  }
  while (host.ends_with("/")) host.pop_back();
  host_ = std::move(host);
  if (options_.insecure) options_.transport.insecure_skip_verify = true;
  if (creds_ && creds_->empty()) creds_.reset();
  http_ = std::make_unique<HttpClient>(options_.transport);
}

RegistryClient::~RegistryClient() = default;

std::string RegistryClient::Url(std::string_view path) const {
  std::lock_guard lock(mu_);
  return base_url_ + std::string(path);  // "" before Ping: Send() resolves it then
}

std::string RegistryClient::Absolute(std::string_view location) const {
  if (location.starts_with("http://") || location.starts_with("https://")) {
    return std::string(location);
  }
  std::lock_guard lock(mu_);
  if (location.starts_with("/")) return base_url_ + std::string(location);
  return base_url_ + "/v2/" + std::string(location);
}

void RegistryClient::Backoff(int attempt) const {
  int ms = options_.backoff_ms << std::min(attempt, 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

Status RegistryClient::Ping() {
  {
    std::lock_guard lock(mu_);
    if (!base_url_.empty()) return Status::Ok();
  }
  std::vector<std::string> schemes;
  if (!forced_scheme_.empty()) {
    schemes = {forced_scheme_};
  } else {
    schemes = {"https"};
    if (options_.insecure || IsLoopback(host_)) schemes.push_back("http");
  }
  Status last;
  for (size_t i = 0; i < schemes.size(); ++i) {
    std::string base = schemes[i] + "://" + host_;
    HttpRequest req;
    req.url = base + "/v2/";
    Result<HttpResponse> resp = Status::Internal("unreachable");
    for (int attempt = 0;; ++attempt) {
      resp = http_->Do(req);
      if (resp.ok() || resp.status().detail() == "tls" || attempt + 1 >= 2 ||
          resp.status().detail() == "connect") {
        break;
      }
      Backoff(attempt);
    }
    if (!resp.ok()) {
      last = resp.status();
      // A plain-HTTP server answers the TLS handshake with garbage: try HTTP next.
      if (i + 1 < schemes.size() && resp.status().detail() != "connect") continue;
      std::string hint;
      if (resp.status().detail() == "tls" && schemes.size() == 1 && forced_scheme_.empty()) {
        hint = " (if the registry speaks plain HTTP, pass --insecure)";
      }
      return Status(Code::kUnavailable,
                    "cannot reach registry " + host_ + ": " + resp.status().message() + hint,
                    resp.status().detail());
    }
    if (resp->status == 200 || resp->status == 401) {
      std::lock_guard lock(mu_);
      base_url_ = base;
      challenges_.clear();
      if (resp->status == 401) {
        for (const auto& h : resp->HeaderValues("www-authenticate")) {
          auto cs = ParseChallenges(h);
          challenges_.insert(challenges_.end(), cs.begin(), cs.end());
        }
      }
      return Status::Ok();
    }
    if (TransientHttp(resp->status) && i + 1 == schemes.size()) {
      return ErrorFromResponse(*resp, "registry " + host_ + " is not available");
    }
    last = Status(Code::kFailedPrecondition,
                  host_ + " does not look like a registry: GET " + req.url + " answered HTTP " +
                      std::to_string(resp->status));
    if (schemes[i] == "https" && i + 1 < schemes.size()) continue;
    return last;
  }
  return last;
}

Result<std::string> RegistryClient::FetchToken(const Challenge& c, const std::string& scope) {
  auto realm = c.params.find("realm");
  if (realm == c.params.end() || realm->second.empty()) {
    return Status(Code::kUnauthorized, "registry " + host_ + " sent a Bearer challenge without realm");
  }
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto svc = c.params.find("service"); svc != c.params.end()) {
    url += sep + std::string("service=") + QueryEscape(svc->second);
    sep = '&';
  }
  // Several scopes are separate parameters.
  std::string_view rest = scope;
  while (!rest.empty()) {
    auto space = rest.find(' ');
    url += sep + std::string("scope=") + QueryEscape(rest.substr(0, space));
    sep = '&';
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  HttpRequest req;
  req.url = url;
  if (creds_ && !creds_->username.empty()) {
    req.headers.emplace_back("Authorization", BasicAuthorization(*creds_));
  }
  Result<HttpResponse> resp = Status::Internal("unreachable");
  for (int attempt = 0;; ++attempt) {
    resp = http_->Do(req);
    bool transient = !resp.ok() ? Transient(resp.status()) : TransientHttp(resp->status);
    if (!transient || attempt + 1 >= options_.max_attempts) break;
    Backoff(attempt);
  }
  if (!resp.ok()) return resp.status();
  if (resp->status == 401 || resp->status == 403) {
    return Status(Code::kUnauthorized,
                  "token server " + realm->second + " refused the credentials for " + host_ +
                      " (HTTP " + std::to_string(resp->status) + ")");
  }
  if (resp->status != 200) return ErrorFromResponse(*resp, "token request to " + realm->second);
  return ParseTokenResponse(resp->body);
}

Result<std::string> RegistryClient::Authorization(const std::string& scope, bool refresh,
                                                  const std::vector<Challenge>& fresh) {
  std::vector<Challenge> challenges;
  {
    std::lock_guard lock(mu_);
    if (!refresh) {
      if (auto it = authz_.find(scope); it != authz_.end()) return it->second;
    }
    if (!fresh.empty()) challenges_ = fresh;
    challenges = challenges_;
  }
  std::string header;
  for (const Challenge& c : challenges) {
    if (c.scheme == "bearer") {
      std::string want = scope;
      if (auto s = c.params.find("scope"); s != c.params.end() && refresh &&
                                           want.find(s->second) == std::string::npos) {
        want = want.empty() ? s->second : want + " " + s->second;
      }
      BERTH_ASSIGN_OR_RETURN(std::string token, FetchToken(c, want));
      header = "Bearer " + token;
      break;
    }
    if (c.scheme == "basic") {
      if (!creds_) {
        return Status(Code::kUnauthorized, "registry " + host_ +
                                               " requires authentication: run `berth login " +
                                               host_ + "`");
      }
      header = BasicAuthorization(*creds_);
      break;
    }
  }
  std::lock_guard lock(mu_);
  authz_[scope] = header;
  return header;
}

Result<HttpResponse> RegistryClient::Send(HttpRequest req, const std::string& scope) {
  BERTH_RETURN_IF_ERROR(Ping());
  // Paths built before the scheme was known are relative to the base URL.
  if (req.url.starts_with("/")) req.url = Url(req.url);
  BERTH_ASSIGN_OR_RETURN(std::string authz, Authorization(scope, false, {}));
  size_t base_headers = req.headers.size();
  if (!authz.empty()) req.headers.emplace_back("Authorization", authz);
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, http_->Do(req));
  if (resp.status != 401) return resp;
  // Credentials missing, expired or scoped too narrowly: authenticate again as this
  // reply's challenge asks, once.
  std::vector<Challenge> fresh;
  for (const auto& h : resp.HeaderValues("www-authenticate")) {
    auto cs = ParseChallenges(h);
    fresh.insert(fresh.end(), cs.begin(), cs.end());
  }
  if (fresh.empty()) return resp;
  auto again = Authorization(scope, true, fresh);
  if (!again.ok()) return again.status();
  if (again->empty()) return resp;
  if (*again == authz) {
    return Status(Code::kUnauthorized,
                  creds_ ? "registry " + host_ + " refused the stored credentials (HTTP 401): run "
                                                 "`berth login " + host_ + "` again"
                         : "registry " + host_ + " requires authentication: run `berth login " +
                               host_ + "`");
  }
  req.headers.resize(base_headers);
  req.headers.emplace_back("Authorization", *again);
  BERTH_ASSIGN_OR_RETURN(resp, http_->Do(req));
  if (resp.status == 401) {
    return Status(Code::kUnauthorized,
                  creds_ ? "registry " + host_ + " refused the credentials (HTTP 401): run `berth "
                                                 "login " + host_ + "` again"
                         : "registry " + host_ + " requires authentication: run `berth login " +
                               host_ + "`");
  }
  return resp;
}

Result<HttpResponse> RegistryClient::SendRetrying(const HttpRequest& req, const std::string& scope) {
  for (int attempt = 0;; ++attempt) {
    auto resp = Send(req, scope);
    bool transient = !resp.ok() ? Transient(resp.status()) : TransientHttp(resp->status);
    if (!transient || attempt + 1 >= options_.max_attempts) return resp;
    // Connection refused on the very first contact is not worth waiting for.
    if (!resp.ok() && resp.status().message().starts_with("cannot reach registry") &&
        resp.status().detail() == "connect") {
      return resp;
    }
    Backoff(attempt);
  }
}

Result<bool> RegistryClient::VerifyLogin() {
  BERTH_RETURN_IF_ERROR(Ping());
  std::vector<Challenge> challenges;
  {
    std::lock_guard lock(mu_);
    challenges = challenges_;
  }
  if (challenges.empty()) return false;
  if (!creds_) {
    return Status(Code::kUnauthorized, "no credentials given for " + host_);
  }
  for (const Challenge& c : challenges) {
    if (c.scheme == "bearer") {
      BERTH_ASSIGN_OR_RETURN(std::string token, FetchToken(c, ""));
      HttpRequest req;
      req.url = Url("/v2/");
      req.headers.emplace_back("Authorization", "Bearer " + token);
      BERTH_ASSIGN_OR_RETURN(HttpResponse resp, http_->Do(req));
      if (resp.status == 200) return true;
      return Status(Code::kUnauthorized, "login attempt to " + req.url +
                                             " failed with status: " + std::to_string(resp.status));
    }
    if (c.scheme == "basic") {
      HttpRequest req;
      req.url = Url("/v2/");
      req.headers.emplace_back("Authorization", BasicAuthorization(*creds_));
      BERTH_ASSIGN_OR_RETURN(HttpResponse resp, http_->Do(req));
      if (resp.status == 200) return true;
      if (resp.status == 401) {
        return Status(Code::kUnauthorized, "login attempt to " + req.url +
                                               " failed with status: 401 Unauthorized (wrong "
                                               "user name or password)");
      }
      return ErrorFromResponse(resp, "login attempt to " + req.url);
    }
  }
  return Status(Code::kUnsupported,
                "registry " + host_ + " asks for an authentication scheme berth does not support (" +
                    challenges.front().scheme + ")");
}

Result<ManifestData> RegistryClient::GetManifest(std::string_view repo, std::string_view ref,
                                                 const std::vector<std::string>& accept) {
  HttpRequest req;
  req.url = Url("/v2/" + std::string(repo) + "/manifests/" + std::string(ref));
  for (const auto& a : accept) req.headers.emplace_back("Accept", a);
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, PullScope(repo)));
  std::string what = "manifest " + host_ + "/" + std::string(repo) +
                     (ref.starts_with("sha256:") ? "@" : ":") + std::string(ref);
  if (resp.status != 200) {
    Status st = ErrorFromResponse(resp, what);
    if (resp.status == 404) {
      return Status(st.Is(Code::kNameUnknown) ? Code::kNameUnknown : Code::kManifestUnknown,
                    "no such manifest: " + host_ + "/" + std::string(repo) +
                        (ref.starts_with("sha256:") ? "@" : ":") + std::string(ref),
                    st.detail());
    }
    return st;
  }
  ManifestData m;
  m.bytes = std::move(resp.body);
  m.media_type = StripParams(resp.Header("content-type"));
  m.digest = oci::Digest::Of(m.bytes);
  if (auto d = oci::Digest::Parse(ref); d.ok()) {
    oci::Digest got = oci::Digest::Of(m.bytes, d->algorithm());
    if (got != *d) {
      return Status(Code::kDigestInvalid,
                    what + ": the registry sent content with digest " + got.str());
    }
    m.digest = *d;
  }
  // Fill in the media type from the document when the registry is vague about it.
  if (!oci::IsManifestMediaType(m.media_type)) {
    auto v = ParseJson(m.bytes, what);
    if (v.ok() && v->is_object()) {
      std::string mt = JsonString(v->as_object(), "mediaType");
      if (!mt.empty()) {
        m.media_type = mt;
      } else if (v->as_object().contains("manifests")) {
        m.media_type = std::string(oci::kOciIndex);
      } else if (v->as_object().contains("config")) {
        m.media_type = std::string(oci::kOciManifest);
      }
    }
  }
  return m;
}

Result<std::optional<oci::Descriptor>> RegistryClient::HeadManifest(std::string_view repo,
                                                                     std::string_view ref) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url("/v2/" + std::string(repo) + "/manifests/" + std::string(ref));
  for (const auto& a : kAllManifestTypes) req.headers.emplace_back("Accept", a);
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, PullScope(repo)));
  if (resp.status == 404) return std::optional<oci::Descriptor>();
  if (resp.status != 200) {
    return ErrorFromResponse(resp, "HEAD manifest " + host_ + "/" + std::string(repo) + ":" +
                                       std::string(ref));
  }
  oci::Descriptor d;
  d.media_type = StripParams(resp.Header("content-type"));
  std::string len = resp.Header("content-length");
  d.size = len.empty() ? 0 : std::stoll(len);
  auto digest = oci::Digest::Parse(resp.Header("docker-content-digest"));
  if (!digest.ok()) {
    // Some registries omit the header on HEAD: fall back to GET.
    BERTH_ASSIGN_OR_RETURN(ManifestData m, GetManifest(repo, ref));
    d.media_type = m.media_type;
    d.digest = m.digest;
    d.size = static_cast<int64_t>(m.bytes.size());
    return std::optional<oci::Descriptor>(d);
  }
  d.digest = *digest;
  return std::optional<oci::Descriptor>(d);
}

Result<oci::Digest> RegistryClient::PutManifest(std::string_view repo, std::string_view ref,
                                                std::string_view bytes,
                                                std::string_view media_type) {
  HttpRequest req;
  req.method = "PUT";
  req.url = Url("/v2/" + std::string(repo) + "/manifests/" + std::string(ref));
  req.headers.emplace_back("Content-Type", std::string(media_type));
  req.body = std::string(bytes);
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, PushScope(repo)));
  if (resp.status != 201 && resp.status != 200 && resp.status != 202) {
    return ErrorFromResponse(resp, "push manifest " + host_ + "/" + std::string(repo) +
                                       (ref.starts_with("sha256:") ? "@" : ":") + std::string(ref));
  }
  auto d = oci::Digest::Parse(resp.Header("docker-content-digest"));
  if (d.ok()) return *d;
  return oci::Digest::Of(bytes);
}

Status RegistryClient::DeleteManifest(std::string_view repo, const oci::Digest& digest) {
  HttpRequest req;
  req.method = "DELETE";
  req.url = Url("/v2/" + std::string(repo) + "/manifests/" + digest.str());
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, "repository:" + std::string(repo) +
                                                                  ":delete"));
  if (resp.status == 202 || resp.status == 200 || resp.status == 204) return Status::Ok();
  std::string what = "delete " + host_ + "/" + std::string(repo) + "@" + digest.str();
  if (resp.status == 404) {
    Status st = ErrorFromResponse(resp, what);
    return Status(st.Is(Code::kNameUnknown) ? Code::kNameUnknown : Code::kManifestUnknown,
                  st.message(), st.detail());
  }
  if (resp.status == 405) {
    return Status(Code::kUnsupported, what + ": the registry does not allow deletes (HTTP 405)");
  }
  return ErrorFromResponse(resp, what);
}

Result<std::optional<uint64_t>> RegistryClient::BlobSize(std::string_view repo,
                                                         const oci::Digest& digest) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url("/v2/" + std::string(repo) + "/blobs/" + digest.str());
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, PullScope(repo)));
  if (resp.status == 404) return std::optional<uint64_t>();
  if (resp.status != 200) {
    return ErrorFromResponse(resp, "HEAD blob " + std::string(repo) + "@" + digest.str());
  }
  std::string len = resp.Header("content-length");
  uint64_t n = 0;
  std::from_chars(len.data(), len.data() + len.size(), n);
  return std::optional<uint64_t>(n);
}

Status RegistryClient::GetBlob(std::string_view repo, const oci::Descriptor& desc,
                               const std::function<Status(std::string_view)>& sink,
                               const ProgressFn& progress) {
  oci::Hasher hasher(desc.digest.algorithm());
  uint64_t received = 0;  // bytes passed to sink and hasher
  std::string what = "blob " + host_ + "/" + std::string(repo) + "@" + desc.digest.str();
  for (int attempt = 0;; ++attempt) {
    HttpRequest req;
    req.url = Url("/v2/" + std::string(repo) + "/blobs/" + desc.digest.str());
    uint64_t start = received;
    if (start > 0) req.headers.emplace_back("Range", "bytes=" + std::to_string(start) + "-");
    // Bytes of this response to drop: a server that ignores Range starts over.
    uint64_t skip = 0;
    req.on_body_start = [&](int code) { skip = code == 200 ? start : 0; };
    req.sink = [&](std::string_view data) -> Status {
      if (skip > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(skip, data.size()));
        data.remove_prefix(n);
        skip -= n;
      }
      if (data.empty()) return Status::Ok();
      if (desc.size > 0 && received + data.size() > static_cast<uint64_t>(desc.size)) {
        return Status(Code::kSizeInvalid, what + ": the registry sent more than the " +
                                              std::to_string(desc.size) + " bytes expected");
      }
      hasher.Update(data);
      received += data.size();
      BERTH_RETURN_IF_ERROR(sink(data));
      if (progress) progress(received);
      return Status::Ok();
    };
    auto resp = Send(req, PullScope(repo));
    bool transient;
    if (!resp.ok()) {
      transient = Transient(resp.status());
    } else if (resp->status == 200 || resp->status == 206) {
      break;
    } else if (resp->status == 404) {
      Status st = ErrorFromResponse(*resp, what);
      return Status(Code::kBlobUnknown, what + ": not found in the registry", st.detail());
    } else {
      transient = TransientHttp(resp->status);
      if (!transient) return ErrorFromResponse(*resp, what);
    }
    if (!transient || attempt + 1 >= options_.max_attempts) {
      return resp.ok() ? ErrorFromResponse(*resp, what) : resp.status();
    }
    Backoff(attempt);
  }
  if (desc.size > 0 && received != static_cast<uint64_t>(desc.size)) {
    return Status(Code::kSizeInvalid, what + ": received " + std::to_string(received) +
                                          " bytes, expected " + std::to_string(desc.size));
  }
  oci::Digest got = hasher.Peek();
  if (got != desc.digest) {
    return Status(Code::kDigestInvalid, what + ": content has digest " + got.str());
  }
  return Status::Ok();
}

Result<std::string> RegistryClient::GetBlobBytes(std::string_view repo, const oci::Descriptor& desc,
                                                 uint64_t max_bytes) {
  if (desc.size > 0 && static_cast<uint64_t>(desc.size) > max_bytes) {
    return Status(Code::kTooLarge, "blob " + desc.digest.str() + " is larger than " +
                                       std::to_string(max_bytes) + " bytes");
  }
  std::string out;
  BERTH_RETURN_IF_ERROR(GetBlob(
      repo, desc,
      [&](std::string_view d) -> Status {
        if (out.size() + d.size() > max_bytes) {
          return Status(Code::kTooLarge, "blob " + desc.digest.str() + " is too large");
        }
        out.append(d);
        return Status::Ok();
      },
      nullptr));
  return out;
}

Result<bool> RegistryClient::MountBlob(std::string_view repo, const oci::Digest& digest,
                                       std::string_view from_repo) {
  HttpRequest req;
  req.method = "POST";
  req.url = Url("/v2/" + std::string(repo) + "/blobs/uploads/?mount=" + QueryEscape(digest.str()) +
                "&from=" + QueryEscape(from_repo));
  std::string scope = PushScope(repo) + " " + PullScope(from_repo);
  BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, scope));
  if (resp.status == 201) return true;
  if (resp.status == 202) {
    // The registry opened a normal upload instead; cancel it.
    std::string loc = resp.Header("location");
    if (!loc.empty()) {
      HttpRequest del;
      del.method = "DELETE";
      del.url = Absolute(loc);
      (void)Send(del, PushScope(repo));
    }
    return false;
  }
  return ErrorFromResponse(resp, "mount " + digest.str() + " from " + std::string(from_repo) +
                                     " into " + std::string(repo));
}

Status RegistryClient::UploadBlob(std::string_view repo, const oci::Descriptor& desc,
                                  const LocalBlob& blob, const ProgressFn& progress) {
  fs::path state_file;
  if (!options_.upload_state_dir.empty()) {
    std::string key = host_ + "/" + std::string(repo) + "@" + desc.digest.str();
    state_file = options_.upload_state_dir / (std::string(oci::Digest::Of(key).hex()) + ".json");
  }
  return UploadChunks(repo, desc, blob, progress, state_file);
}

Status RegistryClient::UploadChunks(std::string_view repo, const oci::Descriptor& desc,
                                    const LocalBlob& blob, const ProgressFn& progress,
                                    const fs::path& state_file) {
  const std::string scope = PushScope(repo);
  const std::string what = "upload of " + desc.digest.str() + " to " + host_ + "/" +
                           std::string(repo);
  const uint64_t size = blob.size;
  std::string location;
  uint64_t offset = 0;
  uint64_t chunk = std::max<uint64_t>(options_.chunk_size, 64 * 1024);
  std::error_code ec;

  // Asks the registry where an upload stands; false when the session is gone.
  auto query_status = [&]() -> Result<bool> {
    HttpRequest req;
    req.url = location;
    BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, scope));
    if (resp.status != 204 && resp.status != 200) return false;
    if (std::string loc = resp.Header("location"); !loc.empty()) location = Absolute(loc);
    auto end = ParseRangeEnd(resp.Header("range"));
    offset = end.value_or(0);
    return true;
  };
  auto save = [&]() {
    if (state_file.empty()) return;
    json::object o;
    o["location"] = location;
    o["host"] = host_;
    o["repository"] = std::string(repo);
    o["digest"] = desc.digest.str();
    o["size"] = size;
    o["offset"] = offset;
    SaveState(state_file, o);
  };

  if (!state_file.empty()) {
    if (auto st = LoadState(state_file)) {
      location = st->location;
      auto alive = query_status();
      if (!alive.ok() || !*alive || offset > size) {
        location.clear();
        offset = 0;
        fs::remove(state_file, ec);
      }
    }
  }
  if (location.empty()) {
    HttpRequest req;
    req.method = "POST";
    req.url = Url("/v2/" + std::string(repo) + "/blobs/uploads/");
    BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, scope));
    if (resp.status != 202) return ErrorFromResponse(resp, what);
    std::string loc = resp.Header("location");
    if (loc.empty()) return Status::Internal(what + ": the registry sent no upload Location");
    location = Absolute(loc);
    if (std::string min = resp.Header("oci-chunk-min-length"); !min.empty()) {
      uint64_t m = 0;
      std::from_chars(min.data(), min.data() + min.size(), m);
      chunk = std::max(chunk, m);
    }
    offset = 0;
  }
  auto with_digest = [&](const std::string& loc) {
    return loc + (loc.find('?') == std::string::npos ? "?" : "&") +
           "digest=" + QueryEscape(desc.digest.str());
  };
  auto finish_ok = [&](const HttpResponse& resp) -> Status {
    if (!state_file.empty()) fs::remove(state_file, ec);
    auto got = oci::Digest::Parse(resp.Header("docker-content-digest"));
    if (got.ok() && *got != desc.digest) {
      return Status(Code::kDigestInvalid, what + ": the registry stored digest " + got->str());
    }
    if (progress) progress(size);
    return Status::Ok();
  };

  if (offset == 0 && size <= chunk) {
    // Monolithic: one PUT carrying the whole blob.
    for (int attempt = 0;; ++attempt) {
      FileBody body(blob, 0, size);
      HttpRequest req;
      req.method = "PUT";
      req.url = with_digest(location);
      req.headers.emplace_back("Content-Type", "application/octet-stream");
      req.source = body.source();
      if (progress) req.progress = [&](uint64_t sent, uint64_t) { progress(sent); };
      auto resp = Send(req, scope);
      if (resp.ok() && resp->status == 201) return finish_ok(*resp);
      bool transient = !resp.ok() ? Transient(resp.status()) : TransientHttp(resp->status);
      if (!transient || attempt + 1 >= options_.max_attempts) {
        return resp.ok() ? ErrorFromResponse(*resp, what) : resp.status();
      }
      Backoff(attempt);
      // The session may have died with the connection; start a new one if so.
      auto alive = query_status();
      if (!alive.ok() || !*alive || offset != 0) {
        HttpRequest post;
        post.method = "POST";
        post.url = Url("/v2/" + std::string(repo) + "/blobs/uploads/");
        BERTH_ASSIGN_OR_RETURN(HttpResponse p, SendRetrying(post, scope));
        if (p.status != 202) return ErrorFromResponse(p, what);
        location = Absolute(p.Header("location"));
        offset = 0;
      }
    }
  }

  save();
  int failures = 0;
  while (offset < size) {
    uint64_t n = std::min(chunk, size - offset);
    FileBody body(blob, offset, n);
    HttpRequest req;
    req.method = "PATCH";
    req.url = location;
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    req.headers.emplace_back("Content-Range",
                             std::to_string(offset) + "-" + std::to_string(offset + n - 1));
    req.source = body.source();
    const uint64_t base = offset;
    if (progress) req.progress = [&](uint64_t sent, uint64_t) { progress(base + sent); };
    auto resp = Send(req, scope);
    if (resp.ok() && resp->status == 202) {
      if (std::string loc = resp->Header("location"); !loc.empty()) location = Absolute(loc);
      auto end = ParseRangeEnd(resp->Header("range"));
      offset = end.value_or(offset + n);
      if (offset < base + n && end) {
        // The registry kept less than we sent: continue from where it says.
      }
      failures = 0;
      save();
      if (progress) progress(offset);
      continue;
    }
    bool transient = !resp.ok() ? Transient(resp.status())
                                : TransientHttp(resp->status) || resp->status == 416;
    if (!transient || ++failures >= options_.max_attempts) {
      return resp.ok() ? ErrorFromResponse(*resp, what) : resp.status();
    }
    Backoff(failures);
    // Learn how much the registry kept before retrying.
    auto alive = query_status();
    if (!alive.ok()) return alive.status();
    if (!*alive) return Status(Code::kUploadUnknown, what + ": the registry dropped the upload");
  }
  for (int attempt = 0;; ++attempt) {
    HttpRequest req;
    req.method = "PUT";
    req.url = with_digest(location);
    req.headers.emplace_back("Content-Type", "application/octet-stream");
    auto resp = Send(req, scope);
    if (resp.ok() && resp->status == 201) return finish_ok(*resp);
    bool transient = !resp.ok() ? Transient(resp.status()) : TransientHttp(resp->status);
    if (!transient || attempt + 1 >= options_.max_attempts) {
      if (resp.ok() && !state_file.empty() && resp->status >= 400 && resp->status < 500) {
        fs::remove(state_file, ec);  // the session cannot be completed; start over next time
      }
      return resp.ok() ? ErrorFromResponse(*resp, what) : resp.status();
    }
    Backoff(attempt);
  }
}

Result<std::vector<std::string>> RegistryClient::ListPaged(std::string path, const std::string& key,
                                                           const std::string& scope) {
  std::vector<std::string> out;
  std::string url = Url(path);
  for (int pages = 0; pages < 100000 && !url.empty(); ++pages) {
    HttpRequest req;
    req.url = url;
    BERTH_ASSIGN_OR_RETURN(HttpResponse resp, SendRetrying(req, scope));
    if (resp.status != 200) return ErrorFromResponse(resp, "GET " + url);
    BERTH_ASSIGN_OR_RETURN(json::value v, ParseJson(resp.body, "GET " + url));
    if (v.is_object()) {
      if (const json::array* a = JsonArray(v.as_object(), key)) {
        for (const auto& e : *a) {
          if (e.is_string()) out.emplace_back(e.get_string());
        }
      }
    }
    url.clear();
    // Link: </v2/…?last=x&n=y>; rel="next"
    std::string link = resp.Header("link");
    auto lt = link.find('<');
    auto gt = link.find('>');
    if (lt != std::string::npos && gt != std::string::npos && gt > lt &&
        link.find("rel=\"next\"") != std::string::npos) {
      url = Absolute(link.substr(lt + 1, gt - lt - 1));
    }
  }
  return out;
}

Result<std::vector<std::string>> RegistryClient::ListTags(std::string_view repo) {
  auto tags = ListPaged("/v2/" + std::string(repo) + "/tags/list", "tags", PullScope(repo));
  if (!tags.ok() && (tags.status().Is(Code::kNotFound) || tags.status().Is(Code::kNameUnknown))) {
    return Status(Code::kNameUnknown,
                  "repository " + host_ + "/" + std::string(repo) + " does not exist");
  }
  return tags;
}

Result<std::vector<std::string>> RegistryClient::Catalog() {
  return ListPaged("/v2/_catalog", "repositories", "registry:catalog:*");
}

}  // namespace berth::client
