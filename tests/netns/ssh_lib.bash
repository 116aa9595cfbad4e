# shellcheck shell=bash
# Shared by the SSH fan-out scenarios (tests/netns/ssh_*.sh): the live-check
# topology of check_lib.bash (the demo inventory, one namespace per node on
# one bridge, every node's generated nftables, haproxy on lb1) with a real
# OpenSSH server (Debian's sshd) in every node's namespace, and a workstation
# namespace on the nodes' network from which `portmatrix ... --ssh` runs, as
# an operator's would from an admin host.
#
# A scenario calls, top to bottom:
#   ssh_init NAME PORTMATRIX [PM_NETPROBE]
#                     ck_init, and sshd, ssh, ssh-keygen, sudo, useradd and
#                     userdel are there (a skip, or under CI=true a failure)
#   ssh_topology      ck_topology; haproxy on lb1; two users (see below), a user
#                     key, host keys, sshd in every node's namespace, the
#                     known_hosts; the workstation $SSH_WS
#   ssh_bastion       a jump namespace on the nodes' network ($SSH_JUMP_ADDRESS)
#                     and a second workstation $SSH_WS_JUMP linked only to it
#   ssh_inventory FILE [NODE:KEY=VALUE...]
#                     the demo inventory with an `ssh:` section for this run;
#                     NODE:KEY=VALUE adds a per-node ssh key
#   ssh_pm_start / ssh_pm NAME WS SUBCOMMAND ARGS...
#                     `portmatrix SUBCOMMAND --inventory $SSH_INVENTORY --ssh ARGS`
#                     in workstation WS (ck_check_wait: CK_RC, CK_MS, CK_JSON)
#   ssh_plain WS USER NODE CMD...
#                     plain `ssh` from WS with the run's key and known_hosts
#   ssh_stop_sshd NODE, ssh_new_host_key NODE
#                     faults
#   ssh_nothing_left WHAT
#                     no agent on any node (polled process listings per
#                     namespace), no file of the run, no ssh master, no sshd session
#   ssh_same_as_local REPORT
#                     the local check (agents started by hand) gives REPORT's verdicts
#   ssh_agents_in NODE, ssh_left_files, ssh_sessions_left, ssh_accepted HOST, ssh_connections HOST
#                     what is left on the nodes, and what their sshd saw
#
# The users: $SSH_USER may run anything through sudo without a password
# (NOPASSWD); $SSH_USER_PW is asked for a password by sudo (and has none, so
# `sudo -n` always fails). Both log in with the run's key only. Every node has
# its own home directory for them ($SSH_PUBLIC/home/NODE/USER): all namespaces
# share one filesystem, so `ip netns exec` gives each node's namespace its own
# /etc/passwd (/etc/netns/NS/passwd) naming that node's homes, as separate
# hosts have. A node's `~/.cache/portmatrix` is then that node's alone.
#
# Everything is unique to the run and removed on every exit path by
# ck_cleanup (through ssh_cleanup): sshd by pid, every process still in the
# run's namespaces (what the product may leave behind), the users (userdel),
# the sudoers drop-in, /etc/netns/NS, the keys and homes. Left in place:
# /run/sshd, the privilege separation directory the openssh-server package
# expects (created if missing, empty, mode 755).

source "$(dirname "${BASH_SOURCE[0]}")/check_lib.bash"

SSH_USERS=()                # created by this run (userdel by the trap)
SSH_ETC_NETNS=()            # /etc/netns/NS directories this run wrote
declare -A SSH_SSHD_PID=()  # node -> sshd pid
declare -A SSH_SSHD_ENTER=() # node -> how its sshd enters the node (default "ip netns exec NS"; apply_lib: firewalld's mount namespace)
declare -A SSH_HOST=()      # node, or "jump" -> the address ssh connects to
SSH_SUDOERS=''
SSH_PUBLIC=''
SSH_WS=''
SSH_WS_JUMP=''
SSH_ETC_PRIVATE=()          # /etc entries each node gets a copy of (apply_lib: ufw's)

