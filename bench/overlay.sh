#!/usr/bin/env bash
# Issue 21, point 5: what the overlay's own probes (shaped, full size; the
# path-MTU search runs only where a full-size probe was lost) cost the
# guide's check. The guide's topology as guide.sh builds it; the same
# namespaces, haproxy and token serve two builds in turn, each with its own
# agents: BENCH_BASELINE (a portmatrix from before the overlay probes) and
# PORTMATRIX, alternating per repetition so both see the same machine load.
# Records each check's wall time, its probe round and its mtu round (0 for the
# baseline, which has none) under item "overlay/baseline" and "overlay/new".
#   usage: BENCH_OUT=FILE BENCH_BASELINE=OLD-PORTMATRIX overlay.sh PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
[[ -x ${BENCH_BASELINE:-} ]] || { echo "$0: BENCH_BASELINE (a portmatrix built before the overlay probes) is not set" >&2; exit 2; }
bench_init overlay "$@"
NEW_BIN=$PM_BIN
OLD_BIN=$(realpath "$BENCH_BASELINE")

ck_topology
bench_size_conntrack overlay "${#CK_NODES[@]}"
ck_start_cluster

# Each build checks the cluster its own demo describes: its inventory and
# its profile's firewalls (the baseline predates issue 17's least-privilege
# apinizer and the role admin, so its flows differ by a few of the guide's
# 200: worker -> master etcd still allowed, no admin -> API flows).
INVENTORY_FILE=$CK_WORK/demo/inventory.yaml
cp -r "$CK_WORK/demo" "$CK_WORK/demo-new"
"$OLD_BIN" demo --out "$CK_WORK/demo-baseline" --files-only >"$CK_WORK/demo-baseline.log" 2>&1 ||
  ck_die "the baseline's demo --out failed: $(tail -3 "$CK_WORK/demo-baseline.log")"

# Stops every agent and starts BIN's (the check that follows is BIN's too),
# on BIN's own inventory and firewalls.
use_build() { # BIN
  local node dir=$CK_WORK/demo-new
  for node in "${CK_NODES[@]}"; do ck_stop_agent "$node"; done
  [[ $1 != "$OLD_BIN" ]] || dir=$CK_WORK/demo-baseline
  cp "$dir/inventory.yaml" "$INVENTORY_FILE"
  ck_apply_firewalls "$dir"
  PM_BIN=$1
  ck_start_agents
  ck_wait_backends
}

for ((rep = 1; rep <= ${BENCH_REPS:-5}; rep++)); do
  for build in baseline new; do
    if [[ $build == baseline ]]; then use_build "$OLD_BIN"; else use_build "$NEW_BIN"; fi
    # The baseline's report predates fields the schema now requires: its JSON
    # is written where bench_check reads it, without the schema check.
    if [[ $build == baseline ]]; then
      [[ $rep -gt 1 ]] || bench_warm_up --format json --output "$CK_WORK/warmup.json"
      bench_check "overlay/$build" 0 --format json --output "$CK_WORK/bench-overlay-baseline.json"
    else
      [[ $rep -gt 1 ]] || bench_warm_up
      bench_check "overlay/$build" 0
    fi
    bench_record "overlay/$build" "check mtu round" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rounds_ms"].get("mtu", 0))' "$CK_JSON")" ms
    bench_record "overlay/$build" "pairs measured" "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("pairs", [])))' "$CK_JSON")" count
  done
done
bench_note overlay/new "the guide's check with the overlay probes: per overlay flow (UDP 8472 between masters and workers, 30 flows) a VXLAN-shaped probe and a full-size one (1500 bytes, DF) beside the plain one, in the same probe round"
ck_finish
