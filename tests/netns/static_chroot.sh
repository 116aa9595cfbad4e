#!/usr/bin/env bash
# The self-contained binary (scripts/build-static.sh) in a chroot that holds
# nothing of a system but the binary, /etc/hosts, /etc/resolv.conf,
# /etc/nsswitch.conf, /proc, /sys and /dev/null: no shared library, no NSS
# module, no /etc/ssl. The test's work directory is bound at its own path, so
# the scenario libraries' paths (inventory, token, reports) mean the same
# inside and out. Every portmatrix command of the two scenarios below runs
# there, through a wrapper that mounts in a mount namespace of its own
# (`unshare --mount`): the mounts end with the process, on every exit path.
#   1. check_lib.bash's guide topology: `demo --out --files-only` (the inventory, every
#      node's nftables and haproxy.cfg), `ports` and `firewall --all`
#      (byte for byte the dynamic binary's), an agent on every node and
#      `check` from client1: every flow passes, exit 0.
#   2. egress_lib.bash's internet: `egress` resolves through dnsmasq (DNS) and
#      the chroot's /etc/hosts (a name dnsmasq does not know), whose
#      nsswitch.conf also names mdns4_minimal, a module a static binary cannot
#      load; TLS is verified by the linked-in OpenSSL against the test CA.
# Also: `ldd` says "not a dynamic executable"; --version of both binaries
# names the same version and commit, and "static" and "dynamic".
#   usage: static_chroot.sh PORTMATRIX [PM_NETPROBE]   (PORTMATRIX: the dynamic build)
#   PM_STATIC_BINARY: the static binary (default: build-static/portmatrix of this checkout)
# Outside CI a missing static binary skips (77); with CI=true it fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=static-chroot

say() { printf '[%s] %s\n' "$name" "$*"; }
skip_or_fail() { # REASON: exit 77, or 1 under CI (where nothing may be skipped)
  if [[ ${CI:-} == true ]]; then say "FAIL (CI=true, nothing may be skipped): $*"; exit 1; fi
  echo "SKIPPED: $*"
  exit 77
}

# --- the two scenarios, each run as `$0 --phase NAME` (run_phase below) ---------------

if [[ ${1:-} == --phase && ${2:-} == check ]]; then
  # 1. ports, firewall, demo, agents and check on the guide's topology.
  source "$here/check_lib.bash"
  ck_init "$name" "$WRAPPER"
  export PM_CHROOT_WORK=$CK_WORK
  ck_topology # `portmatrix demo --out --files-only` in the chroot writes the inventory, rules and haproxy.cfg

  # ports and firewall: the static binary's output is the dynamic one's, byte for byte.
  for what in "ports --inventory $INVENTORY --format json" "ports --format csv"; do
    rc=0
    # shellcheck disable=SC2086 # the words of $what are the arguments
    "$PM_BIN" $what >"$CK_WORK/static.out" 2>&1 || rc=$?
    # shellcheck disable=SC2086
    "$DYNAMIC" $what >"$CK_WORK/dynamic.out" 2>&1
    if [[ $rc -eq 0 ]] && cmp -s "$CK_WORK/static.out" "$CK_WORK/dynamic.out"; then
      ck_ok "${what%% --*} (${what##* }): exit 0, $(wc -l <"$CK_WORK/static.out") lines, the same as the dynamic binary's"
    else
      ck_fail "$what: exit $rc, $(diff "$CK_WORK/dynamic.out" "$CK_WORK/static.out" | head -5)"
    fi
  done
  rc=0
  "$PM_BIN" firewall --inventory "$INVENTORY" --all --out "$CK_WORK/rules-static" >"$CK_WORK/fw.log" 2>&1 || rc=$?
  "$DYNAMIC" firewall --inventory "$INVENTORY" --all --out "$CK_WORK/rules-dynamic" >/dev/null 2>&1
  if [[ $rc -eq 0 ]] && diff -r "$CK_WORK/rules-dynamic" "$CK_WORK/rules-static" >"$CK_WORK/fw.diff"; then
    ck_ok "firewall --all: exit 0, $(find "$CK_WORK/rules-static" -type f | wc -l) files, the same as the dynamic binary's"
  else
    ck_fail "firewall --all: exit $rc: $(head -5 "$CK_WORK/fw.log" "$CK_WORK/fw.diff")"
  fi

  ck_start_cluster
  outside=0 libraries=0
  for node in "${CK_NODES[@]}"; do
    pid=${CK_AGENT_PID[$node]}
    [[ $(readlink "/proc/$pid/root") == "$ROOT" ]] || outside=$((outside + 1))
    ! grep -q '\.so' "/proc/$pid/maps" || libraries=$((libraries + 1))
  done
  if [[ $outside -eq 0 && $libraries -eq 0 ]]; then
    ck_ok "${#CK_NODES[@]} agents run in the chroot, none with a shared library mapped"
  else
    ck_fail "$outside agent(s) outside the chroot, $libraries with a shared library mapped"
  fi
  if grep -q " $ROOT[/ ]" /proc/self/mountinfo; then
    ck_fail "the agents' mounts under $ROOT are visible outside their processes"
  else
    ck_ok "the agents' mounts are private to them"
  fi

  ck_check static
  ck_exit_status 0
  ck_report_valid
  ck_summary failed=0 skipped=0
  ck_others_pass
  ck_agents_ok
  ck_finish