ssh_need() { # WHAT WHY: a missing tool is a skip, under CI=true a failure
  if [[ ${CI:-} == true ]]; then
    ck_die "$1 is missing ($2); under CI=true that is a failure (scripts/install-deps.sh installs it)"
  fi
  ck_skip "$1 is not installed ($2)"
}

ssh_init() { # NAME PORTMATRIX [PM_NETPROBE]
  ck_init "$@"
  ssh_prepare
}

ssh_prepare() { # after ck_init (bench/ssh.sh: after bench_init)
  local tool
  for tool in /usr/sbin/sshd ssh ssh-keygen sudo visudo useradd userdel; do
    command -v "$tool" >/dev/null || ssh_need "$tool" "the ssh scenarios run a real OpenSSH server and sudo"
  done
  CK_CLEANUP_HOOKS+=(ssh_cleanup)
  [[ -d /run/sshd ]] || install -d -m 755 /run/sshd # sshd's privilege separation directory (left in place)
  SSH_DIR=$CK_WORK/ssh # private: keys, known_hosts, sshd configs (root only)
  mkdir -m 700 "$SSH_DIR"
  # Public: what sshd reads as the user (authorized_keys) and the homes.
  SSH_PUBLIC=$(mktemp -d "${TMPDIR:-/tmp}/pm-ssh-$CK_NAME.XXXXXX")
  chmod 755 "$SSH_PUBLIC"
  SSH_USER=pm$CK_PREFIX
  SSH_USER_PW=${SSH_USER}pw
  SSH_STAMP=$SSH_DIR/stamp
  touch "$SSH_STAMP"
}

ssh_cleanup() {
  local ns pid pids=() user left=0 i path
  local -A control=()
  # Whatever still runs in the run's namespaces was started by this run
  # (sshd's sessions, agents or ssh masters the product left): by pid. An ssh
  # master's control directory (a workstation killed mid-run leaves it) goes too.
  for ns in "${CK_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      pids+=("$pid")
      path=$(ssh_cmdline "$pid" | tr ' ' '\n' | sed -n 's|^ControlPath=\(/tmp/portmatrix-ssh-[^/]*\)/.*|\1|p' | head -1)
      [[ -z $path ]] || control[$path]=1
    done
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    for pid in "${pids[@]}"; do
      ck_alive "$pid" && left=$((left + 1)) && ck_log "cleanup: left in a namespace: pid $pid $(ssh_cmdline "$pid" | head -c 200)"
      kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
      for ((i = 0; i < 30; i++)); do ck_alive "$pid" || break; sleep 0.1; done
      ! ck_alive "$pid" || kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do for ((i = 0; i < 30; i++)); do ck_alive "$pid" || break; sleep 0.1; done; done
  fi
  for path in "${!control[@]}"; do rm -rf "$path"; done
  # What the users made under /tmp (a run's directory a killed run left).
  for user in "${SSH_USERS[@]}"; do
    find /tmp /var/tmp /dev/shm -xdev -mindepth 1 -maxdepth 1 -user "$user" -exec rm -rf {} + 2>/dev/null
    userdel "$user" 2>/dev/null
  done
  [[ -z $SSH_SUDOERS ]] || rm -f "$SSH_SUDOERS"
  for i in "${SSH_ETC_NETNS[@]}"; do rm -rf "$i"; done
  [[ -z $SSH_PUBLIC ]] || rm -rf "$SSH_PUBLIC"
}

# --- users, keys, sshd -----------------------------------------------------------

