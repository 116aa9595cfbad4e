#!/usr/bin/env bash
# check --ssh through a bastion: the workstation ($SSH_WS_JUMP) has one link,
# to the jump host, which is on the nodes' network and does not forward
# packets; the inventory's `ssh.proxy_jump` names the jump host. The
# workstation's ssh client config that ssh_bastion writes for plain `ssh -J`
# (the key and known_hosts for the jump host) is removed first: the product
# must reach the bastion with the inventory's own identity_file and options
# (known_hosts), strict host keys included. The workstation cannot reach
# the agents' control port, so the check runs on a node: `portmatrix check
# --ssh --coordinator client1` from there checks every flow: exit 0, every
# flow passes, the same verdicts as the local check (from client1 too); the
# report goes to --output, the node's overall line to the workstation's stderr;
# every node's sshd saw its connection come from the bastion, which accepted
# one login per node; nothing is left on any node.
#   usage: ssh_bastion.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init bastion "$@"

ssh_topology
ssh_bastion
ssh_inventory "$CK_WORK/inventory-ssh.yaml" "top:proxy_jump=$SSH_USER@$SSH_JUMP_ADDRESS"
JUMP_ADDRESS=$(ssh_address 251)

rm -r "/etc/netns/$SSH_WS_JUMP/ssh"
ssh_pm jump "$SSH_WS_JUMP" check --coordinator client1
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_others_pass
ck_agents_ok
SSH_REPORT=$CK_JSON
# --output: the report went to the file; stderr has the node's overall line, naming the file.
if grep -Eq "^PASS [^:]+: [0-9,]+ passed, 0 failed, 0 skipped in [0-9.]+ s \(report: $CK_JSON\)$" "$CK_WORK/jump.err" &&
  [[ ! -s $CK_WORK/jump.out ]]; then
  ck_ok "check --coordinator --output: stdout empty, stderr '$(grep -E '^PASS ' "$CK_WORK/jump.err")'"
else
  ck_fail "check --coordinator --output: stdout '$(head -c 200 "$CK_WORK/jump.out")', stderr '$(head -c 400 "$CK_WORK/jump.err")'"
fi

not_via=()
for node in "${CK_NODES[@]}"; do
  grep -q "Accepted publickey for $SSH_USER from $JUMP_ADDRESS " "$SSH_DIR/sshd-$node.log" || not_via+=("$node")
done
if [[ ${#not_via[@]} -eq 0 && $(ssh_accepted jump) -ge ${#CK_NODES[@]} ]]; then
  ck_ok "every node's login came from the bastion ($JUMP_ADDRESS), which accepted $(ssh_accepted jump) login(s)"
else
  ck_fail "logins not through the bastion: ${not_via[*]:-none}; the bastion accepted $(ssh_accepted jump) login(s)"
fi

ssh_nothing_left "after the run"

ssh_same_as_local "$SSH_REPORT"

ck_finish
