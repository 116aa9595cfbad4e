#!/usr/bin/env bash
# preflight --ssh and egress --ssh: from the workstation, each runs on every
# node and gives one merged report. JSON: keyed by node, each node's entry
# exactly the report preflight gives when run by hand in that node's
# namespace (but answered_by: on lb1 it says how haproxy, in front of masters
# with nothing on 6443, failed this time), for egress the same verdict for
# every host and port; table: a section per node; JUnit: one testsuite per
# node. The exit status is 1 when a node's report fails, as here by hand (the
# nodes lack br_netfilter and ip_forward; egress finds no resolver). Then
# es2's sshd is stopped: es2's entry is its ssh error ("Connection refused"),
# the others are unchanged, exit 1. Nothing is left on any node. On a
# terminal, the fan-out shows its steps on a live line with their time.
# check --ssh --preflight puts each node's preflight into the check's report.
#   usage: ssh_preflight_egress.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/ssh_lib.bash"
ssh_init preflight_egress "$@"

ssh_topology
ssh_inventory "$CK_WORK/inventory-ssh.yaml"

# By hand, as root in each node's namespace: what the merged reports must hold.
mkdir "$CK_WORK/local"
local_failed=0
for node in "${CK_NODES[@]}"; do
  rc=0
  ck_in "$node" "$PM_BIN" preflight --inventory "$INVENTORY" --node "$node" --format json \
    --output "$CK_WORK/local/preflight-$node.json" >/dev/null 2>&1 || rc=$?
  [[ $rc -le 1 ]] || ck_die "preflight by hand on $node: exit $rc"
  local_failed=$((local_failed | rc))
  ck_in "$node" "$PM_BIN" egress --inventory "$INVENTORY" --format json \
    --output "$CK_WORK/local/egress-$node.json" >/dev/null 2>&1 || [[ $? -eq 1 ]] || ck_die "egress by hand on $node failed"
done
ck_log "preflight by hand: $([[ $local_failed == 1 ]] && echo "some node fails" || echo "every node passes")"

cat >"$CK_WORK/merged.py" <<'PY'
# Checks of a merged --ssh report against the reports made by hand.
import json, sys
import xml.etree.ElementTree as ET
what, path, local, nodes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def verdicts(report): return sorted((r["host"], r["port"], r["scheme"], r["verdict"]) for r in report["results"])
def steady(value):
    """A report without answered_by: on lb1 it says how haproxy, in front of
    masters with nothing on 6443, failed this time (a timeout or an EOF)."""
    if isinstance(value, dict): return {k: steady(v) for k, v in value.items() if k != "answered_by"}
    if isinstance(value, list): return [steady(v) for v in value]
    return value
bad = []
if what in ("preflight", "egress"):
    merged = json.load(open(path))
    if sorted(merged) != sorted(nodes): bad.append(f"keys {sorted(merged)}")
    for node in nodes:
        mine = json.load(open(f"{local}/{what}-{node}.json"))
        theirs = merged.get(node, {})
        same = steady(theirs) == steady(mine) if what == "preflight" else "results" in theirs and verdicts(theirs) == verdicts(mine)
        if not same: bad.append(f"{node}: {json.dumps(theirs)[:300]}")
    print(f"{len(merged)} nodes" + ("" if bad else f", each as by hand"))
elif what == "error":  # LOCAL is "NODE=TEXT": that node's entry is an error holding TEXT
    node, _, text = local.partition("=")
    entry = json.load(open(path)).get(node, {})
    if text not in entry.get("error", ""): bad.append(f"{node}: {json.dumps(entry)[:300]}")
    print(f"{node}: {entry.get('error', '')[:160]}")
elif what == "check-preflight":  # check --ssh --preflight: each node's preflight in the check's report
    merged = json.load(open(path)).get("preflight", {})
    if sorted(merged) != sorted(nodes): bad.append(f"preflight keys {sorted(merged)}")
    for node in nodes:
        mine = json.load(open(f"{local}/preflight-{node}.json"))
        theirs = merged.get(node, {})
        kernel = lambda r: [(k["check"], k["status"]) for k in r.get("kernel", [])]
        if theirs.get("mode") != "running" or not kernel(mine) or kernel(theirs) != kernel(mine):
            bad.append(f"{node}: {json.dumps(theirs)[:300]}")
    print(f"{len(merged)} nodes, each in running mode with the kernel checks found by hand")
elif what == "junit":  # LOCAL is the suffix of the suites' names
    suites = [s.get("name") for s in ET.parse(path).getroot().iter("testsuite")]
    if suites != [n + local for n in nodes]: bad.append(f"testsuites {suites}")
    print(f"{len(suites)} testsuites: {', '.join(suites[:3])}, ...")
