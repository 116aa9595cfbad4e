#!/usr/bin/env bash
# Benchmark item 13: where a pair check's CPU goes. Item 1's topology and
# range (bench_pair_topology tcp). Each repetition runs BENCH_CPU_CHECKS
# checks (default 12) with the agents as they are (13a), then restarts both
# agents without CAP_NET_RAW (setpriv --bounding-set=-net_raw: no inbound
# capture and no departures watcher, as on a node that denies the agent
# that capability) and runs as many (13b). Records each check's wall time
# and probe round, and per repetition the source's and the destination's
# agent CPU a check (/proc/PID/stat), as the mean over its checks: a check
# takes 0.1-0.2 s, a few of the kernel's clock ticks.
#   usage: BENCH_OUT=FILE cpu.sh PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
bench_init cpu "$@"

CHECKS=${BENCH_CPU_CHECKS:-12}
[[ $CHECKS =~ ^[1-9][0-9]*$ ]] || ck_die "BENCH_CPU_CHECKS must be a positive number, not '$CHECKS'"
bench_pair_topology tcp
ck_make_token
PM_WITH_RAW=$PM_BIN
PM_WITHOUT_RAW=$CK_WORK/portmatrix-without-net-raw
cat >"$PM_WITHOUT_RAW" <<EOF
#!/bin/sh
exec setpriv --bounding-set=-net_raw -- "$PM_WITH_RAW" "\$@"
EOF
chmod +x "$PM_WITHOUT_RAW"

# Starts both agents with BINARY and waits until their logs say whether
# they capture (EXPECTED: "capture on" or "capture off").
start_agents() { # BINARY EXPECTED
  local node
  PM_BIN=$1
  ck_start_agents
  PM_BIN=$PM_WITH_RAW # the checks run as they are
  for node in src dst; do
    grep -q "$2" "$CK_WORK/agent-$node.log" ||
      ck_die "the agent on $node does not say '$2': $(head -c 500 "$CK_WORK/agent-$node.log")"
  done
}

stop_agents() {
  ck_stop_agent src
  ck_stop_agent dst
}

# One warm-up check, then CHECKS measured ones; records the agents' mean CPU a check.
measure() { # ITEM REP
  local item=$1 rep=$2 i src dst
  ck_check "warmup-$item-$rep"
  # The agents are idle between checks: their CPU over the loop is the checks'.
  bench_agents_cpu >"$CK_WORK/cpu.before"
  for ((i = 1; i <= CHECKS; i++)); do bench_check "$item" 0; done
  bench_agents_cpu >"$CK_WORK/cpu.after"
  read -r src dst < <(awk 'NR == FNR {before[$1] = $2; next} {used[$1] = $2 - before[$1]}
    END {print used["src"] + 0, used["dst"] + 0}' "$CK_WORK/cpu.before" "$CK_WORK/cpu.after")
  bench_record "$item" "source agent CPU a check" "$((src / CHECKS))" ms
  bench_record "$item" "destination agent CPU a check" "$((dst / CHECKS))" ms
  bench_record "$item" "agents CPU a check" "$(((src + dst) / CHECKS))" ms
}

for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  start_agents "$PM_WITH_RAW" "capture on"
  measure 13a "$rep"
  stop_agents
  start_agents "$PM_WITHOUT_RAW" "capture off"
  measure 13b "$rep"
  stop_agents
done
for item in 13a 13b; do
  bench_note "$item" "the range: tcp $MIN-$MAX ($PORTS ports), from src ($SUBNET.1) to dst ($DST); $CHECKS checks a repetition, after one warm-up"
done
bench_note 13b "agents started through setpriv --bounding-set=-net_raw: no AF_PACKET capture, so no departures watcher either; the check says so and its diagnosis degrades to filtered"
ck_finish
