#include "oci/manifest.h"

#include <boost/json.hpp>
#include <exception>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include "oci/media_types.h"

namespace berth::oci {
namespace {

namespace json = boost::json;

// User-supplied strings echoed in messages are capped so errors stay readable.
constexpr size_t kMaxEcho = 128;
// Real manifests nest at most ~5 levels (index > manifests > entry > platform >
// os.features); the cap bounds parser memory on hostile input.
constexpr size_t kMaxJsonDepth = 32;

constexpr std::string_view kSchema1Message =
    "Docker image manifest schema 1 is not supported; push the image in Docker schema 2 or OCI "
    "format";

Status Invalid(std::string message) { return Status(Code::kManifestInvalid, std::move(message)); }

Status Schema1Error() { return Invalid(std::string(kSchema1Message)); }

std::string Quote(std::string_view s) {
  std::string out = "'";
  out += s.substr(0, kMaxEcho);
  if (s.size() > kMaxEcho) out += "...";
  out += "'";
  return out;
}

std::string Join(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

std::string Index(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

std::string_view TypeName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "unknown";
}

std::string ToStd(const json::string& s) { return std::string(s.data(), s.size()); }

bool IsSchema1MediaType(std::string_view mt) {
  return mt == kDockerSchema1 || mt == kDockerSchema1Signed;
}

// "Application/VND.oci.image.manifest.v1+json; charset=utf-8" -> the bare, lower-case type.
// Media types are case-insensitive (RFC 6838), parameters are irrelevant here.
std::string NormalizeContentType(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.remove_suffix(1);
  std::string out(ct);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Optional members treat JSON null as absent, as Go clients (which write most
// manifests) decode null into the zero value.
const json::value* Optional(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  return (v == nullptr || v->is_null()) ? nullptr : v;
}

Result<std::string> RequiredString(const json::object& obj, std::string_view key,
                                   std::string_view path) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr) return Invalid(Join(path, key) + ": required field is missing");
  if (!v->is_string()) {
    return Invalid(Join(path, key) + ": must be a string, got " + std::string(TypeName(*v)));
  }
  return ToStd(v->get_string());
}

Result<std::string> OptionalString(const json::object& obj, std::string_view key,
                                   std::string_view path) {
  const json::value* v = Optional(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) {
    return Invalid(Join(path, key) + ": must be a string, got " + std::string(TypeName(*v)));
  }
  return ToStd(v->get_string());
}

Result<std::map<std::string, std::string>> ParseAnnotations(const json::object& obj,
                                                            std::string_view path) {
  std::map<std::string, std::string> out;
  const json::value* v = Optional(obj, "annotations");
  if (v == nullptr) return out;
  std::string field = Join(path, "annotations");
  if (!v->is_object()) {
    return Invalid(field + ": must be an object of strings, got " + std::string(TypeName(*v)));
  }
  for (const auto& [key, value] : v->get_object()) {
    if (!value.is_string()) {
      return Invalid(field + "." + Quote(std::string_view(key.data(), key.size())) +
                     ": must be a string, got " + std::string(TypeName(value)));
    }
    out.emplace(std::string(key.data(), key.size()), ToStd(value.get_string()));
  }
  return out;
}

Result<Platform> ParsePlatform(const json::value& v, std::string_view path) {
  if (!v.is_object()) {
    return Invalid(std::string(path) + ": must be an object, got " + std::string(TypeName(v)));
  }
  const json::object& obj = v.get_object();
  Platform p;
  BERTH_ASSIGN_OR_RETURN(p.os, OptionalString(obj, "os", path));
  BERTH_ASSIGN_OR_RETURN(p.architecture, OptionalString(obj, "architecture", path));
  BERTH_ASSIGN_OR_RETURN(p.variant, OptionalString(obj, "variant", path));
  BERTH_ASSIGN_OR_RETURN(p.os_version, OptionalString(obj, "os.version", path));
  if (const json::value* features = Optional(obj, "os.features")) {
    std::string field = Join(path, "os.features");
    if (!features->is_array()) {
      return Invalid(field + ": must be an array of strings, got " +
                     std::string(TypeName(*features)));
    }
    const json::array& arr = features->get_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      if (!arr[i].is_string()) {
        return Invalid(Index(field, i) + ": must be a string, got " +
                       std::string(TypeName(arr[i])));
      }
      p.os_features.push_back(ToStd(arr[i].get_string()));
    }
  }
  return p;
}

// `path` names the descriptor in messages ("config", "layers[2]", "subject").
// Platforms are only meaningful on index entries, so only those parse one.
Result<Descriptor> ParseDescriptor(const json::value& v, std::string_view path,
                                   bool with_platform) {
  if (!v.is_object()) {
    return Invalid(std::string(path) + ": must be a descriptor object, got " +
                   std::string(TypeName(v)));
  }
  const json::object& obj = v.get_object();
  Descriptor d;

  BERTH_ASSIGN_OR_RETURN(d.media_type, RequiredString(obj, "mediaType", path));
  if (d.media_type.empty()) return Invalid(Join(path, "mediaType") + ": must not be empty");

  BERTH_ASSIGN_OR_RETURN(std::string digest, RequiredString(obj, "digest", path));
  Result<Digest> parsed = Digest::Parse(digest);
  if (!parsed.ok()) {
    return Status(Code::kManifestInvalid, Join(path, "digest") + ": " + parsed.status().message(),
                  parsed.status().detail());
  }
  d.digest = std::move(parsed).value();

  const json::value* size = obj.if_contains("size");
  std::string size_field = Join(path, "size");
  if (size == nullptr) return Invalid(size_field + ": required field is missing");
  if (size->is_int64()) {
    d.size = size->get_int64();
  } else if (size->is_uint64()) {
    // Boost.JSON only uses uint64 for values above INT64_MAX.
    return Invalid(size_field + ": is too large");
  } else {
    return Invalid(size_field + ": must be an integer, got " +
                   (size->is_double() ? std::string("a fractional or exponent number")
                                      : std::string(TypeName(*size))));
  }
  if (d.size < 0) return Invalid(size_field + ": must not be negative");

  BERTH_ASSIGN_OR_RETURN(d.artifact_type, OptionalString(obj, "artifactType", path));
  BERTH_ASSIGN_OR_RETURN(d.annotations, ParseAnnotations(obj, path));
  if (with_platform) {
    if (const json::value* platform = Optional(obj, "platform")) {
      BERTH_ASSIGN_OR_RETURN(d.platform, ParsePlatform(*platform, Join(path, "platform")));
    }
  }
  return d;
}

Result<std::vector<Descriptor>> ParseDescriptorArray(const json::object& obj, std::string_view key,
                                                     std::string_view media_type,
                                                     bool with_platform) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr) {
    return Invalid(std::string(key) + ": required field is missing (manifest media type " +
                   std::string(media_type) + ")");
  }
  if (!v->is_array()) {
    return Invalid(std::string(key) + ": must be an array, got " + std::string(TypeName(*v)));
  }
  const json::array& arr = v->get_array();
  std::vector<Descriptor> out;
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(arr[i], Index(key, i), with_platform));
    out.push_back(std::move(d));
  }
  return out;
}

