#!/usr/bin/env bash
# Command-line behaviour: every command has --help, exit statuses follow
# DESIGN.md (0 ok, 2 usage or input error), bad input is reported as
# file:line:column with all errors at once, and nothing crashes.
#   usage: run.sh PORTMATRIX
set -uo pipefail
pm=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# expect STATUS DESCRIPTION -- COMMAND...: runs it, keeps stdout+stderr in $out.
expect() {
  local want=$1 what=$2; shift 3
  out=$("$@" 2>&1); local got=$?
  if [ "$got" -eq "$want" ]; then passed=$((passed + 1)); return 0; fi
  echo "FAIL: $what: exit $got, expected $want"; echo "$out" | head -20; failed=$((failed + 1)); return 1
}
# contains TEXT DESCRIPTION: $out must contain TEXT.
contains() {
  if grep -qF -- "$1" <<<"$out"; then passed=$((passed + 1)); return 0; fi
  echo "FAIL: $2: output lacks '$1'"; echo "$out" | head -20; failed=$((failed + 1))
}

"$pm" demo --out "$work/demo" --files-only >/dev/null 2>&1
inv=$work/demo/inventory.yaml

for command in ports diff firewall lb demo profiles egress agent check preflight; do
  expect 0 "$command --help" -- "$pm" "$command" --help && contains "Usage" "$command --help"
done
expect 0 "--help" -- "$pm" --help && contains "firewall" "--help lists commands"
expect 0 "--version" -- "$pm" --version
expect 2 "no command" -- "$pm"
expect 2 "unknown command" -- "$pm" frobnicate
expect 2 "unknown option" -- "$pm" ports --colour
expect 2 "bad --format" -- "$pm" ports --format yaml && contains "--format must be" "bad --format message"

# Did you mean: a mistyped command, flag, profile or node is answered with the nearest known one (issue 19).
expect 2 "mistyped command" -- "$pm" prots && contains "portmatrix: unknown command 'prots'; did you mean 'ports'?" "a mistyped command gets a suggestion"
expect 2 "unknown command" -- "$pm" frobnicate && contains "unknown command 'frobnicate' (commands: ports, diff, firewall" "an unknown command lists the commands"
expect 2 "mistyped flag" -- "$pm" ports --fromat json && contains "portmatrix ports: unknown flag --fromat; did you mean --format?" "a mistyped flag gets a suggestion"
expect 2 "mistyped flag=value" -- "$pm" check --inventroy=x.yaml && contains "unknown flag --inventroy; did you mean --inventory?" "flag=value is cut at ="
expect 2 "unknown flag" -- "$pm" check --absnt x && contains "unknown flag --absnt (flags: " "an unknown flag lists the flags"
if grep -qF -- "--absent" <<<"$out"; then echo "FAIL: a hidden flag is offered: $out"; failed=$((failed + 1)); else passed=$((passed + 1)); fi
expect 2 "mistyped program flag" -- "$pm" --verison && contains "unknown flag --verison; did you mean --version?" "the program's own flags too"
expect 2 "a word too many" -- "$pm" diff apinizer apinizer-doc extra && contains "not expected: extra" "an extra word keeps CLI11's message"
expect 2 "profiles NAME mistyped" -- "$pm" profiles apinizr &&
  contains "no built-in profile 'apinizr'; did you mean 'apinizer'? (built-in: apinizer-doc, apinizer, " "profiles suggests and lists"
expect 2 "profiles NAME unknown" -- "$pm" profiles foo && contains "no built-in profile 'foo' (built-in: apinizer-doc, apinizer, " "profiles lists the known names"
expect 2 "--profile mistyped" -- "$pm" ports --profile kubernetes-131 && contains "did you mean 'kubernetes-1.31'?" "--profile suggests"
expect 2 "node mistyped" -- "$pm" firewall --inventory "$inv" --node mastr1 &&
  contains "no node 'mastr1' in $inv; did you mean 'master1'? (nodes: " "a mistyped node gets a suggestion"

# A YAML construct left open is reported where it begins, not only where the parser noticed (issue 19).
printf '%s\n' 'cluster: x' 'profile: apinizer' 'nodes:' '  - name: m1' '    roles: [master' '    address: 10.0.0.1' >"$work/unclosed.yaml"
expect 2 "unclosed flow list" -- "$pm" ports --inventory "$work/unclosed.yaml" &&
  contains "unclosed.yaml:5:12: error: the flow list opened here by '[' is never closed with ']' (detected at 6:" "the error names line 5"

# demo --out --files-only: the guide topology's files, nothing run; --files-only needs --out.
expect 2 "demo --files-only alone" -- "$pm" demo --files-only && contains "--out" "--files-only says it needs --out"
for file in inventory.yaml master1.nft haproxy.cfg lb1.keepalived.conf; do
  [ -s "$work/demo/$file" ] && passed=$((passed + 1)) || { echo "FAIL: demo --out --files-only did not write $file"; failed=$((failed + 1)); }
