#!/usr/bin/env bash
# Live check, coverage sample (issue 20 item 4): every pair is probed, every
# port only between one representative pair per pair of ruleset groups, and
# every agent evaluates its live firewall for every port of every inbound
# flow. Then worker3 (never a representative destination) drops one NodePort
# port that no sample of this seed probes, planted after the agents started:
# the probes miss it, the evaluation (which reads the firewall per request)
# names it and its rule, and the check exits 1.
#   usage: check_coverage_sample.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init coverage_sample "$@"

ck_topology
ck_start_cluster

SAMPLE=(--coverage sample --seed 7 --sample-ports 8)
ck_check healthy "${SAMPLE[@]}"
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
out=$(python3 - "$CK_JSON" <<'PY' 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
c = r["coverage"]
assert c["mode"] == "sample" and c["seed"] == 7 and c["sample_ports"] == 8, c
assert c["flows_sampled"] > 0 and c["flows_full"] > 0 and c["group_pairs_full"] > 0, c
assert c["flows_full"] + c["flows_sampled"] == len(r["results"]), c
assert c["ports_probed"] < c["ports_required"], c
nodeport = [x for x in r["results"] if x["to"] == "worker3" and x["protocol"] == "tcp" and x["port_min"] == 30000]
assert nodeport, "no NodePort flow to worker3"
for x in nodeport:
    sampled = x.get("ports_sampled")
    assert sampled and sampled[0].startswith("30000") and sampled[-1].endswith("32767"), x
ev = r["firewall_evaluation"]
assert len(ev) == len(r["agents"]), ev
for n in ev:
    assert n["complete"] and n["failed"] == 0 and n["ports"] == n["ports_expected"], n
print(f'{c["flows_full"]} flows on every port ({c["group_pairs_full"]} group pairs), {c["flows_sampled"]} sampled; '
      f'{sum(n["ports"] for n in ev)} ports evaluated on {len(ev)} nodes')
PY
) && ck_ok "coverage and evaluation: $out" || ck_fail "coverage and evaluation: $out"

# A NodePort port no sample to worker3 holds (the same seed draws the same ports).
PORT=$(python3 - "$CK_JSON" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
taken = set()
for x in r["results"]:
    if x["to"] == "worker3" and x["protocol"] == "tcp" and x["port_min"] == 30000:
        for s in x["ports_sampled"]:
            a, _, b = s.partition("-")
            taken.update(range(int(a), int(b or a) + 1))
print(next(p for p in range(31000, 32767) if p not in taken))
PY
)
ck_log "worker3 drops tcp $PORT"
ck_in worker3 nft insert rule inet portmatrix input tcp dport "$PORT" drop

ck_check fault "${SAMPLE[@]}"
ck_exit_status 1
ck_report_valid
ck_summary failed=0 skipped=0
out=$(python3 - "$CK_JSON" "$PORT" <<'PY' 2>&1
import json, sys
r, port = json.load(open(sys.argv[1])), int(sys.argv[2])
ev = {n["node"]: n for n in r["firewall_evaluation"]}
w = ev["worker3"]
assert w["complete"] and w["failed"] >= 3, w
hits = [f for f in w["failures"] if f["port_min"] <= port <= f["port_max"] and f["protocol"] == "tcp"]
assert hits and all(f["decision"] == "drop" and f["expect"] == "allow" for f in hits), w["failures"]
assert any(f'dport {port} drop' in f["rule"] for f in hits), hits
assert {f["from"] for f in hits} >= {"master1", "master2", "master3"}, hits
for name, n in ev.items():
    assert name == "worker3" or n["failed"] == 0, n
print(f'{w["failed"]} ports failing on worker3, e.g. {hits[0]["from"]}: {hits[0]["rule"]}')
PY
) && ck_ok "the evaluation names the dropped port the probes missed: $out" || ck_fail "evaluation: $out"

ck_check table "${SAMPLE[@]}" --format table
ck_exit_status 1
if grep -q "firewall coverage: 14 of 14 nodes evaluated on every port" "$CK_WORK/table.out" &&
  grep -q "coverage sample (seed 7, 8 random ports a flow): path coverage for every pair" "$CK_WORK/table.out" &&
  grep -q "worker3 .*fail .*master1 .*$PORT/tcp .*drop" "$CK_WORK/table.out"; then
  ck_ok "the table states both coverages and the failing rule"
else
  ck_fail "the table lacks a coverage statement: $(tail -c 1500 "$CK_WORK/table.out")"
fi

ck_finish
