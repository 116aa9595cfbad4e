#!/usr/bin/env bash
# Live check, fault: nothing listens on a port worker1 must receive. worker1's
# agent runs with a copy of the inventory that moves kube-proxy-health (10256,
# lb1 -> workers) to 10266, so it binds 10266 instead and nothing at all
# listens on worker1:10256, while check uses the real inventory. (A port that
# worker1 only receives: moving kubelet instead would also change the flows
# worker1 itself probes, and its agent would refuse the whole probe request.)
# The flow lb1 -> worker1 tcp 10256 is refused (RST) and worker1's agent says
# it has no listener there: no-listener. Every other flow passes; exit 1.
#   usage: check_no_listener.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init no_listener "$@"

ck_topology
ck_start_haproxy
ck_make_token
sed 's/^cluster: .*/&\nports: {kube-proxy-health: 10266}/' "$INVENTORY" >"$CK_WORK/inventory-worker1.yaml"
grep -q '^ports: {kube-proxy-health: 10266}' "$CK_WORK/inventory-worker1.yaml" || ck_die "cannot write worker1's inventory"
ck_start_agent worker1 "$CK_WORK/inventory-worker1.yaml"
ck_start_agents worker1
ck_wait_agents worker1
if ck_in worker1 ss -Hltn 'sport = :10256' | grep -q .; then ck_die "something listens on worker1:10256"; fi
ck_wait_backends

ck_check no_listener
ck_exit_status 1
ck_report_valid
FAULT="from=lb1 to=worker1 proto=tcp port=10256"
ck_expect "$FAULT" fail no-listener "nothing of ours listens there" count=1
ck_summary failed=1 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
