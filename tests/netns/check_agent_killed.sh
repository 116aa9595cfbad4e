#!/usr/bin/env bash
# Live check, fault: worker2's agent is killed (SIGKILL, by pid) while it
# probes for the check. The check still ends within its deadline and writes
# a complete JSON report; every flow from worker2 is skipped
# (agent-unreachable); exit 1; every flow not involving worker2 passes. The
# next check, with the agent dead from the start, says the same and that
# nothing listens on worker2 any more (no-listener). Then: a check killed
# mid-run leaves its --output file as it was (written whole or not at all).
#
# So that the kill lands in worker2's probe round, not before or after it,
# the network drops worker2's UDP 8472 (as in check_bridge_drop.sh): its
# round then lasts at least one probe timeout (2 s here), and the kill comes
# once the check's probe request to worker2 is in flight (its hello answered,
# the next request open: see ck_calls). Those flows start at worker2: skipped
# like the rest of its flows.
#   usage: check_agent_killed.sh PORTMATRIX [PM_NETPROBE]
#
# The deadline leaves room for what a dead agent costs the others: its UDP
# ports answer no ICMP beyond the kernel's rate limit, so the masters' probes
# of its NodePort range time out, twice (the first try and the retry).
source "$(dirname "$0")/check_lib.bash"
ck_init agent_killed "$@"
DEADLINE=15

ck_topology
ck_drop_on_bridge worker2 udp 8472
ck_start_cluster

# 1. Killed while it probes (0.5 s into the check: the probe round).
ck_check_start agent_killed --deadline "$DEADLINE" --timeout-ms 2000
ck_wait_until "the probe request to worker2 is in flight" "$DEADLINE" \
  eval 'ck_at_least ck_calls worker2 answered 1 && ck_at_least ck_calls worker2 open 1'
ck_log "killing worker2's agent (pid ${CK_AGENT_PID[worker2]}) $(ck_since "$CK_CHECK_T0") into the check"
ck_stop_agent worker2 KILL
ck_check_wait
ck_ended_within "$DEADLINE" 5
ck_exit_status 1
ck_report_valid
ck_expect "from=worker2" skip agent-unreachable
# Skipped: worker2's own flows, and those to worker2 (or through the VIP to
# it) that only its dead agent could have settled (below).
ck_summary skipped="$(($(ck_n from=worker2) + $(ck_n "to=worker2 verdict=skip") + $(ck_n "to=vip port=30080,32080 verdict=skip")))"
ck_agent worker2 error "probe round"
# The flows to worker2 were probed while it died: those probed before pass
# (its agent answered), those after find nothing listening (TCP refused;
# UDP unreachable, rate-limited, so some ports only time out: with no agent
# on worker2 to ask what arrived, those are agent-unreachable, untested) and
# blame no firewall. A TCP probe whose
# connection the agent had accepted when it died is closed without the
# identity line: agent-unreachable (a skip: worker2's agent cannot be asked
# what it answered), or wrong-responder where the agent was still asked.
# The VIP flows with worker2 as a backend pass, miss it, or are skipped
# the same way.
ck_show "to=worker2 expect=allow verdict=fail,skip"
ck_expect_each "to=worker2 expect=allow proto=tcp" pass:ok "fail:no-listener|wrong-responder" skip:agent-unreachable
ck_expect_each "to=worker2 expect=allow proto=udp" pass:ok "fail:no-listener|agent-unreachable" skip:agent-unreachable
ck_show "to=vip port=30080,32080"
ck_expect_each "to=vip port=30080,32080" pass:ok "fail:wrong-responder|filtered" skip:agent-unreachable
ck_others_pass "from=worker2" "to=worker2 expect=allow" "to=vip port=30080,32080"
ck_agents_ok worker2

# 2. The next check, with worker2's agent dead from the start: the same skips;
# nothing listens on worker2 any more, so the TCP flows to it are refused:
# no-listener. (UDP: port unreachable, rate-limited by worker2's kernel, so
# some ports only time out: no-listener, or agent-unreachable where nothing
# answered and worker2 cannot be asked what arrived.)
ck_check after_kill --deadline "$DEADLINE"
ck_exit_status 1
ck_report_valid
ck_expect "from=worker2" skip agent-unreachable
ck_agent worker2 reachable false
ck_expect "to=worker2 expect=allow proto=tcp" fail no-listener
ck_expect "to=worker2 expect=allow proto=udp" fail "no-listener|agent-unreachable"
ck_log "VIP flows with worker2 as a backend (haproxy marks it down within 6 s):"
ck_show "to=vip port=30080,32080"
ck_others_pass "from=worker2" "to=worker2 expect=allow" "to=vip port=30080,32080"

# 3. A check killed mid-run (SIGTERM, while a request to worker1's agent is
# in flight) leaves an existing --output file as it was.
printf 'the previous report\n' >"$CK_WORK/kept.json"
ck_check_start interrupted --format json --output "$CK_WORK/kept.json"
ck_wait_until "a request to worker1's agent is in flight" "$DEADLINE" ck_at_least ck_calls worker1 open 1
kill -TERM "$CK_CHECK_PID"
ck_check_wait
if [[ $(cat "$CK_WORK/kept.json") == 'the previous report' ]] && ! compgen -G "$CK_WORK/kept.json.*" >/dev/null; then
  ck_ok "the interrupted check (exit $CK_RC) left its --output file whole and no temporary file"
else
  ck_fail "the interrupted check (exit $CK_RC) changed its --output file: $(head -c 200 "$CK_WORK/kept.json"); $(ls "$CK_WORK")"
fi

ck_finish
