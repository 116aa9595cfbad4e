#!/usr/bin/env bash
# Live check, the deadline: a source still probing when the check's deadline
# comes answers with what it has probed. The network drops UDP 8472 sent by
# master1, and the probe timeout (60 s) outlasts the whole check (a 30 s
# deadline), so master1's 8472 probes are still in flight then, and so are
# client1's and the workers' probes of the flows that must stay closed
# (silence is their pass, and it takes a whole timeout). Those flows are skipped
# (agent-unreachable: "had not probed"), those agents' notes say how many
# ports they had not probed, and every other flow passes, master1's and
# client1's included. (Before, neither agent answered in time and every
# flow from them was skipped.) The check ends within its deadline.
# Whatever the machine's load, only those probes can be unfinished: the rest
# of the check takes a few seconds (ten times that under stress-ng on both
# cores still fits), and those need a minute. (A 6 s deadline and a 5 s
# timeout made the rest race the deadline on a loaded machine: the masters'
# NodePort ranges were cut too.)
#   usage: check_deadline_partial.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init deadline_partial "$@"
DEADLINE=30

ck_topology
ck_drop_on_bridge master1 udp 8472
ck_start_cluster

ck_check deadline --deadline "$DEADLINE" --timeout-ms 60000
ck_ended_within "$DEADLINE" 3
ck_exit_status 1
ck_report_valid
UNPROBED="from=master1 proto=udp port=8472"
ck_expect "$UNPROBED" skip agent-unreachable "master1's agent had not probed these ports" count=5
# Every flow that must stay closed: client1's, and since issue 17 the
# workers' (worker -> master etcd, 10257, 10259).
DENIED="expect=deny"
ck_expect "$DENIED" skip agent-unreachable "agent had not probed these ports"
ck_summary failed="$(ck_n "from=master1 to=worker1,worker2,worker3 proto=tcp port=30000 verdict=fail")" skipped=$((5 + $(ck_n "$DENIED")))
ck_agent master1 error "still probing when the deadline came: 5 of"
for node in client1 worker1 worker2 worker3; do ck_agent "$node" error "still probing when the deadline came"; done
# master1's first pass never ends (its 8472 probes wait out the minute), so
# its retry pass never starts: a NodePort connection whose identity line an
# overloaded worker's agent sent too late is not tried again, and reads as
# wrong-responder (stress-ng on both cores: 3 such flows in one run of
# three). A limitation of the check under overload (the worker's agent did
# not vouch for those ports in the observed round), accepted here only for
# those flows; unloaded they pass.
NODEPORTS="from=master1 to=worker1,worker2,worker3 proto=tcp port=30000"
ck_expect_each "$NODEPORTS" pass:ok fail:wrong-responder
ck_others_pass "$UNPROBED" "$DENIED" "$NODEPORTS"
ck_agents_ok master1 client1 worker1 worker2 worker3

ck_finish
