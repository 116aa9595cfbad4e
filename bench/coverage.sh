#!/usr/bin/env bash
# Benchmark item 10 (issue 20 item 4): the coverage mode for 1,000-5,000 nodes.
#   10e/N  check --estimate on a generated inventory of N nodes (bench/inventory.py;
#         1,000 and 5,000): probes and busiest agent, full and sample, and the
#         estimated wall time (the busiest agent's CPU at the cost per probe
#         item 6 measured, or the slowest node's conntrack table: cpu_s and
#         conntrack_s); the estimate's own time and peak RSS. No namespaces.
#   10a/10b the guide's topology, check --coverage full (10a) and --coverage
#         sample (10b) interleaved in each repetition.
#   10c/N  the coordinator against N simulated agents (pm_agents, one process:
#         tests/netns/check_many_agents.sh), --coverage sample --results
#         failures: its wall time and peak RSS, per flow.
#   usage: BENCH_OUT=FILE coverage.sh PORTMATRIX FLOOR (pm_agents, pm_netprobe in BENCH_TOOLS, default build/tests)
source "$(dirname "$0")/lib.bash"
bench_init coverage "$@"
TOOLS=${BENCH_TOOLS:-$(dirname "$PM_BIN")/tests}
[[ -x $TOOLS/pm_agents && -x $TOOLS/pm_netprobe ]] || ck_die "no pm_agents and pm_netprobe in $TOOLS (BENCH_TOOLS)"
read -ra estimate_sizes <<<"${BENCH_ESTIMATE_SIZES:-1000 5000}"
read -ra agent_sizes <<<"${BENCH_AGENT_SIZES:-250 1000}"

for n in "${estimate_sizes[@]}"; do
  item=10e/$n
  python3 "$(dirname "$0")/inventory.py" "$n" >"$CK_WORK/inventory-$n.yaml"
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    t0=$(ck_now_ms)
    /usr/bin/time -f '%M' -o "$CK_WORK/rss" "$PM_BIN" check --inventory "$CK_WORK/inventory-$n.yaml" --estimate \
      --seed 1 --format json >"$CK_WORK/estimate.json" || ck_die "check --estimate failed at $n nodes"
    bench_record "$item" "estimate wall" $(($(ck_now_ms) - t0)) ms
    bench_record "$item" "estimate peak RSS" $(($(cat "$CK_WORK/rss") / 1024)) MB
  done
  for mode in full sample; do
    for key in flows flows_full probes busiest_probes wall_s cpu_s conntrack_s; do
      bench_record "$item" "$mode $key" "$(bench_py json "$CK_WORK/estimate.json" "$mode.$key")" \
        "$([[ $key == *_s ]] && echo s || echo count)"
    done
  done
  bench_command "$item" "estimate" "portmatrix check --inventory inventory-$n.yaml --estimate --seed 1 --format json"
done

ck_topology
bench_size_conntrack 10a "${#CK_NODES[@]}"
ck_start_cluster
bench_warm_up
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  bench_check 10a 0
  bench_check 10b 0 --coverage sample --seed "$rep"
  bench_record 10b "ports probed" "$(bench_py json "$CK_JSON" coverage.ports_probed)" count
  bench_record 10b "ports required" "$(bench_py json "$CK_JSON" coverage.ports_required)" count
  bench_record 10b "evaluate round" "$(bench_py json "$CK_JSON" rounds_ms.evaluate)" ms
done

for n in "${agent_sizes[@]}"; do
  item=10c/$((n + 2))
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    PM_MANY_AGENTS=$n PM_MANY_AGENTS_SAMPLE_PORTS=8 PM_MANY_AGENTS_MEASURE=$CK_WORK/many.measure \
      bash "$(dirname "$0")/../tests/netns/check_many_agents.sh" "$PM_BIN" "$TOOLS/pm_netprobe" >"$CK_WORK/many.log" 2>&1 ||
      ck_die "check_many_agents.sh at $n nodes failed: $(tail -20 "$CK_WORK/many.log")"
    read -r _ _ wall rss <<<"$(tr '=' ' ' <"$CK_WORK/many.measure" | awk '{print $1, $3, $5, $7}')"
    flows=$(grep -o '[0-9]* flows passed' "$CK_WORK/many.log" | cut -d' ' -f1)
    bench_record "$item" "coordinator wall" "$wall" ms
    bench_record "$item" "coordinator peak RSS" $((rss / 1024)) MB
    bench_record "$item" "flows" "$flows" count
    bench_record "$item" "coordinator RSS per flow" $((rss * 1024 / flows)) bytes
  done
  bench_command "$item" "check" "PM_MANY_AGENTS=$n PM_MANY_AGENTS_SAMPLE_PORTS=8 tests/netns/check_many_agents.sh portmatrix pm_netprobe"
done
ck_finish
