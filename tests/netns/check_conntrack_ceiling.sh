#!/usr/bin/env bash
# Live check on a running node: the probes leave room in each node's
# conntrack table for its live connections. With --conntrack-ceiling 1 (1%
# of the host's nf_conntrack_max) every agent holds its probes back whenever
# its namespace's table is that full, and goes on as entries expire (10 s for
# a reset TCP connection, 30 s for unanswered UDP). The masters probe the
# workers' NodePort ranges (16,608 probes each), far more than 1% of the
# table: while the check runs, master1's table is sampled and must stay near
# the ceiling (a reading every 20 ms lets a few hundred probes past it, and
# other nodes' probes to master1 add theirs), where it reaches about 17,000
# entries without the ceiling. The check ends within its deadline; the
# masters' notes say how long they held back and how full the table was, and
# their "still probing" errors point there, not to --deadline; the ports they
# had not probed are skipped (agent-unreachable), and every flow that was
# probed passes.
#   usage: check_conntrack_ceiling.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init conntrack_ceiling "$@"
DEADLINE=12

ck_topology
ck_start_cluster
max=$(sysctl -n net.netfilter.nf_conntrack_max) || ck_die "no conntrack table on this host"
ceiling=$((max / 100))

# master1's table, every 50 ms while the check runs: the highest count.
sampler() {
  local peak=0 count
  while :; do
    count=$(cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null) || break
    ((count > peak)) && { peak=$count; echo "$peak" >"$1"; }
    sleep 0.05
  done
}
echo 0 >"$CK_WORK/peak"
# (conntrack entries live on after a check: wait for the table to empty first)
ck_in master1 sh -c 'for i in $(seq 1 60); do [ "$(cat /proc/sys/net/netfilter/nf_conntrack_count)" -lt 500 ] && break; sleep 0.5; done'
ck_spawn "conntrack sampler" ip netns exec "${CK_NS[master1]}" bash -c "$(declare -f sampler); sampler $CK_WORK/peak" </dev/null
sampler_pid=$CK_PID

ck_check ceiling --deadline "$DEADLINE" --conntrack-ceiling 1
ck_stop "$sampler_pid"
peak=$(cat "$CK_WORK/peak")
ck_ended_within "$DEADLINE" 5
ck_exit_status 1 # the skipped flows are untested
ck_report_valid
if ((peak > 0 && peak < 2 * ceiling)); then
  ck_ok "master1's conntrack table peaked at $peak entries: the ceiling is $ceiling (1% of $max)"
else
  ck_fail "master1's conntrack table peaked at $peak entries; the ceiling is $ceiling (1% of $max), at most twice that was expected"
fi
for node in master1 master2 master3; do
  ck_agent "$node" note "held its probes back"
done
ck_agent master1 note "--conntrack-ceiling 1 leaves the rest to live connections"
ck_agent master1 error "ports not probed, their flows skipped (its conntrack table held it back: see its note)"
ck_log "flows not passing (skipped: ports not probed by the deadline):"
ck_show "verdict=fail,skip"
ck_summary failed=0
ck_expect "verdict=skip" skip agent-unreachable "had not probed these ports"

ck_finish