done

expect 0 "ports" -- "$pm" ports && contains "worker → master" "ports groups by direction"
expect 0 "ports json" -- "$pm" ports --inventory "$inv" --format json && contains '"flows"' "ports json has flows"
# The pairs are streamed: still one valid JSON document.
"$pm" ports --inventory "$inv" --format json > "$work/pairs.json"
expect 0 "ports json is valid JSON" -- python3 -m json.tool "$work/pairs.json"
pairs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["flows"]))' "$work/pairs.json")
# README.md: "its 183 node-to-node flows" (135 allowed, 48 that must stay closed).
[ "$pairs" = 183 ] && passed=$((passed + 1)) || { echo "FAIL: the guide's topology has $pairs pairs, README.md says 183"; failed=$((failed + 1)); }

# --flows groups: one entry per requirement, the same pairs counted.
expect 0 "ports --flows groups json" -- "$pm" ports --inventory "$inv" --format json --flows groups
echo "$out" > "$work/groups.json"
expect 0 "ports groups json is valid JSON" -- python3 -m json.tool "$work/groups.json"
expect 0 "groups add up to the pairs" -- python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
assert "flows" not in doc, "groups replace the flows"
total = sum(g["flows"] for g in doc["flow_groups"])
assert total == int(sys.argv[2]), f"groups count {total} flows, pairs are {sys.argv[2]}"
assert all(g["to"] == "vip" or isinstance(g["to"], list) for g in doc["flow_groups"])' "$work/groups.json" "$pairs"
expect 0 "ports --flows groups table" -- "$pm" ports --inventory "$inv" --flows groups && contains "Flow groups (" "table has the groups section" && contains " $pairs flows)" "table counts the pairs"
expect 0 "ports --flows groups markdown" -- "$pm" ports --inventory "$inv" --flows groups --format markdown && contains "## Flow groups (" "markdown has the groups section"
expect 0 "ports --flows groups csv" -- "$pm" ports --inventory "$inv" --flows groups --format csv && contains "from,to,protocol,port_min,port_max,port_name,purpose,expect,flows" "csv groups header" && contains '"worker1 worker2 worker3",' "csv quotes the node lists"
expect 0 "ports --flows pairs csv" -- "$pm" ports --inventory "$inv" --flows pairs --format csv && contains "from,to,to_address," "pairs csv header"
expect 2 "ports --flows bad" -- "$pm" ports --inventory "$inv" --flows x && contains "--flows must be pairs or groups, not 'x'" "bad --flows message"
expect 0 "ports --help" -- "$pm" ports --help && contains "--flows" "ports --help offers --flows"
expect 0 "diff" -- "$pm" diff apinizer-doc apinizer && contains "worker → worker 8472/udp" "diff shows the VXLAN mesh gap"
# Least privilege (issue 17): each change with its source, a removal with the removal's reason.
expect 0 "diff least privilege" -- "$pm" diff apinizer-doc apinizer && contains "removed  worker → master 2379-2380/tcp (etcd)" "diff removes worker -> etcd" && contains 'Upstream lists etcd'"'"'s users as "kube-apiserver, etcd"' "the removal says why" && contains "added    worker → master 2379-2380/tcp (etcd) must be denied" "etcd becomes a deny"
# Coverage honesty (issue 17): what the inventory cannot exercise is said in every format.
grep -v 'name: client1,' "$inv" > "$work/no-client.yaml"
expect 0 "ports without a client node" -- "$pm" ports --inventory "$work/no-client.yaml" && contains "warning: no client node: " "ports warns about the missing client" && contains "client → master 2379-2380/tcp (etcd) (must be denied)" "ports names the untested deny"
expect 0 "ports json untested" -- "$pm" ports --inventory "$work/no-client.yaml" --format json --flows groups && contains '"code": "no-client-node"' "json lists untested by code"
expect 0 "ports csv untested on stderr" -- sh -c '"$1" ports --inventory "$2" --format csv 2>&1 >/dev/null' sh "$pm" "$work/no-client.yaml" && contains "portmatrix: warning: no client node" "csv warns on stderr"
expect 0 "check --help has --strict" -- "$pm" check --help && contains "--strict" "check --strict"
expect 2 "diff unknown profile" -- "$pm" diff apinizer-doc nosuch && contains "unknown profile 'nosuch'" "diff names the profile"
contains "PROFILE_B: error: unknown profile 'nosuch'" "diff names the argument, not --profile"
expect 2 "diff empty profile name" -- "$pm" diff "apinizer," apinizer-doc &&
  contains "PROFILE_A: error: 'apinizer,' has an empty profile name" "diff refuses an empty name"
