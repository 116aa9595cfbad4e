#!/usr/bin/env bash
# Frames of 1 MiB of '[' flooded at worker1's control port by 6 clients
# without the token (issue 16, finding 2: the agent used to read and parse
# each before checking its MAC: 93% CPU, checks 20 times slower, RSS up by
# 70 MB for good). Now each is refused from its first bytes: a check during
# the flood passes in about the time one takes without it, and worker1's
# agent spends little CPU on the flood and keeps its memory.
#   usage: agent_bracket_flood.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init bracket_flood "$@"
FLOODERS=6

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}
AGENT=${CK_AGENT_PID[worker1]}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT/status"; }
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$AGENT/stat"; }
TICKS_PER_S=$(getconf CLK_TCK)

ck_check before
ck_exit_status 0
BASELINE_MS=$CK_MS
RSS_BEFORE=$(rss_kb)

# Each flooder: connect, 1 MiB of '[' behind a 4-byte length (the framing
# before TLS), close, again, until stopped. Counts what it sent.
FLOOD_PIDS=()
for ((i = 0; i < FLOODERS; i++)); do
  ck_spawn "flooder $i" ip netns exec "${CK_NS[client1]}" python3 -c '
import signal, socket, sys
frame = b"\x00\x10\x00\x00" + b"[" * (1 << 20)
sent = 0
def done(*_):
    print(sent, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
            s.sendall(frame)
            sent += 1
            s.recv(256)
    except OSError:
        sent += 1
' "$W1" "$CONTROL_PORT" </dev/null >"$CK_WORK/flooder-$i.out" 2>&1
  FLOOD_PIDS+=("$CK_PID")
done
sleep 1 # the flood is on (the check below is measured against the baseline, not against this)
T0=$(ck_now_ms)
TICKS0=$(cpu_ticks)
ck_check during
ck_exit_status 0
ck_summary failed=0 skipped=0
DURING_MS=$CK_MS
sleep 2
TICKS1=$(cpu_ticks)
T1=$(ck_now_ms)
for pid in "${FLOOD_PIDS[@]}"; do ck_stop "$pid" TERM; done
FRAMES=$(cat "$CK_WORK"/flooder-*.out | awk '{ n += $1 } END { print n + 0 }')
RSS_AFTER=$(rss_kb)
CPU_PCT=$(((TICKS1 - TICKS0) * 100 * 1000 / TICKS_PER_S / (T1 - T0)))

ck_log "flood: $FRAMES frames of 1 MiB from $FLOODERS clients; worker1's agent CPU ${CPU_PCT}% of a core during it; RSS ${RSS_BEFORE} -> ${RSS_AFTER} kB; check $(ck_secs "$BASELINE_MS") before, $(ck_secs "$DURING_MS") during"
if [[ $FRAMES -ge 20 ]]; then ck_ok "the flood ran: $FRAMES frames"; else ck_fail "the flood sent only $FRAMES frames"; fi
if [[ $DURING_MS -le $((BASELINE_MS * 2 + 1500)) ]]; then
  ck_ok "the check during the flood took $(ck_secs "$DURING_MS"), $(ck_secs "$BASELINE_MS") without it"
else
  ck_fail "the check during the flood took $(ck_secs "$DURING_MS"), $(ck_secs "$BASELINE_MS") without it"
fi
if [[ $CPU_PCT -le 50 ]]; then ck_ok "worker1's agent used ${CPU_PCT}% of a core"; else ck_fail "worker1's agent used ${CPU_PCT}% of a core"; fi
if [[ $((RSS_AFTER - RSS_BEFORE)) -le 20480 ]]; then
  ck_ok "worker1's agent RSS ${RSS_BEFORE} -> ${RSS_AFTER} kB"
else
  ck_fail "worker1's agent RSS grew ${RSS_BEFORE} -> ${RSS_AFTER} kB"
fi
ck_alive "$AGENT" || ck_fail "worker1's agent died"

ck_finish
