#!/usr/bin/env bash
# check --egress: the agent on a node runs the egress check from that node
# and check reports it per node. One node (node1, in the client namespace)
# runs `portmatrix agent` with the test CA as its trust store; `check
# --egress` asks it over the control channel, first with the agent's own
# (empty) proxy environment, then with the inventory's egress proxy.
# The egress verdicts are asserted from check's JSON (`egress[].results`).
# See egress_lib.bash for the hosts.
#   usage: egress_check_agents.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/egress_lib.bash"
eg_init check "$@"
eg_setup

TOKEN=$WORK/token
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN"
chmod 600 "$TOKEN"
# eg_agent INVENTORY: starts the agent of node1 with that inventory; its pid becomes $AGENT.
eg_agent() {
  netns_spawn "agent node1" ip netns exec "$CLIENT" env SSL_CERT_FILE="$WORK/pki/ca.crt" SSL_CERT_DIR=/nonexistent \
    "$PM_BIN" agent --inventory "$1" --node node1 --token-file "$TOKEN" </dev/null >"$WORK/agent.log" 2>&1
  AGENT=$LAST_PID
  for ((i = 0; i < 100; i++)); do
    grep -q "control on" "$WORK/agent.log" && break
    netns_alive "$AGENT" || die "the agent exited: $(cat "$WORK/agent.log")"
    sleep 0.1
  done
  grep -q "control on" "$WORK/agent.log" || die "the agent did not start its control server: $(cat "$WORK/agent.log")"
}
eg_agent "$WORK/inventory.yaml"

# check --egress from the node's namespace; the egress results of node1 become $EG_RESULTS.
eg_check() { # NAME [ARGS...]
  local name=$1 t0
  shift
  t0=$(now_ms)
  EG_RC=0
  EG_JSON=$WORK/$name.json
  ip netns exec "$CLIENT" "$PM_BIN" check --inventory "${EG_INVENTORY:-$WORK/inventory.yaml}" --token-file "$TOKEN" --egress \
    --timeout-ms 500 --deadline 10 --egress-deadline "${EG_EGRESS_DEADLINE:-10}" --format json --output "$EG_JSON" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || EG_RC=$?
  [[ -s $EG_JSON ]] || die "$name: no report (exit $EG_RC): $(cat "$WORK/$name.err")"
  log "$name: exit $EG_RC in $(seconds_since "$t0")"
  netns_schema_valid check "$EG_JSON" ||
    eg_fail "$EG_JSON does not match docs/schema/check.schema.json"
  sed -n '/^Egress/,$p' "$WORK/$name.out" | sed 's/^/    /'
  EG_RESULTS=$WORK/$name.results
  python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
nodes = report.get("egress", [])
assert [n["node"] for n in nodes] == ["node1"], nodes
assert nodes[0]["error"] == "", nodes[0]["error"]
for r in nodes[0]["results"]:
    print(r["host"], r["port"], r["verdict"], "proxy" if r["proxy"] else "direct", r["detail"])
' "$EG_JSON" >"$EG_RESULTS" || die "$name: the report has no egress results for node1"
}

eg_check direct
eg_exit_status 1
eg_expect good.test 443 ok direct
eg_expect plain.test 80 ok direct
eg_expect wrongname.test 443 tls-name-mismatch direct
eg_expect untrusted.test 443 tls-untrusted direct
eg_expect refused.test 443 refused direct
eg_expect dropped.test 443 timeout direct
eg_expect nxdomain.test 443 dns-failure direct
eg_absent removed.test

# The proxy comes from the inventory (egress: proxy, no_proxy): the agent
# reads it at start, and a request cannot name one.
kill "$AGENT" && netns_reap "$AGENT"
EG_INVENTORY=$WORK/inventory-proxied.yaml
sed "s|^egress:|egress:\n  proxy: http://pmuser:pmpass@198.18.0.3:$EG_PROXY_PORT\n  no_proxy: good-mirror.test|" \
  "$WORK/inventory.yaml" >"$EG_INVENTORY"
eg_agent "$EG_INVENTORY"
eg_check proxied
eg_exit_status 1
eg_expect good.test 443 ok proxy
eg_expect denied.test 443 proxy-denied proxy
eg_expect good-mirror.test 443 ok direct

# The egress round's own budget: with a resolver that never answers (its
# retries take 10 s), --egress-deadline 3 ends the round, every host a
# dns-failure, and the report says how long the round took. The agent runs
# on the inventory without a proxy again, so every host is looked up.
kill "$AGENT" && netns_reap "$AGENT"
EG_INVENTORY=$WORK/inventory.yaml
eg_agent "$EG_INVENTORY"
eg_silent_resolver
EG_EGRESS_DEADLINE=3 eg_check silent-dns
eg_exit_status 1
eg_expect good.test 443 dns-failure direct
eg_expect plain.test 80 dns-failure direct
ROUND_MS=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rounds_ms"]["egress"])' "$EG_JSON")
if [[ $ROUND_MS -lt 8000 ]]; then
  eg_ok "the egress round took ${ROUND_MS}ms with --egress-deadline 3"
else
  eg_fail "the egress round took ${ROUND_MS}ms with --egress-deadline 3: not bounded by it"
fi

netns_alive "$AGENT" && eg_ok "the agent still runs" || eg_fail "the agent died: $(tail -5 "$WORK/agent.log")"
eg_finish
