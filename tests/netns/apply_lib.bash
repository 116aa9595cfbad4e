# shellcheck shell=bash
# Shared by the `firewall apply` scenarios (tests/netns/apply_*.sh), on the
# SSH fan-out's topology (ssh_lib.bash: every node's namespace runs sshd and
# the generated nftables; the workstation $SSH_WS at .250 of the nodes'
# /24). What the product writes on the "nodes" goes to this run's own
# directories, never the host's: --state-dir $APPLY_STATE (one directory per
# node in it) and --root $APPLY_ROOT (the boot-time files, etc/... under it).
#
# The backend: $PM_APPLY_BACKEND (nftables when unset; ctest runs every
# apply_*.sh once per backend, netns_apply_X, netns_apply_X_iptables and
# netns_apply_X_ufw). With iptables or ufw, apply_init swaps each node's
# generated nftables for its generated iptables or ufw script (the same
# rules; the topology is built once, the one way), and every `firewall`
# command gets --backend. ufw keeps its state in /etc/ufw and
# /etc/default/ufw: every node gets private copies of both (/etc/netns/NS/,
# which ip netns exec binds over /etc for sshd and all it starts), so the
# host's own ufw is never touched. What differs per
# backend in the scenarios is asked of the functions below:
#   apply_ruleset NODE          everything of the node's firewall, as text to compare
#   apply_persisted NODE PATTERN  NODE's boot-time files hold the rules (PATTERN: an address in them)
#   apply_hand_drop NODE        a rule added by hand at the top of portmatrix's input chain:
#                               drop 10250/tcp from the masters, comment "by hand"
#   apply_host_own NODE         a table (chain, set) of the host's own that also filters input,
#                               accepting 9999/tcp; apply_host_own_intact NODE: still there
#   apply_ours_left NODE        what is left of portmatrix on NODE (empty: nothing)
#
#   apply_init NAME PORTMATRIX [PM_NETPROBE]   ssh_init + ssh_topology + the run's directories; with
#                                              iptables or ufw, the nodes in $APPLY_NODES (all when
#                                              empty) get that backend's rules, the others keep nftables
#   apply_inventory FILE [SED-EXPRESSION...]   ssh_inventory, then the expressions applied to it
#   apply_pm NAME SUBCOMMAND ARGS...           `portmatrix firewall SUBCOMMAND --ssh` from the workstation
#                                              with the run's state dir and root (ck_check_wait: CK_RC,
#                                              CK_JSON, validated against docs/schema/firewall-*-ssh)
#   apply_ruleset NODE                         the node's `nft list ruleset`, counters zeroed
#   apply_wait NODE SECONDS CMD...             polls CMD NODE until it succeeds; 1 after SECONDS

source "$(dirname "${BASH_SOURCE[0]}")/ssh_lib.bash"

APPLY_BACKEND=${PM_APPLY_BACKEND:-nftables}

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
    *) ck_die "PM_APPLY_BACKEND=$APPLY_BACKEND: no such backend here" ;;
  esac
  ssh_topology
  APPLY_STATE=$CK_WORK/state
  APPLY_ROOT=$CK_WORK/root
  mkdir -p "$APPLY_STATE" "$APPLY_ROOT/etc"
  if [[ $APPLY_BACKEND != nftables ]]; then
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
  esac
}

apply_hand_drop() { # NODE
  case $APPLY_BACKEND in
    nftables) ck_in "$1" nft insert rule inet portmatrix input ip saddr @master_v4 tcp dport 10250 drop comment '"by hand"' ;;
    iptables)
      ck_in "$1" iptables -I PORTMATRIX-INPUT 1 -m set --match-set pm-master-v4 src -p tcp --dport 10250 \
        -m comment --comment "by hand" -j DROP
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