expect 2 "--profile with an empty name" -- "$pm" ports --profile "apinizer,,flannel-0.27" &&
  contains "--profile: error: 'apinizer,,flannel-0.27' has an empty profile name" "an empty name in --profile is refused"
expect 2 "--profile empty" -- "$pm" ports --profile "" && contains "--profile: no profile named" "an empty --profile is refused"
expect 0 "profiles" -- "$pm" profiles && contains "apinizer-doc" "profiles lists built-ins"
expect 0 "profiles NAME" -- "$pm" profiles flannel-0.27 && contains "flannel_backend" "profiles prints YAML"

expect 0 "firewall --node" -- "$pm" firewall --inventory "$inv" --node master1 && contains "table inet portmatrix" "nft output"
expect 2 "firewall unknown node" -- "$pm" firewall --inventory "$inv" --node master9 && contains "no node 'master9'" "unknown node named"
expect 2 "firewall without node or all" -- "$pm" firewall --inventory "$inv"
expect 2 "firewall --all without --out" -- "$pm" firewall --inventory "$inv" --all
expect 0 "firewall --all" -- "$pm" firewall --inventory "$inv" --all --out "$work/fw" --format iptables
[ "$(ls "$work/fw" | wc -l)" -eq 14 ] && passed=$((passed + 1)) || { echo "FAIL: --all wrote $(ls "$work/fw" | wc -l) files"; failed=$((failed + 1)); }
# Nodes with the same roles share one file (hard links); other roles have their own.
inode() { stat -c %i "$work/fw/$1.iptables.sh"; }
if [ "$(inode master1)" = "$(inode master2)" ] && [ "$(inode master1)" = "$(inode master3)" ] &&
  [ "$(inode worker1)" = "$(inode worker3)" ] && [ "$(inode master1)" != "$(inode worker1)" ] &&
  [ "$(stat -c %h "$work/fw/master2.iptables.sh")" = 3 ] &&
  [ "$(ls -i "$work/fw" | awk '{print $1}' | sort -u | wc -l)" = "$(sed -n 's/.*wrote 14 file(s) to .*: \([0-9]*\) ruleset(s).*/\1/p' <<<"$out")" ]; then
  passed=$((passed + 1))
else
  echo "FAIL: --all did not link the nodes of the same roles to one file:"; ls -li "$work/fw"; echo "$out"; failed=$((failed + 1))
fi
# Apart from the lines that name the node(s), a node's file is what --node prints.
"$pm" firewall --inventory "$inv" --node worker2 --format iptables >"$work/worker2.sh"
if diff <(sed '1,/^# cluster /d' "$work/worker2.sh") <(sed '1,/^# cluster /d' "$work/fw/worker2.iptables.sh") >/dev/null &&
  head -2 "$work/fw/worker2.iptables.sh" | grep -q "for the 3 nodes with roles: worker"; then
  passed=$((passed + 1))
else
  echo "FAIL: --all's worker2 file is not --node worker2's ruleset"; failed=$((failed + 1))
fi
expect 0 "firewall --node --out" -- "$pm" firewall --inventory "$inv" --node worker2 --out "$work/one" --format iptables &&
  contains "wrote 1 file(s)" "--node --out says what it wrote"
cmp -s "$work/one/worker2.iptables.sh" "$work/worker2.sh" && passed=$((passed + 1)) ||
  { echo "FAIL: --node --out did not write --node's ruleset"; failed=$((failed + 1)); }
expect 2 "firewall bad format" -- "$pm" firewall --inventory "$inv" --node master1 --format pf
expect 0 "check --help" -- "$pm" check --help && contains "--retries" "check --help offers --retries" &&
  contains "--conntrack-ceiling" "check --help offers --conntrack-ceiling"
# The range checks, with a valid token and an inventory on loopback (no agent
# there: an accepted command fails to reach them, exit 1, sending nothing off
# this machine), so exit 2 and the message come from the range alone.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token" && echo >>"$work/token" && chmod 600 "$work/token"
printf '%s\n' 'cluster: loop' 'profile: apinizer' 'agent: {control_port: 9}' 'nodes:' \
  '  - {name: m1, address: 127.0.0.1, roles: [master]}' '  - {name: w1, address: 127.0.0.2, roles: [worker]}' >"$work/loop.yaml"
check_loop() { "$pm" check --inventory "$work/loop.yaml" --token-file "$work/token" --deadline 2 --timeout-ms 100 "$@"; }
expect 1 "check with the range tests' token and inventory, in range" -- check_loop --retries 3 --conntrack-ceiling 1 &&
  contains "agent" "the in-range check ran and reports its agents"
