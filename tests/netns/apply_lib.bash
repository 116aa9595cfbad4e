# shellcheck shell=bash
# Shared by the `firewall apply` scenarios (tests/netns/apply_*.sh), on the
# SSH fan-out's topology (ssh_lib.bash: every node's namespace runs sshd and
# the generated nftables; the workstation $SSH_WS at .250 of the nodes'
# /24). What the product writes on the "nodes" goes to this run's own
# directories, never the host's: --state-dir $APPLY_STATE (one directory per
# node in it) and --root $APPLY_ROOT (the boot-time files, etc/... under it).
#
# The backend: $PM_APPLY_BACKEND (nftables when unset; ctest runs every
# apply_*.sh once per backend, netns_apply_X, netns_apply_X_iptables,
# netns_apply_X_ufw and netns_apply_X_firewalld). With iptables or ufw, apply_init swaps each node's
# generated nftables for its generated iptables or ufw script (the same
# rules; the topology is built once, the one way), and every `firewall`
# command gets --backend. ufw keeps its state in /etc/ufw and
# /etc/default/ufw: every node gets private copies of both (/etc/netns/NS/,
# which ip netns exec binds over /etc for sshd and all it starts), so the
# host's own ufw is never touched. firewalld: each node of $APPLY_NODES gets
# a real firewalld (nftables backend) of its own: a process holding a private
# mount namespace inside the node's network namespace, with a copy of
# /etc/firewalld bound over /etc/firewalld and a tmpfs over /run (so its
# dbus-daemon --system listens on a socket of its own), dbus-daemon and
# firewalld --nofork in it, and the node's sshd restarted in it, so that
# firewall-cmd run over ssh reaches that node's firewalld and nothing of the
# host's (its dbus, its /etc/firewalld, its firewall) is touched. The node's
# generated firewalld rules are staged once per distinct ruleset
# (firewall-offline-cmd on a copy) into its /etc/firewalld before firewalld
# starts. Every process is started with ck_spawn and ended by pid by the
# trap. What differs per backend in the scenarios is asked of the functions below:
#   apply_ruleset NODE          everything of the node's firewall, as text to compare
#   apply_persisted NODE PATTERN  NODE's boot-time files hold the rules (PATTERN: an address in them)
#   apply_boot_has NODE PATTERN   anything NODE loads at boot holds PATTERN (a rule never confirmed must not)
#   apply_hand_drop NODE        a rule added by hand at the top of portmatrix's input chain:
#                               drop 10250/tcp from the masters, comment "by hand"
#   apply_host_own NODE         a table (chain, set) of the host's own that also filters input,
#                               accepting 9999/tcp; apply_host_own_intact NODE: still there
#   apply_ours_left NODE        what is left of portmatrix on NODE (empty: nothing)
#
#   apply_init NAME PORTMATRIX [PM_NETPROBE]   ssh_init + ssh_topology + the run's directories; with
#                                              iptables, ufw or firewalld, the nodes in $APPLY_NODES (all
#                                              when empty) get that backend's rules, the others keep nftables
#   apply_inventory FILE [SED-EXPRESSION...]   ssh_inventory, then the expressions applied to it
#   apply_pm NAME SUBCOMMAND ARGS...           `portmatrix firewall SUBCOMMAND --ssh` from the workstation
#                                              with the run's state dir and root (ck_check_wait: CK_RC,
#                                              CK_JSON, validated against docs/schema/firewall-*-ssh)
#   apply_ruleset NODE                         the node's `nft list ruleset`, counters zeroed
#   apply_wait NODE SECONDS CMD...             polls CMD NODE until it succeeds; 1 after SECONDS

source "$(dirname "${BASH_SOURCE[0]}")/ssh_lib.bash"

APPLY_BACKEND=${PM_APPLY_BACKEND:-nftables}
# How much longer than the others the backend's check before an apply may take,
# in seconds: firewalld's runs firewall-offline-cmd once per command of the
# generated script (59 for master1), about a second each on a loaded machine.
APPLY_CHECK_S=0
[[ $APPLY_BACKEND != firewalld ]] || APPLY_CHECK_S=150

