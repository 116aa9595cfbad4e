#!/usr/bin/env bash
# Live check, fault: worker1's firewall drops its NodePort ranges (TCP and
# UDP) while haproxy still counts it up (its health checks here need 30
# failures to mark a server down), so the VIP accepts worker1's share of the
# connections to 30080 and 32080 and no answer ever comes back on them.
# That backend is known after one timeout, named, and not asked again: the
# VIP flows fail wrong-responder naming worker1 as silent, the check skips
# its VIP rounds (no flow is left that a second pass could settle), worker1's
# NodePort flows fail dropped-by-destination-firewall, every other flow
# passes; exit 1.
#   usage: check_vip_silent_backend.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init vip_silent_backend "$@"

ck_topology
sed 's/ fall 3$/ fall 30/' "$CK_WORK/demo/haproxy.cfg" >"$CK_WORK/haproxy-slow-down.cfg"
grep -q ' fall 30$' "$CK_WORK/haproxy-slow-down.cfg" || ck_die "no 'fall 3' in the generated haproxy.cfg"
ck_start_haproxy "$CK_WORK/haproxy-slow-down.cfg"
ck_make_token
ck_start_agents
ck_wait_backends
ck_drop_nodeports worker1

ck_check vip_silent_backend
ck_exit_status 1
ck_report_valid
VIP_FAULT="to=vip port=30080,32080"
ck_expect "$VIP_FAULT" fail wrong-responder "worker1 never answered the connections the VIP sent"
ck_backends "$VIP_FAULT" worker2,worker3
# worker1's NodePort ranges, and the client's flows to its 30080 and 32080
NODEPORTS="to=worker1 port=30000,30080,32080,32767 expect=allow"
ck_expect "$NODEPORTS" fail dropped-by-destination-firewall
vip_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rounds_ms"]["vip"])' "$CK_JSON")
if [[ $vip_ms -lt 500 ]]; then
  ck_ok "the VIP was not asked again (vip round: $vip_ms ms)"
else
  ck_fail "the VIP was asked again for a backend known to be silent (vip round: $vip_ms ms)"
fi
ck_others_pass "$VIP_FAULT" "$NODEPORTS"
ck_agents_ok

ck_finish
