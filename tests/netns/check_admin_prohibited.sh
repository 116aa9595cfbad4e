#!/usr/bin/env bash
# Live check, fault: worker1's firewall rejects TCP 10250 (kubelet) with ICMP
# administratively prohibited. Every allowed flow to worker1 tcp 10250 fails
# with rejected-by-destination-firewall; every other flow passes; exit 1.
#   usage: check_admin_prohibited.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init admin_prohibited "$@"

ck_topology
ck_in worker1 nft insert rule inet portmatrix input tcp dport 10250 reject with icmpx type admin-prohibited
ck_start_cluster

ck_check admin_prohibited
ck_exit_status 1
ck_report_valid
FAULT="to=worker1 proto=tcp port=10250 expect=allow"
ck_expect "$FAULT" fail rejected-by-destination-firewall "administratively prohibited" count=3
ck_summary failed=3 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