# check --coverage (issue 20): a bad mode is a usage error; --estimate probes nothing, needs no token,
# and counts the demo inventory's probes in full and in sample coverage; the same seed, the same sample.
expect 2 "check --coverage bogus" -- check_loop --coverage most
expect 2 "check --sample-ports out of range" -- check_loop --coverage sample --sample-ports 5000
expect 0 "check --estimate" -- "$pm" check --inventory "$inv" --estimate --seed 9 &&
  contains "sample (edges + 8)" "--estimate has a sample row" && contains "14 nodes in 6 ruleset groups" "--estimate counts the groups"
estimate=$out
expect 0 "check --estimate again" -- "$pm" check --inventory "$inv" --estimate --seed 9
[ "$out" = "$estimate" ] && passed=$((passed + 1)) || { echo "FAIL: --estimate with the same seed differs"; failed=$((failed + 1)); }
# The guide's 14 nodes fit a default table (bound by CPU); in a table of 1,000 entries at 75%, the busiest
# node's NodePort probes wait for their conntrack entries to expire (docs/coverage.md).
contains "conntrack: probes hold at 75% of 262,144 entries" "--estimate states the table it assumes"
grep -E '^full .* CPU$' <<<"$out" >/dev/null && passed=$((passed + 1)) || { echo "FAIL: --estimate: the guide's full check is not bound by CPU"; echo "$out"; failed=$((failed + 1)); }
expect 0 "check --estimate, a small conntrack table" -- "$pm" check --inventory "$inv" --estimate --seed 9 --conntrack-max 1000 &&
  contains "'s conntrack table (" "--estimate names the node whose table bounds the check"
expect 2 "check --conntrack-max below a table's least" -- "$pm" check --inventory "$inv" --estimate --conntrack-max 10 &&
  contains "--conntrack-max" "--conntrack-max names itself"
expect 1 "check --coverage sample, no agents" -- check_loop --coverage sample --seed 4 &&
  contains "coverage sample (seed 4, 8 random ports a flow)" "the table states the coverage and its seed" &&
  contains "firewall coverage: 0 of 2 nodes evaluated" "the table states the firewall coverage"
expect 2 "check --retries out of range" -- check_loop --retries 4 && contains "--retries" "--retries names itself" &&
  contains "not in range" "--retries says it is out of range"
expect 2 "check --conntrack-ceiling out of range" -- check_loop --conntrack-ceiling 0 &&
  contains "--conntrack-ceiling" "--conntrack-ceiling names itself" && contains "not in range" "--conntrack-ceiling says it is out of range"
expect 2 "check --format bad" -- check_loop --format pdf && contains "--format must be" "check bad format message"
expect 2 "check --egress-deadline past 25 s" -- check_loop --egress --egress-deadline 26 &&
  contains "--egress-deadline: Value 26 not in range 1 to 25" "--egress-deadline names its bound"

# --output writes regular files only: a directory is refused, naming it, and left as it was.
mkdir -p "$work/outdir"
expect 2 "egress --output a directory" -- "$pm" egress --inventory "$inv" --format squid --output "$work/outdir" &&
  contains "cannot write $work/outdir: it is not a regular file" "--output names the directory"
expect 2 "preflight --output a directory" -- "$pm" preflight --inventory "$inv" --node master1 --no-address-check \
  --format json --output "$work/outdir" && contains "it is not a regular file" "preflight --output refuses a directory"
[ -z "$(ls -A "$work/outdir")" ] && passed=$((passed + 1)) || { echo "FAIL: --output wrote into the directory"; failed=$((failed + 1)); }

# Colour: only on a terminal (script(1) gives the command one), never with NO_COLOR, never in a pipe.
esc=$'\e['
on_tty() { script -qec "$1" /dev/null; }
preflight_table="'$pm' preflight --inventory '$inv' --node master1 --no-address-check"
out=$(on_tty "$preflight_table" 2>&1)
if grep -qF "$esc" <<<"$out" && grep -qF "Preflight of master1" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: no colour on a terminal"; echo "$out" | head -5; failed=$((failed + 1)); fi
out=$(NO_COLOR=1 on_tty "$preflight_table" 2>&1)
if ! grep -qF "$esc" <<<"$out" && grep -qF "Preflight of master1" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: colour on a terminal with NO_COLOR set"; echo "$out" | head -5; failed=$((failed + 1)); fi
out=$(eval "$preflight_table" 2>&1 | cat)
if ! grep -qF "$esc" <<<"$out" && grep -qF "Preflight of master1" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: colour in a pipe"; echo "$out" | head -5; failed=$((failed + 1)); fi

# check --output writes only the file; stderr gets the overall line, once.
check_loop --format json --output "$work/check.json" >"$work/check.out" 2>"$work/check.err"
if [ ! -s "$work/check.out" ] && [ "$(wc -l <"$work/check.err")" -eq 1 ] &&
  grep -Eq "^INCOMPLETE loop: 0 passed, 0 failed, [0-9]+ skipped(, [0-9]+ requirements? untested)? in .* \(report: $work/check.json\)$" "$work/check.err" &&
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/check.json"; then passed=$((passed + 1)); else
  echo "FAIL: check --output: stdout '$(head -c 200 "$work/check.out")', stderr '$(head -c 300 "$work/check.err")'"
  failed=$((failed + 1)); fi
