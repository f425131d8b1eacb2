#!/usr/bin/env bash
# Stops the engines up.sh started in DIR. Their files stay, for the logs.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
(($# == 1)) || { echo "usage: $0 DIR" >&2; exit 2; }
[[ -d $1/radosgw ]] && "$here/radosgw.sh" stop "$1/radosgw"
[[ -d $1/postgres ]] && "$here/postgres.sh" stop "$1/postgres"
exit 0
