#include "cli/admin.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "auth/identity_store.h"
#include "auth/secret_file.h"
#include "auth/shared_documents.h"
#include "auth/token.h"
#include "cli/migrate.h"
#include "cli/storage_setup.h"
#include "config/config.h"

namespace berth::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTokenKeyFileName = "token.key";

struct AdminFlags {
  std::string data_dir;
  std::string config_file;
  // create-key
  std::string account;
  std::string name;
  std::vector<std::string> policy_files;
  bool admin = false;
  // delete-key
  std::string access_key_id;
  // migrate
  std::string from_config;
  std::string to_config;
  bool no_verify = false;
};

// The configuration `berth serve` would run with: --config, then BERTH_* variables.
Result<config::Config> LoadConfig(const AdminFlags& flags) {
  config::Config cfg;
  if (!flags.config_file.empty()) {
    BERTH_RETURN_IF_ERROR(config::LoadYamlFile(flags.config_file, cfg));
  }
  BERTH_RETURN_IF_ERROR(config::ApplyEnvironment(config::BerthEnvironment(), cfg));
  if (!flags.data_dir.empty()) cfg.data_dir = flags.data_dir;
  BERTH_RETURN_IF_ERROR(config::Validate(cfg));
  return cfg;
}

// Where identities and the token key live: files in the data directory on the
// embedded default, the shared metadata store when the configuration names one (so a
// key created here is honoured by every node within seconds).
struct AuthStores {
  fs::path data;
  std::unique_ptr<storage::MetadataStore> meta;  // null on the embedded default
  std::unique_ptr<auth::SharedDocuments> docs;
  std::string where;  // for messages

  Result<std::unique_ptr<auth::IdentityStore>> Identities() {
    if (docs) return auth::OpenSharedIdentityStore(*docs);
    return auth::OpenFileIdentityStore(data / auth::kIdentitiesFileName);
  }
};

Result<AuthStores> OpenAuthStores(const AdminFlags& flags) {
  BERTH_ASSIGN_OR_RETURN(config::Config cfg, LoadConfig(flags));
  AuthStores out;
  out.data = cfg.data_dir;
  if (cfg.storage.metadata.type == "sqlite") {
    out.where = (out.data / auth::kIdentitiesFileName).string();
    return out;
  }
  cfg.storage.metadata.postgres.max_connections = 2;
  BERTH_ASSIGN_OR_RETURN(out.meta, OpenMetadataStore(cfg, out.data, &out.where));
  out.where = "the shared " + out.where + " metadata store";
  out.docs = std::make_unique<auth::SettingsDocuments<storage::MetadataStore>>(*out.meta);
  return out;
}

int Fail(std::ostream& err, std::string_view command, const Status& st) {
  err << "berth admin " << command << ": " << st.message() << "\n";
  return 1;
}

