#!/usr/bin/env bash
# Live check, overload: master2's agent is frozen (SIGSTOP, by pid) through
# the probe round, as a starved agent on an overloaded node is. Its kernel still completes the TCP handshakes and queues the UDP
# probes, but nobody answers them in time: the probers see connections
# without the identity line, and silence. When it runs again it reads them
# all and answers (too late). Asked in the observed round, master2's agent
# says so, and that is proof enough: every flow to master2 passes (ok), its
# note in the report says how many ports it answered too late, and the
# check exits 0. Without that word the check blamed master2's firewall
# (dropped-by-destination-firewall) and another responder (wrong-responder).
#
# So that the freeze lands after master2 has answered hello but before
# anybody probes it, and lasts until every source has given up on master2's
# ports, the script waits on the check's own events, not on time (see
# ck_calls): client1's agent is frozen before the check starts, which holds
# the hello round; once master2 has answered hello it is frozen and client1
# resumed (the probe round starts); master2 runs again once every other
# source has answered its probe request, so it has given up on master2's
# ports (UDP after the 1 s timeout; TCP, connected by master2's kernel, after
# the prober's wait for the identity line), retries included: a source
# answers its probe request only when it is done. So every try at master2's
# ports finds it frozen, and the count is exact.
#
# The VIP: while master2 is frozen its agent answers no health check either,
# and haproxy takes it out after a few (then needs two passed checks, 5 s
# apart, to put it back). On a loaded machine the round lasts long enough for
# that, and the VIP flows then never reach master2 (wrong-responder, "the VIP
# never reached master2"): haproxy doing its job, so either outcome is
# accepted for them, and the exit status must match.
#   usage: check_late_answers.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init late_answers "$@"
DEADLINE=60 # room for a loaded machine: the check ends when it is done, not at the deadline

ck_topology
ck_start_cluster

# The sources of the check: the nodes some flow starts at (master2 aside).
SOURCES=$("$PM_BIN" ports --inventory "$INVENTORY" --format json |
  python3 -c 'import json, sys; print(" ".join(sorted({f["from"] for f in json.load(sys.stdin)["flows"] if f["protocol"] != "vrrp"} - {"master2"})))')
[[ -n $SOURCES ]] || ck_die "no source node in the flows of $INVENTORY"

kill -STOP "${CK_AGENT_PID[client1]}"
ck_check_start late --deadline "$DEADLINE"
ck_wait_until "master2's agent answered hello (client1's, frozen, holds the round)" 15 ck_at_least ck_calls master2 answered 1
kill -STOP "${CK_AGENT_PID[master2]}"
kill -CONT "${CK_AGENT_PID[client1]}"
ck_log "froze master2's agent (pid ${CK_AGENT_PID[master2]}), resumed client1's: the probe round starts"
for node in $SOURCES; do # hello, then its probe request
  ck_wait_until "$node's agent answered its probe request" "$DEADLINE" ck_at_least ck_calls "$node" answered 2
done
kill -CONT "${CK_AGENT_PID[master2]}"
ck_log "master2's agent runs again $(ck_since "$CK_CHECK_T0") into the check"
ck_check_wait
ck_ended_within "$DEADLINE" 5
ck_report_valid
ck_log "the flows to master2:"
ck_show "to=master2 expect=allow"
ck_expect "to=master2 expect=allow" pass ok
# Every port of every flow into master2 (TCP and UDP, per source), from the
# plan: with apinizer, 6443 from 6 sources, 8472/udp from 5, 2379-2380 and
# 10250 from the 2 other masters: 18.
LATE_PORTS=$("$PM_BIN" ports --inventory "$INVENTORY" --format json | python3 -c '
import json, sys
flows = [f for f in json.load(sys.stdin)["flows"]
         if f["to"] == "master2" and f["expect"] == "allow" and f["protocol"] in ("tcp", "udp")]
print(sum(f["port_max"] - f["port_min"] + 1 for f in flows))')
ck_agent master2 note "answered probes to $LATE_PORTS ports (counted per source) too late for the prober; their flows pass on its word"
ck_show "to=vip port=6443 verdict=fail"
ck_expect_each "to=vip port=6443" pass:ok fail:wrong-responder
VIP_FAILED=$(ck_n "to=vip port=6443 verdict=fail")
ck_exit_status $((VIP_FAILED > 0 ? 1 : 0))
ck_summary failed="$VIP_FAILED" skipped=0
ck_others_pass "to=vip port=6443"
ck_agents_ok

ck_finish
