#!/bin/sh
# SPDX-License-Identifier: MIT
#
# db_bench_smoke.sh BENCH - runs every workload of fractio-db-bench (BENCH) once on a small
# database and checks its output: one well-formed JSON line per benchmark, with the fields the
# comparisons read, and no verify errors (the program checks every read against the keys it
# wrote, and exits 1 on a wrong one). Then reopens a kept database with --use_existing_db, runs
# with KV separation (--blob_threshold), and checks that bad command lines are refused. RocksDB
# and LevelDB get the same short run when the build compiled them in (LevelDB must refuse
# --blob_threshold). Plain sh, grep and sed: no other interpreter is needed.
set -eu

bench=${1:?usage: db_bench_smoke.sh PATH-TO-fractio-db-bench}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/db_bench_smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

all=fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,seekrandom,deleterandom
all=$all,readwhilewriting,compact
required="engine benchmark ops ops_per_sec mb_per_sec p50_us p99_us write_amp disk_bytes"
required="$required peak_rss_kb threads"

fail() {
	echo "db_bench_smoke: FAIL: $*" >&2
	exit 1
}

# A flat JSON object of numbers, null, booleans and plain strings, as the program prints.
num='-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?'
val="($num|null|true|false|\"[^\"\\\\]*\")"
pair="\"[a-z0-9_]+\":$val"
json="^\\{$pair(,$pair)*\\}\$"

# field NAME LINE: prints the value of field NAME in LINE.
field() {
	printf '%s\n' "$2" | sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"
}

# check_output FILE ENGINE LIST: one valid line per benchmark of LIST, in order, and nothing
# else.
# (sh has no local variables: the names here must differ from run_all's.)
check_output() {
	file=$1 engine=$2 list=$3
	want=$(printf '%s\n' "$list" | tr ',' '\n' | wc -l)
	got=$(wc -l <"$file")
	[ "$got" -eq "$want" ] || fail "$engine: $got output lines for $want benchmarks"
	order=$(sed -n 's/^{"engine":"[a-z]*","benchmark":"\([a-z]*\)".*/\1/p' "$file" |
		paste -sd, -)
	[ "$order" = "$list" ] || fail "$engine: benchmarks ran as $order, want $list"
	for name in $(printf '%s\n' "$list" | tr ',' ' '); do
		cnt=$(grep -c "^{\"engine\":\"$engine\",\"benchmark\":\"$name\"," "$file" || true)
		[ "$cnt" -eq 1 ] || fail "$engine $name: $cnt result lines, want 1"
		line=$(grep "^{\"engine\":\"$engine\",\"benchmark\":\"$name\"," "$file")
		printf '%s\n' "$line" | grep -Eq "$json" || fail "$engine $name: not JSON: $line"
		for key in $required; do
			printf '%s\n' "$line" | grep -q "\"$key\":" ||
				fail "$engine $name: no $key in: $line"
		done
		[ "$(field verify_errors "$line")" = 0 ] || fail "$engine $name: verify errors"
		ops=$(field ops "$line")
		[ "$ops" -gt 0 ] || fail "$engine $name: ops is $ops"
		case $name in
		fill* | overwrite | deleterandom)
			case $(field write_amp "$line") in
			null) [ -r /proc/self/io ] && fail "$engine $name: no write_amp" ;;
			esac
			;;
		readmissing)
			[ "$(field found "$line")" = 0 ] || fail "$engine readmissing found keys"
			;;
		compact)
			[ "$(field logical_bytes "$line")" -gt 0 ] ||
				fail "$engine compact: no logical_bytes"
			;;
		esac
	done
}

# run_all ENGINE NUM: every workload, then the same database reopened as it is.
run_all() {
	engine=$1 n=$2
	"$bench" --engine="$engine" --quick --num="$n" --benchmarks="$all" \
		>"$tmp/$engine.out" || fail "$engine: exit status $?"
	check_output "$tmp/$engine.out" "$engine" "$all"
	# fillrandom draws keys with repeats: about 1/e of them stay absent
	line=$(grep '"benchmark":"readrandom"' "$tmp/$engine.out")
	[ "$(field not_found "$line")" -gt 0 ] || fail "$engine readrandom: nothing absent"
	[ "$(field found "$line")" -gt 0 ] || fail "$engine readrandom: nothing found"

	"$bench" --engine="$engine" --quick --num="$n" --db="$tmp/$engine.db" \
		--benchmarks=fillseq >"$tmp/$engine.fill" || fail "$engine: fillseq with --db"
	"$bench" --engine="$engine" --quick --num="$n" --db="$tmp/$engine.db" --use_existing_db \
		--benchmarks=readrandom,readseq,fillseq >"$tmp/$engine.reuse" ||
		fail "$engine: --use_existing_db: exit status $?"
	check_output "$tmp/$engine.reuse" "$engine" readrandom,readseq
	line=$(grep '"benchmark":"readrandom"' "$tmp/$engine.reuse")
	[ "$(field found "$line")" = "$n" ] || fail "$engine: reopened readrandom: $line"
	line=$(grep '"benchmark":"readseq"' "$tmp/$engine.reuse")
	[ "$(field ops "$line")" = "$n" ] || fail "$engine: reopened readseq: $line"
	# a database made by the program may be overwritten by a fresh run
	"$bench" --engine="$engine" --quick --num=100 --db="$tmp/$engine.db" \
		--benchmarks=fillrandom,readrandom >/dev/null || fail "$engine: reusing --db"
}

