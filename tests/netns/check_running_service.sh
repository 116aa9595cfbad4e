#!/usr/bin/env bash
# Live check on a running cluster: a real service (haproxy standing in for
# etcd: it accepts on 10.213.0.11:2379 and holds the connection without a
# word) owns a port master1 must receive before master1's agent starts. The
# agent leaves the port to it and says who holds it (process and pid), in its
# log and in check's agents[]; the flows to master1 tcp 2379 pass with
# diagnosis `service`, and since the stand-in says nothing, the agent's
# attempt to identify it ends in `answered_by: "unknown: HTTPS: no answer in
# 1000 ms"` (one probe: no other protocol after a silent server). Every other
# flow passes; exit 0. (check_running_etcd.sh: a service that is identified.)
#   usage: check_running_service.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init running_service "$@"

ck_topology
ck_start_haproxy
ck_make_token

M1=${CK_ADDRESS[master1]}
cat >"$CK_WORK/etcd-standin.cfg" <<CFG
defaults
    mode tcp
    timeout connect 1s
    timeout client 60s
    timeout server 60s
frontend etcd
    bind $M1:2379
    tcp-request inspect-delay 60s
    tcp-request content accept if WAIT_END
    default_backend etcd
backend etcd
    server nowhere 127.0.0.1:9
CFG
ck_spawn "etcd stand-in on master1" ip netns exec "${CK_NS[master1]}" haproxy -db -f "$CK_WORK/etcd-standin.cfg" \
  </dev/null >"$CK_WORK/etcd-standin.log" 2>&1
SERVICE_PID=$CK_PID
for ((i = 0; i < 100; i++)); do
  ck_in master1 ss -Hltn "sport = :2379" | grep -q . && break
  ck_alive "$SERVICE_PID" || ck_die "the etcd stand-in exited: $(cat "$CK_WORK/etcd-standin.log")"
  sleep 0.1
done
ck_log "etcd stand-in: haproxy pid $SERVICE_PID on $M1:2379"

ck_start_agents
ck_wait_backends
owner_lines=$(grep -c "2379/tcp is held by haproxy (pid $SERVICE_PID)" "$CK_WORK/agent-master1.log" || true)
if [[ $owner_lines -eq 1 ]]; then
  ck_ok "master1's agent log names the owner: $(grep '2379/tcp' "$CK_WORK/agent-master1.log" | sed 's/^ *//')"
else
  ck_fail "master1's agent log names haproxy (pid $SERVICE_PID) as the owner of 2379/tcp $owner_lines time(s), not once:"
  sed 's/^/    /' "$CK_WORK/agent-master1.log"
fi

# The agent's identification of the owner ends after one silent second.
for ((i = 0; i < 50; i++)); do
  grep -q '2379/tcp answers as:' "$CK_WORK/agent-master1.log" && break
  sleep 0.1
done

ck_check_service_on_master1 running_service haproxy "$SERVICE_PID" "unknown: HTTPS: no answer in 1000 ms"

ck_finish
