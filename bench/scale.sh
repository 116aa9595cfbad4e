#!/usr/bin/env bash
# Benchmark item 6: `check` on NODES nodes in namespaces on one bridge, the
# real product on each (generated nftables, haproxy on lb1, an agent per
# node). Roles model a cluster that grows by its workers: half the nodes are
# workers (each receives both NodePort ranges, 5,536 ports, plus the
# kubelet, kube-proxy, Flannel and Apinizer ports), 3 masters (5 from 60
# nodes on), a load balancer, a client outside the cluster, and the rest
# MongoDB and Elasticsearch nodes, half each. Every master and the client
# probe every worker's NodePort ranges, so the busiest source's probe count
# grows linearly with the workers; the records say how many.
# Measures the check's wall time and rounds, the CPU time the agents used in
# each measured check (all of them, and the busiest one: every simulated node
# shares this machine's cores, so wall time follows all sources' probes
# together, the busiest agent's CPU what one node would spend on its own),
# and the peak RSS (VmHWM) and socket count of worker1's agent.
#   usage: BENCH_OUT=FILE scale.sh NODES PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
NODES=${1:-}
[[ $NODES =~ ^[0-9]+$ && $NODES -ge 10 && $NODES -le 200 ]] || { echo "usage: $0 NODES(10-200) PORTMATRIX FLOOR" >&2; exit 2; }
shift
bench_init "scale-$NODES" "$@"
CK_READY_TIMEOUT_S=180 # a hundred agents binding thousands of ports each, on two cores
ITEM=6/$NODES

masters=$((NODES < 60 ? 3 : 5))
workers=$((NODES / 2))
data=$((NODES - masters - workers - 2))
mongo=$((data / 2))
SUBNET=10.215.$((RANDOM % 200 + 20))
{
  echo "cluster: scale-$NODES"
  echo "profile: apinizer"
  echo "options: {flannel_backend: vxlan, apinizer_worker_port: 30080}"
  echo "loadbalancer: {vip: $SUBNET.250, port: 6443, interface: eth0}"
  echo "admin_cidrs: [$SUBNET.0/24]"
  echo "agent: {control_port: 7946}"
  echo "nodes:"
  host=1
  node() { echo "  - {name: $1, address: $SUBNET.$host, roles: [$2]}"; host=$((host + 1)); }
  node lb1 loadbalancer
  node client1 client
  for ((i = 1; i <= masters; i++)); do node "master$i" master; done
  for ((i = 1; i <= workers; i++)); do node "worker$i" worker; done
  for ((i = 1; i <= mongo; i++)); do node "mongo$i" mongodb; done
  for ((i = 1; i <= data - mongo; i++)); do node "es$i" elasticsearch; done
} >"$CK_WORK/inventory.yaml"

# Every namespace shares the kernel's one neighbour (ARP) table, so N nodes
# that all talk to each other need ~N^2 entries. Past gc_thresh3 (1,024 by
# default) the kernel drops packets for a destination whose address it
# cannot resolve before they leave the source (in the "table_fulls" count of
# `ip -s ntable show`), and a check reads them as blocked at the source.
# On real hosts each node has its own table of N entries.
ck_sysctl_at_least net.ipv4.neigh.default.gc_thresh3 $((2 * NODES * NODES))
ck_sysctl_at_least net.ipv4.neigh.default.gc_thresh2 $((NODES * NODES))
bench_size_conntrack "$ITEM" "$NODES" # see lib.bash

t0=$(ck_now_ms)
ck_namespaces "$CK_WORK/inventory.yaml"
"$PM_BIN" firewall --inventory "$INVENTORY" --all --out "$CK_WORK/rules" --format nftables >"$CK_WORK/firewall.log" 2>&1 ||
  ck_die "portmatrix firewall failed: $(cat "$CK_WORK/firewall.log")"
for node in "${CK_NODES[@]}"; do
  ck_in "$node" nft -f "$CK_WORK/rules/$node.nft" || ck_die "nft -f $node.nft failed in $node"
done
"$PM_BIN" lb --inventory "$INVENTORY" --format haproxy >"$CK_WORK/haproxy.cfg" || ck_die "portmatrix lb failed"
ck_log "topology: $NODES nodes ($masters masters, $workers workers, $mongo MongoDB, $((data - mongo)) Elasticsearch, lb1, client1), nftables applied ($(ck_since "$t0"))"
ck_start_haproxy "$CK_WORK/haproxy.cfg"
ck_make_token
t0=$(ck_now_ms)
ck_start_agents
bench_record "$ITEM" "agents up" "$(($(ck_now_ms) - t0))" ms
ck_wait_backends

bench_warm_up --deadline 120
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  bench_agents_cpu >"$CK_WORK/cpu-before"
  bench_check "$ITEM" "0|1" --deadline 120
  bench_agents_cpu >"$CK_WORK/cpu-after"
  bench_record_agents_cpu "$ITEM" "$CK_WORK/cpu-before" "$CK_WORK/cpu-after"
  bench_record "$ITEM" "check hello round" "$(bench_py json "$CK_JSON" rounds_ms.hello)" ms
done
bench_py probes "$CK_JSON" --tsv >"$CK_WORK/probes.tsv"
while IFS=$'\t' read -r measure value; do bench_record "$ITEM" "$measure" "$value" count; done <"$CK_WORK/probes.tsv"
bench_rss "$ITEM" worker1
bench_record "$ITEM" "agent worker1 sockets" "$(find "/proc/${CK_AGENT_PID[worker1]}/fd" -lname 'socket:*' | wc -l)" count
bench_note "$ITEM" "$masters masters, $workers workers, $mongo MongoDB, $((data - mongo)) Elasticsearch, lb1, client1"
ck_finish
