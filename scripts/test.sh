#!/usr/bin/env bash
# Builds Berth and runs the whole test suite: unit tests and the integration tests
# (the real server on loopback driven by skopeo, docker, buildah, podman, ctr, curl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure --timeout 1500 -j "${CTEST_JOBS:-2}" "$@"
