#!/usr/bin/env bash
# The control channel seen from the wire (issue 16, finding 4). A capture
# on client1 records every byte of a check with --egress:
#   1. it is TLS, and nothing of it is readable: not a request's type, not a
#      field of a reply (the node's name is, in the PSK identity of each
#      ClientHello; a proxy's credentials no longer travel at all: the agents
#      take the proxy from the inventory or their environment);
#   2. every connection to worker1, sent again byte for byte to master1, is
#      refused in its handshake (master1 logs it unauthenticated), never answered;
#   3. worker1's agent restarted, every connection sent again to it is
#      refused too (its key share is new: the recorded Finished does not verify);
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
words = [b'"type"', b"hello", b"capture_mark", b"targets", b"instance"]
readable = [w.decode() for w in words if w in payload]
first = json.loads(open(sys.argv[1]).readline())["payload"]
if not bytes.fromhex(first).startswith(b"\x16\x03"):
    readable.append("not-TLS:" + first[:20])
print(segments, len(payload), ",".join(readable) or "none")
PY
)
if [[ $bytes -gt 10000 ]]; then
  ck_ok "the capture holds $segments segments, $bytes bytes of the control port"
else
  ck_fail "the capture holds only $bytes bytes: it missed the check"
fi
if [[ $readable == none ]]; then
  ck_ok "it is TLS and none of it is readable: no request type, no reply field"
else
  ck_fail "readable in the capture: $readable"
fi

# 2. Sent again to another node.
mapfile -t STREAMS < <(python3 "$TOOL" streams "$CK_WORK/control.jsonl" "$W1:$CONTROL_PORT")
[[ ${#STREAMS[@]} -ge 2 ]] || ck_die "fewer than 2 connections to worker1 captured: ${#STREAMS[@]}"
# Refused in the handshake: each one logged (or counted) by the agent, and
# no request of it read.
ck_replay_refused "sent to master1" master1 "$M1" "$CONTROL_PORT" 30 "${STREAMS[@]}"

# 3. Sent again to worker1's agent after a restart.
ck_stop_agent worker1
ck_start_agent worker1
ck_wait_agents worker1
ck_replay_refused "sent to worker1 restarted" worker1 "$W1" "$CONTROL_PORT" 30 "${STREAMS[@]}"

for node in "${CK_NODES[@]}"; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_wait_backends
ck_check after
ck_exit_status 0
ck_summary failed=0 skipped=0
ck_agents_ok

ck_finish
