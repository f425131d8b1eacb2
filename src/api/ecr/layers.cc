// BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart,
// CompleteLayerUpload, GetDownloadUrlForLayer: ECR's layer API over Berth's upload
// sessions (the same ones /v2 uploads use).
#include "api/ecr/download_url.h"
#include "base/base64.h"
#include "api/ecr/handlers.h"
#include "auth/crypto.h"
#include "storage/keys.h"

namespace berth::api::ecr {
namespace {

// What InitiateLayerUpload tells clients to send per part. Parts of any size are
// accepted; this is ECR's figure.
constexpr int64_t kPartSize = 10 * 1024 * 1024;
// The model's bound on one part (LayerPartBlob).
constexpr size_t kMaxPartBytes = 20 * 1024 * 1024;

// Upload ids are 32 hex characters; ECR shows them as UUIDs (8-4-4-4-12).
std::string ToUuid(std::string_view id) {
  std::string out;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += id[i];
  }
  return out;
}

// The upload id a client's uploadId names; an unusable one names no upload.
Result<std::string> FromUuid(std::string_view uuid) {
  std::string id;
  for (char c : uuid) {
    if (c == '-') continue;
    id += (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (!storage::IsValidUploadId(id)) {
    return Status(Code::kUploadUnknown,
                  "The upload with id '" + std::string(uuid.substr(0, 64)) + "' does not exist",
                  std::string(uuid.substr(0, 64)));
  }
  return id;
}

}  // namespace

asio::awaitable<Output> BatchCheckLayerAvailability(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.RunBlob([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(const json::array* digests, in.List("layerDigests", 1, 100));
    BERTH_RETURN_IF_ERROR(ctx.registry.GetRepository(ctx.account(), repo).status());
    json::array layers, failures;
    for (size_t i = 0; i < digests->size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(std::string text, in.StringItem(*digests, i, "layerDigests", 0, 1000));
      auto failure = [&](std::string_view code, std::string reason) {
        failures.push_back(json::object{
            {"layerDigest", text}, {"failureCode", code}, {"failureReason", std::move(reason)}});
      };
      auto digest = oci::Digest::Parse(text);
      if (!digest.ok()) {
        failure("InvalidLayerDigest", "Invalid layer digest: " + digest.status().message());
        continue;
      }
      auto blob = ctx.registry.StatBlob(repo, *digest);
      if (!blob.ok()) {
        if (!blob.status().Is(Code::kBlobUnknown)) return blob.status();
        failure("MissingLayerDigest", "Could not find the layer in the repository");
        continue;
      }
      layers.push_back(json::object{{"layerDigest", digest->str()},
                                    {"layerAvailability", "AVAILABLE"},
                                    {"layerSize", blob->size}});
    }
    return json::object{{"layers", std::move(layers)}, {"failures", std::move(failures)}};
  });
}

asio::awaitable<Output> InitiateLayerUpload(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.RunBlob([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_RETURN_IF_ERROR(ctx.registry.GetRepository(ctx.account(), repo).status());
    BERTH_ASSIGN_OR_RETURN(storage::UploadRecord upload, ctx.registry.StartUpload(repo));
    return json::object{{"uploadId", ToUuid(upload.id)}, {"partSize", kPartSize}};
  });
}

asio::awaitable<Output> UploadLayerPart(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.RunBlob([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::string upload_uuid, in.String("uploadId"));
    BERTH_ASSIGN_OR_RETURN(int64_t first, in.Integer("partFirstByte", 0, INT64_MAX));
    BERTH_ASSIGN_OR_RETURN(int64_t last, in.Integer("partLastByte", 0, INT64_MAX));
    BERTH_ASSIGN_OR_RETURN(std::string encoded, in.String("layerPartBlob"));
    auto part = Base64Decode(encoded);
    if (!part) return InvalidMember("layerPartBlob", "Member must be base64-encoded");
    if (part->size() > kMaxPartBytes) {
      return InvalidMember("layerPartBlob", "Member must have length less than or equal to " +
                                                std::to_string(kMaxPartBytes));
    }
    BERTH_ASSIGN_OR_RETURN(std::string id, FromUuid(upload_uuid));
    // last - first + 1 would overflow int64 for 0-INT64_MAX: add the 1 unsigned.
    if (last < first || static_cast<uint64_t>(last - first) + 1 != part->size()) {
      return Status(Code::kUploadInvalid, "The layer part spans bytes " + std::to_string(first) +
                                              "-" + std::to_string(last) + " but carries " +
                                              std::to_string(part->size()) + " bytes");
    }
    BERTH_ASSIGN_OR_RETURN(
        uint64_t size,
        ctx.registry.UploadLayerPart(ctx.account(), repo, id, static_cast<uint64_t>(first), *part));
    return json::object{{"registryId", ctx.account()},
                        {"repositoryName", repo},
                        {"uploadId", upload_uuid},
                        {"lastByteReceived", static_cast<int64_t>(size) - 1}};
  });
}

asio::awaitable<Output> CompleteLayerUpload(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.RunBlob([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(std::string upload_uuid, in.String("uploadId"));
    BERTH_ASSIGN_OR_RETURN(const json::array* list, in.List("layerDigests", 1, 100));
    std::vector<oci::Digest> digests;
    for (size_t i = 0; i < list->size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(std::string text, in.StringItem(*list, i, "layerDigests"));
      auto d = oci::Digest::Parse(text);
      if (!d.ok()) {
        return InvalidMember("layerDigests[" + std::to_string(i) + "]",
                             "Member must be a valid layer digest (" + d.status().message() + ")");
      }
      digests.push_back(*d);
    }
    BERTH_ASSIGN_OR_RETURN(std::string id, FromUuid(upload_uuid));
    BERTH_ASSIGN_OR_RETURN(storage::BlobRecord blob,
                           ctx.registry.CompleteLayerUpload(ctx.account(), repo, id, digests));
    return json::object{{"registryId", ctx.account()},
                        {"repositoryName", repo},
                        {"uploadId", upload_uuid},
                        {"layerDigest", blob.digest.str()}};
  });
}

asio::awaitable<Output> GetDownloadUrlForLayer(Ctx& ctx, const json::object& input) {
  co_return co_await ctx.pool.RunBlob([&]() -> Output {
    Reader in(input);
    BERTH_ASSIGN_OR_RETURN(std::string repo, RepositoryNameMember(in));
    BERTH_ASSIGN_OR_RETURN(oci::Digest digest, DigestMember(in, "layerDigest"));
    BERTH_RETURN_IF_ERROR(ctx.registry.GetRepository(ctx.account(), repo).status());
    auto blob = ctx.registry.StatBlob(repo, digest);
    if (!blob.ok()) {
      if (blob.status().Is(Code::kBlobUnknown)) {
        return Status(Code::kBlobUnknown,
                      "The layer with digest '" + digest.str() +
                          "' does not exist in the repository with name '" + repo +
                          "' in the registry with id '" + ctx.account() + "'",
                      digest.str());
      }
      return blob.status();
    }
    DownloadGrant grant{repo, digest,
                        ctx.clock.NowMillis() / 1000 + ctx.options.download_url_ttl_seconds};
    std::string url = ctx.options.public_url + std::string(kDownloadPathPrefix) +
                      SignDownloadToken(grant, ctx.options.download_url_key);
    return json::object{{"downloadUrl", std::move(url)}, {"layerDigest", digest.str()}};
  });
}

}  // namespace berth::api::ecr
