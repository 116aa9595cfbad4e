#!/usr/bin/env bash
# check's HTML page in a real browser (Debian's headless chromium): a check of
# a loopback cluster whose agents are not there (every flow skipped) writes
# the page; chromium renders it, and the test asserts on what the browser
# saw: the node x node matrix has one cell per ordered pair of nodes, the
# console stayed silent, the page fetched nothing (chromium's net log: no
# request made for the page but file://; a control page's two fetches are
# seen), every link lands on the page, and it prints (a PDF of 1 to 20
# pages). The screenshot and the PDF are kept as artefacts.
# Skipped, saying why, without chromium; under CI=true that is a failure.
#   usage: html_chromium.sh PORTMATRIX [ARTEFACT_DIR]   (default: PORTMATRIX's directory/artefacts)
set -uo pipefail
pm=$1
artefacts=${2:-$(dirname "$pm")/artefacts}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: chromium is not installed (scripts/install-deps.sh installs it)"; exit 1; fi
  echo "skipped: chromium is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$artefacts" || { echo "FAIL: cannot make $artefacts"; exit 1; }

# Six nodes on loopback addresses; port 9 (discard) has no agent: the check ends quickly, every flow skipped.
nodes=(m1 m2 m3 w1 w2 lb1)
{
  printf '%s\n' 'cluster: browser' 'profile: apinizer' 'agent: {control_port: 9}' 'loadbalancer: {vip: 127.0.0.100}' 'nodes:'
  printf '%s\n' '  - {name: m1, address: 127.0.0.11, roles: [master]}' '  - {name: m2, address: 127.0.0.12, roles: [master]}' \
    '  - {name: m3, address: 127.0.0.13, roles: [master]}' '  - {name: w1, address: 127.0.0.21, roles: [worker]}' \
    '  - {name: w2, address: 127.0.0.22, roles: [worker]}' '  - {name: lb1, address: 127.0.0.5, roles: [loadbalancer]}'
} >"$work/inventory.yaml"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token" && echo >>"$work/token" && chmod 600 "$work/token"
"$pm" check --inventory "$work/inventory.yaml" --token-file "$work/token" --deadline 2 --timeout-ms 100 --format html \
  --output "$work/report.html" >"$work/check.out" 2>"$work/check.err"
rc=$?
if [ "$rc" -ne 1 ] || [ ! -s "$work/report.html" ]; then
  echo "FAIL: check --format html: exit $rc (expected 1), $(head -c 300 "$work/check.err")"
  exit 1
fi
cp "$work/report.html" "$artefacts/check-report.html"

# One profile per run, nothing but the page: no background services, no name resolution.
chrome() { # OUTPUT_FLAG...: runs chromium on the page; stderr to $work/chromium.err (appended)
  timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
    --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-default-apps \
    --host-resolver-rules="MAP * ~NOTFOUND" --enable-logging=stderr --v=0 --window-size=1280,1600 \
    "$@" "file://$work/report.html" 2>>"$work/chromium.err"
}
if ! chrome --log-net-log="$work/net.json" --dump-dom >"$work/dom.html"; then
  echo "FAIL: chromium --dump-dom failed: $(grep -v -e dbus -e WARNING "$work/chromium.err" | tail -5)"
  exit 1
fi
if ! chrome --screenshot="$artefacts/check-report.png" >/dev/null || [ ! -s "$artefacts/check-report.png" ]; then
  echo "FAIL: chromium --screenshot failed: $(grep -v -e dbus -e WARNING "$work/chromium.err" | tail -5)"
  exit 1
fi
# Printed (the page's print style): a PDF of a few pages, kept beside the screenshot.
if ! chrome --no-pdf-header-footer --print-to-pdf="$artefacts/check-report.pdf" >/dev/null ||
  [ "$(head -c 5 "$artefacts/check-report.pdf" 2>/dev/null)" != "%PDF-" ]; then
  echo "FAIL: chromium --print-to-pdf failed: $(grep -v -e dbus -e WARNING "$work/chromium.err" | tail -5)"
  exit 1
