# shellcheck shell=bash
# Shared by the live-check scenarios (tests/netns/check_*.sh): each builds the
# demo topology in network namespaces, runs the real product on it (every
# node's generated nftables firewall, haproxy on lb1 with the generated
# haproxy.cfg, one `portmatrix agent` per node), plants one fault, runs
# `portmatrix check` from client1 and asserts on its JSON report: the exact
# diagnosis of the exact flows, and that every other flow still passes.
# (The .bash suffix keeps this file out of the tests/netns/*.sh test glob.)
#
# A scenario calls, top to bottom:
#   ck_init NAME PORTMATRIX PM_NETPROBE
#                          skips (skip.bash) unless root with ip, nft, haproxy, python3;
#                          unique names, work dir, the cleanup trap
#   ck_topology            the demo inventory (portmatrix demo --out --files-only): one
#                          namespace per node on one bridge, VIP on lb1, every
#                          node's generated nftables applied
#   ck_namespaces INVENTORY
#                          the same wiring for any inventory, no firewall (benchmarks)
#   ck_topology_of INVENTORY
#                          any inventory's nodes (ck_namespaces), each node's firewall
#                          generated for it (portmatrix firewall --all, nftables) and applied
#   ck_bridge_port NS ADDRESS
#                          one more namespace on the nodes' bridge (a workstation)
#   ck_in NODE CMD...      runs a command in a node's namespace (plants faults)
#   ck_drop_on_bridge NODE PROTO PORT
#                          the bridge drops that traffic from NODE (a network fault)
#   ck_drop_nodeports NODE
#                          NODE's own firewall drops its NodePort ranges (table inet pmfault)
#   ck_start_haproxy [CFG] haproxy on lb1 (default: the generated haproxy.cfg),
#                          listening on 6443 before it returns
#   ck_make_token          $TOKEN, mode 600
#   ck_start_agents        an agent per node (ck_start_agent NODE [INVENTORY]
#                          for one), each up ("control on" in its log)
#   ck_wait_backends       haproxy's last health check of every server passed
#   ck_start_cluster       the four steps above, in that order (most scenarios)
#   ck_check NAME [ARGS]   check from client1, --format json --output
#                          $WORK/NAME.json: sets CK_RC, CK_MS, CK_JSON
#                          (ck_pm_start NAME NS SUBCOMMAND ARGS: any namespace)
#   ck_exit_status N, ck_ended_within, ck_summary, ck_expect, ck_others_pass, ck_answered_by,
#   ck_agents_confined NODE..., ... assertions
#   ck_finish              exits 0, or 1 when an assertion failed
#
# Everything lives in namespaces named after this run ($CK_PREFIX-*); the
# trap kills only the processes started here (by pid) and deletes only those
# namespaces and the work dir, on success, failure or interruption. A library
# on top (ssh_lib.bash) adds its own clean-up to CK_CLEANUP_HOOKS.
# PM_CHECK_KEEP=1 keeps the work directory (logs, reports) for a look.

set -euo pipefail
# Sourced once (bench/ssh.sh gets it through bench/lib.bash and ssh_lib.bash).
[[ -z ${CK_LIB_SOURCED:-} ]] || return 0
CK_LIB_SOURCED=1

CK_VIP_NODE=lb1
CK_CHECK_NODE=client1
CK_READY_TIMEOUT_S=20

CK_NAMESPACES=()            # created by this run, deleted by the trap
declare -A CK_SYSCTL_SAVED  # sysctl -> its value before ck_sysctl_at_least, restored by the trap
declare -A CK_SYSCTL_SET    # sysctl -> the value this run set
declare -A CK_RUNNING=()    # pid -> what, started by this run and not yet reaped
declare -A CK_NS=()         # node -> namespace
declare -A CK_ADDRESS=()    # node -> address
declare -A CK_AGENT_PID=()  # node -> agent pid
CK_NODES=()                 # node names, inventory order
CK_CLEANUP_HOOKS=()         # functions ck_cleanup calls (last registered first) before deleting the namespaces
CK_BRIDGE_PORTS=0           # veths on the switch's bridge so far (p0, p1, ...)
CK_FAILURES=0
CK_CHECKS=0

