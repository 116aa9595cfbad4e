#!/usr/bin/env bash
# check --ssh, a changed host key: mongo2's sshd restarts with a new host key
# after the run's known_hosts was written. ssh refuses it (strict host key
# checking, the product's default) and the product says so: every flow from
# or to mongo2 is skip with ssh's words ("Host key verification failed") in
# its detail and mongo2's agent error; every other flow passes; exit 1.
# Nothing is sent to mongo2: its sshd accepted no login (so no upload, no
# command, no token), and its home holds nothing.
#   usage: ssh_host_key_changed.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init host_key_changed "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"
ssh_new_host_key mongo2

ssh_pm changed "$SSH_WS" check
ck_exit_status 1
ck_report_valid
ck_expect "from=mongo2" skip agent-unreachable "Host key verification failed"
ck_expect "to=mongo2" skip agent-unreachable "Host key verification failed"
ck_summary failed=0 skipped=$(($(ck_n from=mongo2) + $(ck_n to=mongo2)))
ck_agent mongo2 error "Host key verification failed"
ck_agents_ok mongo2
ck_others_pass "from=mongo2" "to=mongo2"

# Nothing sent: mongo2's sshd saw the connections but accepted no login.
if [[ $(ssh_connections mongo2) -ge 1 && $(ssh_accepted mongo2) -eq 0 ]]; then
  ck_ok "mongo2's sshd saw $(ssh_connections mongo2) connection(s) and accepted no login"
else
  ck_fail "mongo2's sshd: $(ssh_connections mongo2) connection(s), $(ssh_accepted mongo2) login(s) accepted (expected >= 1 and 0)"
fi
ssh_nothing_left "after the run"

ck_finish
