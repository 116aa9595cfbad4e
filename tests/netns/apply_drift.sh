#!/usr/bin/env bash
# firewall status --ssh: drift by meaning. The nodes run the generated rules
# (the topology applies them): worker1 in sync (exit 0). A rule added by
# hand at the top of portmatrix's input chain on worker1 drops 10250/tcp
# from the masters: status names that rule as deciding the required flows
# master1..3 -> worker1 10250/tcp (required-dropped) and says the table was
# edited, exit 1. A table of the host's own on worker2 that also filters
# input (iptables: a chain of its own jumped to from INPUT) is listed under
# other filters, and worker2 stays in sync. --node and --role select the nodes reported.
#   usage: apply_drift.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
APPLY_NODES=(worker1 worker2 worker3) # the nodes given the backend's rules (iptables, ufw, firewalld); the others keep nftables
apply_init apply_drift "$@"
apply_inventory "$CK_WORK/inventory-drift.yaml"

apply_pm in-sync status --node worker1
ck_exit_status 0
[[ $(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(sorted(r), r["worker1"]["in_sync"])' "$CK_JSON") == "['worker1'] True" ]] &&
  ck_ok "--node worker1: only worker1 reported, in sync" || ck_fail "status --node worker1: $(head -c 400 "$CK_JSON")"

apply_hand_drop worker1 || ck_die "cannot add the rule by hand on worker1"
apply_host_own worker2 || ck_die "cannot add the host's own table on worker2"
apply_pm drift status --role worker
ck_exit_status 1
cat >"$CK_WORK/drift.py" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = []
if sorted(r) != ["worker1", "worker2", "worker3"]: bad.append(f"nodes {sorted(r)}")
w1 = r["worker1"]
dropped = [f["flow"] for f in w1["findings"] if f["kind"] == "required-dropped"]
tcp10250 = sorted(f["from"] for f in dropped if f["protocol"] == "tcp" and f["port_min"] <= 10250 <= f["port_max"])
if w1["in_sync"] or tcp10250 != ["master1", "master2", "master3"]: bad.append(f"worker1 required-dropped 10250 from {tcp10250}")
rules = {f["rule"] for f in dropped}
if not rules or not all("10250" in x and "drop" in x.lower() for x in rules): bad.append(f"deciding rules {rules}")
# ufw: a rule added with ufw is one of the host's own, not an edit of portmatrix's.
if sys.argv[2] != "ufw" and not any(f["kind"] == "table-edited" for f in w1["findings"]): bad.append("no table-edited finding")
w2 = r["worker2"]
if not w2["in_sync"] or not any("hostown" in o for o in w2["other_filters"]): bad.append(f"worker2 {json.dumps(w2)[:300]}")
if not r["worker3"]["in_sync"]: bad.append("worker3 not in sync")
print("; ".join(bad) if bad else f"worker1: {len(dropped)} required flows dropped by {sorted(rules)[0]}; worker2 other filter: {w2['other_filters'][0][:80]}")
sys.exit(1 if bad else 0)
PY
if out=$(python3 "$CK_WORK/drift.py" "$CK_JSON" "$APPLY_BACKEND"); then ck_ok "$out"; else ck_fail "$out"; fi
apply_pm drift-table status --node worker1 --format table
ck_exit_status 1
grep -q 'required-dropped: master1 -> 10.213.0.21 tcp/10250' "$CK_WORK/drift-table.out" &&
  ck_ok "table: $(grep -m1 'required-dropped: master1' "$CK_WORK/drift-table.out" | cut -c1-160)" ||
  ck_fail "table report: $(head -c 600 "$CK_WORK/drift-table.out")"

ck_finish
