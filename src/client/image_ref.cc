#include "client/image_ref.h"

#include <cctype>

#include "oci/reference.h"

namespace berth::client {
namespace {

bool LooksLikeHost(std::string_view first) {
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost" || (first.starts_with("[") && first.ends_with("]"));
}

Status Invalid(std::string_view input, std::string_view why) {
  return Status::InvalidArgument("invalid image name \"" + std::string(input) + "\": " +
                                 std::string(why));
}

}  // namespace

std::string ImageName::String() const {
  std::string s = Name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string ImageName::ApiHost() const {
  if (registry == kDockerHub) return "registry-1.docker.io";
  return registry;
}

Result<ImageName> ParseImageName(std::string_view s, std::string_view default_tag) {
  std::string_view input = s;
  if (s.starts_with("docker://")) s.remove_prefix(9);
  if (s.empty()) return Invalid(input, "empty");
  ImageName out;
  if (auto at = s.find('@'); at != std::string_view::npos) {
    auto d = oci::Digest::Parse(s.substr(at + 1));
    if (!d.ok()) return Invalid(input, d.status().message());
    out.digest = *d;
    s = s.substr(0, at);
  }
  std::string_view rest = s;
  auto slash = s.find('/');
  if (slash != std::string_view::npos && LooksLikeHost(s.substr(0, slash))) {
    out.registry = std::string(s.substr(0, slash));
    rest = s.substr(slash + 1);
  } else {
    out.registry = std::string(kDockerHub);
  }
  if (out.registry == "index.docker.io") out.registry = std::string(kDockerHub);
  // The tag follows the last ':' of the path (a ':' in the host was consumed above).
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    out.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (Status st = oci::ValidateTag(out.tag); !st.ok()) return Invalid(input, st.message());
  }
  if (rest.empty()) return Invalid(input, "missing repository");
  for (char c : rest) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      return Invalid(input, "repository name must be lowercase");
    }
  }
  out.repository = std::string(rest);
  if (out.registry == kDockerHub && out.repository.find('/') == std::string::npos) {
    out.repository = "library/" + out.repository;
  }
  if (Status st = oci::ValidateRepositoryName(out.repository); !st.ok()) {
    return Invalid(input, st.message());
  }
  if (out.tag.empty() && !out.digest) out.tag = std::string(default_tag);
  return out;
}

Result<ImageName> ParseRepositoryName(std::string_view s) {
  if (s.starts_with("docker://")) s.remove_prefix(9);
  while (s.ends_with("/")) s.remove_suffix(1);
  auto slash = s.find('/');
  std::string_view first = s.substr(0, slash);
  if (slash == std::string_view::npos && LooksLikeHost(first)) {
    ImageName n;
    n.registry = std::string(first);
    return n;
  }
  return ParseImageName(s, "");
}

std::string ImageLocation::String() const {
  switch (transport) {
    case Transport::kDocker:
      return "docker://" + name.String();
    case Transport::kOciLayout:
      return "oci:" + path + (tag.empty() ? "" : ":" + tag);
    case Transport::kDockerArchive: {
      std::string s = "docker-archive:" + path;
      if (has_name) {
        std::string n = name.Name();
        if (name.registry == kDockerHub) {
          n = name.repository.starts_with("library/") ? name.repository.substr(8)
                                                      : name.repository;
        }
        s += ":" + n + (name.tag.empty() ? "" : ":" + name.tag);
      }
      return s;
    }
  }
  return {};
}

Result<ImageLocation> ParseImageLocation(std::string_view s, bool bare_is_docker) {
  ImageLocation loc;
  if (s.starts_with("docker://")) {
    loc.transport = Transport::kDocker;
    BERTH_ASSIGN_OR_RETURN(loc.name, ParseImageName(s.substr(9)));
    loc.has_name = true;
    return loc;
  }
  auto split_path = [](std::string_view rest, std::string& path, std::string& ref) {
    auto colon = rest.find(':');
    path = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) ref = std::string(rest.substr(colon + 1));
  };
  if (s.starts_with("oci:")) {
    loc.transport = Transport::kOciLayout;
    split_path(s.substr(4), loc.path, loc.tag);
    if (loc.path.empty()) return Status::InvalidArgument("oci: needs a directory: oci:DIR[:TAG]");
    if (!loc.tag.empty()) {
      // The OCI ref.name grammar is looser than docker tags; refuse only what would
      // break the index file.
      for (char c : loc.tag) {
        if (std::iscntrl(static_cast<unsigned char>(c)) || c == '/') {
          return Status::InvalidArgument("invalid tag in \"" + std::string(s) + "\"");
        }
      }
    }
    return loc;
  }
  if (s.starts_with("docker-archive:")) {
    loc.transport = Transport::kDockerArchive;
    std::string ref;
    split_path(s.substr(15), loc.path, ref);
    if (loc.path.empty()) {
      return Status::InvalidArgument("docker-archive: needs a file: docker-archive:FILE[:NAME:TAG]");
    }
    if (!ref.empty()) {
      BERTH_ASSIGN_OR_RETURN(loc.name, ParseImageName(ref));
      loc.has_name = true;
    }
    return loc;
  }
  for (std::string_view other : {"dir:", "oci-archive:", "containers-storage:", "docker-daemon:",
                                  "ostree:", "sif:", "tarball:"}) {
    if (s.starts_with(other)) {
      return Status::InvalidArgument("transport \"" + std::string(other.substr(0, other.size() - 1)) +
                                     "\" is not supported: use docker://, oci: or docker-archive:");
    }
  }
  if (!bare_is_docker) {
    return Status::InvalidArgument("\"" + std::string(s) +
                                   "\" has no transport: use docker://, oci: or docker-archive:");
  }
  BERTH_ASSIGN_OR_RETURN(loc.name, ParseImageName(s));
  loc.has_name = true;
  return loc;
}

std::string FileSafeName(std::string_view ref) {
  std::string out(ref);
  for (char& c : out) {
    if (c == ':') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

}  // namespace berth::client
