#!/usr/bin/env bash
# Live check, two faults at once: the bridge drops TCP 9200 sent by worker2
# (a network fault), and the load balancer's haproxy.cfg lacks master3, so
# the check probes the VIP again from every master and worker (its VIP
# rounds) before it asks what the captures saw. Those extra probings continue
# the check's first one: worker2's agent must still say that its 9200 SYNs
# left, so the flows from worker2 tcp 9200 fail with lost-in-network, not
# blocked-by-source-firewall (a VIP round used to wipe the SYNs worker2 had
# seen leave). Every VIP 6443 flow fails with wrong-responder; every other
# flow passes; exit 1.
#   usage: check_bridge_drop_vip.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init bridge_drop_vip "$@"

ck_topology
ck_drop_on_bridge worker2 tcp 9200
grep -v '^ *server master3 ' "$CK_WORK/demo/haproxy.cfg" >"$CK_WORK/haproxy-no-master3.cfg"
grep -q 'server master3' "$CK_WORK/haproxy-no-master3.cfg" && ck_die "master3 is still in the haproxy.cfg"
ck_start_haproxy "$CK_WORK/haproxy-no-master3.cfg"
ck_make_token
ck_start_agents
ck_wait_backends

ck_check bridge_drop_vip
ck_exit_status 1
ck_report_valid
TCP_FAULT="from=worker2 proto=tcp port=9200"
ck_expect "$TCP_FAULT" fail lost-in-network "SYNs left worker2, none reached" count=3
VIP_FAULT="to=vip port=6443"
ck_expect "$VIP_FAULT" fail wrong-responder "the VIP never reached master3" count=7
ck_summary failed=10 skipped=0
ck_others_pass "$TCP_FAULT" "$VIP_FAULT"
ck_agents_ok

ck_finish
