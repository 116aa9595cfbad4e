#!/usr/bin/env bash
# Live check of a Cilium cluster with Geneve tunnels (kubernetes-1.31 and
# cilium-1.16, cilium_tunnel: geneve): every node's generated nftables
# firewall applied, then checked. The check passes: Geneve 6081/udp,
# cilium-health 4240/tcp and Hubble 4244/tcp between every pair of nodes
# proven by the agents. Then worker2's own firewall drops 6081/udp: every
# Geneve flow to worker2 fails with dropped-by-destination-firewall (the
# probes reached worker2's interface, never its socket), every other flow
# still passes, and check exits 1.
#   usage: check_cilium_geneve.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init cilium_geneve "$@"

cat >"$CK_WORK/cilium-geneve.yaml" <<'YAML'
cluster: cilium-geneve
profile: [kubernetes-1.31, cilium-1.16]
options: {cilium_tunnel: geneve}
nodes:
  - {name: master1, address: 10.213.0.11, roles: [master]}
  - {name: worker1, address: 10.213.0.21, roles: [worker]}
  - {name: worker2, address: 10.213.0.22, roles: [worker]}
  - {name: client1, address: 10.213.0.5, roles: [client]}
YAML
ck_topology_of "$CK_WORK/cilium-geneve.yaml"
ck_make_token
ck_start_agents

ck_check geneve
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_expect "proto=udp port=6081" pass ok count=6
ck_expect "proto=tcp port=4240" pass ok count=6
ck_expect "proto=tcp port=4244" pass ok count=6
ck_others_pass
ck_agents_ok

ck_in worker2 nft insert rule inet portmatrix input udp dport 6081 drop
ck_check geneve_dropped
ck_exit_status 1
ck_report_valid
FAULT="to=worker2 proto=udp port=6081 expect=allow"
ck_expect "$FAULT" fail dropped-by-destination-firewall "reached worker2's interface" count=2
ck_summary failed=2 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

ck_finish
