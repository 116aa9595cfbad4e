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
# Before the repetitions the nodes' caches are emptied. The phases come from
# check --ssh's own progress messages, read on a pseudo-terminal with the time
# each arrived (bench/pty_timing.py; report.py ssh-phases says what each
# phase spans). Every run must pass every flow, or the scenario fails.
#
# The uploaded binary (--binary): $BENCH_SSH_BINARY (the static build), else
# a stripped copy of PORTMATRIX; its size and whether it is static are recorded.
#   usage: BENCH_OUT=FILE ssh.sh PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../tests/netns/ssh_lib.bash"
bench_init ssh "$@"
ssh_prepare
BENCH_DIR=$(dirname "$(realpath "$0")")

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
ldd "$BINARY" 2>&1 | grep -q 'not a dynamic executable' && static=1
bench_record 8 "uploaded binary size" "$(awk -v b="$(stat -c %s "$BINARY")" 'BEGIN {printf "%.1f", b / 1048576}')" MB
bench_record 8 "uploaded binary is static" "$static" "1=yes"
bench_note 8 "uploaded binary: $([[ -n ${BENCH_SSH_BINARY:-} ]] && echo "BENCH_SSH_BINARY=$BENCH_SSH_BINARY" || echo "a stripped copy of $(basename "$PM_BIN")"), $([[ $static == 1 ]] && echo static || echo "dynamic (ldd lists its libraries)")"

# One check --ssh from the workstation on a pseudo-terminal; LABEL "" runs it
# unrecorded (the warm-up). Records the wall time and the phases.
bench_ssh_check() { # LABEL [CHECK ARGS...]
  local label=$1 name rc=0 wall phase ms
  shift
  name=ssh-$rep-$(tr -c 'a-z0-9\n' - <<<"${label:-warmup}")
  python3 "$BENCH_DIR/pty_timing.py" "$CK_WORK/$name.progress" "$CK_WORK/$name.out" \
    ip netns exec "$SSH_WS" "$PM_BIN" check --inventory "$SSH_INVENTORY" --ssh --binary "$BINARY" \
    --format json --output "$CK_WORK/$name.json" "$@" || rc=$?
  [[ $rc -eq 0 ]] || ck_die "check --ssh $* exited $rc (every flow must pass): $(grep -v '^[0-9]*.ssh: [0-9]' "$CK_WORK/$name.progress" | tail -5)"
  [[ -n $label ]] || return 0
  wall=$(sed -n 's/^\([0-9]*\)\texit .*/\1/p' "$CK_WORK/$name.progress")
  bench_record 8 "$label: wall" "$wall" ms
  while IFS=$'\t' read -r phase ms; do
    bench_record 8 "$label: $phase" "$ms" ms
  done < <(bench_py ssh-phases "$CK_WORK/$name.progress")
  bench_command 8 "$label" "ip netns exec <workstation> portmatrix check --inventory inventory-ssh.yaml --ssh" \
    "--binary $(basename "$BINARY") --format json --output report.json $*"
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
