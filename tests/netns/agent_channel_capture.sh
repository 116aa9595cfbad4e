#!/usr/bin/env bash
# The control channel seen from the wire (issue 16, finding 4). A capture
# on client1 records every byte of a check with --egress:
#   1. nothing of it is readable: not a request's type, not a field of a
#      reply, not a node name (a proxy's credentials no longer travel: the
#      agents take the proxy from the inventory or their environment);
#   2. every connection to worker1, sent again byte for byte to master1, is
#      refused (unauthenticated), never answered;
#   3. worker1's agent restarted, every connection sent again to it is
#      refused too;
# and the agents keep serving: the next check passes every flow.
#   usage: agent_channel_capture.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init channel_capture "$@"
TOOL="$(dirname "$0")/tcp_capture.py"

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}
M1=${CK_ADDRESS[master1]}

ck_capture_start client1 "$CONTROL_PORT" "$CK_WORK/control.jsonl"
ck_check captured --egress --egress-deadline 2
ck_capture_stop
ck_report_valid

# 1. Nothing readable.
read -r segments bytes readable < <(python3 - "$CK_WORK/control.jsonl" <<'PY'
import json, sys
payload = b"".join(bytes.fromhex(json.loads(l)["payload"]) for l in open(sys.argv[1]))
segments = sum(1 for _ in open(sys.argv[1]))
words = [b'"type"', b"hello", b"capture_mark", b"worker1", b"targets"]
print(segments, len(payload), ",".join(w.decode() for w in words if w in payload) or "none")
PY
)
if [[ $bytes -gt 10000 ]]; then
  ck_ok "the capture holds $segments segments, $bytes bytes of the control port"
else
  ck_fail "the capture holds only $bytes bytes: it missed the check"
fi
if [[ $readable == none ]]; then
  ck_ok "none of it is readable: no request type, no reply field, no node name"
else
  ck_fail "readable in the capture: $readable"
fi

# 2. Sent again to another node.
mapfile -t STREAMS < <(python3 "$TOOL" streams "$CK_WORK/control.jsonl" "$W1:$CONTROL_PORT")
[[ ${#STREAMS[@]} -ge 2 ]] || ck_die "fewer than 2 connections to worker1 captured: ${#STREAMS[@]}"
replay_all() { # WHO ADDRESS: every captured connection to worker1, sent again to ADDRESS
  local stream answer refused=0 answered=()
  for stream in "${STREAMS[@]}"; do
    answer=$(ck_in client1 python3 "$TOOL" replay "$2" "$CONTROL_PORT" "$stream")
    if [[ $answer == *unauthenticated* && $answer != *'"status"'* ]]; then
      refused=$((refused + 1))
    else
      answered+=("${answer:0:300}")
    fi
  done
  if [[ ${#answered[@]} -eq 0 ]]; then
    ck_ok "$1: all ${#STREAMS[@]} recorded connections to worker1 refused (unauthenticated)"
  else
    ck_fail "$1: ${#answered[@]} of ${#STREAMS[@]} recorded connections got: ${answered[*]}"
  fi
}
replay_all "sent to master1" "$M1"

# 3. Sent again to worker1's agent after a restart.
ck_stop_agent worker1
ck_start_agent worker1
ck_wait_agents worker1
replay_all "sent to worker1 restarted" "$W1"

for node in "${CK_NODES[@]}"; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_wait_backends
ck_check after
ck_exit_status 0
ck_summary failed=0 skipped=0
ck_agents_ok

ck_finish
