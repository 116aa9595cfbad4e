#!/usr/bin/env bash
# Benchmark item 8 (issue 15): `portmatrix check --ssh` of the guide's
# topology from a workstation namespace, start to report, beside the local
# check in the same run. The topology is the SSH scenarios' (tests/netns/
# ssh_lib.bash): the guide's nodes, each behind its generated nftables with a
# real sshd, haproxy on lb1, a workstation on the nodes' network. Each
# repetition, in this order:
#   ssh first run            nothing on the nodes: connect, upload, agents up, check, cleanup
#   ssh --keep-binary, first run
#                            the binary goes to each node's ~/.cache/portmatrix
#   ssh --keep-binary, binary on the nodes
#                            the same again: the upload is skipped (the target's case)
#   local check              agents started by hand beforehand (not timed), check from client1
# Each repetition begins with the nodes' caches emptied. The steps (connect,
# install, agents up, check, cleanup) are check --ssh's own timing, its last
# line on stderr (report.py ssh-phases). Every run must pass every flow, or
# the scenario fails.
#
# The uploaded binary (--binary): $BENCH_SSH_BINARY (the static build), else
# a stripped copy of PORTMATRIX; its size and whether it is static are recorded.
#   usage: BENCH_OUT=FILE ssh.sh PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../tests/netns/ssh_lib.bash"
bench_init ssh "$@"
ssh_prepare

ssh_topology
bench_size_conntrack 8 "${#CK_NODES[@]}"
ssh_inventory "$CK_WORK/inventory-ssh.yaml"

if [[ -n ${BENCH_SSH_BINARY:-} ]]; then
  BINARY=$(realpath "$BENCH_SSH_BINARY")
else
  strip -o "$CK_WORK/portmatrix" "$PM_BIN"
  BINARY=$CK_WORK/portmatrix
fi
static=0
ldd_says=$(LC_ALL=C ldd "$BINARY" 2>&1 || true) # ldd exits 1 on a static binary
[[ $ldd_says != *'not a dynamic executable'* ]] || static=1
bench_record 8 "uploaded binary size" "$(awk -v b="$(stat -c %s "$BINARY")" 'BEGIN {printf "%.1f", b / 1048576}')" MB
bench_record 8 "uploaded binary is static" "$static" "1=yes"
bench_note 8 "uploaded binary: $([[ -n ${BENCH_SSH_BINARY:-} ]] && echo "BENCH_SSH_BINARY=$BENCH_SSH_BINARY" || echo "a stripped copy of $(basename "$PM_BIN")"), $([[ $static == 1 ]] && echo static || echo "dynamic (ldd lists its libraries)")"

# One check --ssh from the workstation; LABEL "" runs it unrecorded (the
# warm-up). Records its wall time and the steps it timed itself.
bench_ssh_check() { # LABEL [CHECK ARGS...]
  local label=$1 phase ms
  shift
  ssh_pm "ssh-$rep-$(tr -c 'a-z0-9\n' - <<<"${label:-warmup}")" "$SSH_WS" check --binary "$BINARY" "$@"
  [[ $CK_RC -eq 0 ]] || ck_die "check --ssh $* exited $CK_RC (every flow must pass): $(tail -5 "$CK_WORK/$CK_CHECK_NAME.err");" \
    "agents' errors: $(bench_py agent-errors "$CK_JSON" 2>&1 | head -c 2000)"
  [[ -n $label ]] || return 0
  bench_record 8 "$label: wall" "$CK_MS" ms
  bench_py ssh-phases "$CK_WORK/$CK_CHECK_NAME.err" >"$CK_WORK/phases" || ck_die "$(cat "$CK_WORK/phases")"
  while IFS=$'\t' read -r phase ms; do
    bench_record 8 "$label: $phase" "$ms" ms
  done <"$CK_WORK/phases"
  bench_command 8 "$label" "ip netns exec <workstation> portmatrix check --inventory inventory-ssh.yaml --ssh" \
    "--binary $(basename "$BINARY")${*:+ $*} --format json --output report.json"
}

rep=0
rm -rf "$SSH_PUBLIC"/home/*/*/.cache
[[ ${BENCH_WARMUP:-1} == 0 ]] || bench_ssh_check ""
ck_make_token
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
  rm -rf "$SSH_PUBLIC"/home/*/*/.cache
  bench_ssh_check "ssh first run"
  bench_ssh_check "ssh --keep-binary, first run" --keep-binary
  bench_ssh_check "ssh --keep-binary, binary on the nodes" --keep-binary
  ck_start_agents
  ck_check "local-$rep"
  [[ $CK_RC -eq 0 ]] || ck_die "the local check exited $CK_RC: $(head -c 1000 "$CK_WORK/local-$rep.err")"
  bench_record 8 "local check wall" "$CK_MS" ms
  for node in "${CK_NODES[@]}"; do ck_stop_agent "$node"; done
done
bench_command 8 "local check" "ip netns exec <$CK_CHECK_NODE> portmatrix check --inventory inventory.yaml --token-file token --format json --output report.json"
ck_finish
