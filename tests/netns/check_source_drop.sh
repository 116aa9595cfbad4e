#!/usr/bin/env bash
# Live check, fault: worker3's own OUTPUT rules drop UDP 8472: its stack
# refuses to send (EPERM). Every flow from worker3 udp 8472 fails with
# blocked-by-source-firewall; every other flow passes; exit 1.
#   usage: check_source_drop.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init source_drop "$@"

ck_topology
ck_in worker3 nft add chain inet portmatrix output '{ type filter hook output priority 0; }'
ck_in worker3 nft add rule inet portmatrix output udp dport 8472 drop
ck_start_cluster

ck_check source_drop
ck_exit_status 1
ck_report_valid
FAULT="from=worker3 proto=udp port=8472"
ck_expect "$FAULT" fail blocked-by-source-firewall "worker3 refused to send" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
