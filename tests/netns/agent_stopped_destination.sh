#!/usr/bin/env bash
# Live check, fault: worker2's agent is frozen (SIGSTOP) before the check.
# Its listeners' backlog still completes TCP handshakes, but no identity
# line comes and the agent cannot be asked what it answered. The agents
# section says worker2 is unreachable, and so do the flows: the TCP and UDP
# flows to worker2 are skipped (agent-unreachable), never wrong-responder
# nor filtered (issue 16, finding 8); so are the denies to it, which pass only
# on its agent's word (issue 17); the flows from worker2 are skipped; the check ends within
# its deadline; every flow not involving worker2 passes. Each TCP port of
# an allowed flow to worker2 gets one SYN from its source, counted by an nft
# counter there after its firewall (a dropped SYN is resent by the kernel
# within the probe's timeout, so it would count twice at random): a
# connection is the port's answer at once, nothing asks again (the
# coordinator marks worker2's targets as without an agent; before, each port
# waited out 3 s for an identity line and was probed a second time). No probe in
# VXLAN's shape goes to worker2 while its agent is frozen (only an agent
# answers one: the shaped probes would wait out their timeouts one after the
# other, issue 20); counted by an nft counter in worker2's namespace, which
# the thawed check's shaped probes prove counts. Thawed (SIGCONT), the agent
# answers the next check, which passes.
#   usage: agent_stopped_destination.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init stopped_destination "$@"
DEADLINE=15

ck_topology
ck_start_cluster

# VXLAN-shaped datagrams arriving at worker2's 8472 (the first payload
# byte is VXLAN's flags, 0x08; a plain probe starts with its text), and the
# probes' SYNs that its firewall (priority filter) accepted (not haproxy's
# from lb1, nor the coordinator's to the agent).
ck_in worker2 nft -f - <<NFT
table inet pmcount {
  chain input {
    type filter hook input priority -300
    udp dport 8472 @th,64,8 0x08 counter comment "shaped"
  }
  chain accepted {
    type filter hook input priority filter + 10
    tcp flags & (syn | ack) == syn ip saddr != { ${CK_ADDRESS[$CK_VIP_NODE]}, $CK_VIP } \
      tcp dport != $(ck_control_port) counter comment "syns"
  }
}
NFT
counted() { # COMMENT: the packets its counter counted
  ck_in worker2 nft list table inet pmcount | sed -n "s/.*counter packets \([0-9]*\).*comment \"$1\".*/\1/p"
}
shaped_to_worker2() { counted shaped; }

kill -STOP "${CK_AGENT_PID[worker2]}"
ck_log "froze worker2's agent (pid ${CK_AGENT_PID[worker2]})"
ck_check frozen --deadline "$DEADLINE"
ck_ended_within "$DEADLINE" 5
ck_exit_status 1
ck_report_valid
ck_agent worker2 reachable false
ck_count "diagnosis=wrong-responder" 0
ck_expect "to=worker2 proto=tcp expect=allow" skip agent-unreachable "worker2's agent sent no identity"
ck_expect "from=worker2" skip agent-unreachable
ck_expect "to=worker2 proto=udp expect=allow" skip agent-unreachable "worker2's agent could not be asked what it saw"
ck_expect "to=worker2 expect=deny" skip agent-unreachable "could not be asked whether anything listened"
ck_others_pass "from=worker2" "to=worker2" "to=vip"
syns=$(counted syns)
ports=$(python3 -c 'import json, sys
print(sum(r["port_max"] - r["port_min"] + 1 for r in json.load(open(sys.argv[1]))["results"]
          if r.get("to") == "worker2" and r["protocol"] == "tcp" and r["expect"] == "allow"))' "$CK_WORK/frozen.json")
[[ $ports -gt 0 && $syns == "$ports" ]] &&
  ck_ok "one SYN per TCP port of an allowed flow to worker2: $syns for $ports ports (nothing asked again)" ||
  ck_fail "$syns SYNs reached worker2 for the $ports TCP ports of its allowed flows: each port must be asked once"
shaped=$(shaped_to_worker2)
[[ $shaped == 0 ]] && ck_ok "no VXLAN-shaped probe went to worker2's frozen agent" ||
  ck_fail "$shaped VXLAN-shaped probes went to worker2, whose agent did not answer hello"

kill -CONT "${CK_AGENT_PID[worker2]}"
ck_log "thawed worker2's agent"
ck_wait_backends
ck_check thawed
ck_exit_status 0
ck_summary failed=0 skipped=0
ck_agents_ok
shaped=$(shaped_to_worker2)
[[ $shaped -gt 0 ]] && ck_ok "the thawed check's VXLAN-shaped probes reached worker2 ($shaped counted)" ||
  ck_fail "no VXLAN-shaped probe counted at worker2 in the thawed check: the counter counts nothing"

ck_finish
