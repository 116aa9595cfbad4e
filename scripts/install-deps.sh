#!/usr/bin/env bash
# Installs what building and testing portmatrix needs, from Debian 12's
# packages only, and only what is missing (so it is quick and offline-safe
# when everything is there). Needs root (or sudo) when something is missing.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev  # libFuzzer (tests/fuzz/run.sh)
  # the real components the scenario tests and the demo run
  iproute2 nftables iptables ipset ufw haproxy keepalived openssl curl procps python3
  python3-jsonschema  # the tests validate every JSON report against docs/schema/
  groff-base man-db zsh fish  # the man pages render, each shell's completion completes (tests/cli/docs.sh)
  dnsmasq-base tinyproxy
  strace  # the static binary test (tests/netns/static_chroot.sh) traces its name lookups
  etcd-server  # a real service for the "who answers" tests (identify)
  openssh-server openssh-client sudo  # the SSH fan-out scenarios (tests/netns/ssh_*.sh)
  # firewall apply's firewalld backend (tests/netns/apply_*.sh, PM_APPLY_BACKEND=firewalld): each test
  # node runs its own firewalld with its own dbus-daemon; the host's firewalld is masked below, never started
  firewalld dbus-daemon
  # the reference the benchmark compares with (bench/run.sh)
  nmap
  # script(1): the CLI tests give a command a terminal (colour only on a TTY)
  bsdutils
  # load on every core while the suite runs, to find its races (issue 22's flake count)
  stress-ng
  # a real browser renders check's HTML page (tests/cli/html_chromium.sh)
  chromium
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
# Installing firewalld where systemd runs would start it on this host, with
# its default zone filtering this host's own traffic: masked first, so the
# package installs without starting (the tests start their own, per node).
if [[ " ${missing[*]} " == *" firewalld "* && -d /run/systemd/system ]]; then
  $sudo systemctl mask firewalld.service >/dev/null
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
