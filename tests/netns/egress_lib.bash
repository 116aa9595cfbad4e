# shellcheck shell=bash
# Shared by the egress scenarios (tests/netns/egress_*.sh): a "client"
# namespace where `portmatrix egress` runs, and an "internet" namespace on a
# veth link that holds everything the client reaches:
#   dnsmasq      198.18.0.53  the client's resolver (/etc/netns/CLIENT/resolv.conf);
#                             --no-resolv --no-hosts --local=/test/: only the names
#                             below exist, any other .test name is NXDOMAIN
#   tinyproxy    198.18.0.3:8888  BasicAuth pmuser/pmpass, Filter denies denied.test
#   s_server     good.test, good-mirror.test, denied.test -> 198.18.0.10 (cert of
#                the test CA for those names); wrongname.test -> .11 (the CA's
#                cert, for other.test); untrusted.test -> .12 (self-signed)
#   http.server  plain.test -> 198.18.0.16 port 80 (plain HTTP, like apt's mirror)
#   refused.test 198.18.0.13  nothing listens: RST
#   dropped.test 198.18.0.14  nft drops its packets in the internet namespace
#   nxdomain.test             dnsmasq does not know it
# The trust store is the test CA alone (SSL_CERT_FILE). The profile and the
# inventory are test files: the inventory removes, replaces and adds hosts.
# (The .bash suffix keeps this file out of the tests/netns/*.sh test glob.)
#
# A scenario calls eg_init NAME "$@", eg_setup, then eg_run NAME [VAR=VALUE]
# [--OPTION VALUE] (egress in the client, JSON into $WORK/NAME.json, sets
# EG_RC and EG_MS), eg_exit_status N, eg_expect
# HOST PORT VERDICT [direct|proxy], eg_absent HOST, and eg_finish.

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -euo pipefail

EG_FAILURES=0
EG_CHECKS=0
EG_TIMEOUT_MS=1500
EG_PROXY_PORT=8888

eg_ok() { EG_CHECKS=$((EG_CHECKS + 1)); log "ok: $*"; }
eg_fail() { EG_CHECKS=$((EG_CHECKS + 1)); EG_FAILURES=$((EG_FAILURES + 1)); log "FAIL: $*"; }

eg_init() { # NAME PORTMATRIX [PM_NETPROBE]
  local name=$1
  shift
  # lib.sh wants the probe helper too; the egress scenarios do not use it.
  netns_init "egress-$name" "nft dnsmasq tinyproxy openssl python3" "$1" "${2:-$1}"
  CLIENT=$PREFIX-cl
  NET=$PREFIX-net
}

eg_certificates() {
  local dir=$WORK/pki
  mkdir -p "$dir"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj /CN=portmatrix-test-ca -days 2 2>/dev/null
  eg_leaf good "DNS:good.test,DNS:good-mirror.test,DNS:denied.test"
  eg_leaf wrong "DNS:other.test"
  openssl req -x509 "${ec[@]}" -keyout "$dir/self.key" -out "$dir/self.crt" -subj /CN=untrusted.test \
    -addext subjectAltName=DNS:untrusted.test -days 2 2>/dev/null
}

