#!/usr/bin/env bash
# Live check on a running cluster, "who answers": a real etcd (Debian's
# etcd-server) runs on master1 and holds both of etcd's required ports,
# 2379 (clients) and 2380 (peers), before master1's agent starts. The agent
# leaves them to etcd, identifies what answers there (GET /version: the
# etcd version), and check's report shows it: the flows to master1 tcp
# 2379-2380 pass as `service` with `answered_by: "etcd 3.4..."` (the table's
# rendering of it is unit-tested: tests/unit/report). Every other flow
# passes; exit 0.
#   usage: check_running_etcd.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init running_etcd "$@"
command -v etcd >/dev/null || skip "etcd is not installed (Debian package etcd-server)"

ck_topology
ck_start_haproxy
ck_make_token

M1=${CK_ADDRESS[master1]}
ck_spawn "etcd on master1" ip netns exec "${CK_NS[master1]}" etcd --name master1 --data-dir "$CK_WORK/etcd" \
  --listen-client-urls "http://$M1:2379" --advertise-client-urls "http://$M1:2379" \
  --listen-peer-urls "http://$M1:2380" --initial-advertise-peer-urls "http://$M1:2380" \
  --initial-cluster "master1=http://$M1:2380" </dev/null >"$CK_WORK/etcd.log" 2>&1
ETCD_PID=$CK_PID
# etcd listens first and serves once it has elected itself: wait for that.
for ((i = 0; i < CK_READY_TIMEOUT_S * 10; i++)); do
  grep -q 'ready to serve client requests' "$CK_WORK/etcd.log" && break
  ck_alive "$ETCD_PID" || ck_die "etcd exited: $(tail -5 "$CK_WORK/etcd.log")"
  sleep 0.1
done
grep -q 'ready to serve client requests' "$CK_WORK/etcd.log" || ck_die "etcd not ready after ${CK_READY_TIMEOUT_S}s"
ETCD_VERSION=$(etcd --version | sed -n 's/^etcd Version: //p')
ck_log "etcd $ETCD_VERSION on $M1:2379 and :2380 (pid $ETCD_PID)"

ck_start_agents
ck_wait_backends
# The agent identifies the owners in the background (a second at most each):
# its log says so when done.
for ((i = 0; i < 50; i++)); do
  [[ $(grep -c 'answers as:' "$CK_WORK/agent-master1.log") -ge 2 ]] && break
  sleep 0.1
done
for port in 2379 2380; do
  line=$(grep "$port/tcp answers as:" "$CK_WORK/agent-master1.log" || true)
  if [[ $line == *"answers as: etcd $ETCD_VERSION"* ]]; then
    ck_ok "master1's agent identified $port/tcp: ${line#*answers as: }"
  else
    ck_fail "master1's agent did not identify etcd $ETCD_VERSION on $port/tcp: ${line:-no line}"
    sed 's/^/    /' "$CK_WORK/agent-master1.log"
  fi
done

ck_check_service_on_master1 running_etcd etcd "$ETCD_PID" "etcd $ETCD_VERSION (cluster version "

ck_finish