apply_init() { # NAME PORTMATRIX [PM_NETPROBE]
  local node
  ssh_init "$@"
  case $APPLY_BACKEND in
    nftables) ;;
    iptables)
      for tool in iptables-save iptables-restore ip6tables-save ip6tables-restore ipset; do
        command -v "$tool" >/dev/null || ssh_need "$tool" "the iptables backend's apply scenarios"
      done
      ;;
    ufw)
      command -v ufw >/dev/null || ssh_need ufw "the ufw backend's apply scenarios"
      SSH_ETC_PRIVATE=(ufw default)
      ;;
    firewalld)
      for tool in firewalld firewall-cmd firewall-offline-cmd dbus-daemon unshare nsenter; do
        command -v "$tool" >/dev/null || ssh_need "$tool" "the firewalld backend's apply scenarios"
      done
      [[ -d /etc/firewalld ]] || ssh_need /etc/firewalld "the firewalld backend's apply scenarios (its configuration)"
      ;;
    *) ck_die "PM_APPLY_BACKEND=$APPLY_BACKEND: no such backend here" ;;
  esac
  ssh_topology
  APPLY_STATE=$CK_WORK/state
  APPLY_ROOT=$CK_WORK/root
  mkdir -p "$APPLY_STATE" "$APPLY_ROOT/etc"
  if [[ $APPLY_BACKEND == firewalld ]]; then
    apply_firewalld_nodes "${APPLY_NODES[@]:-${CK_NODES[@]}}"
  elif [[ $APPLY_BACKEND != nftables ]]; then
    local t0 pids=() pid
    t0=$(ck_now_ms)
    for node in "${APPLY_NODES[@]:-${CK_NODES[@]}}"; do # at once: ufw takes seconds per node
      apply_swap_firewall "$node" >"$CK_WORK/$node.swap.log" 2>&1 &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || ck_die "swapping a node's firewall failed: $(cat "$CK_WORK"/*.swap.log | tail -5)"; done
    ck_log "the generated $APPLY_BACKEND rules replace the nftables ones on ${APPLY_NODES[*]:-every node} ($(ck_since "$t0"))"
  fi
}

apply_swap_firewall() { # NODE: its generated $APPLY_BACKEND rules instead of the topology's nftables
  "$PM_BIN" firewall --inventory "$INVENTORY" --node "$1" --format "$APPLY_BACKEND" >"$CK_WORK/$1.$APPLY_BACKEND.sh" &&
    ck_in "$1" nft delete table inet portmatrix && ck_in "$1" sh "$CK_WORK/$1.$APPLY_BACKEND.sh"
}

# --- firewalld: one real firewalld per node -------------------------------------

declare -A APPLY_FWD_HOLDER=() # node -> pid of the process holding its private mount namespace

apply_fwd() { # NODE CMD...: CMD in NODE's network and private mount namespaces (its firewalld, its dbus)
  local node=$1
  shift
  [[ -n ${APPLY_FWD_HOLDER[$node]:-} ]] || ck_die "$node runs no firewalld of its own"
  nsenter -t "${APPLY_FWD_HOLDER[$node]}" -m -n "$@"
}

apply_fwd_etc() { echo "$CK_WORK/firewalld-$1/etc"; } # NODE: its /etc/firewalld, as the host sees it

# NODE's generated firewalld rules, staged into DIR (a copy of the host's
# /etc/firewalld): firewall-offline-cmd takes about a second per command, so
# each distinct ruleset is staged once and copied.
apply_fwd_stage() { # NODE DIR
  local script=$CK_WORK/$1.firewalld.sh sum stage
  "$PM_BIN" firewall --inventory "$INVENTORY" --node "$1" --format firewalld >"$script" || return 1
  sum=$(grep -v '^#' "$script" | md5sum | cut -c1-12) # the header names the node; nodes of one ruleset group share the rest
  stage=$CK_WORK/firewalld-stage-$sum
  if [[ ! -d $stage ]]; then
    local t0
    t0=$(ck_now_ms)
    cp -a /etc/firewalld "$stage.new" &&
      PORTMATRIX_IFACE=eth0 FIREWALL_CMD="firewall-offline-cmd --system-config $stage.new" sh "$script" \
        >"$stage.log" 2>&1 || { tail -5 "$stage.log"; return 1; }
    mv "$stage.new" "$stage"
    ck_log "firewalld: $1's generated rules staged with firewall-offline-cmd ($(grep -c '^\$fw' "$script") commands, $(ck_since "$t0"))"
  fi
  cp "$stage/zones/portmatrix.xml" "$2/zones/" && cp "$stage"/ipsets/pm-*.xml "$2/ipsets/"
}

