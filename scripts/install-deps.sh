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
  # Only what is missing: an installed PostgreSQL is never upgraded, and no
  # cluster is stopped or restarted (the tests and the demo run their own
  # servers on private ports and socket directories).
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    upgrade=()
    srv=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
    for i in "${!missing[@]}"; do
      [ "${missing[$i]}" = postgresql-server-dev-15 ] && [ -n "$srv" ] || continue
      # headers of the installed server's own release, if the archive has them
      if apt-cache madison postgresql-server-dev-15 | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$srv"; then
        missing[$i]="postgresql-server-dev-15=$srv"
      else
        echo "install-deps: postgresql-server-dev-15 $srv (the installed server's release) is not in the archive;" \
             "upgrading postgresql-15 with it, which restarts its clusters" >&2
        upgrade=(postgresql-15)
      fi
    done
    if ! apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null; then
      echo "install-deps: could not install ${missing[*]} beside what is installed; installing the newest of all" >&2
      apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
    fi
    if [ "${#upgrade[@]}" -gt 0 ]; then
      apt-get install -y -qq --no-install-recommends "${upgrade[@]}" >/dev/null
    fi
  fi
elif [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

id postgres >/dev/null 2>&1 || { echo "install-deps: no 'postgres' user" >&2; exit 1; }
echo "install-deps: ok ($(pg_config --version))"