eg_leaf() { # NAME SAN: a certificate of the test CA
  local dir=$WORK/pki san=${2%%,*}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$1.key" -out "$dir/$1.csr" \
    -subj "/CN=${san#DNS:}" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$2" >"$dir/$1.ext"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -out "$dir/$1.crt" \
    -days 2 -extfile "$dir/$1.ext" 2>/dev/null
}

eg_tls_server() { # ADDRESS PORT CERT-NAME
  netns_spawn "s_server $1:$2" ip netns exec "$NET" openssl s_server -accept "$1:$2" -cert "$WORK/pki/$3.crt" \
    -key "$WORK/pki/$3.key" -quiet </dev/null >"$WORK/s_server-$1-$2.log" 2>&1
}

# Waits until something listens on ADDRESS:PORT (tcp) in the internet namespace.
eg_wait_listen() { # ADDRESS PORT WHAT
  local i
  for ((i = 0; i < 100; i++)); do
    ip netns exec "$NET" ss -Hltn "src $1 and sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  die "$3 does not listen on $1:$2"
}

eg_setup() {
  local t0 address
  t0=$(now_ms)
  chmod 755 "$WORK" # tinyproxy reads its filter file as its own user
  eg_certificates
  netns_add "$CLIENT"
  netns_add "$NET"
  ip -n "$CLIENT" link set lo up
  ip -n "$NET" link set lo up
  ip -n "$CLIENT" link add eth0 type veth peer name eth0 netns "$NET"
  ip -n "$CLIENT" addr add 198.18.0.1/24 dev eth0
  for address in 198.18.0.2 198.18.0.3 198.18.0.10 198.18.0.11 198.18.0.12 198.18.0.13 198.18.0.14 198.18.0.16 198.18.0.53; do
    ip -n "$NET" addr add "$address/24" dev eth0
  done
  ip -n "$CLIENT" link set eth0 up
  ip -n "$NET" link set eth0 up

  # The "internet": DNS, TLS hosts, a drop, a proxy.
  netns_spawn dnsmasq ip netns exec "$NET" dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root --local=/test/ \
    --listen-address=198.18.0.53 --bind-interfaces --pid-file="$WORK/dnsmasq.pid" \
    --address=/good.test/198.18.0.10 --address=/good-mirror.test/198.18.0.10 --address=/denied.test/198.18.0.10 \
    --address=/wrongname.test/198.18.0.11 --address=/untrusted.test/198.18.0.12 --address=/refused.test/198.18.0.13 \
    --address=/dropped.test/198.18.0.14 --address=/plain.test/198.18.0.16 </dev/null >"$WORK/dnsmasq.log" 2>&1
  netns_resolv_conf "$CLIENT" 198.18.0.53
  netns_resolv_conf "$NET" 198.18.0.53 # tinyproxy resolves the names it is asked for
  eg_tls_server 198.18.0.10 443 good
  eg_tls_server 198.18.0.11 443 wrong
  eg_tls_server 198.18.0.12 443 self
  netns_spawn "http.server" ip netns exec "$NET" python3 -m http.server --bind 198.18.0.16 80 --directory "$WORK/pki" \
    </dev/null >"$WORK/http.log" 2>&1
  ip netns exec "$NET" nft -f - <<'NFT'
table inet pm_egress_test {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 198.18.0.14 drop
  }
}
NFT
  printf 'denied\\.test\n' >"$WORK/tinyproxy.filter"
  chmod 644 "$WORK/tinyproxy.filter"
  cat >"$WORK/tinyproxy.conf" <<CONF
Port $EG_PROXY_PORT
Listen 198.18.0.3
Timeout 5
Allow 198.18.0.0/24
BasicAuth pmuser pmpass
Filter "$WORK/tinyproxy.filter"
FilterDefaultDeny No
ConnectPort 443
LogLevel Info
CONF
  netns_spawn tinyproxy ip netns exec "$NET" tinyproxy -d -c "$WORK/tinyproxy.conf" </dev/null >"$WORK/tinyproxy.log" 2>&1
  eg_wait_listen 198.18.0.53 53 dnsmasq
  eg_wait_listen 198.18.0.3 "$EG_PROXY_PORT" tinyproxy
  eg_wait_listen 198.18.0.10 443 "s_server (good)"
  eg_wait_listen 198.18.0.11 443 "s_server (wrong name)"
  eg_wait_listen 198.18.0.12 443 "s_server (self-signed)"
  eg_wait_listen 198.18.0.16 80 "http.server (plain.test)"
  ip netns exec "$CLIENT" getent hosts good.test >/dev/null || die "the client does not resolve good.test through dnsmasq"

  cat >"$WORK/profile.yaml" <<'YAML'
name: egress-test
options:
  distribution: {default: ubuntu, values: [ubuntu, redhat]}
egress:
  - {host: good.test, purpose: certificate of the trusted CA for its name}
  - {host: wrongname.test, purpose: trusted certificate for another name}
  - {host: untrusted.test, purpose: self-signed certificate}
  - {host: refused.test, purpose: nothing listens}
  - {host: dropped.test, purpose: dropped by the internet's firewall}
  - {host: nxdomain.test, purpose: unknown to DNS}
  - {host: denied.test, purpose: the proxy's filter denies it}
  - {host: redhat.test, when: {distribution: redhat}, purpose: not on ubuntu}
  - {host: removed.test, purpose: removed by the inventory}
  - {host: "*.mirror.test", serves: [public.mirror.test], purpose: replaced by the inventory}
YAML
  cat >"$WORK/inventory.yaml" <<YAML
cluster: egress-test
profile: $WORK/profile.yaml
egress:
  remove: [removed.test]
  replace: {"*.mirror.test": [good-mirror.test]}
  add:
    - {host: plain.test, ports: [80], purpose: plain HTTP}
nodes:
  - {name: node1, address: 198.18.0.1, roles: [master]}
YAML
  log "setup: client and internet namespaces, dnsmasq, tinyproxy, 3 s_server, http.server, one nft drop ($(seconds_since "$t0"))"
}

# eg_run NAME [VAR=VALUE...] [--OPTION...]: egress in the client with those
# environment variables and options, JSON into $WORK/NAME.json (validated
# against docs/schema/egress.schema.json)
# (EG_INVENTORY=FILE eg_run ...: another inventory than $WORK/inventory.yaml;
# EG_DEADLINE=S: another --deadline than 20 s).
eg_run() {
  local name=$1 t0 env=() args=()
  shift
  while [[ $# -gt 0 ]]; do
    if [[ $1 == -* ]]; then args+=("$1" "$2"); shift 2; else env+=("$1"); shift; fi
  done
  t0=$(now_ms)
  EG_RC=0
  EG_JSON=$WORK/$name.json
  ip netns exec "$CLIENT" env SSL_CERT_FILE="$WORK/pki/ca.crt" SSL_CERT_DIR=/nonexistent "${env[@]}" \
    "$PM_BIN" egress --inventory "${EG_INVENTORY:-$WORK/inventory.yaml}" --format json --output "$EG_JSON" \
    --timeout-ms "$EG_TIMEOUT_MS" --deadline "${EG_DEADLINE:-20}" "${args[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err" || EG_RC=$?
  EG_MS=$(($(now_ms) - t0))
  [[ -s $EG_JSON ]] || die "$name: no report (exit $EG_RC): $(cat "$WORK/$name.err")"
  netns_schema_valid egress "$EG_JSON" ||
    eg_fail "$EG_JSON does not match docs/schema/egress.schema.json"
  eg_results
  log "$name: exit $EG_RC in ${EG_MS}ms"
  sed 's/^/    /' "$WORK/$name.out"
}

# One line per result of $EG_JSON, "HOST PORT VERDICT direct|proxy DETAIL",
# into $EG_RESULTS (one python3 per run, not per assertion).
# The client's resolver becomes an address whose packets the internet
# drops (dropped.test's): every lookup waits for the resolver's own retries.
eg_silent_resolver() {
  echo "nameserver 198.18.0.14" >"/etc/netns/$CLIENT/resolv.conf"
}

eg_results() {
  EG_RESULTS=${EG_JSON%.json}.results
  python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["host"], r["port"], r["verdict"], "proxy" if r["proxy"] else "direct", r["detail"])
' "$EG_JSON" >"$EG_RESULTS" || die "$EG_JSON is not a report"
}

eg_expect() { # HOST PORT VERDICT [direct|proxy]
  local got verdict via detail
  got=$(awk -v host="$1" -v port="$2" '$1 == host && $2 == port { $1 = $2 = ""; print substr($0, 3); n++ }
    END { if (n != 1) print "missing (" n + 0 " results)" }' "$EG_RESULTS")
  read -r verdict via detail <<<"$got"
  if [[ $verdict == "$3" && ( -z ${4:-} || $via == "$4" ) ]]; then
    eg_ok "$1:$2 $verdict ($via: $detail)"
  else
    eg_fail "$1:$2: expected $3${4:+ $4}, got: $got"
  fi
}

eg_absent() { # HOST
  if awk -v host="$1" '$1 == host { found = 1 } END { exit found }' "$EG_RESULTS"; then
    eg_ok "$1 is not checked"
  else
    eg_fail "$1 was checked; the profile's condition or the inventory excludes it"
  fi
}

eg_exit_status() { # EXPECTED
  if [[ $EG_RC -eq $1 ]]; then eg_ok "exit status $1"; else eg_fail "exit status $EG_RC, expected $1"; fi
}

eg_finish() {
  if [[ $EG_FAILURES -eq 0 ]]; then
    log "PASS: $EG_CHECKS checks ($(seconds_since "$START_MS") in all)"
    exit 0
  fi
  log "FAILED: $EG_FAILURES of $EG_CHECKS checks ($(seconds_since "$START_MS") in all)"
  exit 1
}
