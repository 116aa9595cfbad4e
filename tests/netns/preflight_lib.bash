# shellcheck shell=bash
# Shared by the preflight scenarios (tests/netns/preflight_*.sh): one
# namespace holds node1's address (node1 is master and worker, so it must
# receive 6443/tcp and the NodePort range), preflight runs inside it and its
# JSON report is queried with python3. Cleanup is lib.sh's trap.
source "$(dirname "$0")/lib.sh"

# pf_init NAME PORTMATRIX PM_NETPROBE: skips unless root with ip, nft, python3;
# writes the inventory, creates the node's namespace with its address up.
pf_init() {
  local name=$1
  shift
  netns_init "preflight-$name" "nft python3" "$@"
  NODE_NS=$PREFIX-node1
  NODE_ADDRESS=10.219.0.11
  netns_add "$NODE_NS" || die "cannot create $NODE_NS"
  ip -n "$NODE_NS" link set lo up
  # A veth pair with both ends inside: the namespace is deleted with them.
  ip -n "$NODE_NS" link add eth0 type veth peer name eth1
  ip -n "$NODE_NS" addr add "$NODE_ADDRESS/24" dev eth0
  ip -n "$NODE_NS" link set eth0 up
  ip -n "$NODE_NS" link set eth1 up
  INVENTORY=$WORK/inventory.yaml
  cat >"$INVENTORY" <<YAML
cluster: preflight
profile: apinizer
nodes:
  - {name: node1, address: $NODE_ADDRESS, roles: [master, worker]}
  - {name: master2, address: 10.219.0.12, roles: [master]}
  - {name: worker2, address: 10.219.0.22, roles: [worker]}
YAML
}

# pf_run NAME ARGS...: preflight in the node's namespace, JSON into $WORK/NAME.json
# (validated against docs/schema/preflight.schema.json); sets PF_STATUS to its exit status.
pf_run() {
  local name=$1
  shift
  PF_STATUS=0
  ip netns exec "$NODE_NS" "$PM_BIN" preflight --inventory "$INVENTORY" --node node1 --format json \
    --output "$WORK/$name.json" "$@" >"$WORK/$name.txt" 2>&1 || PF_STATUS=$?
  log "preflight $*: exit $PF_STATUS"
  if [[ -e $WORK/$name.json ]] && ! netns_schema_valid preflight "$WORK/$name.json"; then
    fail "$name.json does not match docs/schema/preflight.schema.json"
  fi
  return 0
}

# pf_query NAME PYTHON_EXPRESSION: prints the expression over the report `r`.
pf_query() {
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$WORK/$1.json"
}

# pf_expect WHAT ACTUAL EXPECTED
pf_expect() {
  if [[ $2 == "$3" ]]; then log "ok: $1"; else fail "$1: got '$2', expected '$3'"; fi
}
