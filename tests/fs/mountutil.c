/* SPDX-License-Identifier: MIT */
/*
 * mountutil.c - mounting fractiofs for the tests that use the real filesystem (mountutil.h).
 *
 * The daemon runs as a child in the foreground with auto_unmount (fusermount3 drops the mount
 * when the daemon's /dev/fuse descriptor closes, however it dies) and PR_SET_PDEATHSIG (the
 * daemon gets SIGTERM when the thread that started it exits). On top of that, every daemon
 * started by this process is kept in a small table that an atexit handler and SIGINT/SIGTERM
 * handlers walk, so an aborted test run leaves no mount behind. Forked children of the test
 * inherit those handlers; they check the owning pid and do nothing.
 *
 * The temporary directories are made 0755 (mkdtemp makes 0700) so that tests can switch to an
 * unprivileged uid in a child and still reach the mount point.
 *
 * One thread at a time: the tests start and stop mounts from their main thread.
 */
#include "mountutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MNT_LIVE_MAX 8
#define MNT_START_WAIT_MS 10000
#define MNT_STOP_WAIT_MS 30000
#define MNT_GONE_WAIT_MS 5000

/* The daemons this process started and has not yet reaped; read by the signal handler. */
static struct {
	volatile pid_t pid;
	char dir[PATH_MAX];
} live[MNT_LIVE_MAX];
static pid_t live_owner;
static bool live_hooked;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Decodes the octal escapes (\040 and friends) that /proc/self/mountinfo uses, in place. */
static void unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

