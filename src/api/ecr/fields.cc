#include "api/ecr/fields.h"

#include <boost/json/value.hpp>

#include "oci/reference.h"

namespace berth::api::ecr {
namespace {

namespace json = boost::json;

const json::value* Find(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

Status Missing(std::string_view path) {
  return Status(Code::kInvalidArgument,
                "1 validation error detected: Value null at '" + std::string(path) +
                    "' failed to satisfy constraint: Member must not be null",
                std::string(path));
}

std::string ItemPath(std::string_view list_path, size_t i) {
  return std::string(list_path) + "[" + std::to_string(i) + "]";
}

Result<std::string> CheckString(const json::value& v, std::string_view path, size_t min_len,
                                size_t max_len) {
  if (!v.is_string()) return InvalidMember(path, "Member must be a string");
  const json::string& s = v.get_string();
  if (s.size() < min_len) {
    return InvalidMember(
        path, "Member must have length greater than or equal to " + std::to_string(min_len));
  }
  if (s.size() > max_len) {
    return InvalidMember(
        path, "Member must have length less than or equal to " + std::to_string(max_len));
  }
  return std::string(s.data(), s.size());
}

}  // namespace

Status InvalidMember(std::string_view path, std::string_view constraint) {
  return Status(Code::kInvalidArgument,
                "1 validation error detected: Value at '" + std::string(path) +
                    "' failed to satisfy constraint: " + std::string(constraint),
                std::string(path));
}

std::string Reader::Path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

bool Reader::Has(std::string_view key) const { return Find(*obj_, key) != nullptr; }

Result<std::optional<std::string>> Reader::OptString(std::string_view key, size_t min_len,
                                                     size_t max_len) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return std::optional<std::string>();
  BERTH_ASSIGN_OR_RETURN(std::string s, CheckString(*v, Path(key), min_len, max_len));
  return std::optional<std::string>(std::move(s));
}

Result<std::string> Reader::String(std::string_view key, size_t min_len, size_t max_len) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return Missing(Path(key));
  return CheckString(*v, Path(key), min_len, max_len);
}

Result<std::optional<int64_t>> Reader::OptInteger(std::string_view key, int64_t min,
                                                  int64_t max) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t n = 0;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64()) {
    if (v->get_uint64() > static_cast<uint64_t>(max)) {
      return InvalidMember(Path(key),
                           "Member must have value less than or equal to " + std::to_string(max));
    }
    n = static_cast<int64_t>(v->get_uint64());
  } else {
    return InvalidMember(Path(key), "Member must be an integer");
  }
  if (n < min) {
    return InvalidMember(Path(key),
                         "Member must have value greater than or equal to " + std::to_string(min));
  }
  if (n > max) {
    return InvalidMember(Path(key),
                         "Member must have value less than or equal to " + std::to_string(max));
  }
  return std::optional<int64_t>(n);
}

Result<int64_t> Reader::Integer(std::string_view key, int64_t min, int64_t max) const {
  BERTH_ASSIGN_OR_RETURN(std::optional<int64_t> n, OptInteger(key, min, max));
  if (!n) return Missing(Path(key));
  return *n;
}

Result<bool> Reader::Bool(std::string_view key, bool default_value) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return default_value;
  if (!v->is_bool()) return InvalidMember(Path(key), "Member must be a boolean");
  return v->get_bool();
}

Result<std::optional<std::string>> Reader::OptEnum(std::string_view key,
                                                   std::span<const std::string_view> values) const {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> s, OptString(key));
  if (!s) return s;
  for (std::string_view v : values) {
    if (*s == v) return s;
  }
  std::string set;
  for (std::string_view v : values) {
    if (!set.empty()) set += ", ";
    set += v;
  }
  return InvalidMember(Path(key), "Member must satisfy enum value set: [" + set + "]");
}

Result<const json::array*> Reader::OptList(std::string_view key, size_t min_items,
                                           size_t max_items) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return static_cast<const json::array*>(nullptr);
  if (!v->is_array()) return InvalidMember(Path(key), "Member must be a list");
  const json::array& a = v->get_array();
  if (a.size() < min_items) {
    return InvalidMember(
        Path(key), "Member must have length greater than or equal to " + std::to_string(min_items));
  }
  if (a.size() > max_items) {
    return InvalidMember(
        Path(key), "Member must have length less than or equal to " + std::to_string(max_items));
  }
  return &a;
}

Result<const json::array*> Reader::List(std::string_view key, size_t min_items,
                                        size_t max_items) const {
  BERTH_ASSIGN_OR_RETURN(const json::array* a, OptList(key, min_items, max_items));
  if (a == nullptr) return Missing(Path(key));
  return a;
}

Result<std::optional<Reader>> Reader::OptStruct(std::string_view key) const {
  const json::value* v = Find(*obj_, key);
  if (v == nullptr) return std::optional<Reader>();
  if (!v->is_object()) return InvalidMember(Path(key), "Member must be a structure");
  return std::optional<Reader>(Reader(v->get_object(), Path(key)));
}

Result<Reader> Reader::StructItem(const json::array& list, size_t i, std::string_view key) const {
  std::string path = ItemPath(Path(key), i);
  if (i >= list.size() || !list[i].is_object()) {
    return InvalidMember(path, "Member must be a structure");
  }
  return Reader(list[i].get_object(), std::move(path));
}

Result<std::string> Reader::StringItem(const json::array& list, size_t i, std::string_view key,
                                       size_t min_len, size_t max_len) const {
  std::string path = ItemPath(Path(key), i);
  if (i >= list.size() || list[i].is_null()) return Missing(path);
  return CheckString(list[i], path, min_len, max_len);
}

Result<std::string> RepositoryNameMember(const Reader& in, std::string_view key) {
  BERTH_ASSIGN_OR_RETURN(std::string name, in.String(key, 2, 256));
  if (Status st = oci::ValidateRepositoryName(name); !st.ok()) {
    return InvalidMember(in.Path(key),
                         "Member must satisfy regular expression pattern: "
                         "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)* (" +
                             st.message() + ")");
  }
  return name;
}

Result<std::optional<std::string>> RegistryIdMember(const Reader& in) {
  BERTH_ASSIGN_OR_RETURN(std::optional<std::string> id, in.OptString("registryId"));
  if (!id) return id;
  bool ok = id->size() == 12;
  for (char c : *id) ok = ok && c >= '0' && c <= '9';
  if (!ok) {
    return InvalidMember(in.Path("registryId"),
                         "Member must satisfy regular expression pattern: [0-9]{12}");
  }
  return id;
}

Result<oci::Digest> DigestMember(const Reader& in, std::string_view key) {
  BERTH_ASSIGN_OR_RETURN(std::string text, in.String(key));
  auto d = oci::Digest::Parse(text);
  if (!d.ok()) {
    return InvalidMember(in.Path(key),
                         "Member must be a valid image digest (" + d.status().message() + ")");
  }
  return d;
}

}  // namespace berth::api::ecr
