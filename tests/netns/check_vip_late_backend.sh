#!/usr/bin/env bash
# Live check, fault on the way back: worker1's output rules drop what its
# NodePorts 30080 and 32080 send to the load balancer, all but the SYN-ACK.
# The handshake and haproxy's connect health checks succeed, worker1's
# agent reads each probe line the VIP forwards and answers it, and the
# answer never reaches the prober: to it, worker1 is a silent backend of
# the VIP, as an overloaded backend that answers later than the prober
# waits is (100 simulated nodes on two cores). Unlike a backend that never
# got the connections (check_vip_silent_backend), worker1's agent answered
# them: the observe round asks it, the VIP flows pass with worker1 among
# the backends reached, and the agents section says worker1 answered too
# late for the prober "or its answers were lost on the way back", as it
# does for a direct flow whose destination vouches for its answers. Every
# flow passes; exit 0. (Before, the VIP flows failed wrong-responder,
# naming worker1 a silent backend.)
#   usage: check_vip_late_backend.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init vip_late_backend "$@"

ck_topology
ck_start_cluster
ck_in worker1 nft -f - <<EOF
table inet pmfault {
  chain output {
    type filter hook output priority -10;
    ip daddr ${CK_ADDRESS[$CK_VIP_NODE]} tcp sport { 30080, 32080 } tcp flags & syn == 0 counter drop
  }
}
EOF

ck_check vip_late_backend
dropped=$(ck_in worker1 nft list table inet pmfault | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
if [[ ${dropped:-0} -gt 0 ]]; then
  ck_ok "worker1's output rule dropped $dropped packet(s) to the load balancer"
else
  ck_fail "worker1's output rule dropped nothing: the fault was not in effect"
fi
ck_exit_status 0
ck_report_valid
VIP="to=vip port=30080,32080"
ck_expect "$VIP" pass ok
ck_backends "$VIP" worker1,worker2,worker3
ck_agent worker1 note "too late for the prober; their flows pass on its word"
ck_summary failed=0 skipped=0
ck_agents_ok

ck_finish
