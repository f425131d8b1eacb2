// DescribeImages, ListImages, BatchGetImage, PutImage, BatchDeleteImage.
#include <algorithm>
#include <set>

#include "api/ecr/handlers.h"
#include "api/ecr/pagination.h"
#include "oci/reference.h"

namespace berth::api::ecr {
namespace {

constexpr std::string_view kTagStatuses[] = {"TAGGED", "UNTAGGED", "ANY"};
constexpr std::string_view kImageStatuses[] = {"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"};

// An imageIds entry as sent: either member may be empty.
struct ImageId {
  std::string digest;
  std::string tag;
};

// A per-image failure of the Batch* operations.
struct ImageFailure {
  std::string_view code;  // ImageFailureCode
  std::string reason;
};

Result<std::vector<ImageId>> DecodeImageIds(const Reader& in, bool required) {
  BERTH_ASSIGN_OR_RETURN(const json::array* list,
                         required ? in.List("imageIds", 1, 100) : in.OptList("imageIds", 1, 100));
  std::vector<ImageId> ids;
  for (size_t i = 0; list != nullptr && i < list->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Reader item, in.StructItem(*list, i, "imageIds"));
    BERTH_ASSIGN_OR_RETURN(auto digest, item.OptString("imageDigest"));
    BERTH_ASSIGN_OR_RETURN(auto tag, item.OptString("imageTag"));
    ids.push_back({digest.value_or(""), tag.value_or("")});
  }
  return ids;
}

// The reference an imageIds entry names (its digest when it has one), or why it is
// unusable.
std::variant<oci::Reference, ImageFailure> Classify(const ImageId& id) {
  if (id.digest.empty() && id.tag.empty()) {
    return ImageFailure{"MissingDigestAndTag",
                        "Invalid request parameters: both tag and digest cannot be null"};
  }
  if (!id.tag.empty() && (id.tag.size() > 300 || !oci::ValidateTag(id.tag).ok())) {
    return ImageFailure{"InvalidImageTag",
                        "Invalid request parameters: image tag should satisfy the regex "
                        "'[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'"};
  }
  if (!id.digest.empty()) {
    auto d = oci::Digest::Parse(id.digest);
    if (!d.ok()) {
      return ImageFailure{"InvalidImageDigest",
                          "Invalid request parameters: image digest should satisfy the regex "
                          "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+': " +
                              d.status().message()};
    }
    return oci::Reference{*d};
  }
  return oci::Reference{id.tag};
}

json::object FailureShape(const ImageId& id, const ImageFailure& f) {
  return json::object{{"imageId", ImageIdShape(id.digest, id.tag)},
                      {"failureCode", f.code},
                      {"failureReason", f.reason}};
}

json::object ImageDetailShape(const storage::ImageRecord& img, const std::string& account) {
  const storage::ManifestRecord& m = img.manifest;
  json::object d;
  d["registryId"] = account;
  d["repositoryName"] = m.repository;
  d["imageDigest"] = m.digest.str();
  if (!img.tags.empty()) {
    json::array tags;
    for (const auto& t : img.tags) tags.emplace_back(t);
    d["imageTags"] = std::move(tags);
  }
  d["imageSizeInBytes"] = m.image_size;
  d["imagePushedAt"] = Timestamp(m.pushed_at_ms);
  d["imageManifestMediaType"] = m.media_type;
  if (!m.artifact_type.empty()) d["artifactMediaType"] = m.artifact_type;
  if (img.last_pulled_at_ms > 0) d["lastRecordedPullTime"] = Timestamp(img.last_pulled_at_ms);
  if (m.subject) d["subjectManifestDigest"] = m.subject->str();
  d["imageStatus"] = "ACTIVE";
  return d;
}

json::object ImageShape(const std::string& account, const std::string& repo,
                        const oci::Digest& digest, std::string_view tag, std::string_view bytes,
                        std::string_view media_type) {
  return json::object{{"registryId", account},
                      {"repositoryName", repo},
                      {"imageId", ImageIdShape(digest.str(), tag)},
                      {"imageManifest", bytes},
                      {"imageManifestMediaType", media_type}};
}

struct ListingFilter {
  storage::TagFilter tags = storage::TagFilter::kAny;
  std::string tag_status = "ANY";
  bool none = false;  // an image status Berth never has (ARCHIVED, ACTIVATING)
};

Result<ListingFilter> DecodeFilter(const Reader& in) {
  ListingFilter f;
  BERTH_ASSIGN_OR_RETURN(auto filter, in.OptStruct("filter"));
  if (!filter) return f;
  BERTH_ASSIGN_OR_RETURN(auto tag_status, filter->OptEnum("tagStatus", kTagStatuses));
  BERTH_ASSIGN_OR_RETURN(auto image_status, filter->OptEnum("imageStatus", kImageStatuses));
  if (tag_status) {
    f.tag_status = *tag_status;
    f.tags = *tag_status == "TAGGED"     ? storage::TagFilter::kTagged
             : *tag_status == "UNTAGGED" ? storage::TagFilter::kUntagged
                                         : storage::TagFilter::kAny;
  }
  f.none = image_status && *image_status != "ACTIVE" && *image_status != "ANY";
  return f;
}

// DescribeImages with imageIds: every one must exist.
Output DescribeListedImages(Ctx& ctx, const std::string& repo, const std::vector<ImageId>& ids) {
  json::array details;
  std::set<std::string> seen;
  for (const ImageId& id : ids) {
    auto ref = Classify(id);
    if (auto* f = std::get_if<ImageFailure>(&ref)) {
      return Status(Code::kInvalidArgument, f->reason);
    }
    const oci::Reference& r = std::get<oci::Reference>(ref);
    oci::Digest digest;
    if (r.is_digest()) {
      digest = r.digest();
    } else {
      BERTH_ASSIGN_OR_RETURN(auto m, ctx.registry.GetImageManifest(ctx.account(), repo, r));
      digest = m.digest;
    }
    if (!id.tag.empty() && r.is_digest()) {
      // Both given: the tag must name that digest.
      BERTH_ASSIGN_OR_RETURN(
          auto m, ctx.registry.GetImageManifest(ctx.account(), repo, oci::Reference{id.tag}));
      if (m.digest != digest) {
        return Status(Code::kManifestUnknown, "The image with imageId {imageDigest:'" + id.digest +
                                                  "', imageTag:'" + id.tag +
                                                  "'} does not exist within the repository "
                                                  "with name '" +
                                                  repo + "'");
      }
    }
    if (!seen.insert(digest.str()).second) continue;
    BERTH_ASSIGN_OR_RETURN(auto img, ctx.registry.DescribeImage(ctx.account(), repo, digest));
    details.push_back(ImageDetailShape(img, ctx.account()));
  }
  return json::object{{"imageDetails", std::move(details)}};
}

}  // namespace