if bad:
    print("\n".join(bad[:10]))
    sys.exit(1)
PY
merged() { # DESCRIPTION WHAT REPORT LOCAL NODE...
  local what=$1 out rc=0
  shift
  out=$(python3 "$CK_WORK/merged.py" "$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then ck_ok "$what: $out"; else ck_fail "$what"; printf '%s\n' "$out" | sed 's/^/    /'; fi
}

# 1. preflight --ssh: JSON, table, JUnit.
ssh_pm preflight "$SSH_WS" preflight
ck_exit_status "$local_failed"
merged "preflight --ssh JSON: a report per node, each exactly as by hand" preflight "$CK_JSON" "$CK_WORK/local" "${CK_NODES[@]}"
ssh_pm preflight-table "$SSH_WS" preflight --format table
ck_exit_status "$local_failed"
sections=$(grep '^== .* ==$' "$CK_WORK/preflight-table.out" | tr -d '= ' | tr '\n' ' ')
if [[ $sections == "${CK_NODES[*]} " ]]; then
  ck_ok "preflight --ssh table: a section per node, in inventory order"
else
  ck_fail "preflight --ssh table: sections '$sections'"
fi
ssh_pm preflight-junit "$SSH_WS" preflight --format junit --output "$CK_WORK/preflight.xml"
ck_exit_status "$local_failed"
merged "preflight --ssh JUnit: one testsuite per node" junit "$CK_WORK/preflight.xml" "" "${CK_NODES[@]}"

# 2. egress --ssh: JSON, JUnit.
ssh_pm egress "$SSH_WS" egress
ck_exit_status 1
merged "egress --ssh JSON: a report per node, the same verdicts as by hand" egress "$CK_JSON" "$CK_WORK/local" "${CK_NODES[@]}"
ssh_pm egress-junit "$SSH_WS" egress --format junit --output "$CK_WORK/egress.xml"
ck_exit_status 1
merged "egress --ssh JUnit: one testsuite per node" junit "$CK_WORK/egress.xml" ".egress" "${CK_NODES[@]}"
# 2b. check --ssh --preflight: each node's preflight (running mode) in the check's report; the check still passes.
ssh_pm check-preflight "$SSH_WS" check --preflight
ck_exit_status 0
merged "check --ssh --preflight: the report holds each node's preflight" check-preflight "$CK_JSON" "$CK_WORK/local" "${CK_NODES[@]}"

# On a terminal, the fan-out's live line on stderr: each step, nodes done of all, the rate, the time since the start.
tty_command=$(printf '%q ' ip netns exec "$SSH_WS" "$PM_BIN" preflight --inventory "$SSH_INVENTORY" --ssh --format junit \
  --output "$CK_WORK/preflight-tty.xml")
rc=0
timeout 120 script -qec "$tty_command" /dev/null </dev/null >"$CK_WORK/preflight-tty.out" 2>&1 || rc=$?
steps=$(tr '\r' '\n' <"$CK_WORK/preflight-tty.out" | grep -Ec "^.\[Kssh: [0-9]+/${#CK_NODES[@]} nodes (connected|installed), [0-9]+\.[0-9] nodes/s, [0-9]+\.[0-9] s$")
if [[ $rc -eq $local_failed && $steps -ge ${#CK_NODES[@]} ]]; then
  ck_ok "preflight --ssh on a terminal: $steps progress lines ('$(tr '\r' '\n' <"$CK_WORK/preflight-tty.out" | grep -a 'nodes connected' | tail -1 | sed 's/\x1b\[K//')')"
else
  ck_fail "preflight --ssh on a terminal: exit $rc, $steps progress lines: $(tr '\r' '\n' <"$CK_WORK/preflight-tty.out" | head -c 400)"
fi
ssh_nothing_left "after preflight and egress"

# 3. One node unreachable: its entry is ssh's error, the others as before.
ssh_stop_sshd es2
ssh_pm preflight-es2 "$SSH_WS" preflight
ck_exit_status 1
merged "es2's entry is its ssh error" error "$CK_JSON" "es2=Connection refused"
others=()
for node in "${CK_NODES[@]}"; do [[ $node == es2 ]] || others+=("$node"); done
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); r.pop("es2", None); json.dump(r, open(sys.argv[2], "w"))' \
  "$CK_JSON" "$CK_WORK/preflight-others.json"
merged "the other nodes' entries as by hand" preflight "$CK_WORK/preflight-others.json" "$CK_WORK/local" "${others[@]}"
ssh_no_run_files

ck_finish
