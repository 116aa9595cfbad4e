#!/usr/bin/env bash
# One command: a statically linked, stripped portmatrix at build-static/portmatrix
# (or DIR/portmatrix), for nodes whose distribution lacks portmatrix's shared
# libraries (yaml-cpp, fmt) or has an older glibc. glibc, libstdc++, OpenSSL
# and yaml-cpp come from Debian 12's -dev packages' static libraries
# (scripts/install-deps.sh), fmt is used header-only (cmake/static.cmake).
# The normal build (build/) is not touched.
#   usage: scripts/build-static.sh [DIR]
#
# The linker warns that getaddrinfo "requires at runtime the shared libraries
# from the glibc version used for linking": expected, and not an error. Names
# still resolve through /etc/hosts and DNS without them; docs/static-binary.md
# says what a static binary cannot do.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-static}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTMATRIX_WERROR=ON \
  -DPORTMATRIX_STATIC=ON -DBUILD_TESTING=OFF -DPORTMATRIX_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target portmatrix

binary=$build/portmatrix
# The promise of this build, checked every time: no dynamic loader, no shared library.
ldd_says=$(LC_ALL=C ldd "$binary" 2>&1 || true) # ldd exits 1 on a static binary
if [[ $ldd_says != *'not a dynamic executable'* ]]; then
  echo "build-static: $binary is not static: $ldd_says" >&2
  exit 1
fi
echo "build-static: $binary, $(stat -c %s "$binary") bytes, $("$binary" --version)"
