#!/usr/bin/env bash
# Set-up command 2: install what is missing, build everything with warnings as
# errors, run every test (unit, golden, CLI, fuzz corpora, network-namespace
# scenarios; the last need root and say "skipped" otherwise), then the unit
# tests and fuzz corpora again under AddressSanitizer and UBSan, every
# libFuzzer target for 60 s (tests/fuzz/run.sh), and the benchmark once in a
# tiny configuration so it cannot rot.
# Afterwards the binary is at build/portmatrix, the static one at
# build-static/portmatrix.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTMATRIX_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
scripts/build-static.sh # build-static/portmatrix, which tests/netns/static_chroot.sh runs
(cd build && ctest --output-on-failure -j "$jobs")

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPORTMATRIX_WERROR=ON \
  -DPORTMATRIX_SANITIZE=ON -DPORTMATRIX_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure -j "$jobs" -R '^(fuzz_|golden$|cli$)|\.' -E '^netns_')

# Each libFuzzer target for a bounded time from its corpus (a crash is kept
# in the corpus and fails the run).
tests/fuzz/run.sh

build/bench/bench_plan --benchmark_filter='/10$' --benchmark_min_time=0.01 >/dev/null
if [[ $(id -u) -eq 0 ]]; then
  bench/run.sh --quick >build/bench-quick.log 2>&1 || { tail -40 build/bench-quick.log; exit 1; }
else
  echo "test.sh: bench/run.sh --quick skipped: needs root"
fi
echo "test.sh: all suites passed"