ssh_users() { # the two users, their sudoers rules and the run's key
  local user
  for user in "$SSH_USER" "$SSH_USER_PW"; do
    SSH_USERS+=("$user") # first: an interruption right after useradd still removes it
    useradd --no-create-home --home-dir "$SSH_PUBLIC/home/none" --shell /bin/bash --password '*' "$user" ||
      ck_die "useradd $user failed"
  done
  SSH_SUDOERS=/etc/sudoers.d/$SSH_USER
  printf '%s\n' "# portmatrix test run $CK_PREFIX ($CK_WORK), removed at its end" \
    "$SSH_USER ALL=(root) NOPASSWD: ALL" "$SSH_USER_PW ALL=(root) ALL" >"$SSH_DIR/sudoers"
  visudo -cqf "$SSH_DIR/sudoers" || ck_die "visudo rejects $SSH_DIR/sudoers"
  install -m 440 "$SSH_DIR/sudoers" "$SSH_SUDOERS"
  ssh-keygen -q -t ed25519 -N '' -C "portmatrix test $CK_PREFIX" -f "$SSH_DIR/id_ed25519" || ck_die "ssh-keygen failed"
  SSH_KEY=$SSH_DIR/id_ed25519
  install -m 644 "$SSH_KEY.pub" "$SSH_PUBLIC/authorized_keys"
}

# NS's own /etc/passwd: the run's users' homes are HOST's (created, theirs);
# and its own /etc/resolv.conf.
ssh_homes() { # NS HOST
  local user entry
  mkdir -p "/etc/netns/$1"
  SSH_ETC_NETNS+=("/etc/netns/$1")
  for user in "$SSH_USER" "$SSH_USER_PW"; do
    install -d -m 755 -o "$user" -g "$user" "$SSH_PUBLIC/home/$2/$user"
  done
  # A resolver on the namespace's loopback, where nothing answers: egress
  # from the nodes sends nothing beyond the run's namespaces, and fails fast.
  echo "nameserver 127.0.0.1" >"/etc/netns/$1/resolv.conf"
  awk -F: -v OFS=: -v u1="$SSH_USER" -v u2="$SSH_USER_PW" -v home="$SSH_PUBLIC/home/$2" \
    '$1 == u1 || $1 == u2 { $6 = home "/" $1 } { print }' /etc/passwd >"/etc/netns/$1/passwd"
  chmod 644 "/etc/netns/$1/passwd"
  # /etc entries the scenario wants private to each node (ip netns exec
  # binds /etc/netns/NS/ENTRY over /etc/ENTRY): copies, removed with the rest.
  for entry in "${SSH_ETC_PRIVATE[@]}"; do cp -a "/etc/$entry" "/etc/netns/$1/$entry"; done
}

ssh_write_sshd_config() { # HOST: its config and host key (a new one each time)
  local host=$1
  rm -f "$SSH_DIR/host-$host" "$SSH_DIR/host-$host.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$host" -f "$SSH_DIR/host-$host" || ck_die "ssh-keygen (host key of $host) failed"
  cat >"$SSH_DIR/sshd-$host.conf" <<EOF
# sshd of $host for portmatrix test run $CK_PREFIX
Port 22
HostKey $SSH_DIR/host-$host
PidFile none
AuthorizedKeysFile $SSH_PUBLIC/authorized_keys
# The key file lies outside the home, under /tmp (mode 1777): no ownership walk.
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $SSH_USER $SSH_USER_PW
# Every node's connection through the bastion at once, and the product's sessions on one master.
MaxStartups 200
MaxSessions 100
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
PrintLastLog no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd-$host.conf" || ck_die "sshd -t rejects $SSH_DIR/sshd-$host.conf"
}

ssh_start_sshd() { # HOST NS: sshd -D, logging to $SSH_DIR/sshd-HOST.log (appended)
  local host=$1 ns=$2 i enter=(ip netns exec "$2")
  [[ -z ${SSH_SSHD_ENTER[$host]:-} ]] || read -ra enter <<<"${SSH_SSHD_ENTER[$host]}"
  ck_spawn "sshd on $host" "${enter[@]}" /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd-$host.conf" \
    </dev/null >>"$SSH_DIR/sshd-$host.log" 2>&1
  SSH_SSHD_PID[$host]=$CK_PID
}

