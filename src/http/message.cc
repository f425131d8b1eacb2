#include "http/message.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>

namespace berth::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> Decode(std::string_view s, bool plus_is_space,
                                  bool keep_encoded_slash = false) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      if (d == '/' && keep_encoded_slash) {
        out.append(s.substr(i, 3));
      } else {
        out += d;
      }
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> Request::Query(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::string_view Request::Header(bhttp::field f) const {
  auto it = headers->find(f);
  return it == headers->end() ? std::string_view() : std::string_view(it->value());
}

std::vector<std::string_view> Request::HeaderList(bhttp::field f) const {
  std::vector<std::string_view> out;
  auto [begin, end] = headers->equal_range(f);
  for (auto it = begin; it != end; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      std::string_view item = Trim(v.substr(0, comma));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      auto eq = item.find('=');
      std::string_view k = item.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      auto dk = Decode(k, true);
      auto dv = Decode(v, true);
      out.emplace_back(dk ? *dk : std::string(k), dv ? *dv : std::string(v));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::optional<std::string> DecodePath(std::string_view path) {
  return Decode(path, false, true);
}

std::optional<FramingError> CheckRequestFraming(const bhttp::fields& headers, unsigned version) {
  auto refuse = [](std::string message, bhttp::status st = bhttp::status::bad_request) {
    return std::optional<FramingError>(FramingError{st, std::move(message)});
  };
  // The common case (at most one Content-Length, no Transfer-Encoding) allocates nothing.
  size_t lengths = headers.count(bhttp::field::content_length);
  if (headers.count(bhttp::field::transfer_encoding) == 0) {
    if (lengths > 1 || (lengths == 1 && headers[bhttp::field::content_length].find(',') !=
                                            std::string_view::npos)) {
      return refuse("the request has more than one Content-Length; send exactly one");
    }
    return std::nullopt;
  }
  if (lengths > 0) {
    return refuse(
        "the request has both Transfer-Encoding and Content-Length; send only one of them");
  }
  if (version < 11) return refuse("Transfer-Encoding is not allowed in an HTTP/1.0 request");
  Request view;
  view.headers = &headers;
  auto codings = view.HeaderList(bhttp::field::transfer_encoding);
  auto is_chunked = [](std::string_view c) { return boost::beast::iequals(c, "chunked"); };
  if (codings.empty() || !is_chunked(codings.back())) {
    return refuse("the last transfer coding of a request must be chunked (Transfer-Encoding: " +
                  std::string(headers[bhttp::field::transfer_encoding].substr(0, 64)) + ")");
  }
  if (std::count_if(codings.begin(), codings.end(), is_chunked) > 1) {
    return refuse("the chunked transfer coding is applied more than once");
  }
  if (codings.size() > 1) {
    return refuse("transfer coding '" + std::string(codings.front().substr(0, 64)) +
                      "' is not supported; send the body with Transfer-Encoding: chunked alone",
                  bhttp::status::not_implemented);
  }
  return std::nullopt;
}

}  // namespace berth::http
