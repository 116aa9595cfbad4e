#!/usr/bin/env bash
# Scenario: the nftables rules portmatrix generates for the guide's topology
# (the demo inventory: 3 masters, 3 workers, lb1 with the VIP, 3 MongoDB,
# 3 Elasticsearch, a client), each applied with `nft -f` in its node's network
# namespace, admit every flow of the matrix and drop what is outside it.
#
# usage: nftables_topology.sh PORTMATRIX PM_NETPROBE   (root; exit 77 = skipped)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apply_rules() { # NAMESPACE FILE
  ip netns exec "$1" nft -f "$2"
}

dump_rules() { # NAMESPACE
  ip netns exec "$1" nft list ruleset | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}

netns_init nftables "nft" "$@"
netns_build_topology
netns_apply_rules nftables .nft
netns_start_listeners
netns_check_flows
netns_finish
