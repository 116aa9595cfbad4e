#!/usr/bin/env bash
# Egress through tinyproxy (CONNECT with basic auth for TLS hosts, an
# absolute-URI HEAD for plain HTTP): ok through the proxy,
# proxy-denied by its filter and for wrong credentials, proxy-unreachable for
# a proxy address where nothing listens and for one that drops, NO_PROXY honoured, TLS still
# verified end to end through the tunnel, and the proxy's "500 Unable to
# connect" for an unknown name mapped to refused. See egress_lib.bash.
#   usage: egress_proxy.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/egress_lib.bash"
eg_init proxy "$@"
eg_setup

# From the environment, as apt and containerd read it.
eg_run proxy HTTPS_PROXY="http://pmuser:pmpass@198.18.0.3:$EG_PROXY_PORT" NO_PROXY=good-mirror.test \
  http_proxy="http://pmuser:pmpass@198.18.0.3:$EG_PROXY_PORT"
eg_exit_status 1
eg_expect good.test 443 ok proxy
eg_expect denied.test 443 proxy-denied proxy
eg_expect wrongname.test 443 tls-name-mismatch proxy
eg_expect untrusted.test 443 tls-untrusted proxy
eg_expect nxdomain.test 443 refused proxy # tinyproxy: 500 Unable to connect
eg_expect good-mirror.test 443 ok direct  # NO_PROXY, exact name
eg_expect plain.test 80 ok proxy          # http_proxy: a HEAD request through the proxy

# Wrong credentials: tinyproxy answers 401 with a Proxy-Authenticate challenge,
# to CONNECT and to the plain-HTTP request alike (--proxy serves both schemes).
eg_run badauth --proxy "http://pmuser:wrong@198.18.0.3:$EG_PROXY_PORT" --no-proxy good-mirror.test
eg_exit_status 1
eg_expect good.test 443 proxy-denied proxy
eg_expect plain.test 80 proxy-denied proxy
eg_expect good-mirror.test 443 ok direct

# Nothing listens on the proxy's port (RST).
eg_run unreachable --proxy "http://198.18.0.3:9" --no-proxy '.mirror.test,good-mirror.test'
eg_exit_status 1
eg_expect good.test 443 proxy-unreachable proxy
eg_expect denied.test 443 proxy-unreachable proxy
eg_expect good-mirror.test 443 ok direct

# The proxy's address drops everything (dropped.test's): proxy-unreachable after one timeout.
eg_run dropped --proxy "http://198.18.0.14:3128" --no-proxy good-mirror.test
eg_exit_status 1
eg_expect good.test 443 proxy-unreachable proxy
eg_expect good-mirror.test 443 ok direct
if [[ $EG_MS -lt $((EG_TIMEOUT_MS * 3)) ]]; then
  eg_ok "a silent proxy costs one timeout: ${EG_MS}ms for ${EG_TIMEOUT_MS}ms"
else
  eg_fail "a silent proxy took ${EG_MS}ms (timeout ${EG_TIMEOUT_MS}ms)"
fi

# A malformed proxy URL is an input error, named by where it came from.
rc=0
ip netns exec "$CLIENT" env HTTPS_PROXY=socks5://198.18.0.3:1080 "$PM_BIN" egress --inventory "$WORK/inventory.yaml" \
  >/dev/null 2>"$WORK/bad-url.err" || rc=$?
if [[ $rc -eq 2 ]] && grep -q '^portmatrix: HTTPS_PROXY: ' "$WORK/bad-url.err"; then
  eg_ok "a socks5:// HTTPS_PROXY is an input error (exit 2): $(cat "$WORK/bad-url.err")"
else
  eg_fail "HTTPS_PROXY=socks5://...: exit $rc, $(cat "$WORK/bad-url.err")"
fi

eg_finish
