// The OCI name / tag / reference grammar (distribution-spec "Pulling manifests").
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::oci {

// Repository name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
// and at most 255 characters in all. Error: kNameInvalid with a message saying why
// (empty, too long, upper case, leading/trailing/doubled '/', bad separator, '..').
Status ValidateRepositoryName(std::string_view name);

// Tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. Error: kTagInvalid with a message saying why.
Status ValidateTag(std::string_view tag);

// A manifest reference is a tag or a digest.
struct Reference {
  std::variant<std::string, Digest> value;
  bool is_digest() const { return std::holds_alternative<Digest>(value); }
  const std::string& tag() const { return std::get<std::string>(value); }
  const Digest& digest() const { return std::get<Digest>(value); }
  std::string str() const { return is_digest() ? digest().str() : tag(); }
};

// Anything containing ':' is parsed as a digest (kDigestInvalid on failure),
// otherwise as a tag (kTagInvalid on failure).
Result<Reference> ParseReference(std::string_view ref);

}  // namespace berth::oci
