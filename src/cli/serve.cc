#include "cli/serve.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "api/app.h"
#include "base/aligned_buffer.h"
#include "api/distribution/api.h"
#include "api/distribution/errors.h"
#include "api/authn.h"
#include "api/ecr/api.h"
#include "api/ecr/download_url.h"
#include "auth/identity_store.h"
#include "auth/shared_documents.h"
#include "auth/token.h"
#include "auth/crypto.h"
#include "cli/run_app.h"
#include "cli/storage_setup.h"
#include "config/config.h"
#include "http/blocking.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "registry/registry.h"

namespace berth::cli {
namespace {

namespace asio = boost::asio;

struct ServeFlags {
  std::string config_file;
  std::string listen;
  std::string data_dir;
  bool create_on_push = false;
  bool no_auth = false;
};

int Fail(const Status& st) {
  std::fprintf(stderr, "berth serve: %s\n", st.message().c_str());
  return 2;
}

// One server per data directory. SQLite would let two processes share meta.db, but
// the registry's manifest cache is invalidated only by writes made in this process
// (MetadataStore::ReadEpoch), so a second server would serve stale tags. The lock is
// an flock on <data>/serve.lock, held for the life of the process (the kernel drops it
// when the process dies, however it dies); the file records the holder's pid.
Status LockDataDir(const std::filesystem::path& data) {
  std::string path = (data / "serve.lock").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd);
    if (err != EWOULDBLOCK) return Status::FromErrno("lock " + path, err);
    return Status::FailedPrecondition("data directory " + data.string() +
                                      " is in use by another berth serve (pid " + pid +
                                      "); stop it, or give this one another --data");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    spdlog::warn("cannot record pid in {}", path);
  }
  return Status::Ok();  // fd stays open: the lock lives as long as the process
}

