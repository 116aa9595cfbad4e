#!/usr/bin/env bash
# Requests with the token that ask an agent for too much (issue 16,
# findings 5 and 6), sent by pm_control as check would send them:
#   1. observed over ports 1-65535 from 200 sources (about 10 MB of work):
#      answered in slices, so a hello sent meanwhile is answered within
#      250 ms of one without it, and a check run meanwhile passes every flow;
#   2. probe with 50 copies of master1's NodePort flow to worker1: answered
#      with 50 lists, in about the time one copy takes (probed once);
#   3. probe with a budget of a day: refused.
#   usage: agent_bounded_requests.sh PORTMATRIX PM_NETPROBE (pm_control beside it)
source "$(dirname "$0")/check_lib.bash"
ck_init bounded_requests "$@"
PM_CONTROL=$(dirname "$(realpath "${2:-.}")")/pm_control
[[ -x $PM_CONTROL ]] || ck_die "no pm_control beside pm_netprobe (${2:-none given})"

ck_topology
CONTROL_PORT=$(ck_control_port)
ck_start_cluster
W1=${CK_ADDRESS[worker1]}
M1=${CK_ADDRESS[master1]}

ctl() { # FROM ADDRESS NODE TYPE BODY_FILE: one request; prints pm_control's two lines
  ck_in "$1" "$PM_CONTROL" "$TOKEN" "$2" "$CONTROL_PORT" "$3" "$4" "$5"
}
ms_of() { sed -n '1s/^[a-z]* \([0-9]*\).*/\1/p'; }

best=999999
for i in 1 2 3 4 5; do
  ms=$(ctl client1 "$W1" worker1 hello - | ms_of)
  [[ $ms -lt $best ]] && best=$ms
done
ck_log "a hello to worker1 alone: ${best} ms (best of 5)"

# 1. A large observed request, and a hello and a check meanwhile.
python3 -c '
import json
print(json.dumps({"queries": [{"protocol": "tcp", "source": f"10.99.{i // 250}.{i % 250 + 1}", "port_min": 1,
                               "port_max": 65535} for i in range(200)]}))' >"$CK_WORK/observed.json"
ck_spawn "observed" ip netns exec "${CK_NS[client1]}" "$PM_CONTROL" "$TOKEN" "$W1" "$CONTROL_PORT" worker1 observed \
  "$CK_WORK/observed.json" </dev/null >"$CK_WORK/observed.out" 2>&1
OBSERVED_PID=$CK_PID
sleep 0.5 # the hello's own exchange comes first; then worker1's agent is into it
during=$(ctl client1 "$W1" worker1 hello - | ms_of)
if [[ $during -le $((best + 250)) ]]; then
  ck_ok "a hello during the observed request: ${during} ms (${best} ms without it)"
else
  ck_fail "a hello during the observed request took ${during} ms (${best} ms without it)"
fi
ck_check during
ck_exit_status 0
ck_summary failed=0 skipped=0
ck_reap "$OBSERVED_PID" || true
if head -1 "$CK_WORK/observed.out" | grep -q '^ok'; then
  ck_ok "the observed request was answered: $(head -1 "$CK_WORK/observed.out") ms"
else
  ck_fail "the observed request: $(head -c 300 "$CK_WORK/observed.out")"
fi

# 2. Duplicate targets.
probe_body() { # COPIES
  python3 -c '
import json, sys
target = {"protocol": "tcp", "address": sys.argv[2], "port_min": 30000, "port_max": 32767, "repeat": 1}
print(json.dumps({"timeout_ms": 1000, "retries": 0, "targets": [target] * int(sys.argv[1])}))' "$1" "$W1"
}
probe_body 1 >"$CK_WORK/probe-1.json"
probe_body 50 >"$CK_WORK/probe-50.json"
ctl client1 "$M1" master1 probe "$CK_WORK/probe-1.json" >"$CK_WORK/probe-1.out"
ctl client1 "$M1" master1 probe "$CK_WORK/probe-50.json" >"$CK_WORK/probe-50.out"
one=$(ms_of <"$CK_WORK/probe-1.out")
fifty=$(ms_of <"$CK_WORK/probe-50.out")
lists=$(sed -n 2p "$CK_WORK/probe-50.out" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["targets"]))' 2>/dev/null || echo 0)
if [[ $lists -eq 50 && $fifty -le $((one * 2 + 1000)) ]]; then
  ck_ok "50 copies of a 2,768-port target: 50 answers in ${fifty} ms (one copy: ${one} ms)"
else
  ck_fail "50 copies of a 2,768-port target: $lists answers in ${fifty} ms (one copy: ${one} ms): $(head -1 "$CK_WORK/probe-50.out")"
fi

# 3. A budget of a day.
sed 's/"timeout_ms": 1000/"timeout_ms": 1000, "budget_ms": 86400000/' "$CK_WORK/probe-1.json" >"$CK_WORK/probe-day.json"
answer=$(ctl client1 "$M1" master1 probe "$CK_WORK/probe-day.json" | head -1)
if [[ $answer == error*budget_ms* ]]; then
  ck_ok "a probing budget of a day is refused: ${answer:0:200}"
else
  ck_fail "a probing budget of a day: ${answer:0:200}"
fi

for node in worker1 master1; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_finish
