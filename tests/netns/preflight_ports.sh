#!/usr/bin/env bash
# Preflight on a node where two processes already hold required ports:
# python3 listens on TCP 6443 (the API server's port) and another python3
# holds UDP 31234 (inside the NodePort range). In install mode preflight
# fails and names both owners (pid and command line); in running mode it
# passes and still shows them. A port not required (TCP 9999) is not reported.
# Who answers: a python3 http.server on 10250 (kubelet's port) is identified
# as an HTTP server; the 6443 holder, which never accepts, as unknown.
#   usage: preflight_ports.sh PORTMATRIX PM_NETPROBE
set -euo pipefail
source "$(dirname "$0")/preflight_lib.bash"
pf_init ports "$@"

hold() { # hold PROTO PORT: a python3 in the node's namespace that binds it; pid in $LAST_PID
  local kind=SOCK_STREAM listen="s.listen();"
  [[ $1 == udp ]] && kind=SOCK_DGRAM listen=""
  netns_spawn "python3 $1 $2" ip netns exec "$NODE_NS" python3 -c \
    "import socket,time; s=socket.socket(socket.AF_INET, socket.$kind); s.bind(('$NODE_ADDRESS', $2)); $listen time.sleep(600)" \
    </dev/null >/dev/null 2>&1
}
hold tcp 6443
TCP_PID=$LAST_PID
hold udp 31234
UDP_PID=$LAST_PID
hold tcp 9999
netns_spawn "http.server 10250" ip netns exec "$NODE_NS" python3 -m http.server 10250 --bind "$NODE_ADDRESS" \
  </dev/null >/dev/null 2>&1
for ((i = 0; i < 100; i++)); do
  [[ $(ip netns exec "$NODE_NS" ss -Hlntu | grep -cE ':(6443|31234|9999|10250) ') -eq 4 ]] && break
  sleep 0.1
done
# The processes run inside `ip netns exec`, which execs python3: same pid.

pf_run install --mode install
pf_expect "install mode exits 1" "$PF_STATUS" 1
owner() { # owner NAME PROTO PORT: "pid command" of the holder
  pf_query "$1" "' '.join(str(h['owner']['pid']) + ' ' + h['owner']['command'] for p in r['ports'] for h in p['held'] if p['protocol'] == '$2' and h['port'] == $3)"
}
status() { # status NAME PROTO PORT: the status of the range holding PORT
  pf_query "$1" "' '.join(p['status'] for p in r['ports'] if p['protocol'] == '$2' and p['port_min'] <= $3 <= p['port_max'])"
}
TCP_OWNER=$(owner install tcp 6443)
UDP_OWNER=$(owner install udp 31234)
pf_expect "6443/tcp owner pid" "${TCP_OWNER%% *}" "$TCP_PID"
pf_expect "31234/udp owner pid" "${UDP_OWNER%% *}" "$UDP_PID"
[[ $TCP_OWNER == *"python3 -c import socket"*"6443"* ]] || fail "6443/tcp owner command: '$TCP_OWNER'"
[[ $UDP_OWNER == *"SOCK_DGRAM"*"31234"* ]] || fail "31234/udp owner command: '$UDP_OWNER'"
pf_expect "6443/tcp fails in install mode" "$(status install tcp 6443)" fail
pf_expect "30000-32767/udp fails in install mode" "$(status install udp 31234)" fail
pf_expect "9999 is not a required port" "$(pf_query install "sum(1 for p in r['ports'] for h in p['held'] if h['port'] == 9999)")" 0
grep -q "pid $TCP_PID python3" "$WORK/install.txt" || fail "the table names the owner of 6443: $(cat "$WORK/install.txt")"
answered_by() { # answered_by NAME PORT
  pf_query "$1" "' '.join(h.get('answered_by', '-') for p in r['ports'] for h in p['held'] if p['protocol'] == 'tcp' and h['port'] == $2)"
}
HTTP_ANSWER=$(answered_by install 10250)
[[ $HTTP_ANSWER == *HTTP* ]] || fail "10250/tcp answered_by names an HTTP server: '$HTTP_ANSWER'"
SILENT_ANSWER=$(answered_by install 6443)
[[ $SILENT_ANSWER == unknown* ]] || fail "6443/tcp (never accepts) answered_by is unknown: '$SILENT_ANSWER'"
grep -q "answers as" "$WORK/install.txt" || fail "the table says what answers: $(cat "$WORK/install.txt")"
log "who answers: 10250 '$HTTP_ANSWER'; 6443 '$SILENT_ANSWER'"

# Running mode: the held ports are info, so what still fails is the kernel
# (modules and swap are this host's): the exit status says exactly that.
pf_run running --mode running
pf_expect "running mode: no firewall result fails" \
  "$(pf_query running "sum(1 for x in r['firewall']['results'] if x['status'] == 'fail')")" 0
pf_expect "running mode exits 1 exactly when a check failed" "$PF_STATUS" "$(pf_query running "1 if r['summary']['failed'] else 0")"
pf_query running "r['summary']" | while read -r line; do log "running mode summary: $line"; done
pf_expect "6443/tcp is info in running mode" "$(status running tcp 6443)" info
pf_expect "31234/udp owner shown in running mode" "$(owner running udp 31234)" "$UDP_OWNER"
pf_expect "no port fails in running mode" "$(pf_query running "sum(1 for p in r['ports'] if p['status'] == 'fail')")" 0

# The address check: a node whose address is not in this namespace is refused (exit 2).
STATUS=0
ip netns exec "$NODE_NS" "$PM_BIN" preflight --inventory "$INVENTORY" --node master2 >"$WORK/other.txt" 2>&1 || STATUS=$?
pf_expect "another node's preflight exits 2" "$STATUS" 2
grep -q "10.219.0.12" "$WORK/other.txt" || fail "the error names the address: $(cat "$WORK/other.txt")"

netns_finish
