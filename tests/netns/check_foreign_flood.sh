#!/usr/bin/env bash
# Live check, finding 1 of the agent's review: a flood from addresses outside
# the inventory must not wrong later diagnoses. 17 addresses on client1 that
# the inventory does not name send one datagram to every port of master2
# (1.1 million: more keys than a capture holds), then a check runs with
# master2's firewall dropping UDP 8472. Its capture never saw the flood (the
# kernel's filter keeps the inventory's peers only), so it lost nothing and
# the fault reads dropped-by-destination-firewall, not filtered.
#   usage: check_foreign_flood.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init foreign_flood "$@"

ck_topology
ck_in master2 nft insert rule inet portmatrix input udp dport 8472 drop
ck_start_cluster

# 10.213.0.230-246: on the cluster's subnet, in no inventory list.
subnet=${CK_ADDRESS[client1]%.*}
sources=()
for i in $(seq 230 246); do
  sources+=("$subnet.$i")
  ck_in client1 ip addr add "$subnet.$i/32" dev eth0
done
# Conntrack stays out of it on both ends (1.1 million unreplied flows would
# fill client1's table and hold its probes back): this is about the capture.
range="$subnet.230-$subnet.246"
ck_in client1 nft add table ip pmflood
ck_in client1 nft add chain ip pmflood out '{ type filter hook output priority raw; }'
ck_in client1 nft add rule ip pmflood out ip saddr "$range" notrack
ck_in master2 nft add table ip pmflood
ck_in master2 nft add chain ip pmflood pre '{ type filter hook prerouting priority raw; }'
ck_in master2 nft add rule ip pmflood pre ip saddr "$range" notrack
t0=$(ck_now_ms)
ck_in client1 python3 - "${CK_ADDRESS[master2]}" "${sources[@]}" <<'PY' || ck_die "the flood did not run"
import socket, sys
target, sources = sys.argv[1], sys.argv[2:]
sent = 0
for source in sources:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    for port in range(1, 65536):
        try:
            s.sendto(b"x", (target, port))
            sent += 1
        except OSError:
            pass
    s.close()
print(sent)
PY
ck_log "flood: ${#sources[@]} foreign addresses x 65535 ports to master2 in $(ck_since "$t0")"

ck_check after_flood
ck_exit_status 1
ck_report_valid
FAULT="to=master2 proto=udp port=8472 expect=allow"
ck_expect "$FAULT" fail dropped-by-destination-firewall "reached master2's interface" count=5
ck_summary failed=5 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok
rss=$(awk '/^VmRSS/ {print $2}' "/proc/${CK_AGENT_PID[master2]}/status")
if [[ -n $rss && $rss -lt 60000 ]]; then
  ck_ok "master2's agent RSS is ${rss} kB after the flood"
else
  ck_fail "master2's agent RSS is ${rss:-unknown} kB after the flood (the review saw 87 MB)"
fi

ck_finish
