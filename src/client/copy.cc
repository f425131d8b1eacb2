#include "client/copy.h"

#include <atomic>
#include <set>
#include <thread>

#include "client/platform.h"
#include "oci/media_types.h"

namespace berth::client {
namespace {

bool NonDistributable(std::string_view media_type) {
  return media_type.find("nondistributable") != std::string_view::npos ||
         media_type.find(".foreign.") != std::string_view::npos;
}

std::string ShortDigest(const oci::Digest& d) {
  return std::string(d.algorithm_name()) + ":" + std::string(d.hex().substr(0, 12));
}

struct BlobJob {
  oci::Descriptor desc;
  bool is_config = false;
};

Status CopyBlobs(ImageSource& src, ImageDestination& dst, const std::vector<BlobJob>& jobs,
                 int parallel, Progress& progress, CopyReport& report) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (;;) {
      if (failed.load()) return;
      size_t i = next.fetch_add(1);
      if (i >= jobs.size()) return;
      const oci::Descriptor& d = jobs[i].desc;
      std::string id = d.digest.str();
      std::string label = (jobs[i].is_config ? "config " : "blob ") + ShortDigest(d.digest);
      progress.Begin(id, label, static_cast<uint64_t>(std::max<int64_t>(d.size, 0)));
      auto run = [&]() -> Result<std::string> {
        progress.Phase(id, "checking");
        BERTH_ASSIGN_OR_RETURN(bool has, dst.HasBlob(d));
        if (has) return std::string("exists");
        BERTH_ASSIGN_OR_RETURN(bool mounted, dst.TryMount(d, src));
        if (mounted) return std::string("mounted");
        progress.Phase(id, "reading");
        BERTH_ASSIGN_OR_RETURN(LocalBlob blob,
                               src.FetchBlob(d, [&](uint64_t n) { progress.Update(id, n); }));
        progress.Phase(id, "writing");
        BERTH_RETURN_IF_ERROR(dst.PutBlob(d, blob, [&](uint64_t n) { progress.Update(id, n); }));
        return std::string("done");
      };
      auto outcome = run();
      if (!outcome.ok()) {
        progress.End(id, "failed");
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = outcome.status();
        failed.store(true);
        return;
      }
      progress.End(id, *outcome);
      std::lock_guard lock(mu);
      if (*outcome == "exists") {
        ++report.blobs_skipped;
      } else if (*outcome == "mounted") {
        ++report.blobs_mounted;
      } else {
        ++report.blobs_sent;
        report.bytes_sent += static_cast<uint64_t>(std::max<int64_t>(d.size, 0));
      }
    }
  };
  int n = std::max(1, std::min<int>(parallel, static_cast<int>(jobs.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return first_error;
}

Result<std::vector<BlobJob>> BlobsOf(const std::vector<ManifestData>& images) {
  std::vector<BlobJob> out;
  std::set<std::string> seen;
  for (const auto& m : images) {
    BERTH_ASSIGN_OR_RETURN(oci::ParsedManifest pm, oci::ParseManifest(m.bytes, m.media_type));
    if (pm.kind != oci::ManifestKind::kImage) {
      return Status(Code::kUnsupported,
                    "manifest " + m.digest.str() + " is a nested index, which berth does not copy");
    }
    bool first = true;
    for (const auto& d : pm.blobs()) {
      bool is_config = first && pm.config.has_value();
      first = false;
      if (NonDistributable(d.media_type)) continue;
      if (!seen.insert(d.digest.str()).second) continue;
      out.push_back(BlobJob{d, is_config});
    }
  }
  return out;
}

}  // namespace

Status CopyChildren(ImageSource& src, ImageDestination& dst, const std::vector<ManifestData>& images,
                    int jobs, Progress& progress, CopyReport* report) {
  CopyReport local;
  CopyReport& r = report ? *report : local;
  BERTH_ASSIGN_OR_RETURN(std::vector<BlobJob> blobs, BlobsOf(images));
  BERTH_RETURN_IF_ERROR(CopyBlobs(src, dst, blobs, jobs, progress, r));
  for (const auto& m : images) {
    BERTH_RETURN_IF_ERROR(dst.PutManifest(m, false));
    ++r.images;
  }
  return Status::Ok();
}

Result<CopyReport> CopyImage(ImageSource& src, ImageDestination& dst, const CopyOptions& options,
                             Progress& progress) {
  CopyReport report;
  BERTH_ASSIGN_OR_RETURN(ManifestData top, src.GetManifest());
  BERTH_ASSIGN_OR_RETURN(oci::ParsedManifest parsed, oci::ParseManifest(top.bytes, top.media_type));
  std::vector<ManifestData> images;
  ManifestData tagged = top;  // what the destination name will point at
  bool write_index = false;
  if (parsed.kind == oci::ManifestKind::kIndex) {
    if (options.all) {
      if (!dst.SupportsIndex()) {
        return Status::InvalidArgument(dst.Describe() +
                                       " can hold a single image only: pass --platform os/arch "
                                       "instead of --all");
      }
      for (const auto& child : parsed.manifests) {
        if (!oci::IsManifestMediaType(child.media_type) && !child.media_type.empty()) {
          continue;  // artifacts of unknown types are skipped, like skopeo
        }
        BERTH_ASSIGN_OR_RETURN(ManifestData m, src.GetManifestByDigest(child));
        images.push_back(std::move(m));
      }
      write_index = true;
    } else {
      oci::Platform want = options.platform.value_or(HostPlatform());
      BERTH_ASSIGN_OR_RETURN(size_t idx, SelectPlatform(parsed.manifests, want));
      BERTH_ASSIGN_OR_RETURN(ManifestData m, src.GetManifestByDigest(parsed.manifests[idx]));
      progress.Line("Selected " +
                    PlatformString(parsed.manifests[idx].platform.value_or(oci::Platform{})) +
                    " image " + m.digest.str());
      tagged = m;
      images.push_back(std::move(m));
    }
  } else {
    images.push_back(top);
  }

  BERTH_ASSIGN_OR_RETURN(std::vector<BlobJob> blobs, BlobsOf(images));
  BERTH_RETURN_IF_ERROR(CopyBlobs(src, dst, blobs, options.jobs, progress, report));
  if (write_index) {
    for (const auto& m : images) {
      progress.Line("Writing manifest " + m.digest.str());
      BERTH_RETURN_IF_ERROR(dst.PutManifest(m, false));
    }
  }
  progress.Line("Writing " + std::string(write_index ? "manifest list " : "manifest ") +
                tagged.digest.str() + " to " + dst.Describe());
  BERTH_RETURN_IF_ERROR(dst.PutManifest(tagged, true));
  BERTH_RETURN_IF_ERROR(dst.Commit());
  src.Cleanup();
  report.digest = tagged.digest;
  report.media_type = tagged.media_type;
  report.images = images.size();
  return report;
}

}  // namespace berth::client
