#!/usr/bin/env bash
# firewall apply --ssh --role worker with rules that keep the cluster working
# (a second admin CIDR): the canary worker1 first, then the group of the
# other workers; each confirmed after a new ssh login and a passing check of
# its flows. Asserted: exit 0, every worker confirmed in that order, the new
# rules live on each, no rollback process left, the boot-time files written
# under the run's root (nftables: the ruleset and the include line in
# etc/nftables.conf; iptables: etc/iptables/rules.v4, rules.v6 and ipsets;
# ufw: its own user.rules),
# no other node touched; then `firewall status --ssh --role worker`
# finds them in sync (exit 0).
#   usage: apply_confirmed.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
APPLY_NODES=(worker1 worker2 worker3) # the nodes given the backend's rules (iptables, ufw, firewalld); the others keep nftables
apply_init apply_confirmed "$@"

apply_inventory "$CK_WORK/inventory-confirmed.yaml" \
  's|^admin_cidrs: \[10.213.0.0/24\]|admin_cidrs: [10.213.0.0/24, 10.213.9.0/24]|'
before_master=$(apply_ruleset master1)

apply_pm confirmed apply --role worker --confirm-timeout 60 --deadline 20
ck_exit_status 0
waves=$(python3 -c 'import json, sys
nodes = json.load(open(sys.argv[1]))["nodes"]
print(" ".join("%s=%s/%s" % (n, v["state"], v["wave"]) for n, v in nodes.items()))' "$CK_JSON")
if [[ $waves == "worker1=confirmed/canary worker1 worker2=confirmed/group worker worker3=confirmed/group worker" ]]; then
  ck_ok "canary worker1, then the group of workers, each confirmed: $waves"
else
  ck_fail "the rollout: $waves"
fi
for node in worker1 worker2 worker3; do
  grep -q '10.213.9.0/24' <<<"$(apply_ruleset "$node")" || ck_fail "$node does not run the new rules"
  [[ $(apply_state_of "$node") == confirmed ]] || ck_fail "$node's state: $(apply_state_of "$node")"
done
ck_ok "the new rules live on worker1..3, each state confirmed"
left=$(for node in worker1 worker2 worker3; do apply_rollback_processes "$node"; done)
[[ -z $left ]] && ck_ok "no rollback process left on the workers" || ck_fail "rollback processes left: $left"
if apply_persisted worker3 10.213.9.0/24; then
  ck_ok "persisted: the new rules in the $APPLY_BACKEND boot-time files under the run's root"
else
  ck_fail "boot-time files: $(find "$APPLY_ROOT" -type f | tr '\n' ' ')"
fi
[[ $(apply_ruleset master1) == "$before_master" ]] && ck_ok "master1 (not selected) untouched" || ck_fail "master1's ruleset changed"

apply_pm status status --role worker
ck_exit_status 0
sync=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(" ".join("%s=%s" % (n, v.get("in_sync")) for n, v in r.items()))' "$CK_JSON")
[[ $sync == "worker1=True worker2=True worker3=True" ]] && ck_ok "status: $sync" || ck_fail "status: $sync"

ck_finish
