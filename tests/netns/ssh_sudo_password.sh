#!/usr/bin/env bash
# check --ssh, sudo asks for a password on one node: es3's entry logs in as
# the user whose sudo wants a password (a per-node `ssh: {user: ...}`).
# `sudo -n` fails there, and the product says so for es3: every flow from or
# to es3 is skip with sudo's words ("a password is required") in its detail
# and es3's agent error; every other flow passes; exit 1. What the run put on
# es3 before sudo failed is removed like everywhere else.
#   usage: ssh_sudo_password.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init sudo_password "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml" "es3:user=$SSH_USER_PW"

ssh_pm sudo "$SSH_WS" check
ck_exit_status 1
ck_report_valid
ck_expect "from=es3" skip agent-unreachable "a password is required"
ck_expect "to=es3" skip agent-unreachable "a password is required"
ck_summary failed=0 skipped=$(($(ck_n from=es3) + $(ck_n to=es3)))
ck_agent es3 error "a password is required"
ck_agents_ok es3
ck_others_pass "from=es3" "to=es3"
if grep -q "Accepted publickey for $SSH_USER_PW " "$SSH_DIR/sshd-es3.log"; then
  ck_ok "es3's sshd accepted $SSH_USER_PW (the login worked; sudo refused)"
else
  ck_fail "es3's sshd did not accept $SSH_USER_PW: $(tail -5 "$SSH_DIR/sshd-es3.log")"
fi

ssh_nothing_left "after the run"

ck_finish