asio::awaitable<Output> DescribeImages(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::vector<ImageId> ids, DecodeImageIds(in, false));
    BERTH_ASSIGN_OR_RETURN(ListingFilter filter, DecodeFilter(in));
    if (in.Has("imageIds")) {
      if (in.Has("maxResults") || in.Has("nextToken")) {
        return InvalidMember("maxResults", "Member cannot be used together with imageIds");
      }
      return DescribeListedImages(ctx, repo, ids);
    }
    std::string scope = "DescribeImages:" + ctx.account() + ":" + repo + ":" + filter.tag_status;
    BERTH_ASSIGN_OR_RETURN(PageRequest page, DecodePage(in, scope, 100));
    std::string after = page.after.empty() ? std::string() : page.after.front();
    size_t want = filter.none ? 0 : page.limit + 1;
    BERTH_ASSIGN_OR_RETURN(auto images,
                           ctx.registry.ListImages(ctx.account(), repo, filter.tags, after, want));
    bool more = images.size() > page.limit;
    if (more) images.resize(page.limit);
    json::array details;
    for (const auto& img : images) details.push_back(ImageDetailShape(img, ctx.account()));
    json::object out{{"imageDetails", std::move(details)}};
    if (more) out["nextToken"] = EncodePageToken(scope, {images.back().manifest.digest.str()});
    return out;
  });
}

