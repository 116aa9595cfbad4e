#!/usr/bin/env bash
# firewall remove --ssh: master2's rules applied and confirmed (boot-time
# files written), a table of the host's own added beside them, then remove:
# no table inet portmatrix on master2, no boot-time file left (the
# nftables.conf portmatrix created is gone too), no state directory, and
# the host's own table still there, its rule intact. Another node (master3)
# keeps portmatrix's table.
#   usage: apply_remove.sh PORTMATRIX [PM_NETPROBE]
source "$(dirname "$0")/apply_lib.bash"
apply_init apply_remove "$@"
apply_inventory "$CK_WORK/inventory-remove.yaml"

apply_pm applied apply --node master2 --no-verify --confirm-timeout 30
ck_exit_status 0
[[ -f $APPLY_ROOT/etc/portmatrix/portmatrix.nft && $(apply_state_of master2) == confirmed ]] ||
  ck_die "the apply left no boot-time file or is not confirmed: $(cat "$CK_WORK/applied.err")"
grep -q 'flows are NOT checked' "$CK_WORK/applied.err" && ck_ok "--no-verify says the flows were not checked" ||
  ck_fail "--no-verify said nothing on stderr"
ck_in master2 nft -f - <<'EOF_NFT'
table ip hostown {
  chain input { type filter hook input priority 10; policy accept; tcp dport 9999 counter accept; }
}
EOF_NFT

apply_pm removed remove --node master2
ck_exit_status 0
tables=$(ck_in master2 nft list tables | tr '\n' ' ')
[[ $tables != *"inet portmatrix"* ]] && ck_ok "no portmatrix table on master2 (tables: $tables)" || ck_fail "tables on master2: $tables"
ck_in master2 nft list table ip hostown | grep -q 'tcp dport 9999 counter' &&
  ck_ok "the host's own table and its rule are still there" || ck_fail "the host's own table is gone or changed"
left=$(find "$APPLY_ROOT" "$APPLY_STATE" -mindepth 1 -not -type d | head -5)
[[ -z $left ]] && ck_ok "no boot-time file and no state file left" || ck_fail "left: $left"
[[ ! -e $APPLY_STATE/master2 ]] && ck_ok "master2's state directory is gone" || ck_fail "master2's state directory is still there"
ck_in master3 nft list tables | grep -q 'inet portmatrix' && ck_ok "master3 keeps its table" || ck_fail "master3 lost its table"

ck_finish
