#!/usr/bin/env bash
# Every JSON output that needs no cluster, validated against its schema in
# docs/schema/ (tests/schema/validate.py, python3-jsonschema): ports (the
# matrix, pairs, groups), diff (both ways), preflight (a fixture host, on
# loopback), egress (a loopback-only profile), check (agents that do not
# answer: every flow skipped). The live reports (check, egress, preflight and
# their --ssh forms) are validated by the netns scenarios that produce them.
# Then each schema must refuse a renamed field, so it is strict enough.
#   usage: schemas.sh PORTMATRIX
set -uo pipefail
pm=$1
here=$(cd "$(dirname "$0")" && pwd)
validate=$here/../schema/validate.py
fixtures=$here/../unit/preflight/fixtures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

if ! /usr/bin/python3 -c 'import jsonschema' 2>/dev/null; then
  if [ "${CI:-}" = true ]; then echo "FAIL: python3-jsonschema is not installed (scripts/install-deps.sh)"; exit 1; fi
  echo "skipped: python3-jsonschema is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi

# produce NAME STATUS -- COMMAND...: runs COMMAND, its stdout into $work/NAME.json; expects STATUS.
produce() {
  local name=$1 want=$2; shift 3
  "$@" >"$work/$name.json" 2>"$work/$name.err"; local got=$?
  if [ "$got" -eq "$want" ]; then return 0; fi
  echo "FAIL: $name: exit $got, expected $want: $(head -c 500 "$work/$name.err")"; failed=$((failed + 1)); return 1
}
# valid SCHEMA NAME...: each $work/NAME.json is valid against docs/schema/SCHEMA.schema.json.
valid() {
  local schema=$1 name; shift
  for name in "$@"; do
    if out=$(/usr/bin/python3 "$validate" "$schema" "$work/$name.json" 2>&1); then passed=$((passed + 1)); echo "ok: $out"
    else echo "FAIL: $name against $schema.schema.json:"; echo "$out" | head -20; failed=$((failed + 1)); fi
  done
}
# refused SCHEMA NAME FROM TO: NAME with its first key FROM renamed TO is refused.
refused() {
  local schema=$1 name=$2
  /usr/bin/python3 - "$work/$name.json" "$3" "$4" >"$work/$name.renamed.json" <<'PY'
import json, sys
path, old, new = sys.argv[1:]
def rename(node):
    if isinstance(node, dict):
        if old in node:
            node[new] = node.pop(old)
            return True
        return any(rename(v) for v in node.values())
    if isinstance(node, list):
        return any(rename(v) for v in node)
    return False
doc = json.load(open(path))
if not rename(doc): sys.exit(f"no key {old!r} in {path}")
json.dump(doc, sys.stdout)
PY
  if ! /usr/bin/python3 "$validate" "$schema" "$work/$name.renamed.json" >/dev/null 2>&1; then passed=$((passed + 1))
  else echo "FAIL: $schema.schema.json accepts $name with '$3' renamed '$4'"; failed=$((failed + 1)); fi
}

"$pm" demo --out "$work/demo" --files-only >/dev/null 2>&1
inv=$work/demo/inventory.yaml
printf '%s\n' 'cluster: loop' 'profile: apinizer' 'agent: {control_port: 9}' 'nodes:' \
  '  - {name: m1, address: 127.0.0.1, roles: [master]}' '  - {name: w1, address: 127.0.0.2, roles: [worker]}' \
  '  - {name: lb1, address: 127.0.0.3, roles: [loadbalancer]}' 'loadbalancer: {vip: 127.0.0.100}' >"$work/loop.yaml"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token" && echo >>"$work/token" && chmod 600 "$work/token"

