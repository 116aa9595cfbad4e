#!/usr/bin/env bash
# The man pages and shell completions `portmatrix __docs` writes (the build
# does, for `cmake --install`): every page renders with groff and man without
# a warning and lists exactly the flags --help lists (one source: they cannot
# drift); bash, zsh and fish each load their completion and complete
# commands, flags, --format's choices, files, profile names and the node
# names of the --inventory on the line.
# With BUILD_DIR: `cmake --install BUILD_DIR` installs the binary, the pages
# and the completions where man and each shell look for them.
#   usage: docs.sh PORTMATRIX [BUILD_DIR]
set -uo pipefail
pm=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
build=${2:+$(realpath "$2")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

missing=()
for tool in groff man zsh fish; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL (CI=true): not installed: ${missing[*]} (scripts/install-deps.sh)"; exit 1; fi
  echo "skipped: not installed: ${missing[*]} (scripts/install-deps.sh installs them)"
  exit 77
fi

"$pm" __docs --out "$work/docs" 2>/dev/null || bad "__docs failed"
"$pm" demo --out "$work/demo" --files-only >/dev/null 2>&1
inv=$work/demo/inventory.yaml
commands=(ports diff firewall lb agent check egress preflight demo profiles)

# --- man pages ---------------------------------------------------------------------
[ "$(ls "$work/docs/man/man1" | wc -l)" -eq $((${#commands[@]} + 1)) ] && ok ||
  bad "expected $((${#commands[@]} + 1)) man pages: $(ls "$work/docs/man/man1" | tr '\n' ' ')"
flags_of_help() { "$pm" "$@" --help | grep -oE '^ +(-[a-zA-Z], ?)?--[a-z][a-z-]*' | grep -oE -- '--[a-z-]+' | sort -u; }
flags_of_page() { grep -oE '^\\fB\\-\\-[a-z]([a-z]|\\-)*' "$1" | sed 's/\\fB//; s/\\-/-/g' | sort -u; }
for page in "$work"/docs/man/man1/*.1; do
  name=$(basename "$page" .1)
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] && ok || bad "$name: groff warns: $warnings"
  text=$(MANWIDTH=80 man -l "$page" 2>&1) && grep -q '^NAME' <<<"$text" && grep -q '^SYNOPSIS' <<<"$text" && ok ||
    bad "$name: man does not render it: $(head -5 <<<"$text")"
  if [ "$name" = portmatrix ]; then args=(); else args=("${name#portmatrix-}"); fi
  if diff <(flags_of_help "${args[@]}") <(flags_of_page "$page") >"$work/flags.diff"; then ok
  else bad "$name: its flags differ from --help's (< --help, > page):"; cat "$work/flags.diff"; fi
done
grep -q 'portmatrix-check' "$work/docs/man/man1/portmatrix.1" && ok || bad "portmatrix(1) does not point at portmatrix-check(1)"
MANWIDTH=80 man -l "$work/docs/man/man1/portmatrix-check.1" 2>/dev/null | grep -q 'table, json, junit or html' && ok ||
  bad "portmatrix-check(1) lacks --format's text"

# --- completions -------------------------------------------------------------------
# expect_words SHELL LINE WORDS...: completing LINE offers every one of WORDS.
expect_words() {
  local shell=$1 line=$2 word got; shift 2
  got=$(complete_"$shell" "$line" 2>&1)
  for word in "$@"; do
    grep -qxF -- "$word" <<<"$got" || { bad "$shell: '$line' does not offer '$word'; it offers: $(head -c 300 <<<"$got" | tr '\n' ' ')"; return; }
  done
  ok
}
# the line's words with the last one (maybe empty) the one being completed
complete_bash() {
  bash --norc --noprofile -c 'source "$1"; read -ra COMP_WORDS <<<"$2"; [[ $2 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _portmatrix; printf "%s\n" "${COMPREPLY[@]}"' _ "$work/docs/completions/portmatrix.bash" "$1"
}
complete_zsh() {
  zsh -f -c 'compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }; _files() { print -r -- "(files)"; }
    source "$1"; words=(${(z)2}); [[ $2 == *" " ]] && words+=(""); CURRENT=${#words}; _portmatrix' _ "$work/docs/completions/_portmatrix" "$1"
}
complete_fish() {
  PATH=$(dirname "$pm"):$PATH fish --no-config -c 'source $argv[1]; complete -C"$argv[2]" | string replace -r "\t.*" ""' \
    "$work/docs/completions/portmatrix.fish" "$1"
}
cd "$work" || exit 1
touch "$work/cluster.yaml"
# bash and zsh call the portmatrix on the line (an absolute path here); fish finds it on PATH.
for shell in bash zsh fish; do
  me=$pm
  [ "$shell" = fish ] && { [ "$(basename "$pm")" = portmatrix ] || { bad "fish: the binary is not named portmatrix"; continue; }; me=portmatrix; }
  expect_words "$shell" "$me p" ports preflight profiles
  expect_words "$shell" "$me check --fo" --format
  expect_words "$shell" "$me check --format " table json junit html
  expect_words "$shell" "$me preflight --mode " install running
  expect_words "$shell" "$me ports --flows " pairs groups
  expect_words "$shell" "$me profiles " apinizer apinizer-doc kubernetes-1.31
  expect_words "$shell" "$me diff apinizer-doc " apinizer flannel-0.27
  expect_words "$shell" "$me ports --profile " apinizer
  expect_words "$shell" "$me firewall --inventory $inv --node " master1 worker3 lb1
  if [ "$shell" = zsh ]; then expect_words zsh "$me check --inventory " "(files)"
  else expect_words "$shell" "$me check --inventory cl" cluster.yaml; fi
done

# zsh for real: an interactive zsh in a pseudo-terminal, the completion autoloaded from fpath, a tab typed.
zsh_line() { # LINE EXPECTED: the line after LINE and a tab
  local got
  got=$(zsh -f "$here/zsh_complete.zsh" "$work/docs/completions" "$(dirname "$pm")" "$1" 2>&1)
  [ "$got" = "@@$2@@" ] && ok || bad "zsh (interactive): '$1' + tab gave '$got', expected '@@$2@@'"
}
if [ "$(basename "$pm")" = portmatrix ]; then
  zsh_line "portmatrix check --format ta" "portmatrix check --format table "
  zsh_line "portmatrix prof" "portmatrix profiles "
  zsh_line "portmatrix diff apinizer-doc flan" "portmatrix diff apinizer-doc flannel-0.27 "
  zsh_line "portmatrix firewall --inventory $inv --node lb" "portmatrix firewall --inventory $inv --node lb1 "
else
  bad "zsh (interactive): the binary is not named portmatrix"
fi

# --- the written docs ---------------------------------------------------------------
# README stays a front page (at most 150 lines); every relative link in README,
# ARCHITECTURE and docs/ names a file that exists.
source_dir=$(cd "$here/../.." && pwd)
lines=$(wc -l <"$source_dir/README.md")
[ "$lines" -le 150 ] && ok || bad "README.md has $lines lines; a front page has at most 150 (detail goes to docs/)"
links=$(/usr/bin/python3 - "$source_dir" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
pages = [root / "README.md", root / "ARCHITECTURE.md"] + sorted((root / "docs").rglob("*.md"))
for page in pages:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (page.parent / target).exists():
            print(f"{page.relative_to(root)}: {target}")
PY
)
[ -z "$links" ] && ok || bad "links to nothing: $links"

# --- cmake --install ----------------------------------------------------------------
if [ -n "$build" ]; then
  if cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1; then
    for file in bin/portmatrix share/man/man1/portmatrix.1 share/man/man1/portmatrix-check.1 \
      share/bash-completion/completions/portmatrix share/zsh/vendor-completions/_portmatrix \
      share/fish/vendor_completions.d/portmatrix.fish; do
      [ -s "$work/prefix/$file" ] && ok || bad "cmake --install did not install $file"
    done
    MANPATH=$work/prefix/share/man MANWIDTH=80 man portmatrix-egress 2>/dev/null | grep -q -- '--proxy' && ok ||
      bad "man finds no installed portmatrix-egress(1) with --proxy"
  else
    bad "cmake --install failed: $(tail -5 "$work/install.log")"
  fi
fi

echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
