#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for Berth's PostgreSQL metadata store tests.
#
#   postgres.sh start DIR             create a cluster in DIR (reuses a running one, starts
#                                     again one stopped by `stop`)
#   postgres.sh stop DIR              stop it (files are kept)
#   postgres.sh restart DIR [MODE]    restart it on the same port; MODE is pg_ctl's stop
#                                     mode: fast (default: sessions are ended) or immediate
#                                     (like a crash: recovery replays the WAL)
#   postgres.sh status DIR            exit 0 when the server accepts connections
#
# Everything lives under DIR (data, unix socket, log, password); nothing under /etc or
# /var/lib/postgresql is read or written. The server runs as an unprivileged user: as
# root, the `postgres` system user (created as `berth-pg` when absent); otherwise the
# caller. DIR/env gets the variables the tests read:
#   BERTH_TEST_PG_URL       postgresql://berth@127.0.0.1:PORT/berth (no password in it)
#   BERTH_TEST_PG_PASSWORD  role berth's password (tests export it as PGPASSWORD)
#   BERTH_TEST_PG_DIR       DIR
#   BERTH_TEST_PG_SCRIPT    this script (for restart tests)
# Role berth owns database berth and may create databases (one per test).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

usage() {
  echo "usage: $0 start|stop|status DIR | restart DIR [fast|immediate]" >&2
  exit 2
}
[[ $# == 2 || ($# == 3 && $1 == restart) ]] || usage
cmd=$1
mode=${3:-fast}
[[ $mode == fast || $mode == immediate ]] || usage

# The server binaries: BERTH_PG_BIN, else the newest installed major version.
PG_BIN=${BERTH_PG_BIN:-}
if [[ -z $PG_BIN ]]; then
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    [[ -x $d/initdb ]] && { PG_BIN=$d; break; }
  done
fi
[[ -n $PG_BIN && -x $PG_BIN/initdb ]] ||
  die "no PostgreSQL server binaries (apt-get install postgresql, or set BERTH_PG_BIN)"

# The user the server runs as; root may not run postgres.
if ((EUID == 0)); then
  RUN_AS=postgres
  if ! id -u "$RUN_AS" >/dev/null 2>&1; then
    RUN_AS=berth-pg
    id -u "$RUN_AS" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        "$RUN_AS" || die "cannot create system user $RUN_AS"
  fi
  as_server() { runuser -u "$RUN_AS" -- "$@"; }
else
  RUN_AS=$(id -un)
  as_server() { "$@"; }
fi

mkdir -p "$2"
DIR=$(cd "$2" && pwd)
DATA=$DIR/data
RUN=$DIR/run # unix socket and lock file (mode 0700: only the server's user)
LOG=$DIR/postgres.log
MARKER=$DIR/.berth-postgres # only a directory carrying this is ever wiped
ENV_FILE=$DIR/env
SUPERUSER=postgres # the bootstrap role, reached only over the socket
ROLE=berth
DATABASE=berth
START_TIMEOUT=${BERTH_PG_START_TIMEOUT:-60}

pg_ctl() { as_server "$PG_BIN/pg_ctl" -D "$DATA" "$@"; }
CONF=$DATA/berth-test.conf # included by postgresql.conf
port() { sed -n 's/^port = \([0-9]*\)$/\1/p' "$CONF" 2>/dev/null; }
# The bootstrap superuser over the unix socket (trust: only RUN_AS can reach it).
admin_psql() {
  as_server "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$(port)" -U "$SUPERUSER" "$@"
}
running() { [[ -f $DATA/PG_VERSION ]] && pg_ctl status >/dev/null 2>&1; }
# Over the private socket as the server's user (trust): a probe over TCP without a
# password would log an authentication failure each time.
accepting() {
  local p
  p=$(port)
  [[ -n $p ]] && as_server "$PG_BIN/pg_isready" -q -h "$RUN" -p "$p" -U "$SUPERUSER" -d postgres -t 2
}
healthy() { [[ -f $MARKER && -f $ENV_FILE ]] && running && accepting; }

write_env() {
  local password=$1 tmp=$ENV_FILE.tmp
  (
    umask 077
    cat >"$tmp" <<EOF
BERTH_TEST_PG_URL=postgresql://$ROLE@127.0.0.1:$(port)/$DATABASE
BERTH_TEST_PG_PASSWORD=$password
BERTH_TEST_PG_DIR=$DIR
BERTH_TEST_PG_SCRIPT=$here/postgres.sh
EOF
  )
  mv "$tmp" "$ENV_FILE"
}

# The server's user must be able to reach DIR: give it search permission (x, not read)
# on the ancestors we own that deny it, e.g. a 0700 directory from mktemp -d.
ensure_reachable() {
  as_server test -w "$DIR" && return 0
  local d=$DIR
  while d=$(dirname "$d") && [[ $d != / ]]; do
    if ! as_server test -x "$d" && [[ -O $d ]]; then
      echo "note: letting $RUN_AS traverse $d (chmod o+x) to reach $DIR" >&2
      chmod o+x "$d"
    fi
  done
  as_server test -w "$DIR" || die "$RUN_AS cannot reach $DIR; pick a directory under /tmp"
}

stop_server() {
  if running; then
    pg_ctl stop -m "${1:-fast}" -w -t 30 >/dev/null || { show_logs "$LOG"; die "pg_ctl stop failed"; }
  fi
}

start_server() {
  running && accepting && return 0
  pg_ctl start -w -t "$START_TIMEOUT" -l "$LOG" >/dev/null ||
    { show_logs "$LOG"; die "PostgreSQL did not start in $DIR within ${START_TIMEOUT}s"; }
  wait_for 10 accepting || { show_logs "$LOG"; die "PostgreSQL does not accept connections"; }
}

start() {
  # A cluster made here before, running or stopped by `stop`: bring it up, data and
  # password kept.
  if [[ -f $MARKER && -f $ENV_FILE && -f $DATA/PG_VERSION ]]; then
    if running; then
      wait_for 30 accepting && { echo "PostgreSQL already running in $DIR: reusing it"; return 0; }
    elif pg_ctl start -w -t "$START_TIMEOUT" -l "$LOG" >/dev/null && wait_for 30 accepting; then
      echo "PostgreSQL in $DIR started again"
      return 0
    fi
    echo "the cluster in $DIR does not come up; making a new one" >&2
    show_logs "$LOG"
  fi
  # Anything else made here earlier (half made, or broken): start over, but never wipe
  # a directory this script did not create.
  if [[ -n $(ls -A "$DIR") && ! -f $MARKER ]]; then
    die "$DIR is not empty and was not made by $0; refusing to wipe it"
  fi
  stop_server immediate 2>/dev/null || true
  find "$DIR" -mindepth 1 -delete
  touch "$MARKER"
  mkdir -p "$RUN"
  chmod 0700 "$RUN"
  chown -R "$RUN_AS" "$DIR"
  ensure_reachable

  local password port
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
  read -r port < <(free_ports 1)
  # Checksums on: tests should notice torn pages. Trust only on the private socket;
  # every TCP connection needs its password. --no-sync: a cluster lost to a machine
  # crash is recreated anyway; the server itself runs with fsync on.
  as_server "$PG_BIN/initdb" -D "$DATA" -U "$SUPERUSER" -E UTF8 --locale=C.UTF-8 \
    --data-checksums --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$DIR/initdb.log" 2>&1 ||
    { show_logs "$DIR/initdb.log"; die "initdb failed"; }
  # Settings for tests: small memory, room for many pools, fsync kept on (durability is
  # part of what the tests check), fast shutdown and crash recovery.
  as_server tee "$CONF" >/dev/null <<EOF
# Generated by tests/services/postgres.sh; the cluster is disposable.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$RUN'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 32MB
work_mem = 4MB
maintenance_work_mem = 16MB
max_wal_size = 256MB
checkpoint_timeout = 5min
wal_level = minimal
max_wal_senders = 0
fsync = on
synchronous_commit = on
log_min_messages = warning
log_connections = off
log_line_prefix = '%m [%p] %u@%d '
# Each test creates a database; its cleanup drops them. Keep autovacuum quiet.
autovacuum_naptime = 10min
# After a crash (restart immediate), one syncfs instead of an fsync per file.
recovery_init_sync_method = syncfs
EOF
  echo "include 'berth-test.conf'" | as_server tee -a "$DATA/postgresql.conf" >/dev/null
  start_server
  # The role the tests (and berth) use: a password, its own database, CREATEDB for a
  # fresh database per test. The password goes in on stdin, never on a command line.
  admin_psql -d postgres <<EOF
CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE $DATABASE OWNER $ROLE;
EOF
  PGPASSWORD=$password "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$ROLE" -d "$DATABASE" \
    -c 'SELECT 1' >/dev/null || { show_logs "$LOG"; die "role $ROLE cannot log in over TCP"; }
  write_env "$password"
}

case $cmd in
start)
  t0=$SECONDS
  start
  echo "PostgreSQL up in $((SECONDS - t0))s: $(head -n1 "$ENV_FILE")"
  ;;
stop) if [[ -f $MARKER ]]; then stop_server fast; fi ;;
restart)
  [[ -f $MARKER && -f $DATA/PG_VERSION ]] || die "no cluster in $DIR (use: $0 start $DIR)"
  stop_server "$mode"
  start_server
  ;;
status) healthy ;;
*) usage ;;
esac
