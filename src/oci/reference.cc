#include "oci/reference.h"

#include <cstddef>
#include <cstdio>
#include <string>

namespace berth::oci {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;
// The offending input is echoed in Status::detail; cap it so a hostile 1 MB name
// does not end up in every log line.
constexpr size_t kMaxDetailLength = 256;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsNameSeparator(char c) { return c == '.' || c == '_' || c == '-'; }
bool IsTagChar(char c) { return IsLowerAlnum(c) || IsUpper(c) || c == '_' || c == '.' || c == '-'; }

// 'x' for printable ASCII, otherwise 0xNN, so messages stay one clean line.
std::string Printable(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u <= 0x7e) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", u);
  return buf;
}

Status NameError(std::string message, std::string_view name) {
  return Status(Code::kNameInvalid, std::move(message),
                std::string(name.substr(0, kMaxDetailLength)));
}

Status TagError(std::string message, std::string_view tag) {
  return Status(Code::kTagInvalid, std::move(message),
                std::string(tag.substr(0, kMaxDetailLength)));
}

// Checks a run of separator characters found between two alphanumerics of a path
// component. The grammar allows exactly '.', '_', '__' or one or more '-'.
Status CheckSeparatorRun(std::string_view run, std::string_view name) {
  if (run == "." || run == "_" || run == "__") return Status::Ok();
  if (run.find_first_not_of('-') == std::string_view::npos) return Status::Ok();
  if (run.find("___") != std::string_view::npos) {
    return NameError("repository name must not contain more than two consecutive '_'", name);
  }
  return NameError("repository name contains the separator sequence '" + std::string(run) +
                       "'; components may be joined only by '.', '_', '__' or a run of '-'",
                   name);
}

}  // namespace

Status ValidateRepositoryName(std::string_view name) {
  if (name.empty()) return NameError("repository name must not be empty", name);
  if (name.size() > kMaxNameLength) {
    return NameError(
        "repository name is longer than 255 characters (" + std::to_string(name.size()) + ")",
        name);
  }
  // Character classes first, so "MyApp" is reported as a case problem rather than
  // as whatever structural rule the first capital happens to break.
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (IsLowerAlnum(c) || IsNameSeparator(c) || c == '/') continue;
    if (IsUpper(c)) return NameError("repository name must be lower case", name);
    if (c == '%') {
      // The path decoder leaves %2F encoded: it must not split or join names.
      return NameError("repository name contains a percent-encoded character at position " +
                           std::to_string(i) + "; send '/' unencoded (%2F is not a separator)",
                       name);
    }
    return NameError("repository name contains invalid character " + Printable(c) +
                         " at position " + std::to_string(i) +
                         "; allowed are a-z, 0-9, '.', '_', '-' and '/'",
                     name);
  }
  if (name.front() == '/' || name.back() == '/') {
    return NameError("repository name must not start or end with '/'", name);
  }
  if (name.find("//") != std::string_view::npos) {
    return NameError("repository name must not contain '//'", name);
  }
  if (name.find("..") != std::string_view::npos) {
    return NameError("repository name must not contain '..'", name);
  }

  // Now only [a-z0-9._/-] remain and every component is non-empty; check that each
  // component starts and ends with an alphanumeric and that separator runs are legal.
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view component = name.substr(pos, end - pos);
    if (!IsLowerAlnum(component.front())) {
      return NameError("repository name component '" + std::string(component) +
                           "' must start with a lower-case letter or digit",
                       name);
    }
    if (!IsLowerAlnum(component.back())) {
      return NameError("repository name component '" + std::string(component) +
                           "' must end with a lower-case letter or digit",
                       name);
    }
    size_t i = 0;
    while (i < component.size()) {
      if (IsLowerAlnum(component[i])) {
        ++i;
        continue;
      }
      size_t run_start = i;
      while (i < component.size() && IsNameSeparator(component[i])) ++i;
      BERTH_RETURN_IF_ERROR(CheckSeparatorRun(component.substr(run_start, i - run_start), name));
    }
    pos = end + 1;
  }
  return Status::Ok();
}

Status ValidateTag(std::string_view tag) {
  if (tag.empty()) return TagError("tag must not be empty", tag);
  if (tag.size() > kMaxTagLength) {
    return TagError("tag is longer than 128 characters (" + std::to_string(tag.size()) + ")", tag);
  }
  for (size_t i = 0; i < tag.size(); ++i) {
    if (!IsTagChar(tag[i])) {
      return TagError("tag contains invalid character " + Printable(tag[i]) + " at position " +
                          std::to_string(i) + "; allowed are letters, digits, '_', '.' and '-'",
                      tag);
    }
  }
  if (tag.front() == '.' || tag.front() == '-') {
    return TagError("tag must start with a letter, digit or '_'", tag);
  }
  return Status::Ok();
}

Result<Reference> ParseReference(std::string_view ref) {
  if (ref.find(':') != std::string_view::npos) {
    BERTH_ASSIGN_OR_RETURN(Digest digest, Digest::Parse(ref));
    return Reference{std::move(digest)};
  }
  BERTH_RETURN_IF_ERROR(ValidateTag(ref));
  return Reference{std::string(ref)};
}

}  // namespace berth::oci
