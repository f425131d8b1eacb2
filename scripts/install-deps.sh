#!/usr/bin/env bash
# Installs Berth's build and test dependencies from Debian 12 packages.
# Idempotent: does nothing when everything is already installed. Needs root (or sudo).
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libcurl4-openssl-dev libarchive-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
# Real clients and peers the integration tests drive.
# Engines of the scale-out mode: Ceph radosgw for S3, PostgreSQL 15, nginx as the balancer.
TEST_PKGS=(skopeo buildah podman containerd docker-registry curl jq python3
  postgresql ceph-mon ceph-osd radosgw nginx-light)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" != "--build-only" ]]; then want+=("${TEST_PKGS[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# docker-registry's package enables a service on port 5000; tests start their own.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