asio::awaitable<Output> ListImages(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(ListingFilter filter, DecodeFilter(in));
    std::string scope = "ListImages:" + ctx.account() + ":" + repo + ":" + filter.tag_status;
    BERTH_ASSIGN_OR_RETURN(PageRequest page, DecodePage(in, scope, 100));
    // One entry per tag of a tagged image, one per untagged image; the token is the
    // (digest, tag) of the last entry returned, so a page may end inside an image.
    struct Entry {
      std::string digest;
      std::string tag;
    };
    std::vector<Entry> entries;
    const size_t want = page.limit + 1;  // one more: is there a next page?
    auto emit = [&](const storage::ImageRecord& img, std::string_view after_tag) {
      if (img.tags.empty()) {
        if (after_tag.empty()) entries.push_back({img.manifest.digest.str(), ""});
        return;
      }
      for (const auto& t : img.tags) {
        if (entries.size() >= want) return;
        if (t > after_tag) entries.push_back({img.manifest.digest.str(), t});
      }
    };
    std::string after = page.after.empty() ? std::string() : page.after.front();
    std::string after_tag = page.after.size() > 1 ? page.after[1] : std::string();
    if (filter.none) {
      return json::object{{"imageIds", json::array()}};
    }
    if (!after.empty() && !after_tag.empty()) {
      auto digest = oci::Digest::Parse(after);
      if (!digest.ok())
        return InvalidMember("nextToken", "Member must be a token ListImages issued");
      auto img = ctx.registry.DescribeImage(ctx.account(), repo, *digest);
      if (img.ok()) {
        emit(*img, after_tag);
      } else if (!img.status().Is(Code::kManifestUnknown)) {
        return img.status();  // a vanished image just ends its entries
      }
    }
    while (entries.size() < want) {
      // Every image yields at least one entry: never ask for more than are missing.
      size_t asked = want - entries.size();
      BERTH_ASSIGN_OR_RETURN(
          auto images, ctx.registry.ListImages(ctx.account(), repo, filter.tags, after, asked));
      for (const auto& img : images) emit(img, "");
      if (images.size() < asked) break;
      after = images.back().manifest.digest.str();
    }
    bool more = entries.size() > page.limit;
    if (more) entries.resize(page.limit);
    json::array ids;
    for (const auto& e : entries) ids.push_back(ImageIdShape(e.digest, e.tag));
    json::object out{{"imageIds", std::move(ids)}};
    if (more)
      out["nextToken"] = EncodePageToken(scope, {entries.back().digest, entries.back().tag});
    return out;
  });
}

asio::awaitable<Output> BatchGetImage(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::vector<ImageId> ids, DecodeImageIds(in, true));
    BERTH_ASSIGN_OR_RETURN(const json::array* accepted, in.OptList("acceptedMediaTypes", 1, 100));
    std::set<std::string> accept;
    for (size_t i = 0; accepted != nullptr && i < accepted->size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(std::string mt, in.StringItem(*accepted, i, "acceptedMediaTypes"));
      accept.insert(std::move(mt));
    }
    BERTH_RETURN_IF_ERROR(ctx.registry.GetRepository(ctx.account(), repo).status());
    json::array images, failures;
    for (const ImageId& id : ids) {
      auto ref = Classify(id);
      if (auto* f = std::get_if<ImageFailure>(&ref)) {
        failures.push_back(FailureShape(id, *f));
        continue;
      }
      // By tag when there is one (its digest, if given, must match).
      oci::Reference r = id.tag.empty() ? std::get<oci::Reference>(ref) : oci::Reference{id.tag};
      auto m = ctx.registry.GetImageManifest(ctx.account(), repo, r);
      if (!m.ok()) {
        if (!m.status().Is(Code::kManifestUnknown)) return m.status();
        failures.push_back(FailureShape(id, {"ImageNotFound", "Requested image not found"}));
        continue;
      }
      if (!id.digest.empty() && m->digest.str() != id.digest) {
        failures.push_back(FailureShape(
            id, {"ImageTagDoesNotMatchDigest",
                 "Invalid request parameters: given tag does not map to given digest"}));
        continue;
      }
      if (!accept.empty() && !accept.contains(m->media_type)) {
        failures.push_back(FailureShape(
            id, {"ImageNotFound", "Requested image not found: its media type " + m->media_type +
                                      " is not one of acceptedMediaTypes"}));
        continue;
      }
      images.push_back(ImageShape(ctx.account(), repo, m->digest, id.tag, m->bytes, m->media_type));
    }
    return json::object{{"images", std::move(images)}, {"failures", std::move(failures)}};
  });
}

