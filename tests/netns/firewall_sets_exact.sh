#!/usr/bin/env bash
# Scenario: the address sets that the generated rules load into the kernel
# hold exactly the inventory's addresses, no more and no fewer. The inventory
# has what collapsing must get right: runs of consecutive addresses across an
# octet (IPv4) and a 16-bit group (IPv6), a run of one, overlapping CIDRs, a
# client node inside a client CIDR and one just past it, admin CIDRs that
# touch. The nftables file is applied with `nft -f` and the iptables script
# (ipset restore) with sh, each in a namespace of its own; then every set the
# kernel holds (nft -j list ruleset, ipset save) is expanded and compared with
# what the inventory says. firewalld and ufw are not installed here: their
# entries are checked as text, with Python's ipaddress (what firewalld itself
# uses to reject overlapping ipset entries): exact prefixes, no overlap, the
# same union.
#
# usage: firewall_sets_exact.sh PORTMATRIX PM_NETPROBE   (root; exit 77 = skipped)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

netns_init sets "nft ipset iptables-restore ip6tables-restore python3" "$@"

python3 - "$WORK" <<'PY'
import ipaddress, json, sys
work = sys.argv[1]
nodes = []  # (name, address, role)
for i in range(3):
    nodes.append((f"master{i}", f"10.9.0.{11 + i}", "master"))
for i in range(40):  # 10.9.0.240 .. 10.9.1.23: across an octet
    nodes.append((f"worker{i}", str(ipaddress.ip_address("10.9.0.240") + i), "worker"))
for i in range(9):   # fd00:9::fffc .. fd00:9::1:4: across a 16-bit group
    nodes.append((f"worker6-{i}", str(ipaddress.ip_address("fd00:9::fffc") + i), "worker"))
nodes.append(("worker-lone", "10.9.3.99", "worker"))
nodes.append(("worker6-lone", "fd00:9::9:9", "worker"))
for i, last in enumerate((31, 33, 35)):  # not consecutive: three singles
    nodes.append((f"mongo{i}", f"10.9.0.{last}", "mongodb"))
nodes.append(("es0", "10.9.0.41", "elasticsearch"))
nodes.append(("lb1", "10.9.0.5", "loadbalancer"))
nodes.append(("client-in", "10.9.2.7", "client"))     # inside 10.9.2.0/25
nodes.append(("client-next", "10.9.2.128", "client"))  # just past it
clients = ["10.9.2.0/25", "10.9.2.64/26", "fd00:c::/120", "fd00:c::100/120"]
admins = ["10.9.4.0/24", "10.9.5.0/25", "10.9.5.128/25", "fd00:ad::/64", "fd00:ad::1"]

with open(f"{work}/inventory.yaml", "w") as f:
    f.write("cluster: sets\nloadbalancer: {vip: 10.9.0.100}\n")
    f.write(f"admin_cidrs: {json.dumps(admins)}\nclient_cidrs: {json.dumps(clients)}\nnodes:\n")
    for name, address, role in nodes:
        f.write(f'  - {{name: {name}, address: "{address}", roles: [{role}]}}\n')

expected = {}  # "role/v4" -> networks whose union the set must be
def add(key, text):
    net = ipaddress.ip_network(text, strict=False)
    expected.setdefault(f"{key}/v{net.version}", []).append(str(net))
for name, address, role in nodes:
    add(role, address)
for cidr in clients:
    add("client", cidr)
for cidr in admins:
    add("admin", cidr)
json.dump(expected, open(f"{work}/expected.json", "w"), indent=1)
PY

"$PM_BIN" firewall --inventory "$WORK/inventory.yaml" --all --out "$WORK/rules" --format nftables >/dev/null
"$PM_BIN" firewall --inventory "$WORK/inventory.yaml" --all --out "$WORK/rules" --format iptables >/dev/null
"$PM_BIN" firewall --inventory "$WORK/inventory.yaml" --all --out "$WORK/rules" --format firewalld >/dev/null
"$PM_BIN" firewall --inventory "$WORK/inventory.yaml" --all --out "$WORK/rules" --format ufw >/dev/null

# The sets are the same in every node's file: one node per backend will do.
netns_add "$PREFIX-nft"
netns_add "$PREFIX-ipt"
ip netns exec "$PREFIX-nft" nft -f "$WORK/rules/worker0.nft" || fail "nft -f worker0.nft failed"
ip netns exec "$PREFIX-nft" nft -j list ruleset >"$WORK/nft.json"
ip netns exec "$PREFIX-ipt" sh "$WORK/rules/worker0.iptables.sh" >"$WORK/ipt.log" 2>&1 ||
  fail "sh worker0.iptables.sh failed: $(cat "$WORK/ipt.log")"
ip netns exec "$PREFIX-ipt" ipset save >"$WORK/ipset.save"
log "applied: nft -f worker0.nft and sh worker0.iptables.sh, each in its own namespace"

if ! python3 - "$WORK" <<'PY'; then
import ipaddress, json, re, sys
work = sys.argv[1]
expected = json.load(open(f"{work}/expected.json"))
failures = 0

def intervals(networks):
    """Sorted, merged (first, last) integer intervals of a list of networks or (first, last) pairs."""
    spans = []
    for item in networks:
        if isinstance(item, tuple):
            spans.append(item)
        else:
            net = ipaddress.ip_network(item, strict=False)
            spans.append((int(net.network_address), int(net.broadcast_address)))
    spans.sort()
    merged = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged

def show(spans, version):
    kind = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return ", ".join(f"{kind(a)}-{kind(b)}" for a, b in spans)

