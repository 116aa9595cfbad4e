#!/usr/bin/env bash
# Set-up command 1: install what is missing, build, run `portmatrix demo`.
# Afterwards the binary is at build/portmatrix.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target portmatrix
exec build/portmatrix demo "$@"