int RunServe(const ServeFlags& flags) {
  // glibc gives each thread that allocates its own arena (up to 8 per core), and freed
  // memory stays in the arena it came from: with 2 I/O threads, 16 blocking threads and
  // the checkpointer, that fragmentation showed as several MiB of RSS. Two arenas are
  // plenty for a server whose hot paths allocate little.
  mallopt(M_ARENA_MAX, 2);
  config::Config cfg;
  if (!flags.config_file.empty()) {
    if (Status st = config::LoadYamlFile(flags.config_file, cfg); !st.ok()) return Fail(st);
  }
  if (Status st = config::ApplyEnvironment(config::BerthEnvironment(), cfg); !st.ok()) {
    return Fail(st);
  }
  if (!flags.listen.empty()) cfg.listen = flags.listen;
  if (!flags.data_dir.empty()) cfg.data_dir = flags.data_dir;
  if (flags.create_on_push) cfg.create_on_push = true;
  if (flags.no_auth) cfg.auth.enabled = false;
  if (Status st = config::Validate(cfg); !st.ok()) return Fail(st);

  // Logging is asynchronous: request threads format a line and hand it to one writer
  // thread, so a slow terminal or pipe never stalls request handling. The queue blocks
  // when full rather than dropping lines.
  spdlog::init_thread_pool(8192, 1);
  auto logger = std::make_shared<spdlog::async_logger>(
      "berth", std::make_shared<spdlog::sinks::stderr_sink_mt>(), spdlog::thread_pool(),
      spdlog::async_overflow_policy::block);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(spdlog::level::from_str(cfg.log.level));

  std::error_code ec;
  std::filesystem::path data(cfg.data_dir);
  std::filesystem::create_directories(data, ec);
  if (ec) {
    return Fail(Status::IoError("cannot create data directory " + cfg.data_dir + ": " +
                                ec.message()));
  }
  if (Status st = LockDataDir(data); !st.ok()) return Fail(st);
  auto stores = OpenStores(cfg, data);
  if (!stores.ok()) return Fail(stores.status());
  storage::BlobStore* blobs = stores->blobs.get();
  storage::MetadataStore* meta = stores->meta.get();

  registry::Options ropts;
  ropts.create_on_push = cfg.create_on_push;
  ropts.max_manifest_bytes = cfg.limits.max_manifest_bytes;
  ropts.upload_expiry_ms = cfg.uploads.expiry_seconds * 1000;
  ropts.upload_lease_ms = cfg.uploads.lease_seconds * 1000;
  ropts.account_id = cfg.ecr.account_id;
  ropts.manifest_cache_bytes = cfg.cache.manifest_bytes;
  registry::Registry reg(*blobs, *meta, Clock::Real(), ropts);
  if (Status st = reg.AdoptUnownedRepositories(); !st.ok()) return Fail(st);

  int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  http::BlockingPool pool(cfg.http.blocking_threads,
                          cfg.http.read_threads > 0 ? cfg.http.read_threads : cores,
                          cfg.http.blob_threads);
  metrics::Metrics metrics;
  api::distribution::ApiOptions aopts;
  aopts.max_manifest_bytes = cfg.limits.max_manifest_bytes;
  api::distribution::DistributionApi api(reg, pool, metrics, aopts);

  http::ServerOptions sopts;
  auto colon = cfg.listen.rfind(':');
  sopts.host = cfg.listen.substr(0, colon);
  if (sopts.host.size() >= 2 && sopts.host.front() == '[') {
    sopts.host = sopts.host.substr(1, sopts.host.size() - 2);
  }
  try {
    sopts.port = static_cast<uint16_t>(std::stoi(cfg.listen.substr(colon + 1)));
  } catch (...) {
    return Fail(Status::InvalidArgument("listen: bad port in '" + cfg.listen + "'"));
  }
  sopts.io_threads = cfg.http.io_threads > 0 ? cfg.http.io_threads : cores;
  sopts.idle_timeout_seconds = cfg.http.idle_timeout_seconds;
  sopts.read_timeout_seconds = cfg.http.read_timeout_seconds;
  sopts.header_timeout_seconds = cfg.http.header_timeout_seconds;
  sopts.max_header_bytes = cfg.http.max_header_bytes;
  sopts.tls_cert = cfg.tls.cert;
  sopts.tls_key = cfg.tls.key;
  sopts.access_log = cfg.log.access_log;
  sopts.redacted_path_prefixes = {std::string(api::ecr::kDownloadPathPrefix)};
  sopts.error_response = api::App::ProtocolError;
  sopts.run_blocking_read = [&pool](std::function<Result<size_t>()> read) {
    return pool.RunBlob(std::move(read));
  };
  // The App (both APIs behind one entry point) is built once the port is bound: the
  // ECR API's public URL may name it. No request is served before Run().
  std::unique_ptr<api::App> app;
  http::Server server(
      sopts, [&app](http::Request& req) { return app->Handle(req); }, metrics);
  auto port = server.Listen();
  if (!port.ok()) return Fail(port.status());
  api::ecr::EcrOptions eopts;
  eopts.default_account_id = cfg.ecr.account_id;
  eopts.region = cfg.ecr.region;
  eopts.public_url = config::PublicUrl(cfg, *port);
  eopts.download_url_ttl_seconds = cfg.ecr.download_url_ttl_seconds;
  // Secrets and identities: in DATA (identities.json, token.key) on the embedded
  // default; in the shared metadata store when several nodes share one, so that a key
  // created anywhere, a token minted anywhere and a rotation reach every node.
  std::unique_ptr<auth::SharedDocuments> shared_docs;
  if (cfg.storage.metadata.type != "sqlite") {
    shared_docs = std::make_unique<auth::SettingsDocuments<storage::MetadataStore>>(*meta);
  }
  if (!cfg.ecr.download_url_secret.empty()) {
    eopts.download_url_key = cfg.ecr.download_url_secret;
  } else if (shared_docs) {
    auto secret = auth::SharedSecret(*shared_docs, auth::kDownloadUrlSecretName, 32);
    if (!secret.ok()) return Fail(secret.status());
    eopts.download_url_key = *secret;
  } else {
    eopts.download_url_key = auth::RandomBytes(32);
  }
  std::unique_ptr<auth::IdentityStore> identities;
  std::unique_ptr<auth::TokenKeySource> token_keys;
  api::AuthOptions auth_opts;
  auth_opts.enabled = cfg.auth.enabled;
  auth_opts.region = cfg.ecr.region;
  auth_opts.realm = eopts.public_url + "/";
  auth_opts.token_ttl_seconds = cfg.auth.token_ttl_seconds;
  if (cfg.auth.enabled) {
    Result<bool> created = shared_docs
                               ? auth::EnsureSharedAdministrator(*shared_docs, data, cfg.ecr.account_id)
                               : auth::EnsureAdministrator(data, cfg.ecr.account_id);
    if (!created.ok()) return Fail(created.status());
    if (*created) {
      std::printf("berth: created an administrator access key for account %s in %s "
                  "(AWS shared-credentials format, profile default)\n",
                  cfg.ecr.account_id.c_str(), (data / auth::kCredentialsFileName).c_str());
    }
    auto store = shared_docs ? auth::OpenSharedIdentityStore(*shared_docs)
                             : auth::OpenFileIdentityStore(data / auth::kIdentitiesFileName);
    if (!store.ok()) return Fail(store.status());
    identities = std::move(*store);
    if (shared_docs) {
      auto keys = auth::OpenSharedTokenKey(*shared_docs);
      if (!keys.ok()) return Fail(keys.status());
      token_keys = std::move(*keys);
    } else {
      auto keys = auth::TokenKeyFile::Open(data / "token.key");
      if (!keys.ok()) return Fail(keys.status());
      token_keys = std::move(*keys);
    }
  } else {
    std::fprintf(stderr,
                 "berth serve: WARNING: authentication is OFF (--no-auth): anyone who can "
                 "reach %s can read, push and delete everything. Use only for throwaway "
                 "local registries.\n",
                 cfg.listen.c_str());
  }
  api::Authenticator authn(identities.get(), token_keys.get(), Clock::Real(), auth_opts);
  eopts.token_minter = [&authn](const auth::Caller& caller) { return authn.MintToken(caller); };
  api::ecr::EcrApi ecr(reg, pool, Clock::Real(), std::move(eopts));
  app = std::make_unique<api::App>(api, ecr, authn, reg, pool);

  // Pull times are noted in memory and written in batches (ECR's lastRecordedPullTime).
  auto flush_pulls = [&]() -> asio::awaitable<void> {
    Status st = co_await pool.Run([&] { return reg.FlushPulls(); });
    if (!st.ok()) spdlog::error("pull time flush failed error=\"{}\"", st.ToString());
  };
  server.Every(cfg.ecr.pull_time_flush_seconds, flush_pulls);

  // Sweep stale upload sessions now (a restart may have left some) and periodically.
  auto sweep = [&]() -> asio::awaitable<void> {
    auto n = co_await pool.RunBlob([&] { return reg.SweepStaleUploads(); });
    if (!n.ok()) {
      spdlog::error("upload sweep failed error=\"{}\"", n.status().ToString());
    } else if (*n > 0) {
      spdlog::info("expired upload sessions removed count={}", *n);
    }
  };
  asio::co_spawn(server.executor(), sweep, asio::detached);
  server.Every(cfg.uploads.sweep_interval_seconds, sweep);

  // Hand memory freed after a burst (upload blocks, response buffers, SQLite pages)
  // back to the kernel: malloc keeps the top of each arena otherwise, and the server's
  // resident size would stay at its peak.
  server.Every(10, [&]() -> asio::awaitable<void> {
    co_await pool.Run([] {
      IoBuffer::ReleaseIdle();
      return malloc_trim(0);
    });
  });

  std::string shown_host = sopts.host == "0.0.0.0" || sopts.host == "::" ? "localhost" : sopts.host;
  if (shown_host.find(':') != std::string::npos) shown_host = "[" + shown_host + "]";
  std::printf("berth listening on %s://%s:%u\n", cfg.tls.enabled() ? "https" : "http",
              shown_host.c_str(), static_cast<unsigned>(*port));
  std::fflush(stdout);
  spdlog::info(
      "serving listen={} port={} data_dir={} storage=\"{}\" create_on_push={} tls={} "
      "io_threads={}",
      cfg.listen, *port, cfg.data_dir, stores->description, cfg.create_on_push,
      cfg.tls.enabled(), sopts.io_threads);
  server.Run();
  if (Status st = reg.FlushPulls(); !st.ok()) {
    spdlog::error("pull time flush failed error=\"{}\"", st.ToString());
  }
  pool.Stop();
  spdlog::info("stopped");
  spdlog::shutdown();  // flush the async queue before exit
  return 0;
}

}  // namespace

