#!/usr/bin/env bash
# The coordinator against many agents (issue 20 item 4): pm_agents serves the
# control protocol for every node of a generated inventory (bench/inventory.py,
# PM_MANY_AGENTS nodes, default 100) in one process, in one namespace whose
# loopback holds 10.0.0.0/8. `check --coverage sample --results failures`
# asks them all: every agent answers, every flow passes, every node's
# evaluation is complete, and the masters' probe requests (larger than the
# 1 MiB an agent accepts) went in parts. A master's requests pass 1 MiB from
# ~600 nodes at the default 8 sampled ports a flow; here 128
# (PM_MANY_AGENTS_SAMPLE_PORTS) make them do so at 100 nodes, in seconds
# (~8 s at load 14 on 2 cores; 600 nodes took 24 s and 385 MB). Prints the
# coordinator's wall time and peak RSS (bench/coverage.sh records them, at
# 250 and 1,000 nodes and the default 8 ports, where parts are not asserted).
#   usage: check_many_agents.sh PORTMATRIX PM_NETPROBE (pm_agents beside it)
source "$(dirname "$0")/check_lib.bash"
ck_init many_agents "$@"
PM_AGENTS=$(dirname "$(realpath "${2:-.}")")/pm_agents
[[ -x $PM_AGENTS ]] || ck_die "no pm_agents beside pm_netprobe (${2:-none given})"
NODES=${PM_MANY_AGENTS:-100}

ns=$CK_PREFIX-many
ck_netns_add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" route add local 10.0.0.0/8 dev lo
INVENTORY=$CK_WORK/inventory.yaml
python3 "$(dirname "$0")/../../bench/inventory.py" "$NODES" >"$INVENTORY"
ck_make_token
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" # a listener and a connection per node, in both processes

ck_spawn pm_agents ip netns exec "$ns" "$PM_AGENTS" "$TOKEN" "$INVENTORY" >"$CK_WORK/agents.out" 2>&1
AGENTS_PID=$CK_PID
for _ in $(seq 600); do
  grep -q "serving" "$CK_WORK/agents.out" && break
  ck_alive "$AGENTS_PID" || ck_die "pm_agents ended: $(cat "$CK_WORK/agents.out")"
  sleep 0.1
done
grep -q "serving $((NODES + 2)) nodes" "$CK_WORK/agents.out" || ck_die "pm_agents: $(cat "$CK_WORK/agents.out")"
ck_log "pm_agents serves $((NODES + 2)) nodes"

# The coordinator, its peak RSS measured by its parent (getrusage of the children).
cat >"$CK_WORK/measure.py" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
PY
CK_JSON=$CK_WORK/many.json
t0=$(ck_now_ms)
python3 "$CK_WORK/measure.py" ip netns exec "$ns" "$PM_BIN" check --inventory "$INVENTORY" --token-file "$TOKEN" \
  --coverage sample --seed 1 --sample-ports "${PM_MANY_AGENTS_SAMPLE_PORTS:-128}" --results failures --deadline 300 --format json --output "$CK_JSON" \
  >"$CK_WORK/measure.out" 2>"$CK_WORK/many.err" || ck_die "the measuring helper failed: $(cat "$CK_WORK/many.err")"
CK_MS=$(($(ck_now_ms) - t0))
read -r rss_kb CK_RC < <(tail -1 "$CK_WORK/measure.out") # after check's table of what failed
CK_CHECK_NAME=many
ck_log "check of $((NODES + 2)) agents: exit $CK_RC in $(ck_secs "$CK_MS"), peak RSS $((rss_kb / 1024)) MB"
echo "many-agents nodes=$((NODES + 2)) wall_ms=$CK_MS rss_kb=$rss_kb" >>"$CK_WORK/many.measure"
[[ -n ${PM_MANY_AGENTS_MEASURE:-} ]] && cp "$CK_WORK/many.measure" "$PM_MANY_AGENTS_MEASURE"
ck_exit_status 0
ck_schema_valid check "$CK_JSON"
ck_summary failed=0 skipped=0

ck_stop "$AGENTS_PID" TERM
out=$(python3 - "$CK_JSON" "$CK_WORK/agents.out" "$NODES" "${PM_MANY_AGENTS_SAMPLE_PORTS:+no}" <<'PY' 2>&1
import json, re, sys
r = json.load(open(sys.argv[1]))
nodes = int(sys.argv[3]) + 2
assert r["results_shown"] == "failures" and r["results"] == [], r["results"][:3]
assert len(r["agents"]) == nodes and all(a["reachable"] and not a["error"] for a in r["agents"]), \
    [a for a in r["agents"] if not a["reachable"] or a["error"]][:3]
c = r["coverage"]
flows = c["flows_full"] + c["flows_sampled"]
assert r["summary"]["passed"] == flows > nodes * nodes // 2, (r["summary"], c)
ev = r["firewall_evaluation"]
assert len(ev) == nodes and all(n["complete"] and n["failed"] == 0 for n in ev), [n for n in ev if not n["complete"]][:3]
counts = open(sys.argv[2]).read()
probes = int(re.search(r"(\d+) probe", counts).group(1))
assert probes >= nodes, f"{probes} probe requests for {nodes} agents ({counts.strip()})"
assert probes > nodes or sys.argv[4] == "no", f"{probes} probe requests for {nodes} agents: nothing was split ({counts.strip()})"
print(f"{flows} flows passed from {nodes} agents; {probes} probe requests (parts) for at most {nodes} sources")
PY
) && ck_ok "$out" || ck_fail "$out"

ck_finish
