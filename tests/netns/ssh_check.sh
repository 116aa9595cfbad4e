#!/usr/bin/env bash
# check --ssh: from a workstation on the nodes' network, `portmatrix check
# --ssh` with the demo inventory plus an `ssh:` section (a user whose sudo
# needs no password, the run's key and known_hosts) logs into every node's
# sshd, starts the agents and checks every flow: exit 0, every flow passes,
# the VIP reaches all its backends. Afterwards no portmatrix process runs in
# any node's namespace, no file of the run is left on any node, the
# workstation holds no ssh master and every node's sshd no session. Then the
# local check (agents started by hand, check from client1) gives the same
# verdict and diagnosis for every flow.
#   usage: ssh_check.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init check "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"

# 1. check --ssh from the workstation.
ssh_pm ssh "$SSH_WS" check
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_others_pass
ck_backends "to=vip port=6443" master1,master2,master3
ck_backends "to=vip port=30080" worker1,worker2,worker3
ck_agents_ok
SSH_REPORT=$CK_JSON
missing=()
for node in "${CK_NODES[@]}"; do [[ $(ssh_accepted "$node") -ge 1 ]] || missing+=("$node"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  ck_ok "every node's sshd accepted the run's key for $SSH_USER"
else
  ck_fail "no login on: ${missing[*]}"
fi

# 2. Nothing left: no agent, no file, no ssh master, no sshd session.
ssh_nothing_left "after check --ssh"

# 3. The local check, agents started by hand: the same verdicts.
ssh_same_as_local "$SSH_REPORT"

ck_finish
