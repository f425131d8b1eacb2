#include "auth/sigv4.h"

#include "base/percent.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "auth/crypto.h"

namespace berth::auth {
namespace {

// Headers botocore never signs (botocore/auth.py SIGNED_HEADERS_BLACKLIST): proxies
// and hop-by-hop handling may change them in flight.
constexpr std::array<std::string_view, 11> kNeverSigned = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
};

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, UTC).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Parses exactly `n` decimal digits.
bool Digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

Result<int64_t> ToEpoch(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s) {
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
      d > DaysInMonth(y, static_cast<unsigned>(mo)) || h > 23 || mi > 59 || s > 59) {
    return Status(Code::kUnauthorized, "date out of range");
  }
  return DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + s;
}

Status Unauthorized(std::string msg) { return Status(Code::kUnauthorized, std::move(msg)); }

template <typename T>
AuthResult<T, SigV4Error> Fail(SigV4Error kind, std::string msg) {
  return AuthResult<T, SigV4Error>(kind, Unauthorized(std::move(msg)));
}

// All values of header `lname` (lower-case), in order.
std::vector<std::string_view> HeaderValues(const HeaderList& headers, std::string_view lname) {
  std::vector<std::string_view> out;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, lname)) out.push_back(value);
  }
  return out;
}

// "name:v1,v2\n" for each name in `names`, in that order. False if a name has no value.
bool BuildCanonicalHeaders(const HeaderList& headers, const std::vector<std::string>& names,
                           std::string& out, std::string& missing) {
  for (const auto& name : names) {
    auto values = HeaderValues(headers, name);
    if (values.empty()) {
      missing = name;
      return false;
    }
    out += name;
    out += ':';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += CanonicalHeaderValue(values[i]);
    }
    out += '\n';
  }
  return true;
}

std::string BuildCanonicalRequest(std::string_view method, std::string_view path,
                                  std::string_view query, std::string_view canonical_headers,
                                  std::string_view signed_headers, std::string_view payload,
                                  UriMode uri_mode = UriMode::kNormalized) {
  std::string cr;
  cr.reserve(256 + canonical_headers.size());
  cr += method;
  cr += '\n';
  cr += CanonicalUri(path, uri_mode);
  cr += '\n';
  cr += CanonicalQueryString(query);
  cr += '\n';
  cr += canonical_headers;
  cr += '\n';
  cr += signed_headers;
  cr += '\n';
  cr += payload;
  return cr;
}

std::string BuildStringToSign(std::string_view amz_date, std::string_view scope,
                              std::string_view canonical_request) {
  std::string sts(kSigV4Algorithm);
  sts += '\n';
  sts += amz_date;
  sts += '\n';
  sts += scope;
  sts += '\n';
  sts += Sha256Hex(canonical_request);
  return sts;
}

std::string SkewText(int64_t seconds) {
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + " min.";
  return std::to_string(seconds) + " sec.";
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsHeaderNameToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  // RFC 3986 §5.2.4 dot-segment removal, also dropping empty segments, as botocore's
  // remove_dot_segments does.
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= raw_path.size()) {
    size_t slash = raw_path.find('/', start);
    if (slash == std::string_view::npos) slash = raw_path.size();
    std::string_view seg = raw_path.substr(start, slash - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = slash + 1;
  }
  std::string path;
  if (raw_path.front() == '/') path += '/';
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) path += '/';
    path += segments[i];
  }
  if (raw_path.back() == '/' && !segments.empty()) path += '/';
  return UriEncode(path, /*keep_slash=*/true);
}

std::string CanonicalUri(std::string_view raw_path, UriMode mode) {
  if (mode == UriMode::kNormalized) return CanonicalUri(raw_path);
  if (raw_path.empty()) return "/";
  return UriEncode(PercentDecodeLenient(raw_path), /*keep_slash=*/true);
}

std::string CanonicalQueryString(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= raw_query.size()) {
    size_t amp = raw_query.find('&', start);
    if (amp == std::string_view::npos) amp = raw_query.size();
    std::string_view piece = raw_query.substr(start, amp - start);
    if (!piece.empty()) {
      size_t eq = piece.find('=');
      std::string_view name = piece.substr(0, eq);
      std::string_view value = eq == std::string_view::npos ? "" : piece.substr(eq + 1);
      pairs.emplace_back(UriEncode(PercentDecodeLenient(name), false),
                         UriEncode(PercentDecodeLenient(value), false));
    }
    start = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i > 0) out += '&';
    out += pairs[i].first;
    out += '=';
    out += pairs[i].second;
  }
  return out;
}

