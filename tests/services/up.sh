#!/usr/bin/env bash
# Starts every engine the tests use (Ceph radosgw, PostgreSQL) in DIR, each in its own
# subdirectory, and writes DIR/env: the BERTH_TEST_* variables the tests read. Tests
# that need an engine skip without them locally, and fail without them when CI is set.
#
#   up.sh DIR     start (reusing healthy engines already running in DIR)
#   down.sh DIR   stop them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
(($# == 1)) || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)

# Both start at once: radosgw needs ~20 s, PostgreSQL ~2 s.
"$here/radosgw.sh" start "$DIR/radosgw" >"$DIR/radosgw.out" 2>&1 &
rgw=$!
"$here/postgres.sh" start "$DIR/postgres" >"$DIR/postgres.out" 2>&1 &
pg=$!
status=0
wait $rgw || { echo "radosgw did not start:" >&2; cat "$DIR/radosgw.out" >&2; status=1; }
wait $pg || { echo "PostgreSQL did not start:" >&2; cat "$DIR/postgres.out" >&2; status=1; }
cat "$DIR/radosgw.out" "$DIR/postgres.out"
((status == 0)) || exit 1
cat "$DIR/radosgw/env" "$DIR/postgres/env" >"$DIR/env.tmp"
mv "$DIR/env.tmp" "$DIR/env"