apply_firewalld_nodes() { # NODE...: each runs a firewalld with its generated rules, its sshd inside
  local t0 node dir holder i
  t0=$(ck_now_ms)
  for node in "$@"; do
    dir=$CK_WORK/firewalld-$node
    mkdir -p "$dir"
    cp -a /etc/firewalld "$dir/etc"
    apply_fwd_stage "$node" "$dir/etc" || ck_die "staging $node's generated firewalld rules failed"
    ck_spawn "mount namespace of $node" ip netns exec "${CK_NS[$node]}" unshare -m --propagation private sleep infinity \
      </dev/null
    holder=$CK_PID
    for ((i = 0; i < 100; i++)); do [[ $(cat "/proc/$holder/comm" 2>/dev/null) == sleep ]] && break; sleep 0.05; done
    APPLY_FWD_HOLDER[$node]=$holder
    apply_fwd "$node" mount --bind "$dir/etc" /etc/firewalld || ck_die "cannot bind $node's /etc/firewalld"
    apply_fwd "$node" mount -t tmpfs -o mode=755 "pm-run-$node" /run || ck_die "cannot mount $node's /run"
    apply_fwd "$node" mkdir -p /run/dbus /run/sshd /run/firewalld
    ck_spawn "dbus-daemon of $node" nsenter -t "$holder" -m -n dbus-daemon --system --nofork --nopidfile \
      </dev/null >"$dir/dbus.log" 2>&1
    for ((i = 0; i < 100; i++)); do apply_fwd "$node" test -S /run/dbus/system_bus_socket && break; sleep 0.05; done
    ck_spawn "firewalld of $node" nsenter -t "$holder" -m -n firewalld --nofork --nopid --log-target console \
      </dev/null >"$dir/firewalld.log" 2>&1
    ck_in "$node" nft delete table inet portmatrix # the topology's nftables rules: firewalld's take their place
  done
  ck_log "firewalld: starting on $* ($(ck_since "$t0"))"
  for node in "$@"; do
    ssh_wait_until 30 apply_fwd "$node" firewall-cmd --state >/dev/null 2>&1 ||
      ck_die "firewalld of $node is not running 30 s later: $(tail -5 "$CK_WORK/firewalld-$node/firewalld.log")"
    [[ $(apply_fwd "$node" firewall-cmd --get-zone-of-interface=eth0) == portmatrix ]] ||
      ck_die "$node's eth0 is not in the zone portmatrix: $(tail -5 "$CK_WORK/firewalld-$node/firewalld.log")"
    # Its sshd again, inside the mount namespace (same host key).
    ssh_stop_sshd "$node" >/dev/null
    SSH_SSHD_ENTER[$node]="nsenter -t ${APPLY_FWD_HOLDER[$node]} -m -n"
    ssh_start_sshd "$node" "${CK_NS[$node]}"
    ssh_wait_sshd "$node" "${CK_NS[$node]}"
  done
  ck_log "firewalld (its own dbus and /etc/firewalld) runs the generated rules on $*, sshd inside ($(ck_since "$t0"))"
}

apply_inventory() { # FILE [SED-EXPRESSION...]
  local out=$1 expression
  ssh_inventory "$out"
  for expression in "${@:2}"; do
    sed -i "$expression" "$out"
  done
}

apply_pm_start() { # NAME SUBCOMMAND [ARGS...]
  ck_pm_start "$1" "$SSH_WS" firewall "$2" --inventory "$SSH_INVENTORY" --ssh --state-dir "$APPLY_STATE" \
    --root "$APPLY_ROOT" --backend "$APPLY_BACKEND" "${@:3}"
  # ck_check_wait validates the JSON report against its schema.
  case $2 in
    apply) CK_SCHEMA=firewall-apply-ssh ;;
    status) CK_SCHEMA=firewall-status-ssh ;;
    *) CK_SCHEMA=firewall-action-ssh ;;
  esac
  [[ " ${*:3} " == *" --format "* ]] && CK_SCHEMA=
  return 0
}

apply_pm() { # NAME SUBCOMMAND [ARGS...]
  apply_pm_start "$@"
  ck_check_wait
}

