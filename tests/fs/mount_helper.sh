#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/fs/mount_helper.sh HELPER - checks mount.fractiofs (mount-helpers/), the mount(8)
# helper, without mounting anything: HELPER (or $MOUNT_FRACTIOFS) is copied into a temporary
# sbin/ next to a stand-in daemon in bin/ that records its argv, user and capabilities. The
# option filtering is checked through --dry-run (which prints the daemon's argv, one element
# per line); the real exec, the exit status of the daemon, -f, the daemon lookup order, the
# sysexits(3) codes and, when run as root, setuid= with the capabilities dropped are checked by
# running the helper. Prints one line per check and "N passed, N failed"; exits 1 on failure.
set -euo pipefail

helper=${1:-${MOUNT_FRACTIOFS:-}}
if [[ -z $helper || ! -x $helper ]]; then
	echo "usage: mount_helper.sh HELPER (the built mount.fractiofs; or set MOUNT_FRACTIOFS)" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fr-mount-helper.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# World-traversable and -writable, so that the stand-in can record as setuid=nobody.
chmod 0755 "$tmp"
mkdir -p "$tmp/sbin" "$tmp/bin" "$tmp/rec" "$tmp/lone/x" "$tmp/path" "$tmp/cwd"
chmod 1777 "$tmp/rec"
cp "$helper" "$tmp/sbin/mount.fractiofs"
ln -s mount.fractiofs "$tmp/sbin/mount.fuse.fractiofs"
cp "$helper" "$tmp/lone/x/mount.fractiofs"

# The stand-in daemon: argv one per line, then id, capabilities and HOME, into $FAKE_REC; exits
# with $FAKE_RC (default 0).
make_fake() {
	cat >"$1" <<'EOF'
#!/bin/sh
{
	printf '%s\n' "$0" "$@"
	printf 'uid=%s gid=%s\n' "$(id -u)" "$(id -g)"
	grep -E '^Cap(Prm|Eff|Amb):' /proc/self/status
	printf 'HOME=%s\n' "$HOME"
} >"$FAKE_REC"
exit "${FAKE_RC:-0}"
EOF
	chmod 0755 "$1"
}
make_fake "$tmp/bin/fractiofs"
export FAKE_REC=$tmp/rec/out

H=$tmp/sbin/mount.fuse.fractiofs
D=$tmp/bin/fractiofs
passed=0
failed=0

ok() {
	passed=$((passed + 1))
	printf 'ok   %s\n' "$1"
}

bad() {
	failed=$((failed + 1))
	printf 'FAIL %s\n' "$1"
	shift
	printf '     %s\n' "$@"
}

# expect NAME EXPECTED-OUTPUT COMMAND...: COMMAND must exit 0 and print EXPECTED-OUTPUT.
expect() {
	local name=$1 want=$2 got rc=0
	shift 2
	got=$("$@" 2>"$tmp/stderr") || rc=$?
	if ((rc != 0)); then
		bad "$name" "exit status $rc, want 0" "stderr: $(cat "$tmp/stderr")"
	elif [[ $got != "$want" ]]; then
		bad "$name" "want: ${want//$'\n'/ | }" "got:  ${got//$'\n'/ | }"
	else
		ok "$name"
	fi
}

# expect_rc NAME STATUS COMMAND...: COMMAND must exit with STATUS.
expect_rc() {
	local name=$1 want=$2 rc=0
	shift 2
	"$@" >/dev/null 2>"$tmp/stderr" || rc=$?
	if ((rc != want)); then
		bad "$name" "exit status $rc, want $want" "stderr: $(cat "$tmp/stderr")"
	else
		ok "$name"
	fi
}

# argv LINE...: the expected --dry-run output.
argv() { printf '%s\n' "$@"; }

# in_dir DIR COMMAND...: runs COMMAND in DIR.
in_dir() (
	cd "$1"
	shift
	"$@"
)

