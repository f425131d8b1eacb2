// `berth manifest create|annotate|inspect|push|rm`: docker's manifest-list workflow
// without a daemon. Local lists live where the docker CLI keeps them
// ($DOCKER_CONFIG/manifests/), so lists made by either tool work with the other.
#include <boost/json.hpp>
#include <cstdio>
#include <memory>

#include "cli/client.h"
#include "cli/client_common.h"
#include "client/copy.h"
#include "client/json_util.h"
#include "client/manifest_list.h"
#include "client/platform.h"
#include "client/transport_impl.h"
#include "oci/media_types.h"

namespace berth::cli {
namespace {

namespace json = boost::json;
using client::ImageName;
using client::ImageLocation;
using client::ListEntry;

client::ManifestListStore Store() {
  return client::ManifestListStore(client::DockerConfig::DefaultDir() / "manifests");
}

Result<ImageName> ParseName(std::string_view s) { return client::ParseImageName(s); }

// Docker's ImageManifest for one image: descriptor with the platform of its config.
Result<ListEntry> FetchEntry(client::ClientContext& ctx, const ImageName& name) {
  BERTH_ASSIGN_OR_RETURN(auto rc, ctx.Registry(name.ApiHost()));
  BERTH_ASSIGN_OR_RETURN(client::ManifestData m, rc->GetManifest(name.repository, name.Reference()));
  if (oci::IsIndexMediaType(m.media_type)) {
    return Status(Code::kFailedPrecondition,
                  name.String() + " is a manifest list: a list can only reference images");
  }
  BERTH_ASSIGN_OR_RETURN(oci::ParsedManifest pm, oci::ParseManifest(m.bytes, m.media_type));
  if (!pm.config) return Status(Code::kManifestInvalid, name.String() + " has no config");
  BERTH_ASSIGN_OR_RETURN(std::string config, rc->GetBlobBytes(name.repository, *pm.config));
  auto platform = client::PlatformFromConfig(config);
  if (!platform.ok()) {
    return Status(Code::kManifestInvalid, name.String() + ": " + platform.status().message());
  }
  ListEntry e;
  e.ref = name.String();
  e.descriptor.media_type = m.media_type;
  e.descriptor.digest = m.digest;
  e.descriptor.size = static_cast<int64_t>(m.bytes.size());
  e.descriptor.platform = *platform;
  e.raw = std::move(m.bytes);
  return e;
}

std::string PrettyRemote(std::string_view bytes) {
  auto v = client::ParseJson(bytes, "manifest");
  if (!v.ok()) return std::string(bytes);
  return client::GoJson(*v, "\t");
}

// ---------------------------------------------------------------------------

struct CreateFlags {
  ClientFlags client;
  bool amend = false;
  bool copy_children = false;
  std::string format;
  std::string list;
  std::vector<std::string> sources;
};

int RunCreate(const CreateFlags& f) {
  const char* cmd = "manifest create";
  auto list = ParseName(f.list);
  if (!list.ok()) return Fail(cmd, list.status());
  if (list->digest) {
    return Fail(cmd, Status::InvalidArgument("a manifest list is named by a tag, not a digest: " +
                                             f.list));
  }
  auto store = Store();
  std::string format = f.format;
  if (store.Exists(*list)) {
    if (!f.amend) {
      return Fail(cmd, Status(Code::kFailedPrecondition,
                              "refusing to amend an existing manifest list with no --amend flag"));
    }
    if (format.empty()) {
      auto old = store.Load(*list);
      if (old.ok() && !old->empty()) format = old->front().format;
    }
  }
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  std::vector<std::pair<ImageName, ListEntry>> entries;
  for (const auto& s : f.sources) {
    auto src = ParseName(s);
    if (!src.ok()) return Fail(cmd, src.status());
    if (src->registry != list->registry) {
      if (!f.copy_children) {
        return Fail(cmd, Status(Code::kFailedPrecondition,
                                "cannot use source images from a different registry than the "
                                "target image: " + src->registry + " != " + list->registry +
                                " (source " + src->String() +
                                "; pass --copy-children to copy it at push)"));
      }
    } else if (src->repository != list->repository && !f.copy_children) {
      return Fail(cmd, Status(Code::kFailedPrecondition,
                              "source " + src->String() + " is not in repository " + list->Name() +
                                  ": a manifest list may only reference images of its own "
                                  "repository (as in Amazon ECR); push the image to " +
                                  list->Name() + " first, or pass --copy-children to mount or "
                                  "copy it there when the list is pushed"));
    }
    auto e = FetchEntry(**ctx, *src);
    if (!e.ok()) return Fail(cmd, e.status());
    e->format = format;
    e->copy_child = src->registry != list->registry || src->repository != list->repository;
    entries.emplace_back(*src, std::move(*e));
  }
  // Write only after every source was checked: a refused source leaves no half list.
  if (store.Exists(*list)) {
    // Keep old entries' format consistent when --format changes on amend.
    auto old = store.Load(*list);
    if (old.ok() && !f.format.empty()) {
      for (auto& o : *old) {
        auto n = ParseName(o.ref);
        if (!n.ok()) continue;
        o.format = format;
        if (Status st = store.Put(*list, *n, o); !st.ok()) return Fail(cmd, st);
      }
    }
  }
  for (const auto& [name, e] : entries) {
    if (Status st = store.Put(*list, name, e); !st.ok()) return Fail(cmd, st);
  }
  std::printf("Created manifest list %s\n", list->String().c_str());
  return kExitOk;
}

// ---------------------------------------------------------------------------

struct AnnotateFlags {
  std::string list;
  std::string image;
  std::string os;
  std::string arch;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;
};

int RunAnnotate(const AnnotateFlags& f) {
  const char* cmd = "manifest annotate";
  auto list = ParseName(f.list);
  if (!list.ok()) return Fail(cmd, list.status());
  auto image = ParseName(f.image);
  if (!image.ok()) return Fail(cmd, image.status());
  auto store = Store();
  if (!store.Exists(*list)) return Fail(cmd, Status::NotFound("No such manifest: " + list->String()));
  auto file = store.EntryFile(*list, *image);
  if (!file.ok()) return Fail(cmd, file.status());
  auto entries = store.Load(*list);
  if (!entries.ok()) return Fail(cmd, entries.status());
  for (auto& e : *entries) {
    auto n = ParseName(e.ref);
    if (!n.ok() || n->String() != image->String()) continue;
    oci::Platform p = e.descriptor.platform.value_or(oci::Platform{});
    if (!f.os.empty()) p.os = f.os;
    if (!f.arch.empty()) p.architecture = f.arch;
    for (const auto& feat : f.os_features) {
      if (std::find(p.os_features.begin(), p.os_features.end(), feat) == p.os_features.end()) {
        p.os_features.push_back(feat);
      }
    }
    if (!f.variant.empty()) p.variant = f.variant;
    if (!f.os_version.empty()) p.os_version = f.os_version;
    if (!client::IsValidOsArch(p.os, p.architecture)) {
      return Fail(cmd, Status::InvalidArgument(
                           "manifest entry for image has unsupported os/arch combination: " +
                           f.os + "/" + f.arch));
    }
    e.descriptor.platform = p;
    if (Status st = store.Put(*list, *image, e); !st.ok()) return Fail(cmd, st);
    return kExitOk;
  }
  return Fail(cmd, Status::NotFound("manifest for image " + image->String() +
                                    " does not exist in " + list->String()));
}

// ---------------------------------------------------------------------------

struct InspectFlags {
  ClientFlags client;
  bool verbose = false;
  std::string ref;
};

int RunInspect(const InspectFlags& f) {
  const char* cmd = "manifest inspect";
  auto name = ParseName(f.ref);
  if (!name.ok()) return Fail(cmd, name.status());
  auto store = Store();
  if (!name->digest && store.Exists(*name)) {
    auto entries = store.Load(*name);
    if (!entries.ok()) return Fail(cmd, entries.status());
    if (f.verbose) {
      json::array a;
      for (const auto& e : *entries) a.push_back(client::EntryToJson(e));
      std::printf("%s\n", client::GoJson(a, "\t").c_str());
    } else {
      std::string format = entries->empty() ? "" : entries->front().format;
      std::printf("%s\n", client::BuildListJson(*entries, format, nullptr).c_str());
    }
    return kExitOk;
  }
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto rc = (*ctx)->Registry(name->ApiHost());
  if (!rc.ok()) return Fail(cmd, rc.status());
  auto m = (*rc)->GetManifest(name->repository, name->Reference());
  if (!m.ok()) return Fail(cmd, m.status());
  if (!f.verbose) {
    std::printf("%s\n", PrettyRemote(m->bytes).c_str());
    return kExitOk;
  }
  if (!oci::IsIndexMediaType(m->media_type)) {
    auto e = FetchEntry(**ctx, *name);
    if (!e.ok()) return Fail(cmd, e.status());
    std::printf("%s\n", client::GoJson(client::EntryToJson(*e), "\t").c_str());
    return kExitOk;
  }
  auto pm = oci::ParseManifest(m->bytes, m->media_type);
  if (!pm.ok()) return Fail(cmd, pm.status());
  json::array a;
  for (const auto& child : pm->manifests) {
    ImageName c = *name;
    c.tag.clear();
    c.digest = child.digest;
    auto cm = (*rc)->GetManifest(c.repository, child.digest.str());
    if (!cm.ok()) return Fail(cmd, cm.status());
    ListEntry e;
    e.ref = c.String();
    e.descriptor = child;
    e.descriptor.platform = child.platform.value_or(oci::Platform{});
    e.raw = cm->bytes;
    a.push_back(client::EntryToJson(e));
  }
  std::printf("%s\n", client::GoJson(a, "\t").c_str());
  return kExitOk;
}

// ---------------------------------------------------------------------------

struct PushFlags {
  ClientFlags client;
  bool purge = false;
  bool copy_children = false;
  int jobs = 4;
  std::string format;
  std::string list;
};

int RunPush(const PushFlags& f) {
  const char* cmd = "manifest push";
  auto list = ParseName(f.list);
  if (!list.ok()) return Fail(cmd, list.status());
  auto store = Store();
  auto entries = store.Load(*list);
  if (!entries.ok()) return Fail(cmd, entries.status());
  if (entries->empty()) {
    return Fail(cmd, Status(Code::kFailedPrecondition, "manifest list " + list->String() +
                                                           " has no images"));
  }
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  client::Progress progress(client::Progress::Detect(f.client.quiet));
  ImageLocation dst_loc;
  dst_loc.transport = client::Transport::kDocker;
  dst_loc.name = *list;
  dst_loc.has_name = true;
  auto dst = client::OpenRegistryDestination(dst_loc, **ctx);
  if (!dst.ok()) return Fail(cmd, dst.status());
  for (const auto& e : *entries) {
    auto src = ParseName(e.ref);
    if (!src.ok()) return Fail(cmd, src.status());
    bool foreign = src->registry != list->registry || src->repository != list->repository;
    if (!foreign) continue;
    if (!f.copy_children && !e.copy_child) {
      std::string why = src->registry != list->registry
                            ? "cannot use source images from a different registry than the "
                              "target image: " + src->registry + " != " + list->registry
                            : "source " + src->String() + " is not in repository " +
                                  list->Name() +
                                  ": a manifest list may only reference images of its own "
                                  "repository (as in Amazon ECR)";
      progress.Stop();
      return Fail(cmd, Status(Code::kFailedPrecondition,
                              why + "; pass --copy-children to mount or copy it there first"));
    }
    ImageLocation src_loc;
    src_loc.transport = client::Transport::kDocker;
    src_loc.name = *src;
    src_loc.has_name = true;
    auto source = client::OpenRegistrySource(src_loc, **ctx);
    if (!source.ok()) return Fail(cmd, source.status());
    client::ManifestData md;
    md.bytes = e.raw;
    md.media_type = e.descriptor.media_type;
    md.digest = e.descriptor.digest;
    progress.Line("Copying " + src->String() + " into " + list->Name());
    client::CopyReport report;
    if (Status st = client::CopyChildren(**source, **dst, {md}, f.jobs, progress, &report);
        !st.ok()) {
      progress.Stop();
      return Fail(cmd, st);
    }
    (*source)->Cleanup();
  }
  std::string format = f.format.empty() ? entries->front().format : f.format;
  std::string media_type;
  std::string body = client::BuildListJson(*entries, format, &media_type);
  auto rc = (*ctx)->Registry(list->ApiHost());
  if (!rc.ok()) return Fail(cmd, rc.status());
  auto digest = (*rc)->PutManifest(list->repository, list->tag, body, media_type);
  progress.Stop();
  if (!digest.ok()) return Fail(cmd, digest.status());
  std::printf("%s\n", digest->str().c_str());
  if (f.purge) {
    if (Status st = store.Remove(*list); !st.ok()) return Fail(cmd, st);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------

int RunRm(const std::vector<std::string>& lists) {
  auto store = Store();
  int rc = kExitOk;
  for (const auto& l : lists) {
    auto name = ParseName(l);
    if (!name.ok()) {
      rc = Fail("manifest rm", name.status());
      continue;
    }
    if (Status st = store.Remove(*name); !st.ok()) rc = Fail("manifest rm", st);
  }
  return rc;
}

}  // namespace

void AddManifestCommand(CLI::App& app) {
  CLI::App* m = app.add_subcommand(
      "manifest", "Manage manifest lists like `docker manifest`, without a daemon");
  m->footer(
      "Local lists are kept "
      "where the docker CLI keeps them ($DOCKER_CONFIG/manifests/<list>/<image>, default "
      "~/.docker/manifests), so docker and berth share them.");
  m->require_subcommand(1);

  auto cf = std::make_shared<CreateFlags>();
  CLI::App* create = m->add_subcommand(
      "create",
      "Create a local manifest list from images in the registry. Sources must be in the list's "
      "repository (the Amazon ECR rule) unless --copy-children is given");
  create->add_flag("-a,--amend", cf->amend, "Amend an existing manifest list");
  create->add_option("--format", cf->format, "List format: oci (OCI index) or docker (manifest "
                                             "list); default: oci when any image is OCI")
      ->check(CLI::IsMember({"oci", "docker"}));
  create->add_flag("--copy-children", cf->copy_children,
                   "Accept images from other repositories; push mounts or copies them into the "
                   "list's repository");
  create->add_option("list", cf->list, "The list, HOST/REPO:TAG")->required();
  create->add_option("sources", cf->sources, "Images (HOST/REPO:TAG or @DIGEST)")->required();
  AddClientFlags(create, cf->client);
  create->callback([cf] { Exit(RunCreate(*cf)); });

  auto af = std::make_shared<AnnotateFlags>();
  CLI::App* annotate = m->add_subcommand("annotate", "Set the platform of an image in a local list");
  annotate->add_option("list", af->list, "The list")->required();
  annotate->add_option("image", af->image, "The image in the list")->required();
  annotate->add_option("--os", af->os, "Operating system");
  annotate->add_option("--arch", af->arch, "Architecture");
  annotate->add_option("--variant", af->variant, "Architecture variant (v7, v8, ...)");
  annotate->add_option("--os-version", af->os_version, "Operating system version");
  annotate->add_option("--os-features", af->os_features, "Operating system features")
      ->delimiter(',')
      ->allow_extra_args(false);
  annotate->callback([af] { Exit(RunAnnotate(*af)); });

  auto inf = std::make_shared<InspectFlags>();
  CLI::App* inspect = m->add_subcommand(
      "inspect", "Show a local manifest list if one exists, else the manifest in the registry "
                 "(the size and digest of each entry)");
  inspect->add_flag("-v,--verbose", inf->verbose, "Show each image's manifest and platform");
  inspect->add_option("ref", inf->ref, "List or image")->required();
  AddClientFlags(inspect, inf->client);
  inspect->callback([inf] { Exit(RunInspect(*inf)); });

  auto pf = std::make_shared<PushFlags>();
  CLI::App* push = m->add_subcommand("push", "Push a local manifest list; prints its digest");
  push->add_flag("-p,--purge", pf->purge, "Remove the local list after pushing");
  push->add_flag("--copy-children", pf->copy_children,
                 "Mount (same registry) or copy images from other repositories into the list's "
                 "repository first");
  push->add_option("--format", pf->format, "Override the list format (oci or docker)")
      ->check(CLI::IsMember({"oci", "docker"}));
  push->add_option("-j,--jobs", pf->jobs, "Blobs copied in parallel (with --copy-children)")
      ->check(CLI::Range(1, 64));
  push->add_option("list", pf->list, "The list")->required();
  AddClientFlags(push, pf->client);
  push->callback([pf] { Exit(RunPush(*pf)); });

  auto lists = std::make_shared<std::vector<std::string>>();
  CLI::App* rm = m->add_subcommand("rm", "Delete local manifest lists");
  rm->add_option("lists", *lists, "Lists to delete")->required();
  rm->callback([lists] { Exit(RunRm(*lists)); });
}

}  // namespace berth::cli
