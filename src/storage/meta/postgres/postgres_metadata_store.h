// PostgreSQL MetadataStore: the store several `berth serve` nodes share. Same data
// model and semantics as the SQLite store (every backend passes
// meta/metadata_store_conformance.h); see postgres_metadata_store.cc for how
// transactions, the connection pool and reconnection work.
//
// ReadEpoch() is nullopt: other nodes write to the same database, so this process
// cannot tell when its data changed, and the caches above the store stay off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/meta/metadata_store.h"

namespace berth::storage {

struct PostgresOptions {
  // libpq connection URI or key=value string, e.g.
  // "postgresql://berth@db.internal:5432/berth?sslmode=verify-full". It must not carry a
  // password (refused at open): libpq reads it from PGPASSWORD or ~/.pgpass (PGPASSFILE),
  // so that no secret sits in berth's configuration or its logs.
  std::string url;
  // Most connections open at once (each is a server backend). Default: 16.
  size_t max_connections = 16;
  // How long an operation waits for a connection while all are in use. Default: 30 s.
  int64_t acquire_timeout_ms = 30'000;
  // How long an operation waits for PostgreSQL to accept connections again after it lost
  // one (a restart, a failover) before failing with kUnavailable. Check() never waits.
  // Default: 30 s.
  int64_t reconnect_timeout_ms = 30'000;
  // Timeout of one connection attempt, in seconds (libpq connect_timeout). Default: 5.
  int connect_timeout_s = 5;
};

// Connects, checks the server, and brings the schema up to date (migrations run in one
// transaction under an advisory lock, so nodes may start at once). Fails with a message
// naming the URL when the server is unreachable (kUnavailable), refuses the role or its
// password, or lacks the database (kFailedPrecondition), and refuses a schema newer
// than this binary knows (kFailedPrecondition).
Result<std::unique_ptr<MetadataStore>> OpenPostgresMetadataStore(const PostgresOptions& options);

// The schema version this binary migrates to (tests, diagnostics).
int PostgresSchemaVersion();

}  // namespace berth::storage