# ---- option filtering (--dry-run) ----
expect "dry-run drops the options meant for mount(8) only" \
	"$(argv "$D" /srv/store /mnt/x -o allow_other,sync,chunk_size=131072)" \
	"$H" /srv/store /mnt/x --dry-run \
	-o rw,_netdev,nofail,auto,noauto,user,nouser,users,owner,group,defaults,allow_other \
	-o x-systemd.automount,x-systemd.device-timeout=5,comment=systemd.automount,user=alice \
	-o sync,chunk_size=131072
expect "dry-run passes ro through" \
	"$(argv "$D" /s /m -o ro,allow_other)" "$H" /s /m --dry-run -o defaults,ro,allow_other
expect "a later rw cancels an earlier ro" \
	"$(argv "$D" /s /m -o sync)" "$H" /s /m --dry-run -o ro,sync,rw
expect "a later ro wins over an earlier rw" \
	"$(argv "$D" /s /m -o ro)" "$H" /s /m --dry-run -o rw -o ro
expect "no -o when every option is dropped" \
	"$(argv "$D" /s /m)" "$H" /s /m --dry-run -o rw,_netdev,noauto,,comment=x
expect "no -o without options" "$(argv "$D" /s /m)" "$H" /s /m --dry-run
expect "several -o are joined in order; empty options vanish" \
	"$(argv "$D" /s /m -o a,b=1,c)" "$H" /s /m --dry-run -o a,,b=1 -o ,c,
expect "an escaped comma does not split an option" \
	"$(argv "$D" /s /m -o 'fsname=a\,b,ro')" "$H" /s /m --dry-run -o 'fsname=a\,b,rw,ro'
expect "setuid= is consumed, not passed on" \
	"$(argv "$D" /s /m -o allow_other)" "$H" /s /m --dry-run -o setuid=root,allow_other
expect "-t fuse.fractiofs, -s, -n and -v are accepted" \
	"$(argv "$D" /s /m -o ro)" "$H" /s /m -s -n -v -t fuse.fractiofs -o ro --dry-run
expect "-t fractiofs is accepted" "$(argv "$D" /s /m)" "$H" /s /m -t fractiofs --dry-run
expect "options may come before the operands" \
	"$(argv "$D" /s /m -o ro)" "$H" -o ro --dry-run /s /m
expect "an operand after -- may start with a dash" \
	"$(argv "$D" /s "$tmp/cwd/-m")" \
	in_dir "$tmp/cwd" "$H" /s --dry-run -- -m
expect "relative SOURCE and MOUNTPOINT are made absolute" \
	"$(argv "$D" "$tmp/cwd/store" "$tmp/cwd/mnt/x")" \
	in_dir "$tmp/cwd" "$H" store mnt/x --dry-run
expect "the program name mount.fractiofs works too" \
	"$(argv "$D" /s /m)" "$tmp/sbin/mount.fractiofs" /s /m --dry-run
expect "POSIXLY_CORRECT does not stop option parsing at the operands" \
	"$(argv "$D" /s /m -o ro)" env POSIXLY_CORRECT=1 "$H" /s /m -o ro --dry-run

# ---- exit codes (sysexits) ----
expect_rc "unsupported -t is EX_USAGE" 64 "$H" /s /m -t fuse.sshfs --dry-run
expect_rc "a missing MOUNTPOINT is EX_USAGE" 64 "$H" /s --dry-run
expect_rc "a third operand is EX_USAGE" 64 "$H" /s /m /x --dry-run
expect_rc "an unknown option is EX_USAGE" 64 "$H" /s /m -x --dry-run
expect_rc "an empty setuid= is EX_USAGE" 64 "$H" /s /m -o setuid= --dry-run
expect_rc "an unknown setuid= user is EX_NOUSER" 67 "$H" /s /m -o setuid=no-such-user-fr --dry-run
expect_rc "no daemon anywhere is EX_UNAVAILABLE" 69 \
	env PATH="$tmp/lone" "$tmp/lone/x/mount.fractiofs" /s /m --dry-run