# On a terminal, check's live progress line names the round, the count and the time; the report follows.
out=$(on_tty "'$pm' check --inventory '$work/loop.yaml' --token-file '$work/token' --deadline 2 --timeout-ms 100" 2>&1)
if grep -Eq "check: hello round: [0-9]+/2 agents, [0-9.]+ s" <<<"$out" && grep -Eq "check: probe round: [0-9,]+/[0-9,]+ probes" <<<"$out" &&
  grep -qF "INCOMPLETE" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: no progress line on a terminal"; echo "$out" | head -5; failed=$((failed + 1)); fi
out=$(check_loop 2>&1 | cat)
if ! grep -qF "round:" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: a progress line without a terminal"; echo "$out" | head -5; failed=$((failed + 1)); fi
# egress's live line on a terminal: hosts done of all, the rate, the time. Its proxy is loopback's port 9 (nothing
# listens): every host is proxy-unreachable at once, nothing leaves the machine, no name is resolved.
egress_loop="env -u NO_PROXY -u no_proxy '$pm' egress --inventory '$work/loop.yaml' --proxy http://127.0.0.1:9 --timeout-ms 200"
out=$(on_tty "$egress_loop" 2>&1)
if grep -Eq "egress: [0-9]+/[0-9]+ hosts checked, [0-9.]+/s, [0-9.]+ s" <<<"$out" && grep -qF "proxy-unreachable" <<<"$out"; then
  passed=$((passed + 1)); else echo "FAIL: no egress progress line on a terminal"; echo "$out" | head -5; failed=$((failed + 1)); fi
out=$(eval "$egress_loop" 2>&1 | cat)
if ! grep -qF "hosts checked" <<<"$out" && grep -qF "proxy-unreachable" <<<"$out"; then passed=$((passed + 1)); else
  echo "FAIL: an egress progress line without a terminal"; echo "$out" | head -5; failed=$((failed + 1)); fi
expect 2 "missing inventory" -- "$pm" firewall --inventory "$work/nope.yaml" --node master1
printf '%s\n' 'cluster: mixed' 'loadbalancer: {vip: 10.0.0.100, interface: eth0}' 'nodes:' \
  '  - {name: lb1, address: 10.0.0.5, roles: [loadbalancer]}' "  - {name: lb2, address: 'fd00::6', roles: [loadbalancer]}" \
  '  - {name: m1, address: 10.0.0.1, roles: [master]}' > "$work/mixed-lb.yaml"
expect 2 "keepalived with load balancers of two families" -- "$pm" lb --inventory "$work/mixed-lb.yaml" --format keepalived --node lb1 &&
  contains "different address families" "keepalived names the mixed families"
grep -v lb1 "$work/mixed-lb.yaml" > "$work/v6-lb.yaml"
expect 2 "keepalived with a VIP of the other family" -- "$pm" lb --inventory "$work/v6-lb.yaml" --format keepalived --node lb2 &&
  contains "the VIP 10.0.0.100 and load balancer lb2" "keepalived names the VIP's family"
expect 2 "lb keepalived on a non-lb node" -- "$pm" lb --inventory "$inv" --format keepalived --node master1 && contains "loadbalancer role" "lb names the role"

# egress: allowlists need no network; bad formats, proxies and overrides are input errors.
expect 0 "egress --help" -- "$pm" egress --help && contains "proxy-unreachable" "egress --help lists the verdicts"
expect 0 "egress squid" -- "$pm" egress --inventory "$inv" --format squid && contains "acl portmatrix_egress dstdomain .docker.io" "squid ACL"
expect 0 "egress domains" -- "$pm" egress --profile apinizer-doc --format domains && contains "*.amazonaws.com" "domains keep wildcards"
expect 2 "egress bad format" -- "$pm" egress --inventory "$inv" --format csv && contains "--format must be" "egress bad format message"
expect 2 "egress bad --proxy" -- "$pm" egress --inventory "$inv" --proxy "ftp://x:1" && contains "--proxy: 'ftp://x:1'" "egress names the bad proxy"
expect 2 "egress bad HTTPS_PROXY" -- env HTTPS_PROXY="http://p:70000" "$pm" egress --inventory "$inv" && contains "HTTPS_PROXY: " "egress names the variable"
cat > "$work/egress-bad.yaml" <<'YAML'
cluster: x
egress:
  remove: ["*.nosuch.example"]
  add: [{host: "no such host"}]
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
YAML
expect 2 "egress bad inventory" -- "$pm" egress --inventory "$work/egress-bad.yaml" --format domains && contains "egress-bad.yaml:4:16: error: host 'no such host' is not a host name" "egress add positioned"
sed -i '4d' "$work/egress-bad.yaml"
expect 2 "egress remove of an unknown host" -- "$pm" egress --inventory "$work/egress-bad.yaml" --format domains && contains "egress-bad.yaml:3:12: error: egress remove '*.nosuch.example'" "egress remove positioned"

