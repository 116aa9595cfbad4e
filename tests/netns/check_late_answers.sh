#!/usr/bin/env bash
# Live check, overload: master2's agent is frozen (SIGSTOP, by pid) for the
# first 2.5 s of the probe round, as a starved agent on an overloaded node
# is. Its kernel still completes the TCP handshakes and queues the UDP
# probes, but nobody answers them in time: the probers see connections
# without the identity line, and silence. When it runs again it reads them
# all and answers (too late). Asked in the observed round, master2's agent
# says so, and that is proof enough: every flow to master2 passes (ok), its
# note in the report says how many ports it answered too late, and the
# check exits 0. Without that word the check blamed master2's firewall
# (dropped-by-destination-firewall) and another responder (wrong-responder).
#
# So that the freeze lands after master2 has answered hello but before
# anybody probes it: client1's agent is frozen before the check starts, which
# holds the hello round. The check asks every agent at once; once its hello
# connection to client1's agent is up, master2 (which answers in
# milliseconds) gets 0.3 s more, then is frozen; client1 is resumed 0.5 s
# later (the probe round starts then), master2 4.5 s after that. The
# check runs with --retries 0: each port is tried once, in the first moments
# of the round (single ports go first), and every source has given up on
# master2's ports before it runs again (UDP after the 1 s timeout; TCP,
# connected by master2's kernel, after the prober's 3 s wait for the
# identity line). (With a retry, a source busy with the NodePort ranges may
# try again after master2 runs again, and then it answers in time.)
#   usage: check_late_answers.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init late_answers "$@"
DEADLINE=20

ck_topology
ck_start_cluster

kill -STOP "${CK_AGENT_PID[client1]}"
control_port=$(sed -n 's/^agent: {control_port: *\([0-9]*\)}.*/\1/p' "$INVENTORY")
[[ -n $control_port ]] || ck_die "no agent control_port in $INVENTORY"
ck_check_start late --deadline "$DEADLINE" --retries 0
for ((i = 0; i < 100; i++)); do # the check's hello connection to client1's own agent
  [[ -n $(ck_in client1 ss -Htn state established "( dport = :$control_port )") ]] && break
  sleep 0.05
done
sleep 0.3
kill -STOP "${CK_AGENT_PID[master2]}"
ck_log "froze master2's agent (pid ${CK_AGENT_PID[master2]}) $(ck_since "$CK_CHECK_T0") into the check"
sleep 0.5
kill -CONT "${CK_AGENT_PID[client1]}"
sleep 4.5
kill -CONT "${CK_AGENT_PID[master2]}"
ck_log "master2's agent runs again $(ck_since "$CK_CHECK_T0") into the check"
ck_check_wait
ck_ended_within "$DEADLINE" 5
ck_report_valid
ck_log "the flows to master2:"
ck_show "to=master2 expect=allow"
ck_exit_status 0
ck_expect "to=master2 expect=allow" pass ok
# 5 UDP 8472 flows (one port each); TCP: 6443 (from 6 nodes), 2379-2380 and
# 10250, 10257, 10259 (from 5): 6 + 5 * 5 ports.
ck_agent master2 note "answered probes to 36 ports (counted per source) too late for the prober; their flows pass on its word"
ck_summary failed=0 skipped=0
ck_others_pass
ck_agents_ok

ck_finish
