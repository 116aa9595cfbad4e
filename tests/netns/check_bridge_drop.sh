#!/usr/bin/env bash
# Live check, fault: the network itself (a bridge-family nft rule in the
# switch namespace) drops UDP 8472 sent by worker2. Every flow from worker2
# udp 8472 fails with lost-in-network (it left worker2 and never reached the
# destination's interface); every other flow passes; exit 1.
#   usage: check_bridge_drop.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init bridge_drop "$@"

ck_topology
ck_drop_on_bridge worker2 udp 8472
ck_start_cluster

ck_check bridge_drop
ck_exit_status 1
ck_report_valid
FAULT="from=worker2 proto=udp port=8472"
ck_expect "$FAULT" fail lost-in-network "never reached" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
