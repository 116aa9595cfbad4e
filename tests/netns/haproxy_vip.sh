#!/usr/bin/env bash
# Scenario: the generated haproxy.cfg, run by a real haproxy on the load
# balancer, carries worker -> VIP:6443 to each of the three masters, with every
# node behind its generated nftables firewall; and keepalived --config-test
# accepts the generated keepalived.conf on the load-balancer node.
#
# The masters run `openssl s_server -HTTP` on 6443: it answers the kubeadm-style
# health check (GET /healthz over TLS) and GET /whoami with the master's name.
#   usage: haproxy_vip.sh PORTMATRIX [PM_NETPROBE]
set -euo pipefail
pm=$(realpath "$1")

source "$(dirname "$0")/skip.bash"
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
for tool in ip nft haproxy keepalived openssl curl; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done

id=pmh$$
work=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nodes=(lb1:10.213.0.5 master1:10.213.0.11 master2:10.213.0.12 master3:10.213.0.13 worker1:10.213.0.21)
cat > "$work/inventory.yaml" <<YAML
cluster: hatest
profile: apinizer
loadbalancer: {vip: 10.213.0.100, port: 6443, interface: eth0}
admin_cidrs: [10.213.0.0/24]
nodes:
  - {name: lb1, address: 10.213.0.5, roles: [loadbalancer]}
  - {name: master1, address: 10.213.0.11, roles: [master]}
  - {name: master2, address: 10.213.0.12, roles: [master]}
  - {name: master3, address: 10.213.0.13, roles: [master]}
  - {name: worker1, address: 10.213.0.21, roles: [worker]}
YAML

# A switch namespace with a bridge, one namespace per node wired to it.
sw=$id-sw
ip netns add "$sw"; namespaces+=("$sw")
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
i=0
for entry in "${nodes[@]}"; do
  name=${entry%%:*}; address=${entry#*:}
  ns=$id-$name
  ip netns add "$ns"; namespaces+=("$ns")
  ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns"
  ip -n "$sw" link set "p$i" master br0 up
  ip -n "$ns" addr add "$address/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  i=$((i + 1))
done
ip -n "$id-lb1" addr add 10.213.0.100/24 dev eth0

# Every node behind its generated firewall.
"$pm" firewall --inventory "$work/inventory.yaml" --all --out "$work/nft" --format nftables 2>/dev/null
for entry in "${nodes[@]}"; do
  name=${entry%%:*}
  ip netns exec "$id-$name" nft -f "$work/nft/$name.nft"
done

# The masters: a TLS server answering /healthz and /whoami.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kube-apiserver \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
for name in master1 master2 master3; do
  mkdir -p "$work/$name"
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n' > "$work/$name/healthz"
  printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s\n' "$name" > "$work/$name/whoami"
  (cd "$work/$name" && exec ip netns exec "$id-$name" openssl s_server -quiet -HTTP -accept 6443 \
     -cert "$work/cert.pem" -key "$work/key.pem" >/dev/null 2>&1) &
  pids+=($!)
done

# The load balancer: the generated haproxy.cfg, checked, then run for real.
"$pm" lb --inventory "$work/inventory.yaml" --format haproxy > "$work/haproxy.cfg"
haproxy -c -f "$work/haproxy.cfg" >/dev/null
ip netns exec "$id-lb1" haproxy -db -f "$work/haproxy.cfg" -p "$work/haproxy.pid" >"$work/haproxy.log" 2>&1 &
pids+=($!)

# Worker -> VIP:6443 until every master answered (haproxy marks them up after two checks).
declare -A reached=()
for attempt in $(seq 1 60); do
  who=$(ip netns exec "$id-worker1" curl -sk --max-time 2 https://10.213.0.100:6443/whoami 2>/dev/null || true)
  [ -n "$who" ] && reached[$who]=1
  [ ${#reached[@]} -eq 3 ] && break
  sleep 0.3
done
failed=0
for name in master1 master2 master3; do
  if [ -n "${reached[$name]:-}" ]; then
    echo "ok: worker1 -> VIP:6443 reached $name"
  else
    echo "FAIL: worker1 -> VIP:6443 never reached $name"; failed=$((failed + 1))
  fi
done

# keepalived accepts the generated configuration on the node whose interface it names.
"$pm" lb --inventory "$work/inventory.yaml" --format keepalived --node lb1 > "$work/keepalived.conf"
if ip netns exec "$id-lb1" keepalived --config-test -f "$work/keepalived.conf" >"$work/keepalived.log" 2>&1; then
  echo "ok: keepalived --config-test accepts the generated keepalived.conf"
else
  echo "FAIL: keepalived --config-test rejected the generated keepalived.conf:"; cat "$work/keepalived.log"
  failed=$((failed + 1))
fi

if [ $failed -ne 0 ]; then
  echo "haproxy log:"; cat "$work/haproxy.log"
  echo "haproxy_vip: $((4 - failed)) passed, $failed failed"
  exit 1
fi
echo "haproxy_vip: 4 passed, 0 failed"
