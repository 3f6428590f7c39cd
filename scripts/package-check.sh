#!/usr/bin/env bash
# Builds the Debian package of rtstream (debian/, pg_buildext) in a copy of
# the tree, installs it with apt (replacing a `make install` copy), and runs
# the pg_regress tests against the installed package (debian/tests/installcheck:
# `make installcheck`, which builds nothing). As root on Debian 12; CI runs it
# after test/run.sh. Ends with "package-check: ok (<deb file>)"; exits
# non-zero on any failure, after printing regression.diffs.
#   PACKAGE_CHECK_NO_INSTALL=1  build the .deb but do not install it: the tests
#                               then run against whatever rtstream is installed
#   PACKAGE_CHECK_UNPACK=1      do not install the .deb: unpack it into a private
#                               copy of PostgreSQL (/tmp/rtstream-pgroot.XXXXXX)
#                               and run the tests there; the system's PostgreSQL
#                               and its rtstream are left alone
#   PACKAGE_CHECK_OUT=DIR       where the .deb files are left (default: a new
#                               /tmp/rtstream-pkg.XXXXXX)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/lib/postgresql/15/bin:$PATH"
cd "$ROOT"

if [ "$(id -u)" -ne 0 ]; then
  echo "package-check: run as root (it installs build dependencies and the package)" >&2
  exit 1
fi

bash scripts/install-deps.sh

# Build dependencies (debian/control's Build-Depends, and dpkg-buildpackage).
# postgresql-server-dev-all of the installed postgresql-common's release if the
# archive has it: a newer one would upgrade postgresql-common, whose postinst
# starts the clusters.
BUILD_DEPS=(debhelper dpkg-dev postgresql-server-dev-all)
missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  common=$(dpkg-query -W -f='${Version}' postgresql-common 2>/dev/null || true)
  for i in "${!missing[@]}"; do
    [ "${missing[$i]}" = postgresql-server-dev-all ] && [ -n "$common" ] || continue
    if apt-cache madison postgresql-server-dev-all | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$common"; then
      missing[i]="postgresql-server-dev-all=$common"
    fi
  done
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "package-check: could not install ${missing[*]}; installing the newest build dependencies" >&2
    apt-get install -y -qq --no-install-recommends "${BUILD_DEPS[@]}" >/dev/null
  fi
fi

# Build in a copy: dpkg-buildpackage writes the .deb files beside the tree.
OUT=${PACKAGE_CHECK_OUT:-$(mktemp -d /tmp/rtstream-pkg.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BUILD=$(mktemp -d "$OUT/build.XXXXXX")
SRC=$BUILD/rtstream
mkdir "$SRC"
tar -C "$ROOT" --anchored --exclude=./.git --exclude='./tmp_check*' \
    --exclude=./results --exclude=./output_iso --exclude=./log \
    --exclude=./regression.diffs --exclude=./regression.out --exclude=./test/bench/out \
    --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
    --exclude=./debian/.debhelper --exclude=./debian/files --exclude='./debian/*.substvars' \
    --exclude='./debian/postgresql-*-rtstream' --exclude=./debian/debhelper-build-stamp \
    -cf - . | tar -C "$SRC" -xf -

LOG=$BUILD/build.log
if ! (cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$LOG" 2>&1; then
  tail -n 80 "$LOG"
  echo "package-check: dpkg-buildpackage failed; log in $LOG" >&2
  exit 1
fi

version=$(cd "$SRC" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
debs=()
for v in $(cd "$SRC" && pg_buildext supported-versions); do
  deb="postgresql-$v-rtstream_${version}_${arch}.deb"
  [ -f "$BUILD/$deb" ] || { echo "package-check: $deb was not built; log in $LOG" >&2; exit 1; }
  debs+=("$deb")
done
mv "$BUILD"/*.deb "$BUILD"/*.buildinfo "$BUILD"/*.changes "$OUT"/
echo "package-check: built ${debs[*]} in $OUT"

# The package holds the module and every extension script the Makefile installs.
for deb in "${debs[@]}"; do
  v=${deb#postgresql-}; v=${v%%-*}
  contents=$(dpkg-deb -c "$OUT/$deb" | awk '{ print $NF }' | sed 's|^\./|/|')
  want=("/usr/lib/postgresql/$v/lib/rtstream.so" "/usr/share/postgresql/$v/extension/rtstream.control")
  for f in "$SRC"/rtstream--*.sql; do
    want+=("/usr/share/postgresql/$v/extension/$(basename "$f")")
  done
  for f in "${want[@]}"; do
    grep -qxF "$f" <<<"$contents" || { echo "package-check: $deb lacks $f" >&2; exit 1; }
  done
done
rm -rf "$BUILD"

if [ -n "${PACKAGE_CHECK_UNPACK:-}" ]; then
  # PostgreSQL finds its lib and share directories relative to its binaries:
  # a copy of it, with the package unpacked over it, loads the package's files.
  PGROOT=$(mktemp -d /tmp/rtstream-pgroot.XXXXXX)
  trap 'rm -rf "$PGROOT"' EXIT
  mkdir -p "$PGROOT/usr/lib/postgresql" "$PGROOT/usr/share/postgresql"
  for deb in "${debs[@]}"; do
    v=${deb#postgresql-}; v=${v%%-*}
    cp -a "/usr/lib/postgresql/$v" "$PGROOT/usr/lib/postgresql/"
    cp -a "/usr/share/postgresql/$v" "$PGROOT/usr/share/postgresql/"
    # no rtstream file but the package's
    rm -rf "$PGROOT/usr/lib/postgresql/$v/lib/rtstream.so" "$PGROOT/usr/lib/postgresql/$v/lib/bitcode/rtstream" \
           "$PGROOT/usr/lib/postgresql/$v/lib/bitcode/rtstream.index.bc" "$PGROOT/usr/share/postgresql/$v/extension"/rtstream[.-]*
    dpkg-deb -x "$OUT/$deb" "$PGROOT"
  done
  chmod -R a+rX "$PGROOT"
  echo "package-check: PACKAGE_CHECK_UNPACK set: testing ${debs[*]} unpacked into a copy of PostgreSQL in $PGROOT"
  export RTSTREAM_PG_ROOT=$PGROOT
elif [ -n "${PACKAGE_CHECK_NO_INSTALL:-}" ]; then
  echo "package-check: PACKAGE_CHECK_NO_INSTALL set: not installing; testing the installed rtstream"
else
  export DEBIAN_FRONTEND=noninteractive
  # --reinstall: a `make install` since an earlier run of the same version is replaced too
  (cd "$OUT" && apt-get install --reinstall -y -qq --no-install-recommends "${debs[@]/#/./}" >/dev/null)
  for deb in "${debs[@]}"; do
    pkg=${deb%%_*}
    # every file of the package is the one installed (not a later `make install`)
    if ! changed=$(dpkg --verify "$pkg") || [ -n "$changed" ]; then
      echo "package-check: installed files of $pkg differ from the package:" >&2
      echo "$changed" >&2
      exit 1
    fi
    echo "package-check: installed $(dpkg-query -W -f='${Package} ${Version}' "$pkg")"
  done
fi

bash debian/tests/installcheck
echo "package-check: ok (${debs[*]})"
