#!/usr/bin/env bash
# Benchmark item 7: planning at scale, no namespaces. A generated inventory of
# NODES nodes (bench_plan's shape: 3 masters, then 10 % MongoDB, 10 %
# Elasticsearch and 80 % workers, a load balancer and a client), then, the
# commands interleaved within each of BENCH_REPS repetitions:
#   ports --inventory F --format json                 every node pair (not past
#                                                     BENCH_PAIRS_MAX nodes: see the note)
#   ports --inventory F --format json --flows groups  one entry per requirement
#   firewall --inventory F --all --out DIR --format B for nftables, iptables, firewalld, ufw
# Each records its wall and CPU time, peak RSS (/usr/bin/time) and output size;
# the output goes to a directory under BENCH_WORK (or TMPDIR), removed after
# each command and on exit. Beside nftables, the filesystem's floor: as many
# files (one per node) holding as many bytes in all, written the same way by a
# loop that generates nothing (creating thousands of names is what --all waits
# for on a slow disk; it writes one file per set of roles and hard-links the
# other nodes' names to it, so "output MB" counts each file once, as du does).
# Outputs are moved aside, not deleted, between commands: see discard().
#   usage: BENCH_OUT=FILE plan.sh NODES PORTMATRIX [FLOOR]
set -euo pipefail
source "$(dirname "$0")/record.bash"
NODES=${1:-}
PM=${2:-}
[[ $NODES =~ ^[1-9][0-9]*$ && -x $PM ]] || { echo "usage: $0 NODES PORTMATRIX [FLOOR]" >&2; exit 2; }
[[ -n ${BENCH_OUT:-} ]] || { echo "$0: BENCH_OUT (the results file) is not set" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "$0: /usr/bin/time is not installed (Debian: time)" >&2; exit 2; }
PM=$(realpath "$PM")
PAIRS_MAX=${BENCH_PAIRS_MAX:-1000}
ITEM=7/$NODES
work=$(mktemp -d "${BENCH_WORK:-${TMPDIR:-/tmp}}/plan-$NODES.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Deleting thousands of files slows ext4's next thousands of creations for a
# minute: a new inode skips every one deleted in the last 60 s
# (recently_deleted() in fs/ext4/ialloc.c). That cost `firewall --all` at
# 5,000 nodes ~1 s of system time whenever the command before it had just
# had its 5,000 files removed (0.4 s otherwise). So an output is moved aside
# (a rename) until the caller is done: into BENCH_TRASH (run.sh empties it
# after item 7), else into the work directory. With less than 4 GB free the
# outputs are deleted after all, and a note says so.
trash=${BENCH_TRASH:-$work/trash}
mkdir -p "$trash"
DISCARDED=0
discard() { # PATH
  DISCARDED=$((DISCARDED + 1))
  if (($(df -Pk "$trash" | awk 'NR == 2 {print $4}') < 4 * 1024 * 1024)); then
    bench_note "$ITEM" "outputs deleted between commands (less than 4 GB free): the file creations after a deletion are slower for a minute"
    rm -rf "$1" "${trash:?}"/*
  else
    mv "$1" "$trash/$NODES-$DISCARDED"
  fi
}

inventory=$work/inventory.yaml
python3 "$(dirname "$0")/inventory.py" "$NODES" >"$inventory"

# measure LABEL OUTPUT -- COMMAND...: runs it once (stdout to OUTPUT, a file, or
# OUTPUT/ a directory the command fills), records wall ms, CPU ms (user +
# system: what the wall time spent waiting on the disk is not), peak RSS and
# output MB. The page cache is written back first (sync, not timed), so a
# command does not pay for the gigabytes the one before it wrote.
measure() {
  local label=$1 output=$2 t0 t1 kb user sys bytes
  shift 3
  sync
  t0=$(date +%s%N)
  if [[ $output == */ ]]; then
    /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  else
    /usr/bin/time -f '%M %U %S' -o "$work/rss" "$@" >"$output" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  fi
  t1=$(date +%s%N)
  read -r kb user sys < <(tail -1 "$work/rss")
  bytes=$(du -sb "$output" | cut -f1)
  LAST_BYTES=$bytes
  bench_record "$ITEM" "$label wall" $(((t1 - t0) / 1000000)) ms
  bench_record "$ITEM" "$label cpu" "$(python3 -c "print(round(($user + $sys) * 1000))")" ms
  bench_record "$ITEM" "$label peak RSS" $((kb / 1024)) MB
  bench_record "$ITEM" "$label output" "$(python3 -c "print(round($bytes / 1e6, 3))")" MB
  discard "$output"
}

# The filesystem's floor for `firewall --all`: FILES files of BYTES in all
# written as portmatrix writes them (a temporary file, one write, a rename)
# by a loop that generates nothing. Records its wall time as "LABEL floor".
fs_floor() { # LABEL FILES BYTES
  local label=$1 files=$2 bytes=$3 ms
  sync
  ms=$(python3 - "$work/floor" "$files" "$bytes" <<'PY'
import os, sys, time
folder, files, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = b"#" * (total // files)
os.makedirs(folder)
start = time.monotonic()
for i in range(files):
    path = f"{folder}/n{i}"
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)
    os.rename(path + ".tmp", path)
print(round((time.monotonic() - start) * 1000))
PY
)
  discard "$work/floor"
  bench_record "$ITEM" "$label floor" "$ms" ms
}

# The pair count, from the groups (their `flows` add up to it).
"$PM" ports --inventory "$inventory" --format json --flows groups >"$work/groups.json"
pairs=$(python3 -c 'import json, sys; print(sum(g["flows"] for g in json.load(open(sys.argv[1]))["flow_groups"]))' "$work/groups.json")
rm -f "$work/groups.json"
bench_record "$ITEM" "node pairs (flows)" "$pairs" count
if [[ $NODES -gt $PAIRS_MAX ]]; then
  bench_note "$ITEM" "ports pairs json not run past $PAIRS_MAX nodes: $pairs node pairs, O(nodes^2) by nature (about 300 bytes of JSON each: $((pairs * 3 / 10000000)) GB to write, which no second can hold); --flows groups shows the same flows in O(nodes)"
fi

for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  echo "== bench: item 7, $NODES nodes, repetition $rep of $BENCH_REPS"
  if [[ $NODES -le $PAIRS_MAX ]]; then
    measure "ports pairs json" "$work/pairs.json" -- "$PM" ports --inventory "$inventory" --format json
  fi
  measure "ports groups json" "$work/groups.json" -- "$PM" ports --inventory "$inventory" --format json --flows groups
  for backend in nftables iptables firewalld ufw; do
    measure "firewall $backend" "$work/rules-$backend/" -- "$PM" firewall --inventory "$inventory" --all --out "$work/rules-$backend" --format "$backend"
    if [[ $backend == nftables ]]; then nft_bytes=$LAST_BYTES; fi
  done
  fs_floor "firewall nftables" $((NODES + 2)) "$nft_bytes"
done

if [[ $NODES -le $PAIRS_MAX ]]; then
  bench_command "$ITEM" "ports pairs json" "portmatrix ports --inventory inventory.yaml --format json >out.json"
fi
bench_command "$ITEM" "ports groups json" "portmatrix ports --inventory inventory.yaml --format json --flows groups >out.json"
bench_command "$ITEM" "firewall" "portmatrix firewall --inventory inventory.yaml --all --out DIR --format nftables|iptables|firewalld|ufw"
bench_command "$ITEM" "measured with" "sync; /usr/bin/time -f '%M %U %S' (peak RSS, CPU); wall time from date +%s%N around it"
