// `berth pack DIR`: a reproducible single-layer image from a directory.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/client.h"
#include "cli/client_common.h"
#include "client/copy.h"
#include "client/json_util.h"
#include "client/pack.h"
#include "client/platform.h"

namespace berth::cli {
namespace {

struct PackFlags {
  ClientFlags client;
  std::string dir;
  std::string platform;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::vector<std::string> labels;
  std::string workdir;
  std::string user;
  std::string format = "oci";
  std::string target;
  int64_t mtime = -1;
};

// '["a","b"]' → {a, b}; anything else is one argument.
Result<std::vector<std::string>> Args(const std::vector<std::string>& in, std::string_view flag) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    if (!s.empty() && s.front() == '[') {
      auto v = client::ParseJson(s, std::string(flag));
      if (!v.ok() || !v->is_array()) {
        return Status::InvalidArgument(std::string(flag) + ": expected a JSON array of strings");
      }
      for (const auto& e : v->as_array()) {
        if (!e.is_string()) {
          return Status::InvalidArgument(std::string(flag) + ": expected a JSON array of strings");
        }
        out.emplace_back(e.get_string());
      }
    } else {
      out.push_back(s);
    }
  }
  return out;
}

int RunPack(const PackFlags& f) {
  const char* cmd = "pack";
  client::PackOptions o;
  o.dir = f.dir;
  auto p = client::ParsePlatform(f.platform);
  if (!p.ok()) return Fail(cmd, p.status());
  o.platform = *p;
  auto ep = Args(f.entrypoint, "--entrypoint");
  if (!ep.ok()) return Fail(cmd, ep.status());
  o.entrypoint = *ep;
  auto c = Args(f.cmd, "--cmd");
  if (!c.ok()) return Fail(cmd, c.status());
  o.cmd = *c;
  o.env = f.env;
  for (const auto& l : f.labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(cmd, Status::InvalidArgument("invalid --label \"" + l + "\": expected KEY=VALUE"));
    }
    o.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  o.workdir = f.workdir;
  o.user = f.user;
  o.format = f.format;
  if (f.mtime >= 0) {
    o.mtime = f.mtime;
  } else if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde != nullptr && *sde) {
    o.mtime = std::strtoll(sde, nullptr, 10);
  }
  auto loc = client::ParseImageLocation(f.target);
  if (!loc.ok()) return Fail(cmd, loc.status());
  auto ctx = MakeContext(f.client, MakeRegistryOptions(f.client));
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto img = client::PackDirectory(o, (*ctx)->TempDir());
  if (!img.ok()) return Fail(cmd, img.status());
  std::filesystem::path layer = img->layer_path;
  std::filesystem::path config = img->config_path;
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove(layer, ec);
    std::filesystem::remove(config, ec);
  };
  auto src = client::NewPackedImageSource(*img);
  auto dst = client::OpenDestination(*loc, **ctx);
  if (!dst.ok()) {
    cleanup();
    return Fail(cmd, dst.status());
  }
  client::Progress progress(client::Progress::Detect(f.client.quiet));
  progress.Line("Packed " + f.dir + ": layer " + img->layer_digest.str() + " (" +
                client::HumanBytes(img->layer_size) + "), diff_id " + img->diff_id.str());
  client::CopyOptions copts;
  auto report = client::CopyImage(*src, **dst, copts, progress);
  progress.Stop();
  cleanup();
  if (!report.ok()) return Fail(cmd, report.status());
  std::printf("%s\n", report->digest.str().c_str());
  return kExitOk;
}

}  // namespace

void AddPackCommand(CLI::App& app) {
  auto f = std::make_shared<PackFlags>();
  CLI::App* cmd = app.add_subcommand(
      "pack", "Build a reproducible single-layer image from a directory");
  cmd->footer(
      "Sorted entries, fixed mtimes (SOURCE_DATE_EPOCH or 0), uid/gid 0, gzip without "
      "timestamp: the same input gives the same digest. Writes to docker://HOST/REPO:TAG or "
      "oci:DIR:TAG and prints the manifest digest.");
  cmd->add_option("dir", f->dir, "Directory to pack (becomes the image's /)")->required();
  cmd->add_option("--platform", f->platform, "os/arch[/variant] of the image")->required();
  cmd->add_option("--entrypoint", f->entrypoint,
                  "Entrypoint: a JSON array ('[\"/app\",\"-v\"]') or one argument (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--cmd", f->cmd, "Default arguments: a JSON array or one argument (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-e,--env", f->env, "Environment variable KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-l,--label", f->labels, "Label KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-w,--workdir", f->workdir, "Working directory");
  cmd->add_option("-u,--user", f->user, "User");
  cmd->add_option("--format", f->format, "Media types: oci (default) or docker")
      ->check(CLI::IsMember({"oci", "docker"}));
  cmd->add_option("--mtime", f->mtime, "Timestamp for all files (default $SOURCE_DATE_EPOCH or 0)");
  cmd->add_option("-t,--tag", f->target, "Destination: docker://HOST/REPO:TAG or oci:DIR:TAG")
      ->required();
  AddClientFlags(cmd, f->client);
  cmd->callback([f] { Exit(RunPack(*f)); });
}

}  // namespace berth::cli
