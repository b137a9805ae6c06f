#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/fs/tools.sh - the "real tools" test: everyday programs on a fractiofs mount. Mounts
# $FRACTIOFS (-f -o auto_unmount, in the background; store and mount point in a fresh mktemp -d
# directory), then:
#   the mount's read-ahead window (1024 KiB, as root)
#   cp -a /usr/include; diff -r; ownership, modes, link counts, mtimes (to the nanosecond),
#   sizes, types and symlink targets compared with find -printf
#   tar c | tar x into a second directory on the mount; diff -r; the same metadata
#   git init/add/commit of that tree; git fsck and an empty git status --porcelain
#   find (as many entries as the source), du -s (non-zero, 0.5x..3x the apparent size)
#   unmount (the daemon must exit 0) and remount: diff -r, metadata and git fsck again
#   rm -rf (gone, the mount empty), and once more after a last remount
# Every step prints its time. A trap unmounts and stops the daemon on EXIT, INT and TERM.
# Exits 0 on success, 1 on the first failure, 77 (ctest's skip) when /dev/fuse or $FRACTIOFS
# is missing. FRACTIO_TEST_DIR=DIR: mount nothing, run everything in a fresh directory under DIR
# (to check the test itself against ext4 or tmpfs); FR_TOOLS_SRC overrides /usr/include.
set -euo pipefail

src=${FR_TOOLS_SRC:-/usr/include}
plain=false
[[ -n ${FRACTIO_TEST_DIR:-} ]] && plain=true

skip() {
	printf '\n*** SKIPPED: %s ***\n*** tests/fs/tools.sh ran nothing. ***\n\n' "$*" >&2
	exit 77
}

fail() {
	printf '\nFAIL: %s\n' "$*" >&2
	exit 1
}

if ! $plain; then
	[[ -c /dev/fuse ]] || skip "/dev/fuse is missing: FUSE is not available on this machine"
	[[ -n ${FRACTIOFS:-} ]] || skip "FRACTIOFS is not set (it names the fractiofs daemon)"
	[[ -x $FRACTIOFS ]] || skip "FRACTIOFS=$FRACTIOFS is not an executable file"
fi
[[ -d $src ]] || fail "$src is missing"

if ! command -v git >/dev/null; then
	if (($(id -u) == 0)) && command -v apt-get >/dev/null; then
		echo "git is missing; installing it with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q git >/dev/null ||
			{ apt-get update -q >/dev/null && apt-get install -y -q git >/dev/null; } ||
			fail "apt-get install git failed"
	else
		fail "git is missing and this is not root: install git (apt-get install git)"
	fi
fi

if $plain; then
	tmp=$(mktemp -d "$FRACTIO_TEST_DIR/tools.XXXXXX")
else
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fr-tools.XXXXXX")
fi
store=$tmp/store
mnt=$tmp/mnt
log=$tmp/daemon.log
mkdir -p "$mnt"
daemon_pid=
current_step=

is_mounted() {
	if command -v findmnt >/dev/null; then
		findmnt -rn -M "$mnt" >/dev/null 2>&1
	else
		awk -v m="$mnt" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
	fi
}

# Unmounts (if mounted) and waits up to 10 s for the daemon to exit; kills it after that.
# Returns the daemon's exit status (0 in plain mode).
unmount() {
	local i status=0
	$plain && return 0
	if is_mounted; then
		fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null ||
			fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	if [[ -n $daemon_pid ]]; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$daemon_pid" 2>/dev/null; then
			echo "the daemon did not exit within 10 s of the unmount; killing it" >&2
			kill -KILL "$daemon_pid" 2>/dev/null || true
		fi
		wait "$daemon_pid" || status=$?
		daemon_pid=
	fi
	return "$status"
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $current_step ]]; then
		printf 'FAILED\n'
		show_log
		printf '\nFAIL: %s (status %s)\n' "$current_step" "$status" >&2
		current_step=
	fi
	unmount || true
	if ! $plain && is_mounted; then
		echo "warning: $mnt is still mounted; leaving $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
	if [[ -s $log ]]; then
		echo "--- last lines of the daemon's output ($log) ---" >&2
		tail -n 30 "$log" >&2
	fi
}