std::string CanonicalHeaderValue(std::string_view value) {
  value = Trim(value);
  std::string out;
  out.reserve(value.size());
  bool in_space = false;
  for (char c : value) {
    if (IsSpace(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

std::string FormatAmzDate(int64_t epoch_seconds) {
  int64_t days = epoch_seconds >= 0 ? epoch_seconds / 86400 : (epoch_seconds - 86399) / 86400;
  int64_t rem = epoch_seconds - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04lld%02u%02uT%02d%02d%02dZ", static_cast<long long>(y), m, d,
                static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  return buf;
}

Result<int64_t> ParseAmzDate(std::string_view s) {
  int64_t y, mo, d, h, mi, sec;
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z' || !Digits(s, 0, 4, y) ||
      !Digits(s, 4, 2, mo) || !Digits(s, 6, 2, d) || !Digits(s, 9, 2, h) || !Digits(s, 11, 2, mi) ||
      !Digits(s, 13, 2, sec)) {
    return Unauthorized("invalid X-Amz-Date '" + std::string(s.substr(0, 64)) +
                        "': expected the form YYYYMMDD'T'HHMMSS'Z'");
  }
  auto t = ToEpoch(y, mo, d, h, mi, sec);
  if (!t.ok()) {
    return Unauthorized("invalid X-Amz-Date '" + std::string(s) + "': date out of range");
  }
  return t;
}

Result<int64_t> ParseHttpDate(std::string_view s) {
  // "Sun, 30 Aug 2015 12:36:00 GMT" (also "+0000"/"-0000"/"UTC", one-digit day).
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto bad = [&] {
    return Unauthorized("invalid Date header '" + std::string(s.substr(0, 64)) +
                        "': expected the form 'Sun, 30 Aug 2015 12:36:00 GMT'");
  };
  std::string_view rest = Trim(s);
  size_t comma = rest.find(", ");
  if (comma != 3) return bad();
  rest.remove_prefix(5);
  int64_t d, y, h, mi, sec;
  size_t day_len = rest.size() > 1 && rest[1] == ' ' ? 1 : 2;
  if (!Digits(rest, 0, day_len, d) || rest.size() < day_len + 1 || rest[day_len] != ' ') {
    return bad();
  }
  rest.remove_prefix(day_len + 1);
  if (rest.size() < 4 || rest[3] != ' ') return bad();
  auto month_it = std::find(std::begin(kMonths), std::end(kMonths), rest.substr(0, 3));
  if (month_it == std::end(kMonths)) return bad();
  int64_t mo = month_it - std::begin(kMonths) + 1;
  rest.remove_prefix(4);
  if (!Digits(rest, 0, 4, y) || rest.size() < 14 || rest[4] != ' ' || !Digits(rest, 5, 2, h) ||
      rest[7] != ':' || !Digits(rest, 8, 2, mi) || rest[10] != ':' || !Digits(rest, 11, 2, sec) ||
      rest[13] != ' ') {
    return bad();
  }
  std::string_view zone = rest.substr(14);
  if (zone != "GMT" && zone != "UTC" && zone != "+0000" && zone != "-0000") return bad();
  auto t = ToEpoch(y, mo, d, h, mi, sec);
  if (!t.ok()) return bad();
  return t;
}

std::string DeriveSigningKey(std::string_view secret_access_key, std::string_view date,
                             std::string_view region, std::string_view service) {
  std::string k = "AWS4";
  k += secret_access_key;
  std::string k_date = HmacSha256(k, date);
  std::string k_region = HmacSha256(k_date, region);
  std::string k_service = HmacSha256(k_region, service);
  return HmacSha256(k_service, "aws4_request");
}

Result<SigningResult> SignRequest(const SigningRequest& req) {
  if (req.method.empty() || req.access_key_id.empty() || req.secret_access_key.empty() ||
      req.region.empty() || req.service.empty() || req.payload_sha256.empty()) {
    return Status::InvalidArgument(
        "sigv4: method, access key, secret, region, service and payload hash are required");
  }
  SigningResult out;
  out.amz_date = FormatAmzDate(req.time_seconds);

  HeaderList headers;
  std::vector<std::string> names;
  for (const auto& [name, value] : req.headers) {
    std::string lname = Lower(Trim(name));
    if (lname == "authorization" || lname == "x-amz-date" ||
        std::find(kNeverSigned.begin(), kNeverSigned.end(), lname) != kNeverSigned.end()) {
      continue;
    }
    headers.emplace_back(name, value);
    names.push_back(std::move(lname));
  }
  headers.emplace_back("x-amz-date", out.amz_date);
  names.emplace_back("x-amz-date");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!std::binary_search(names.begin(), names.end(), "host")) {
    return Status::InvalidArgument("sigv4: a host header is required to sign a request");
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.signed_headers += ';';
    out.signed_headers += names[i];
  }
  std::string canonical_headers;
  std::string missing;
  BuildCanonicalHeaders(headers, names, canonical_headers, missing);

  std::string date = out.amz_date.substr(0, 8);
  std::string scope =
      date + "/" + std::string(req.region) + "/" + std::string(req.service) + "/aws4_request";
  out.canonical_request = BuildCanonicalRequest(req.method, req.path, req.query, canonical_headers,
                                                out.signed_headers, req.payload_sha256,
                                                req.uri_mode);
  out.string_to_sign = BuildStringToSign(out.amz_date, scope, out.canonical_request);
  out.signature = HexEncode(HmacSha256(
      DeriveSigningKey(req.secret_access_key, date, req.region, req.service), out.string_to_sign));
  out.authorization = std::string(kSigV4Algorithm) +
                      " Credential=" + std::string(req.access_key_id) + "/" + scope +
                      ", SignedHeaders=" + out.signed_headers + ", Signature=" + out.signature;
  return out;
}

Result<PresigningResult> Presign(const PresigningRequest& req) {
  if (req.method.empty() || req.access_key_id.empty() || req.secret_access_key.empty() ||
      req.region.empty() || req.service.empty() || req.payload_sha256.empty()) {
    return Status::InvalidArgument(
        "sigv4: method, access key, secret, region, service and payload hash are required");
  }
  // SigV4 credentials scope a signature to one day; AWS caps URLs at seven.
  constexpr int64_t kMaxExpires = 7 * 24 * 3600;
  if (req.expires_seconds < 1 || req.expires_seconds > kMaxExpires) {
    return Status::InvalidArgument("sigv4: a presigned URL must expire in 1 to 604800 seconds, not " +
                                   std::to_string(req.expires_seconds));
  }
  std::vector<std::string> names;
  for (const auto& [name, value] : req.headers) {
    std::string lname = Lower(Trim(name));
    if (lname == "authorization" ||
        std::find(kNeverSigned.begin(), kNeverSigned.end(), lname) != kNeverSigned.end()) {
      continue;
    }
    names.push_back(std::move(lname));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  if (!std::binary_search(names.begin(), names.end(), "host")) {
    return Status::InvalidArgument("sigv4: a host header is required to presign a request");
  }
  std::string signed_headers;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) signed_headers += ';';
    signed_headers += names[i];
  }
  std::string canonical_headers;
  std::string missing;
  BuildCanonicalHeaders(req.headers, names, canonical_headers, missing);

  const std::string amz_date = FormatAmzDate(req.time_seconds);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope =
      date + "/" + std::string(req.region) + "/" + std::string(req.service) + "/aws4_request";
  PresigningResult out;
  out.query = std::string(req.query);
  auto add = [&out](std::string_view name, std::string_view value) {
    if (!out.query.empty()) out.query += '&';
    out.query += name;
    out.query += '=';
    out.query += UriEncode(value, /*keep_slash=*/false);
  };
  add("X-Amz-Algorithm", kSigV4Algorithm);
  add("X-Amz-Credential", std::string(req.access_key_id) + "/" + scope);
  add("X-Amz-Date", amz_date);
  add("X-Amz-Expires", std::to_string(req.expires_seconds));
  if (!req.session_token.empty()) add("X-Amz-Security-Token", req.session_token);
  add("X-Amz-SignedHeaders", signed_headers);
  out.canonical_request = BuildCanonicalRequest(req.method, req.path, out.query, canonical_headers,
                                                signed_headers, req.payload_sha256, req.uri_mode);
  out.string_to_sign = BuildStringToSign(amz_date, scope, out.canonical_request);
  out.signature = HexEncode(HmacSha256(
      DeriveSigningKey(req.secret_access_key, date, req.region, req.service), out.string_to_sign));
  add("X-Amz-Signature", out.signature);
  return out;
}

std::string_view SigV4ErrorName(SigV4Error e) {
  switch (e) {
    case SigV4Error::kNone:
      return "none";
    case SigV4Error::kMissingAuthentication:
      return "missing_authentication";
    case SigV4Error::kMalformed:
      return "malformed";
    case SigV4Error::kHeaderNotSigned:
      return "header_not_signed";
    case SigV4Error::kScopeDateMismatch:
      return "scope_date_mismatch";
    case SigV4Error::kWrongService:
      return "wrong_service";
    case SigV4Error::kWrongRegion:
      return "wrong_region";
    case SigV4Error::kRequestTimeSkewed:
      return "request_time_skewed";
    case SigV4Error::kUnknownAccessKey:
      return "unknown_access_key";
    case SigV4Error::kPayloadHashMismatch:
      return "payload_hash_mismatch";
    case SigV4Error::kSignatureMismatch:
      return "signature_mismatch";
    case SigV4Error::kInternal:
      return "internal";
  }
  return "unknown";
}

AuthResult<SigV4Authorization, SigV4Error> ParseAuthorizationHeader(std::string_view value) {
  using R = SigV4Authorization;
  value = Trim(value);
  size_t sp = value.find(' ');
  std::string_view algorithm = value.substr(0, sp);
  if (algorithm != kSigV4Algorithm) {
    return Fail<R>(SigV4Error::kMalformed,
                   "unsupported authorization type '" + std::string(algorithm.substr(0, 32)) +
                       "': sign requests with AWS Signature Version 4 (AWS4-HMAC-SHA256)");
  }
  std::string_view rest = sp == std::string_view::npos ? "" : value.substr(sp + 1);
  std::optional<std::string_view> credential, signed_headers, signature;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    if (comma == std::string_view::npos) comma = rest.size();
    std::string_view part = Trim(rest.substr(start, comma - start));
    start = comma + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return Fail<R>(SigV4Error::kMalformed, "Authorization header component '" +
                                                 std::string(part.substr(0, 64)) +
                                                 "' is not of the form name=value");
    }
    std::string_view key = part.substr(0, eq);
    std::string_view val = part.substr(eq + 1);
    std::optional<std::string_view>* slot = nullptr;
    if (key == "Credential") {
      slot = &credential;
    } else if (key == "SignedHeaders") {
      slot = &signed_headers;
    } else if (key == "Signature") {
      slot = &signature;
    } else {
      return Fail<R>(SigV4Error::kMalformed, "Authorization header has an unknown component '" +
                                                 std::string(key.substr(0, 64)) + "'");
    }
    if (slot->has_value()) {
      return Fail<R>(SigV4Error::kMalformed,
                     "Authorization header repeats '" + std::string(key) + "'");
    }
    *slot = val;
  }
  for (auto [name, slot] :
       {std::pair{"Credential", &credential}, std::pair{"SignedHeaders", &signed_headers},
        std::pair{"Signature", &signature}}) {
    if (!slot->has_value()) {
      return Fail<R>(SigV4Error::kMalformed,
                     std::string("Authorization header requires '") + name + "' parameter");
    }
  }

  R out;
  // Credential=KEY/YYYYMMDD/REGION/SERVICE/aws4_request
  std::vector<std::string_view> scope;
  for (size_t s = 0; s <= credential->size();) {
    size_t slash = credential->find('/', s);
    if (slash == std::string_view::npos) slash = credential->size();
    scope.push_back(credential->substr(s, slash - s));
    s = slash + 1;
  }
  if (scope.size() != 5) {
    return Fail<R>(SigV4Error::kMalformed,
                   "Credential '" + std::string(credential->substr(0, 128)) +
                       "' is not of the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request");
  }
  int64_t ignored;
  if (scope[0].empty() || scope[1].size() != 8 || !Digits(scope[1], 0, 8, ignored) ||
      scope[2].empty() || scope[3].empty()) {
    return Fail<R>(SigV4Error::kMalformed,
                   "Credential '" + std::string(credential->substr(0, 128)) +
                       "' is not of the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request");
  }
  if (scope[4] != "aws4_request") {
    return Fail<R>(SigV4Error::kMalformed,
                   "Credential should be scoped with a valid terminator: 'aws4_request', not '" +
                       std::string(scope[4].substr(0, 64)) + "'");
  }
  out.access_key_id = scope[0];
  out.date = scope[1];
  out.region = scope[2];
  out.service = scope[3];

  out.signed_headers_text = *signed_headers;
  for (size_t s = 0; s <= signed_headers->size();) {
    size_t semi = signed_headers->find(';', s);
    if (semi == std::string_view::npos) semi = signed_headers->size();
    std::string_view name = signed_headers->substr(s, semi - s);
    if (!IsHeaderNameToken(name)) {
      return Fail<R>(SigV4Error::kMalformed,
                     "SignedHeaders '" + std::string(signed_headers->substr(0, 256)) +
                         "' must be lower-case header names separated by ';'");
    }
    out.signed_headers.emplace_back(name);
    s = semi + 1;
  }
  if (signature->size() != 64 || !IsLowerHex(*signature)) {
    return Fail<R>(SigV4Error::kMalformed,
                   "Signature must be 64 lower-case hexadecimal characters");
  }
  out.signature = *signature;
  return out;
}

