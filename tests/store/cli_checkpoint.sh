#!/bin/sh
# SPDX-License-Identifier: MIT
#
# cli_checkpoint.sh FRACTIO - `fractio checkpoint DB DIR` from the command line: the copy holds
# what the database held (every keyspace, memtable data included), its table files are hard
# links, its report is well formed, later writes to the database do not reach it, and a
# non-empty DIR, a missing DB and a missing operand are refused without touching anything.
set -eu

fractio=${1:?usage: cli_checkpoint.sh PATH-TO-fractio}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_checkpoint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fail() {
	echo "cli_checkpoint: FAIL: $*" >&2
	exit 1
}

db=$tmp/db
ck=$tmp/ck
"$fractio" put "$db" k1 v1
"$fractio" put "$db" k2 v2 --keyspace other
"$fractio" flush "$db"
"$fractio" put "$db" k3 v3 # only in the journal until the checkpoint flushes it
"$fractio" del "$db" k1

"$fractio" checkpoint "$db" "$ck" >"$tmp/out" || fail "checkpoint exited $?"
for f in seqno data_files linked_files linked_bytes copied_files copied_bytes \
	metadata_files metadata_bytes; do
	grep -Eq "^$f: [0-9]+\$" "$tmp/out" || fail "no $f line in: $(cat "$tmp/out")"
done
grep -q "^checkpoint: $ck\$" "$tmp/out" || fail "no checkpoint line"
data=$(sed -n 's/^data_files: //p' "$tmp/out")
linked=$(sed -n 's/^linked_files: //p' "$tmp/out")
[ "$data" -ge 2 ] || fail "data_files $data"
[ "$linked" = "$data" ] || fail "linked_files $linked of $data on one file system"
[ -f "$ck/CURRENT" ] || fail "no CURRENT"

[ "$("$fractio" scan "$ck")" = "$(printf 'k3\tv3')" ] || fail "default keyspace of the copy"
[ "$("$fractio" get "$ck" k2 --keyspace other)" = v2 ] || fail "keyspace other of the copy"
[ "$("$fractio" keyspaces "$ck")" = "$(printf 'default\nother')" ] || fail "keyspace list"

# later writes to the database stay out of the copy
"$fractio" put "$db" k4 v4
"$fractio" compact "$db"
if "$fractio" get "$ck" k4 >/dev/null 2>&1; then fail "k4 reached the copy"; fi
[ "$("$fractio" get "$ck" k3)" = v3 ] || fail "k3 lost after compaction of the source"

# refusals
if "$fractio" checkpoint "$db" "$ck" >/dev/null 2>"$tmp/err"; then fail "non-empty DIR accepted"; fi
grep -q "not empty" "$tmp/err" || fail "message for a non-empty DIR: $(cat "$tmp/err")"
if "$fractio" checkpoint "$tmp/nodb" "$tmp/ck2" >/dev/null 2>&1; then fail "missing DB"; fi
[ ! -e "$tmp/nodb" ] && [ ! -e "$tmp/ck2" ] || fail "a refused checkpoint created files"
set +e
"$fractio" checkpoint "$db" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 64 ] || fail "a missing DIR exits $rc, not 64"
echo "cli_checkpoint: ok"
