#!/usr/bin/env bash
# The SSH scenarios' harness (ssh_lib.bash), proved with plain `ssh` before
# any product runs through it: the demo topology with sshd in every node's
# namespace; from the workstation every node is reached with the run's key
# and known_hosts, lands in that node's namespace (its own address, its own
# home) and gets root through sudo without a password; the second user's
# sudo asks for one; a host missing from known_hosts and a changed host key
# are refused, and the changed one is never logged into; a stopped sshd
# refuses the connection; the bastion's workstation reaches the nodes only
# through `ssh -J`. Then the two detectors the product scenarios rely on
# (portmatrix processes per namespace, files of the run) see what is planted
# and stop seeing it once it is gone.
#   usage: ssh_harness.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init harness "$@"

ssh_topology
ssh_bastion

# 1. Every node, from the workstation: its address, its home, root through sudo.
bad=()
for node in "${CK_NODES[@]}"; do
  got=$(ssh_plain "$SSH_WS" "$SSH_USER" "$node" \
    'echo "$(ip -4 -o addr show dev eth0 | awk "{print \$4}" | head -1) $HOME $(sudo -n id -u)"' 2>&1) || true
  want="${CK_ADDRESS[$node]}/24 $SSH_PUBLIC/home/$node/$SSH_USER 0"
  [[ $got == "$want" ]] || bad+=("$node: got '$got', expected '$want'")
done
if [[ ${#bad[@]} -eq 0 ]]; then
  ck_ok "ssh to all ${#CK_NODES[@]} nodes: each in its own namespace and home, root through sudo -n"
else
  ck_fail "ssh to the nodes: ${bad[*]}"
fi

# 2. sudo that asks for a password: `sudo -n` fails and says so.
rc=0
out=$(ssh_plain "$SSH_WS" "$SSH_USER_PW" master1 sudo -n true 2>&1) || rc=$?
if [[ $rc -eq 1 && $out == *"a password is required"* ]]; then
  ck_ok "$SSH_USER_PW's sudo -n on master1 exits 1: $out"
else
  ck_fail "$SSH_USER_PW's sudo -n on master1: exit $rc, '$out' (expected 1, 'a password is required')"
fi

# 3. Strict host keys: a host missing from known_hosts is refused.
rc=0
out=$(ip netns exec "$SSH_WS" ssh -i "$SSH_KEY" -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
  -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes "$SSH_USER@${CK_ADDRESS[master1]}" true 2>&1) || rc=$?
if [[ $rc -eq 255 && $out == *"Host key verification failed"* ]]; then
  ck_ok "a host missing from known_hosts is refused (exit 255): $(tail -1 <<<"$out")"
else
  ck_fail "a host missing from known_hosts: exit $rc, '$out'"
fi

# 4. A changed host key is refused, and that sshd accepts no login.
ssh_new_host_key es2
accepted=$(ssh_accepted es2)
rc=0
out=$(ssh_plain "$SSH_WS" "$SSH_USER" es2 true 2>&1) || rc=$?
if [[ $rc -eq 255 && $out == *"REMOTE HOST IDENTIFICATION HAS CHANGED"* && $out == *"Host key verification failed"* ]]; then
  ck_ok "es2's changed host key is refused (exit 255): $(grep -m1 'Host key for' <<<"$out")"
else
  ck_fail "es2's changed host key: exit $rc, '$out'"
fi
if [[ $(ssh_accepted es2) -eq $accepted ]]; then
  ck_ok "es2's sshd accepted no login after its key changed"
else
  ck_fail "es2's sshd accepted a login with its changed key: $(tail -3 "$SSH_DIR/sshd-es2.log")"
fi

# 5. A stopped sshd refuses the connection.
ssh_stop_sshd mongo2
rc=0
out=$(ssh_plain "$SSH_WS" "$SSH_USER" mongo2 true 2>&1) || rc=$?
if [[ $rc -eq 255 && $out == *"Connection refused"* ]]; then
  ck_ok "mongo2 with its sshd stopped: $out"
else
  ck_fail "mongo2 with its sshd stopped: exit $rc, '$out'"
fi

# 6. The bastion: its workstation reaches no node directly, every node through ssh -J.
rc=0
out=$(ssh_plain "$SSH_WS_JUMP" "$SSH_USER" master1 true 2>&1) || rc=$?
if [[ $rc -eq 255 && $out == *"Network is unreachable"* ]]; then
  ck_ok "the bastion's workstation does not reach master1 directly: $out"
else
  ck_fail "the bastion's workstation reaches master1 directly? exit $rc, '$out'"
fi
accepted=$(ssh_accepted jump)
bad=()
for node in master1 worker3 client1; do
  got=$(ssh_plain "$SSH_WS_JUMP" "$SSH_USER" "$node" -J "$SSH_USER@$SSH_JUMP_ADDRESS" \
    'ip -4 -o addr show dev eth0 | awk "{print \$4}" | head -1; sudo -n id -u' 2>&1 | tr '\n' ' ') || true
  [[ $got == "${CK_ADDRESS[$node]}/24 0 " ]] || bad+=("$node: '$got'")
done
if [[ ${#bad[@]} -eq 0 && $(ssh_accepted jump) -eq $((accepted + 3)) ]]; then
  ck_ok "through the bastion (ssh -J, 3 logins on it): master1, worker3, client1, root through sudo"
else
  ck_fail "through the bastion: ${bad[*]}; bastion logins $accepted -> $(ssh_accepted jump)"
fi

# 7. The detectors: a planted portmatrix process in worker1's namespace and a
# file of the user's in /tmp and in a node's home are seen; once gone, not.
ssh_plain "$SSH_WS" "$SSH_USER" worker1 \
  "touch ~/planted; mkdir /tmp/portmatrix-planted-$CK_PREFIX; nohup bash -c 'exec -a portmatrix-planted sleep 300' >/dev/null 2>&1 </dev/null &"
ssh_wait_until 10 ssh_has_agents worker1 || true
left=$(ssh_agents_left)
files=$(ssh_left_files)
if [[ $left == "worker1: "*portmatrix-planted* && $(wc -l <<<"$left") -eq 1 ]]; then
  ck_ok "the process listing sees the planted process, in worker1 only: $left"
else
  ck_fail "the process listing: '$left'"
fi
if [[ $files == *"/tmp/portmatrix-planted-$CK_PREFIX"* && $files == *"/home/worker1/$SSH_USER/planted"* ]]; then
  ck_ok "the file search sees both planted files: $(tr '\n' ' ' <<<"$files")"
else
  ck_fail "the file search: '$files'"
fi
ssh_plain "$SSH_WS" "$SSH_USER" worker1 "pkill -u $SSH_USER -f '^portmatrix-planted'; rm -r ~/planted /tmp/portmatrix-planted-$CK_PREFIX"
ssh_wait_no_agents 10 "once the planted process is killed"
ssh_no_run_files

ck_finish
