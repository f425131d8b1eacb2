// JSON helpers for the client: Go-compatible pretty printing (so that lists Berth
// builds are byte-identical to the ones the docker CLI builds) and small accessors.
// Pure functions, thread-safe.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace berth::client {

// Like Go's json.MarshalIndent(v, "", indent): object members in insertion order,
// "key": value with one space, '<' '>' '&' escaped as \u003c \u003e \u0026.
// An empty indent gives Go's compact json.Marshal output.
std::string GoJson(const boost::json::value& v, std::string_view indent = "");

// Parses JSON text; kInvalidArgument "<what>: <parser message>" on failure.
Result<boost::json::value> ParseJson(std::string_view text, std::string_view what);

// Member accessors that tolerate a missing member or a wrong type ("" / 0 / nullptr).
std::string JsonString(const boost::json::object& o, std::string_view key);
const boost::json::object* JsonObject(const boost::json::object& o, std::string_view key);
const boost::json::array* JsonArray(const boost::json::object& o, std::string_view key);
int64_t JsonInt(const boost::json::object& o, std::string_view key);

}  // namespace berth::client