fi

if [[ ${1:-} == --phase && ${2:-} == egress ]]; then
  # 2. egress: DNS through dnsmasq, the chroot's /etc/hosts, TLS.
  source "$here/egress_lib.bash"
  eg_init "$name" "$WRAPPER"
  export PM_CHROOT_WORK=$WORK
  eg_setup
  # A name only the chroot's /etc/hosts knows (dnsmasq answers NXDOMAIN for
  # it), served by egress_lib.bash's plain HTTP server.
  sed -i 's/^\(  *\)- {host: plain.test, .*/&\n\1- {host: hosts-only.test, ports: [80], purpose: in \/etc\/hosts only}/' \
    "$WORK/inventory.yaml"
  grep -q hosts-only.test "$WORK/inventory.yaml" || die "cannot add hosts-only.test to the inventory"

  eg_run static
  eg_exit_status 1
  eg_expect good.test 443 ok direct      # DNS (dnsmasq), TLS verified against the test CA
  eg_expect plain.test 80 ok direct
  eg_expect hosts-only.test 80 ok direct # /etc/hosts, past the missing mdns4_minimal module
  eg_expect nxdomain.test 443 dns-failure direct
  eg_expect wrongname.test 443 tls-name-mismatch direct
  eg_expect untrusted.test 443 tls-untrusted direct
  eg_expect refused.test 443 refused direct
  eg_expect dropped.test 443 timeout direct

  # The same run traced: glibc's own files and dns services answer; no NSS
  # module is looked for, although nsswitch.conf names mdns4_minimal.
  ip netns exec "$CLIENT" env SSL_CERT_FILE="$WORK/pki/ca.crt" SSL_CERT_DIR=/nonexistent \
    strace -f -qq -e trace=openat -o "$WORK/strace.txt" "$PM_BIN" egress --inventory "$WORK/inventory.yaml" \
    --format json --output "$WORK/traced.json" --timeout-ms "$EG_TIMEOUT_MS" >/dev/null 2>&1 || true
  if ! grep -q '"/etc/hosts"' "$WORK/strace.txt"; then
    eg_fail "the traced egress did not read /etc/hosts: $(grep -c . "$WORK/strace.txt") lines traced"
  elif grep -q 'libnss_' "$WORK/strace.txt"; then
    eg_fail "the static binary looked for NSS modules: $(grep -o '"[^"]*libnss_[^"]*"' "$WORK/strace.txt" | sort -u | tr '\n' ' ')"
  else
    eg_ok "names resolved through /etc/hosts and DNS only: no NSS module looked for"
  fi
  eg_finish
fi

[[ $# -ge 1 && -x $1 ]] || { echo "usage: $0 PORTMATRIX [PM_NETPROBE]" >&2; exit 2; }
DYNAMIC=$(realpath "$1")
STATIC=${PM_STATIC_BINARY:-$here/../../build-static/portmatrix}
[[ -x $STATIC ]] || skip_or_fail "no static binary at $STATIC: build it with scripts/build-static.sh"
STATIC=$(realpath "$STATIC")
[[ $(id -u) -eq 0 ]] || skip_or_fail "needs root (chroot, mounts, network namespaces)"
PATH=$PATH:/usr/sbin:/sbin
for tool in unshare chroot mount ldd strace; do
  command -v "$tool" >/dev/null || skip_or_fail "$tool is not installed"
done

FAILURES=0
ok() { say "ok: $*"; }
fail() { FAILURES=$((FAILURES + 1)); say "FAIL: $*"; }

# --- the binary itself ------------------------------------------------------------

ldd_says=$(LC_ALL=C ldd "$STATIC" 2>&1 || true) # ldd exits 1 on a static binary
if [[ $ldd_says == *'not a dynamic executable'* ]]; then
  ok "ldd $STATIC: not a dynamic executable"
else
  fail "$STATIC is dynamic: $ldd_says"
fi
version_re='^portmatrix ([0-9][0-9.]*) \(commit ([0-9a-f]{7,}(-dirty)?|unknown), (static|dynamic)\)$'
static_version=$("$STATIC" --version)
dynamic_version=$("$DYNAMIC" --version)
if [[ $static_version =~ $version_re && ${BASH_REMATCH[4]} == static ]]; then
  ok "--version: $static_version"
else
  fail "static --version: '$static_version', expected 'portmatrix VERSION (commit COMMIT, static)'"
fi
if [[ $dynamic_version =~ $version_re && ${BASH_REMATCH[4]} == dynamic ]]; then
  ok "--version: $dynamic_version"
else
  fail "dynamic --version: '$dynamic_version', expected 'portmatrix VERSION (commit COMMIT, dynamic)'"
fi
if [[ ${static_version%, *} == "${dynamic_version%, *}" ]]; then
  ok "both binaries are the same version and commit"
else
  fail "the static binary is not from the dynamic one's version and commit: rebuild it (scripts/build-static.sh)"
fi

# --- the chroot -----------------------------------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pm-static.XXXXXX")
ROOT=$TMP/root
PHASE_PID=''
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n $PHASE_PID ]]; then kill -TERM "$PHASE_PID" 2>/dev/null; wait "$PHASE_PID" 2>/dev/null; fi
  # The mounts lived in the wrappers' own mount namespaces; should one still
  # be visible here, the tree is left in place rather than removed through it.
  if grep -q " $ROOT[/ ]" /proc/self/mountinfo; then
    say "ERROR: still mounted under $ROOT; left in place"
    rc=1
  else
    rm -rf --one-file-system "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$ROOT/etc" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
