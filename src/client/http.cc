#include "client/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace berth::client {
namespace {

constexpr size_t kMaxBufferedErrorBody = 1 << 20;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// State of one transfer, reachable from libcurl's C callbacks.
struct Transfer {
  CURL* easy = nullptr;
  const HttpRequest* req = nullptr;
  HttpResponse* resp = nullptr;
  Status sink_status;
  uint64_t sent = 0;
  uint64_t received = 0;
  Status read_status;
  bool body_started = false;

  long StatusCode() const {
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (redirect, 100-continue): keep only the final one's headers.
    t->resp->headers.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  t->resp->headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  t->received += len;
  long code = t->StatusCode();
  if (code >= 200 && code < 300 && t->req->sink) {
    if (!t->body_started) {
      t->body_started = true;
      if (t->req->on_body_start) t->req->on_body_start(static_cast<int>(code));
    }
    Status st = t->req->sink(std::string_view(data, len));
    if (!st.ok()) {
      t->sink_status = std::move(st);
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
  } else if (t->resp->body.size() < kMaxBufferedErrorBody || (code >= 200 && code < 300)) {
    t->resp->body.append(data, len);
  }
  if (t->req->progress) t->req->progress(t->sent, t->received);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const BodySource* src = t->req->source;
  uint64_t left = src->size - t->sent;
  size_t want = static_cast<size_t>(std::min<uint64_t>(left, size * n));
  if (want == 0) return 0;
  auto got = src->read_at(t->sent, buf, want);
  if (!got.ok()) {
    t->read_status = got.status();
    return CURL_READFUNC_ABORT;
  }
  if (*got == 0) {
    t->read_status = Status::IoError("request body ended early");
    return CURL_READFUNC_ABORT;
  }
  t->sent += *got;
  if (t->req->progress) t->req->progress(t->sent, t->received);
  return *got;
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  t->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool IsTlsError(CURLcode c) {
  switch (c) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return true;
    default:
      return false;
  }
}

bool IsConnectError(CURLcode c) {
  return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
         c == CURLE_COULDNT_RESOLVE_PROXY || c == CURLE_OPERATION_TIMEDOUT;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  std::string key = Lower(name);
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return {};
}

std::vector<std::string> HttpResponse::HeaderValues(std::string_view name) const {
  std::string key = Lower(name);
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == key) out.push_back(v);
  }
  return out;
}

struct HttpClient::Impl {
  TransportOptions options;
  CURLSH* share = nullptr;
  std::mutex share_locks[CURL_LOCK_DATA_LAST];
  std::mutex pool_mu;
  std::vector<CURL*> idle;  // guarded by pool_mu

  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Impl*>(user)->share_locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Impl*>(user)->share_locks[data].unlock();
  }

  CURL* Acquire() {
    {
      std::lock_guard lock(pool_mu);
      if (!idle.empty()) {
        CURL* e = idle.back();
        idle.pop_back();
        curl_easy_reset(e);
        return e;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* e) {
    std::lock_guard lock(pool_mu);
    idle.push_back(e);
  }
};

HttpClient::HttpClient(TransportOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->options = std::move(options);
  impl_->share = curl_share_init();
  curl_share_setopt(impl_->share, CURLSHOPT_LOCKFUNC, &Impl::Lock);
  curl_share_setopt(impl_->share, CURLSHOPT_UNLOCKFUNC, &Impl::Unlock);
  curl_share_setopt(impl_->share, CURLSHOPT_USERDATA, impl_.get());
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

HttpClient::~HttpClient() {
  for (CURL* e : impl_->idle) curl_easy_cleanup(e);
  curl_share_cleanup(impl_->share);
}

const TransportOptions& HttpClient::options() const { return impl_->options; }

Result<HttpResponse> HttpClient::Do(const HttpRequest& req) {
  CURL* e = impl_->Acquire();
  if (e == nullptr) return Status::Internal("curl_easy_init failed");
  HttpResponse resp;
  Transfer t;
  t.easy = e;
  t.req = &req;
  t.resp = &resp;
  const TransportOptions& o = impl_->options;

  curl_easy_setopt(e, CURLOPT_SHARE, impl_->share);
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, o.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_seconds);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o.stall_timeout_seconds);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  // Registries redirect blob downloads to storage; never forward credentials there.
  curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  if (o.insecure_skip_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!o.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, o.ca_file.c_str());
  if (o.max_send_bytes_per_second > 0) {
    curl_easy_setopt(e, CURLOPT_MAX_SEND_SPEED_LARGE,
                     static_cast<curl_off_t>(o.max_send_bytes_per_second));
  }
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);

  struct curl_slist* hdrs = nullptr;
  bool has_expect = false;
  bool has_content_type = false;
  for (const auto& [k, v] : req.headers) {
    std::string line = k + ": " + v;
    if (v.empty()) line = k + ";";  // curl's syntax for a header with an empty value
    if (Lower(k) == "expect") has_expect = true;
    if (Lower(k) == "content-type") has_content_type = true;
    hdrs = curl_slist_append(hdrs, line.c_str());
  }
  // curl would label a POSTFIELDS body as a form; send no Content-Type unless asked.
  if (!has_content_type) hdrs = curl_slist_append(hdrs, "Content-Type:");
  // 100-continue costs a round trip per chunk on loopback and buys nothing here.
  if (!has_expect) hdrs = curl_slist_append(hdrs, "Expect:");

  const std::string& m = req.method;
  if (m == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (m != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  if (req.source != nullptr) {
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(e, CURLOPT_READDATA, &t);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.source->size));
    // CURLOPT_UPLOAD implies PUT; keep the method the caller asked for.
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());
  } else if (req.body.has_value()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body->data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());
  } else if (m == "POST" || m == "PUT" || m == "PATCH") {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

  CURLcode rc = curl_easy_perform(e);
  curl_slist_free_all(hdrs);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  char* eff = nullptr;
  curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &eff);
  if (eff != nullptr) resp.effective_url = eff;
  curl_easy_setopt(e, CURLOPT_SHARE, nullptr);
  impl_->Release(e);

  if (!t.sink_status.ok()) return t.sink_status;
  if (!t.read_status.ok()) return t.read_status;
  if (rc != CURLE_OK) {
    std::string detail = IsTlsError(rc) ? "tls" : IsConnectError(rc) ? "connect" : "transfer";
    return Status(Code::kUnavailable, m + " " + req.url + ": " + curl_easy_strerror(rc), detail);
  }
  resp.status = static_cast<int>(code);
  return resp;
}

Result<std::string> Base64Decode(std::string_view in) {
  // Tools write docker's "auth" field in every variant: line-wrapped, unpadded,
  // URL-safe. Normalize to the standard alphabet, then decode strictly.
  std::string s;
  s.reserve(in.size());
  for (char c : in) {
    if (c == '\n' || c == '\r' || c == ' ') continue;
    s.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  auto out = berth::Base64Decode(s);
  if (!out) return Status::InvalidArgument("invalid base64");
  return std::move(*out);
}

}  // namespace berth::client
