#!/usr/bin/env bash
# Live check, fault: an MTU black hole. worker2's link to the switch carries
# at most 1400 bytes (the switch's port has MTU 1400) while every node's
# interface, worker2's included, says 1500. A frame larger than the link
# takes is dropped without a word: no ICMP "fragmentation needed" comes back
# (a layer-2 mismatch sends none; no ICMP is dropped on the way either, as
# a filtering router's would be). The switch clamps TCP's MSS to 1360, as
# routers on such paths do, so TCP (the agents' control channel, the TCP
# probes) works; the overlay's full-size datagrams vanish. Every flow on
# udp 8472 from and to worker2 fails with mtu-blackhole, the detail giving
# the largest size that passed, found by the search: 1404 bytes (the kernel
# forwards a frame onto a link of MTU 1400 when it is at most MTU + Ethernet
# header + 4, room for a VLAN tag: is_skb_forwardable), both interfaces' MTUs
# and VXLAN's 50 bytes; the pairs' path_mtu is 1404 there and 1500
# elsewhere; every other flow passes; exit 1.
#   usage: check_mtu_blackhole.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init mtu_blackhole "$@"

ck_topology
peer=$(ip -n "${CK_NS[worker2]}" -o link show eth0 | sed -n 's/.*eth0@if\([0-9]*\).*/\1/p')
port=$(ip -n "$CK_SWITCH" -o link show | sed -n "s/^$peer: \([^@:]*\)[@:].*/\1/p")
[[ -n $port ]] || ck_die "cannot find worker2's switch port"
ip -n "$CK_SWITCH" link set "$port" mtu 1400
ip netns exec "$CK_SWITCH" nft -f - <<NFT || ck_die "nft: MSS clamping on the bridge was refused"
table bridge pmt {
  chain pmfwd {
    type filter hook forward priority 0;
    tcp flags syn tcp option maxseg size set 1360
  }
}
NFT
ck_start_cluster

ck_check mtu_blackhole
ck_exit_status 1
ck_report_valid
FROM="from=worker2 proto=udp port=8472"
TO="to=worker2 proto=udp port=8472"
ck_expect "$FROM" fail mtu-blackhole "Largest size that passed: 1404 bytes; interface MTUs: worker2 1500" count=5
ck_expect "$TO" fail mtu-blackhole "Largest size that passed: 1404 bytes" count=5
ck_expect "$FROM" fail mtu-blackhole "vxlan adds 50 bytes; the overlay's own MTU must be at most 1354" count=5
ck_summary failed=10 skipped=0
ck_others_pass "$FROM" "$TO"
ck_agents_ok
ck_assert_path_mtu() {
  python3 - "$CK_JSON" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
bad, behind, clear = [], 0, 0
for p in report.get("pairs", []):
    if "path_mtu" not in p: continue
    want = 1404 if "worker2" in (p["from"], p["to"]) else 1500
    if p["path_mtu"] != want: bad.append(f"{p['from']}->{p['to']}: path_mtu {p['path_mtu']}, expected {want}")
    if p.get("mtu_from") != 1500 or p.get("mtu_to") != 1500: bad.append(f"{p['from']}->{p['to']}: interface MTUs {p.get('mtu_from')}, {p.get('mtu_to')}")
    behind += want == 1404
    clear += want == 1500
if behind != 10 or clear != 20: bad.append(f"{behind} pairs at 1404 and {clear} at 1500, expected 10 and 20")
if bad:
    print("\n".join(bad)); sys.exit(1)
print(f"path_mtu 1404 on worker2's {behind} pairs, 1500 on the other {clear}; search rounds {report['rounds_ms'].get('mtu')} ms")
PY
}
if out=$(ck_assert_path_mtu 2>&1); then ck_ok "path MTU: $out"; else ck_fail "path MTU: $out"; fi

ck_finish
