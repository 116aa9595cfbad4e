#!/usr/bin/env bash
# Live check, fault: worker3's own OUTPUT rules drop TCP 6443 (the API server).
# Unlike UDP (sendto fails with EPERM), a TCP SYN dropped by the source's
# output rules fails silently: connect() only times out, and the destination
# never sees it. worker3's agent watches its own SYNs leave (AF_PACKET sees
# them after the output rules) and says none did, so every flow from worker3
# tcp 6443 to a master, and through the VIP, fails with
# blocked-by-source-firewall. Beside it, the bridge drops worker2's TCP 6443
# (a network fault on the same port): its SYNs left, so its flows fail with
# lost-in-network, and through the VIP as filtered with the SYNs seen
# leaving; every other flow passes; exit 1. (It dropped
# 10250 until issue 17 took worker -> master kubelet out of apinizer.)
#   usage: check_source_drop_tcp.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init source_drop_tcp "$@"

ck_topology
ck_in worker3 nft add chain inet portmatrix output '{ type filter hook output priority 0; }'
ck_in worker3 nft add rule inet portmatrix output tcp dport 6443 drop
ck_drop_on_bridge worker2 tcp 6443
ck_start_cluster

ck_check source_drop_tcp
ck_exit_status 1
ck_report_valid
FAULT="from=worker3 proto=tcp port=6443"
ck_expect "$FAULT to=master1,master2,master3" fail blocked-by-source-firewall "worker3's SYNs never left its interface" count=3
# Through the VIP as well: its SYNs to the VIP never left it either.
ck_expect "$FAULT to=vip" fail blocked-by-source-firewall "worker3's SYNs to the VIP never left its interface" count=1
NET_FAULT="from=worker2 proto=tcp port=6443"
ck_expect "$NET_FAULT to=master1,master2,master3" fail lost-in-network "SYNs left worker2, none reached" count=3
ck_expect "$NET_FAULT to=vip" fail filtered "the VIP did not answer: 1 of 1 ports' SYNs left worker2" count=1
ck_summary failed=8 skipped=0
ck_others_pass "$FAULT" "$NET_FAULT"
ck_agents_ok

ck_finish