std::string FormatTime(int64_t epoch_seconds) {
  if (epoch_seconds <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int CreateKey(const AdminFlags& flags, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kCmd = "create-key";
  auto stores = OpenAuthStores(flags);
  if (!stores.ok()) return Fail(err, kCmd, stores.status());
  auto store = stores->Identities();
  if (!store.ok()) return Fail(err, kCmd, store.status());

  auth::NewIdentity spec;
  spec.user_name = flags.name;
  spec.admin = flags.admin;
  spec.account_id = flags.account;
  if (spec.account_id.empty()) {
    // Default: the account of the registry's administrator.
    auto list = (*store)->List();
    if (!list.ok()) return Fail(err, kCmd, list.status());
    auto admin = std::find_if(list->begin(), list->end(), [](const auto& id) { return id->admin; });
    if (admin == list->end()) {
      return Fail(err, kCmd,
                  Status::InvalidArgument("--account is required (there is no administrator "
                                          "whose account could be the default)"));
    }
    spec.account_id = (*admin)->account_id;
  }
  for (const std::string& file : flags.policy_files) {
    auto text = auth::ReadSmallFile(file, 1 << 20);
    if (!text.ok()) {
      return Fail(err, kCmd,
                  Status::InvalidArgument("--policy " + file + ": " + text.status().message()));
    }
    auto policy = auth::Policy::Parse(*text, auth::PolicyKind::kIdentity);
    if (!policy.ok()) {
      return Fail(err, kCmd,
                  Status::InvalidArgument("--policy " + file + ": " + policy.status().message()));
    }
    spec.policy_documents.push_back(std::move(*text));
  }

  if (spec.admin && spec.policy_documents.empty()) {
    spec.policy_documents.emplace_back(auth::kAdministratorPolicy);
  }
  auto created = (*store)->Create(spec);
  if (!created.ok()) return Fail(err, kCmd, created.status());
  out << "Created an access key for " << created->principal_arn() << " in "
      << stores->where << ".\n"
      << "The secret is shown only now; add these lines to ~/.aws/credentials:\n\n"
      << "[" << created->user_name << "]\n"
      << "aws_access_key_id = " << created->access_key_id << "\n"
      << "aws_secret_access_key = " << created->secret_access_key << "\n";
  if (created->policies.empty()) {
    err << "note: no policy attached: every request signed with this key will be denied "
           "(attach one with --policy FILE)\n";
  }
  return 0;
}

int DeleteKey(const AdminFlags& flags, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kCmd = "delete-key";
  auto stores = OpenAuthStores(flags);
  if (!stores.ok()) return Fail(err, kCmd, stores.status());
  auto store = stores->Identities();
  if (!store.ok()) return Fail(err, kCmd, store.status());
  if (Status st = (*store)->Delete(flags.access_key_id); !st.ok()) return Fail(err, kCmd, st);
  out << "Deleted access key " << flags.access_key_id << ".\n";
  return 0;
}

int ListKeys(const AdminFlags& flags, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kCmd = "list-keys";
  auto stores = OpenAuthStores(flags);
  if (!stores.ok()) return Fail(err, kCmd, stores.status());
  auto store = stores->Identities();
  if (!store.ok()) return Fail(err, kCmd, store.status());
  auto list = (*store)->List();
  if (!list.ok()) return Fail(err, kCmd, list.status());
  if (list->empty()) {
    out << "No access keys in " << stores->where << ".\n";
    return 0;
  }
  struct Row {
    std::string cells[6];
  };
  std::vector<Row> rows;
  rows.push_back({{"ACCESS KEY ID", "ACCOUNT", "USER", "ADMIN", "POLICIES", "CREATED"}});
  for (const auto& id : *list) {
    rows.push_back({{id->access_key_id, id->account_id, id->user_name, id->admin ? "yes" : "no",
                     std::to_string(id->policies.size()), FormatTime(id->created_at_seconds)}});
  }
  size_t widths[6] = {};
  for (const Row& r : rows) {
    for (size_t c = 0; c < 6; ++c) widths[c] = std::max(widths[c], r.cells[c].size());
  }
  for (const Row& r : rows) {
    std::string line;
    for (size_t c = 0; c < 6; ++c) {
      line += r.cells[c];
      if (c + 1 < 6) line.append(widths[c] - r.cells[c].size() + 2, ' ');
    }
    out << line << "\n";
  }
  return 0;
}

int RotateTokenKey(const AdminFlags& flags, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kCmd = "rotate-token-key";
  auto stores = OpenAuthStores(flags);
  if (!stores.ok()) return Fail(err, kCmd, stores.status());
  std::string where, id;
  if (stores->docs) {
    auto keys = auth::OpenSharedTokenKey(*stores->docs);
    if (!keys.ok()) return Fail(err, kCmd, keys.status());
    if (Status st = (*keys)->Rotate(); !st.ok()) return Fail(err, kCmd, st);
    id = (*keys)->Current()->key_id();
    where = stores->where;
  } else {
    fs::path path = stores->data / kTokenKeyFileName;
    auto rotated = auth::TokenKeyFile::RotateFile(path);
    if (!rotated.ok()) return Fail(err, kCmd, rotated.status());
    id = *rotated;
    where = path.string();
  }
  out << "Rotated the registry token key in " << where << " (new key id " << id
      << ").\nEvery registry token issued before is now invalid: clients must log in again.\n";
  return 0;
}

// One side of `migrate`, opened from its YAML file alone: BERTH_* variables would
// apply to both sides, so they are not read (credentials still come from the AWS
// chain and PGPASSWORD / ~/.pgpass).
struct OpenedEnd {
  Stores stores;
  std::unique_ptr<auth::SharedDocuments> docs;
  MigrationEnd end;
};

Result<std::unique_ptr<OpenedEnd>> OpenMigrationEnd(const std::string& file, bool source) {
  const std::string side = source ? "--from " + file : "--to " + file;
  config::Config cfg;
  Status st = config::LoadYamlFile(file, cfg);
  if (st.ok()) st = config::Validate(cfg);
  if (!st.ok()) return Status(st.code(), side + ": " + st.message());
  fs::path data = cfg.data_dir;
  std::error_code ec;
  const bool embedded_part =
      cfg.storage.blobs.type == "filesystem" || cfg.storage.metadata.type == "sqlite";
  if (embedded_part) {
    if (source && !fs::is_directory(data, ec)) {
      return Status::NotFound(side + ": data directory " + data.string() +
                              " does not exist (data_dir in the file, default ./berth-data)");
    }
    fs::create_directories(data, ec);
    if (ec) return Status::FromErrno(side + ": create " + data.string(), ec.value());
  }
  auto out = std::make_unique<OpenedEnd>();
  auto stores = OpenStores(cfg, data);
  if (!stores.ok()) return Status(stores.status().code(), side + ": " + stores.status().message());
  out->stores = std::move(*stores);
  if (cfg.storage.metadata.type == "sqlite") {
    out->docs = std::make_unique<DataDirDocuments>(data.string());
  } else {
    out->docs =
        std::make_unique<auth::SettingsDocuments<storage::MetadataStore>>(*out->stores.meta);
  }
  out->end = {out->stores.blobs.get(), out->stores.meta.get(), out->docs.get(),
              out->stores.description};
  return out;
}

int MigrateCommand(const AdminFlags& flags, std::ostream& out, std::ostream& err) {
  constexpr std::string_view kCmd = "migrate";
  auto from = OpenMigrationEnd(flags.from_config, true);
  if (!from.ok()) return Fail(err, kCmd, from.status());
  auto to = OpenMigrationEnd(flags.to_config, false);
  if (!to.ok()) return Fail(err, kCmd, to.status());
  if ((*from)->end.description == (*to)->end.description) {
    return Fail(err, kCmd,
                Status::InvalidArgument("--from and --to name the same stores (" +
                                        (*from)->end.description + ")"));
  }
  out << "Migrating " << (*from)->end.description << "\n       to " << (*to)->end.description
      << "\n";
  MigrateOptions opts;
  opts.verify = !flags.no_verify;
  opts.progress = [&out](std::string_view line) { out << "  " << line << "\n" << std::flush; };
  auto report = Migrate((*from)->end, (*to)->end, opts);
  if (!report.ok()) {
    err << "berth admin migrate: " << report.status().message()
        << "\nWhat was copied stays; run the same command again to continue.\n";
    return 1;
  }
  const MigrateReport& r = *report;
  out << "Done: " << r.repositories << " repositories (" << r.repositories_created
      << " created); blobs: " << r.blobs_copied << " copied (" << r.bytes_copied << " bytes), "
      << r.blobs_linked << " linked to bytes already there, " << r.blobs_present
      << " already linked; manifests: " << r.manifests_copied << " copied, "
      << r.manifests_present << " already there; " << r.tags_set << " tags set; "
      << r.pulls_recorded << " pull times; identities: " << r.identities_added << " added, "
      << r.identities_replaced << " replaced; token key "
      << (r.token_key_copied ? "copied" : "unchanged") << ".\n";
  if (opts.verify) {
    out << "Verified: " << r.blobs_verified << " blobs (" << r.bytes_verified
        << " bytes re-read, every digest matches), " << r.manifests_verified << " manifests, "
        << r.tags_verified << " tags.\n";
  }
  return 0;
}

}  // namespace

void AddAdminCommand(CLI::App& app, std::ostream& out, std::ostream& err) {
  auto flags = std::make_shared<AdminFlags>();
  CLI::App* admin = app.add_subcommand("admin", "Manage access keys, the registry token key, and storage migrations");
  admin->require_subcommand(1);
  auto add_data = [&](CLI::App* cmd) {
    cmd->add_option("--data", flags->data_dir,
                    "Data directory (default $BERTH_DATA_DIR, else ./berth-data)");
    cmd->add_option("--config", flags->config_file,
                    "The YAML file berth serve runs with: with a shared metadata store "
                    "(storage.metadata.type postgres) keys are edited there, for every node");
  };

  CLI::App* create = admin->add_subcommand("create-key", "Create an access key and print it");
  add_data(create);
  create->add_option("--name", flags->name, "User name (1-64 of A-Z a-z 0-9 + = , . @ _ -)")
      ->required();
  create->add_option("--account", flags->account,
                     "12-digit account id (default: the administrator's account)");
  create->add_option("--policy", flags->policy_files,
                     "Identity policy JSON file to attach (repeatable)");
  create->add_flag("--admin", flags->admin,
                   "Make the key its account's administrator (principal ...:root); without "
                   "--policy it gets Allow ecr:* on *");
  create->callback([flags, &out, &err] { throw CLI::RuntimeError(CreateKey(*flags, out, err)); });

  CLI::App* del = admin->add_subcommand("delete-key", "Delete an access key");
  add_data(del);
  del->add_option("access_key_id", flags->access_key_id, "The access key id to delete")->required();
  del->callback([flags, &out, &err] { throw CLI::RuntimeError(DeleteKey(*flags, out, err)); });

  CLI::App* list = admin->add_subcommand("list-keys", "List access keys (secrets are not shown)");
  add_data(list);
  list->callback([flags, &out, &err] { throw CLI::RuntimeError(ListKeys(*flags, out, err)); });

  CLI::App* migrate = admin->add_subcommand(
      "migrate",
      "Copy a whole registry between storage configurations (files + SQLite to S3 + "
      "PostgreSQL, or back); resumable, verified by digests");
  migrate->add_option("--from", flags->from_config, "YAML configuration of the source")
      ->required();
  migrate->add_option("--to", flags->to_config, "YAML configuration of the destination")
      ->required();
  migrate->add_flag("--no-verify", flags->no_verify,
                    "Skip re-reading the destination at the end (not recommended)");
  migrate->callback(
      [flags, &out, &err] { throw CLI::RuntimeError(MigrateCommand(*flags, out, err)); });

  CLI::App* rotate = admin->add_subcommand(
      "rotate-token-key", "Replace the registry token key, revoking every issued token");
  add_data(rotate);
  rotate->callback(
      [flags, &out, &err] { throw CLI::RuntimeError(RotateTokenKey(*flags, out, err)); });
}

}  // namespace berth::cli
