#!/usr/bin/env bash
# Benchmark item 14: check --estimate's conntrack bound against a measured
# check. Item 1's pair topology (bench_pair_topology PROTO), both nodes with
# their portmatrix nftables rules (stateful: every probe makes a conntrack
# entry on both nodes), and the prober's ceiling at BENCH_CT_CEILING percent
# of nf_conntrack_max (default 1: 2,621 of this kernel's 262,144 entries),
# and a range of 7,768 ports (BENCH_MIN-BENCH_MAX, default 25000-32767: the
# prober reads its table every 20 ms, so a range that fits but for a few
# ports slips past the ceiling), which does not fit: src holds until its
# first entries expire (TCP 10 s after the probe's reset, UDP 30 s after
# its answer), then probes as they do, in windows. Each
# repetition waits until src's table has emptied (the last check's entries
# expired), runs the check, and records its wall time, probe round and src's
# hold (the report's note), beside `check --estimate` of the same inventory
# with the same ceiling and table size (its conntrack_s and wall_s).
#   usage: BENCH_OUT=FILE conntrack.sh tcp|udp PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
PROTO=${1:-}
[[ $PROTO == tcp || $PROTO == udp ]] || { echo "usage: $0 tcp|udp PORTMATRIX FLOOR" >&2; exit 2; }
shift
bench_init "conntrack-$PROTO" "$@"
CEILING=${BENCH_CT_CEILING:-1}
[[ $CEILING =~ ^[1-9][0-9]?$ ]] || ck_die "BENCH_CT_CEILING must be a percentage (1-99), not '$CEILING'"
ITEM=14/$PROTO

BENCH_MIN=${BENCH_MIN:-25000} bench_pair_topology "$PROTO"
INVENTORY=$CK_WORK/inventory.yaml
"$PM_BIN" firewall --inventory "$INVENTORY" --all --out "$CK_WORK/rules" --format nftables >"$CK_WORK/firewall.log" 2>&1 ||
  ck_die "portmatrix firewall failed: $(cat "$CK_WORK/firewall.log")"
for node in src dst; do ck_in "$node" nft -f "$CK_WORK/rules/$node.nft" || ck_die "nft -f $node.nft failed in $node"; done
ck_make_token
ck_start_agents
TABLE_MAX=$(cat /proc/sys/net/netfilter/nf_conntrack_max)

# Until src's table holds no more than the control channel's few live
# entries (its lines: nf_conntrack_count keeps expired ones until the
# kernel's collector comes by, as the agents know).
wait_for_empty_table() {
  local count i
  for ((i = 0; i < 900; i++)); do
    count=$(ck_in src cat /proc/net/nf_conntrack | wc -l)
    ((count <= 16)) && return 0
    sleep 0.1
  done
  ck_die "src's conntrack table still holds $count entries after 90 s"
}

"$PM_BIN" check --inventory "$INVENTORY" --estimate --conntrack-ceiling "$CEILING" --conntrack-max "$TABLE_MAX" \
  --format json >"$CK_WORK/estimate.json" || ck_die "check --estimate failed"
for key in cpu_s conntrack_s wall_s; do
  bench_record "$ITEM" "estimate $key" "$(bench_py json-scaled "$CK_WORK/estimate.json" "full.$key" 1000)" ms
done
bench_record "$ITEM" "estimate bound by conntrack" "$([[ $(bench_py json "$CK_WORK/estimate.json" full.bound_by) == conntrack ]] && echo 1 || echo 0)" count
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  wait_for_empty_table
  bench_check "$ITEM" 0 --conntrack-ceiling "$CEILING" --deadline 120
  bench_record "$ITEM" "src held its probes" "$(bench_py held "$CK_JSON" src)" ms
done
bench_note "$ITEM" "the range: $PROTO $MIN-$MAX ($PORTS ports), from src ($SUBNET.1) to dst ($DST); probes hold at $CEILING% of nf_conntrack_max ($TABLE_MAX): $((TABLE_MAX * CEILING / 100)) entries"
bench_command "$ITEM" "estimate" "portmatrix check --inventory inventory.yaml --estimate --conntrack-ceiling $CEILING --conntrack-max $TABLE_MAX --format json"
ck_finish
