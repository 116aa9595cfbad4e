#!/usr/bin/env bash
# Live check, fault: the network passes plain UDP to 8472 and drops VXLAN.
# The switch (bridge-family nft in its namespace) drops the UDP 8472
# datagrams from worker2 whose payload starts with VXLAN's flag byte 0x08
# (a raw payload match, @th,64,8: the first byte after the UDP header), as a
# hypervisor's filter that knows the protocol does (flannel-io/flannel
# #2388). The plain probe still passes (the check before the overlay probes
# passed every flow here); the VXLAN-shaped probe is dropped: every flow
# from worker2 on udp 8472 fails with encapsulation-dropped, its detail
# naming both results; every other flow passes, the shaped probes of the
# other sources included; exit 1.
#   usage: check_encapsulation_dropped.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init encapsulation_dropped "$@"

ck_topology
ip netns exec "$CK_SWITCH" nft -f - <<NFT || ck_die "nft: the raw payload match was refused"
table bridge pmt {
  chain pmfwd {
    type filter hook forward priority 0;
    ip saddr ${CK_ADDRESS[worker2]} udp dport 8472 @th,64,8 0x08 counter drop
  }
}
NFT
ck_start_cluster

ck_check encapsulation_dropped
ck_exit_status 1
ck_report_valid
FAULT="from=worker2 proto=udp port=8472"
ck_expect "$FAULT" fail encapsulation-dropped "plain UDP to 8472 passed" count=5
ck_expect "$FAULT" fail encapsulation-dropped "VXLAN's shape (flags 0x08, VNI 1" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok
# The rule matched the shaped probes only (and so never the plain ones).
dropped=$(ip netns exec "$CK_SWITCH" nft list chain bridge pmt pmfwd | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
if [[ ${dropped:-0} -gt 0 ]]; then ck_ok "the switch dropped $dropped VXLAN-shaped datagrams"; else ck_fail "the switch dropped nothing"; fi

ck_finish