/* 1 when dir is the mount point of a FUSE mount in this namespace, 0 when not, -1 on error. */
static int is_fuse_mount(const char *dir)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f) {
		fprintf(stderr, "mountutil: /proc/self/mountinfo: %s\n", strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		/* id parent major:minor root mountpoint options [optional...] - fstype source */
		char *save = NULL;
		char *tok = strtok_r(line, " \n", &save);
		char *mp = NULL;
		int field = 0;

		while (tok && field < 4) {
			tok = strtok_r(NULL, " \n", &save);
			field++;
		}
		mp = tok;
		while (tok && strcmp(tok, "-") != 0)
			tok = strtok_r(NULL, " \n", &save);
		if (!mp || !tok)
			continue;
		tok = strtok_r(NULL, " \n", &save);
		if (!tok || strncmp(tok, "fuse", 4) != 0)
			continue;
		unescape(mp);
		if (strcmp(mp, dir) == 0) {
			found = 1;
			break;
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* Waits up to ms for dir to stop being a FUSE mount. 0 once gone. */
static int wait_unmounted(const char *dir, long ms)
{
	for (long t = 0;; t += 10) {
		int r = is_fuse_mount(dir);

		if (r <= 0)
			return r;
		if (t >= ms)
			return -1;
		sleep_ms(10);
	}
}

/* Runs fusermount3 -u [-z] dir; 0 when it exits 0. quiet sends its complaints to /dev/null. */
static int run_fusermount(const char *dir, bool lazy, bool quiet)
{
	pid_t pid = fork();
	int status;

	if (pid == -1) {
		fprintf(stderr, "mountutil: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		if (quiet) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0)
				dup2(fd, 2);
		}
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", dir, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", dir, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Unmounts dir now, or lazily when busy; used when a daemon is already dead or being killed. */
static void force_unmount(const char *dir)
{
	if (is_fuse_mount(dir) != 1)
		return;
	if (geteuid() == 0 && umount2(dir, MNT_DETACH) == 0)
		return;
	if (run_fusermount(dir, true, false) != 0)
		fprintf(stderr, "mountutil: could not unmount %s\n", dir);
}

/* waitpid with a deadline; 1 when reaped (status set), 0 on timeout, -1 on error. */
static int wait_child(pid_t pid, int *status, long ms)
{
	for (long t = 0;; t += 10) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 1;
		if (r == -1 && errno != EINTR)
			return -1;
		if (t >= ms)
			return 0;
		sleep_ms(10);
	}
}

static void live_remove(pid_t pid)
{
	for (int i = 0; i < MNT_LIVE_MAX; i++) {
		if (live[i].pid == pid)
			live[i].pid = 0;
	}
}

static void on_signal(int sig)
{
	if (getpid() == live_owner) {
		for (int i = 0; i < MNT_LIVE_MAX; i++) {
			pid_t pid = live[i].pid;

			if (pid <= 0)
				continue;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			if (geteuid() == 0)
				umount2(live[i].dir, MNT_DETACH);
			live[i].pid = 0;
		}
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_exit_cleanup(void)
{
	if (getpid() != live_owner)
		return;
	for (int i = 0; i < MNT_LIVE_MAX; i++) {
		pid_t pid = live[i].pid;
		int status;

		if (pid <= 0)
			continue;
		fprintf(stderr, "mountutil: daemon %d still running at exit\n", (int)pid);
		kill(pid, SIGTERM);
		if (wait_child(pid, &status, MNT_GONE_WAIT_MS) != 1) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		live[i].pid = 0;
		if (wait_unmounted(live[i].dir, MNT_GONE_WAIT_MS) != 0)
			force_unmount(live[i].dir);
	}
}

static void hook_cleanup(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	if (live_hooked)
		return;
	live_hooked = true;
	live_owner = getpid();
	atexit(on_exit_cleanup);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old, sa;

		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_DFL)
			continue; /* someone else handles it (or ignores it): leave that alone */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (!path || !*path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		int len = snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);

		if (len > 0 && (size_t)len < sizeof(buf) && access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

int mnt_require_fuse(void)
{
	const char *d = getenv("FRACTIO_TEST_DIR");
	const char *daemon = getenv("FRACTIOFS");
	struct stat st;

	if (d && *d)
		return 0;
	if (stat("/dev/fuse", &st) != 0 || !S_ISCHR(st.st_mode)) {
		fprintf(stderr, "\n*** SKIPPED: no /dev/fuse, so no fractiofs mount ***\n\n");
		return 77;
	}
	if (!daemon || !*daemon || access(daemon, X_OK) != 0) {
		fprintf(stderr, "\n*** SKIPPED: $FRACTIOFS (%s) is not an executable ***\n\n",
			daemon ? daemon : "unset");
		return 77;
	}
	if (!in_path("fusermount3")) {
		fprintf(stderr, "\n*** SKIPPED: no fusermount3 in $PATH ***\n\n");
		return 77;
	}
	return 0;
}

int mnt_setup(struct mnt *m, const char *tag)
{
	const char *plain = getenv("FRACTIO_TEST_DIR");
	const char *tmp = getenv("TMPDIR");
	char base[PATH_MAX];
	char real[PATH_MAX];
	int len;

	memset(m, 0, sizeof(*m));
	if (plain && *plain) {
		if (!realpath(plain, real)) {
			fprintf(stderr, "mountutil: %s: %s\n", plain, strerror(errno));
			return -1;
		}
		len = snprintf(m->dir, sizeof(m->dir), "%s/fractio-%s-XXXXXX", real, tag);
		if (len < 0 || (size_t)len >= sizeof(m->dir) || !mkdtemp(m->dir) ||
		    chmod(m->dir, 0755) != 0) {
			fprintf(stderr, "mountutil: cannot make a directory under %s: %s\n", real,
				strerror(errno));
			m->dir[0] = '\0';
			return -1;
		}
		m->plain = true;
		return 0;
	}
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (!realpath(tmp, real)) {
		fprintf(stderr, "mountutil: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	len = snprintf(base, sizeof(base), "%s/fractio-%s-XXXXXX", real, tag);
	if (len < 0 || (size_t)len >= sizeof(base) - 8 || !mkdtemp(base) ||
	    chmod(base, 0755) != 0) {
		fprintf(stderr, "mountutil: cannot make a directory under %s: %s\n", real,
			strerror(errno));
		return -1;
	}
	/* The lengths fit: base is at most PATH_MAX - 9 bytes long. */
	len = snprintf(m->store, sizeof(m->store), "%s/store", base);
	if (len < 0 || (size_t)len >= sizeof(m->store))
		goto out_rm;
	len = snprintf(m->dir, sizeof(m->dir), "%s/mnt", base);
	if (len < 0 || (size_t)len >= sizeof(m->dir))
		goto out_rm;
	if (mkdir(m->store, 0700) != 0 || mkdir(m->dir, 0755) != 0) {
		fprintf(stderr, "mountutil: mkdir in %s: %s\n", base, strerror(errno));
		goto out_rm;
	}
	return 0;
out_rm:
	rmdir(m->store);
	rmdir(m->dir);
	rmdir(base);
	memset(m, 0, sizeof(*m));
	return -1;
}

int mnt_start(struct mnt *m)
{
	const char *daemon = getenv("FRACTIOFS");
	char opts[sizeof(m->opts) + 32];
	pid_t parent = getpid();
	pid_t pid;
	int slot = -1;
	int status;
	int len;

	if (m->plain)
		return 0;
	if (m->pid) {
		fprintf(stderr, "mountutil: %s is already mounted by %d\n", m->dir, (int)m->pid);
		return -1;
	}
	if (!daemon || !*daemon) {
		fprintf(stderr, "mountutil: $FRACTIOFS is not set\n");
		return -1;
	}
	if (is_fuse_mount(m->dir) != 0) {
		fprintf(stderr, "mountutil: %s is already a FUSE mount\n", m->dir);
		return -1;
	}
	for (int i = 0; i < MNT_LIVE_MAX && slot < 0; i++) {
		if (live[i].pid == 0)
			slot = i;
	}
	if (slot < 0) {
		fprintf(stderr, "mountutil: more than %d daemons at once\n", MNT_LIVE_MAX);
		return -1;
	}
	len = snprintf(opts, sizeof(opts), "auto_unmount%s%s", m->opts[0] ? "," : "", m->opts);
	if (len < 0 || (size_t)len >= sizeof(opts))
		return -1;
	hook_cleanup();
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		fprintf(stderr, "mountutil: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(126); /* the parent died before the death signal was armed */
		execl(daemon, "fractiofs", "-f", "-o", opts, m->store, m->dir, (char *)NULL);
		fprintf(stderr, "mountutil: exec %s: %s\n", daemon, strerror(errno));
		_exit(127);
	}
	live[slot].pid = pid;
	memcpy(live[slot].dir, m->dir, sizeof(live[slot].dir));
	m->pid = pid;
	for (long t = 0;; t += 10) {
		pid_t r;

		if (is_fuse_mount(m->dir) == 1)
			return 0;
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			if (WIFEXITED(status))
				fprintf(stderr, "mountutil: fractiofs exited %d before mounting\n",
					WEXITSTATUS(status));
			else
				fprintf(stderr, "mountutil: fractiofs got signal %d\n",
					WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			goto out_reaped;
		}
		if (t >= MNT_START_WAIT_MS) {
			fprintf(stderr, "mountutil: %s not mounted after %d ms\n", m->dir,
				MNT_START_WAIT_MS);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			goto out_reaped;
		}
		sleep_ms(10);
	}
out_reaped:
	live_remove(pid);
	m->pid = 0;
	if (wait_unmounted(m->dir, MNT_GONE_WAIT_MS) != 0)
		force_unmount(m->dir);
	return -1;
}

int mnt_stop(struct mnt *m)
{
	int status = 0;
	int rc = 0;
	int r;

	if (m->plain || !m->pid)
		return 0;
	/* A descriptor closed just now may still pin the mount for a moment: retry while busy,
	 * letting only the first fusermount3 complain. */
	for (long t = 0;; t += 50) {
		if (is_fuse_mount(m->dir) != 1)
			break;
		if (run_fusermount(m->dir, false, t > 0) == 0)
			break;
		if (geteuid() == 0 && umount2(m->dir, 0) == 0)
			break;
		if (t >= 2000) {
			/* busy: a descriptor or a working directory is still in it */
			fprintf(stderr, "mountutil: cannot unmount %s, stopping\n", m->dir);
			rc = -1;
			kill(m->pid, SIGTERM);
			break;
		}
		sleep_ms(50);
	}
	r = wait_child(m->pid, &status, MNT_STOP_WAIT_MS);
	if (r != 1) {
		fprintf(stderr, "mountutil: fractiofs %d did not exit within %d ms, killing it\n",
			(int)m->pid, MNT_STOP_WAIT_MS);
		kill(m->pid, SIGKILL);
		waitpid(m->pid, &status, 0);
		rc = -1;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			fprintf(stderr, "mountutil: fractiofs exited with status %d\n",
				WEXITSTATUS(status));
		else
			fprintf(stderr, "mountutil: fractiofs died of signal %d\n",
				WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		rc = -1;
	}
	live_remove(m->pid);
	m->pid = 0;
	if (wait_unmounted(m->dir, MNT_GONE_WAIT_MS) != 0) {
		force_unmount(m->dir);
		rc = -1;
	}
	return rc;
}

int mnt_kill(struct mnt *m)
{
	int status;

	if (m->plain || !m->pid)
		return 0;
	kill(m->pid, SIGKILL);
	while (waitpid(m->pid, &status, 0) == -1 && errno == EINTR)
		;
	live_remove(m->pid);
	m->pid = 0;
	if (wait_unmounted(m->dir, MNT_GONE_WAIT_MS) == 0)
		return 0;
	fprintf(stderr, "mountutil: %s still mounted %d ms after SIGKILL, detaching it\n", m->dir,
		MNT_GONE_WAIT_MS);
	force_unmount(m->dir);
	return wait_unmounted(m->dir, MNT_GONE_WAIT_MS) == 0 ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) != 0 : unlink(path) != 0) {
		if (errno != ENOENT)
			fprintf(stderr, "mountutil: remove %s: %s\n", path, strerror(errno));
	}
	return 0;
}

/* rm -rf that stays on one filesystem, so it never walks into a mount left behind. */
static void rmtree(const char *path)
{
	if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
		fprintf(stderr, "mountutil: walk %s: %s\n", path, strerror(errno));
}

void mnt_teardown(struct mnt *m)
{
	char base[PATH_MAX];
	char *slash;

	if (!m->dir[0])
		return;
	if (m->pid && mnt_stop(m) != 0)
		fprintf(stderr, "mountutil: unclean stop of the daemon on %s\n", m->dir);
	if (m->plain) {
		rmtree(m->dir);
	} else {
		memcpy(base, m->dir, sizeof(base));
		slash = strrchr(base, '/');
		if (slash && slash != base) {
			*slash = '\0';
			if (is_fuse_mount(m->dir) == 1)
				fprintf(stderr, "mountutil: %s still mounted, kept\n", m->dir);
			else
				rmtree(base);
		}
	}
	memset(m, 0, sizeof(*m));
}

bool mnt_is_plain(const struct mnt *m)
{
	return m->plain;
}

char *mnt_path(const struct mnt *m, const char *rel, char *out)
{
	int len;

	while (*rel == '/')
		rel++;
	len = snprintf(out, PATH_MAX, "%s%s%s", m->dir, *rel ? "/" : "", rel);
	if (len < 0 || len >= PATH_MAX)
		out[PATH_MAX - 1] = '\0';
	return out;
}
