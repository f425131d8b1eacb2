// Decoding of operation inputs against the service model's constraints (types,
// lengths, ranges, enums, patterns). Every failure is kInvalidArgument
// (InvalidParameterException) worded as AWS words validation errors, naming the
// member by its path ("imageIds[2].imageTag"). JSON null counts as absent.
// Never throws: Boost.JSON is used through its non-throwing accessors.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "oci/digest.h"

namespace berth::api::ecr {

inline constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

// "1 validation error detected: Value at '<path>' failed to satisfy constraint: <why>".
Status InvalidMember(std::string_view path, std::string_view constraint);

// Reads the members of one JSON object of an operation's input. `path` names the
// object in messages (empty for the top level). Borrows the object: it must outlive
// the reader.
class Reader {
 public:
  explicit Reader(const boost::json::object& obj, std::string path = {})
      : obj_(&obj), path_(std::move(path)) {}

  // The message path of member `key` ("filter.tagStatus").
  std::string Path(std::string_view key) const;
  bool Has(std::string_view key) const;

  Result<std::optional<std::string>> OptString(std::string_view key, size_t min_len = 0,
                                               size_t max_len = kUnbounded) const;
  Result<std::string> String(std::string_view key, size_t min_len = 0,
                             size_t max_len = kUnbounded) const;
  Result<std::optional<int64_t>> OptInteger(std::string_view key, int64_t min, int64_t max) const;
  Result<int64_t> Integer(std::string_view key, int64_t min, int64_t max) const;
  Result<bool> Bool(std::string_view key, bool default_value) const;
  Result<std::optional<std::string>> OptEnum(std::string_view key,
                                             std::span<const std::string_view> values) const;
  // nullptr when absent.
  Result<const boost::json::array*> OptList(std::string_view key, size_t min_items,
                                            size_t max_items) const;
  Result<const boost::json::array*> List(std::string_view key, size_t min_items,
                                         size_t max_items) const;
  Result<std::optional<Reader>> OptStruct(std::string_view key) const;

  // Items of a list member read from this object.
  Result<Reader> StructItem(const boost::json::array& list, size_t i, std::string_view key) const;
  Result<std::string> StringItem(const boost::json::array& list, size_t i, std::string_view key,
                                 size_t min_len = 0, size_t max_len = kUnbounded) const;

 private:
  const boost::json::object* obj_;
  std::string path_;
};

// ---- members shared by many operations

// repositoryName: 2-256 characters of the repository name grammar.
Result<std::string> RepositoryNameMember(const Reader& in, std::string_view key = "repositoryName");
// registryId: twelve digits; nullopt when absent.
Result<std::optional<std::string>> RegistryIdMember(const Reader& in);
// A digest member that must be valid ("sha256:<64 hex>").
Result<oci::Digest> DigestMember(const Reader& in, std::string_view key);

}  // namespace berth::api::ecr
