#!/usr/bin/env bash
# Installs dependencies, builds, and starts the registry on the embedded default
# (local files + SQLite under ./berth-data) on port 5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build-only
scripts/build.sh
exec build/berth serve "$@"