ck_now_ms() { echo $(($(date +%s%N) / 1000000)); }
ck_secs() { printf '%d.%02ds' $(($1 / 1000)) $(($1 % 1000 / 10)); } # MS
ck_since() { ck_secs $(($(ck_now_ms) - $1)); }                     # START_MS
ck_log() { printf '[%s] %s\n' "$CK_NAME" "$*"; }
ck_die() { printf '[%s] ERROR: %s\n' "$CK_NAME" "$*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/skip.bash"
ck_ok() { CK_CHECKS=$((CK_CHECKS + 1)); ck_log "ok: $*"; }
ck_fail() { CK_CHECKS=$((CK_CHECKS + 1)); CK_FAILURES=$((CK_FAILURES + 1)); ck_log "FAIL: $*"; }

ck_init() { # NAME PORTMATRIX PM_NETPROBE
  CK_NAME=$1
  shift
  if [[ $# -lt 1 ]]; then
    echo "usage: $0 PORTMATRIX [PM_NETPROBE]" >&2
    exit 2
  fi
  [[ -x $1 ]] || { echo "$0: $1 is not an executable" >&2; exit 2; }
  PM_BIN=$(realpath "$1")
  [[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, firewall rules, packet capture)"
  PATH=$PATH:/usr/sbin:/sbin
  local tool
  for tool in ip nft haproxy ss python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed"
  done
  /usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed (every report is validated)"
  ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"

  CK_START_MS=$(ck_now_ms)
  CK_PREFIX=pc$$$(printf '%02x' $((RANDOM % 256)))
  CK_WORK=$(mktemp -d "${TMPDIR:-/tmp}/pm-check-$CK_NAME.XXXXXX")
  trap ck_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ck_write_helper
  ck_log "run $CK_PREFIX: portmatrix $PM_BIN, work dir $CK_WORK"
}

ck_netns_add() { # NAME: recorded first, so an interruption right after still deletes it
  CK_NAMESPACES+=("$1")
  ip netns add "$1"
}

# True while PID runs (a zombie, exited but not reaped, does not count).
ck_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# Starts "$@" (a program, not a shell function: the pid must be the process's
# own) in the background with the caller's redirections; its pid goes to
# CK_RUNNING and $CK_PID. `ip netns exec NS CMD` execs CMD: same pid.
ck_spawn() { # WHAT CMD...
  local what=$1
  shift
  "$@" <&0 &
  CK_PID=$!
  CK_RUNNING[$CK_PID]=$what
}

ck_reap() { # PID: waits for a process of ours and forgets it; returns its status
  local rc=0
  wait "$1" || rc=$?
  unset 'CK_RUNNING[$1]'
  return "$rc"
}

ck_stop() { # PID [SIGNAL]: stops one process of ours and reaps it
  local i
  { # (stderr: no "Killed" job notice for a process we killed)
    kill "-${2:-TERM}" "$1" || true
    for ((i = 0; i < 50; i++)); do ck_alive "$1" || break; sleep 0.1; done
    ! ck_alive "$1" || kill -KILL "$1"
    ck_reap "$1" || true
  } 2>/dev/null
}

ck_cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  set +e
  # A process started just before a signal came may not be in CK_RUNNING yet.
  for pid in $(jobs -p); do CK_RUNNING[$pid]=${CK_RUNNING[$pid]:-job}; done
  for pid in "${!CK_RUNNING[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; done
  for pid in "${!CK_RUNNING[@]}"; do
    for ((i = 0; i < 50; i++)); do ck_alive "$pid" || break; sleep 0.1; done
    ck_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # Registered by a scenario library (ssh_lib.bash: sshd's users, sudoers,
  # processes left in our namespaces), run before the namespaces go.
  for ((i = ${#CK_CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do "${CK_CLEANUP_HOOKS[i]}"; done
  for ((i = ${#CK_NAMESPACES[@]} - 1; i >= 0; i--)); do ip netns delete "${CK_NAMESPACES[i]}" 2>/dev/null; done
  # Back to what it was, unless someone changed it since.
  for i in "${!CK_SYSCTL_SAVED[@]}"; do
    [[ $(sysctl -n "$i" 2>/dev/null) == "${CK_SYSCTL_SET[$i]}" ]] && sysctl -qw "$i=${CK_SYSCTL_SAVED[$i]}"
  done
  if [[ -n ${CK_WORK:-} ]]; then
    if [[ ${PM_CHECK_KEEP:-0} == 1 ]]; then echo "work dir kept: $CK_WORK"; else rm -rf "$CK_WORK"; fi
  fi
  [[ $rc -eq 77 || ${#CK_NAMESPACES[@]} -eq 0 ]] ||
    ck_log "cleanup: stopped ${#CK_RUNNING[@]} process(es), deleted ${#CK_NAMESPACES[@]} namespace(s)"
  exit "$rc"
}

ck_sysctl_at_least() { # NAME VALUE: raises a host sysctl to VALUE for this run (the trap restores it)
  local current
  current=$(sysctl -n "$1") || ck_die "cannot read sysctl $1"
  ((current >= $2)) && return 0
  sysctl -qw "$1=$2" || ck_die "cannot set sysctl $1=$2"
  CK_SYSCTL_SAVED[$1]=$current
  CK_SYSCTL_SET[$1]=$2
  ck_log "sysctl $1: $current -> $2 for this run"
}

ck_start_cluster() { # haproxy, token, agents, then haproxy sees every backend up
  ck_start_haproxy
  ck_make_token
  ck_start_agents
  ck_wait_backends
}

# NODE's own firewall drops its NodePort ranges, TCP and UDP, in a table of
# its own (inet pmfault), so `ck_in NODE nft delete table inet pmfault`
# restores NODE's rules.
ck_drop_nodeports() { # NODE
  ck_in "$1" nft -f - <<'EOF'
table inet pmfault {
  chain input {
    type filter hook input priority -10;
    tcp dport 30000-32767 drop
    udp dport 30000-32767 drop
  }
}
EOF
}

ck_drop_on_bridge() { # NODE PROTO PORT: the bridge drops PROTO PORT from NODE (a network fault)
  ip netns exec "$CK_SWITCH" nft add table bridge pmt
  ip netns exec "$CK_SWITCH" nft add chain bridge pmt pmfwd '{ type filter hook forward priority 0; }'
  ip netns exec "$CK_SWITCH" nft add rule bridge pmt pmfwd ip saddr "${CK_ADDRESS[$1]}" "$2" dport "$3" drop
}

ck_in() { # NODE CMD...: runs CMD in NODE's namespace
  local node=$1
  shift
  [[ -n ${CK_NS[$node]:-} ]] || ck_die "no node $node"
  ip netns exec "${CK_NS[$node]}" "$@"
}

# --- topology ------------------------------------------------------------------

ck_topology() {
  local t0 node
  t0=$(ck_now_ms)
  "$PM_BIN" demo --out "$CK_WORK/demo" --files-only >"$CK_WORK/demo.log" 2>&1 ||
    ck_die "portmatrix demo --out --files-only failed: $(tail -5 "$CK_WORK/demo.log")"
  ck_namespaces "$CK_WORK/demo/inventory.yaml"
  [[ -n $CK_VIP ]] || ck_die "no loadbalancer vip in $INVENTORY"
  ck_apply_firewalls "$CK_WORK/demo"
  ck_log "topology: ${#CK_NODES[@]} nodes on one bridge in $CK_PREFIX-*, VIP $CK_VIP on $CK_VIP_NODE, generated nftables applied ($(ck_since "$t0"))"
}

# The nodes of INVENTORY (a network plugin's, a distribution's) wired as
# ck_namespaces does, each with the nftables firewall `portmatrix firewall
# --all` generates for it. Without a loadbalancer section there is no VIP
# (and no haproxy to start: ck_make_token and ck_start_agents suffice).
ck_topology_of() { # INVENTORY
  local t0
  t0=$(ck_now_ms)
  "$PM_BIN" firewall --inventory "$1" --all --out "$CK_WORK/firewall" --format nftables >"$CK_WORK/firewall.log" 2>&1 ||
    ck_die "portmatrix firewall --all failed: $(tail -5 "$CK_WORK/firewall.log")"
  ck_namespaces "$1"
  ck_apply_firewalls "$CK_WORK/firewall"
  ck_log "topology: ${#CK_NODES[@]} nodes of $(basename "$1") on one bridge in $CK_PREFIX-*, generated nftables applied ($(ck_since "$t0"))"
}

ck_apply_firewalls() { # DIR: each node's DIR/NODE.nft in its namespace
  local node
  for node in "${CK_NODES[@]}"; do
    ck_in "$node" nft -f "$1/$node.nft" || ck_die "nft -f $node.nft failed in $node"
  done
}

# One namespace per node of INVENTORY (sets $INVENTORY), all on one bridge in
# a switch namespace, each with its address; the VIP, if any, on $CK_VIP_NODE.
# Reads the inventory's one-line node entries: "- {name: N, address: A, ...}".
ck_namespaces() { # INVENTORY
  local node ns
  INVENTORY=$1
  while read -r node address; do
    CK_NODES+=("$node")
    CK_ADDRESS[$node]=$address
  done < <(sed -n 's/^ *- {name: *\([a-z0-9]*\), *address: *\([0-9.]*\),.*/\1 \2/p' "$INVENTORY")
  CK_VIP=$(sed -n 's/^loadbalancer: {vip: *\([0-9.]*\),.*/\1/p' "$INVENTORY")
  [[ ${#CK_NODES[@]} -gt 0 && -n ${CK_ADDRESS[$CK_CHECK_NODE]:-} ]] ||
    ck_die "cannot read the nodes of $INVENTORY (or it has no $CK_CHECK_NODE to check from)"
  [[ -z $CK_VIP || -n ${CK_ADDRESS[$CK_VIP_NODE]:-} ]] || ck_die "$INVENTORY has a vip but no node $CK_VIP_NODE"

  CK_SWITCH=$CK_PREFIX-sw
  ck_netns_add "$CK_SWITCH" 2>/dev/null || skip "cannot create a network namespace"
  ip -n "$CK_SWITCH" link add br0 type bridge
  ip -n "$CK_SWITCH" link set br0 up
  # A plain switch: with br_netfilter in the kernel, a new namespace's
  # bridges hand every frame to its (empty) iptables, ip6tables and arptables
  # hooks (net.bridge.bridge-nf-call-*, 1 by default), which no switch between
  # real hosts does (~6% of the guide's check). nft's bridge family, which
  # ck_drop_on_bridge uses, does not depend on them.
  ip netns exec "$CK_SWITCH" sh -c 'for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ ! -e "$f" ] || echo 0 >"$f"; done'
  for node in "${CK_NODES[@]}"; do
    ns=$CK_PREFIX-$node
    CK_NS[$node]=$ns
    ck_bridge_port "$ns" "${CK_ADDRESS[$node]}"
  done
  [[ -z $CK_VIP ]] || ip -n "${CK_NS[$CK_VIP_NODE]}" addr add "$CK_VIP/24" dev eth0
}

# A new namespace NS on the switch's bridge: eth0 with ADDRESS/24, lo up.
# The nodes' namespaces, and any other host on the nodes' network (the
# workstation and bastion of ssh_lib.bash).
ck_bridge_port() { # NS ADDRESS
  local port=p$CK_BRIDGE_PORTS
  CK_BRIDGE_PORTS=$((CK_BRIDGE_PORTS + 1))
  ck_netns_add "$1"
  ip -n "$CK_SWITCH" link add "$port" type veth peer name eth0 netns "$1"
  ip -n "$CK_SWITCH" link set "$port" master br0 up
  ip -n "$1" link set lo up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
}

# --- haproxy -------------------------------------------------------------------

# haproxy on lb1 with CFG (default: the generated haproxy.cfg, unchanged). A
# second -f file adds only a stats socket, so ck_wait_backends can read the
# servers' health. Returns once haproxy listens on 6443.
ck_start_haproxy() { # [CFG]
  local cfg=${1:-$CK_WORK/demo/haproxy.cfg} i
  CK_HAPROXY_SOCKET=$CK_WORK/haproxy.sock
  printf 'global\n    stats socket %s mode 600 level user\n' "$CK_HAPROXY_SOCKET" >"$CK_WORK/haproxy-stats.cfg"
  haproxy -c -f "$cfg" -f "$CK_WORK/haproxy-stats.cfg" >"$CK_WORK/haproxy-check.log" 2>&1 ||
    ck_die "haproxy -c rejects $cfg: $(cat "$CK_WORK/haproxy-check.log")"
  ck_spawn "haproxy on $CK_VIP_NODE" ip netns exec "${CK_NS[$CK_VIP_NODE]}" haproxy -db -f "$cfg" -f "$CK_WORK/haproxy-stats.cfg" \
    </dev/null >"$CK_WORK/haproxy.log" 2>&1
  CK_HAPROXY_PID=$CK_PID
  for ((i = 0; i < CK_READY_TIMEOUT_S * 10; i++)); do
    ck_alive "$CK_HAPROXY_PID" || ck_die "haproxy exited: $(cat "$CK_WORK/haproxy.log")"
    [[ -n $(ck_in "$CK_VIP_NODE" ss -Hltn 'sport = :6443') ]] && break
    sleep 0.1
  done
  [[ $i -lt $((CK_READY_TIMEOUT_S * 10)) ]] || ck_die "haproxy does not listen on 6443 after ${CK_READY_TIMEOUT_S}s"
  ck_log "haproxy on $CK_VIP_NODE (pid $CK_HAPROXY_PID) listens on 6443 ($(basename "$cfg"))"
}

# Until the last health check of every haproxy server passed (status UP,
# check L4OK/L6OK/L7OK): then the VIP spreads the check's connections over all
# of them. haproxy (2.6) marks a server DOWN at its first failed check, and a
# master checked before its agent was up needs `rise 2` checks at `downinter
# 5s` to come back: up to ~7 s. Waiting on the real state, not a fixed sleep.
ck_wait_backends() {
  local t0 i
  t0=$(ck_now_ms)
  for ((i = 0; i < CK_READY_TIMEOUT_S * 5; i++)); do
    ck_py_helper haproxy-up "$CK_HAPROXY_SOCKET" >"$CK_WORK/haproxy-state.txt" 2>&1 && break
    [[ -z ${CK_DEBUG:-} ]] || echo "$(ck_since "$t0") $(cat "$CK_WORK/haproxy-state.txt")"
    sleep 0.2
  done
  [[ $i -lt $((CK_READY_TIMEOUT_S * 5)) ]] ||
    ck_die "haproxy's servers not all up after ${CK_READY_TIMEOUT_S}s: $(cat "$CK_WORK/haproxy-state.txt")"
  ck_log "haproxy: $(cat "$CK_WORK/haproxy-state.txt") ($(ck_since "$t0"))"
}

# --- token and agents ------------------------------------------------------------

ck_make_token() { # [FILE]: a random shared secret, mode 600; sets TOKEN
  TOKEN=${1:-$CK_WORK/token}
  (umask 077 && openssl rand -hex 24 >"$TOKEN" 2>/dev/null) ||
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$TOKEN")
  chmod 600 "$TOKEN"
}

ck_start_agent() { # NODE [INVENTORY]: starts it; ck_wait_agents waits for it
  local node=$1 inventory=${2:-$INVENTORY}
  ck_spawn "agent $node" ip netns exec "${CK_NS[$node]}" "$PM_BIN" agent --inventory "$inventory" --node "$node" --token-file "$TOKEN" \
    </dev/null >"$CK_WORK/agent-$node.log" 2>&1
  CK_AGENT_PID[$node]=$CK_PID
}

ck_wait_agents() { # NODE...: until each log says "control on"
  local t0 node waiting deadline
  t0=$(ck_now_ms)
  deadline=$((t0 + CK_READY_TIMEOUT_S * 1000))
  while :; do
    waiting=0
    for node in "$@"; do
      grep -q 'control on' "$CK_WORK/agent-$node.log" 2>/dev/null && continue
      ck_alive "${CK_AGENT_PID[$node]}" || ck_die "the agent on $node exited: $(cat "$CK_WORK/agent-$node.log")"
      waiting=$((waiting + 1))
    done
    [[ $waiting -eq 0 ]] && break
    [[ $(ck_now_ms) -lt $deadline ]] || ck_die "$waiting agent(s) not up after ${CK_READY_TIMEOUT_S}s"
    sleep 0.1
  done
  ck_log "agents: $# up ($(ck_since "$t0"))"
}

ck_start_agents() { # [NODE...]: agents on every node except these (started by the caller)
  local node skip=" $* " started=()
  for node in "${CK_NODES[@]}"; do
    [[ $skip == *" $node "* ]] && continue
    ck_start_agent "$node"
    started+=("$node")
  done
  ck_wait_agents "${started[@]}"
}

ck_stop_agent() { # NODE [SIGNAL]
  ck_stop "${CK_AGENT_PID[$1]}" "${2:-TERM}"
}

# --- check -----------------------------------------------------------------------

# Starts `portmatrix check` in client1's namespace in the background:
# --format json --output $WORK/NAME.json unless ARGS give their own format;
# stdout to NAME.out, stderr to NAME.err. ck_check_wait collects it.
ck_check_start() { # NAME [ARGS...]
  ck_pm_start "$1" "${CK_NS[$CK_CHECK_NODE]}" check --inventory "$INVENTORY" --token-file "$TOKEN" "${@:2}"
}

# Starts `portmatrix SUBCOMMAND ARGS...` in namespace NS, in the background,
# with --format json --output $CK_WORK/NAME.json unless ARGS give a --format;
# ck_check_wait collects it and validates that JSON report against its schema
# in docs/schema/ (check; preflight, egress; with --ssh preflight-ssh,
# egress-ssh). (ck_check_start: check from client1; ssh_lib.bash: the fan-out
# from a workstation.)
ck_pm_start() { # NAME NS SUBCOMMAND [ARGS...]
  local name=$1 ns=$2 sub=$3
  shift 3
  CK_CHECK_NAME=$name
  CK_JSON=$CK_WORK/$name.json
  local args=(--format json --output "$CK_JSON")
  CK_SCHEMA=$sub
  [[ $sub != check && " $* " == *" --ssh "* ]] && CK_SCHEMA=$sub-ssh
  [[ " $* " == *" --format "* ]] && args=() CK_SCHEMA=
  CK_CHECK_T0=$(ck_now_ms)
  ck_spawn "$sub $name" ip netns exec "$ns" "$PM_BIN" "$sub" "$@" "${args[@]}" \
    </dev/null >"$CK_WORK/$name.out" 2>"$CK_WORK/$name.err"
  CK_CHECK_PID=$CK_PID
}

ck_check_wait() { # sets CK_RC, CK_MS; a JSON report it wrote must match its schema
  CK_RC=0
  ck_reap "$CK_CHECK_PID" || CK_RC=$?
  CK_MS=$(($(ck_now_ms) - CK_CHECK_T0))
  ck_log "check $CK_CHECK_NAME: exit $CK_RC in $(ck_secs "$CK_MS")"
  [[ -n ${CK_SCHEMA:-} && -e $CK_JSON ]] && ck_schema_valid "$CK_SCHEMA" "$CK_JSON"
  return 0
}

# FILE is valid against docs/schema/SCHEMA.schema.json (a field added to a
# report must be added to its schema).
ck_schema_valid() { # SCHEMA FILE
  local out rc=0
  out=$(/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/../schema/validate.py" "$1" "$2" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then
    ck_ok "$(basename "$2") is valid against docs/schema/$1.schema.json"
  else
    ck_fail "$(basename "$2") does not match docs/schema/$1.schema.json"
    printf '%s\n' "$out" | head -20 | sed 's/^/    /'
  fi
}

# --- events of a running check (to wait on, instead of sleeping) -------------
# The check (in $CK_CHECK_NODE) sends each request to an agent on a connection
# of its own and closes it once answered, first: the connection then waits in
# FIN-WAIT or TIME-WAIT (60 s) on the check's side. So ss counts the requests
# an agent has answered and those still in flight.
ck_calls() { # NODE answered|open: requests from the check to NODE's agent
  local port states=(state established)
  port=$(sed -n 's/^agent: {control_port: *\([0-9]*\)}.*/\1/p' "$INVENTORY")
  [[ -n $port ]] || ck_die "no agent control_port in $INVENTORY"
  [[ $2 == answered ]] && states=(state fin-wait-1 state fin-wait-2 state time-wait)
  ck_in "$CK_CHECK_NODE" ss -Htn "${states[@]}" "( dst ${CK_ADDRESS[$1]} and dport = :$port )" | wc -l
}

ck_wait_until() { # WHAT SECONDS CMD...: polls CMD (every 50 ms) until it succeeds; dies after SECONDS
  local what=$1 limit=$2 t0
  shift 2
  t0=$(ck_now_ms)
  until "$@"; do
    [[ $(($(ck_now_ms) - t0)) -lt $((limit * 1000)) ]] || ck_die "not within ${limit}s: $what"
    sleep 0.05
  done
  ck_log "$what ($(ck_since "$CK_CHECK_T0") into the check)"
}

ck_at_least() { [[ $($1 "${@:2:$#-2}") -ge ${*: -1} ]]; } # FUNCTION ARGS... N: FUNCTION's output >= N

ck_check() { # NAME [ARGS...]
  ck_check_start "$@"
  ck_check_wait
}

# --- assertions on the report --------------------------------------------------------
#
# A FILTER selects results of the JSON report: space-separated key=value
# terms, all of which must hold; a value may list alternatives (a,b);
#   from=NODE to=NODE|vip proto=tcp|udp expect=allow|deny verdict=pass|fail|skip diagnosis=WORD
#   port=N   the flow's range covers port N
# e.g. "to=master2 proto=udp port=8472 expect=allow".

# A real service holds master1's 2379 (etcd's client port): the check of
# the running cluster passes it as `service`, answered by ANSWER, and every
# other flow as usual.
ck_check_service_on_master1() { # NAME PROCESS PID ANSWER
  ck_check "$1"
  ck_exit_status 0
  ck_report_valid
  ck_agent master1 owners "once:2379/tcp $2 (pid $3)"
  local service="to=master1 proto=tcp port=2379 expect=allow"
  ck_expect "$service" pass service
  ck_answered_by "$service" "$4"
  ck_summary failed=0 skipped=0
  ck_expect "to=master1 proto=tcp port=2379 expect=deny" pass closed
  ck_others_pass
  ck_expect "to=master2,master3 proto=tcp port=2379 expect=allow" pass ok
  ck_agents_ok
}

ck_py_helper() { python3 "$CK_WORK/ck.py" "$@"; }

ck_assert_py() { # DESCRIPTION ARGS... : runs the helper on the current report; records ok/FAIL
  local what=$1 out rc=0
  shift
  out=$(ck_py_helper "$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then
    ck_ok "$what${out:+: $out}"
  else
    ck_fail "$what"
    printf '%s\n' "$out" | sed 's/^/    /'
  fi
}

ck_exit_status() { # EXPECTED
  if [[ $CK_RC -eq $1 ]]; then
    ck_ok "check exited $1"
  else
    ck_fail "check exited $CK_RC, expected $1; stderr: $(head -c 2000 "$CK_WORK/$CK_CHECK_NAME.err")"
  fi
}

ck_stderr_has() { # NAME TEXT: the stderr of check NAME holds TEXT (case-insensitive)
  if grep -qiF -- "$2" "$CK_WORK/$1.err"; then
    ck_ok "$1: the message says '$2': $(head -c 300 "$CK_WORK/$1.err")"
  else
    ck_fail "$1: the message lacks '$2': $(head -c 300 "$CK_WORK/$1.err")"
  fi
}

ck_ended_within() { # DEADLINE SLACK: the last check ended within its --deadline (seconds) + SLACK seconds
  if [[ $CK_MS -lt $((($1 + $2) * 1000)) ]]; then
    ck_ok "the check ended in $(ck_secs "$CK_MS"), within its ${1}s deadline + ${2}s"
  else
    ck_fail "the check took $(ck_secs "$CK_MS"), more than its ${1}s deadline + ${2}s"
  fi
}

# The report is one complete, valid JSON document (written whole or not at all).
ck_report_valid() {
  ck_assert_py "the report $(basename "$CK_JSON") is complete, valid JSON" valid "$CK_JSON"
}

ck_summary() { # passed=N failed=N skipped=N (any of them)
  ck_assert_py "summary $*" summary "$CK_JSON" "$@"
}

# Every result FILTER selects (at least one; exactly COUNT with count=N)
# has this verdict and diagnosis (a|b: either); a failing one's failures (and
# a skipped one's, the ports it left unprobed) are exactly at the filter's
# port=N with that diagnosis, and their detail contains DETAIL.
ck_expect() { # FILTER VERDICT DIAGNOSIS [DETAIL] [count=N]
  ck_assert_py "[$1] -> $2 $3${4:+ ($4)}" expect "$CK_JSON" "$@"
}

ck_expect_each() { # FILTER VERDICT:DIAGNOSIS[|DIAGNOSIS...]...: each selected result is one of these
  # (at least one result selected; for fail, every failure's diagnosis is one the verdict lists)
  ck_assert_py "[$1] each one of: ${*:2}" expect-each "$CK_JSON" "$@"
}

# Every result that no FILTER selects passes.
ck_others_pass() { # FILTER...
  ck_assert_py "every other flow passes" others-pass "$CK_JSON" "$@"
}

ck_backends() { # FILTER NAME,NAME...: backends_reached of every selected VIP flow, exactly
  ck_assert_py "[$1] backends_reached == [$2]" backends "$CK_JSON" "$@"
}

ck_agents_ok() { # [NODE...]: every agent but these answered, without error, with capture on
  ck_assert_py "agents answered${*:+ (but $*)}" agents-ok "$CK_JSON" "$@"
}

# Finding 9: a running agent keeps CAP_NET_RAW and CAP_NET_BIND_SERVICE only
# (bits 13 and 10: 0x2400), no_new_privs, and a seccomp filter (mode 2).
ck_agents_confined() { # NODE...
  local node pid status
  for node in "$@"; do
    pid=${CK_AGENT_PID[$node]}
    status=$(cat "/proc/$pid/status" 2>/dev/null) || { ck_fail "agent $node (pid $pid) is not running"; continue; }
    if grep -qx $'CapEff:\t0000000000002400' <<<"$status" && grep -qx $'CapPrm:\t0000000000002400' <<<"$status" &&
      grep -qx $'NoNewPrivs:\t1' <<<"$status" && grep -qx $'Seccomp:\t2' <<<"$status"; then
      ck_ok "agent $node is confined: CapEff 0x2400, NoNewPrivs 1, Seccomp 2"
    else
      ck_fail "agent $node is not confined: $(grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' <<<"$status" | tr '\n\t' '  ')"
    fi
  done
}

ck_agent() { # NODE KEY VALUE: agents[NODE].KEY equals VALUE, contains it (text) or lists it (owners);
  # "!empty": is not empty; "once:TEXT": the list holds TEXT exactly once
  ck_assert_py "agent $1: $2 has '$3'" agent "$CK_JSON" "$@"
}

ck_answered_by() { # FILTER TEXT: every selected result's answered_by starts with TEXT
  ck_assert_py "[$1] answered_by '$2...'" answered-by "$CK_JSON" "$@"
}

ck_same_verdicts() { # REPORT: the current report and REPORT hold the same flows with the same verdicts
  ck_assert_py "$(basename "$CK_JSON") and $(basename "$1") give the same verdicts" same-verdicts "$CK_JSON" "$1"
}

ck_count() { # FILTER N: exactly N results are selected
  ck_assert_py "[$1] selects $2 result(s)" count "$CK_JSON" "$@"
}

ck_n() { # FILTER: prints how many results FILTER selects
  ck_py_helper n "$CK_JSON" "$1"
}

ck_show() { # FILTER: prints the selected results (for the log)
  ck_py_helper show "$CK_JSON" "$@" | sed "s/^/[$CK_NAME]   /"
}

ck_finish() {
  if [[ $CK_FAILURES -eq 0 ]]; then
    ck_log "PASS: $CK_CHECKS assertion(s) hold ($(ck_since "$CK_START_MS") in all)"
    exit 0
  fi
  ck_log "FAILED: $CK_FAILURES of $CK_CHECKS assertion(s) failed ($(ck_since "$CK_START_MS") in all)"
  ck_log "agent logs and reports: rerun with PM_CHECK_KEEP=1 to keep $CK_WORK"
  exit 1
}

ck_write_helper() {
  cat >"$CK_WORK/ck.py" <<'PY'
# Assertions on portmatrix check's JSON report (see check_lib.bash).
import json, socket, sys

def load(path):
    with open(path) as f:
        return json.load(f)

def parse_filter(text):
    terms = {}
    for term in text.split():
        key, _, value = term.partition("=")
        if key not in ("from", "to", "proto", "port", "expect", "verdict", "diagnosis") or not value:
            sys.exit(f"bad filter term {term!r}")
        terms[key] = value.split(",")
    return terms

def selects(terms, r):
    for key, values in terms.items():
        if key == "port":
            if not any(r["port_min"] <= int(v) <= r["port_max"] for v in values): return False
        elif key == "proto":
            if r["protocol"] not in values: return False
        elif r[key] not in values:
            return False
    return True

def select(report, text):
    terms = parse_filter(text)
    return [r for r in report["results"] if selects(terms, r)]

def brief(r):
    return json.dumps({k: r[k] for k in ("from", "to", "protocol", "port_min", "port_max", "expect", "verdict",
                                         "diagnosis", "failures", "backends_reached") if k in r})

def fail(lines):
    for line in lines[:20]: print(line)
    if len(lines) > 20: print(f"... and {len(lines) - 20} more")
    sys.exit(1)

def cmd_valid(path):
    try:
        report = load(path)
    except (OSError, ValueError) as e:
        fail([f"{path}: {e}"])
    missing = [k for k in ("summary", "results", "agents") if k not in report]
    if missing: fail([f"missing keys {missing}"])
    s = report["summary"]
    if s["passed"] + s["failed"] + s["skipped"] != len(report["results"]):
        fail([f"summary {s} does not add up to {len(report['results'])} results"])
    print(f"{len(report['results'])} results")

def cmd_summary(path, *terms):
    s = load(path)["summary"]
    bad = []
    for term in terms:
        key, _, value = term.partition("=")
        if s.get(key) != int(value): bad.append(f"{key} is {s.get(key)}, expected {value}")
    if bad: fail(bad + [f"summary: {s}"])
    print(json.dumps(s))

def cmd_expect(path, text, verdict, diagnosis, *rest):
    report = load(path)
    detail, count = "", None
    for extra in rest:
        if extra.startswith("count="): count = int(extra[6:])
        else: detail = extra
    chosen = select(report, text)
    terms = parse_filter(text)
    port = int(terms["port"][0]) if "port" in terms and len(terms["port"]) == 1 else None
    bad = []
    if not chosen: bad.append("no result matches")
    if count is not None and len(chosen) != count: bad.append(f"{len(chosen)} results match, expected {count}")
    diagnoses = diagnosis.split("|")
    for r in chosen:
        why = []
        if r["verdict"] != verdict: why.append(f"verdict {r['verdict']}")
        if r["diagnosis"] not in diagnoses: why.append(f"diagnosis {r['diagnosis']}")
        # A skip lists failures when part of the flow went unprobed: checked alike.
        if verdict == "fail" or (verdict == "skip" and r["failures"]):
            if not r["failures"]: why.append("no failures listed")
            for f in r["failures"]:
                if f["diagnosis"] not in diagnoses: why.append(f"a failure diagnosed {f['diagnosis']}")
                if port is not None and (f["port"] != port or f.get("port_max", port) != port):
                    why.append(f"a failure at port {f['port']}-{f.get('port_max', f['port'])}, not only {port}")
                if detail and detail not in f["detail"]: why.append(f"detail {f['detail']!r} lacks {detail!r}")
        elif r["failures"]:
            why.append("failures listed")
        if why: bad.append(f"{'; '.join(why)}: {brief(r)}")
    if bad: fail(bad)
    flows = sorted({f"{r['from']}->{r['to']}" for r in chosen})
    print(f"{len(chosen)} flow(s): {' '.join(flows)}")

def cmd_expect_each(path, text, *allowed):
    report = load(path)
    chosen = select(report, text)
    kinds = {}
    for a in allowed:
        verdict, diagnoses = a.split(":", 1)
        kinds.setdefault(verdict, set()).update(diagnoses.split("|"))
    bad = [] if chosen else ["no result matches"]
    for r in chosen:
        ok = r["verdict"] in kinds and r["diagnosis"] in kinds[r["verdict"]]
        ok = ok and all(f["diagnosis"] in kinds[r["verdict"]] for f in r["failures"] if r["verdict"] == "fail")
        if not ok: bad.append(brief(r))
    if bad: fail(bad)
    seen = {}
    for r in chosen: seen[f"{r['verdict']} {r['diagnosis']}"] = seen.get(f"{r['verdict']} {r['diagnosis']}", 0) + 1
    print(f"{len(chosen)} result(s): " + ", ".join(f"{n} {k}" for k, n in sorted(seen.items())))

def cmd_others_pass(path, *texts):
    report = load(path)
    filters = [parse_filter(t) for t in texts]
    others = [r for r in report["results"] if not any(selects(f, r) for f in filters)]
    bad = [brief(r) for r in others if r["verdict"] != "pass"]
    if bad: fail([f"{len(bad)} of {len(others)} other results do not pass:"] + bad)
    kinds = {}
    for r in others: kinds[r["diagnosis"]] = kinds.get(r["diagnosis"], 0) + 1
    print(f"{len(others)} results: " + ", ".join(f"{n} {d}" for d, n in sorted(kinds.items())))

def cmd_backends(path, text, names):
    want = names.split(",")
    chosen = select(load(path), text)
    bad = [brief(r) for r in chosen if r.get("backends_reached") != want]
    if not chosen: bad.append("no result matches")
    if bad: fail(bad)
    print(f"{len(chosen)} flow(s)")

def cmd_answered_by(path, text, prefix):
    chosen = select(load(path), text)
    bad = [brief(r) + f" answered_by={r.get('answered_by')!r}" for r in chosen
           if not str(r.get("answered_by", "")).startswith(prefix)]
    if not chosen: bad.append("no result matches")
    if bad: fail(bad)
    print(f"{len(chosen)} flow(s): {chosen[0]['answered_by']}")

def cmd_count(path, text, n):
    chosen = select(load(path), text)
    if len(chosen) != int(n): fail([f"{len(chosen)} results match, expected {n}"] + [brief(r) for r in chosen])
    print(f"{len(chosen)}")

def cmd_n(path, text):
    print(len(select(load(path), text)))

def cmd_show(path, text=""):
    for r in select(load(path), text): print(brief(r))

def cmd_agent(path, node, key, value):
    agents = [a for a in load(path)["agents"] if a["node"] == node]
    if not agents: fail([f"no agent {node} in agents[]"])
    got = agents[0].get(key)
    if value == "!empty": ok = bool(got)
    elif value.startswith("once:"): ok = isinstance(got, list) and got.count(value[5:]) == 1
    else: ok = (value in got) if isinstance(got, list) else (str(got).lower() == value.lower() or value in str(got))
    if not ok: fail([f"agents[{node}].{key} = {json.dumps(got)}, expected {value!r}", json.dumps(agents[0])])
    print(json.dumps(agents[0]))

def cmd_agents_ok(path, *except_nodes):
    agents = [a for a in load(path)["agents"] if a["node"] not in except_nodes]
    bad = [json.dumps(a) for a in agents if not a["reachable"] or a["error"] or not a["capture"]]
    if not agents: bad.append("no agents listed")
    if bad: fail(bad)
    print(f"{len(agents)} agents reachable, capture on")

def cmd_same_verdicts(path, other_path):
    """Both reports hold the same flows with the same verdict, diagnosis and
    backends reached (as a set), whatever their order."""
    def key(r): return (r["from"], r["to"], r["protocol"], r["port_min"], r["port_max"], r["expect"])
    def seen(r): return (r["verdict"], r["diagnosis"], sorted(r.get("backends_reached") or []))
    a = {key(r): seen(r) for r in load(path)["results"]}
    b = {key(r): seen(r) for r in load(other_path)["results"]}
    bad = [f"only in {path}: {k}" for k in a.keys() - b.keys()] + [f"only in {other_path}: {k}" for k in b.keys() - a.keys()]
    bad += [f"{k}: {a[k]} vs {b[k]}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    if bad: fail(bad)
    verdicts = {}
    for v in a.values(): verdicts[v[0]] = verdicts.get(v[0], 0) + 1
    print(f"{len(a)} results, " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))

def cmd_html(path, json_path):
    from html.parser import HTMLParser
    class Rows(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.open, self.scripts = [], [], 0
        def handle_starttag(self, tag, attrs):
            if tag == "tr" and dict(attrs).get("class"): self.rows.append(dict(attrs)["class"])
            if tag == "script": self.scripts += 1
            if tag in ("html", "body", "table", "tr", "td", "th", "ul", "li", "h1", "h2", "p"): self.open.append(tag)
        def handle_endtag(self, tag):
            if tag in ("html", "body", "table", "tr", "td", "th", "ul", "li", "h1", "h2", "p"):
                if not self.open or self.open.pop() != tag: raise ValueError(f"</{tag}> does not close the open element")
    parser = Rows()
    try:
        parser.feed(open(path).read())
        parser.close()
    except (OSError, ValueError) as e:
        fail([f"{path}: {e}"])
    results = load(json_path)["results"]
    bad = []
    if parser.open: bad.append(f"unclosed: {parser.open}")
    if parser.scripts: bad.append("has <script>")
    if len(parser.rows) != len(results): bad.append(f"{len(parser.rows)} rows, {len(results)} results")
    verdicts = sorted(r["verdict"] for r in results)
    if sorted(parser.rows) != verdicts: bad.append("row classes differ from the verdicts")
    if bad: fail(bad)
    print(f"{len(parser.rows)} rows, well nested")

def cmd_junit(path, json_path):
    import xml.etree.ElementTree as ET
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        fail([f"{path}: {e}"])
    cases = root.findall(".//testcase")
    n = len(load(json_path)["results"]) if json_path else None
    bad = []
    if root.tag != "testsuites": bad.append(f"root element {root.tag}")
    if n is not None and len(cases) != n: bad.append(f"{len(cases)} testcases, {n} results")
    failed = [c for c in cases if c.find("failure") is not None or c.find("skipped") is not None]
    if failed: bad.append(f"{len(failed)} testcases fail or skip, first: {failed[0].get('name')}")
    if bad: fail(bad)
    print(f"{len(cases)} testcases, tests={root.get('tests')} failures={root.get('failures')}")

def cmd_haproxy_up(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536): data += chunk
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(head, l.split(","))) for l in lines[1:] if l]
    servers = [r for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")]
    state = [f"{r['pxname']}/{r['svname']} {r['status']} {r['check_status']}" for r in servers]
    up = [r for r in servers if r["status"] == "UP" and r["check_status"] in ("L4OK", "L6OK", "L7OK")]
    print(f"{len(up)} of {len(servers)} servers up" + ("" if len(up) == len(servers) else ": " + "; ".join(state)))
    sys.exit(0 if servers and len(up) == len(servers) else 1)

commands = {"valid": cmd_valid, "summary": cmd_summary, "expect": cmd_expect, "expect-each": cmd_expect_each, "others-pass": cmd_others_pass,
            "backends": cmd_backends, "answered-by": cmd_answered_by, "agents-ok": cmd_agents_ok, "count": cmd_count, "n": cmd_n, "show": cmd_show, "agent": cmd_agent,
            "junit": cmd_junit, "html": cmd_html, "haproxy-up": cmd_haproxy_up, "same-verdicts": cmd_same_verdicts}
commands[sys.argv[1]](*sys.argv[2:])
PY
}

# --- capture of the control port --------------------------------------------------

ck_control_port() { # prints the inventory's agent control port
  local port
  port=$(sed -n 's/.*control_port: *\([0-9]*\).*/\1/p' "$INVENTORY" | head -1)
  [[ -n $port ]] || ck_die "no agent control_port in $INVENTORY"
  echo "$port"
}

# A packet capture (tcp_capture.py, AF_PACKET) in NODE's namespace of the TCP
# segments to or from PORT, into FILE (one JSON line per segment), until
# ck_capture_stop. Returns once the socket is bound.
ck_capture_start() { # NODE PORT FILE
  CK_CAPTURE_FILE=$3
  ck_spawn "capture on $1" ip netns exec "${CK_NS[$1]}" python3 "$(dirname "${BASH_SOURCE[0]}")/tcp_capture.py" \
    capture "$2" "$3" </dev/null >"$3.status" 2>&1
  CK_CAPTURE_PID=$CK_PID
  local i
  for ((i = 0; i < 100; i++)); do grep -q capturing "$3.status" 2>/dev/null && return 0; sleep 0.1; done
  ck_die "the capture did not start: $(cat "$3.status")"
}

ck_capture_stop() {
  ck_stop "$CK_CAPTURE_PID" TERM
}

# Control requests NODE's agent refused so far, from its log: each line, or
# past the log limiter's few lines per 10 s, its count of them when the 10 s
# end ("N rejected control requests in the last 10 s (5 shown)").
ck_control_rejections() { # NODE
  python3 - "$CK_WORK/agent-$1.log" <<'PY'
import re, sys
shown = summaries = counted = 0
for line in open(sys.argv[1], errors="replace"):
    if "rejected a control request" in line:
        shown += 1
    m = re.search(r": ([0-9,]+) rejected control requests in the last \d+ s \((\d+) shown\)", line)
    if m:
        summaries += int(m.group(2))
        counted += int(m.group(1).replace(",", ""))
print(shown - summaries + counted)
PY
}

# Sends each recorded connection STREAM (tcp_capture.py streams) again, from
# client1 to ADDRESS:PORT, NODE's agent, and asserts that the agent refused
# every one within WAIT s (a busy 10 s of the log limiter is counted when it
# ends). WHAT names the attempt in the assertion.
ck_replay_refused() { # WHAT NODE ADDRESS PORT WAIT STREAM...
  local what=$1 node=$2 address=$3 port=$4 wait=$5 stream before now waited=0
  shift 5
  before=$(ck_control_rejections "$node")
  for stream in "$@"; do
    ck_in client1 python3 "$(dirname "${BASH_SOURCE[0]}")/tcp_capture.py" replay "$address" "$port" "$stream" >/dev/null
  done
  while now=$(ck_control_rejections "$node"); [[ $now -lt $((before + $#)) && $waited -lt $wait ]]; do
    sleep 1
    waited=$((waited + 1))
  done
  if [[ $now -ge $((before + $#)) ]]; then
    ck_ok "$what: all $# recorded connections refused: $(grep -m1 'rejected a control request' "$CK_WORK/agent-$node.log")"
  else
    ck_fail "$what: only $((now - before)) of $# recorded connections refused, the rest served"
  fi
}
