#include "client/platform.h"

#include <boost/json.hpp>
#include <utility>

#include "client/json_util.h"

namespace berth::client {
namespace {

std::string DefaultVariant(std::string_view arch) {
  if (arch == "arm64") return "v8";
  if (arch == "arm") return "v7";
  if (arch == "amd64") return "v1";
  return {};
}

std::string EffectiveVariant(const oci::Platform& p) {
  return p.variant.empty() ? DefaultVariant(p.architecture) : p.variant;
}

}  // namespace

oci::Platform NormalizePlatform(oci::Platform p) {
  for (char& c : p.os) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (p.os == "macos") p.os = "darwin";
  std::string& a = p.architecture;
  for (char& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (a == "i386") {
    a = "386";
    p.variant.clear();
  } else if (a == "x86_64" || a == "x86-64") {
    a = "amd64";
  } else if (a == "aarch64") {
    a = "arm64";
  } else if (a == "armhf") {
    a = "arm";
    p.variant = "v7";
  } else if (a == "armel") {
    a = "arm";
    p.variant = "v6";
  }
  if (!p.variant.empty() && std::isdigit(static_cast<unsigned char>(p.variant[0]))) {
    p.variant = "v" + p.variant;
  }
  if (a == "arm64" && p.variant == "v8") p.variant = "v8";
  return p;
}

Result<oci::Platform> ParsePlatform(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    auto slash = s.find('/', start);
    parts.emplace_back(s.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty())) {
    return Status::InvalidArgument("invalid platform \"" + std::string(s) +
                                   "\": expected os/arch[/variant], such as linux/arm64/v8");
  }
  oci::Platform p;
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return NormalizePlatform(std::move(p));
}

std::string PlatformString(const oci::Platform& p) {
  std::string s = p.os + "/" + p.architecture;
  if (!p.variant.empty()) s += "/" + p.variant;
  return s;
}

oci::Platform HostPlatform() {
  oci::Platform p;
  p.os = "linux";
#if defined(__x86_64__)
  p.architecture = "amd64";
#elif defined(__aarch64__)
  p.architecture = "arm64";
  p.variant = "v8";
#elif defined(__arm__)
  p.architecture = "arm";
  p.variant = "v7";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  p.architecture = "ppc64le";
#elif defined(__s390x__)
  p.architecture = "s390x";
#elif defined(__riscv)
  p.architecture = "riscv64";
#else
  p.architecture = "386";
#endif
  return p;
}

bool PlatformMatches(const oci::Platform& want_in, const oci::Platform& have_in) {
  oci::Platform want = NormalizePlatform(want_in);
  oci::Platform have = NormalizePlatform(have_in);
  if (want.os != have.os || want.architecture != have.architecture) return false;
  if (want.variant.empty()) return true;
  return EffectiveVariant(want) == EffectiveVariant(have);
}

Result<size_t> SelectPlatform(const std::vector<oci::Descriptor>& manifests,
                              const oci::Platform& want) {
  std::optional<size_t> best;
  int best_score = -1;
  for (size_t i = 0; i < manifests.size(); ++i) {
    const auto& d = manifests[i];
    if (!d.platform || !PlatformMatches(want, *d.platform)) continue;
    oci::Platform have = NormalizePlatform(*d.platform);
    int score = 1;
    if (!want.variant.empty() && have.variant == NormalizePlatform(want).variant) score = 2;
    if (want.variant.empty() && have.variant.empty()) score = 2;
    if (score > best_score) {
      best = i;
      best_score = score;
    }
  }
  if (best) return *best;
  std::string have;
  for (const auto& d : manifests) {
    if (!have.empty()) have += ", ";
    have += d.platform ? PlatformString(*d.platform) : "unknown";
  }
  return Status::NotFound("no image for platform " + PlatformString(want) +
                          " in the manifest list (it has: " + (have.empty() ? "none" : have) +
                          ")");
}

Result<oci::Platform> PlatformFromConfig(std::string_view config_json) {
  BERTH_ASSIGN_OR_RETURN(boost::json::value v, ParseJson(config_json, "image config"));
  if (!v.is_object()) return Status::InvalidArgument("image config: expected a JSON object");
  const auto& o = v.as_object();
  oci::Platform p;
  p.os = JsonString(o, "os");
  p.architecture = JsonString(o, "architecture");
  p.variant = JsonString(o, "variant");
  p.os_version = JsonString(o, "os.version");
  if (const auto* f = JsonArray(o, "os.features")) {
    for (const auto& e : *f) {
      if (e.is_string()) p.os_features.emplace_back(e.get_string());
    }
  }
  if (p.os.empty() || p.architecture.empty()) {
    return Status::InvalidArgument("image config has no os/architecture");
  }
  return p;
}

bool IsValidOsArch(std::string_view os, std::string_view arch) {
  static const std::pair<std::string_view, std::string_view> kValid[] = {
      {"aix", "ppc64"},      {"android", "386"},     {"android", "amd64"},
      {"android", "arm"},    {"android", "arm64"},   {"darwin", "amd64"},
      {"darwin", "arm64"},   {"dragonfly", "amd64"}, {"freebsd", "386"},
      {"freebsd", "amd64"},  {"freebsd", "arm"},     {"illumos", "amd64"},
      {"ios", "arm64"},      {"js", "wasm"},         {"linux", "386"},
      {"linux", "amd64"},    {"linux", "arm"},       {"linux", "arm64"},
      {"linux", "loong64"},  {"linux", "mips"},      {"linux", "mipsle"},
      {"linux", "mips64"},   {"linux", "mips64le"},  {"linux", "ppc64"},
      {"linux", "ppc64le"},  {"linux", "riscv64"},   {"linux", "s390x"},
      {"netbsd", "386"},     {"netbsd", "amd64"},    {"netbsd", "arm"},
      {"openbsd", "386"},    {"openbsd", "amd64"},   {"openbsd", "arm"},
      {"plan9", "386"},      {"plan9", "amd64"},     {"solaris", "amd64"},
      {"wasip1", "wasm"},    {"windows", "386"},     {"windows", "amd64"},
      {"windows", "arm"},    {"windows", "arm64"},
  };
  for (const auto& [o, a] : kValid) {
    if (o == os && a == arch) return true;
  }
  return false;
}

}  // namespace berth::client
