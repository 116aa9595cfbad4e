# shellcheck shell=bash
# Shared by the network-namespace scenarios (tests/netns/*.sh): they prove
# that the host firewalls portmatrix generates admit every flow of the
# requirement matrix and drop what is outside it, on the guide's topology.
#
# A scenario defines two functions for its backend,
#   apply_rules NAMESPACE FILE   apply one node's generated file in its namespace
#   dump_rules NAMESPACE         print the namespace's ruleset, counters stripped
# then calls, top to bottom:
#   netns_init BACKEND "TOOLS" PORTMATRIX PM_NETPROBE
#                                skips (skip.bash: 77, under CI a failure) unless
#                                root with ip netns and TOOLS;
#                                work dir, unique names, cleanup trap
#   netns_build_topology         the demo inventory: one namespace per node, all on
#                                one bridge in a switch namespace, VIP on lb1
#   netns_apply_rules FORMAT SUFFIX
#                                generate every node's rules, apply twice, compare
#   netns_start_listeners        pm_netprobe listen on every port a node receives
#   netns_check_flows            one pm_netprobe probe per source node, then assert
#   netns_finish                 summary; exits 0 or 1
#
# Everything lives in namespaces named after this run; the cleanup trap kills
# only the processes started here and deletes only those namespaces, on
# success, failure or interruption. PM_NETNS_KEEP=1 keeps the work directory.

VIP_NODE=lb1             # the demo's load balancer holds the VIP
PROBE_TIMEOUT_MS=1000    # a dropped packet costs one timeout, in parallel
PROBE_PARALLEL=${PM_NETNS_PARALLEL:-1024} # sockets in flight per source (3 masters x 4096 overload 2 cores)
RETRY_TIMEOUT_MS=3000    # second chance, alone, for expected-open ports that timed out
READY_TIMEOUT_S=30

# Checks beyond the flow list, all on ports with a listener up, so "filtered"
# means the destination's firewall dropped the packet, not that nothing listens.
#   expect    from     to       proto port   why
NETNS_EXTRA_CHECKS='
filtered  client1  master1  tcp  2379   etcd from outside the cluster
filtered  client1  master1  tcp  10250  kubelet from outside the cluster
filtered  worker1  master1  tcp  10255  read-only kubelet port, in no requirement
filtered  client1  mongo1   tcp  27017  MongoDB from outside the cluster
filtered  client1  es1      tcp  9300   Elasticsearch transport from outside
filtered  worker1  es1      tcp  9300   Elasticsearch transport is es <-> es only
filtered  es1      mongo1   tcp  27017  MongoDB is for workers and its replica set
filtered  client1  master1  udp  8472   Flannel VXLAN from outside the cluster
filtered  client1  worker1  udp  8472   Flannel VXLAN from outside the cluster
open      client1  master1  tcp  22     SSH from admin_cidrs (the whole /24)
open      mongo1   worker1  tcp  7946   portmatrix agent control from admin_cidrs
open      mongo1   master1  tcp  6443   kubectl from admin_cidrs (the whole /24 holds mongo1)
open      mongo1   vip      tcp  6443   kubectl through the VIP from admin_cidrs
filtered  mongo1   master1  tcp  2379   etcd is for the masters only
'

NAMESPACES=()            # created by this run, deleted by the trap
CLEANUP_PATHS=()         # files and directories outside WORK created by this run (/etc/netns/NS)
declare -A RUNNING=()    # pid -> what, started by this run and not yet reaped
NODES=()                 # node names, in flow order
declare -A ADDRESS=()    # node -> address
declare -A NS=()         # node -> namespace
VIP=''
FAILURES=0