apply_ruleset() { # NODE
  case $APPLY_BACKEND in
    nftables) ck_in "$1" nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/g' ;;
    firewalld) ck_in "$1" nft list ruleset ;; # firewalld's nftables backend: its table inet firewalld
    iptables | ufw)
      ck_in "$1" iptables-save | sed -E -e '/^#/d' -e 's/\[[0-9]+:[0-9]+\]/[0:0]/'
      ck_in "$1" ip6tables-save | sed -E -e '/^#/d' -e 's/\[[0-9]+:[0-9]+\]/[0:0]/'
      [[ $APPLY_BACKEND == ufw ]] || ck_in "$1" ipset save | sort
      ;;
  esac
}

apply_persisted() { # NODE PATTERN
  case $APPLY_BACKEND in
    nftables)
      grep -q "$2" "$APPLY_ROOT/etc/portmatrix/portmatrix.nft" &&
        grep -qx 'include "/etc/portmatrix/portmatrix.nft"' "$APPLY_ROOT/etc/nftables.conf"
      ;;
    iptables)
      grep -q "^add pm-admin-v4 $2" "$APPLY_ROOT/etc/iptables/ipsets" &&
        grep -qx -- '-A INPUT -j PORTMATRIX-INPUT' "$APPLY_ROOT/etc/iptables/rules.v4" &&
        grep -qx -- '-A INPUT -j PORTMATRIX-INPUT' "$APPLY_ROOT/etc/iptables/rules.v6" &&
        grep -q -- '-A PORTMATRIX-INPUT -j DROP' "$APPLY_ROOT/etc/iptables/rules.v4"
      ;;
    ufw) ck_in "$1" grep -q -- "-A ufw-user-input .*-s $2 -j ACCEPT" /etc/ufw/user.rules ;; # the node's own /etc/ufw
    firewalld) # the node's own /etc/firewalld, which firewalld reads at boot
      grep -q "<entry>$2</entry>" "$(apply_fwd_etc "$1")/ipsets/pm-admin-v4.xml" &&
        grep -q '<interface name="eth0"/>' "$(apply_fwd_etc "$1")/zones/portmatrix.xml"
      ;;
  esac
}

apply_boot_has() { # NODE PATTERN: what NODE loads at boot holds PATTERN (nftables, iptables: under the run's root)
  case $APPLY_BACKEND in
    firewalld) grep -rqF -- "$2" "$(apply_fwd_etc "$1")" ;;
    ufw) ck_in "$1" grep -qF -- "$2" /etc/ufw/user.rules ;;
    *) grep -rqF -- "$2" "$APPLY_ROOT" ;;
  esac
}

apply_hand_drop() { # NODE
  case $APPLY_BACKEND in
    nftables) ck_in "$1" nft insert rule inet portmatrix input ip saddr @master_v4 tcp dport 10250 drop comment '"by hand"' ;;
    iptables)
      ck_in "$1" iptables -I PORTMATRIX-INPUT 1 -m set --match-set pm-master-v4 src -p tcp --dport 10250 \
        -m comment --comment "by hand" -j DROP
      ;;
    firewalld) # at runtime, in portmatrix's zone
      apply_fwd "$1" firewall-cmd --zone=portmatrix \
        --add-rich-rule='rule family="ipv4" source ipset="pm-master-v4" port port="10250" protocol="tcp" drop'
      ;;
    ufw)
      local master
      for master in master1 master2 master3; do
        ck_in "$1" ufw insert 1 deny proto tcp from "${CK_ADDRESS[$master]}" to any port 10250 comment 'by hand' || return 1
      done
      ;;
  esac
}

apply_host_own() { # NODE
  case $APPLY_BACKEND in
    nftables)
      ck_in "$1" nft -f - <<'EOF_NFT'
table ip hostown {
  chain input { type filter hook input priority 10; policy accept; tcp dport 9999 counter accept; }
}
EOF_NFT
      ;;
    iptables)
      ck_in "$1" ipset create hostown hash:ip &&
        ck_in "$1" iptables -N hostown &&
        ck_in "$1" iptables -A hostown -p tcp --dport 9999 -m set --match-set hostown src -j ACCEPT &&
        ck_in "$1" iptables -A INPUT -j hostown
      ;;
    ufw) ck_in "$1" ufw allow 9999/tcp comment hostown ;;
    firewalld) # a table of its own, and firewalld configuration of its own: an ipset, a port of the zone public
      ck_in "$1" nft -f - <<'EOF_NFT' &&
