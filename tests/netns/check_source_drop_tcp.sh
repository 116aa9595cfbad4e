#!/usr/bin/env bash
# Live check, fault: worker3's own OUTPUT rules drop TCP 10250 (kubelet).
# Unlike UDP (sendto fails with EPERM), a TCP SYN dropped by the source's
# output rules fails silently: connect() only times out, and the destination
# never sees it. worker3's agent watches its own SYNs leave (AF_PACKET sees
# them after the output rules) and says none did, so every flow from worker3
# tcp 10250 fails with blocked-by-source-firewall; every other flow passes;
# exit 1.
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
ck_expect "$FAULT" fail blocked-by-source-firewall "worker3's SYNs never left its interface" count=3
ck_summary failed=3 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
