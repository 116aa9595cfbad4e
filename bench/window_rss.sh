#!/usr/bin/env bash
# Issue 16, item 1: the capture's memory is held per check and released when
# the check ends. Measures worker1's agent RSS (the demo topology) beside
# each other:
#   - a flood of datagrams from inventory peers (4 sources x 65,535 UDP
#     ports: 262,140 records) while no check runs;
#   - the same flood during a check that is still running (a window held open
#     by pm_control hold), then after its `done`;
#   - the same flood during a check whose `done` never came (pm_control hold
#     killed): the window stays open until the deadline it gave and 5 s;
#   - a real `portmatrix check`, alone (it sends `done`), and while another
#     window stays open (as if its own `done` had never come).
#   usage: bench/window_rss.sh PORTMATRIX PM_NETPROBE (pm_control beside it)
source "$(dirname "$0")/../tests/netns/check_lib.bash"
ck_init window_rss "$@"
PM_CONTROL=$(dirname "$(realpath "${2:-.}")")/pm_control
[[ -x $PM_CONTROL ]] || ck_die "no pm_control beside pm_netprobe (${2:-none given})"

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}

rss() { awk '/^VmRSS/ {print $2}' "/proc/${CK_AGENT_PID[worker1]}/status"; } # kB
flood() { # from four inventory peers, a datagram to every UDP port of worker1
  local node
  for node in master1 master2 master3 client1; do
    ck_in "$node" python3 - "$W1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(1, 65536):
    try:
        s.sendto(b"x", (sys.argv[1], port))
    except OSError:
        pass
PY
  done
  sleep 1 # the agent reads its capture
}
hold() { # BODY_FILE: opens a window on worker1 held by pm_control (TERM: done; KILL: none); sets HOLD_PID
  ck_spawn "hold" ip netns exec "${CK_NS[client1]}" "$PM_CONTROL" "$TOKEN" "$W1" "$CONTROL_PORT" worker1 hold "$1" \
    </dev/null >"$CK_WORK/hold.out" 2>&1
  HOLD_PID=$CK_PID
  CK_CHECK_T0=$(ck_now_ms)
  ck_wait_until "a window held open" 10 grep -q '^window' "$CK_WORK/hold.out"
}
report() { printf '%-58s %8s kB\n' "$1" "$2"; }

printf '{"deadline_ms": 20000}' >"$CK_WORK/check20.json"
report "worker1's agent, started" "$(rss)"
flood
report "flood, no check running" "$(rss)"

hold "$CK_WORK/check20.json"
flood
report "flood during a check (window open)" "$(rss)"
ck_stop "$HOLD_PID" TERM
sleep 0.5
report "  after its done" "$(rss)"

hold "$CK_WORK/check20.json"
flood
report "flood during a check whose done never comes" "$(rss)"
ck_stop "$HOLD_PID" KILL
sleep 1
report "  1 s after it was killed" "$(rss)"
sleep 25
report "  at its deadline (20 s) and the 5 s grace" "$(rss)"

ck_check alone
report "check (exit $CK_RC): after its done" "$(rss)"
hold "$CK_WORK/check20.json"
ck_check beside_open_window
report "check (exit $CK_RC) while a window stays open" "$(rss)"
ck_stop "$HOLD_PID" TERM
sleep 0.5
report "  after that window's done" "$(rss)"
ck_finish
