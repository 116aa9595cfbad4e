#!/usr/bin/env bash
# Live check, fault: nothing listens on a port es1 must receive. es1's agent
# runs with a copy of the inventory that moves elasticsearch-http (9200,
# workers -> Elasticsearch) to 9210, so it binds 9210 instead and nothing at
# all listens on es1:9200, while check uses the real inventory. (A port that
# es1 only receives: moving its transport port 9300 would also change the
# flows es1 itself probes, and its agent would refuse the whole probe request.
# This scenario used lb1 -> worker1 10256 until kube-proxy's health port
# became the kube_proxy_health_checks option, off in the demo.)
# The flows worker1, worker2, worker3 -> es1 tcp 9200 are refused (RST) and
# es1's agent says it has no listener there: no-listener. Every other flow
# passes; exit 1.
#   usage: check_no_listener.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init no_listener "$@"

ck_topology
ck_start_haproxy
ck_make_token
sed 's/^cluster: .*/&\nports: {elasticsearch-http: 9210}/' "$INVENTORY" >"$CK_WORK/inventory-es1.yaml"
grep -q '^ports: {elasticsearch-http: 9210}' "$CK_WORK/inventory-es1.yaml" || ck_die "cannot write es1's inventory"
ck_start_agent es1 "$CK_WORK/inventory-es1.yaml"
ck_start_agents es1
ck_wait_agents es1
if ck_in es1 ss -Hltn 'sport = :9200' | grep -q .; then ck_die "something listens on es1:9200"; fi
ck_wait_backends

ck_check no_listener
ck_exit_status 1
ck_report_valid
FAULT="from=worker1,worker2,worker3 to=es1 proto=tcp port=9200"
ck_expect "$FAULT" fail no-listener "nothing of ours listens there" count=3
ck_summary failed=3 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
