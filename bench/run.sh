#!/usr/bin/env bash
# The benchmark suite (issue 4): builds what it needs, runs every comparison
# in network namespaces on this machine, and writes the results (medians over
# the repetitions, ratios, the machine, the exact commands) as Markdown.
#
#   bench/run.sh [--quick] [--reps N] [--build-dir DIR] [--out FILE] [--items LIST]
#
#   --quick       CI's configuration: one repetition and no warm-up check, a
#                 256-port range, small nmap subsets, 10 nodes (planning: 50
#                 and 200); written to DIR/bench-quick.md unless --out
#   --reps N      repetitions of every measurement (default 5)
#   --build-dir   cmake build directory (default build/)
#   --out FILE    where to write the results (default bench/RESULTS.md)
#   --items LIST  a subset, comma-separated: tcp (items 1-2), udp (3-4),
#                 guide (5), scale (6), plan (7: ports and firewall --all at
#                 1,000 and 5,000 nodes, no namespaces), ssh (8: check --ssh
#                 of the guide's topology beside the local check; needs sshd
#                 and sudo; BENCH_SSH_BINARY=FILE uploads that build, e.g.
#                 the static one), faults (9: the guide's topology with one
#                 fault planted: a worker dropping its NodePorts, an agent
#                 dead, every firewall missing), coverage (10: check
#                 --coverage sample, --estimate at 1,000 and 5,000 nodes, the
#                 coordinator against 250 and 1,000 agents; not in the default
#                 list), cpu (13: item 1's check, each agent's CPU with its
#                 packet captures and without them; not in the default
#                 list), conntrack (14: check --estimate's conntrack bound
#                 beside a check held by its table, TCP and UDP; not in the
#                 default list); run in this order:
#                 default plan,tcp,udp,guide,faults,ssh,scale. Planning goes first, on
#                 a quiet machine: it writes many files, and right after
#                 scale the kernel is still tearing down 100 namespaces (load
#                 average 9 when item 7 began in the e37177a run).
#
# Needs root (network namespaces, nft, packet capture) and nmap (tcp, udp); without root
# it says "skipped" and exits 77. Every namespace and process a scenario
# starts is removed when it ends, also on failure or Ctrl-C (the scenarios
# use tests/netns/check_lib.bash's cleanup trap). Exit 0 when every scenario
# ran, 1 when one failed (the results file then holds what was measured), 2
# on bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '/^#   bench/,/^# Needs root/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
quick=0 reps=5 build=build out='' items=plan,tcp,udp,guide,faults,ssh,scale
while [[ $# -gt 0 ]]; do
  case $1 in
  --quick) quick=1 reps=1 ;;
  --reps) reps=${2:-}; shift ;;
  --build-dir) build=${2:-}; shift ;;
  --out) out=${2:-}; shift ;;
  --items) items=${2:-}; shift ;;
  -h | --help) usage; exit 0 ;;
  *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --reps needs a positive number, not '$reps'" >&2; exit 2; }