ssh_wait_sshd() { # HOST NS [HOST NS...]: until each listens on 22
  local deadline i waiting
  local -a pairs=("$@")
  deadline=$(($(ck_now_ms) + CK_READY_TIMEOUT_S * 1000))
  while :; do
    waiting=()
    for ((i = 0; i < ${#pairs[@]}; i += 2)); do
      [[ -n $(ip netns exec "${pairs[i + 1]}" ss -Hltn 'sport = :22') ]] && continue
      ck_alive "${SSH_SSHD_PID[${pairs[i]}]}" || ck_die "sshd on ${pairs[i]} exited: $(tail -5 "$SSH_DIR/sshd-${pairs[i]}.log")"
      waiting+=("${pairs[i]}")
    done
    [[ ${#waiting[@]} -eq 0 ]] && break
    [[ $(ck_now_ms) -lt $deadline ]] || ck_die "sshd not listening after ${CK_READY_TIMEOUT_S}s on: ${waiting[*]}"
    sleep 0.1
  done
}

ssh_known_hosts() { # the run's known_hosts: every host's address and key
  local host
  : >"$SSH_DIR/known_hosts"
  for host in "${!SSH_HOST[@]}"; do
    echo "${SSH_HOST[$host]} $(cut -d' ' -f1-2 "$SSH_DIR/host-$host.pub")" >>"$SSH_DIR/known_hosts"
  done
  SSH_KNOWN_HOSTS=$SSH_DIR/known_hosts
}

# What the run's plain ssh and the inventory's `ssh.options` pass, so that
# nothing of this machine's own ssh set-up (root's ~/.ssh, an ssh agent,
# /etc/ssh/ssh_known_hosts) takes part.
ssh_client_options() {
  SSH_OPTIONS=("UserKnownHostsFile=$SSH_KNOWN_HOSTS" "GlobalKnownHostsFile=/dev/null" "IdentitiesOnly=yes"
    "ConnectTimeout=10")
}

# The workstation's address on the nodes' network: .250 of client1's /24
# (the demo's admin_cidrs, which the nodes' firewalls admit SSH and the
# agents' control port from).
ssh_address() { # LAST-OCTET
  echo "${CK_ADDRESS[$CK_CHECK_NODE]%.*}.$1"
}

ssh_topology() {
  local t0 node args=()
  t0=$(ck_now_ms)
  ck_topology
  ssh_start_haproxy
  ssh_users
  for node in "${CK_NODES[@]}"; do
    SSH_HOST[$node]=${CK_ADDRESS[$node]}
    ssh_homes "${CK_NS[$node]}" "$node"
    ssh_write_sshd_config "$node"
    ssh_start_sshd "$node" "${CK_NS[$node]}"
    args+=("$node" "${CK_NS[$node]}")
  done
  ssh_wait_sshd "${args[@]}"
  ssh_known_hosts
  ssh_client_options
  SSH_WS=$CK_PREFIX-ws
  ck_bridge_port "$SSH_WS" "$(ssh_address 250)"
  ck_log "ssh: sshd in ${#CK_NODES[@]} node namespaces, users $SSH_USER (sudo without password) and $SSH_USER_PW (sudo asks a password), workstation $SSH_WS at $(ssh_address 250) ($(ck_since "$t0"))"
}

# haproxy on lb1 with the generated haproxy.cfg minus its health checks: the
# VIP's backends are the agents, which the product starts at the check's
# beginning, and a health-checked backend comes back only after `rise 2` x
# `downinter 5s`. Without checks haproxy sends each connection to the next
# backend whatever its state, as the local check's ck_wait_backends makes sure
# it does, so both checks see the same VIP.
ssh_start_haproxy() {
  sed -e '/^    option httpchk/d' -e '/^    http-check /d' -e '/^    default-server /d' \
    "$CK_WORK/demo/haproxy.cfg" >"$CK_WORK/haproxy-nocheck.cfg"
  ! grep -Eq '^ *(server .* check|option httpchk)' "$CK_WORK/haproxy-nocheck.cfg" || ck_die "health checks left in $CK_WORK/haproxy-nocheck.cfg"
  ck_start_haproxy "$CK_WORK/haproxy-nocheck.cfg"
}

# A bastion: the jump namespace on the nodes' network (.251) runs sshd too; a
# second workstation namespace, $SSH_WS_JUMP, has one link, to the bastion
# only (192.168.77.0/30 inside this run's namespaces; the bastion does not
# forward), so it reaches the nodes only through ssh -J. Its ssh client
# config (/etc/netns/NS/ssh/ssh_config, which `ip netns exec` shows as
# /etc/ssh) names the key and known_hosts for the bastion itself: `ssh -J`
# passes no -o option to the jump connection, so an operator configures the
# bastion there, in ~/.ssh/config or /etc/ssh/ssh_config.
ssh_bastion() {
  local jump=$CK_PREFIX-jump
  SSH_WS_JUMP=$CK_PREFIX-wsj
  SSH_JUMP_ADDRESS=192.168.77.1
  ck_bridge_port "$jump" "$(ssh_address 251)"
  ck_netns_add "$SSH_WS_JUMP"
  ip link add "$CK_PREFIX-j0" netns "$jump" type veth peer name eth0 netns "$SSH_WS_JUMP"
  ip -n "$jump" addr add "$SSH_JUMP_ADDRESS/30" dev "$CK_PREFIX-j0"
  ip -n "$jump" link set "$CK_PREFIX-j0" up
  ip -n "$SSH_WS_JUMP" addr add 192.168.77.2/30 dev eth0
  ip -n "$SSH_WS_JUMP" link set eth0 up
  ip -n "$SSH_WS_JUMP" link set lo up
  ip netns exec "$jump" sysctl -qw net.ipv4.ip_forward=0
  SSH_HOST[jump]=$SSH_JUMP_ADDRESS
  ssh_homes "$jump" jump
  ssh_write_sshd_config jump
  ssh_start_sshd jump "$jump"
  ssh_wait_sshd jump "$jump"
  ssh_known_hosts
  mkdir -p "/etc/netns/$SSH_WS_JUMP/ssh"
  SSH_ETC_NETNS+=("/etc/netns/$SSH_WS_JUMP")
  cat >"/etc/netns/$SSH_WS_JUMP/ssh/ssh_config" <<EOF
# The workstation of portmatrix test run $CK_PREFIX: the bastion.
Host $SSH_JUMP_ADDRESS
    IdentityFile $SSH_KEY
    IdentitiesOnly yes
    UserKnownHostsFile $SSH_KNOWN_HOSTS
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
EOF
  ck_log "ssh: bastion $jump at $(ssh_address 251) and $SSH_JUMP_ADDRESS; workstation $SSH_WS_JUMP at 192.168.77.2 reaches only the bastion"
}

# --- the inventory and the product -----------------------------------------------

# The demo inventory with an `ssh:` section: user $SSH_USER, the run's key,
# sudo, the run's known_hosts. NODE:KEY=VALUE adds `ssh: {KEY: VALUE}` to
# NODE's entry (several for one node are joined); top:KEY=VALUE adds a
# top-level ssh key (e.g. top:proxy_jump=USER@HOST).
ssh_inventory() { # FILE [NODE:KEY=VALUE...]
  local out=$1 term node kv option options=''
  shift
  local -A per_node=() top=()
  for term in "$@"; do
    node=${term%%:*} kv=${term#*:}
    if [[ $node == top ]]; then top[${kv%%=*}]=${kv#*=}; continue; fi
    [[ -n ${CK_ADDRESS[$node]:-} ]] || ck_die "ssh_inventory: no node $node"
    per_node[$node]+="${per_node[$node]:+, }${kv%%=*}: ${kv#*=}"
  done
  for option in "${SSH_OPTIONS[@]}"; do options+="${options:+, }\"$option\""; done
  cp "$INVENTORY" "$out"
  for node in "${!per_node[@]}"; do
    sed -i "s/^\( *- {name: *$node,.*\)}\$/\1, ssh: {${per_node[$node]}}}/" "$out"
    grep -q "name: *$node,.*ssh: {" "$out" || ck_die "ssh_inventory: cannot add ssh keys to $node's line"
  done
  {
    echo "ssh:"
    echo "  user: $SSH_USER"
    echo "  identity_file: $SSH_KEY"
    echo "  sudo: true"
    echo "  options: [$options]"
    for term in "${!top[@]}"; do echo "  $term: ${top[$term]}"; done
  } >>"$out"
  SSH_INVENTORY=$out
}

ssh_pm_start() { # NAME WS SUBCOMMAND [ARGS...]: in the background (ck_check_wait)
  ck_pm_start "$1" "$2" "$3" --inventory "$SSH_INVENTORY" --ssh "${@:4}"
}

ssh_pm() { # NAME WS SUBCOMMAND [ARGS...]: sets CK_RC, CK_MS, CK_JSON
  ssh_pm_start "$@"
  ck_check_wait
}

ssh_plain() { # WS USER HOST CMD...: plain ssh with the run's key and known_hosts
  local ws=$1 user=$2 host=$3 option args=()
  shift 3
  for option in "${SSH_OPTIONS[@]}" StrictHostKeyChecking=yes BatchMode=yes; do args+=(-o "$option"); done
  ip netns exec "$ws" ssh -i "$SSH_KEY" "${args[@]}" "$user@${SSH_HOST[$host]}" "$@"
}

# --- faults ------------------------------------------------------------------------

ssh_stop_sshd() { # NODE: its sshd ends (nothing listens on 22)
  ck_stop "${SSH_SSHD_PID[$1]}"
  ck_log "sshd on $1 stopped (pid ${SSH_SSHD_PID[$1]})"
}

ssh_new_host_key() { # NODE: sshd restarts with a new host key (known_hosts keeps the old one)
  local node=$1 old
  old=$(ssh-keygen -lf "$SSH_DIR/host-$node.pub" | cut -d' ' -f2)
  ssh_stop_sshd "$node"
  ssh_write_sshd_config "$node"
  ssh_start_sshd "$node" "${CK_NS[$node]}"
  ssh_wait_sshd "$node" "${CK_NS[$node]}"
  ck_log "sshd on $node restarted with a new host key: $old -> $(ssh-keygen -lf "$SSH_DIR/host-$node.pub" | cut -d' ' -f2)"
}

# --- what is left on the nodes, what their sshd saw ---------------------------------

ssh_agents_in() { # NODE: prints "PID CMDLINE" of every portmatrix process in NODE's namespace
  local pid cmdline
  for pid in $(ip netns pids "${CK_NS[$1]}"); do
    cmdline=$(ssh_cmdline "$pid") || continue
    ck_alive "$pid" || continue
    [[ $cmdline == *portmatrix* ]] && echo "$pid $cmdline"
  done
  return 0
}

ssh_count_agents() { # prints how many nodes have a portmatrix process
  local node n=0
  for node in "${CK_NODES[@]}"; do [[ -z $(ssh_agents_in "$node") ]] || n=$((n + 1)); done
  echo "$n"
}

ssh_cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null; } # PID: its command line, or nothing once it ended

ssh_has_agents() { [[ -n $(ssh_agents_in "$1") ]]; } # NODE

ssh_wait_until() { # CEILING CMD...: runs CMD until it succeeds, CEILING seconds at most
  local deadline=$(($(ck_now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [[ $(ck_now_ms) -lt $deadline ]] || return 1
    sleep 0.1
  done
}

ssh_agents_left() { # prints "NODE: PID CMDLINE" for every portmatrix process on any node
  local node
  for node in "${CK_NODES[@]}"; do ssh_agents_in "$node" | sed "s/^/$node: /"; done
}

# Waits until no node's namespace holds a portmatrix process, CEILING seconds
# at most; one ok, or one failure listing what still runs.
ssh_wait_no_agents() { # CEILING [WHAT]
  local ceiling=$1 what=${2:-} t0 left
  t0=$(ck_now_ms)
  while :; do
    left=$(ssh_agents_left)
    [[ -z $left ]] && break
    [[ $(ck_now_ms) -lt $((t0 + ceiling * 1000)) ]] || break
    sleep 0.2
  done
  if [[ -z $left ]]; then
    ck_ok "no portmatrix process in any of the ${#CK_NODES[@]} nodes' namespaces${what:+ $what} (after $(ck_since "$t0"))"
  else
    ck_fail "portmatrix processes still run ${ceiling}s later${what:+ ($what)}:"
    printf '%s\n' "$left" | head -c 3000 | sed 's/^/    /'
  fi
}

# What is left of the connections: any process in a workstation namespace
# (an ssh master), any sshd in a node's namespace but its listener (a session).
ssh_sessions_left() {
  local ns node pid
  for ns in $SSH_WS $SSH_WS_JUMP; do
    for pid in $(ip netns pids "$ns"); do
      ! ck_alive "$pid" || echo "workstation $ns: $pid $(ssh_cmdline "$pid" | head -c 300)"
    done
  done
  for node in "${CK_NODES[@]}"; do
    for pid in $(ip netns pids "${CK_NS[$node]}"); do
      [[ $pid != "${SSH_SSHD_PID[$node]}" && $(cat "/proc/$pid/comm" 2>/dev/null) == sshd ]] || continue
      ! ck_alive "$pid" || echo "$node: $pid $(ssh_cmdline "$pid")"
    done
  done
}

ssh_no_sessions() { # CEILING: waits until ssh_sessions_left is empty
  local t0 left
  t0=$(ck_now_ms)
  while :; do
    left=$(ssh_sessions_left)
    [[ -z $left ]] && break
    [[ $(ck_now_ms) -lt $((t0 + $1 * 1000)) ]] || break
    sleep 0.2
  done
  if [[ -z $left ]]; then
    ck_ok "no ssh master on the workstation, no sshd session on any node (after $(ck_since "$t0"))"
  else
    ck_fail "connections still open $1 s later:"
    printf '%s\n' "$left" | head -30 | sed 's/^/    /'
  fi
}

# Files the run left on the nodes: whatever the run's users own in /tmp,
# /var/tmp and /dev/shm, and anything in the nodes' homes but what KEEP (a
# grep -E pattern, e.g. '/\.cache/portmatrix(/|$)' for --keep-binary) allows.
ssh_left_files() { # [KEEP]
  {
    find /tmp /var/tmp /dev/shm -xdev \( -user "$SSH_USER" -o -user "$SSH_USER_PW" \) \
      -not -path "$SSH_PUBLIC/*" -print 2>/dev/null
    find "$SSH_PUBLIC/home" -mindepth 3 -print 2>/dev/null
  } | { if [[ -n ${1:-} ]]; then grep -Ev -- "$1" || true; else cat; fi; }
}

ssh_no_run_files() { # [KEEP]
  local found
  found=$(ssh_left_files "${1:-}")
  if [[ -z $found ]]; then
    ck_ok "no file of the run left on any node (nothing of $SSH_USER's or $SSH_USER_PW's in /tmp, /var/tmp, /dev/shm; nothing in the nodes' homes${1:+ but $1})"
  else
    ck_fail "files left on the nodes: $(printf '%s\n' "$found" | head -20 | tr '\n' ' ')"
  fi
}

# After a run: no agent on any node (CEILING s at most), no file of the run,
# no ssh master, no sshd session.
ssh_nothing_left() { # WHAT [CEILING]
  ssh_wait_no_agents "${2:-10}" "$1"
  ssh_no_run_files
  ssh_no_sessions "${2:-10}"
}

# The local check (agents started by hand, check from client1) passes and
# gives the same verdicts as REPORT.
ssh_same_as_local() { # REPORT
  ck_make_token
  ck_start_agents
  ck_check local
  ck_exit_status 0
  ck_same_verdicts "$1"
}

ssh_accepted() { # HOST: how many logins its sshd accepted so far
  grep -c 'Accepted publickey for' "$SSH_DIR/sshd-$1.log" || true
}

ssh_connections() { # HOST: how many connections its sshd saw so far
  grep -c 'Connection from' "$SSH_DIR/sshd-$1.log" || true
}
