#!/usr/bin/env bash
# Live check with a token the agents do not share: check exits 2 with a
# message naming the token, writes no report, and the agents are unharmed:
# the next check with the right token passes every flow (exit 0). Token
# files that are not mode 600, or too short, are configuration errors too.
#   usage: check_wrong_token.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/check_lib.bash"
ck_init wrong_token "$@"

ck_topology
ck_start_cluster
GOOD_TOKEN=$TOKEN
ck_make_token "$CK_WORK/wrong-token"
TOKEN=$GOOD_TOKEN

TOKEN=$CK_WORK/wrong-token ck_check wrong
ck_exit_status 2
ck_stderr_has wrong token
if [[ -e $CK_WORK/wrong.json ]]; then
  ck_fail "a report was written: $(head -c 300 "$CK_WORK/wrong.json")"
else
  ck_ok "no report written"
fi
rejected=$(cat "$CK_WORK"/agent-*.log | grep -c 'rejected a control request' || true)
if [[ $rejected -gt 0 ]]; then
  ck_ok "the agents logged $rejected rejected request(s): $(grep -h -m1 'rejected a control request' "$CK_WORK"/agent-*.log | head -1)"
else
  ck_fail "no agent logged a rejected request"
fi

(umask 022 && openssl rand -hex 24 >"$CK_WORK/open-token") && chmod 644 "$CK_WORK/open-token"
TOKEN=$CK_WORK/open-token ck_check open_token
ck_exit_status 2
ck_stderr_has open_token "$CK_WORK/open-token is readable by group or others (chmod 600 it)"
(umask 077 && printf 'short\n' >"$CK_WORK/short-token")
TOKEN=$CK_WORK/short-token ck_check short_token
ck_exit_status 2
ck_stderr_has short_token "$CK_WORK/short-token is shorter than 16 characters"

for node in "${CK_NODES[@]}"; do
  ck_alive "${CK_AGENT_PID[$node]}" || ck_fail "the agent on $node died: $(tail -3 "$CK_WORK/agent-$node.log")"
done
ck_check right
ck_exit_status 0
ck_report_valid
ck_summary failed=0 skipped=0
ck_others_pass
ck_agents_ok

ck_finish