for item in ${items//,/ }; do
  [[ $item =~ ^(tcp|udp|guide|faults|ssh|scale|plan|coverage|cpu|conntrack)$ ]] || { echo "run.sh: unknown item '$item' (tcp, udp, guide, faults, ssh, scale, plan, coverage, cpu, conntrack)" >&2; exit 2; }
done
[[ -n $out ]] || out=$([[ $quick == 1 ]] && echo "$build/bench-quick.md" || echo bench/RESULTS.md)

[[ $(id -u) -eq 0 ]] || { echo "skipped: bench/run.sh needs root (network namespaces, firewall rules)"; exit 77; }
PATH=$PATH:/usr/sbin:/sbin
if [[ ,$items, =~ ,(tcp|udp), ]]; then
  command -v nmap >/dev/null || { echo "run.sh: nmap is not installed (scripts/install-deps.sh installs it)" >&2; exit 2; }
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target portmatrix floor $([[ ,$items, == *,coverage,* ]] && echo pm_agents pm_netprobe)
PM=$build/portmatrix
FLOOR=$build/bench/floor

if [[ $quick == 1 ]]; then
  export BENCH_MIN=30000 BENCH_MAX=30255 BENCH_NMAP_DROPPED=64 BENCH_NMAP_CLOSED=8 BENCH_WARMUP=0
  sizes=(10) plan_sizes=(50 200)
else
  sizes=(10 30 60 100) plan_sizes=(1000 5000)
fi
export BENCH_REPS=$reps
work=$(mktemp -d "${TMPDIR:-/tmp}/pm-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The scenarios call python3 dozens of times between measurements: Debian's
# (the one install-deps.sh installs), not a version-manager shim in front of
# it that costs seconds per start on a loaded machine.
if [[ -x /usr/bin/python3 && $(command -v python3) != /usr/bin/python3 ]]; then
  mkdir "$work/bin"
  ln -s /usr/bin/python3 "$work/bin/python3"
  PATH=$work/bin:$PATH
fi
export BENCH_OUT=$work/results.tsv BENCH_WORK=$work BENCH_TRASH=$work/trash
mkdir "$BENCH_TRASH"
: >"$BENCH_OUT"

{
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'commit\t%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  printf 'cores (nproc)\t%s\n' "$(nproc)"
  printf 'CPU\t%s\n' "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  printf 'kernel (uname -r)\t%s\n' "$(uname -r)"
  printf 'memory\t%s MB\n' "$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))"
  printf 'load average at start (1, 5, 15 min)\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'nmap\t%s\n' "$(nmap --version 2>/dev/null | sed -n 's/^Nmap version \([^ ]*\).*/\1/p')"
  printf 'repetitions\t%s\n' "$reps"
  printf 'command\t`bench/run.sh%s`\n' "$([[ $quick == 1 ]] && echo ' --quick')$([[ $reps != 5 && $quick == 0 ]] && echo " --reps $reps")$([[ $items != plan,tcp,udp,guide,faults,ssh,scale ]] && echo " --items $items")"
} >"$work/machine.tsv"

failed=()
scenario() { # NAME SCRIPT ARGS...
  local name=$1
  shift
  echo "== bench: $name"
  printf 'load average before %s\t%s\n' "$name" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.tsv"
  bash "$@" "$PM" "$FLOOR" || failed+=("$name")
}
for item in ${items//,/ }; do
  case $item in
  tcp) scenario "items 1-2 (TCP)" bench/pair.sh tcp ;;
  udp) scenario "items 3-4 (UDP)" bench/pair.sh udp ;;
  guide) scenario "item 5 (the guide's topology)" bench/guide.sh ;;
  faults) scenario "item 9 (faults)" bench/faults.sh ;;
  ssh) scenario "item 8 (check --ssh)" bench/ssh.sh ;;
  coverage) BENCH_TOOLS=$build/tests scenario "item 10 (coverage)" bench/coverage.sh ;;
  cpu) scenario "item 13 (the agents' CPU)" bench/cpu.sh ;;
  conntrack)
    scenario "item 14 (the conntrack bound, TCP)" bench/conntrack.sh tcp
    scenario "item 14 (the conntrack bound, UDP)" bench/conntrack.sh udp
    ;;
  scale) for n in "${sizes[@]}"; do scenario "item 6 ($n nodes)" bench/scale.sh "$n"; done ;;
  plan)
    for n in "${plan_sizes[@]}"; do scenario "item 7 ($n nodes)" bench/plan.sh "$n"; done
    rm -rf "${BENCH_TRASH:?}"/* # what plan.sh moved aside (see its discard())
    ;;
  esac
done
printf 'load average at the end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/machine.tsv"

python3 bench/report.py write "$BENCH_OUT" "$work/machine.tsv" "$quick" "$out"
# The raw measurements beside it: report.py write can render them again.
cp "$BENCH_OUT" "${out%.md}.tsv"
cp "$work/machine.tsv" "${out%.md}.machine.tsv"
echo "bench: results in $out (raw: ${out%.md}.tsv, ${out%.md}.machine.tsv)"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