asio::awaitable<Output> PutImage(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    registry::PutImageRequest req;
    BERTH_ASSIGN_OR_RETURN(req.manifest, in.String("imageManifest", 1, 4 * 1024 * 1024));
    BERTH_ASSIGN_OR_RETURN(auto media_type, in.OptString("imageManifestMediaType"));
    BERTH_ASSIGN_OR_RETURN(auto tag, in.OptString("imageTag", 1, 300));
    if (tag) {
      if (Status st = oci::ValidateTag(*tag); !st.ok()) {
        return InvalidMember("imageTag", "Member must be a valid image tag (" + st.message() + ")");
      }
    }
    if (in.Has("imageDigest")) {
      BERTH_ASSIGN_OR_RETURN(req.digest, DigestMember(in, "imageDigest"));
    }
    if (!media_type) {
      // ECR: a manifest without a mediaType field needs imageManifestMediaType.
      std::error_code ec;
      json::value doc = json::parse(req.manifest, ec);
      if (!ec && doc.is_object() && !doc.get_object().contains("mediaType")) {
        return InvalidMember("imageManifestMediaType",
                             "Member must not be null when the manifest has no mediaType");
      }
    }
    req.media_type = media_type.value_or("");
    req.tag = tag.value_or("");
    BERTH_ASSIGN_OR_RETURN(auto put, ctx.registry.PutImage(ctx.account(), repo, req));
    return json::object{{"image", ImageShape(ctx.account(), repo, put.digest, req.tag, req.manifest,
                                             put.media_type)}};
  });
}

asio::awaitable<Output> BatchDeleteImage(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.Run([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::vector<ImageId> ids, DecodeImageIds(in, true));
    BERTH_RETURN_IF_ERROR(ctx.registry.GetRepository(ctx.account(), repo).status());
    json::array deleted, failures;
    const ImageFailure not_found{"ImageNotFound", "Requested image not found"};
    for (const ImageId& id : ids) {
      auto ref = Classify(id);
      if (auto* f = std::get_if<ImageFailure>(&ref)) {
        failures.push_back(FailureShape(id, *f));
        continue;
      }
      if (!id.tag.empty()) {
        // A tag: untag (the image goes with its last tag). With a digest, it must match.
        if (!id.digest.empty()) {
          auto m = ctx.registry.GetImageManifest(ctx.account(), repo, oci::Reference{id.tag});
          if (!m.ok()) {
            if (!m.status().Is(Code::kManifestUnknown)) return m.status();
            failures.push_back(FailureShape(id, not_found));
            continue;
          }
          if (m->digest.str() != id.digest) {
            failures.push_back(FailureShape(
                id, {"ImageTagDoesNotMatchDigest",
                     "Invalid request parameters: given tag does not map to given digest"}));
            continue;
          }
        }
        auto removed = ctx.registry.UntagImage(ctx.account(), repo, id.tag);
        if (!removed.ok()) {
          if (!removed.status().Is(Code::kManifestUnknown)) return removed.status();
          failures.push_back(FailureShape(id, not_found));
          continue;
        }
        deleted.push_back(ImageIdShape(removed->digest.str(), id.tag));
        continue;
      }
      // A digest: the image and all its tags.
      const oci::Digest& digest = std::get<oci::Reference>(ref).digest();
      auto tags = ctx.registry.DeleteImage(ctx.account(), repo, digest);
      if (!tags.ok()) {
        if (tags.status().Is(Code::kManifestUnknown)) {
          failures.push_back(FailureShape(id, not_found));
        } else if (tags.status().Is(Code::kManifestReferenced)) {
          failures.push_back(
              FailureShape(id, {"ImageReferencedByManifestList", tags.status().message()}));
        } else {
          return tags.status();
        }
        continue;
      }
      if (tags->empty()) deleted.push_back(ImageIdShape(digest.str(), ""));
      for (const auto& t : *tags) deleted.push_back(ImageIdShape(digest.str(), t));
    }
    return json::object{{"imageIds", std::move(deleted)}, {"failures", std::move(failures)}};
  });
}

}  // namespace berth::api::ecr
