#!/usr/bin/env bash
# Live check, fault: master1 runs without its firewall (its generated
# nftables table deleted). The flows the matrix denies to master1 now reach
# master1's agent: from client1 etcd, kubelet, scheduler and controller-manager,
# from each of the 3 workers etcd, scheduler and controller-manager (issue 17:
# no worker uses them); each fails with unexpectedly-open, answered by
# master1's agent; every other flow passes; check exits 1.
#   usage: check_unexpectedly_open.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init unexpectedly_open "$@"

ck_topology
ck_in master1 nft delete table inet portmatrix
ck_start_cluster

ck_check unexpectedly_open
ck_exit_status 1
ck_report_valid
FAULT="to=master1 expect=deny"
ck_expect "from=client1 $FAULT" fail unexpectedly-open "answered by master1" count=4
ck_expect "from=worker1,worker2,worker3 $FAULT" fail unexpectedly-open "answered by master1" count=9
ck_summary failed=13 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
