#include "storage/blob/s3/s3_protocol.h"

#include "base/percent.h"

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <cmath>

#include "auth/sigv4.h"

namespace berth::storage::s3 {
namespace {

constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z'); }

// S3's bucket naming rules: what a DNS label (virtual host) can carry.
bool IsStrictBucketName(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  if (!IsLowerAlnum(b.front()) || !IsLowerAlnum(b.back())) return false;
  for (size_t i = 0; i < b.size(); ++i) {
    char c = b[i];
    if (!IsLowerAlnum(c) && c != '-' && c != '.') return false;
    if (c == '.' && i + 1 < b.size() && (b[i + 1] == '.' || b[i + 1] == '-')) return false;
    if (c == '-' && i + 1 < b.size() && b[i + 1] == '.') return false;
  }
  return true;
}

// radosgw accepts more (rgw_relaxed_s3_bucket_names); in a path anything that needs
// no escaping will do.
bool IsRelaxedBucketName(std::string_view b) {
  if (b.empty() || b.size() > 255) return false;
  return std::all_of(b.begin(), b.end(), [](char c) {
    return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_';
  });
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

Status Malformed(std::string_view what, std::string_view detail) {
  return Status::Corruption("malformed " + std::string(what) +
                            " from the object store: " + std::string(detail));
}

std::string StripPrefix(std::string key, std::string_view prefix) {
  if (!prefix.empty() && key.compare(0, prefix.size(), prefix) == 0) key.erase(0, prefix.size());
  return key;
}

// ---- XML reader ----

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A recursive-descent reader for the subset of XML 1.0 that S3 speaks: elements,
// attributes (skipped), text with the five named entities and character references,
// CDATA, comments, processing instructions and a DOCTYPE without an internal subset.
class XmlReader final {
 public:
  explicit XmlReader(std::string_view doc) : s_(doc) {}

  Result<xml::Element> Document() {
    BERTH_RETURN_IF_ERROR(SkipMisc());
    if (pos_ >= s_.size() || s_[pos_] != '<') return Error("expected the root element");
    xml::Element root;
    BERTH_RETURN_IF_ERROR(ElementAt(root, 0));
    BERTH_RETURN_IF_ERROR(SkipMisc());
    if (pos_ != s_.size()) return Error("content after the root element");
    return root;
  }

 private:
  static constexpr int kMaxDepth = 64;

  Status Error(std::string_view what) const {
    return Status::Corruption("malformed XML at byte " + std::to_string(pos_) + ": " +
                              std::string(what));
  }

  bool StartsWith(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }

  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }

  Status SkipPast(std::string_view terminator, std::string_view what) {
    size_t end = s_.find(terminator, pos_);
    if (end == std::string_view::npos) return Error("unterminated " + std::string(what));
    pos_ = end + terminator.size();
    return Status::Ok();
  }

  // Whitespace, comments, processing instructions and DOCTYPE around the root.
  Status SkipMisc() {
    for (;;) {
      SkipSpace();
      if (StartsWith("<?")) {
        BERTH_RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (StartsWith("<!--")) {
        BERTH_RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (StartsWith("<!")) {
        BERTH_RETURN_IF_ERROR(SkipPast(">", "declaration"));
      } else {
        return Status::Ok();
      }
    }
  }

  static bool IsNameChar(char c) {
    return !(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/' || c == '>' || c == '=' ||
             c == '<' || c == '"' || c == '\'');
  }

  std::string_view Name() {
    size_t start = pos_;
    while (pos_ < s_.size() && IsNameChar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  Status Text(std::string_view raw, std::string& out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 12) return Error("unterminated entity");
      std::string_view ent = raw.substr(i + 1, semi - i - 1);
      if (ent == "amp") {
        out += '&';
      } else if (ent == "lt") {
        out += '<';
      } else if (ent == "gt") {
        out += '>';
      } else if (ent == "quot") {
        out += '"';
      } else if (ent == "apos") {
        out += '\'';
      } else if (ent.size() > 1 && ent[0] == '#') {
        uint32_t cp = 0;
        const bool hex = ent[1] == 'x' || ent[1] == 'X';
        std::string_view digits = ent.substr(hex ? 2 : 1);
        auto [end, ec] =
            std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
        if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
            cp > 0x10FFFF) {
          return Error("bad character reference &" + std::string(ent) + ";");
        }
        AppendUtf8(out, cp);
      } else {
        return Error("unknown entity &" + std::string(ent.substr(0, 12)) + ";");
      }
      i = semi;
    }
    return Status::Ok();
  }

  // At '<' of a start tag.
  Status ElementAt(xml::Element& e, int depth) {
    if (depth > kMaxDepth) return Error("elements nested too deep");
    ++pos_;
    std::string_view qname = Name();
    if (qname.empty()) return Error("expected an element name");
    size_t colon = qname.rfind(':');
    e.name = std::string(colon == std::string_view::npos ? qname : qname.substr(colon + 1));
    // Attributes.
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size()) return Error("unterminated start tag <" + std::string(qname) + ">");
      if (StartsWith("/>")) {
        pos_ += 2;
        return Status::Ok();
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      if (Name().empty()) return Error("expected an attribute name");
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '=') return Error("expected '=' after an attribute");
      ++pos_;
      SkipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
        return Error("expected a quoted attribute value");
      }
      char quote = s_[pos_++];
      size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return Error("unterminated attribute value");
      pos_ = end + 1;
    }
    // Content.
    for (;;) {
      if (pos_ >= s_.size()) return Error("element <" + std::string(qname) + "> is not closed");
      if (StartsWith("</")) {
        pos_ += 2;
        std::string_view closing = Name();
        if (closing != qname) {
          return Error("<" + std::string(qname) + "> closed by </" + std::string(closing) + ">");
        }
        SkipSpace();
        if (pos_ >= s_.size() || s_[pos_] != '>') return Error("expected '>' in an end tag");
        ++pos_;
        return Status::Ok();
      }
      if (StartsWith("<!--")) {
        BERTH_RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (StartsWith("<![CDATA[")) {
        pos_ += 9;
        size_t end = s_.find("]]>", pos_);
        if (end == std::string_view::npos) return Error("unterminated CDATA section");
        e.text.append(s_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (StartsWith("<?")) {
        BERTH_RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (s_[pos_] == '<') {
        e.children.emplace_back();
        BERTH_RETURN_IF_ERROR(ElementAt(e.children.back(), depth + 1));
      } else {
        size_t end = s_.find('<', pos_);
        if (end == std::string_view::npos) end = s_.size();
        BERTH_RETURN_IF_ERROR(Text(s_.substr(pos_, end - pos_), e.text));
        pos_ = end;
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<xml::Element> ParseRoot(std::string_view body, std::string_view root,
                               std::string_view what) {
  auto doc = xml::Parse(body);
  if (!doc.ok()) return Malformed(what, doc.status().message());
  if (doc->name != root) {
    return Malformed(what,
                     "root element <" + doc->name + ">, expected <" + std::string(root) + ">");
  }
  return doc;
}

std::string_view Trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ---- Errors ----

std::string Describe(const S3Error& e) {
  std::string out;
  if (!e.code.empty()) {
    out = e.code;
    if (!e.message.empty()) out += ": " + e.message;
    out += " (HTTP " + std::to_string(e.http_status);
  } else {
    out = "HTTP " + std::to_string(e.http_status) + " (no error document";
  }
  if (!e.request_id.empty()) out += ", request id " + e.request_id;
  out += ")";
  return out;
}

std::string What(const OpContext& ctx) {
  std::string out(ctx.op);
  if (!ctx.key.empty()) out += " " + std::string(ctx.key);
  return out;
}

std::string Attempts(int attempts) {
  return attempts > 1 ? ", after " + std::to_string(attempts) + " attempts" : "";
}

bool OneOf(std::string_view code, std::initializer_list<std::string_view> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

}  // namespace

// ---- Addressing ----

Result<S3Endpoint> ResolveEndpoint(const S3Config& config) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("object store endpoint '" + config.endpoint + "' " +
                                   std::string(why) +
                                   ": expected http://HOST:PORT or https://HOST[:PORT]");
  };
  auto parsed = boost::urls::parse_absolute_uri(config.endpoint);
  if (!parsed) return bad("is not a URL");
  const auto& u = *parsed;
  S3Endpoint ep;
  const std::string scheme = Lower(u.scheme());
  if (scheme == "https") {
    ep.tls = true;
  } else if (scheme != "http") {
    return bad("has scheme '" + scheme + "'");
  }
  if (u.has_userinfo()) return bad("carries user info; credentials come from the AWS chain");
  if (u.has_query() || u.has_fragment()) return bad("has a query or fragment");
  if (!u.encoded_path().empty() && u.encoded_path() != "/") return bad("has a path");
  std::string host = Lower(u.host_address());
  if (host.empty()) return bad("has no host");
  if (host.find('%') != std::string::npos) return bad("has an escaped host name");
  const bool ipv6 = u.host_type() == boost::urls::host_type::ipv6;
  const bool ip = ipv6 || u.host_type() == boost::urls::host_type::ipv4;
  const std::string default_port = ep.tls ? "443" : "80";
  ep.port = u.has_port() && !u.port().empty() ? std::string(u.port()) : default_port;
  uint16_t port_number = 0;
  if (!ParseNumber(ep.port, port_number) || port_number == 0) return bad("has a bad port");

  if (config.bucket.empty()) return Status::InvalidArgument("object store bucket name is empty");
  if (config.path_style ? !IsRelaxedBucketName(config.bucket)
                        : !IsStrictBucketName(config.bucket)) {
    return Status::InvalidArgument(
        "object store bucket name '" + config.bucket + "' is not valid" +
        (config.path_style ? ": use letters, digits, '.', '-' and '_'"
                           : " for virtual-host addressing: 3 to 63 lower-case letters, digits, "
                             "'.' and '-', starting and ending with a letter or digit"));
  }
  if (!config.path_style && ip) {
    return Status::InvalidArgument("object store endpoint '" + config.endpoint +
                                   "' is an IP address, which cannot carry the bucket as a host "
                                   "name: use path-style addressing");
  }

  std::string authority_host = ipv6 ? "[" + host + "]" : host;
  ep.connect_host = config.path_style ? host : config.bucket + "." + host;
  ep.host_header = config.path_style ? authority_host : config.bucket + "." + authority_host;
  if (ep.port != default_port) ep.host_header += ":" + ep.port;
  ep.url_base = (ep.tls ? "https://" : "http://") + ep.host_header;
  ep.path_prefix = config.path_style ? "/" + config.bucket : "";
  ep.display = config.endpoint;
  while (!ep.display.empty() && ep.display.back() == '/') ep.display.pop_back();
  ep.bucket = config.bucket;
  return ep;
}

std::string RequestPath(const S3Endpoint& endpoint, std::string_view key) {
  if (key.empty()) return endpoint.path_prefix.empty() ? "/" : endpoint.path_prefix;
  return endpoint.path_prefix + "/" + auth::UriEncode(key, /*keep_slash=*/true);
}

std::string EncodeQuery(const QueryParams& query) {
  std::string out;
  for (const auto& [name, value] : query) {
    if (!out.empty()) out += '&';
    out += auth::UriEncode(name, false);
    if (!value.empty()) {
      out += '=';
      out += auth::UriEncode(value, false);
    }
  }
  return out;
}

Result<SignedRequest> SignS3Request(const S3Endpoint& endpoint, const S3Credentials& credentials,
                                    std::string_view region, std::string_view method,
                                    std::string_view key, const QueryParams& query, Headers headers,
                                    std::string_view payload_sha256, int64_t now_seconds) {
  SignedRequest out;
  const std::string path = RequestPath(endpoint, key);
  const std::string raw_query = EncodeQuery(query);
  out.target = raw_query.empty() ? path : path + "?" + raw_query;

  out.headers.reserve(headers.size() + 5);
  out.headers.emplace_back("Host", endpoint.host_header);
  for (auto& h : headers) out.headers.push_back(std::move(h));
  out.headers.emplace_back("x-amz-content-sha256", std::string(payload_sha256));
  if (!credentials.session_token.empty()) {
    out.headers.emplace_back("x-amz-security-token", credentials.session_token);
  }

  auth::SigningRequest sr;
  sr.method = method;
  sr.path = path;
  sr.query = raw_query;
  for (const auto& [name, value] : out.headers) sr.headers.emplace_back(name, value);
  sr.payload_sha256 = payload_sha256;
  sr.access_key_id = credentials.access_key_id;
  sr.secret_access_key = credentials.secret_access_key;
  sr.region = region;
  sr.service = "s3";
  sr.time_seconds = now_seconds;
  sr.uri_mode = auth::UriMode::kS3;
  BERTH_ASSIGN_OR_RETURN(auth::SigningResult signed_req, auth::SignRequest(sr));
  out.headers.emplace_back("X-Amz-Date", std::move(signed_req.amz_date));
  out.headers.emplace_back("Authorization", std::move(signed_req.authorization));
  return out;
}

Result<std::string> PresignS3Url(const S3Endpoint& endpoint, const S3Credentials& credentials,
                                 std::string_view region, std::string_view method,
                                 std::string_view key, int64_t expires_seconds,
                                 int64_t now_seconds) {
  const std::string path = RequestPath(endpoint, key);
  auth::PresigningRequest p;
  p.method = method;
  p.path = path;
  p.headers = {{"host", endpoint.host_header}};
  p.access_key_id = credentials.access_key_id;
  p.secret_access_key = credentials.secret_access_key;
  p.session_token = credentials.session_token;
  p.region = region;
  p.service = "s3";
  p.time_seconds = now_seconds;
  p.expires_seconds = expires_seconds;
  p.uri_mode = auth::UriMode::kS3;
  BERTH_ASSIGN_OR_RETURN(auth::PresigningResult presigned, auth::Presign(p));
  return endpoint.url_base + path + "?" + presigned.query;
}

Result<std::optional<std::string>> RangeHeader(const ByteRange& range) {
  if (!range.length.has_value()) {
    if (range.offset == 0) return std::optional<std::string>();
    return std::optional<std::string>("bytes=" + std::to_string(range.offset) + "-");
  }
  if (*range.length == 0) {
    return Status::InvalidArgument("a byte range of length 0 cannot be requested from S3");
  }
  if (*range.length - 1 > UINT64_MAX - range.offset) {
    return Status::InvalidArgument("byte range overflows");
  }
  return std::optional<std::string>("bytes=" + std::to_string(range.offset) + "-" +
                                    std::to_string(range.offset + *range.length - 1));
}

// ---- XML ----

namespace xml {

const Element* Element::Child(std::string_view child_name) const {
  for (const Element& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string_view Element::ChildText(std::string_view child_name) const {
  const Element* c = Child(child_name);
  return c == nullptr ? std::string_view() : std::string_view(c->text);
}

Result<Element> Parse(std::string_view document) { return XmlReader(document).Document(); }

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace xml

// ---- Responses ----

std::optional<S3Error> ParseErrorBody(int http_status, std::string_view body) {
  if (Trimmed(body).empty()) return std::nullopt;
  auto doc = xml::Parse(body);
  if (!doc.ok() || doc->name != "Error") return std::nullopt;
  S3Error e;
  e.http_status = http_status;
  e.code = std::string(Trimmed(doc->ChildText("Code")));
  e.message = std::string(Trimmed(doc->ChildText("Message")));
  e.request_id = std::string(Trimmed(doc->ChildText("RequestId")));
  return e;
}

Result<ListObjectsPage> ParseListObjectsV2(std::string_view body, std::string_view strip_prefix) {
  constexpr std::string_view kWhat = "ListObjectsV2 response";
  BERTH_ASSIGN_OR_RETURN(xml::Element doc, ParseRoot(body, "ListBucketResult", kWhat));
  const bool url_encoded = Trimmed(doc.ChildText("EncodingType")) == "url";
  auto key_text = [url_encoded](std::string_view raw) {
    return url_encoded ? PercentDecodeLenient(raw, /*plus_is_space=*/true) : std::string(raw);
  };
  ListObjectsPage page;
  page.truncated = Trimmed(doc.ChildText("IsTruncated")) == "true";
  page.next_continuation_token = std::string(doc.ChildText("NextContinuationToken"));
  for (const xml::Element& c : doc.children) {
    if (c.name == "Contents") {
      ListedObject o;
      o.key = StripPrefix(key_text(c.ChildText("Key")), strip_prefix);
      if (!ParseNumber(Trimmed(c.ChildText("Size")), o.size)) {
        return Malformed(kWhat, "bad <Size> for key '" + o.key + "'");
      }
      o.etag = std::string(c.ChildText("ETag"));
      page.objects.push_back(std::move(o));
    } else if (c.name == "CommonPrefixes") {
      page.common_prefixes.push_back(StripPrefix(key_text(c.ChildText("Prefix")), strip_prefix));
    }
  }
  if (page.truncated && page.next_continuation_token.empty()) {
    return Malformed(kWhat, "truncated without a NextContinuationToken");
  }
  return page;
}

Result<ListPartsPage> ParseListParts(std::string_view body) {
  constexpr std::string_view kWhat = "ListParts response";
  BERTH_ASSIGN_OR_RETURN(xml::Element doc, ParseRoot(body, "ListPartsResult", kWhat));
  ListPartsPage page;
  page.truncated = Trimmed(doc.ChildText("IsTruncated")) == "true";
  if (page.truncated &&
      !ParseNumber(Trimmed(doc.ChildText("NextPartNumberMarker")), page.next_part_number_marker)) {
    return Malformed(kWhat, "truncated without a NextPartNumberMarker");
  }
  for (const xml::Element& c : doc.children) {
    if (c.name != "Part") continue;
    PartInfo p;
    if (!ParseNumber(Trimmed(c.ChildText("PartNumber")), p.part_number) ||
        !ParseNumber(Trimmed(c.ChildText("Size")), p.size)) {
      return Malformed(kWhat, "a <Part> without a valid PartNumber and Size");
    }
    p.etag = std::string(c.ChildText("ETag"));
    page.parts.push_back(std::move(p));
  }
  return page;
}

Result<ListMultipartUploadsPage> ParseListMultipartUploads(std::string_view body,
                                                           std::string_view strip_prefix) {
  constexpr std::string_view kWhat = "ListMultipartUploads response";
  BERTH_ASSIGN_OR_RETURN(xml::Element doc, ParseRoot(body, "ListMultipartUploadsResult", kWhat));
  const bool url_encoded = Trimmed(doc.ChildText("EncodingType")) == "url";
  auto key_text = [url_encoded](std::string_view raw) {
    return url_encoded ? PercentDecodeLenient(raw, /*plus_is_space=*/true) : std::string(raw);
  };
  ListMultipartUploadsPage page;
  page.truncated = Trimmed(doc.ChildText("IsTruncated")) == "true";
  // Markers go back to the store as sent (full keys): only listed keys are relative.
  page.next_key_marker = key_text(doc.ChildText("NextKeyMarker"));
  page.next_upload_id_marker = std::string(Trimmed(doc.ChildText("NextUploadIdMarker")));
  for (const xml::Element& c : doc.children) {
    if (c.name != "Upload") continue;
    MultipartUploadListing u;
    u.key = StripPrefix(key_text(c.ChildText("Key")), strip_prefix);
    u.upload_id = std::string(Trimmed(c.ChildText("UploadId")));
    if (u.upload_id.empty()) return Malformed(kWhat, "an <Upload> without an <UploadId>");
    page.uploads.push_back(std::move(u));
  }
  if (page.truncated && page.next_key_marker.empty()) {
    return Malformed(kWhat, "truncated without a NextKeyMarker");
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  constexpr std::string_view kWhat = "CreateMultipartUpload response";
  BERTH_ASSIGN_OR_RETURN(xml::Element doc, ParseRoot(body, "InitiateMultipartUploadResult", kWhat));
  std::string id(Trimmed(doc.ChildText("UploadId")));
  if (id.empty()) return Malformed(kWhat, "no <UploadId>");
  return id;
}

Result<std::string> ParseResultETag(std::string_view body, std::string_view root) {
  const std::string what = std::string(root) + " response";
  BERTH_ASSIGN_OR_RETURN(xml::Element doc, ParseRoot(body, root, what));
  std::string etag(Trimmed(doc.ChildText("ETag")));
  if (etag.empty()) return Malformed(what, "no <ETag>");
  return etag;
}

Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view body,
                                                     std::string_view strip_prefix) {
  BERTH_ASSIGN_OR_RETURN(xml::Element doc,
                         ParseRoot(body, "DeleteResult", "DeleteObjects response"));
  std::vector<DeleteFailure> out;
  for (const xml::Element& c : doc.children) {
    if (c.name != "Error") continue;
    out.push_back(DeleteFailure{StripPrefix(std::string(c.ChildText("Key")), strip_prefix),
                                std::string(Trimmed(c.ChildText("Code"))),
                                std::string(Trimmed(c.ChildText("Message")))});
  }
  return out;
}

std::string CompleteMultipartUploadBody(std::span<const CompletedPart> parts) {
  std::string out = "<CompleteMultipartUpload xmlns=\"" + std::string(kS3Namespace) + "\">";
  for (const CompletedPart& p : parts) {
    out += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>" +
           xml::Escape(p.etag) + "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

std::string DeleteObjectsBody(std::span<const std::string> full_keys) {
  std::string out = "<Delete xmlns=\"" + std::string(kS3Namespace) + "\"><Quiet>true</Quiet>";
  for (const std::string& k : full_keys)
    out += "<Object><Key>" + xml::Escape(k) + "</Key></Object>";
  out += "</Delete>";
  return out;
}

// ---- Errors and retries ----

bool IsRetryable(const S3Error& e) {
  if (e.http_status == 501) return false;
  if (e.http_status >= 500 || e.http_status == 429) return true;
  return OneOf(e.code,
               {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
                "ThrottlingException", "RequestThrottled", "TooManyRequests", "OperationAborted"});
}

Status ErrorStatus(const S3Error& e, const OpContext& ctx, int attempts) {
  const std::string ep(ctx.endpoint);
  const std::string bucket(ctx.bucket);
  const std::string detail = Describe(e);
  const std::string& code = e.code;
  if (e.http_status == 401 || e.http_status == 403 ||
      OneOf(code, {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken",
                   "InvalidToken", "TokenRefreshRequired", "RequestTimeTooSkewed",
                   "AuthorizationHeaderMalformed", "InvalidSecurity"})) {
    return Status(Code::kUnauthorized,
                  "credentials refused by " + ep + ": " + detail + " (" + What(ctx) +
                      " in bucket " + bucket + " with access key " +
                      std::string(ctx.access_key_id) + ")",
                  code);
  }
  if (code == "NoSuchBucket" || (code.empty() && e.http_status == 404 && ctx.key.empty())) {
    return Status(Code::kFailedPrecondition, "bucket " + bucket + " does not exist at " + ep,
                  "NoSuchBucket");
  }
  if (code == "NoSuchUpload") {
    return Status(Code::kUploadUnknown,
                  "multipart upload " + std::string(ctx.upload_id) + " of " + std::string(ctx.key) +
                      " does not exist in bucket " + bucket + " (completed or aborted)",
                  code);
  }
  if (code == "NoSuchKey" || e.http_status == 404) {
    return Status(Code::kNotFound,
                  "object " + std::string(ctx.key) + " does not exist in bucket " + bucket, code);
  }
  if (code == "InvalidRange" || e.http_status == 416) {
    return Status(Code::kRangeInvalid, What(ctx) + ": range not satisfiable: " + detail, code);
  }
  if (code == "PreconditionFailed" || e.http_status == 412) {
    return Status(Code::kAborted,
                  "object " + std::string(ctx.key) + " changed while it was being read", code);
  }
  if (code == "BucketAlreadyExists") {
    return Status(Code::kAlreadyExists,
                  "bucket " + bucket + " already exists at " + ep + " and belongs to someone else",
                  code);
  }
  if (code == "BucketNotEmpty") {
    return Status(Code::kFailedPrecondition, "bucket " + bucket + " at " + ep + " is not empty",
                  code);
  }
  if (code == "NotImplemented" || e.http_status == 501) {
    return Status(
        Code::kUnimplemented,
        "object store " + ep + " does not implement " + std::string(ctx.op) + ": " + detail, code);
  }
  if (IsRetryable(e)) {
    return Status(
        Code::kUnavailable,
        "object store " + ep + " failed " + What(ctx) + ": " + detail + Attempts(attempts), code);
  }
  if (e.http_status == 400 || e.http_status == 409 || e.http_status == 411 ||
      e.http_status == 413) {
    return Status(Code::kInvalidArgument, What(ctx) + " refused by " + ep + ": " + detail, code);
  }
  return Status(Code::kInternal, What(ctx) + ": unexpected answer from " + ep + ": " + detail,
                code);
}

Status UnreachableStatus(std::string_view what, const OpContext& ctx, int attempts) {
  return Status::Unavailable("object store " + std::string(ctx.endpoint) + " unreachable: " +
                             std::string(what) + " (" + What(ctx) + Attempts(attempts) + ")");
}

std::chrono::milliseconds RetryDelay(int retry, std::chrono::milliseconds base,
                                     std::chrono::milliseconds cap, double unit_random) {
  if (retry < 1 || base.count() <= 0 || cap.count() <= 0) return std::chrono::milliseconds(0);
  // base * 2^(retry-1), saturating at cap (2^62 ms would overflow long before).
  int64_t ceiling = base.count();
  for (int i = 1; i < retry && ceiling < cap.count(); ++i) ceiling *= 2;
  ceiling = std::min<int64_t>(ceiling, cap.count());
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::floor(unit_random * ceiling)));
}

}  // namespace berth::storage::s3
