#!/usr/bin/env bash
# Live check, fault: master1's firewall still follows the guide for etcd: a
# rule admits the workers to 2379-2380 (issue 17: no worker is a client of
# etcd; upstream lists its users as "kube-apiserver, etcd"). The profile says
# worker -> master etcd must be denied, and master1's agent holds 2379-2380,
# so each worker's flow to master1 fails with unexpectedly-open, answered by
# master1's agent; every other flow passes (the same denies to master2 and
# master3, whose firewalls stop the probe while their agents listen, pass:
# closed); check exits 1.
#   usage: check_worker_etcd_open.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init worker_etcd_open "$@"

ck_topology
ck_in master1 nft insert rule inet portmatrix input ip saddr @worker_v4 tcp dport 2379-2380 accept \
  comment '"the guide: Worker Node -> Master Node"'
ck_start_cluster

ck_check worker_etcd_open
ck_exit_status 1
ck_report_valid
FAULT="from=worker1,worker2,worker3 to=master1 port=2379 expect=deny"
ck_count "$FAULT" 3
ck_expect_each "$FAULT" fail:unexpectedly-open
ck_show "$FAULT"
ck_expect "from=worker1,worker2,worker3 to=master2,master3 port=2379 expect=deny" pass closed count=6
ck_summary failed=3 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
