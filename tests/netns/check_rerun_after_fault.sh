#!/usr/bin/env bash
# Live check, run twice on the same agents: the first check passes; then the
# network breaks (the bridge drops UDP 8472 sent by worker2) and the check
# runs again. The destinations saw worker2's 8472 probes arrive during the
# first check, not during the second: every flow from worker2 udp 8472 fails
# with lost-in-network, not dropped-by-destination-firewall (what an agent's
# capture saw before a check began is not evidence for that check). Every
# other flow passes; exit 1.
#   usage: check_rerun_after_fault.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init rerun_after_fault "$@"

ck_topology
ck_start_cluster

ck_check before_fault
ck_exit_status 0
ck_summary failed=0 skipped=0

ck_drop_on_bridge worker2 udp 8472
ck_check after_fault
ck_exit_status 1
ck_report_valid
FAULT="from=worker2 proto=udp port=8472"
ck_expect "$FAULT" fail lost-in-network "never reached" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
