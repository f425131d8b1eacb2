// `berth copy SRC DST`: images between registries (docker://), OCI layouts (oci:) and
// docker-archive tarballs, digest-preserving, with parallel and resumable uploads.
#include <cstdio>
#include <memory>

#include "cli/client.h"
#include "cli/client_common.h"
#include "client/copy.h"
#include "client/platform.h"

namespace berth::cli {
namespace {

struct CopyFlags {
  ClientFlags client;
  std::string src;
  std::string dst;
  bool all = false;
  std::string platform;
  int jobs = 4;
  uint64_t chunk_mib = 32;
  int retries = 5;
  double limit_mib = 0;
};

int RunCopy(const CopyFlags& f) {
  const char* cmd = "copy";
  auto src_loc = client::ParseImageLocation(f.src);
  if (!src_loc.ok()) return Fail(cmd, src_loc.status());
  auto dst_loc = client::ParseImageLocation(f.dst);
  if (!dst_loc.ok()) return Fail(cmd, dst_loc.status());
  client::CopyOptions opts;
  opts.all = f.all;
  opts.jobs = f.jobs;
  if (!f.platform.empty()) {
    auto p = client::ParsePlatform(f.platform);
    if (!p.ok()) return Fail(cmd, p.status());
    opts.platform = *p;
  }
  client::RegistryOptions ro = MakeRegistryOptions(f.client);
  ro.chunk_size = f.chunk_mib * client::kMiB;
  ro.max_attempts = std::max(1, f.retries);
  ro.transport.max_send_bytes_per_second = static_cast<int64_t>(f.limit_mib * client::kMiB);
  auto ctx = MakeContext(f.client, ro);
  if (!ctx.ok()) return Fail(cmd, ctx.status());
  auto src = client::OpenSource(*src_loc, **ctx);
  if (!src.ok()) return Fail(cmd, src.status());
  auto dst = client::OpenDestination(*dst_loc, **ctx);
  if (!dst.ok()) return Fail(cmd, dst.status());
  client::Progress progress(client::Progress::Detect(f.client.quiet));
  progress.Line("Copying " + (*src)->Describe() + " to " + (*dst)->Describe());
  auto report = client::CopyImage(**src, **dst, opts, progress);
  progress.Stop();
  if (!report.ok()) return Fail(cmd, report.status());
  if (!f.client.quiet) {
    std::fprintf(stderr,
                 "Copied %zu image(s): %zu blob(s) sent (%s), %zu already present, %zu mounted\n",
                 report->images, report->blobs_sent,
                 client::HumanBytes(report->bytes_sent).c_str(), report->blobs_skipped,
                 report->blobs_mounted);
  }
  std::printf("%s\n", report->digest.str().c_str());
  return kExitOk;
}

}  // namespace

void AddCopyCommand(CLI::App& app) {
  auto f = std::make_shared<CopyFlags>();
  CLI::App* cmd = app.add_subcommand(
      "copy", "Copy an image or manifest list between registries, OCI layouts and docker archives");
  cmd->footer(
      "Transports: docker://HOST/REPO:TAG, oci:DIR[:TAG], docker-archive:FILE[:NAME:TAG]. "
      "Manifests are copied byte for byte (digests preserved; "
      "docker-archive keeps the config and diff_ids). Blobs the destination has are skipped, "
      "blobs in another repository of the same registry are mounted, layers go in parallel, "
      "large layers in chunks; an interrupted copy resumes from the registry's upload offset "
      "(state in $XDG_CACHE_HOME/berth/uploads). Prints the digest of the copied manifest");
  cmd->add_option("src", f->src, "Source")->required();
  cmd->add_option("dst", f->dst, "Destination")->required();
  auto* all = cmd->add_flag("-a,--all", f->all, "Copy every image of a manifest list");
  cmd->add_option("--platform", f->platform,
                  "Copy only this image of a list: os/arch[/variant] (default: this machine's)")
      ->excludes(all);
  cmd->add_option("-j,--jobs", f->jobs, "Blobs copied in parallel (default 4)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--chunk-size", f->chunk_mib,
                  "Upload blobs larger than this many MiB in chunks of this size (default 32)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--retries", f->retries, "Attempts per request on transient errors (default 5)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--limit-rate", f->limit_mib,
                  "Cap the upload rate of each blob transfer, in MiB/s (default: no cap)")
      ->check(CLI::NonNegativeNumber);
  AddClientFlags(cmd, f->client);
  cmd->callback([f] { Exit(RunCopy(*f)); });
}

}  // namespace berth::cli