AuthResult<SigV4Verified, SigV4Error> VerifySigV4(const SigV4Request& req,
                                                  const CredentialLookup& lookup,
                                                  const Clock& clock, const SigV4Options& options) {
  using R = SigV4Verified;
  auto authorization = HeaderValues(req.headers, "authorization");
  if (authorization.empty()) {
    return Fail<R>(SigV4Error::kMissingAuthentication,
                   "Missing Authentication Token: the request has no Authorization header; "
                   "sign it with AWS Signature Version 4");
  }
  if (authorization.size() > 1) {
    return Fail<R>(SigV4Error::kMalformed, "the request has more than one Authorization header");
  }
  auto parsed = ParseAuthorizationHeader(authorization.front());
  if (!parsed.ok()) return AuthResult<R, SigV4Error>(parsed.kind(), parsed.status());
  const SigV4Authorization& auth = *parsed;

  if (auth.service != options.service) {
    return Fail<R>(SigV4Error::kWrongService, "Credential should be scoped to correct service: '" +
                                                  options.service + "', not '" +
                                                  auth.service.substr(0, 64) + "'");
  }
  if (!options.region.empty() && auth.region != options.region) {
    return Fail<R>(SigV4Error::kWrongRegion,
                   "Credential should be scoped to a valid region. This registry's region is '" +
                       options.region + "', not '" + auth.region.substr(0, 64) + "'");
  }

  // The request time: X-Amz-Date, else Date.
  std::string date_header = "x-amz-date";
  auto amz_dates = HeaderValues(req.headers, "x-amz-date");
  int64_t request_time = 0;
  if (amz_dates.size() > 1) {
    return Fail<R>(SigV4Error::kMalformed, "the request has more than one X-Amz-Date header");
  }
  if (amz_dates.size() == 1) {
    auto t = ParseAmzDate(Trim(amz_dates.front()));
    if (!t.ok()) return Fail<R>(SigV4Error::kMalformed, t.status().message());
    request_time = *t;
  } else {
    auto dates = HeaderValues(req.headers, "date");
    if (dates.size() != 1) {
      return Fail<R>(SigV4Error::kMalformed,
                     "Authorization header requires existence of either a 'X-Amz-Date' or a "
                     "'Date' header");
    }
    auto t = ParseHttpDate(dates.front());
    if (!t.ok()) return Fail<R>(SigV4Error::kMalformed, t.status().message());
    request_time = *t;
    date_header = "date";
  }
  std::string amz_date = FormatAmzDate(request_time);

  std::vector<std::string> required = {"host", date_header};
  for (const std::string& name : options.signed_when_present) {
    if (!HeaderValues(req.headers, name).empty()) required.push_back(name);
  }
  for (const std::string& name : required) {
    if (std::find(auth.signed_headers.begin(), auth.signed_headers.end(), name) ==
        auth.signed_headers.end()) {
      return Fail<R>(SigV4Error::kHeaderNotSigned,
                     "'" + name + "' must be a signed header (listed in SignedHeaders)");
    }
  }
  for (const auto& name : auth.signed_headers) {
    if (HeaderValues(req.headers, name).empty()) {
      return Fail<R>(SigV4Error::kHeaderNotSigned,
                     "signed header '" + name + "' is missing from the request");
    }
  }

  if (auth.date != amz_date.substr(0, 8)) {
    return Fail<R>(SigV4Error::kScopeDateMismatch,
                   "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                   "date from HTTP: '" +
                       auth.date + "' != '" + amz_date.substr(0, 8) + "', from '" + amz_date + "'");
  }

  const int64_t now = clock.NowMillis() / 1000;
  if (request_time < now - options.max_skew_seconds) {
    return Fail<R>(SigV4Error::kRequestTimeSkewed,
                   "Signature expired: " + amz_date + " is now earlier than " +
                       FormatAmzDate(now - options.max_skew_seconds) + " (" + FormatAmzDate(now) +
                       " - " + SkewText(options.max_skew_seconds) + ")");
  }
  if (request_time > now + options.max_skew_seconds) {
    return Fail<R>(SigV4Error::kRequestTimeSkewed,
                   "Signature not yet current: " + amz_date + " is still later than " +
                       FormatAmzDate(now + options.max_skew_seconds) + " (" + FormatAmzDate(now) +
                       " + " + SkewText(options.max_skew_seconds) + ")");
  }

  // The payload hash that goes into the canonical request.
  std::string payload;
  auto content_sha = HeaderValues(req.headers, "x-amz-content-sha256");
  if (content_sha.size() > 1) {
    return Fail<R>(SigV4Error::kMalformed,
                   "the request has more than one x-amz-content-sha256 header");
  }
  if (content_sha.size() == 1) {
    std::string_view declared = Trim(content_sha.front());
    if (declared == kUnsignedPayload) {
      if (!options.allow_unsigned_payload) {
        return Fail<R>(SigV4Error::kPayloadHashMismatch,
                       "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted here; sign the "
                       "request body");
      }
    } else if (req.payload_sha256.has_value() &&
               !ConstantTimeEquals(Lower(declared), *req.payload_sha256)) {
      return Fail<R>(SigV4Error::kPayloadHashMismatch,
                     "The provided 'x-amz-content-sha256' header does not match what was "
                     "computed from the request body");
    }
    payload = declared;
  } else if (req.payload_sha256.has_value()) {
    payload = *req.payload_sha256;
  } else {
    return Fail<R>(SigV4Error::kMalformed,
                   "the request must carry an x-amz-content-sha256 header for this operation");
  }

  auto credential = lookup(auth.access_key_id);
  if (!credential.ok()) {
    if (credential.status().Is(Code::kNotFound)) {
      return Fail<R>(SigV4Error::kUnknownAccessKey,
                     "The security token included in the request is invalid: access key id '" +
                         auth.access_key_id.substr(0, 128) + "' is not known to this registry");
    }
    return AuthResult<R, SigV4Error>(
        SigV4Error::kInternal,
        Status::Internal("credential lookup failed: " + credential.status().ToString()));
  }

  std::string canonical_headers;
  std::string missing;
  BuildCanonicalHeaders(req.headers, auth.signed_headers, canonical_headers, missing);
  std::string canonical_request = BuildCanonicalRequest(
      req.method, req.path, req.query, canonical_headers, auth.signed_headers_text, payload);
  std::string scope = auth.date + "/" + auth.region + "/" + auth.service + "/aws4_request";
  std::string string_to_sign = BuildStringToSign(amz_date, scope, canonical_request);
  std::string expected = HexEncode(HmacSha256(
      DeriveSigningKey(credential->secret_access_key, auth.date, auth.region, auth.service),
      string_to_sign));
  if (!ConstantTimeEquals(expected, auth.signature)) {
    return Fail<R>(SigV4Error::kSignatureMismatch,
                   "The request signature we calculated does not match the signature you "
                   "provided. Check your AWS Secret Access Key and signing method.");
  }

  R out;
  out.caller = std::move(credential->caller);
  out.caller.authenticated = true;
  out.caller.access_key_id = auth.access_key_id;
  out.region = auth.region;
  out.request_time_seconds = request_time;
  return out;
}

}  // namespace berth::auth
