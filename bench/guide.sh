#!/usr/bin/env bash
# Benchmark item 5: the guide's whole topology (3 masters, 3 workers, a load
# balancer, 3 MongoDB, 3 Elasticsearch, a client: `portmatrix demo --out DIR --files-only`),
# every node's generated nftables applied, haproxy on lb1, an agent per node;
# the wall time of `check` from client1 over every flow, both NodePort ranges
# (TCP and UDP 30000-32767 to every worker) included.
#   usage: BENCH_OUT=FILE guide.sh PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
bench_init guide "$@"

ck_topology
bench_size_conntrack 5 "${#CK_NODES[@]}"
ck_start_cluster
bench_warm_up
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  bench_check 5 "0|1"
done
bench_py probes "$CK_JSON" >"$CK_WORK/probes"
bench_note 5 "$(cat "$CK_WORK/probes")"
ck_finish
