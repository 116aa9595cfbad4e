#!/usr/bin/env bash
# Live check, fault: the network itself (bridge-family nft rules in the
# switch namespace) drops UDP 8472 and TCP 9200 sent by worker2. Every flow
# from worker2 udp 8472 and tcp 9200 fails with lost-in-network (it left
# worker2 and never reached the destination's interface; for TCP worker2's
# agent saw its SYNs leave, so its own rules are cleared); every other flow
# passes; exit 1.
#   usage: check_bridge_drop.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init bridge_drop "$@"

ck_topology
ck_drop_on_bridge worker2 udp 8472
ck_drop_on_bridge worker2 tcp 9200
ck_start_cluster

ck_check bridge_drop
ck_exit_status 1
ck_report_valid
FAULT="from=worker2 proto=udp port=8472"
ck_expect "$FAULT" fail lost-in-network "never reached" count=5
TCP_FAULT="from=worker2 proto=tcp port=9200"
ck_expect "$TCP_FAULT" fail lost-in-network "SYNs left worker2, none reached" count=3
ck_summary failed=8 skipped=0
ck_others_pass "$FAULT" "$TCP_FAULT"
ck_agents_ok

ck_finish
