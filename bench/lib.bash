# shellcheck shell=bash
# Shared by the benchmark scenarios (bench/pair.sh, guide.sh, scale.sh), which
# bench/run.sh runs one after the other. A scenario builds its topology with
# the live-check scenario helpers (tests/netns/check_lib.bash: namespaces on a
# bridge, token, agents, haproxy, `check` and the assertions on its report,
# the cleanup trap), then measures each tool BENCH_REPS times, the tools
# interleaved within a repetition so they see the same machine load.
#
# Measurements go to $BENCH_OUT through bench/record.bash.
#
# BENCH_PERF=DIR records a system-wide CPU profile (perf record -a -g) of
# every check into DIR/ITEM.data, for `perf report --comm portmatrix`.
#
# Benchmarks are not tests: a scenario asserts only what makes a time
# meaningful (the check found what the topology holds; nmap and the floor saw
# every port), and exits 1 when that does not hold.

source "$(dirname "${BASH_SOURCE[0]}")/../tests/netns/check_lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/record.bash"

bench_init() { # NAME PORTMATRIX FLOOR
  local name=$1
  [[ $# -eq 3 && -x ${3:-} ]] || { echo "usage: $0 ... PORTMATRIX FLOOR (and BENCH_OUT=FILE)" >&2; exit 2; }
  [[ -n ${BENCH_OUT:-} ]] || { echo "$0: BENCH_OUT (the results file) is not set" >&2; exit 2; }
  FLOOR_BIN=$(realpath "$3")
  ck_init "$name" "$2"
  ulimit -n "$(ulimit -Hn)" # agents and probes hold thousands of sockets
}

# The pair topology of items 1-4 (bench/pair.sh) and bench/cpu.sh: two nodes
# on a bridge, `src` (a master) and `dst` (a worker), and a profile whose
# only requirement is master -> worker on BENCH_MIN-BENCH_MAX (default the
# NodePort range 30000-32767) for PROTO, so dst's agent binds exactly that
# range and src's agent probes exactly that range. Sets MIN, MAX, PORTS,
# SUBNET (src is .1, dst .2) and DST (dst's address); checks run from src.
bench_pair_topology() { # PROTO
  local proto=$1
  MIN=${BENCH_MIN:-30000}
  MAX=${BENCH_MAX:-32767}
  PORTS=$((MAX - MIN + 1))
  CK_CHECK_NODE=src
  SUBNET=10.214.$((RANDOM % 200 + 20))
  cat >"$CK_WORK/profile.yaml" <<EOF
name: bench-$proto
version: "1"
description: One range from masters to workers, for the benchmark
ports:
  range: {port: $MIN-$MAX, protocol: $proto, purpose: benchmark range}
requirements:
  - {from: master, to: worker, ports: [range], reason: benchmark}
EOF
  cat >"$CK_WORK/inventory.yaml" <<EOF
cluster: bench-$proto
profile: $CK_WORK/profile.yaml
agent: {control_port: 7946}
nodes:
  - {name: src, address: $SUBNET.1, roles: [master]}
  - {name: dst, address: $SUBNET.2, roles: [worker]}
EOF
  ck_namespaces "$CK_WORK/inventory.yaml"
  DST=${CK_ADDRESS[dst]}
}

# `portmatrix check` from $CK_CHECK_NODE (ck_check), exit status EXPECTED
# ("0|1": either); records its wall time, the probe round's (rounds_ms.probe
# of the report) and how many flows failed, with their diagnoses as a note.
bench_check() { # ITEM EXPECTED [CHECK ARGS...]
  local item=$1 expected=$2
  shift 2
  local perf_pid=''
  if [[ -n ${BENCH_PERF:-} ]]; then # a system-wide CPU profile while the check runs
    mkdir -p "$BENCH_PERF"
    ck_spawn "perf record" perf record -a -g -e cpu-clock -F 499 -o "$BENCH_PERF/${item//\//-}.data" \
      </dev/null >/dev/null 2>"$BENCH_PERF/${item//\//-}.log"
    perf_pid=$CK_PID
    sleep 1
  fi
  ck_check "bench-${item//\//-}" "$@"
  [[ -z $perf_pid ]] || ck_stop "$perf_pid" INT
  [[ "|$expected|" == *"|$CK_RC|"* ]] ||
    ck_die "check exited $CK_RC, expected $expected: $(head -c 1000 "$CK_WORK/bench-${item//\//-}.err")"
  bench_record "$item" "check wall" "$CK_MS" ms
  bench_record "$item" "check probe round" "$(bench_py json "$CK_JSON" rounds_ms.probe)" ms
  bench_record "$item" "flows failed" "$(bench_py json "$CK_JSON" summary.failed)" count
  bench_record "$item" "flows skipped" "$(bench_py json "$CK_JSON" summary.skipped)" count
  if [[ $CK_RC -ne 0 ]]; then
    bench_py diagnoses "$CK_JSON" >"$CK_WORK/diagnoses"
    bench_note "$item" "check exited $CK_RC: $(cat "$CK_WORK/diagnoses")"
  fi
  bench_command "$item" "check" "ip netns exec <$CK_CHECK_NODE> portmatrix check --inventory $(basename "$INVENTORY")" \
    "--token-file token --format json --output report.json $*"
}

# nmap in NODE's namespace against ADDRESS: records its wall time, ports/s and
# how many ports it saw in each state; the states must add up to the ports asked.
bench_nmap() { # ITEM NODE ADDRESS PORTS NMAP-ARGS...
  local item=$1 node=$2 address=$3 ports=$4 t0 ms count
  shift 4
  local out=$CK_WORK/nmap-${item//\//-}.xml
  t0=$(ck_now_ms)
  ck_in "$node" nmap -n -Pn "$@" -p "$ports" -oX "$out" "$address" >/dev/null ||
    ck_die "nmap $* -p $ports $address failed"
  ms=$(($(ck_now_ms) - t0))
  count=$(bench_py range-size "$ports")
  bench_record "$item" "nmap wall" "$ms" ms
  bench_record "$item" "nmap ports/s" "$((count * 1000 / (ms > 0 ? ms : 1)))" ports/s
  bench_py nmap-states "$out" "$count" >"$CK_WORK/nmap-states" || ck_die "nmap: $(cat "$CK_WORK/nmap-states")"
  bench_note "$item" "nmap saw $(cat "$CK_WORK/nmap-states") of $count ports"
  bench_command "$item" "nmap" "ip netns exec <$node> nmap -n -Pn $* -p $ports -oX out.xml $address"
}

# The floor (bench/floor.cpp) in NODE's namespace: records its wall time and
# probe rate; its counts must match EXPECT ("open=N", "timeout=N", ...).
bench_floor() { # ITEM NODE EXPECT FLOOR-ARGS...
  local item=$1 node=$2 expect=$3 line
  shift 3
  line=$(ck_in "$node" "$FLOOR_BIN" "$@") || ck_die "floor $* failed"
  bench_py floor-check "$line" "$expect" >"$CK_WORK/floor-check" || ck_die "floor $*: $(cat "$CK_WORK/floor-check")"
  bench_record "$item" "floor wall" "$(bench_py json-text "$line" seconds 1000)" ms
  bench_record "$item" "floor probes/s" "$(bench_py json-text "$line" probes_per_s)" probes/s
  bench_note "$item" "floor counted $(cat "$CK_WORK/floor-check")"
  bench_command "$item" "floor" "ip netns exec <$node> floor $*"
}

bench_rss() { # ITEM NODE: the peak resident set (VmHWM) of NODE's agent
  local kb
  kb=$(awk '/^VmHWM:/ {print $2}' "/proc/${CK_AGENT_PID[$2]}/status") || ck_die "no agent process on $2"
  bench_record "$1" "agent $2 peak RSS" "$((kb / 1024))" MB
}

# CPU time (user + system, ms) every agent has used so far, one "NODE MS" line
# each. /proc/PID/stat fields 14 and 15 count the whole process, its threads
# included, in clock ticks; the fields are read after the command's ")".
bench_agents_cpu() {
  local node tick
  tick=$(getconf CLK_TCK)
  for node in "${!CK_AGENT_PID[@]}"; do
    awk -v node="$node" -v tick="$tick" '{ sub(/.*\) /, ""); print node, int(($12 + $13) * 1000 / tick) }' \
      "/proc/${CK_AGENT_PID[$node]}/stat" 2>/dev/null
  done
}

# Records what the agents' CPU (bench_agents_cpu before and after, as files)
# says of one check: all agents' CPU, its share of the machine's cores over
# the check's wall time, and the most one agent used (and whose).
bench_record_agents_cpu() { # ITEM BEFORE AFTER
  local item=$1 total busiest busiest_node
  read -r total busiest busiest_node < <(awk 'NR == FNR {before[$1] = $2; next}
    {d = $2 - before[$1]; total += d; if (d > most) {most = d; who = $1}}
    END {print total + 0, most + 0, who}' "$2" "$3")
  bench_record "$item" "agents CPU" "$total" ms
  bench_record "$item" "busiest agent CPU" "$busiest" ms
  bench_record "$item" "agents CPU / (cores x check wall)" \
    "$(python3 -c "print(round($total / ($(nproc) * max($CK_MS, 1)), 2))")" x
  bench_note "$item" "the agent that used the most CPU in a measured check: $busiest_node"
}

# The kernel keeps one connection-tracking hash table (nf_conntrack_buckets
# chains) for every namespace. Each probe leaves an entry in the source's and
# the destination's namespace for 10-30 s, so with all nodes' entries in one
# table the chains grow with the simulated cluster and every packet's lookup
# walks them (__nf_conntrack_find_get was 5% of the guide's check, the
# largest kernel symbol). On real hosts each node has its own table of the
# host's default size. This sizes the shared one as NODES such tables: NODES
# x the current size, at most 2^24 buckets (128 MiB of chain heads); the
# trap restores it. BENCH_CT_BUCKETS=0 keeps the default (for comparison).
bench_size_conntrack() { # ITEM NODES
  local item=$1 nodes=$2 per_node buckets
  if [[ ${BENCH_CT_BUCKETS:-1} == 0 ]]; then
    bench_note "$item" "conntrack hash left at the default: $(sysctl -n net.netfilter.nf_conntrack_buckets) buckets shared by the $nodes nodes (BENCH_CT_BUCKETS=0)"
    return 0
  fi
  per_node=${CK_SYSCTL_SAVED[net.netfilter.nf_conntrack_buckets]:-$(sysctl -n net.netfilter.nf_conntrack_buckets)}
  buckets=$((nodes * per_node))
  ((buckets <= 1 << 24)) || buckets=$((1 << 24))
  ck_sysctl_at_least net.netfilter.nf_conntrack_buckets "$buckets"
  bench_note "$item" "conntrack hash sized as $nodes hosts' own tables: $buckets buckets ($nodes x $per_node, the host's default, at most 2^24); BENCH_CT_BUCKETS=0 keeps the default"
}

# One check before the measured ones (ARP, page cache, the agents' first
# allocations), with the measured checks' arguments (a warm-up cut short by
# the default --deadline warms only part of the flows); BENCH_WARMUP=0 (the
# quick run) skips it.
bench_warm_up() { # [CHECK ARGS...]
  [[ ${BENCH_WARMUP:-1} == 0 ]] || ck_check warmup "$@"
}
