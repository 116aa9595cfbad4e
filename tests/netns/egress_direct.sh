#!/usr/bin/env bash
# Egress without a proxy: every direct verdict, by host, from a client whose
# resolver is dnsmasq and whose trust store is the test CA. See egress_lib.bash
# for what each host is. The whole run is bounded: dropped.test costs one
# --timeout-ms, not the resolver's or the kernel's retries.
#   usage: egress_direct.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/egress_lib.bash"
eg_init direct "$@"
eg_setup

eg_run direct
eg_exit_status 1
eg_expect good.test 443 ok direct
eg_expect good-mirror.test 443 ok direct # the inventory's replacement of *.mirror.test
eg_expect denied.test 443 ok direct      # only the proxy denies it
eg_expect plain.test 80 ok direct        # added by the inventory, plain HTTP: a TCP connect
eg_expect wrongname.test 443 tls-name-mismatch direct
eg_expect untrusted.test 443 tls-untrusted direct
eg_expect refused.test 443 refused direct
eg_expect dropped.test 443 timeout direct
eg_expect nxdomain.test 443 dns-failure direct
eg_absent redhat.test  # when: {distribution: redhat}, default ubuntu
eg_absent removed.test # the inventory removes it
eg_absent public.mirror.test
# That the hosts are checked at once is the unit test EgressRunner.HostsAreCheckedAtOnce
# (only one host here costs a timeout, so a wall-clock bound could not tell).

# The same list, without the test CA: nothing is trusted any more.
eg_run no-ca SSL_CERT_FILE=/nonexistent SSL_CERT_DIR=/nonexistent
eg_exit_status 1
eg_expect good.test 443 tls-untrusted direct

# Only the hosts that answer well (the inventory removes the others): exit 0.
sed 's/remove: \[removed.test\]/remove: [removed.test, wrongname.test, untrusted.test, refused.test, dropped.test, nxdomain.test]/' \
  "$WORK/inventory.yaml" >"$WORK/good-inventory.yaml"
grep -q 'nxdomain.test\]' "$WORK/good-inventory.yaml" || die "cannot write the inventory of good hosts"
EG_INVENTORY=$WORK/good-inventory.yaml eg_run good
eg_exit_status 0
eg_expect good.test 443 ok direct
eg_expect plain.test 80 ok direct
eg_absent refused.test

# A resolver that never answers: the run ends by its --deadline (3 s; the
# resolver's own retries take 10 s), every host reported as dns-failure.
eg_silent_resolver
EG_DEADLINE=3 eg_run silent-dns
eg_exit_status 1
eg_expect good.test 443 dns-failure direct
eg_expect plain.test 80 dns-failure direct
if [[ $EG_MS -lt 8000 ]]; then
  eg_ok "the silent resolver cost the --deadline: ${EG_MS}ms for 3 s"
else
  eg_fail "took ${EG_MS}ms with --deadline 3: the resolver's retries were waited out"
fi

eg_finish
