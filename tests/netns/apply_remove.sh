#!/usr/bin/env bash
# firewall remove --ssh: master2's rules applied and confirmed (boot-time
# files written), a table of the host's own added beside them, then remove:
# nothing of portmatrix's on master2 (nftables: its table; iptables: its
# chain, INPUT's jump, the pm-* sets), no boot-time file left (those
# portmatrix created are gone too), no state directory, and the host's own
# table (iptables: chain, jump and ipset) still there, its rule intact.
# Another node (master3) keeps portmatrix's rules.
#   usage: apply_remove.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
APPLY_NODES=(master2 master3) # the nodes given the backend's rules (iptables, ufw, firewalld); the others keep nftables
apply_init apply_remove "$@"
apply_inventory "$CK_WORK/inventory-remove.yaml"

apply_pm applied apply --node master2 --no-verify --confirm-timeout 30
ck_exit_status 0
[[ $(apply_state_of master2) == confirmed ]] && apply_persisted master2 10.213.0.0/24 ||
  ck_die "the apply left no boot-time file or is not confirmed: $(cat "$CK_WORK/applied.err")"
grep -q 'flows are NOT checked' "$CK_WORK/applied.err" && ck_ok "--no-verify says the flows were not checked" ||
  ck_fail "--no-verify said nothing on stderr"
apply_host_own master2 || ck_die "cannot add the host's own table on master2"

apply_pm removed remove --node master2
ck_exit_status 0
left=$(apply_ours_left master2 | tr '\n' ' ')
[[ -z $left ]] && ck_ok "nothing of portmatrix's $APPLY_BACKEND rules left on master2" || ck_fail "left on master2: $left"
apply_host_own_intact master2 &&
  ck_ok "the host's own table and its rule are still there" || ck_fail "the host's own table is gone or changed"
left=$(find "$APPLY_ROOT" "$APPLY_STATE" -mindepth 1 -not -type d | head -5)
[[ -z $left ]] && ck_ok "no boot-time file and no state file left" || ck_fail "left: $left"
[[ ! -e $APPLY_STATE/master2 ]] && ck_ok "master2's state directory is gone" || ck_fail "master2's state directory is still there"
[[ -n $(apply_ours_left master3) ]] && ck_ok "master3 keeps its rules" || ck_fail "master3 lost its rules"

ck_finish
