#!/usr/bin/env bash
# check --ssh, one node unreachable: es2's sshd is stopped before the run.
# es2 is that run's result: every flow from or to es2 is skip
# (agent-unreachable) with ssh's own words ("Connection refused") as the
# reason, in the flows' detail and es2's agent error; every other flow
# passes; exit 1. es2's sshd saw no login, and nothing is left on the other
# nodes.
#   usage: ssh_sshd_stopped.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init sshd_stopped "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"
ssh_stop_sshd es2

ssh_pm stopped "$SSH_WS" check
ck_exit_status 1
ck_report_valid
ck_expect "from=es2" skip agent-unreachable "Connection refused"
ck_expect "to=es2" skip agent-unreachable "Connection refused"
ck_summary failed=0 skipped=$(($(ck_n from=es2) + $(ck_n to=es2)))
ck_agent es2 error "Connection refused"
ck_agents_ok es2
ck_others_pass "from=es2" "to=es2"
if [[ $(ssh_accepted es2) -eq 0 ]]; then
  ck_ok "es2's sshd accepted no login"
else
  ck_fail "es2's sshd accepted $(ssh_accepted es2) login(s) before it was stopped"
fi

ssh_nothing_left "after the run"

ck_finish
