#!/usr/bin/env bash
# Live check, fault: master2's own firewall drops UDP 8472 (Flannel VXLAN).
# Every allowed flow to master2 udp 8472 fails with
# dropped-by-destination-firewall (the probes reached master2's interface,
# never its socket); every other flow passes; check exits 1.
#   usage: check_dest_drop.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init dest_drop "$@"

ck_topology
ck_in master2 nft insert rule inet portmatrix input udp dport 8472 drop
ck_start_cluster

ck_check dest_drop
ck_exit_status 1
ck_report_valid
FAULT="to=master2 proto=udp port=8472 expect=allow"
ck_expect "$FAULT" fail dropped-by-destination-firewall "reached master2's interface" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
