#!/usr/bin/env bash
# The floor (bench/floor.cpp) counts what the kernel says, on loopback, no
# root needed: UDP round trips to its own echo responder are all answered;
# TCP connects and UDP datagrams to ports where nothing listens are all
# refused (RST; ICMP port-unreachable, not rate-limited on loopback).
#   usage: floor_test.sh FLOOR
set -euo pipefail
floor=${1:?usage: floor_test.sh FLOOR}
work=$(mktemp -d "${TMPDIR:-/tmp}/pm-floor.XXXXXX")
echo_pid=''
cleanup() {
  [[ -z $echo_pid ]] || { kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
min=$((20000 + RANDOM % 20000))
max=$((min + 63))

expect() { # WHAT EXPECTED-COUNTS OUTPUT
  if [[ $3 == *"$2"* ]]; then echo "ok: $1: $3"; else echo "FAIL: $1: expected $2 in $3"; exit 1; fi
}

"$floor" echo 127.0.0.1 "$min" "$max" --ready-file "$work/ready" &
echo_pid=$!
for ((i = 0; i < 100; i++)); do [[ -s $work/ready ]] && break; sleep 0.05; done
[[ $(cat "$work/ready" 2>/dev/null) == 64 ]] || { echo "FAIL: floor echo did not bind 64 ports"; exit 1; }
expect "udp to the echo" '"open":64,"refused":0,"timeout":0' "$("$floor" udp 127.0.0.1 "$min" "$max" --timeout-ms 2000)"
expect "tcp, nothing listening" '"open":0,"refused":64,"timeout":0' "$("$floor" tcp 127.0.0.1 "$min" "$max" --timeout-ms 2000)"
kill "$echo_pid"
wait "$echo_pid" || { echo "FAIL: floor echo did not exit 0 on SIGTERM"; exit 1; }
echo_pid=''
expect "udp, nothing listening" '"open":0,"refused":64,"timeout":0' "$("$floor" udp 127.0.0.1 "$min" "$max" --timeout-ms 2000)"
rc=0
"$floor" tcp 127.0.0.1 2 1 2>/dev/null || rc=$?
[[ $rc -eq 2 ]] || { echo "FAIL: a range with first > last exited $rc, expected 2"; exit 1; }
echo "ok: a range with first > last exits 2"
