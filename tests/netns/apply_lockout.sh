#!/usr/bin/env bash
# firewall apply --ssh with admin_cidrs that leave the workstation out (its
# /24 cut to a /25 without .250): the canary master1 takes the rules, and
# then no new ssh login from the workstation gets through. Asserted: the
# confirmation fails (exit 1, master1 "rolled back", the rollout stops at the
# canary: no other node touched), master1's ruleset is exactly the one before
# the apply again, within --confirm-timeout of the moment the new rules were
# seen live, and a new ssh login from the workstation works again. Nothing
# persisted: no boot-time file under the run's root.
#   usage: apply_lockout.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
APPLY_NODES=(master1) # the nodes given the backend's rules (iptables, ufw, firewalld); the others keep nftables
apply_init apply_lockout "$@"
TIMEOUT=40

apply_inventory "$CK_WORK/inventory-lockout.yaml" 's|^admin_cidrs: \[10.213.0.0/24\]|admin_cidrs: [10.213.0.0/25]|'
grep -q '^admin_cidrs: \[10.213.0.0/25\]' "$SSH_INVENTORY" || ck_die "the inventory's admin_cidrs were not changed"
before=$(apply_ruleset master1)
before_worker=$(apply_ruleset worker1)
ssh_plain "$SSH_WS" "$SSH_USER" master1 true || ck_die "no ssh login to master1 before the apply"

new_rules_live() { grep -q '10.213.0.0/25' <<<"$(apply_ruleset "$1")"; } # read whole: grep -q in a pipe may cut the writer short
apply_pm_start lockout apply --confirm-timeout "$TIMEOUT" --deadline 15
apply_wait master1 $((60 + APPLY_CHECK_S)) new_rules_live || ck_die "the new rules never went live on master1: $(cat "$CK_WORK/lockout.err")"
live_ms=$(ck_now_ms)
ck_log "the new rules are live on master1 $(ck_since "$CK_CHECK_T0") into the run"
ck_check_wait
back_ms=$(ck_now_ms)

ck_exit_status 1
state=$(apply_result master1)
if [[ $state == "rolled back" ]]; then
  ck_ok "master1 is reported rolled back: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"]["master1"]["detail"][:160])' "$CK_JSON")"
else
  ck_fail "master1's state in the report: '$state' (want 'rolled back'); $(head -c 600 "$CK_JSON")"
fi
if [[ $(apply_result worker1) == "not applied" && $(apply_ruleset worker1) == "$before_worker" ]]; then
  ck_ok "the rollout stopped at the canary: worker1 not applied, its ruleset unchanged"
else
  ck_fail "worker1: '$(apply_result worker1)', ruleset changed: $([[ $(apply_ruleset worker1) == "$before_worker" ]] && echo no || echo yes)"
fi
if [[ $(apply_ruleset master1) == "$before" ]]; then
  ck_ok "master1's ruleset is the one before the apply again, $(ck_secs $((back_ms - live_ms))) after the new one went live (timeout ${TIMEOUT} s)"
  [[ $((back_ms - live_ms)) -le $((TIMEOUT * 1000)) ]] || ck_fail "but later than --confirm-timeout"
else
  ck_fail "master1's ruleset differs from the one before the apply:"
  diff <(echo "$before") <(apply_ruleset master1) | head -20 | sed 's/^/    /'
fi
if [[ $(apply_state_of master1) == rolled-back ]]; then
  ck_ok "master1's state file says rolled-back"
else
  ck_fail "master1's state file says '$(apply_state_of master1)'"
fi
if ssh_plain "$SSH_WS" "$SSH_USER" master1 true; then
  ck_ok "a new ssh login from the workstation to master1 works again"
else
  ck_fail "no new ssh login to master1 after the rollback"
fi
left=$(find "$APPLY_ROOT" -type f | head -5)
if [[ -z $left ]]; then
  ck_ok "nothing persisted (no boot-time file under the run's root)"
else
  ck_fail "boot-time files written: $left"
fi
if apply_boot_has master1 10.213.0.0/25; then
  ck_fail "master1's boot-time configuration holds the rolled-back rules (10.213.0.0/25)"
else
  ck_ok "master1's boot-time configuration does not hold the rolled-back rules"
fi

ck_finish
