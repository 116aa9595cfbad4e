#!/usr/bin/env bash
# Live check, fault: worker3's own OUTPUT rules drop TCP 10250 (kubelet).
# Unlike UDP (sendto fails with EPERM: blocked-by-source-firewall), a TCP SYN
# dropped by the source's output rules fails silently: connect() only times
# out, and the destination never sees it. So every flow from worker3 tcp
# 10250 fails with lost-in-network, and the detail names worker3's own output
# rules as a suspect; every other flow passes; exit 1.
#   usage: check_source_drop_tcp.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init source_drop_tcp "$@"

ck_topology
ck_in worker3 nft add chain inet portmatrix output '{ type filter hook output priority 0; }'
ck_in worker3 nft add rule inet portmatrix output tcp dport 10250 drop
ck_start_cluster

ck_check source_drop_tcp
ck_exit_status 1
ck_report_valid
FAULT="from=worker3 proto=tcp port=10250"
ck_expect "$FAULT" fail lost-in-network "by worker3's own output rules" count=3
ck_summary failed=3 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