Status CheckSchemaVersion(const json::object& obj) {
  const json::value* v = obj.if_contains("schemaVersion");
  if (v == nullptr) return Invalid("schemaVersion: required field is missing; it must be 2");
  if (v->is_int64() && v->get_int64() == 2) return Status::Ok();
  if (v->is_int64() && v->get_int64() == 1) return Schema1Error();
  if (v->is_int64() || v->is_uint64()) {
    return Invalid("schemaVersion: must be 2, got " + (v->is_int64()
                                                           ? std::to_string(v->get_int64())
                                                           : std::to_string(v->get_uint64())));
  }
  return Invalid("schemaVersion: must be the integer 2, got " + std::string(TypeName(*v)));
}

// The effective media type: the "mediaType" field, else a manifest Content-Type, else
// inferred from the shape of the document (OCI made the field optional).
Result<std::string> EffectiveMediaType(const json::object& obj, std::string_view content_type) {
  std::string ct = NormalizeContentType(content_type);
  bool ct_is_manifest = IsManifestMediaType(ct);

  BERTH_ASSIGN_OR_RETURN(std::string field, OptionalString(obj, "mediaType", ""));
  if (!field.empty()) {
    if (IsSchema1MediaType(field)) return Schema1Error();
    if (!IsManifestMediaType(field)) {
      return Invalid("mediaType: unsupported manifest media type " + Quote(field) +
                     "; expected an OCI image manifest or index, or a Docker schema 2 "
                     "manifest or manifest list");
    }
    if (ct_is_manifest && ct != field) {
      return Invalid("mediaType: the manifest says " + Quote(field) +
                     " but it was sent with Content-Type " + Quote(ct));
    }
    return field;
  }
  if (ct_is_manifest) return ct;

  bool has_manifests = obj.contains("manifests");
  bool has_config = obj.contains("config");
  if (has_manifests && has_config) {
    return Invalid(
        "mediaType: missing, and the manifest has both 'config' and 'manifests' so its type is "
        "ambiguous; set mediaType or the Content-Type");
  }
  if (has_manifests) return std::string(kOciIndex);
  if (has_config) return std::string(kOciManifest);
  return Invalid(
      "mediaType: missing, and the manifest has neither 'config' nor 'manifests'; set mediaType "
      "or the Content-Type");
}