# Starts the daemon in the foreground, in the background of this shell, and waits up to 10 s
# for the mount.
mount_fs() {
	local i
	$plain && return 0
	"$FRACTIOFS" -f -o auto_unmount "$store" "$mnt" >>"$log" 2>&1 &
	daemon_pid=$!
	for ((i = 0; i < 100; i++)); do
		if is_mounted; then
			return 0
		fi
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			local status=0
			wait "$daemon_pid" || status=$?
			daemon_pid=
			fail "the daemon exited with status $status before the mount appeared"
		fi
		sleep 0.1
	done
	fail "$mnt was not mounted within 10 s"
}

# The daemon widens the mount's read-ahead window to its default 1024 KiB when it runs as root
# (fs/bdi.h); the kernel's own is 128. It does so right after mounting: give it a moment.
check_read_ahead() {
	local dev kb= i
	$plain && return 0
	(($(id -u) == 0)) || return 0
	dev=$(mountpoint -d "$mnt")
	for ((i = 0; i < 50; i++)); do
		kb=$(cat "/sys/class/bdi/$dev/read_ahead_kb")
		[[ $kb == 1024 ]] && return 0
		sleep 0.1
	done
	fail "read_ahead_kb of the mount ($dev) is $kb, not 1024"
}

# step NAME COMMAND...: runs COMMAND, printing NAME and the time it took. COMMAND runs under
# set -e (not in a || context, where bash would ignore it): a failure ends the script, and the
# EXIT trap names the step.
step() {
	local name=$1 t0
	shift
	printf '==> %s ... ' "$name"
	current_step=$name
	t0=$EPOCHREALTIME
	"$@"
	current_step=
	printf 'ok (%s s)\n' "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')"
}

# meta_list DIR: one sorted line per entry below DIR: path, mode, [uid gid,] link count, mtime in
# ns, type; size and symlink target for everything but directories (a directory's size is the
# filesystem's business). Ownership only when root, who can preserve it.
meta_list() {
	local own=''
	(($(id -u) == 0)) && own='%U %G '
	{
		find "$1" -type d -printf "%P %m ${own}%n %T@ %y\n"
		find "$1" ! -type d -printf "%P %m ${own}%n %T@ %y %s -> %l\n"
	} | LC_ALL=C sort
}

# same_meta A B: A and B have the same metadata listing; shows the first differences if not.
same_meta() {
	meta_list "$1" >"$tmp/meta.a"
	meta_list "$2" >"$tmp/meta.b"
	if ! cmp -s "$tmp/meta.a" "$tmp/meta.b"; then
		diff "$tmp/meta.a" "$tmp/meta.b" >"$tmp/meta.diff" || true
		printf '\n%s differs from %s (%s lines of diff; the first ones):\n' "$2" "$1" \
			"$(wc -l <"$tmp/meta.diff")" >&2
		head -n 20 "$tmp/meta.diff" >&2
		return 1
	fi
}

same_tree() {
	diff -r --no-dereference "$1" "$2" >"$tmp/diff.out" 2>&1 || {
		echo >&2
		head -n 20 "$tmp/diff.out" >&2
		return 1
	}
}

copy_with_tar() {
	mkdir "$mnt/tar"
	(cd "$mnt/include" && tar --format=posix -cf - .) | (cd "$mnt/tar" && tar -xpf -)
}

# git without the system's or the user's configuration, and without automatic housekeeping:
# a commit of this many files starts `git gc --auto` detached in the background, which keeps
# the mount busy so the unmount that follows fails (EBUSY) at random.
git_() {
	GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -c gc.auto=0 -c maintenance.auto=false \
		-C "$mnt/tar" "$@"
}

