#!/usr/bin/env bash
# Installs what rtstream needs to build and test on Debian 12 (PostgreSQL 15).
# As root it runs apt-get update and installs (or upgrades) them; as non-root it only checks.
set -euo pipefail
export PATH="/usr/lib/postgresql/15/bin:$PATH"

PKGS=(build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-hll
      postgresql-15-tdigest libipc-run-perl gnuplot-nox procps util-linux)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

if [ "$(id -u)" -eq 0 ]; then
  # Always as root: server and headers must come from the same (newest) minor release.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
elif [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

# postgresql-common creates and may start cluster 15/main on port 5432; we never use it.
if [ "$(id -u)" -eq 0 ] && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
fi

id postgres >/dev/null 2>&1 || { echo "install-deps: no 'postgres' user" >&2; exit 1; }
echo "install-deps: ok ($(pg_config --version))"
