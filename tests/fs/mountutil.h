/* SPDX-License-Identifier: MIT */
/*
 * mountutil.h - mounting fractiofs for the tests that use the real filesystem.
 *
 * mnt_setup() makes a fresh store directory and mount point under $TMPDIR. mnt_start() runs
 * the daemon ($FRACTIOFS, set by ctest) in the foreground as a child with auto_unmount, and a
 * parent-death signal, so a test that crashes or is killed leaves no stale mount; it returns once
 * the mount is live. mnt_stop() unmounts cleanly and waits for the daemon; mnt_kill() SIGKILLs
 * it and waits until the kernel has dropped the mount.
 *
 * Plain-directory mode: when $FRACTIO_TEST_DIR is set, nothing is mounted: m->dir is a fresh
 * directory under it and start/stop/kill only succeed (used to check a test against ext4 or
 * tmpfs). mnt_is_plain() tells.
 *
 * mnt_require_fuse() returns 77 (ctest's skip code) after saying so loudly when /dev/fuse or the
 * daemon is missing, else 0.
 */
#ifndef FRACTIO_TESTS_FS_MOUNTUTIL_H
#define FRACTIO_TESTS_FS_MOUNTUTIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct mnt {
	char store[PATH_MAX]; /* the store directory (the daemon's first argument) */
	char dir[PATH_MAX];   /* the mount point, where tests work */
	char opts[512];       /* extra -o options for mnt_start, comma separated, may be empty */
	pid_t pid;            /* the daemon, 0 when not running */
	bool plain;
};

int mnt_require_fuse(void);
/* tag names the temporary directories. 0 or -1 (with a message on stderr). */
int mnt_setup(struct mnt *m, const char *tag);
/* Starts the daemon on m->store at m->dir with m->opts; waits up to 10 s for the mount. */
int mnt_start(struct mnt *m);
/* fusermount3 -u, then waits for the daemon to exit (0 only if it exited with status 0). */
int mnt_stop(struct mnt *m);
/* SIGKILL the daemon; waits until the mount point is no longer a FUSE mount. */
int mnt_kill(struct mnt *m);
/* Unmounts if needed and removes the temporary directories. */
void mnt_teardown(struct mnt *m);
bool mnt_is_plain(const struct mnt *m);
/* m->dir joined with rel into out (PATH_MAX); returns out. */
char *mnt_path(const struct mnt *m, const char *rel, char *out);

#endif
