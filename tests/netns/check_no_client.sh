#!/usr/bin/env bash
# Live check, coverage: the inventory has no client node (the demo's, with
# client1 left out; the check still runs in client1's namespace, as an
# admin workstation would, and the agents keep the full inventory). Every
# flow it has passes, but the expect-deny and `any -> worker` requirements
# (from a client) and kubectl from the admin networks (from an admin node)
# have no flow: the JSON lists them under `untested` (no-client-node,
# no-admin-node) and counts them in summary.untested,
# the table warns ("no client node: ... add a host outside the cluster"),
# JUnit skips them; check exits 0, and 1 with --strict (issue 17).
#   usage: check_no_client.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init no_client "$@"

ck_topology
ck_start_cluster
grep -v 'name: client1,' "$INVENTORY" >"$CK_WORK/no-client.yaml"
! grep -q client1 "$CK_WORK/no-client.yaml" || ck_die "cannot write the inventory without client1"

no_client_check() { # NAME [ARGS...]: check from client1's namespace on the inventory without it
  ck_pm_start "$1" "${CK_NS[client1]}" check --inventory "$CK_WORK/no-client.yaml" --token-file "$TOKEN" "${@:2}"
  ck_check_wait
}

no_client_check no_client
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_count "from=client1" 0
if python3 - "$CK_JSON" <<'PY'; then ck_ok "untested: no-client-node, no-admin-node, counted in the summary"; else ck_fail "untested section"; fi
import json, sys
report = json.load(open(sys.argv[1]))
untested = {u["code"]: u for u in report.get("untested", [])}
want = {"no-client-node", "no-admin-node"}
assert set(untested) == want, f"untested codes {sorted(untested)}, expected {sorted(want)}"
client = untested["no-client-node"]
assert "client → master 2379-2380/tcp (etcd)" in client["requirements"], client
assert any(r.startswith("any → worker") for r in client["requirements"]), client
assert "add a host outside the cluster" in client["message"], client["message"]
total = sum(len(u["requirements"]) for u in untested.values())
assert report["summary"]["untested"] == total, (report["summary"], total)
print(client["message"])
PY

no_client_check no_client_table --format table
ck_exit_status 0
if grep -q 'warning: no client node: .* untested; add a host outside the cluster' "$CK_WORK/no_client_table.out"; then
  ck_ok "the table warns: $(grep -m1 'warning: no client node' "$CK_WORK/no_client_table.out")"
else
  ck_fail "the table does not warn about the missing client node: $(tail -5 "$CK_WORK/no_client_table.out")"
fi

no_client_check no_client_junit --format junit
if grep -q '<skipped message="no-client-node: ' "$CK_WORK/no_client_junit.out"; then
  ck_ok "JUnit skips the untested requirements"
else
  ck_fail "JUnit has no skipped testcase for the untested requirements"
fi

no_client_check no_client_strict --strict
ck_exit_status 1

ck_finish
