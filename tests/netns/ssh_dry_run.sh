#!/usr/bin/env bash
# --dry-run: `check --ssh --dry-run` and `preflight --ssh --dry-run` print,
# node by node, the ssh and scp commands they would run (every node, with its
# address and the inventory's user) and run none: exit 0, no sshd saw a
# connection, no process and no file appear on any node, and the token is on
# no command line (no 64-hex-digit secret in the output).
#   usage: ssh_dry_run.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init dry_run "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"

for command in check preflight; do
  ssh_pm "dry-$command" "$SSH_WS" "$command" --dry-run --format table
  ck_exit_status 0
  out=$CK_WORK/dry-$command.out
  missing=()
  for node in "${CK_NODES[@]}"; do
    awk -v node="# node $node" '$0 == node {on = 1; next} /^# node / {on = 0} on' "$out" >"$CK_WORK/section"
    grep -E "^ssh .*User=$SSH_USER .*-- ${CK_ADDRESS[$node]//./\\.}( |\$)" "$CK_WORK/section" >/dev/null || missing+=("$node")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    ck_ok "$command --dry-run: a section per node, each with ssh as $SSH_USER to its address ($(grep -c '^ssh ' "$out") ssh lines)"
  else
    ck_fail "$command --dry-run: no section or no ssh command for: ${missing[*]}; output: $(head -c 1500 "$out")"
  fi
  # The upload: the binary, named by its SHA-256, into a node's run directory.
  upload=$(grep -E -m1 "^(ssh|scp) .*/tmp/portmatrix-[0-9a-f]+-master1/portmatrix-[0-9a-f]{16}" "$out" || true)
  [[ -n $upload ]] && ck_ok "$command --dry-run names the upload: ...${upload: -160}" ||
    ck_fail "$command --dry-run: no command puts portmatrix-<sha256> into master1's run directory"
  if grep -Eq '[0-9a-f]{64}' "$out" "$CK_WORK/dry-$command.err"; then
    ck_fail "$command --dry-run prints a 64-hex-digit string (a token?): $(grep -Eo '.{40}[0-9a-f]{64}' "$out" | head -2)"
  else
    ck_ok "$command --dry-run prints no 64-hex-digit secret"
  fi
done
ck_log "check --dry-run, the first node:"
awk 'NR > 1 && /^# node / {exit} {print "    " $0}' "$CK_WORK/dry-check.out" | cut -c1-240

seen=()
for node in "${CK_NODES[@]}"; do [[ $(ssh_connections "$node") -eq 0 ]] || seen+=("$node: $(ssh_connections "$node")"); done
if [[ ${#seen[@]} -eq 0 ]]; then
  ck_ok "no node's sshd saw a connection"
else
  ck_fail "sshd saw connections: ${seen[*]}"
fi
ssh_nothing_left "after the dry runs" 1

ck_finish