fi
# The detector of fetches must see one: a page that loads an image from loopback's port 9 and a style sheet by name.
printf '%s\n' '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://fonts.example.com/a.css"></head>' \
  '<body><img src="http://127.0.0.1:9/a.png" alt=""></body></html>' >"$work/control.html"
timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$work/profile" \
  --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-default-apps \
  --host-resolver-rules="MAP * ~NOTFOUND" --log-net-log="$work/control-net.json" --dump-dom "file://$work/control.html" \
  >/dev/null 2>>"$work/chromium.err"

/usr/bin/python3 - "$work/dom.html" "$work/net.json" "$work/chromium.err" "$work/control-net.json" \
  "$artefacts/check-report.pdf" "${nodes[@]}" <<'PY'
import json, re, sys
from html.parser import HTMLParser
dom_path, net_path, err_path, control_path, pdf_path, *nodes = sys.argv[1:]
bad = []

class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.depth, self.in_matrix, self.cells, self.ids, self.links = 0, None, [], set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "details":
            self.depth += 1
            if a.get("id") == "node-matrix": self.in_matrix = self.depth
        if tag == "td" and self.in_matrix and "cell" in (a.get("class") or "").split():
            self.cells.append((a.get("data-from"), a.get("data-to"), a.get("class")))
        if "id" in a: self.ids.add(a["id"])
        if tag == "a" and "href" in a: self.links.append(a["href"])
    def handle_endtag(self, tag):
        if tag == "details":
            if self.in_matrix == self.depth: self.in_matrix = None
            self.depth -= 1
parser = Cells()
parser.feed(open(dom_path).read())
pairs = [(f, t) for f, t, _ in parser.cells if t != "vip"]
expected = {(f, t) for f in nodes for t in nodes}
if len(pairs) != len(expected) or set(pairs) != expected:
    bad.append(f"the node matrix has {len(pairs)} cells for {len(expected)} node pairs; "
               f"missing {sorted(expected - set(pairs))[:5]}, extra {sorted(set(pairs) - expected)[:5]}")
with_flows = [c for c in parser.cells if c[2].split()[-1] != "none"]
if not with_flows: bad.append("no cell of the node matrix has a flow")

console = [line for line in open(err_path, errors="replace") if ":CONSOLE" in line]
if console: bad.append(f"console messages: {console[:3]}")

# Every link of the page (each matrix cell's too) lands on an element of the page.
off = [l for l in parser.links if not l.startswith("#") or l[1:] not in parser.ids]
if off: bad.append(f"{len(off)} of {len(parser.links)} links land nowhere on the page: {off[:5]}")
if len(parser.links) < len(with_flows): bad.append(f"{len(parser.links)} links for {len(with_flows)} cells with flows")

def fetched(path):
    """What the page (not the browser's own services) asked the network for."""
    net = json.load(open(path))
    return sorted({e["params"]["url"] for e in net.get("events", [])
                   if "url" in e.get("params", {}) and "file://" in str(e["params"].get("network_isolation_key", ""))
                   and not e["params"]["url"].startswith("file:")})
if fetched(net_path): bad.append(f"the page fetched {fetched(net_path)[:5]}")
control = fetched(control_path)
if len(control) != 2: bad.append(f"the fetch detector saw {control} of the control page's image and style sheet")

pdf = open(pdf_path, "rb").read()
pages = max([int(n) for n in re.findall(rb"/Count (\d+)", pdf)] or [0])
if not 1 <= pages <= 20: bad.append(f"the printed page has {pages} pages")

if bad:
    print("FAIL: " + "\nFAIL: ".join(bad))
    sys.exit(1)
print(f"ok: {len(pairs)} cells for {len(nodes)} nodes ({len(with_flows)} with flows), {len(parser.links)} links on the page, "
      f"no console message, nothing fetched (the control page's {len(control)} fetches seen), printed on {pages} pages")
PY
rc=$?
[ "$rc" -eq 0 ] && echo "html_chromium: passed (screenshot: $artefacts/check-report.png)"
exit "$rc"