table ip hostown {
  chain input { type filter hook input priority 10; policy accept; tcp dport 9999 counter accept; }
}
EOF_NFT
        apply_fwd "$1" firewall-cmd --permanent --new-ipset=hostown --type=hash:ip >/dev/null &&
        apply_fwd "$1" firewall-cmd --permanent --zone=public --add-port=9999/tcp >/dev/null &&
        apply_fwd "$1" firewall-cmd --reload >/dev/null
      ;;
  esac
}

apply_host_own_intact() { # NODE (outputs read whole: grep -q in a pipe may cut the writer short)
  local rules input sets
  case $APPLY_BACKEND in
    nftables)
      rules=$(ck_in "$1" nft list table ip hostown) && [[ $rules == *'tcp dport 9999 counter'* ]]
      ;;
    iptables)
      rules=$(ck_in "$1" iptables -S hostown) && input=$(ck_in "$1" iptables -S INPUT) &&
        sets=$(ck_in "$1" ipset list -n) && [[ $rules == *'--dport 9999'* ]] &&
        grep -qx -- '-A INPUT -j hostown' <<<"$input" && grep -qx hostown <<<"$sets"
      ;;
    ufw) rules=$(ck_in "$1" ufw show added) && [[ $rules == *"ufw allow 9999/tcp comment 'hostown'"* ]] ;;
    firewalld) # the table, and firewalld's own ipset and port, on disk and live
      rules=$(ck_in "$1" nft list table ip hostown) && [[ $rules == *'tcp dport 9999 counter'* ]] &&
        sets=$(apply_fwd "$1" firewall-cmd --get-ipsets) && [[ " $sets " == *" hostown "* ]] &&
        input=$(apply_fwd "$1" firewall-cmd --zone=public --list-ports) && [[ " $input " == *" 9999/tcp "* ]] &&
        [[ -f $(apply_fwd_etc "$1")/ipsets/hostown.xml ]] && grep -q 'port="9999"' "$(apply_fwd_etc "$1")/zones/public.xml"
      ;;
  esac
}

apply_ours_left() { # NODE
  case $APPLY_BACKEND in
    nftables) ck_in "$1" nft list tables | grep 'inet portmatrix' ;;
    iptables)
      ck_in "$1" iptables-save | grep PORTMATRIX
      ck_in "$1" ip6tables-save | grep PORTMATRIX
      ck_in "$1" ipset list -n | grep '^pm-'
      ;;
    ufw)
      ck_in "$1" ufw show added | grep "comment 'portmatrix: "
      ck_in "$1" grep -h '^# BEGIN portmatrix' /etc/ufw/before.rules /etc/ufw/before6.rules
      ;;
    firewalld)
      apply_fwd "$1" firewall-cmd --get-zones | tr ' ' '\n' | grep -x portmatrix
      apply_fwd "$1" firewall-cmd --get-ipsets | tr ' ' '\n' | grep '^pm-'
      ck_in "$1" nft list table inet firewalld | grep -m1 portmatrix
      (cd "$(apply_fwd_etc "$1")" && ls zones/portmatrix.xml* ipsets/pm-* 2>/dev/null)
      ;;
  esac
  return 0
}

apply_wait() { # NODE SECONDS CMD...: CMD NODE until it succeeds
  local node=$1 deadline=$(($(ck_now_ms) + $2 * 1000))
  shift 2
  until "$@" "$node"; do
    [[ $(ck_now_ms) -lt $deadline ]] || return 1
    sleep 0.1
  done
}

apply_state_of() { # NODE: the status line of its state file
  sed -n 's/^status //p' "$APPLY_STATE/$1/state" 2>/dev/null
}

apply_result() { # NODE: its state in the rollout's JSON report ($CK_JSON)
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["nodes"][sys.argv[2]]["state"])' "$CK_JSON" "$1" 2>/dev/null
}

apply_rollback_processes() { # NODE: "PID CMDLINE" of every rollback.sh still running in NODE's namespace
  local pid cmdline
  for pid in $(ip netns pids "${CK_NS[$1]}"); do
    cmdline=$(ssh_cmdline "$pid") || continue
    [[ $cmdline == *rollback.sh* ]] && ck_alive "$pid" && echo "$pid $cmdline"
  done
  return 0
}
