#!/usr/bin/env bash
# Preflight reads the node's live nftables ruleset: a rule that drops TCP
# 10250 before anything accepts it. Every required flow to 10250 (from the
# other master and worker) is `drop` and names that rule; the other flows are
# accepted (policy accept). The kernel check fails naming net.ipv4.ip_forward
# while it is 0 in the namespace, and passes once it is 1.
#   usage: preflight_firewall.sh PORTMATRIX PM_NETPROBE
set -euo pipefail
source "$(dirname "$0")/preflight_lib.bash"
pf_init firewall "$@"

ip netns exec "$NODE_NS" nft -f - <<'NFT'
table inet pfcheck {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 10250 counter drop comment "no kubelet"
		tcp dport 10250 accept
	}
}
NFT
ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=0

pf_run drop --mode install
pf_expect "preflight fails" "$PF_STATUS" 1
pf_expect "backend" "$(pf_query drop "r['firewall']['backend']")" nftables
KUBELET='[x for x in r["firewall"]["results"] if x["protocol"] == "tcp" and x["port_min"] <= 10250 <= x["port_max"]]'
pf_expect "10250 flows from master2 and worker2" "$(pf_query drop "sorted({x['from'] for x in $KUBELET if x['expect'] == 'allow'})")" "['master2', 'worker2']"
pf_expect "every 10250 flow is dropped" "$(pf_query drop "sorted({x['decision'] for x in $KUBELET})")" "['drop']"
pf_expect "the deciding rule" "$(pf_query drop "sorted({x['rule'] for x in $KUBELET})")" \
  "['inet pfcheck input #2: tcp dport 10250 drop comment \"no kubelet\"']"
pf_expect "other flows accepted by the policy" \
  "$(pf_query drop "sorted({(x['decision'], x['rule']) for x in r['firewall']['results'] if x not in $KUBELET})")" \
  "[('accept', 'inet pfcheck input policy accept')]"
pf_expect "the NodePort range is one result (from master2)" \
  "$(pf_query drop "[x['from'] for x in r['firewall']['results'] if x['protocol'] == 'udp' and x['port_min'] <= 31000 <= x['port_max']]")" "['master2']"
pf_expect "... covering the whole range" \
  "$(pf_query drop "[(x['port_min'], x['port_max']) for x in r['firewall']['results'] if x['protocol'] == 'udp' and x['port_min'] <= 31000 <= x['port_max']]")" "[(30000, 32767)]"
pf_expect "ip_forward fails" "$(pf_query drop "[k['status'] for k in r['kernel'] if k['check'] == 'net.ipv4.ip_forward']")" "['fail']"
grep -q "net.ipv4.ip_forward.*is 0, must be 1" "$WORK/drop.txt" || fail "the table names ip_forward: $(cat "$WORK/drop.txt")"

ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$NODE_NS" nft delete table inet pfcheck
pf_run open --mode install
pf_expect "exit 1 exactly when a check failed" "$PF_STATUS" "$(pf_query open "1 if r['summary']['failed'] else 0")"
pf_expect "ip_forward passes once set" "$(pf_query open "[k['status'] for k in r['kernel'] if k['check'] == 'net.ipv4.ip_forward']")" "['pass']"
pf_expect "without rules every flow is accepted" "$(pf_query open "sorted({x['decision'] for x in r['firewall']['results']})")" "['accept']"
pf_expect "no firewall failures" "$(pf_query open "sum(1 for x in r['firewall']['results'] if x['status'] == 'fail')")" 0

# Everything in order: no rule in the way, the kernel as the fixture host-ok
# has it (modules loaded, ip_forward 1, no swap; PORTMATRIX_HOST_ROOT), its
# two listeners info in running mode: exit 0.
PORTMATRIX_HOST_ROOT=$(cd "$(dirname "$0")/../unit/preflight/fixtures/host-ok" && pwd) pf_run all-ok --mode running
pf_expect "nothing fails: exit 0" "$PF_STATUS" 0
pf_expect "... and the report agrees" "$(pf_query all-ok "r['summary']['failed']")" 0

netns_finish
