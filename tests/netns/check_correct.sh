#!/usr/bin/env bash
# Live check, correct topology: the demo cluster with every node behind its
# generated nftables firewall, haproxy on lb1 with the generated haproxy.cfg
# and an agent on every node. `portmatrix check` from client1 passes every
# flow, reaches all three masters through the VIP, exits 0; its junit output
# is valid XML with one testcase per result, its html output one well-nested
# page with a row per result, and its table format exits 0.
#   usage: check_correct.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init correct "$@"

ck_topology
ck_start_cluster

ck_check correct
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_others_pass
ck_backends "to=vip port=6443" master1,master2,master3
ck_backends "to=vip port=30080" worker1,worker2,worker3
ck_backends "to=vip port=32080" worker1,worker2,worker3
ck_expect "expect=deny" pass closed
ck_agents_ok
# Every agent ran that check under its seccomp filter, with two capabilities.
ck_agents_confined master1 worker1 lb1
JSON_REPORT=$CK_JSON

# junit: valid XML, one testcase per result of the JSON report, none failing.
ck_check junit --format junit --output "$CK_WORK/junit.xml"
ck_exit_status 0
ck_assert_py "junit output is valid XML with one testcase per result" junit "$CK_WORK/junit.xml" "$JSON_REPORT"

# html: one self-contained page, a row per result of the JSON report.
ck_check html --format html --output "$CK_WORK/report.html"
ck_exit_status 0
ck_assert_py "html output is well nested with one row per result" html "$CK_WORK/report.html" "$JSON_REPORT"

# table, on stdout.
ck_check table --format table
ck_exit_status 0
# The overall line opens and closes the table; nothing failed, so nothing is listed per flow.
first=$(head -1 "$CK_WORK/table.out")
if [[ $first =~ ^PASS\ [^:]+:\ [0-9]+\ passed,\ 0\ failed,\ 0\ skipped ]] && [[ $(tail -1 "$CK_WORK/table.out") == "$first" ]] &&
  ! grep -q "^Failures\|^Untested" "$CK_WORK/table.out"; then
  ck_ok "table: $first (top and bottom)"
else
  ck_fail "table output lacks the overall line at top and bottom: $(head -2 "$CK_WORK/table.out"); $(tail -2 "$CK_WORK/table.out")"
fi

ck_finish
