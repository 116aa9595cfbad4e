# shellcheck shell=bash
# Shared by the `firewall apply` scenarios (tests/netns/apply_*.sh), on the
# SSH fan-out's topology (ssh_lib.bash: every node's namespace runs sshd and
# the generated nftables; the workstation $SSH_WS at .250 of the nodes'
# /24). What the product writes on the "nodes" goes to this run's own
# directories, never the host's: --state-dir $APPLY_STATE (one directory per
# node in it) and --root $APPLY_ROOT (the boot-time files, etc/... under it).
#
#   apply_init NAME PORTMATRIX [PM_NETPROBE]   ssh_init + ssh_topology + the run's directories
#   apply_inventory FILE [SED-EXPRESSION...]   ssh_inventory, then the expressions applied to it
#   apply_pm NAME SUBCOMMAND ARGS...           `portmatrix firewall SUBCOMMAND --ssh` from the workstation
#                                              with the run's state dir and root (ck_check_wait: CK_RC,
#                                              CK_JSON, validated against docs/schema/firewall-*-ssh)
#   apply_ruleset NODE                         the node's `nft list ruleset`, counters zeroed
#   apply_wait NODE SECONDS CMD...             polls CMD NODE until it succeeds; 1 after SECONDS

source "$(dirname "${BASH_SOURCE[0]}")/ssh_lib.bash"

apply_init() { # NAME PORTMATRIX [PM_NETPROBE]
  ssh_init "$@"
  ssh_topology
  APPLY_STATE=$CK_WORK/state
  APPLY_ROOT=$CK_WORK/root
  mkdir -p "$APPLY_STATE" "$APPLY_ROOT/etc"
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
    --root "$APPLY_ROOT" "${@:3}"
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
  ck_in "$1" nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/g'
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