# Bad inventories: every error at once, with positions, exit 2.
cat > "$work/bad.yaml" <<'YAML'
cluster: x
nodes:
  - {name: m1, address: 10.0.0.1, roles: [master]}
  - {name: m1, address: 10.0.0.1, roles: [wizard]}
  - {name: w1, address: 10.0.0.3}
ports: {kube-apiserver: 0}
YAML
expect 2 "bad inventory" -- "$pm" ports --inventory "$work/bad.yaml"
contains "bad.yaml:4:12: error: duplicate node name 'm1'" "duplicate name position"
contains "bad.yaml:4:25: error: duplicate address 10.0.0.1" "duplicate address position"
contains "bad.yaml:4:43: error: unknown role 'wizard'" "unknown role position"
contains "bad.yaml:5:5: error: node 'w1' has no roles" "no roles position"
contains "bad.yaml:6:25: error: port 'kube-apiserver': port 0 is outside 1-65535" "port range position"

# The inventory's profile: errors name its `profile:` key; an explicit --profile names the flag.
printf 'cluster: x\nprofile: nosuch\nnodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n' > "$work/profile-key.yaml"
expect 2 "inventory names an unknown profile" -- "$pm" ports --inventory "$work/profile-key.yaml" &&
  contains "profile-key.yaml:2:1: error: unknown profile 'nosuch'" "the inventory's profile key is named"
expect 2 "--profile overrides with an unknown profile" -- "$pm" firewall --inventory "$inv" --node master1 --profile nosuch2 &&
  contains "--profile: error: unknown profile 'nosuch2'" "--profile is named"

printf 'ports: {no-such-port: 1234}\nnodes: [{name: a, address: 10.0.0.1, roles: [master]}]\n' > "$work/override.yaml"
expect 2 "override of an unknown port" -- "$pm" firewall --inventory "$work/override.yaml" --node a
contains "override.yaml:1:9: error: override of port 'no-such-port'" "override position"

printf 'nodes: [\n  {name: a,\n' > "$work/syntax.yaml"
expect 2 "YAML syntax error" -- "$pm" ports --inventory "$work/syntax.yaml" && contains "syntax.yaml:" "syntax error names the file"

head -c 4096 /dev/urandom > "$work/garbage.yaml"
expect 2 "binary garbage" -- "$pm" ports --inventory "$work/garbage.yaml"

printf 'name: p\nports: {a: {port: 10-5, protocol: tcp}}\n' > "$work/profile.yaml"
expect 2 "bad profile path" -- "$pm" ports --profile "$work/profile.yaml"
contains "profile.yaml:2:19: error: port 'a': port range 10-5 has its first port above its last" "profile range position"

# --output writes regular files only: a FIFO (or a device: as root, a private
# one) is refused and left as it was; a symbolic link is followed, and stays.
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
mkfifo "$work/fifo"
expect 2 "egress --output to a FIFO" -- "$pm" egress --inventory "$inv" --format domains --output "$work/fifo" &&
  contains "is not a regular file" "the FIFO is refused with the reason"
[ -p "$work/fifo" ] && ok || bad "--output replaced the FIFO"
if [ "$(id -u)" -eq 0 ]; then
  mknod "$work/null" c 1 3
  expect 2 "egress --output to a device" -- "$pm" egress --inventory "$inv" --format domains --output "$work/null" &&
    contains "leave --output out" "the device is refused with a hint"
  [ -c "$work/null" ] && ok || bad "--output replaced the device"
else
  echo "skipped: --output to a device (mknod needs root)"
fi
echo old > "$work/target.txt"
ln -s target.txt "$work/link.txt"
expect 0 "egress --output to a symbolic link" -- "$pm" egress --inventory "$inv" --format domains --output "$work/link.txt"
[ -L "$work/link.txt" ] && [ "$(cat "$work/target.txt")" != old ] && [ -s "$work/target.txt" ] && ok ||
  bad "--output did not write through the symbolic link"
ls "$work" | grep -q '\.tmp\.' && bad "a temporary file was left behind" || ok

# A token file that is not a regular file is refused at once, not read forever.
mkfifo -m 600 "$work/token-fifo"
expect 2 "check --token-file FIFO" -- timeout 10 "$pm" check --inventory "$inv" --token-file "$work/token-fifo" &&
  contains "is not a regular file" "the FIFO token is refused with the reason"

# --ssh: bad combinations and input are exit 2 with the reason; --dry-run
# prints every node's ssh commands and runs none (no ssh is started: the
# nodes' 10.x addresses are not reachable from here anyway).
expect 2 "check without a token file or --ssh" -- "$pm" check --inventory "$inv" &&
  contains "needs --token-file" "check says what it needs"