cp "$STATIC" "$ROOT/portmatrix"
: >"$ROOT/dev/null" # the mount point of /dev/null's bind
printf '127.0.0.1 localhost\n198.18.0.16 hosts-only.test\n' >"$ROOT/etc/hosts"
echo "nameserver 198.18.0.53" >"$ROOT/etc/resolv.conf" # egress_lib.bash's dnsmasq
# A desktop's hosts line: mdns4_minimal is a module (libnss_mdns4_minimal.so.2)
# that is not in the chroot; passwd names systemd's, also absent.
cat >"$ROOT/etc/nsswitch.conf" <<'EOF'
passwd: files systemd
group:  files systemd
hosts:  files mdns4_minimal [NOTFOUND=return] dns
EOF

# portmatrix ARGS: the static binary in $PM_CHROOT, with $PM_CHROOT_WORK
# bound at its own path. The process keeps the wrapper's pid (exec all the
# way), so the libraries' ck_spawn/ck_stop and cleanup traps work unchanged.
WRAPPER=$TMP/portmatrix-in-chroot
cat >"$WRAPPER" <<'EOF'
#!/bin/sh
exec unshare --mount --propagation private /bin/sh -c '
  set -e
  mount -t proc proc "$PM_CHROOT/proc"
  mount -t sysfs sysfs "$PM_CHROOT/sys"
  mount --bind /dev/null "$PM_CHROOT/dev/null"
  mkdir -p "$PM_CHROOT$PM_CHROOT_WORK"
  mount --bind "$PM_CHROOT_WORK" "$PM_CHROOT$PM_CHROOT_WORK"
  exec chroot "$PM_CHROOT" /portmatrix "$@"' portmatrix "$@"
EOF
chmod 755 "$WRAPPER"
export PM_CHROOT=$ROOT ROOT WRAPPER DYNAMIC

# Runs one scenario (below) as its own process, so its library's variables
# and cleanup trap are its own; our trap forwards a TERM to it. Returns its status.
run_phase() { # check|egress
  local rc=0
  "$0" --phase "$1" "$DYNAMIC" &
  PHASE_PID=$!
  wait "$PHASE_PID" || rc=$?
  PHASE_PID=''
  return "$rc"
}

# After a scenario: no mount under the chroot here (the wrappers' mounts were
# private to theirs), no process left inside it.
after_phase() { # NAME
  local p left=()
  if grep -q " $ROOT[/ ]" /proc/self/mountinfo; then
    fail "$1: mounts left under $ROOT: $(grep " $ROOT[/ ]" /proc/self/mountinfo)"
  else
    ok "$1: no mount under $ROOT"
  fi
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$ROOT" ]] && left+=("${p#/proc/}")
  done
  if [[ ${#left[@]} -eq 0 ]]; then ok "$1: no process left in the chroot"; else fail "$1: processes left in the chroot: ${left[*]}"; fi
}

status=0
run_phase check || status=$?
after_phase check
if [[ $status -eq 0 || $status -eq 1 ]]; then
  rc=0
  run_phase egress || rc=$?
  after_phase egress
  [[ $rc -eq 0 ]] || status=$rc
fi
[[ $status -ne 77 ]] || skip_or_fail "a scenario was skipped (see above)"
[[ $FAILURES -eq 0 ]] || status=1
if [[ $status -eq 0 ]]; then say "PASS"; else say "FAILED (status $status)"; fi
exit "$status"
