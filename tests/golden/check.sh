#!/usr/bin/env bash
# Golden files: every generator's output for tests/golden/inventory.yaml (and
# the profile reports), compared byte for byte with tests/golden/expected/.
# Review a change like code: run with --update, then `git diff tests/golden`.
#   usage: check.sh PORTMATRIX [--update]
set -euo pipefail
pm=$(realpath "$1")
update=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" # the reports name the inventory by the path given: keep it relative
inv=inventory.yaml
expected=$here/expected
actual=$(mktemp -d)
trap 'rm -rf "$actual"' EXIT

run() { # NAME ARGS...: stdout of `portmatrix ARGS` into NAME
  local name=$1; shift
  "$pm" "$@" > "$actual/$name"
}

run ports-apinizer.txt ports
run ports-apinizer-doc.md ports --profile apinizer-doc --format markdown
run ports-apinizer.csv ports --format csv
run ports-apinizer.json ports --format json
run ports-inventory.json ports --inventory "$inv" --format json
run ports-inventory.txt ports --inventory "$inv"
run ports-inventory.md ports --inventory "$inv" --format markdown
run ports-inventory.csv ports --inventory "$inv" --format csv
run ports-inventory-groups.txt ports --inventory "$inv" --flows groups
run ports-inventory-groups.md ports --inventory "$inv" --flows groups --format markdown
run ports-inventory-groups.json ports --inventory "$inv" --flows groups --format json
run ports-inventory-groups.csv ports --inventory "$inv" --flows groups --format csv
run diff-doc-apinizer.txt diff apinizer-doc apinizer
run diff-doc-apinizer.json diff apinizer-doc apinizer --format json
for format in nftables iptables firewalld ufw; do
  for node in master1 worker1 worker6 lb1 mongo1 es1 client1; do
    run "firewall-$node.$format" firewall --inventory "$inv" --node "$node" --format "$format"
  done
done
run haproxy.cfg lb --inventory "$inv" --format haproxy
run lb1.keepalived.conf lb --inventory "$inv" --format keepalived --node lb1
run lb2.keepalived.conf lb --inventory "$inv" --format keepalived --node lb2
run egress.squid egress --inventory "$inv" --format squid
run egress-domains.txt egress --inventory "$inv" --format domains
run egress-doc.squid egress --profile apinizer-doc --format squid
# The apinizer profile's options, all on (issue 17).
opt=inventory-options.yaml
run options-ports-groups.txt ports --inventory "$opt" --flows groups
run options-ports-groups.json ports --inventory "$opt" --flows groups --format json
for node in master1 worker1 lb1; do
  run "options-firewall-$node.nftables" firewall --inventory "$opt" --node "$node" --format nftables
done
run options-firewall-worker1.ufw firewall --inventory "$opt" --node worker1 --format ufw
run options-egress-domains.txt egress --inventory "$opt" --format domains
# Flannel's WireGuard backend with an IPv6 node: 51820 and 51821 (flannel_ipv6 on by default).
wg=inventory-wireguard.yaml
run wireguard-ports-groups.txt ports --inventory "$wg" --flows groups
run wireguard-firewall-worker6.nftables firewall --inventory "$wg" --node worker6 --format nftables
run ports-flannel-0.27.txt ports --profile flannel-0.27
# Network plugins and distributions: each profile alone, one composed, and
# the firewalls of protocols without ports (Calico's IP-in-IP, Cilium's ESP).
for profile in calico-3.29 canal-3.29 cilium-1.16 weave-2.8 rke2-1.31 k3s-1.31 \
  kubernetes-1.29 kubernetes-1.30 kubernetes-1.32; do
  run "ports-$profile.txt" ports --profile "$profile"
done
run ports-rke2-canal.md ports --profile rke2-1.31,canal-3.29 --format markdown
for cni in calico cilium; do
  run "ports-cni-$cni.txt" ports --inventory "cni-$cni.yaml"
  run "ports-cni-$cni.json" ports --inventory "cni-$cni.yaml" --format json
  for format in nftables iptables firewalld ufw; do
    run "firewall-cni-$cni-master1.$format" firewall --inventory "cni-$cni.yaml" --node master1 --format "$format"
  done
  run "firewall-cni-$cni-worker6.nftables" firewall --inventory "cni-$cni.yaml" --node worker6 --format nftables
done

if [ "$update" = --update ]; then
  rm -rf "$expected"
  mkdir -p "$expected"
  cp "$actual"/* "$expected"/
  echo "golden: updated $(ls "$expected" | wc -l) files in $expected"
  exit 0
fi

status=0
for file in "$actual"/*; do
  name=$(basename "$file")
  if [ ! -f "$expected/$name" ]; then
    echo "golden: $name is new (run tests/golden/check.sh PORTMATRIX --update and review)"
    status=1
  elif ! diff -u "$expected/$name" "$file"; then
    echo "golden: $name differs from tests/golden/expected/$name"
    status=1
  fi
done
for file in "$expected"/*; do
  [ -f "$actual/$(basename "$file")" ] || { echo "golden: $(basename "$file") is no longer generated"; status=1; }
done
count=$(ls "$actual" | wc -l)
if [ $status -eq 0 ]; then echo "golden: $count passed, 0 failed"; else echo "golden: files differ"; fi
exit $status