log() { printf '[%s] %s\n' "$BACKEND" "$*"; }
fail() { FAILURES=$((FAILURES + 1)); printf '[%s] FAIL: %s\n' "$BACKEND" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$BACKEND" "$*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/skip.bash"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
seconds_since() { local ms=$(($(now_ms) - $1)); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }

# FILE, a JSON report, is valid against docs/schema/SCHEMA.schema.json: says
# so, or prints why not and returns 1 (the caller counts the failure).
netns_schema_valid() { # SCHEMA FILE
  local out
  /usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed (reports are validated)"
  if out=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../schema/validate.py" "$1" "$2" 2>&1); then
    log "ok: $out"
    return 0
  fi
  head -20 <<<"$out" | sed 's/^/    /'
  return 1
}

netns_init() {
  BACKEND=$1
  local tools=$2 tool
  shift 2
  if [[ $# -ne 2 ]]; then
    echo "usage: $0 PORTMATRIX_BINARY PM_NETPROBE_BINARY" >&2
    exit 2
  fi
  [[ -x $1 && -x $2 ]] || { echo "$0: $1 or $2 is not an executable" >&2; exit 2; }
  PM_BIN=$(realpath "$1")
  PM_PROBE=$(realpath "$2")
  [[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces and firewall rules)"
  PATH=$PATH:/usr/sbin:/sbin # ip, nft, ipset live there; not every root PATH has them
  for tool in ip $tools; do
    command -v "$tool" >/dev/null || skip "$tool is not installed"
  done
  ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"

  START_MS=$(now_ms)
  PREFIX=pm$$$(printf '%04x' $((RANDOM)))
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-netns-$BACKEND.XXXXXX")
  trap netns_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  SWITCH=$PREFIX-sw
  netns_add "$SWITCH" 2>/dev/null || skip "cannot create a network namespace"
  log "run $PREFIX: portmatrix $PM_BIN, work dir $WORK"
}

netns_add() {
  ip netns add "$1" || return # (set -e does not apply under netns_add ... || skip)
  NAMESPACES+=("$1")
}

# Gives namespace NS its own /etc/resolv.conf naming NAMESERVER (`ip netns
# exec` bind-mounts /etc/netns/NS/* over /etc); the trap removes it.
netns_resolv_conf() { # NS NAMESERVER
  mkdir -p "/etc/netns/$1"
  CLEANUP_PATHS+=("/etc/netns/$1")
  echo "nameserver $2" >"/etc/netns/$1/resolv.conf"
}

# True while `pid` runs (a zombie, exited but not reaped, does not count).
netns_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# Starts "$@" in the background with the caller's redirections (stdin too:
# without <&0 an asynchronous command reads /dev/null); its pid goes to
# RUNNING and to $LAST_PID.
netns_spawn() {
  local what=$1
  shift
  "$@" <&0 &
  LAST_PID=$!
  RUNNING[$LAST_PID]=$what
}

# Waits for a pid started by netns_spawn and forgets it; returns its status.
netns_reap() {
  local rc=0
  wait "$1" || rc=$?
  unset 'RUNNING[$1]'
  return "$rc"
}

netns_cleanup() {
  local rc=$? pid ns i
  trap - EXIT INT TERM
  set +e
  # Our background jobs (jobs -p) cover a process started just before the
  # signal came, before its pid reached RUNNING.
  for pid in $(jobs -p); do RUNNING[$pid]=${RUNNING[$pid]:-job}; done
  for pid in "${!RUNNING[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${!RUNNING[@]}"; do
    for ((i = 0; i < 50; i++)); do netns_alive "$pid" || break; sleep 0.1; done
    netns_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ((i = ${#NAMESPACES[@]} - 1; i >= 0; i--)); do ip netns delete "${NAMESPACES[i]}" 2>/dev/null; done
  for i in "${CLEANUP_PATHS[@]}"; do rm -rf "$i"; done
  if [[ -n ${WORK:-} ]]; then
    if [[ ${PM_NETNS_KEEP:-0} == 1 ]]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  [[ $rc -eq 77 || ${#NAMESPACES[@]} -eq 0 ]] ||
    log "cleanup: stopped ${#RUNNING[@]} process(es), deleted ${#NAMESPACES[@]} namespace(s)"
  exit "$rc"
}

netns_note_node() {
  [[ -n ${ADDRESS[$1]:-} ]] && return
  NODES+=("$1")
  ADDRESS[$1]=$2
}

netns_build_topology() {
  local t0 from faddr to taddr proto min max expect node ns i=0
  t0=$(now_ms)
  "$PM_BIN" demo --out "$WORK/demo" --files-only >"$WORK/demo.log" 2>&1 || die "portmatrix demo failed: $(tail -5 "$WORK/demo.log")"
  INVENTORY=$WORK/demo/inventory.yaml
  "$PM_BIN" ports --inventory "$INVENTORY" --format json >"$WORK/ports.json" || die "portmatrix ports failed"
  "$PM_PROBE" flows <"$WORK/ports.json" >"$WORK/flows.txt" || die "cannot read the flows of ports --format json"

  # The nodes and their addresses, as the flows name them; "vip" is the VIP.
  while read -r from faddr to taddr proto min max expect; do
    netns_note_node "$from" "$faddr"
    if [[ $to == vip ]]; then VIP=$taddr; else netns_note_node "$to" "$taddr"; fi
  done <"$WORK/flows.txt"
  [[ -n $VIP ]] || die "no flow goes to the VIP"
  [[ -n ${ADDRESS[$VIP_NODE]:-} ]] || die "the inventory has no node $VIP_NODE"

  ip -n "$SWITCH" link add br0 type bridge
  ip -n "$SWITCH" link set br0 up
  for node in "${NODES[@]}"; do
    i=$((i + 1))
    ns=$PREFIX-$node
    NS[$node]=$ns
    netns_add "$ns"
    ip -n "$SWITCH" link add "p$i" type veth peer name eth0 netns "$ns"
    ip -n "$SWITCH" link set "p$i" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "${ADDRESS[$node]}/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  ip -n "${NS[$VIP_NODE]}" addr add "$VIP/24" dev eth0

  # Before any firewall, every node reaches every address (nothing listens on
  # port 9: refused). This proves the wiring and resolves the neighbours, so
  # the later bursts of thousands of packets are not dropped waiting for ARP.
  netns_probe_all "$WORK/warmup" 2000 64 netns_warmup_targets
  for node in "${NODES[@]}"; do
    if grep -v ' open=0 refused=1 filtered=0 other=0$' "$WORK/warmup/$node.out"; then
      die "$node does not reach the lines above before any firewall is applied: the topology is broken"
    fi
  done
  log "topology: ${#NODES[@]} nodes on one bridge, VIP $VIP on $VIP_NODE, every node reaches every address ($(seconds_since "$t0"))"
}

netns_warmup_targets() { # NODE DIR: writes DIR/NODE.in
  local node=$1 other
  : >"$2/$node.in"
  for other in "${NODES[@]}"; do
    [[ $other == "$node" ]] || echo "tcp ${ADDRESS[$other]} 9 9" >>"$2/$node.in"
  done
  [[ $node == "$VIP_NODE" ]] || echo "tcp $VIP 9 9" >>"$2/$node.in"
}

# Runs one pm_netprobe probe per node in parallel: DIR/NODE.in -> DIR/NODE.out.
# WRITE_TARGETS NODE DIR writes DIR/NODE.in first (empty: nothing to probe).
netns_probe_all() { # DIR TIMEOUT_MS PARALLEL WRITE_TARGETS
  local dir=$1 timeout=$2 parallel=$3 write=$4 node
  local -A pids=()
  mkdir -p "$dir"
  for node in "${NODES[@]}"; do
    "$write" "$node" "$dir"
    [[ -s $dir/$node.in ]] || continue
    netns_spawn "probe from $node" ip netns exec "${NS[$node]}" "$PM_PROBE" probe --timeout-ms "$timeout" --parallel "$parallel" \
      <"$dir/$node.in" >"$dir/$node.out" 2>"$dir/$node.err"
    pids[$node]=$LAST_PID
  done
  for node in "${!pids[@]}"; do
    netns_reap "${pids[$node]}" || die "pm_netprobe probe failed in $node: $(cat "$dir/$node.err")"
  done
}

# Applies one node's file; a failure is noted, grouped by its output, and the
# scenario goes on, so the probes still show what the partly applied rules do.
declare -A APPLY_FAILED=() APPLY_LOG=()
netns_apply() { # NODE FILE first|second
  local log=$WORK/apply-$1-$3.log sum
  apply_rules "${NS[$1]}" "$2" >"$log" 2>&1 && return 0
  sum=$(cksum <"$log")
  [[ " ${APPLY_FAILED[$sum]:-} " == *" $1 "* ]] || APPLY_FAILED[$sum]+=" $1"
  APPLY_LOG[$sum]=$log
}

netns_apply_rules() { # FORMAT SUFFIX
  local format=$1 suffix=$2 node ns file t0 rules=0 failures=$FAILURES
  t0=$(now_ms)
  "$PM_BIN" firewall --inventory "$INVENTORY" --all --out "$WORK/rules" --format "$format" >"$WORK/firewall.log" 2>&1 ||
    die "portmatrix firewall --format $format failed: $(cat "$WORK/firewall.log")"
  for file in "$WORK/rules"/*; do
    node=$(basename "$file" "$suffix")
    [[ -n ${NS[$node]:-} ]] || die "rules for a node outside the topology: $file"
  done
  for node in "${NODES[@]}"; do
    ns=${NS[$node]}
    file=$WORK/rules/$node$suffix
    [[ -s $file ]] || die "no $format rules for $node (expected $file)"
    netns_apply "$node" "$file" first
    dump_rules "$ns" >"$WORK/ruleset1-$node"
    netns_apply "$node" "$file" second
    dump_rules "$ns" >"$WORK/ruleset2-$node"
    [[ -s $WORK/ruleset1-$node ]] || fail "$node: the ruleset is empty after applying $file"
    if ! diff -u "$WORK/ruleset1-$node" "$WORK/ruleset2-$node" >"$WORK/ruleset-$node.diff"; then
      fail "$node: applying $file twice changed the ruleset (not idempotent):"
      sed 's/^/    /' "$WORK/ruleset-$node.diff"
    fi
    rules=$((rules + $(wc -l <"$WORK/ruleset2-$node")))
  done
  for file in "${!APPLY_FAILED[@]}"; do
    fail "applying the $format rules failed on${APPLY_FAILED[$file]}:"
    sed 's/^/    /' "${APPLY_LOG[$file]}"
  done
  if [[ $FAILURES -eq $failures ]]; then
    log "rules: ${#NODES[@]} $format files applied twice, ruleset identical after the second apply ($rules lines in all; $(seconds_since "$t0"))"
  else
    log "rules: the $format files do not apply cleanly; going on with what was applied ($(seconds_since "$t0"))"
  fi
}

# The checks, one per line: "EXPECT CATEGORY FROM TO PROTO MIN MAX WHY".
netns_write_checks() {
  local from faddr to taddr proto min max expect why
  while read -r from faddr to taddr proto min max expect; do
    [[ $proto == tcp || $proto == udp ]] || continue # vrrp: not a port
    if [[ $expect == allow ]]; then
      echo "open allow $from $to $proto $min $max flow in the matrix"
    else
      echo "filtered deny $from $to $proto $min $max flow the matrix denies"
    fi
  done <"$WORK/flows.txt"
  while read -r expect from to proto min why; do
    [[ -n $expect ]] || continue
    [[ -n ${ADDRESS[$from]:-} && ( $to == vip || -n ${ADDRESS[$to]:-} ) ]] ||
      die "extra check $from -> $to: no such node in the demo inventory"
    if [[ $expect == open ]]; then
      echo "open admin $from $to $proto $min $min $why"
    else
      echo "filtered outside $from $to $proto $min $min $why"
    fi
  done <<<"$NETNS_EXTRA_CHECKS"
}

# Where traffic to TO ("vip" or a node) goes: sets TARGET_NODE and TARGET_ADDRESS.
netns_target() { # TO
  if [[ $1 == vip ]]; then
    TARGET_NODE=$VIP_NODE TARGET_ADDRESS=$VIP
  else
    TARGET_NODE=$1 TARGET_ADDRESS=${ADDRESS[$1]}
  fi
}

netns_start_listeners() {
  local t0 expect category from to proto min max why node address key count=0 sockets=0
  local -A tcp=() udp=() pids=()
  t0=$(now_ms)
  netns_write_checks >"$WORK/checks.txt"
  while read -r expect category from to proto min max why; do
    netns_target "$to"
    key="$TARGET_NODE $TARGET_ADDRESS"
    tcp[$key]=${tcp[$key]:-}
    udp[$key]=${udp[$key]:-}
    if [[ $proto == tcp ]]; then tcp[$key]+=",$min-$max"; else udp[$key]+=",$min-$max"; fi
  done <"$WORK/checks.txt"

  mkdir -p "$WORK/listen"
  for key in "${!tcp[@]}"; do
    read -r node address <<<"$key"
    netns_spawn "listener $key" ip netns exec "${NS[$node]}" "$PM_PROBE" listen --address "$address" \
      --tcp "${tcp[$key]#,}" --udp "${udp[$key]#,}" --identity "$node" --ready-file "$WORK/listen/$node-$address.ready" \
      </dev/null >"$WORK/listen/$node-$address.log" 2>&1
    pids[$key]=$LAST_PID
    count=$((count + 1))
  done

  local deadline=$(($(now_ms) + READY_TIMEOUT_S * 1000)) waiting
  while :; do
    waiting=0
    for key in "${!pids[@]}"; do
      read -r node address <<<"$key"
      [[ -f $WORK/listen/$node-$address.ready ]] && continue
      netns_alive "${pids[$key]}" || die "the listener on $key exited: $(cat "$WORK/listen/$node-$address.log")"
      waiting=$((waiting + 1))
    done
    [[ $waiting -eq 0 ]] && break
    [[ $(now_ms) -lt $deadline ]] || die "$waiting listener(s) not ready after ${READY_TIMEOUT_S}s"
    sleep 0.1
  done
  LISTENERS=("${pids[@]}")
  for key in "${!pids[@]}"; do
    read -r node address <<<"$key"
    sockets=$((sockets + $(cut -d' ' -f1 "$WORK/listen/$node-$address.ready")))
  done
  log "listeners: $count pm_netprobe listen processes, $sockets sockets bound ($(seconds_since "$t0"))"
}

netns_probe_targets() { # NODE DIR: this node's checks -> DIR/NODE.in and DIR/NODE.checks
  local source=$1 dir=$2 expect category from to proto min max why
  : >"$dir/$source.in"
  : >"$dir/$source.checks"
  while read -r expect category from to proto min max why; do
    [[ $from == "$source" ]] || continue
    netns_target "$to"
    echo "$proto $TARGET_ADDRESS $min $max" >>"$dir/$source.in"
    echo "$expect $category $from $to $proto $min $max $why" >>"$dir/$source.checks"
  done <"$WORK/checks.txt"
}

netns_keep_targets() { touch "$2/$1.in"; } # NODE DIR: DIR/NODE.in is written already

# Compares DIR/NODE.out with DIR/NODE.checks, line by line. In the first pass,
# an expected-open line whose ports only timed out goes to the retry directory
# instead of failing: a firewall drops a port every time, while on a loaded
# machine a port can merely be slow; the retry probes such lines again, alone,
# with a longer timeout, and only its verdict counts.
netns_assert() { # DIR first|retry
  local dir=$1 pass=$2 node expect category from to proto min max why result o r f x ports got
  for node in "${NODES[@]}"; do
    [[ -s $dir/$node.in ]] || continue
    [[ $(wc -l <"$dir/$node.out") -eq $(wc -l <"$dir/$node.in") ]] ||
      die "pm_netprobe probe in $node printed $(wc -l <"$dir/$node.out") lines for $(wc -l <"$dir/$node.in") targets"
    while read -r expect category from to proto min max why <&3 && read -r result <&4; do
      read -r _ _ _ _ o r f x <<<"$result"
      o=${o#open=} r=${r#refused=} f=${f#filtered=} x=${x#other=}
      ports=$((max - min + 1))
      if [[ $pass == first ]]; then
        CHECKS[$category]=$((${CHECKS[$category]:-0} + 1))
        PORTS[$category]=$((${PORTS[$category]:-0} + ports))
      fi
      if [[ $expect == open ]]; then got=$o; else got=$f; fi
      [[ $got -eq $ports ]] && continue
      if [[ $pass == first && $expect == open && $((o + f)) -eq $ports ]]; then
        echo "$result" | cut -d' ' -f1-4 >>"$WORK/retry/$from.in"
        echo "$expect $category $from $to $proto $min $max $why" >>"$WORK/retry/$from.checks"
        RETRIED=$((RETRIED + 1))
        continue
      fi
      FAILED[$category]=$((${FAILED[$category]:-0} + 1))
      fail "$from -> $to $proto $min-$max ($category: $why): expected all $ports port(s) $expect; probe: $result"
    done 3<"$dir/$node.checks" 4<"$dir/$node.out"
  done
}

netns_check_flows() {
  local t0 pid category label
  declare -gA CHECKS=() PORTS=() FAILED=()
  RETRIED=0
  t0=$(now_ms)
  netns_probe_all "$WORK/probe" "$PROBE_TIMEOUT_MS" "$PROBE_PARALLEL" netns_probe_targets
  log "probes: one pm_netprobe probe per source node, ${#NODES[@]} in parallel ($(seconds_since "$t0"))"
  mkdir -p "$WORK/retry"
  netns_assert "$WORK/probe" first
  if [[ $RETRIED -gt 0 ]]; then
    t0=$(now_ms)
    netns_probe_all "$WORK/retry" "$RETRY_TIMEOUT_MS" 4096 netns_keep_targets
    netns_assert "$WORK/retry" retry
    log "retry: $RETRIED expected-open check(s) had ports time out; probed them again, alone, with ${RETRY_TIMEOUT_MS}ms ($(seconds_since "$t0"))"
  fi

  for pid in "${LISTENERS[@]}"; do
    netns_alive "$pid" || fail "listener ${RUNNING[$pid]} died during the probes"
  done

  for category in allow deny outside admin; do
    case $category in
    allow) label="flows in the matrix, expected open" ;;
    deny) label="flows the matrix denies, expected filtered (dropped)" ;;
    outside) label="flows outside the matrix, expected filtered (dropped)" ;;
    admin) label="admin access from admin_cidrs, expected open" ;;
    esac
    printf '[%s]   %-8s %4d checks %6d ports  %3d failed  %s\n' "$BACKEND" "$category" "${CHECKS[$category]:-0}" \
      "${PORTS[$category]:-0}" "${FAILED[$category]:-0}" "$label"
  done
}

netns_finish() {
  if [[ $FAILURES -eq 0 ]]; then
    log "PASS: every $BACKEND check holds ($(seconds_since "$START_MS") in all)"
    exit 0
  fi
  log "FAILED: $FAILURES check(s) failed ($(seconds_since "$START_MS") in all)"
  exit 1
}