produce matrix 0 -- "$pm" ports --format json
produce doc-matrix 0 -- "$pm" ports --profile apinizer-doc --format json
produce pairs 0 -- "$pm" ports --inventory "$inv" --format json
produce groups 0 -- "$pm" ports --inventory "$inv" --format json --flows groups
# IP protocols without ports (Calico's IP-in-IP, Cilium's ESP): protocol ipip, esp; ports 0.
produce calico 0 -- "$pm" ports --inventory "$here/../golden/cni-calico.yaml" --format json
produce cilium 0 -- "$pm" ports --inventory "$here/../golden/cni-cilium.yaml" --format json
valid ports matrix doc-matrix pairs groups calico cilium
refused ports pairs port_name port
refused ports groups flows pair_count

produce diff 0 -- "$pm" diff apinizer-doc apinizer --format json
produce diff-back 0 -- "$pm" diff apinizer apinizer-doc --format json
valid diff diff diff-back
refused diff diff before previous

# A fixture /proc: 6443 held by kube-apiserver on 0.0.0.0 (identified on m1's 127.0.0.1: loopback only).
produce preflight 1 -- env PORTMATRIX_HOST_ROOT="$fixtures/host-ok" "$pm" preflight --inventory "$work/loop.yaml" --node m1 \
  --no-address-check --mode install --format json
# Running mode: no firewall rule stops w1 -> m1 etcd, scheduler or controller-manager, which apinizer
# denies (issue 17): exit 1, and the report is still valid.
produce preflight-running 1 -- env PORTMATRIX_HOST_ROOT="$fixtures/host-ok" "$pm" preflight --inventory "$work/loop.yaml" \
  --node m1 --no-address-check --mode running --format json
valid preflight preflight preflight-running
refused preflight preflight held holders
refused preflight preflight decision verdict

# Egress on loopback only: a profile whose one host is localhost (refused) and one wildcard (unchecked).
cat >"$work/egress-profile.yaml" <<'YAML'
name: egress-loop
version: "1"
egress:
  - {host: localhost, ports: [9, 80/http], purpose: nothing listens, reason: the schema test}
  - {host: "*.invalid", purpose: a wildcard, reason: unchecked}
YAML
produce egress 1 -- env -u https_proxy -u HTTPS_PROXY -u http_proxy -u HTTP_PROXY "$pm" egress --profile "$work/egress-profile.yaml" \
  --format json --timeout-ms 200 --deadline 5
valid egress egress
refused egress egress elapsed_ms elapsed

# The --ssh forms merge the nodes' reports by node name ({"error": ...} for a node that failed), as
# cli/remote.cpp's merge_json does; here from the reports above (ssh_preflight_egress.sh checks real ones).
merged() { # OUT REPORT: {"m1": REPORT, "w1": {"error": ...}}
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"m1": json.load(open(sys.argv[1])), "w1": {"error": "ssh: connect failed"}}))' \
    "$work/$2.json" >"$work/$1.json"
}
merged preflight-merged preflight && merged egress-merged egress
valid preflight-ssh preflight-merged
valid egress-ssh egress-merged
refused preflight-ssh preflight-merged error failure

# check against agents that are not there: every flow skipped, every agent unreachable.
produce check 1 -- "$pm" check --inventory "$work/loop.yaml" --token-file "$work/token" --deadline 2 --timeout-ms 100 --format json
valid check check
refused check check to_address address
refused check check capture_error capture_problem
# check --coverage sample against the same absent agents (every evaluation not done), and check --estimate.
produce check-sample 1 -- "$pm" check --inventory "$work/loop.yaml" --token-file "$work/token" --deadline 2 --timeout-ms 100 \
  --coverage sample --seed 3 --format json
valid check check-sample
refused check check-sample ports_expected ports_wanted
produce check-estimate 0 -- "$pm" check --inventory "$work/loop.yaml" --estimate --format json
valid check-estimate check-estimate
refused check-estimate check-estimate busiest_probes busiest

# firewall confirm on a node with nothing applied: refused (exit 1), its JSON answer.
produce firewall-confirm 1 -- "$pm" firewall confirm --inventory "$work/loop.yaml" --node m1 --state-dir "$work/state" \
  --root "$work/root" --format json
valid firewall-action firewall-confirm
refused firewall-action firewall-confirm ok done

echo "schemas: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
