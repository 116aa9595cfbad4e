#!/usr/bin/env bash
# Benchmark items 1-4: one range, one source, one target. Two nodes on a
# bridge, `src` (a master) and `dst` (a worker); a profile whose only
# requirement is master -> worker on BENCH_MIN-BENCH_MAX (default the NodePort
# range 30000-32767) for PROTO, so dst's agent binds exactly that range and
# src's agent probes exactly that range. Every tool runs in src's namespace
# against dst, within each repetition one after the other:
#   tcp  item 1  open:    check, nmap -sT -T4 (whole range), floor tcp
#        item 2  dropped (nft drop in dst's input): check, nmap -sT -T4 on
#                BENCH_NMAP_DROPPED ports (ports/s), floor tcp (one timeout)
#   udp  item 3  open:    check, nmap -sU -T4, floor udp against `floor echo`
#                (a second address of dst: the agent holds dst's own)
#        item 4a dropped (nft drop in dst's input): check, nmap -sU on a subset, floor udp
#        item 4b nothing listening (dst's agent and the echo stopped): check,
#                nmap -sU on BENCH_NMAP_CLOSED ports, floor udp
#   usage: BENCH_OUT=FILE pair.sh tcp|udp PORTMATRIX FLOOR
source "$(dirname "$0")/lib.bash"
PROTO=${1:-}
[[ $PROTO == tcp || $PROTO == udp ]] || { echo "usage: $0 tcp|udp PORTMATRIX FLOOR" >&2; exit 2; }
shift
bench_init "pair-$PROTO" "$@"

NMAP_DROPPED=${BENCH_NMAP_DROPPED:-300}  # ports; nmap needs about a minute for 2,768 dropped
NMAP_CLOSED=${BENCH_NMAP_CLOSED:-40}     # ports; ICMP port-unreachable comes at about 1/s
bench_pair_topology "$PROTO"
ECHO_ADDRESS=$SUBNET.3
ck_make_token
ck_start_agents
for item in $([[ $PROTO == tcp ]] && echo 1 2 || echo 3 4a 4b); do
  bench_note "$item" "the range: $PROTO $MIN-$MAX ($PORTS ports), from src ($SUBNET.1) to dst ($DST)"
done

drop_range() { # in dst's input, before anything else
  ck_in dst nft -f - <<EOF
table inet bench {
  chain input {
    type filter hook input priority -10;
    $PROTO dport $MIN-$MAX drop
  }
}
EOF
}

# BENCH_REPS repetitions of: the check (exit status EXIT, the flow's verdict
# and diagnosis VERDICT DIAGNOSIS, or "-" to take what comes), nmap on the
# first NMAP_PORTS ports of the range, the floor against FLOOR_ADDRESS.
measure() { # ITEM EXIT VERDICT DIAGNOSIS NMAP_PORTS FLOOR_EXPECT FLOOR_ADDRESS NMAP-ARGS...
  local item=$1 exit=$2 verdict=$3 diagnosis=$4 nmap_ports=$5 floor_expect=$6 floor_address=$7 rep
  shift 7
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    bench_check "$item" "$exit"
    [[ $verdict == - ]] || ck_expect "from=src to=dst proto=$PROTO" "$verdict" "$diagnosis" count=1
    bench_nmap "$item" src "$DST" "$MIN-$((MIN + nmap_ports - 1))" "$@"
    bench_floor "$item" src "$floor_expect" "$PROTO" "$floor_address" "$MIN" "$MAX"
  done
  [[ $nmap_ports -eq $PORTS ]] ||
    bench_note "$item" "nmap probes the first $nmap_ports ports of the range only (it needs minutes for all of it); compare ports/s"
}

if [[ $PROTO == tcp ]]; then
  bench_warm_up
  measure 1 0 pass ok "$PORTS" "open=$PORTS" "$DST" -sT -T4
  drop_range
  measure 2 1 fail dropped-by-destination-firewall "$NMAP_DROPPED" "timeout=$PORTS" "$DST" -sT -T4
else
  ip -n "${CK_NS[dst]}" addr add "$ECHO_ADDRESS/24" dev eth0
  ck_spawn "floor echo" ip netns exec "${CK_NS[dst]}" "$FLOOR_BIN" echo "$ECHO_ADDRESS" "$MIN" "$MAX" \
    --ready-file "$CK_WORK/echo.ready" </dev/null >"$CK_WORK/echo.log" 2>&1
  ECHO_PID=$CK_PID
  for ((i = 0; i < 100; i++)); do [[ -s $CK_WORK/echo.ready ]] && break; sleep 0.1; done
  [[ -s $CK_WORK/echo.ready ]] || ck_die "floor echo is not ready: $(cat "$CK_WORK/echo.log")"
  bench_warm_up
  measure 3 0 pass ok "$PORTS" "open=$PORTS" "$ECHO_ADDRESS" -sU -T4
  bench_note 3 "nmap's empty datagrams get no answer from the agent (it answers a nonce only): nmap reports open|filtered, it cannot tell a listener from a drop"
  bench_note 3 "the floor's target is \`floor echo\` on a second address of dst (the agent holds dst's own address)"

  drop_range
  measure 4a 1 fail dropped-by-destination-firewall "$NMAP_DROPPED" "timeout=$PORTS" "$ECHO_ADDRESS" -sU -T4

  ck_in dst nft delete table inet bench
  ck_stop_agent dst
  ck_stop "$ECHO_PID"
  measure 4b 1 - - "$NMAP_CLOSED" "" "$DST" -sU -T4
  bench_note 4b "nothing listens on dst: its agent is stopped, so the check runs without the destination's view (the source's agent still probes every port)"
  bench_note 4b "the kernel rate-limits ICMP port-unreachable (net.ipv4.icmp_ratelimit=$(ck_in dst sysctl -n net.ipv4.icmp_ratelimit) ms, burst 6): nmap waits for it"
fi
ck_finish
