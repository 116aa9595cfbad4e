#!/usr/bin/env bash
# Live check, fault: the load balancer's haproxy.cfg lacks master3 (the
# generated file with its `server master3` line removed). Every VIP 6443 flow
# fails with wrong-responder ("the VIP never reached master3"): the VIP
# answered, from master1 and master2 only. Every other flow passes; exit 1.
#   usage: check_vip_missing_master.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init vip_missing_master "$@"

ck_topology
grep -v '^ *server master3 ' "$CK_WORK/demo/haproxy.cfg" >"$CK_WORK/haproxy-no-master3.cfg"
grep -q 'server master3' "$CK_WORK/haproxy-no-master3.cfg" && ck_die "master3 is still in the haproxy.cfg"
grep -q 'server master2' "$CK_WORK/haproxy-no-master3.cfg" || ck_die "the haproxy.cfg lost more than master3"
ck_start_haproxy "$CK_WORK/haproxy-no-master3.cfg"
ck_make_token
ck_start_agents
ck_wait_backends

ck_check vip_missing_master
ck_exit_status 1
ck_report_valid
FAULT="to=vip port=6443"
ck_expect "$FAULT" fail wrong-responder "the VIP never reached master3" count=7
ck_backends "$FAULT" master1,master2
ck_summary failed=7 skipped=0
ck_backends "to=vip port=30080,32080" worker1,worker2,worker3
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