Result<ParsedManifest> Parse(std::string_view bytes, std::string_view content_type) {
  if (bytes.empty()) return Invalid("manifest is empty");
  // Parsed values live only for this call: a monotonic arena avoids per-node frees.
  unsigned char arena[4096];
  json::monotonic_resource resource(arena, sizeof(arena));
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  std::error_code ec;
  json::value root =
      json::parse(json::string_view(bytes.data(), bytes.size()), ec, &resource, options);
  if (ec) return Invalid("manifest is not valid JSON: " + ec.message());
  if (!root.is_object()) {
    return Invalid("manifest must be a JSON object, got " + std::string(TypeName(root)));
  }
  const json::object& obj = root.get_object();

  // Schema 1 is recognised by any of its markers, so the client gets the explanatory
  // message rather than a complaint about a missing field.
  if (IsSchema1MediaType(NormalizeContentType(content_type))) return Schema1Error();
  BERTH_RETURN_IF_ERROR(CheckSchemaVersion(obj));

  ParsedManifest m;
  BERTH_ASSIGN_OR_RETURN(m.media_type, EffectiveMediaType(obj, content_type));
  m.kind = IsIndexMediaType(m.media_type) ? ManifestKind::kIndex : ManifestKind::kImage;

  if (m.kind == ManifestKind::kImage) {
    const json::value* config = obj.if_contains("config");
    if (config == nullptr) {
      return Invalid("config: required field is missing (manifest media type " + m.media_type +
                     ")");
    }
    BERTH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, "config", false));
    // Empty layers are legal: OCI artifacts may carry everything in the config.
    BERTH_ASSIGN_OR_RETURN(m.layers, ParseDescriptorArray(obj, "layers", m.media_type, false));
  } else {
    BERTH_ASSIGN_OR_RETURN(m.manifests, ParseDescriptorArray(obj, "manifests", m.media_type, true));
  }

  if (const json::value* subject = Optional(obj, "subject")) {
    BERTH_ASSIGN_OR_RETURN(m.subject, ParseDescriptor(*subject, "subject", false));
  }
  BERTH_ASSIGN_OR_RETURN(m.artifact_type, OptionalString(obj, "artifactType", ""));
  if (m.artifact_type.empty() && m.config.has_value()) m.artifact_type = m.config->media_type;
  BERTH_ASSIGN_OR_RETURN(m.annotations, ParseAnnotations(obj, ""));
  return m;
}

}  // namespace

std::vector<Descriptor> ParsedManifest::blobs() const {
  std::vector<Descriptor> out;
  if (kind != ManifestKind::kImage) return out;
  out.reserve(layers.size() + 1);
  if (config.has_value()) out.push_back(*config);
  out.insert(out.end(), layers.begin(), layers.end());
  return out;
}

Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type) {
  // Boost.JSON reports syntax errors through `ec`, but allocation can still throw;
  // nothing may escape into the HTTP layer.
  try {
    return Parse(bytes, content_type);
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory while parsing manifest");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("unexpected error while parsing manifest: ") + e.what());
  } catch (...) {
    return Status::Internal("unexpected error while parsing manifest");
  }
}

}  // namespace berth::oci
