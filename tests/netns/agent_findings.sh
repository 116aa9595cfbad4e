#!/usr/bin/env bash
# Issue 16's findings 3, 4 and 11, reproduced the way the review did, with
# nothing but bytes on the wire and the binary's own commands, so the same
# scenario runs against any build: main's must pass it, a build from before
# the hardening (9292315) fails every step.
#   11. 5,000 connections without the token to worker1's control port write
#       a bounded number of log lines (the review saw 5,000 in 0.9 s);
#   3.  an egress request naming a proxy on worker1's own 127.0.0.1:8080
#       (check --egress --proxy where the build has it, else pm_control)
#       never reaches that listener;
#   4.  a capture of a check's control connections shows nothing readable;
#       each recorded connection to worker1, sent again byte for byte to
#       master1, and to worker1 after its agent restarted, is refused
#       (the agent logs or counts a rejection for each);
# and the agents keep serving: the next check passes.
# Run against 9292315 (its demo has no --files-only: a wrapper drops it),
# 5 of 10 assertions fail: 1,647 log lines; the listener got HEAD and
# CONNECT lines; "type", hello, capture_mark and targets readable; 1 of 2
# and 0 of 2 recorded connections refused. Main passes all 10.
#   usage: agent_findings.sh PORTMATRIX [PM_NETPROBE] (pm_control beside PM_NETPROBE)
source "$(dirname "$0")/check_lib.bash"
ck_init findings "$@"
TOOL="$(dirname "$0")/tcp_capture.py"
PM_CONTROL=$(dirname "$(realpath "${2:-.}")")/pm_control

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}
M1=${CK_ADDRESS[master1]}

# --- 11. A flood of strangers and the log ------------------------------------------
lines_before=$(wc -l <"$CK_WORK/agent-worker1.log")
t0=$(ck_now_ms)
ck_in client1 python3 - "$W1" "$CONTROL_PORT" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
junk = b"\x00\x00\x00\x10" + b'{"type":"hello"}'  # a frame of the old protocol; not TLS
for _ in range(5000):
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):  # until the agent closes: it has judged the bytes
            pass
    except OSError:
        pass
    finally:
        s.close()
PY
sleep 0.5
lines=$(($(wc -l <"$CK_WORK/agent-worker1.log") - lines_before))
if [[ $lines -le 20 ]]; then
  ck_ok "5,000 connections without the token in $(ck_since "$t0") wrote $lines log lines: $(tail -1 "$CK_WORK/agent-worker1.log")"
else
  ck_fail "5,000 connections without the token in $(ck_since "$t0") wrote $lines log lines: $(tail -1 "$CK_WORK/agent-worker1.log")"
fi

# --- 3. An egress request naming the node's own loopback service --------------------
ck_in worker1 ip link set lo up
ck_spawn "listener on worker1's 127.0.0.1:8080" ip netns exec "${CK_NS[worker1]}" python3 - "$CK_WORK/proxy-heard.txt" <<'PY' >"$CK_WORK/proxy.status" 2>&1
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 8080))
server.listen(64)
print("listening", flush=True)
with open(sys.argv[1], "a") as heard:
    while True:
        connection, _ = server.accept()
        connection.settimeout(2)
        try:
            heard.write(repr(connection.recv(200).split(b"\r\n")[0]) + "\n")
            heard.flush()
            connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        connection.close()
PY
LISTENER_PID=$CK_PID
ck_wait_until "the listener on 127.0.0.1:8080 is up" 10 grep -q listening "$CK_WORK/proxy.status"
if "$PM_BIN" check --help 2>&1 | grep -q -- '--proxy'; then
  # A build whose check passes --proxy on to every agent.
  ck_check named_proxy --egress --proxy http://admin:S3cretPass@127.0.0.1:8080
  answer="check exit $CK_RC"
else
  [[ -x $PM_CONTROL ]] || ck_die "no pm_control beside pm_netprobe (${2:-none given})"
  printf '{"timeout_ms": 1000, "deadline_ms": 3000, "proxy": "http://admin:S3cretPass@127.0.0.1:8080"}' >"$CK_WORK/egress.json"
  answer=$(ck_in client1 "$PM_CONTROL" "$TOKEN" "$W1" "$CONTROL_PORT" worker1 egress "$CK_WORK/egress.json" | head -1)
fi
sleep 0.5
ck_stop "$LISTENER_PID"
if [[ ! -s $CK_WORK/proxy-heard.txt ]]; then
  ck_ok "an egress request naming 127.0.0.1:8080 as its proxy did not reach it: ${answer:0:200}"
else
  ck_fail "an egress request naming 127.0.0.1:8080 as its proxy reached it: $(head -2 "$CK_WORK/proxy-heard.txt" | tr '\n' ' ')"
fi

# --- 4. A check's control connections, recorded and sent again ----------------------
ck_capture_start client1 "$CONTROL_PORT" "$CK_WORK/control.jsonl"
ck_check captured
ck_capture_stop
read -r bytes readable < <(python3 - "$CK_WORK/control.jsonl" <<'PY'
import json, sys
payload = b"".join(bytes.fromhex(json.loads(l)["payload"]) for l in open(sys.argv[1]))
words = [b'"type"', b"hello", b"capture_mark", b"targets", b"instance"]
print(len(payload), ",".join(w.decode() for w in words if w in payload) or "none")
PY
)
if [[ $bytes -gt 10000 && $readable == none ]]; then
  ck_ok "the capture holds $bytes bytes of the check's control connections, none of them readable"
else
  ck_fail "the capture holds $bytes bytes of the check's control connections; readable: $readable"
fi
mapfile -t STREAMS < <(python3 "$TOOL" streams "$CK_WORK/control.jsonl" "$W1:$CONTROL_PORT")
[[ ${#STREAMS[@]} -ge 2 ]] || ck_die "fewer than 2 connections to worker1 captured: ${#STREAMS[@]}"
ck_replay_refused "sent to master1" master1 "$M1" "$CONTROL_PORT" 12 "${STREAMS[@]}"
ck_stop_agent worker1
ck_start_agent worker1
ck_wait_agents worker1
ck_replay_refused "sent to worker1 restarted" worker1 "$W1" "$CONTROL_PORT" 12 "${STREAMS[@]}"

for node in "${CK_NODES[@]}"; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_wait_backends
ck_check after
ck_exit_status 0
ck_summary failed=0 skipped=0

ck_finish
