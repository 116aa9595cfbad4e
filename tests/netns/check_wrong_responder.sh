#!/usr/bin/env bash
# Live check, fault: worker1 forwards TCP 30080 (Apinizer worker NodePort) to
# worker2: a DNAT in worker1's prerouting, and a masquerade so worker2's
# replies come back through worker1 (its generated firewall filters input
# only; forwarding is open). The probes to worker1:30080 connect, and the
# agent that answers proves it is worker2: every allowed flow to worker1 tcp
# 30080 fails with wrong-responder, detail naming worker2. Through the VIP,
# haproxy's worker1 backend is worker2 too: the VIP 30080 flow never reaches
# worker1 (wrong-responder). Every other flow passes; exit 1.
#   usage: check_wrong_responder.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init wrong_responder "$@"

ck_topology
W2=${CK_ADDRESS[worker2]}
ck_in worker1 sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
ck_in worker1 nft add table ip pmnat
ck_in worker1 nft add chain ip pmnat pre '{ type nat hook prerouting priority -100; }'
ck_in worker1 nft add chain ip pmnat post '{ type nat hook postrouting priority 100; }'
ck_in worker1 nft add rule ip pmnat pre tcp dport 30080 dnat to "$W2"
ck_in worker1 nft add rule ip pmnat post ip daddr "$W2" tcp dport 30080 ct status dnat masquerade
ck_start_cluster

ck_check wrong_responder
ck_exit_status 1
ck_report_valid
FAULT="to=worker1 proto=tcp port=30080 expect=allow"
# client1 -> worker1 30080, and masters -> worker1 30000-32767 (failing at 30080 only)
ck_expect "$FAULT" fail wrong-responder "the agent on worker2 answered instead of worker1" count=4
ck_expect "to=vip port=30080" fail wrong-responder "never reached worker1" count=1
ck_backends "to=vip port=30080" worker2,worker3
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT" "to=vip port=30080"
ck_agents_ok

ck_finish