def check(backend, key, actual, entries):
    global failures
    version = 4 if key.endswith("v4") else 6
    want = intervals(expected.get(key, []))
    got = intervals(actual)
    if want != got:
        failures += 1
        print(f"[sets] FAIL: {backend} {key}: holds {show(got, version) or 'nothing'}; the inventory says {show(want, version) or 'nothing'}")
    else:
        print(f"[sets]   {backend:9} {key:18} {entries:3} entries, exactly the inventory's {sum(b - a + 1 for a, b in want)} addresses")

roles = ["admin", "master", "worker", "mongodb", "elasticsearch", "loadbalancer", "client"]

# nftables: the kernel's view of each set, from its JSON listing.
sets = {}
for item in json.load(open(f"{work}/nft.json"))["nftables"]:
    if "set" in item and item["set"]["table"] == "portmatrix":
        sets[item["set"]["name"]] = item["set"].get("elem", [])
def nft_span(element):
    if isinstance(element, dict) and "elem" in element:
        element = element["elem"]["val"]
    if isinstance(element, str):
        a = int(ipaddress.ip_address(element))
        return (a, a)
    if "prefix" in element:
        net = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}")
        return (int(net.network_address), int(net.broadcast_address))
    if "range" in element:
        return (int(ipaddress.ip_address(element["range"][0])), int(ipaddress.ip_address(element["range"][1])))
    raise ValueError(f"unexpected nft set element {element!r}")
for role in roles:
    for family in ("v4", "v6"):
        elements = sets.get(f"{role}_{family}")
        if elements is None:
            failures += 1
            print(f"[sets] FAIL: nftables: no set {role}_{family}")
            continue
        check("nftables", f"{role}/{family}", [nft_span(e) for e in elements], len(elements))

# ipset: what `ipset save` says each hash:net set holds.
members = {}
for line in open(f"{work}/ipset.save"):
    words = line.split()
    if len(words) >= 3 and words[0] == "create":
        members[words[1]] = []
    elif len(words) >= 3 and words[0] == "add":
        members[words[1]].append(words[2])
for role in roles:
    for family in ("v4", "v6"):
        name = f"pm-{role}-{family}"
        if name not in members:
            failures += 1
            print(f"[sets] FAIL: ipset: no set {name}")
            continue
        check("ipset", f"{role}/{family}", members[name], len(members[name]))

# firewalld and ufw: their entries as text, with the checks firewalld makes.
def entries_of(path, pattern):
    found = {}
    for line in open(path):
        m = re.search(pattern, line)
        if m:
            found.setdefault(m.group(1), []).append(m.group(2))
    return found
def check_prefixes(backend, key, texts):
    global failures
    nets = []
    for text in texts:
        net = ipaddress.ip_network(text)  # strict: no host bits past the prefix
        if "/" in text and net.prefixlen == net.max_prefixlen:
            failures += 1
            print(f"[sets] FAIL: {backend} {key}: single address written as {text}")
        nets.append(net)
    for a, b in zip(sorted(nets), sorted(nets)[1:]):
        if a.overlaps(b):
            failures += 1
            print(f"[sets] FAIL: {backend} {key}: {a} overlaps {b} (firewalld rejects overlapping entries; ufw gets a redundant rule)")
    check(backend, key, [str(n) for n in nets], len(nets))

# firewalld: each set's entries are a here-document, loaded by the
# --add-entries-from-file line that follows it.
firewalld, block = {}, None
for line in open(f"{work}/rules/worker0.firewalld.sh"):
    line = line.rstrip("\n")
    if block is not None and line != "PORTMATRIX_ENTRIES":
        block.append(line)
    elif line.startswith("cat >") and line.endswith("<<'PORTMATRIX_ENTRIES'"):
        block = []
    elif line == "PORTMATRIX_ENTRIES":
        loaded, block = block, None
    elif m := re.match(r'\$fw --ipset=pm-(\S+)-(?:v4|v6) --add-entries-from-file="\$entries"$', line):
        firewalld.setdefault(m.group(1), []).extend(loaded)
        loaded = []
    elif "--add-entry" in line:
        failures += 1
        print(f"[sets] FAIL: firewalld: an entry added one call at a time: {line}")
firewalld_by_key = {}
for role, texts in firewalld.items():
    for text in texts:
        firewalld_by_key.setdefault(f"{role}/v{ipaddress.ip_network(text).version}", []).append(text)
for role in roles:
    for family in ("v4", "v6"):
        check_prefixes("firewalld", f"{role}/{family}", firewalld_by_key.get(f"{role}/{family}", []))

# ufw: the sources of the rules for one port, by the comment's role; SSH from admin.
ufw = {}
for line in open(f"{work}/rules/worker0.ufw.sh"):
    m = re.match(r"ufw allow proto (\S+) from (\S+) to any port (\S+) comment '(.*)'", line)
    if not m or m.group(2) == "any":
        continue
    comment = m.group(4).removeprefix("portmatrix: ")  # the mark by which apply and remove know our rules
    role = "admin" if comment.startswith("SSH") else comment.split(":")[0].removeprefix("from ")
    ufw.setdefault((role, m.group(1), m.group(3), m.group(4)), []).append(m.group(2))
seen = set()
for (role, proto, ports, comment), texts in sorted(ufw.items()):
    if role in seen:
        continue
    seen.add(role)
    for family in ("v4", "v6"):
        check_prefixes("ufw", f"{role}/{family}",
                       [t for t in texts if ipaddress.ip_network(t).version == int(family[1])])

sys.exit(1 if failures else 0)
PY
  fail "a set differs from the inventory (see above)"
fi
netns_finish