git_commit() {
	git_ init -q
	git_ config user.name "Fractio Tools Test"
	git_ config user.email "tools@fractio.invalid"
	git_ add -A
	git_ commit -q -m "all of $src"
}

git_check() {
	local st n_commits n_files n_tree
	git_ fsck --full --strict --no-progress
	st=$(git_ status --porcelain)
	if [[ -n $st ]]; then
		printf '\ngit status --porcelain is not empty:\n%s\n' "$(head -n 20 <<<"$st")" >&2
		return 1
	fi
	n_commits=$(git_ rev-list --count HEAD)
	if [[ $n_commits != 1 ]]; then
		printf '\ngit rev-list --count HEAD: %s, want 1\n' "$n_commits" >&2
		return 1
	fi
	# The commit holds every file of the tree.
	n_files=$(git_ ls-files | wc -l)
	n_tree=$(cd "$mnt/tar" && find . -path ./.git -prune -o ! -type d -print | wc -l)
	if [[ $n_files != "$n_tree" ]]; then
		printf '\ngit ls-files: %s files; the tree has %s\n' "$n_files" "$n_tree" >&2
		return 1
	fi
}

same_count() {
	local a b
	a=$(find "$src" | wc -l)
	b=$(find "$mnt/include" | wc -l)
	[[ $a == "$b" ]] || {
		printf '\nfind: %s entries in %s, %s on the mount\n' "$a" "$src" "$b" >&2
		return 1
	}
}

plausible_du() {
	local used apparent
	used=$(du -s "$mnt/include" | cut -f1)
	apparent=$(du -s --apparent-size "$src" | cut -f1)
	printf '(du -s %s KiB; source apparent size %s KiB) ' "$used" "$apparent"
	((used > 0)) || {
		echo "du -s reports 0 on the mount" >&2
		return 1
	}
	((2 * used >= apparent && used <= 3 * apparent)) || {
		echo "du -s $used KiB is not within 0.5x..3x of $apparent KiB" >&2
		return 1
	}
}

remount() {
	local status=0
	unmount || status=$?
	((status == 0)) || {
		echo "the daemon exited with status $status after the unmount" >&2
		return 1
	}
	$plain || ! is_mounted || {
		echo "$mnt is still mounted after the unmount" >&2
		return 1
	}
	mount_fs
}

remove_all() {
	rm -rf "$mnt/include" "$mnt/tar"
	[[ ! -e $mnt/include && ! -e $mnt/tar ]] || return 1
	is_empty
}

is_empty() {
	local left
	left=$(ls -A "$mnt")
	[[ -z $left ]] || {
		printf '\nthe mount is not empty: %s\n' "$left" >&2
		return 1
	}
}

if $plain; then
	echo "plain-directory mode: nothing is mounted; working in $mnt"
else
	echo "fractiofs: $FRACTIOFS; store $store; mount point $mnt"
fi
echo "source tree: $src ($(find "$src" | wc -l) entries)"

t_start=$EPOCHREALTIME
step "mount" mount_fs
step "read-ahead window of the mount" check_read_ahead
step "cp -a $src" cp -a "$src" "$mnt/include"
step "diff -r" same_tree "$src" "$mnt/include"
step "metadata preserved by cp -a" same_meta "$src" "$mnt/include"
step "tar c | tar x on the mount" copy_with_tar
step "diff -r of the tar copy" same_tree "$src" "$mnt/tar"
step "metadata preserved by tar" same_meta "$mnt/include" "$mnt/tar"
step "git init, add, commit" git_commit
step "git fsck, git status" git_check
step "find counts every entry" same_count
step "du -s is plausible" plausible_du
step "unmount and remount" remount
step "diff -r after remount" same_tree "$src" "$mnt/include"
step "metadata after remount" same_meta "$src" "$mnt/include"
step "git fsck, git status after remount" git_check
step "rm -rf" remove_all
step "unmount and remount" remount
step "still empty after remount" is_empty
step "unmount" unmount
total=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
printf 'all steps passed in %s s\n' "$total"
