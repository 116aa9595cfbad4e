#!/usr/bin/env bash
# The control channel seen from the wire (issue 16, finding 4). A capture
# on client1 records every byte of a check with --egress and a proxy URL
# with credentials:
#   1. it is TLS, and nothing of it is readable: not the proxy's password,
#      not a request's type, not a field of a reply (the node's name is, in
#      the PSK identity of each ClientHello);
#   2. every connection to worker1, sent again byte for byte to master1, is
#      refused in its handshake (master1 logs it unauthenticated), never answered;
#   3. worker1's agent restarted, every connection sent again to it is
#      refused too (its key share is new: the recorded Finished does not verify);
# and the agents keep serving: the next check passes every flow.
#   usage: agent_channel_capture.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init channel_capture "$@"
TOOL="$(dirname "$0")/tcp_capture.py"
SECRET=S3cretPass

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}
M1=${CK_ADDRESS[master1]}

ck_capture_start client1 "$CONTROL_PORT" "$CK_WORK/control.jsonl"
# The proxy is an address no namespace has: the egress round fails fast, its request still carries the URL.
ck_check captured --egress --egress-deadline 2 --proxy "http://admin:$SECRET@198.18.0.9:3128"
ck_capture_stop
ck_report_valid

# 1. Nothing readable.
read -r segments bytes readable < <(python3 - "$CK_WORK/control.jsonl" "$SECRET" <<'PY'
import json, sys
payload = b"".join(bytes.fromhex(json.loads(l)["payload"]) for l in open(sys.argv[1]))
segments = sum(1 for _ in open(sys.argv[1]))
words = [sys.argv[2].encode(), b"admin:", b'"type"', b"hello", b"capture_mark", b"targets", b"instance"]
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
  ck_ok "it is TLS and none of it is readable: no password, no request type, no reply field"
else
  ck_fail "readable in the capture: $readable"
fi

# 2. Sent again to another node.
mapfile -t STREAMS < <(python3 "$TOOL" streams "$CK_WORK/control.jsonl" "$W1:$CONTROL_PORT")
[[ ${#STREAMS[@]} -ge 2 ]] || ck_die "fewer than 2 connections to worker1 captured: ${#STREAMS[@]}"
rejections() { grep -c 'rejected a control request: unauthenticated' "$CK_WORK/agent-$1.log" || true; }
replay_all() { # WHO NODE ADDRESS: every captured connection to worker1, sent again to ADDRESS (NODE's agent)
  local stream before refused answered=()
  for stream in "${STREAMS[@]}"; do
    before=$(rejections "$2")
    ck_in client1 python3 "$TOOL" replay "$3" "$CONTROL_PORT" "$stream" >/dev/null # until the agent closes
    # Refused in the handshake: logged by the agent, and no request of it was read.
    [[ $(rejections "$2") -gt $before ]] || answered+=("stream ${stream:0:40}...")
  done
  if [[ ${#answered[@]} -eq 0 ]]; then
    ck_ok "$1: all ${#STREAMS[@]} recorded connections to worker1 refused in their handshake: $(grep -m1 'rejected a control request' "$CK_WORK/agent-$2.log")"
  else
    ck_fail "$1: ${#answered[@]} of ${#STREAMS[@]} recorded connections were not refused: ${answered[*]}"
  fi
}
replay_all "sent to master1" master1 "$M1"

# 3. Sent again to worker1's agent after a restart.
ck_stop_agent worker1
ck_start_agent worker1
ck_wait_agents worker1
replay_all "sent to worker1 restarted" worker1 "$W1"

for node in "${CK_NODES[@]}"; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_wait_backends
ck_check after
ck_exit_status 0
ck_summary failed=0 skipped=0
ck_agents_ok

ck_finish
