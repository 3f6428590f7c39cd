#!/usr/bin/env bash
# Builds rtstream and installs it into PostgreSQL 15. As non-root, installs only
# if the install dirs are writable, else checks the installed copy is this build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PATH="/usr/lib/postgresql/15/bin:$PATH"

make -j"$(nproc)" PG_CONFIG="$PG_CONFIG"

libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
if [ "$(id -u)" -eq 0 ] || { [ -w "$libdir" ] && [ -w "$extdir" ]; }; then
  make install PG_CONFIG="$PG_CONFIG"
  exit 0
fi

# Not root: accept an installed copy only if it is byte-identical to this build.
for f in rtstream.so rtstream.control rtstream--*.sql; do
  case $f in *.so) dest=$libdir/$f ;; *) dest=$extdir/$f ;; esac
  if ! cmp -s "$f" "$dest"; then
    echo "build-install: cannot install as $(id -un) and $dest is missing or stale." >&2
    echo "build-install: run as root: make install PG_CONFIG=$PG_CONFIG" >&2
    exit 1
  fi
done
echo "build-install: not root; installed copy already matches this build"