expect 2 "--parallel needs --ssh" -- "$pm" check --inventory "$inv" --token-file /dev/null --parallel 2
expect 2 "preflight --ssh with --node" -- "$pm" preflight --inventory "$inv" --ssh --node master1 &&
  contains "leave out --node" "preflight --ssh says why"
expect 2 "preflight without --node or --ssh" -- "$pm" preflight --inventory "$inv" && contains "needs --node" "preflight says what it needs"
"$pm" profiles apinizer > "$work/own-profile.yaml"
expect 2 "check --ssh with a profile file" -- "$pm" check --inventory "$inv" --ssh --dry-run --profile "$work/own-profile.yaml" &&
  contains "must be a built-in profile" "a profile file is refused with --ssh"
expect 0 "check --ssh --dry-run" -- "$pm" check --inventory "$inv" --ssh --dry-run --parallel 3
contains "# node master1" "dry run names each node" && contains "# node worker3" "dry run lists every node"
contains "ControlMaster=yes" "dry run opens one connection per node" && contains " -O exit " "dry run closes it"
contains "--token-file - --exit-after" "the agent reads its token from stdin" && contains "< token on standard input" "dry run says where the token goes"
contains "StrictHostKeyChecking=yes" "host keys are checked strictly by default"
expect 0 "the dry run's master1 part comes before worker1's" -- python3 -c '
import sys
text = sys.stdin.read()
assert text.index("# node master1") < text.index("# node worker1"), "nodes out of order"
master1 = text[text.index("# node master1"):text.index("# node", text.index("# node master1") + 1)]
assert "worker1" not in master1, "another node in master1 part"' <<<"$out"
expect 2 "check --ssh --coordinator of no node" -- "$pm" check --inventory "$inv" --ssh --dry-run --coordinator nosuch &&
  contains "no node 'nosuch'" "an unknown coordinator is named"
expect 0 "check --ssh --coordinator --dry-run" -- "$pm" check --inventory "$inv" --ssh --dry-run --coordinator master2
expect 0 "the check runs on the coordinator, its token on stdin" -- python3 -c '
import sys
text = sys.stdin.read()
master2 = text[text.index("# node master2"):text.index("# node", text.index("# node master2") + 1)]
assert " check --inventory /tmp/portmatrix-" in master2 and "--token-file - " in master2, master2
assert text.count(" check --inventory ") == 1, "one check, on master2 only"' <<<"$out"
expect 0 "preflight --ssh --dry-run" -- "$pm" preflight --inventory "$inv" --ssh --dry-run && contains " preflight --inventory " "dry run shows the node's preflight"
sed 's/^nodes:/ssh: {user: "-oProxyCommand=x", options: [ControlPath=\/x]}\nnodes:/' "$inv" > "$work/bad-ssh.yaml"
expect 2 "a bad ssh section" -- "$pm" check --inventory "$work/bad-ssh.yaml" --ssh --dry-run &&
  contains "bad-ssh.yaml:" "ssh errors are positioned" && contains "must be one word" "a user starting with - is refused" &&
  contains "portmatrix's own" "ControlPath is the run's own"
expect 2 "agent --token-file - with a short token" -- sh -c 'echo short | "$1" agent --inventory "$2" --node master1 --token-file - --exit-after 5' _ "$pm" "$inv" &&
  contains "16 to 4096 characters" "a short token on stdin is refused"
# --exit-after: the agent ends by itself (needs a network namespace of its own: root).
if unshare -n true 2>/dev/null; then
  printf 'nodes:\n  - {name: solo, address: 127.0.0.1, roles: [worker]}\n' > "$work/solo.yaml"
  expect 0 "agent --exit-after ends the agent" -- timeout 30 unshare -n sh -c \
    'ip link set lo up && printf "0123456789abcdef0123\n" | "$1" agent --inventory "$2" --node solo --token-file - --exit-after 1' _ "$pm" "$work/solo.yaml" &&
    contains "portmatrix agent solo: ready" "the agent says when it serves" && contains "--exit-after 1 s reached" "the agent says why it ended"
else
  echo "cli: agent --exit-after skipped (unshare -n needs root)"
fi
# An inventory anyone may write is refused with its file named (finding 10).
cp "$inv" "$work/open-inventory.yaml" && chmod 666 "$work/open-inventory.yaml"
expect 2 "ports --inventory writable by anyone" -- "$pm" ports --inventory "$work/open-inventory.yaml" &&
  contains "$work/open-inventory.yaml" "the writable inventory is named" &&
  contains "writable by anyone" "the writable inventory is refused with the reason"

