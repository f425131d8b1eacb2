// `berth inspect`, `berth tags`, `berth catalog`, `berth rm`.
#include <boost/json.hpp>
#include <cstdio>
#include <memory>

#include "cli/client.h"
#include "cli/client_common.h"
#include "client/json_util.h"
#include "client/platform.h"
#include "client/progress.h"
#include "oci/media_types.h"

namespace berth::cli {
namespace {

namespace json = boost::json;

struct InspectFlags {
  ClientFlags client;
  std::string ref;
  bool raw = false;
  bool config = false;
  bool json_out = false;
  std::string platform;
};

json::value StringsValue(const json::object* cfg, std::string_view key) {
  if (cfg == nullptr) return nullptr;
  auto it = cfg->find(key);
  if (it == cfg->end()) return nullptr;
  return it->value();
}

void PrintList(const char* title, const json::value& v) {
  if (!v.is_array() || v.as_array().empty()) return;
  std::printf("%s:\n", title);
  for (const auto& e : v.as_array()) {
    if (e.is_string()) std::printf("  %s\n", std::string(e.get_string()).c_str());
  }
}

int RunInspect(const InspectFlags& f) {
  const char* cmd = "inspect";
  auto loc = client::ParseImageLocation(f.ref);
  if (!loc.ok()) return Fail(cmd, loc.status());
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto src = client::OpenSource(*loc, **ctx);
  if (!src.ok()) return Fail(cmd, src.status());
  auto top = (*src)->GetManifest();
  if (!top.ok()) return Fail(cmd, top.status());
  client::ManifestData m = *top;
  auto pm = oci::ParseManifest(m.bytes, m.media_type);
  if (!pm.ok()) return Fail(cmd, pm.status());
  std::string name = loc->String();

  if (pm->kind == oci::ManifestKind::kIndex && (!f.platform.empty() || f.config)) {
    oci::Platform want = client::HostPlatform();
    if (!f.platform.empty()) {
      auto p = client::ParsePlatform(f.platform);
      if (!p.ok()) return Fail(cmd, p.status());
      want = *p;
    }
    auto idx = client::SelectPlatform(pm->manifests, want);
    if (!idx.ok()) return Fail(cmd, idx.status());
    auto child = (*src)->GetManifestByDigest(pm->manifests[*idx]);
    if (!child.ok()) return Fail(cmd, child.status());
    m = *child;
    pm = oci::ParseManifest(m.bytes, m.media_type);
    if (!pm.ok()) return Fail(cmd, pm.status());
  }
  if (f.raw) {
    std::fwrite(m.bytes.data(), 1, m.bytes.size(), stdout);
    return kExitOk;
  }
  if (pm->kind == oci::ManifestKind::kIndex) {
    json::array entries;
    for (const auto& d : pm->manifests) {
      json::object e;
      e["Platform"] = d.platform ? client::PlatformString(*d.platform) : "";
      e["Digest"] = d.digest.str();
      e["Size"] = d.size;
      e["MediaType"] = d.media_type;
      entries.push_back(std::move(e));
    }
    if (f.json_out) {
      json::object o;
      o["Name"] = name;
      o["Digest"] = m.digest.str();
      o["MediaType"] = m.media_type;
      o["Manifests"] = std::move(entries);
      std::printf("%s\n", client::GoJson(o, "    ").c_str());
      return kExitOk;
    }
    std::printf("Name:       %s\nDigest:     %s\nMediaType:  %s\nManifests:\n", name.c_str(),
                m.digest.str().c_str(), m.media_type.c_str());
    std::printf("  %-20s %-72s %8s  %s\n", "PLATFORM", "DIGEST", "SIZE", "MEDIA TYPE");
    for (const auto& d : pm->manifests) {
      std::printf("  %-20s %-72s %8lld  %s\n",
                  d.platform ? client::PlatformString(*d.platform).c_str() : "-",
                  d.digest.str().c_str(), static_cast<long long>(d.size), d.media_type.c_str());
    }
    return kExitOk;
  }
  if (!pm->config) return Fail(cmd, Status(Code::kManifestInvalid, "the image has no config"));
  auto config = (*src)->ReadBlob(*pm->config);
  if (!config.ok()) return Fail(cmd, config.status());
  if (f.config) {
    std::fwrite(config->data(), 1, config->size(), stdout);
    std::printf("\n");
    return kExitOk;
  }
  auto cv = client::ParseJson(*config, "image config");
  if (!cv.ok() || !cv->is_object()) return Fail(cmd, Status(Code::kManifestInvalid, "bad config"));
  const json::object& c = cv->as_object();
  const json::object* cc = client::JsonObject(c, "config");
  int64_t total = 0;
  json::array layers;
  for (const auto& l : pm->layers) {
    total += l.size;
    json::object lo;
    lo["MIMEType"] = l.media_type;
    lo["Digest"] = l.digest.str();
    lo["Size"] = l.size;
    layers.push_back(std::move(lo));
  }
  auto platform = client::PlatformFromConfig(*config);
  if (f.json_out) {
    json::object o;
    o["Name"] = name;
    o["Digest"] = m.digest.str();
    o["MediaType"] = m.media_type;
    o["Created"] = client::JsonString(c, "created");
    o["Architecture"] = client::JsonString(c, "architecture");
    o["Os"] = client::JsonString(c, "os");
    if (!client::JsonString(c, "variant").empty()) o["Variant"] = client::JsonString(c, "variant");
    o["Size"] = total;
    o["Config"] = pm->config->digest.str();
    o["LayersData"] = std::move(layers);
    o["Env"] = StringsValue(cc, "Env");
    o["Entrypoint"] = StringsValue(cc, "Entrypoint");
    o["Cmd"] = StringsValue(cc, "Cmd");
    o["Labels"] = StringsValue(cc, "Labels");
    std::printf("%s\n", client::GoJson(o, "    ").c_str());
    return kExitOk;
  }
  std::printf("Name:       %s\nDigest:     %s\nMediaType:  %s\n", name.c_str(),
              m.digest.str().c_str(), m.media_type.c_str());
  std::printf("Platform:   %s\nCreated:    %s\nConfig:     %s\nSize:       %s\n",
              platform.ok() ? client::PlatformString(*platform).c_str() : "unknown",
              client::JsonString(c, "created").c_str(), pm->config->digest.str().c_str(),
              client::HumanBytes(static_cast<uint64_t>(total)).c_str());
  std::printf("Layers:\n");
  for (const auto& l : pm->layers) {
    std::printf("  %s  %s\n", l.digest.str().c_str(),
                client::HumanBytes(static_cast<uint64_t>(l.size)).c_str());
  }
  PrintList("Entrypoint", StringsValue(cc, "Entrypoint"));
  PrintList("Cmd", StringsValue(cc, "Cmd"));
  PrintList("Env", StringsValue(cc, "Env"));
  return kExitOk;
}

struct ListFlags {
  ClientFlags client;
  std::string target;
  bool json_out = false;
};

int RunTags(const ListFlags& f) {
  const char* cmd = "tags";
  auto name = client::ParseRepositoryName(f.target);
  if (!name.ok()) return Fail(cmd, name.status());
  if (name->repository.empty()) {
    return Fail(cmd, Status::InvalidArgument("expected HOST/REPOSITORY, got " + f.target));
  }
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto rc = (*ctx)->Registry(name->ApiHost());
  if (!rc.ok()) return Fail(cmd, rc.status());
  auto tags = (*rc)->ListTags(name->repository);
  if (!tags.ok()) return Fail(cmd, tags.status());
  if (f.json_out) {
    json::object o;
    o["Repository"] = name->Name();
    json::array a;
    for (const auto& t : *tags) a.push_back(json::value(t));
    o["Tags"] = std::move(a);
    std::printf("%s\n", client::GoJson(o, "    ").c_str());
  } else {
    for (const auto& t : *tags) std::printf("%s\n", t.c_str());
  }
  return kExitOk;
}

int RunCatalog(const ListFlags& f) {
  const char* cmd = "catalog";
  std::string host = f.target;
  if (host.starts_with("docker://")) host = host.substr(9);
  while (host.ends_with("/")) host.pop_back();
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto rc = (*ctx)->Registry(host == client::kDockerHub ? "registry-1.docker.io" : host);
  if (!rc.ok()) return Fail(cmd, rc.status());
  auto repos = (*rc)->Catalog();
  if (!repos.ok()) return Fail(cmd, repos.status());
  if (f.json_out) {
    json::object o;
    json::array a;
    for (const auto& r : *repos) a.push_back(json::value(r));
    o["Repositories"] = std::move(a);
    std::printf("%s\n", client::GoJson(o, "    ").c_str());
  } else {
    for (const auto& r : *repos) std::printf("%s\n", r.c_str());
  }
  return kExitOk;
}

int RunRm(const ListFlags& f) {
  const char* cmd = "rm";
  auto name = client::ParseImageName(f.target.starts_with("docker://") ? f.target.substr(9)
                                                                      : f.target);
  if (!name.ok()) return Fail(cmd, name.status());
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto rc = (*ctx)->Registry(name->ApiHost());
  if (!rc.ok()) return Fail(cmd, rc.status());
  oci::Digest digest;
  if (name->digest) {
    digest = *name->digest;
  } else {
    auto d = (*rc)->HeadManifest(name->repository, name->tag);
    if (!d.ok()) return Fail(cmd, d.status());
    if (!*d) return Fail(cmd, Status(Code::kManifestUnknown, "no such manifest: " + name->String()));
    digest = (*d)->digest;
  }
  if (Status st = (*rc)->DeleteManifest(name->repository, digest); !st.ok()) return Fail(cmd, st);
  std::printf("Deleted %s\n", digest.str().c_str());
  return kExitOk;
}

}  // namespace

void AddInspectCommand(CLI::App& app) {
  auto f = std::make_shared<InspectFlags>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show an image or manifest list (docker://, oci:, docker-archive:)");
  cmd->add_option("ref", f->ref, "Image: [docker://]HOST/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE")
      ->required();
  cmd->add_flag("--raw", f->raw, "Print the manifest bytes exactly as stored");
  cmd->add_flag("--config", f->config, "Print the image config");
  cmd->add_option("--platform", f->platform, "For a list: inspect this platform's image");
  cmd->add_flag("--json", f->json_out, "JSON output");
  AddClientFlags(cmd, f->client);
  cmd->callback([f] { Exit(RunInspect(*f)); });

  auto tf = std::make_shared<ListFlags>();
  CLI::App* tags = app.add_subcommand("tags", "List the tags of a repository");
  tags->add_option("repository", tf->target, "HOST/REPOSITORY")->required();
  tags->add_flag("--json", tf->json_out, "JSON output");
  AddClientFlags(tags, tf->client);
  tags->callback([tf] { Exit(RunTags(*tf)); });

  auto cf = std::make_shared<ListFlags>();
  CLI::App* catalog = app.add_subcommand("catalog", "List the repositories of a registry");
  catalog->add_option("host", cf->target, "HOST[:PORT]")->required();
  catalog->add_flag("--json", cf->json_out, "JSON output");
  AddClientFlags(catalog, cf->client);
  catalog->callback([cf] { Exit(RunCatalog(*cf)); });

  auto rf = std::make_shared<ListFlags>();
  CLI::App* rm = app.add_subcommand(
      "rm", "Delete a manifest from a registry (a tag is resolved to its digest first)");
  rm->add_option("ref", rf->target, "HOST/REPO:TAG or HOST/REPO@DIGEST")->required();
  AddClientFlags(rm, rf->client);
  rm->callback([rf] { Exit(RunRm(*rf)); });
}

void AddClientCommands(CLI::App& app) {
  AddLoginCommand(app);
  AddManifestCommand(app);
  AddCopyCommand(app);
  AddPackCommand(app);
  AddInspectCommand(app);
  AddEcrCommand(app);
}

}  // namespace berth::cli