expect_rc "-h exits 0" 0 "$H" -h
expect_rc "-V exits 0" 0 "$H" -V

# ---- where the daemon is found ----
make_fake "$tmp/path/fractiofs"
expect "the daemon is found on PATH when not beside the helper" \
	"$(argv "$tmp/path/fractiofs" /s /m)" \
	env PATH="/nonexistent::$tmp/path" "$tmp/lone/x/mount.fractiofs" /s /m --dry-run
make_fake "$tmp/sbin/fractiofs"
expect "a daemon in the helper's own directory comes first" \
	"$(argv "$tmp/sbin/fractiofs" /s /m)" "$H" /s /m --dry-run
rm "$tmp/sbin/fractiofs"

# ---- running the daemon ----
rm -f "$FAKE_REC"
expect "the daemon runs with the dry-run argv" "" "$H" /srv/s /mnt/x -o rw,nofail,ro,sync
want=$(argv "$D" /srv/s /mnt/x -o ro,sync)
if [[ -f $FAKE_REC ]] && [[ $(head -n 5 "$FAKE_REC") == "$want" ]]; then
	ok "the daemon saw the filtered argv"
else
	bad "the daemon saw the filtered argv" "record: $(tr '\n' ' ' <"$FAKE_REC" 2>/dev/null || true)"
fi
expect_rc "the daemon's exit status is the helper's" 3 env FAKE_RC=3 "$H" /s /m
rm -f "$FAKE_REC"
expect_rc "-f (fake) exits 0" 0 "$H" /s /m -f -o ro
if [[ -e $FAKE_REC ]]; then
	bad "-f does not run the daemon" "the stand-in ran"
else
	ok "-f does not run the daemon"
fi

if (($(id -u) == 0)); then
	nobody_uid=$(id -u nobody)
	nobody_home=$(getent passwd nobody | cut -d: -f6)
	rm -f "$FAKE_REC"
	expect "setuid=nobody runs the daemon" "" "$H" /s /m -o setuid=nobody,allow_other
	rec=$(cat "$FAKE_REC" 2>/dev/null || true)
	if [[ $rec == *"uid=$nobody_uid "* ]]; then
		ok "setuid=nobody: the daemon runs as nobody"
	else
		bad "setuid=nobody: the daemon runs as nobody" "record: ${rec//$'\n'/ | }"
	fi
	if grep -q '^CapEff:[[:space:]]*0*$' <<<"$rec" && grep -q '^CapPrm:[[:space:]]*0*$' <<<"$rec" &&
		grep -q '^CapAmb:[[:space:]]*0*$' <<<"$rec"; then
		ok "setuid=nobody: no capabilities left"
	else
		bad "setuid=nobody: no capabilities left" "record: ${rec//$'\n'/ | }"
	fi
	if [[ $rec == *"HOME=$nobody_home"* ]]; then
		ok "setuid=nobody: HOME is nobody's"
	else
		bad "setuid=nobody: HOME is nobody's" "record: ${rec//$'\n'/ | }"
	fi
	rm -f "$FAKE_REC"
	expect "setuid=root as root leaves the capabilities" "" "$H" /s /m -o setuid=root
	if grep -q '^CapEff:[[:space:]]*0*[1-9a-f]' "$FAKE_REC" 2>/dev/null; then
		ok "setuid=root: the daemon keeps root's capabilities"
	else
		bad "setuid=root: the daemon keeps root's capabilities" "$(cat "$FAKE_REC" 2>&1)"
	fi
else
	expect_rc "setuid= to another user without root is EX_NOPERM" 77 "$H" /s /m -o setuid=root
	rm -f "$FAKE_REC"
	expect "a non-root user runs the daemon" "" "$H" /s /m
	if grep -q '^CapEff:[[:space:]]*0*$' "$FAKE_REC" 2>/dev/null; then
		ok "non-root: no capabilities left"
	else
		bad "non-root: no capabilities left" "$(cat "$FAKE_REC" 2>&1)"
	fi
fi

printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