# ufw has no IP-in-IP: its script keeps those rules in before.rules between
# portmatrix's markers, before the last COMMIT; applying twice leaves one
# block, and a profile without IP-in-IP takes the block out. (ufw itself is
# a stub here: it logs its arguments.)
mkdir -p "$work/ufw/bin"
printf '#!/bin/sh\necho "$*" >> "%s/ufw/calls"\n' "$work" > "$work/ufw/bin/ufw" && chmod +x "$work/ufw/bin/ufw"
printf '*filter\n:ufw-before-input - [0:0]\n-A ufw-before-input -i lo -j ACCEPT\n# do not delete the COMMIT line\nCOMMIT\n' > "$work/ufw/before.rules"
printf '*filter\n:ufw6-before-input - [0:0]\nCOMMIT\n' > "$work/ufw/before6.rules"
here=$(cd "$(dirname "$0")/.." && pwd)
"$pm" firewall --inventory "$here/golden/cni-calico.yaml" --node worker1 --format ufw > "$work/ufw/ipip.sh"
sed 's/calico_encapsulation: ipip/calico_encapsulation: vxlan/' "$here/golden/cni-calico.yaml" > "$work/ufw/vxlan.yaml"
"$pm" firewall --inventory "$work/ufw/vxlan.yaml" --node worker1 --format ufw > "$work/ufw/vxlan.sh"
expect 0 "ufw script with IP-in-IP, applied twice" -- sh -c 'ufw_apply() { PATH="$1/ufw/bin:$PATH" UFW_BEFORE_RULES="$1/ufw/before.rules" UFW_BEFORE6_RULES="$1/ufw/before6.rules" sh "$1/ufw/ipip.sh"; }; ufw_apply "$1" && ufw_apply "$1" && cat "$1/ufw/before.rules" "$1/ufw/before6.rules"' _ "$work" &&
  contains "-A ufw-before-input -s 192.0.2.11 -p 4 -m comment" "before.rules admits IP-in-IP from master1" &&
  contains "-A ufw6-before-input -s 2001:db8::26 -p 4 -m comment" "before6.rules admits IP-in-IP from the IPv6 worker"
expect 0 "one block, before COMMIT" -- python3 -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
assert lines.count("# BEGIN portmatrix") == 1 and lines.count("# END portmatrix") == 1, lines
assert lines.index("# END portmatrix") < len(lines) - 1 and lines[-1] == "COMMIT", lines
assert lines[:3] == ["*filter", ":ufw-before-input - [0:0]", "-A ufw-before-input -i lo -j ACCEPT"], lines' "$work/ufw/before.rules"
if [ "$(id -u)" -eq 0 ] && command -v iptables-restore >/dev/null && unshare -n true 2>/dev/null; then
  expect 0 "iptables-restore accepts the edited before.rules" -- unshare -n iptables-restore --test "$work/ufw/before.rules"
fi
expect 0 "ufw script without IP-in-IP" -- sh -c 'PATH="$1/ufw/bin:$PATH" UFW_BEFORE_RULES="$1/ufw/before.rules" UFW_BEFORE6_RULES="$1/ufw/before6.rules" sh "$1/ufw/vxlan.sh" && cat "$1/ufw/before.rules"' _ "$work"
if grep -q portmatrix <<<"$out"; then
  echo "FAIL: the portmatrix block stays in before.rules without IP-in-IP"; failed=$((failed + 1))
else
  passed=$((passed + 1))
fi

# firewall apply|confirm|...: on a node it needs --node; --ssh --dry-run shows the rollout's commands.
expect 2 "firewall apply without --node or --ssh" -- "$pm" firewall apply --inventory "$inv" &&
  contains "needs --node NAME" "firewall apply says what it needs"
expect 2 "firewall status --role without --ssh" -- "$pm" firewall status --inventory "$inv" --node master1 --role master
expect 1 "firewall confirm with nothing applied" -- "$pm" firewall confirm --inventory "$inv" --node master1 \
  --state-dir "$work/apply-state" --root "$work/apply-root" && contains "waits for confirmation" "confirm says nothing waits"
expect 2 "firewall apply --ssh: a confirm timeout shorter than the check" -- "$pm" firewall apply --inventory "$inv" --ssh \
  --dry-run --confirm-timeout 30 && contains "leaves no time" "the short timeout is refused with the reason"
expect 0 "firewall apply --ssh --dry-run --role master --no-verify" -- "$pm" firewall apply --inventory "$inv" --ssh --dry-run \
  --role master --no-verify
contains "firewall apply --inventory" "the dry run applies on the nodes" && contains "ControlPath=none" "a new ssh login is tried" &&
  contains "firewall confirm --inventory" "then confirmed" && contains "flows are NOT checked" "--no-verify says so"
if grep -q "# node worker1" <<<"$out"; then echo "FAIL: --role master --no-verify connects to worker1"; failed=$((failed + 1)); else passed=$((passed + 1)); fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
