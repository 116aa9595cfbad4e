#!/usr/bin/env bash
# check --ssh, the workstation dies: `portmatrix check --ssh --exit-after 15`
# is killed (SIGKILL: no clean-up can run) once every node's agent is up and
# before its report is written. Every agent is gone within its --exit-after:
# the process listing of every node's namespace, polled, shows no portmatrix
# process by 15 s (+ 5 s for the process to end) after the first agent was
# seen, and no file of the run is left either. The ssh masters the dead run
# left on the workstation (and their sessions on the nodes) are shown, not
# asserted.
#
# So that the check still runs when the agents are up, the bridge drops
# worker2's UDP 8472 and the probe timeout is 5 s: the probe round lasts at
# least that long.
#   usage: ssh_workstation_killed.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init workstation_killed "$@"
EXIT_AFTER=15

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"
ck_drop_on_bridge worker2 udp 8472

ssh_all_agents_up() { [[ $(ssh_count_agents) -eq ${#CK_NODES[@]} ]]; }
ssh_some_agent_up() { [[ $(ssh_count_agents) -gt 0 ]]; }

ssh_pm_start killed "$SSH_WS" check --exit-after "$EXIT_AFTER" --timeout-ms 5000 --deadline 60
ssh_wait_until 60 ssh_some_agent_up || ck_die "no agent up 60 s into the run: $(cat "$CK_WORK/killed.err")"
FIRST_AGENT_MS=$(ck_now_ms)
ssh_wait_until 60 ssh_all_agents_up || ck_die "not every agent up 60 s into the run: $(ssh_agents_left | cut -d: -f1 | sort -u | tr '\n' ' ')"
ck_log "all ${#CK_NODES[@]} agents up $(ck_since "$CK_CHECK_T0") into the run: killing it (pid $CK_CHECK_PID, SIGKILL)"
ck_stop "$CK_CHECK_PID" KILL
CK_RC=137 # ck_stop reaped it
if [[ ! -e $CK_JSON ]]; then
  ck_ok "the run was killed before it wrote its report"
else
  ck_fail "the run had finished before the kill: the test killed nothing mid-check"
fi
ck_log "agents right after the kill: $(ssh_count_agents) of ${#CK_NODES[@]} nodes"

# Every agent gone within --exit-after of its start (the first seen + 5 s).
left=$(( (FIRST_AGENT_MS + (EXIT_AFTER + 5) * 1000 - $(ck_now_ms) + 999) / 1000 ))
ssh_wait_no_agents "$left" "within --exit-after $EXIT_AFTER s (+5 s) of the first agent's start"

# The agent's end removes its run directory too (the product's shell does).
ssh_no_run_files
ck_log "connections left by the killed run (not asserted: the ssh masters persist on the workstation):"
ssh_sessions_left | sed 's/^/    /' | cut -c1-200

ck_finish
