#!/usr/bin/env bash
# Live check of a Calico cluster in IP-in-IP mode (kubernetes-1.31 and
# calico-3.29, calico_encapsulation: ipip): every node's generated nftables
# firewall applied, then checked. IP-in-IP (IP protocol 4, no ports) is
# proven like TCP and UDP: each agent sends an encapsulated probe on a raw
# socket and the destination's agent answers on its own, so the 6 ipip
# flows between master1, worker1 and worker2 pass with their identity, as
# does BGP 179/tcp; check exits 0.
# Then worker2's firewall drops IP-in-IP: both ipip flows to worker2 fail with
# dropped-by-destination-firewall (the probes reached worker2's interface,
# never its agent's raw socket); every other flow passes (worker2's own ipip
# flows on the word of the agents that answered them: their answers back to
# worker2 were dropped, as their notes say).
# Last, worker1's agent runs without CAP_NET_RAW: it cannot probe or answer
# IP protocol 4, and the report says so (skip, not-probed, "cannot prove"),
# never pass.
#   usage: check_calico_ipip.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init calico_ipip "$@"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"

cat >"$CK_WORK/calico-ipip.yaml" <<'YAML'
cluster: calico-ipip
profile: [kubernetes-1.31, calico-3.29]
options: {calico_encapsulation: ipip}
nodes:
  - {name: master1, address: 10.213.0.11, roles: [master]}
  - {name: worker1, address: 10.213.0.21, roles: [worker]}
  - {name: worker2, address: 10.213.0.22, roles: [worker]}
  - {name: client1, address: 10.213.0.5, roles: [client]}
YAML
ck_topology_of "$CK_WORK/calico-ipip.yaml"
ck_make_token
ck_start_agents

ck_check ipip
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_expect "proto=ipip expect=allow" pass ok count=6
ck_expect "proto=tcp port=179" pass ok count=6
ck_others_pass
ck_agents_ok

# The fault: worker2's firewall drops IP protocol 4, first in its input
# chain (so the conntrack entries of the first check do not let it through).
ck_in worker2 nft insert rule inet portmatrix input meta l4proto 4 drop
ck_check ipip_dropped
ck_exit_status 1
ck_report_valid
FAULT="to=worker2 proto=ipip expect=allow"
ck_expect "$FAULT" fail dropped-by-destination-firewall "reached worker2's interface" count=2
ck_summary failed=2 skipped=0
ck_others_pass "$FAULT"
ck_agents_ok

# Without CAP_NET_RAW (out of the bounding set before exec) worker1's agent
# has no raw socket and no capture: nothing proves its ipip flows either way.
ck_stop_agent worker1
ck_spawn "agent worker1" ip netns exec "${CK_NS[worker1]}" setpriv --bounding-set -net_raw \
  "$PM_BIN" agent --inventory "$INVENTORY" --node worker1 --token-file "$TOKEN" </dev/null >"$CK_WORK/agent-worker1.log" 2>&1
CK_AGENT_PID[worker1]=$CK_PID
ck_wait_agents worker1
ck_check no_raw_socket
ck_exit_status 1
ck_report_valid
ck_expect "from=worker1 proto=ipip" skip not-probed "cannot prove IP protocol 4 (ipip): worker1's agent cannot open a raw socket" count=2
ck_expect "to=worker1 proto=ipip" skip not-probed "worker1's agent has no raw socket" count=2
ck_summary failed=1 skipped=4
ck_expect "from=master1 $FAULT" fail dropped-by-destination-firewall "reached worker2's interface" count=1

ck_finish