void ConfigureServeCommand(CLI::App& cmd) {
  auto flags = std::make_shared<ServeFlags>();
  cmd.add_option("--config", flags->config_file, "YAML configuration file");
  cmd.add_option("--listen", flags->listen, "HOST:PORT to listen on (default 0.0.0.0:5000)");
  cmd.add_option("--data", flags->data_dir, "Data directory (default ./berth-data)");
  cmd.add_flag("--no-auth", flags->no_auth,
               "Disable authentication (throwaway local use only: anyone can push and delete)");
  cmd.add_flag("--create-on-push", flags->create_on_push,
               "Create repositories on first push instead of refusing with NAME_UNKNOWN");
  cmd.callback([flags] { throw CLI::RuntimeError(RunServe(*flags)); });
}

void AddServeCommand(CLI::App& app) {
  ConfigureServeCommand(
      *app.add_subcommand("serve", "Run the registry (OCI distribution API and ECR API)"));
}

int ServeMain(int argc, char** argv) {
  // `berth serve ARGS` execs `berth-serve serve ARGS` (see ExecServerBinary), so that
  // the process keeps the command line people typed; skip that word.
  std::vector<char*> args(argv, argv + argc);
  std::string name = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "berth-serve";
  if (args.size() > 1 && std::string_view(args[1]) == "serve") {
    args.erase(args.begin() + 1);
    name += " serve";
  }
  CLI::App app{"Run the registry (OCI distribution API and ECR API)", name};
  app.set_version_flag("--version", "berth 0.1.0");
  ConfigureServeCommand(app);
  return RunApp(app, static_cast<int>(args.size()), args.data());
}

void ExecServerBinary(char** argv) {
  if (const char* v = std::getenv("BERTH_SERVE_IN_PROCESS"); v != nullptr && *v != '\0') return;
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  std::filesystem::path server = self.parent_path() / "berth-serve";
  if (::access(server.c_str(), X_OK) != 0) return;  // not installed: serve in this process
  ::execv(server.c_str(), argv);  // argv[argc] is null, as execv needs
  // execv only returns on failure; serving in this process still works.
}

}  // namespace berth::cli
