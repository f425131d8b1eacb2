#include "client/auth.h"

#include <boost/json.hpp>
#include <cctype>

#include "client/http.h"

namespace berth::client {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void SkipSpaceAndCommas(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i;
}

std::string ReadToken(std::string_view s, size_t& i) {
  size_t start = i;
  while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != '=') ++i;
  return std::string(s.substr(start, i - start));
}

}  // namespace

std::vector<Challenge> ParseChallenges(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  SkipSpaceAndCommas(h, i);
  while (i < h.size()) {
    std::string word = ReadToken(h, i);
    if (word.empty()) return out;  // stray '=' or similar: give up
    size_t j = i;
    while (j < h.size() && (h[j] == ' ' || h[j] == '\t')) ++j;
    if (j < h.size() && h[j] == '=' && !out.empty()) {
      // key=value (value quoted or a token)
      i = j + 1;
      while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value.push_back(h[i++]);
        }
        if (i < h.size()) ++i;  // closing quote
      } else {
        value = ReadToken(h, i);
      }
      out.back().params[Lower(word)] = value;
    } else if (j < h.size() && h[j] == '=') {
      return out;  // a parameter before any scheme
    } else {
      out.push_back(Challenge{Lower(word), {}});
    }
    SkipSpaceAndCommas(h, i);
  }
  return out;
}

std::string BasicAuthorization(const Credentials& creds) {
  return "Basic " + Base64Encode(creds.username + ":" + creds.password);
}

Result<std::string> ParseTokenResponse(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    for (const char* key : {"token", "access_token"}) {
      if (auto it = o.find(key); it != o.end() && it->value().is_string() &&
                                 !it->value().as_string().empty()) {
        return std::string(it->value().as_string());
      }
    }
  }
  return Status(Code::kUnauthorized, "the token server answered without a token");
}

}  // namespace berth::client