run_all fractio 20000

# Bulk ingestion (fractio only): an empty database filled by ingest, then read back checked.
"$bench" --engine=fractio --quick --num=20000 --benchmarks=ingest,readrandom,readseq \
	>"$tmp/ingest.out" || fail "fractio ingest: exit status $?"
check_output "$tmp/ingest.out" fractio ingest,readrandom,readseq
line=$(grep '"benchmark":"readrandom"' "$tmp/ingest.out")
[ "$(field found "$line")" = 20000 ] || fail "fractio ingest: readrandom: $line"
line=$(grep '"benchmark":"readseq"' "$tmp/ingest.out")
[ "$(field ops "$line")" = 20000 ] || fail "fractio ingest: readseq: $line"

# KV separation: values past --blob_threshold go to blob files, and overwrite leaves stale ones
# behind; every read is checked, and the database must really hold blob files (RocksDB's *.blob
# in the directory, ours under blobs/). run_blobs ENGINE
blob_list=fillseq,overwrite,readrandom,readseq
run_blobs() {
	engine=$1
	"$bench" --engine="$engine" --quick --num=2000 --value_size=8192 --blob_threshold=4096 \
		--db="$tmp/$engine.blobs" --benchmarks="$blob_list" >"$tmp/$engine.blobs.out" ||
		fail "$engine blobs: exit status $?"
	check_output "$tmp/$engine.blobs.out" "$engine" "$blob_list"
	grep -q '"benchmark":"readrandom".*"blob_threshold":4096' "$tmp/$engine.blobs.out" ||
		fail "$engine blobs: no blob_threshold in the output"
	line=$(grep '"benchmark":"readrandom"' "$tmp/$engine.blobs.out")
	[ "$(field found "$line")" = 2000 ] || fail "$engine blobs: readrandom: $line"
	line=$(grep '"benchmark":"readseq"' "$tmp/$engine.blobs.out")
	[ "$(field ops "$line")" = 2000 ] || fail "$engine blobs: readseq: $line"
	blobs=$(find "$tmp/$engine.blobs" -name '*.blob' | wc -l)
	[ "$blobs" -gt 0 ] || fail "$engine blobs: no blob file in the database"
}

run_blobs fractio

# Refusals: a directory the program did not make, unknown names, bad numbers.
mkdir "$tmp/foreign" && echo keep >"$tmp/foreign/file"
status=0
"$bench" --quick --db="$tmp/foreign" --benchmarks=fillseq >/dev/null 2>&1 || status=$?
[ "$status" -eq 64 ] || fail "a foreign --db directory: exit status $status, want 64"
[ -f "$tmp/foreign/file" ] || fail "a foreign --db directory was emptied"
for args in --benchmarks=nosuch --engine=nosuch --num=0 --key_size=4 --compression=zstd \
	--blob_threshold=4294967296; do
	status=0
	"$bench" --quick "$args" >/dev/null 2>&1 || status=$?
	[ "$status" -eq 64 ] || fail "$args: exit status $status, want 64"
done

# Other engines, when this build has them (--help lists them).
engines=$("$bench" --help | sed -n 's/^Engines compiled in: *//p')
case " $engines " in
*" fractio "*) ;;
*) fail "--help does not list the engines" ;;
esac
for engine in rocksdb leveldb; do
	case " $engines " in
	*" $engine "*)
		run_all "$engine" 5000
		status=0
		"$bench" --engine="$engine" --quick --benchmarks=ingest >/dev/null 2>&1 ||
			status=$?
		[ "$status" -eq 64 ] || fail "$engine ingest: exit status $status, want 64"
		if [ "$engine" = rocksdb ]; then
			run_blobs rocksdb
		else
			status=0
			"$bench" --engine="$engine" --quick --blob_threshold=4096 >/dev/null \
				2>"$tmp/err" || status=$?
			[ "$status" -eq 64 ] ||
				fail "$engine --blob_threshold: exit status $status, want 64"
			grep -q "no KV separation" "$tmp/err" ||
				fail "$engine --blob_threshold: unclear message"
		fi
		;;
	*)
		status=0
		"$bench" --engine="$engine" --quick >/dev/null 2>"$tmp/err" || status=$?
		[ "$status" -eq 69 ] || fail "--engine=$engine without it: exit status $status"
		grep -q "lib$engine-dev" "$tmp/err" || fail "--engine=$engine: unclear message"
		echo "db_bench_smoke: $engine is not compiled in: skipped"
		;;
	esac
done
echo "db_bench_smoke: ok ($engines)"
