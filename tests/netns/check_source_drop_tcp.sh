#!/usr/bin/env bash
# Live check, fault: worker3's own OUTPUT rules drop TCP 6443 (the API server).
# Unlike UDP (sendto fails with EPERM), a TCP SYN dropped by the source's
# output rules fails silently: connect() only times out, and the destination
# never sees it. worker3's agent watches its own SYNs leave (AF_PACKET sees
# them after the output rules) and says none did, so every flow from worker3
# tcp 6443 to a master fails with blocked-by-source-firewall (through the
# VIP: filtered, the source not named yet); every other flow passes; exit 1. (It dropped
# 10250 until issue 17 took worker -> master kubelet out of apinizer.)
#   usage: check_source_drop_tcp.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init source_drop_tcp "$@"

ck_topology
ck_in worker3 nft add chain inet portmatrix output '{ type filter hook output priority 0; }'
ck_in worker3 nft add rule inet portmatrix output tcp dport 6443 drop
ck_start_cluster

ck_check source_drop_tcp
ck_exit_status 1
ck_report_valid
FAULT="from=worker3 proto=tcp port=6443"
ck_expect "$FAULT to=master1,master2,master3" fail blocked-by-source-firewall "worker3's SYNs never left its interface" count=3
# Through the VIP the source's drop is not named yet: the VIP "did not answer".
ck_expect "$FAULT to=vip" fail filtered "the VIP did not answer" count=1
ck_summary failed=4 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
