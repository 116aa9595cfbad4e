#!/usr/bin/env bash
# `portmatrix demo`, end to end, as a user runs it (root): twice.
# 1. As it is: the check's report is exactly the planted fault (master2's
#    firewall drops UDP 8472), the demo says so and exits 0.
# 2. With a second fault it did not plant (master3's firewall also drops TCP
#    10250, inserted from outside once master3's rules are in, before the
#    check starts): the demo says what differs, naming the flows to master3,
#    and exits 1.
# Both times it leaves none of its namespaces behind.
#   usage: demo_live.sh PORTMATRIX [PM_NETPROBE]
set -euo pipefail
source "$(dirname "$0")/skip.bash"
[[ $# -ge 1 && -x $1 ]] || { echo "usage: $0 PORTMATRIX [PM_NETPROBE]" >&2; exit 2; }
pm=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, firewall rules)"
PATH=$PATH:/usr/sbin:/sbin
for tool in ip nft haproxy; do command -v "$tool" >/dev/null || skip "$tool is not installed"; done
ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed (report.json is validated)"

work=$(mktemp -d "${TMPDIR:-/tmp}/pm-demo-live.XXXXXX")
demo_pid=''
cleanup() {
  local rc=$? ns
  trap - EXIT INT TERM
  if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null # the demo removes what it made on SIGTERM
    wait "$demo_pid" 2>/dev/null
  fi
  # Whatever a killed demo left: only its own namespaces (pmdPID-*).
  if [[ -n $demo_pid ]]; then
    for ns in $(ip netns list | awk -v p="pmd$((demo_pid % 100000))-" 'index($1, p) == 1 {print $1}'); do
      ip netns delete "$ns"
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
ok() { echo "[demo_live] ok: $*"; }
bad() { echo "[demo_live] FAIL: $*"; failures=$((failures + 1)); }
has() { # FILE TEXT WHAT
  if grep -qF -- "$2" "$1"; then ok "$3"; else bad "$3: the output lacks '$2'"; fi
}
leftovers() { ip netns list | awk -v p="pmd$((demo_pid % 100000))-" 'index($1, p) == 1' | wc -l; }

# Runs the demo in the background; its output goes to $work/NAME.out.
start_demo() { # NAME [ARGS...]
  "$pm" demo "${@:2}" >"$work/$1.out" 2>&1 </dev/null &
  demo_pid=$!
}
wait_for_line() { # NAME TEXT SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -qF -- "$2" "$work/$1.out" && return 0
    kill -0 "$demo_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
finish_demo() { # NAME: waits for it; sets rc
  rc=0
  wait "$demo_pid" || rc=$?
  sed 's/^/    /' "$work/$1.out" | grep -v '^    [│├└┌─]' | tail -40
  [[ $(leftovers) -eq 0 ]] && ok "$1: no namespace of the demo is left" || bad "$1: $(leftovers) namespace(s) of the demo are left"
  demo_pid=''
}

# 1. The demo as it is, writing every artefact (--out).
start_demo planted --out "$work/out"
finish_demo planted
[[ $rc -eq 0 ]] && ok "planted: exit 0" || bad "planted: exit $rc, expected 0"
has "$work/planted.out" "planting a fault: master2's firewall drops UDP 8472" "planted: says what it plants"
has "$work/planted.out" "the check found exactly the planted fault: the 5 flows to master2 8472/udp fail with dropped-by-destination-firewall" \
  "planted: the verdict names the fault, its flows and its diagnosis"
has "$work/planted.out" "0 skipped" "planted: no flow skipped"
# The terminal report sums the fault up in one line by cause and place, and is short (183 flows).
has "$work/planted.out" "master2 drops 8472/udp from 5 sources: dropped-by-destination-firewall" \
  "planted: the fault is one line, by cause and place"
report_lines=$(sed -n '/^FAIL demo: /,/^FAIL demo: /p' "$work/planted.out" | wc -l)
if ((report_lines >= 3 && report_lines <= 40)); then
  ok "planted: the check's report is $report_lines lines, from its overall line to the same line again"
else
  bad "planted: the check's report is $report_lines lines (expected 3 to 40, opened and closed by 'FAIL demo: ')"
fi
# --out: the inventory, 14 nodes' rules, haproxy.cfg, lb1's keepalived.conf, the report in JSON and HTML.
missing=()
for file in inventory.yaml master2.nft client1.nft haproxy.cfg lb1.keepalived.conf report.json report.html; do
  [[ -s $work/out/$file ]] || missing+=("$file")
done
nft_files=$(find "$work/out" -name '*.nft' | wc -l)
if [[ ${#missing[@]} -eq 0 && $nft_files -eq 14 ]]; then
  ok "planted: --out wrote every artefact ($(ls "$work/out" | wc -l) files, $nft_files rulesets)"
else
  bad "planted: --out lacks ${missing[*]:-nothing} ($nft_files rulesets of 14): $(ls "$work/out" | tr '\n' ' ')"
fi
if out=$(/usr/bin/python3 "$(dirname "$0")/../schema/validate.py" check "$work/out/report.json" 2>&1) &&
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(r["summary"]["failed"] != 5)' "$work/out/report.json"; then
  ok "planted: report.json is the check's report (valid, the 5 failures): $out"
else
  bad "planted: report.json is not the check's report with its 5 failures: $out"
fi
has "$work/out/report.html" "dropped-by-destination-firewall" "planted: report.html holds the fault's diagnosis"
has "$work/out/lb1.keepalived.conf" "virtual_ipaddress" "planted: lb1.keepalived.conf holds the VIP"

# 2. A fault the demo did not plant, put in once master3's rules are applied
#    (the demo plants its own after that line) and before the check starts.
start_demo unplanted
wait_for_line unplanted "planting a fault" 120 || bad "unplanted: the demo never reached its planting step"
ns=pmd$((demo_pid % 100000))-master3
if ip netns exec "$ns" nft insert rule inet portmatrix input tcp dport 10250 drop; then
  grep -qF "running the check" "$work/unplanted.out" && bad "unplanted: the check had started before the second fault was in"
  ok "unplanted: master3 drops tcp 10250 too"
else
  bad "unplanted: cannot add a rule in $ns"
fi
finish_demo unplanted
[[ $rc -eq 1 ]] && ok "unplanted: exit 1" || bad "unplanted: exit $rc, expected 1"
has "$work/unplanted.out" "the check's report differs from the planted fault" "unplanted: says the report differs"
has "$work/unplanted.out" "-> master3 10250/tcp does not cross the planted fault, yet fail" "unplanted: names the flows to master3 10250"
if grep -qF "the check found exactly the planted fault" "$work/unplanted.out"; then
  bad "unplanted: still claims the planted fault alone"
fi

if [[ $failures -eq 0 ]]; then echo "[demo_live] PASS"; exit 0; fi
echo "[demo_live] FAILED: $failures check(s)"
exit 1
