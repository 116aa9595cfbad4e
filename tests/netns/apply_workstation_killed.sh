#!/usr/bin/env bash
# firewall apply --ssh, the workstation dies: the run is killed (SIGKILL: no
# clean-up, no rollback asked for) as soon as the canary master1's new rules
# are live, before the check that would confirm them ends. master1 restores
# its previous ruleset by itself: exactly the one before the apply, within
# --confirm-timeout (+5 s) of the moment the new rules were seen; its state
# says rolled-back, the rollback's log says restored, nothing persisted.
#   usage: apply_workstation_killed.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
APPLY_NODES=(master1) # the nodes given the backend's rules (iptables, ufw, firewalld); the others keep nftables
apply_init apply_workstation_killed "$@"
TIMEOUT=30

# New rules that change nothing for the run but are visible: a second admin CIDR.
apply_inventory "$CK_WORK/inventory-killed.yaml" \
  's|^admin_cidrs: \[10.213.0.0/24\]|admin_cidrs: [10.213.0.0/24, 10.213.9.0/24]|'
before=$(apply_ruleset master1)

new_rules_live() { grep -q '10.213.9.0/24' <<<"$(apply_ruleset "$1")"; } # read whole: grep -q in a pipe may cut the writer short
apply_pm_start killed apply --node master1 --confirm-timeout "$TIMEOUT" --deadline 10 --timeout-ms 3000
apply_wait master1 $((90 + APPLY_CHECK_S)) new_rules_live || ck_die "the new rules never went live on master1: $(cat "$CK_WORK/killed.err")"
live_ms=$(ck_now_ms)
ck_stop "$CK_CHECK_PID" KILL
CK_RC=137
ck_log "the new rules live on master1 $(ck_since "$CK_CHECK_T0") into the run: the run killed (SIGKILL)"
if [[ $(apply_state_of master1) == armed && -n $(apply_rollback_processes master1) ]]; then
  ck_ok "killed while master1's apply waited for its confirmation (state armed, its rollback process running)"
else
  ck_fail "master1's state at the kill: '$(apply_state_of master1)' (the test killed nothing mid-apply)"
fi

back() { [[ $(apply_ruleset "$1") == "$before" ]]; }
if apply_wait master1 $((TIMEOUT + 5)) back; then
  ck_ok "master1 restored its previous ruleset by itself, $(ck_secs $(($(ck_now_ms) - live_ms))) after the new one went live (--confirm-timeout $TIMEOUT s)"
else
  ck_fail "master1's ruleset is not the one before the apply $((TIMEOUT + 5)) s later:"
  diff <(echo "$before") <(apply_ruleset master1) | head -20 | sed 's/^/    /'
fi
# The state is written once the restore command returns (ufw's reload takes seconds after its rules are back),
# and the log's line just after it (read at once, it was missing under load).
rolled_back() { [[ $(apply_state_of "$1") == rolled-back ]] && grep -q "$1 restored" "$APPLY_STATE/$1/rollback.log"; }
if apply_wait master1 15 rolled_back; then
  ck_ok "master1's state says rolled-back; its rollback log: $(tail -1 "$APPLY_STATE/master1/rollback.log")"
else
  ck_fail "master1: state '$(apply_state_of master1)', rollback log: $(tail -3 "$APPLY_STATE/master1/rollback.log" 2>&1)"
fi
left=$(find "$APPLY_ROOT" -type f | head -5)
[[ -z $left ]] && ck_ok "nothing persisted" || ck_fail "boot-time files written: $left"
! apply_boot_has master1 10.213.9.0/24 && ck_ok "master1's boot-time configuration does not hold the rolled-back rules" ||
  ck_fail "master1's boot-time configuration holds the rolled-back rules (10.213.9.0/24)"
ssh_plain "$SSH_WS" "$SSH_USER" master1 true && ck_ok "ssh to master1 works" || ck_fail "no ssh to master1"

ck_finish
