#!/usr/bin/env bash
# Builds Berth and runs the whole test suite: unit tests, the storage conformance suites
# against real Ceph radosgw and PostgreSQL (started here, in a temporary directory, on
# loopback), and the integration tests (the real server on loopback driven by skopeo,
# docker, buildah, podman, ctr, curl, aws).
#
# BERTH_TEST_SERVICES=0 skips starting radosgw and PostgreSQL (a quick local loop): the
# tests that need them then skip, except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
if [[ ${BERTH_TEST_SERVICES:-1} != 0 ]]; then
  services=$(mktemp -d /tmp/berth-test-services.XXXXXX)
  # Absolute: ctest runs from build/, and the trap must still find the script.
  root=$(pwd)
  trap '"$root/tests/services/down.sh" "$services" >/dev/null 2>&1 || true; rm -rf "$services"' EXIT
  tests/services/up.sh "$services"
  set -a
  . "$services/env"
  set +a
fi
cd build
ctest --output-on-failure --timeout 1500 -j "${CTEST_JOBS:-2}" "$@"
