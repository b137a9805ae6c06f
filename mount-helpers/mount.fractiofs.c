/* SPDX-License-Identifier: MIT */
/*
 * mount.fractiofs.c - the mount(8) helper of fractiofs, so that `mount -t fuse.fractiofs` and
 * /etc/fstab lines work.
 *
 * mount(8) runs it as `mount.fractiofs SOURCE MOUNTPOINT [-sfnv] [-o OPTS] [-t TYPE]` (or under
 * the name mount.fuse.fractiofs, a symlink to the same program). SOURCE is the store
 * directory. The helper drops the options that only mean something to mount(8) or to
 * /etc/fstab (_netdev, nofail, auto, user, x-*, comment=, ...), takes setuid=USER for itself,
 * switches to that user (initgroups, setgid, setuid), clears every capability it still holds
 * when the daemon is to run as a user other than root, and finally replaces itself with
 * `fractiofs SOURCE MOUNTPOINT [-o REST]`. The daemon is looked for next to this program, then
 * in ../bin relative to it (sbin/ and bin/ of one prefix), then on $PATH. The daemon puts
 * itself in the background once the mount is live, so mount(8) returns when it is usable.
 *
 * The behaviour follows libfuse's util/mount.fuse.c; the code is our own. --dry-run prints the
 * daemon's argv, one element per line, and exits 0 without switching user or running anything;
 * tests/fs/mount_helper.sh checks the option filtering that way. mount.fractiofs.8 is the
 * manual; usage() below mirrors its synopsis.
 *
 * Exit status: the daemon's once it runs; before that 0 for -f (fake) and --dry-run, or a
 * sysexits(3) code: EX_USAGE bad command line, EX_NOUSER unknown setuid= user, EX_NOPERM
 * setuid= to another user without root, EX_UNAVAILABLE no daemon found, EX_OSERR a failed
 * system call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <linux/capability.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef FR_VERSION_STRING
#define FR_VERSION_STRING "unknown"
#endif

#define DAEMON_NAME "fractiofs"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The parsed command line. */
struct helper {
	const char *source;
	const char *mountpoint;
	char **opts;		/* options for the daemon, in order */
	size_t opts_cnt;
	size_t opts_cap;
	const char *setuid_name; /* from setuid=, NULL when absent */
	bool fake;		/* -f: do everything but run the daemon */
	bool verbose;		/* -v: say what is run, on stderr */
	bool dry_run;		/* --dry-run: print the daemon's argv and stop */
};

/* Options that mean something only to mount(8) or /etc/fstab; never passed on. */
static const char *const dropped_opts[] = {
	"_netdev", "nofail", "auto", "noauto", "user", "nouser", "users", "owner", "group",
	"defaults", "rw", NULL,
};

/* Prefixes of options that are never passed on. */
static const char *const dropped_prefixes[] = { "x-", "comment=", "user=", NULL };

static const char usage_text[] =
	"usage: mount.fractiofs SOURCE MOUNTPOINT [-fnsv] [-o opt[,opt...]] [-t fuse.fractiofs]\n"
	"       mount.fractiofs SOURCE MOUNTPOINT --dry-run [-o opt[,opt...]]\n"
	"       mount.fractiofs -h | -V\n";

static const char help_text[] =
	"\n"
	"Mounts the fractiofs store directory SOURCE on MOUNTPOINT by running the fractiofs\n"
	"daemon; meant to be run by mount(8). See mount.fractiofs(8).\n"
	"\n"
	"  -o OPTS     mount options; setuid=USER runs the daemon as USER, mount(8)-only\n"
	"              options (_netdev, nofail, auto, noauto, user, users, defaults, rw,\n"
	"              x-*, comment=*) are dropped, the rest go to the daemon\n"
	"  -t TYPE     filesystem type, fuse.fractiofs or fractiofs\n"
	"  -f          fake: do everything except running the daemon\n"
	"  -v          print the daemon's command line on stderr\n"
	"  -n, -s      accepted for mount(8) and ignored\n"
	"  --dry-run   print the daemon's argv, one element per line, and exit\n"
	"  -h, --help  this text\n"
	"  -V, --version\n";

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(EX_USAGE);
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_dropped(const char *opt)
{
	size_t i;

	for (i = 0; dropped_opts[i]; i++)
		if (strcmp(opt, dropped_opts[i]) == 0)
			return true;
	for (i = 0; dropped_prefixes[i]; i++)
		if (has_prefix(opt, dropped_prefixes[i]))
			return true;
	return false;
}

static void opts_push(struct helper *h, char *opt)
{
	if (h->opts_cnt == h->opts_cap) {
		size_t cap = h->opts_cap ? 2 * h->opts_cap : 16;
		char **n = reallocarray(h->opts, cap, sizeof(*n));

		if (!n)
			err(EX_OSERR, "out of memory");
		h->opts = n;
		h->opts_cap = cap;
	}
	h->opts[h->opts_cnt++] = opt;
}

/* Removes every earlier "ro", so that a later "rw" wins as it does for mount(8). */
static void opts_remove_ro(struct helper *h)
{
	size_t i, j = 0;

	for (i = 0; i < h->opts_cnt; i++)
		if (strcmp(h->opts[i], "ro") != 0)
			h->opts[j++] = h->opts[i];
	h->opts_cnt = j;
}

/* Takes one option: drops it, keeps it for the helper, or queues it for the daemon. */
static void take_opt(struct helper *h, char *opt)
{
	if (opt[0] == '\0')
		return;
	if (has_prefix(opt, "setuid=")) {
		if (opt[7] == '\0')
			errx(EX_USAGE, "setuid= needs a user name");
		h->setuid_name = opt + 7;
		return;
	}
	if (strcmp(opt, "rw") == 0)
		opts_remove_ro(h);
	if (is_dropped(opt))
		return;
	opts_push(h, opt);
}

/*
 * Splits an -o argument at its commas, in place, and takes each option. A comma escaped with a
 * backslash does not split; the backslash stays, for the daemon's option parser (fuse_opt) to
 * remove. The options point into arg, a string of argv.
 */
static void take_opts(struct helper *h, char *arg)
{
	char *start = arg, *p;

	for (p = arg;; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == ',' || *p == '\0') {
			bool end = *p == '\0';

			*p = '\0';
			take_opt(h, start);
			if (end)
				break;
			start = p + 1;
		}
	}
}

/* Accepts the filesystem types this helper serves. */
static void check_type(const char *type)
{
	if (strcmp(type, "fuse.fractiofs") != 0 && strcmp(type, "fractiofs") != 0)
		errx(EX_USAGE, "unsupported filesystem type '%s' (expected fuse.fractiofs)", type);
}

/*
 * Parses the command line. mount(8) puts the operands first and the options after them, so
 * operands and options are taken in any order, even where getopt would stop at the first
 * operand (POSIXLY_CORRECT); everything after "--" is an operand.
 */
static void parse_args(struct helper *h, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *operands[2];
	int n = 0, c;
	bool only_operands = false;

	while (optind < argc) {
		if (!only_operands) {
			int before = optind;

			c = getopt_long(argc, argv, "+fhnsvVo:t:", longopts, NULL);
			if (c == -1) {
				if (optind > before) /* getopt stepped over "--" */
					only_operands = true;
				if (optind >= argc)
					break;
			}
		} else {
			c = -1;
		}
		switch (c) {
		case -1:
			if (n == 2) {
				warnx("unexpected argument '%s'", argv[optind]);
				usage();
			}
			operands[n++] = argv[optind++];
			break;
		case 'f':
			h->fake = true;
			break;
		case 'n':
		case 's':
			break;
		case 'v':
			h->verbose = true;
			break;
		case 'o':
			take_opts(h, optarg);
			break;
		case 't':
			check_type(optarg);
			break;
		case 'D':
			h->dry_run = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(EX_OK);
		case 'V':
			printf("mount.fractiofs (fractio) %s\n", FR_VERSION_STRING);
			exit(EX_OK);
		default:
			usage();
		}
	}
	if (n != 2) {
		warnx("need SOURCE and MOUNTPOINT");
		usage();
	}
	if (operands[0][0] == '\0' || operands[1][0] == '\0')
		errx(EX_USAGE, "empty SOURCE or MOUNTPOINT");
	h->source = operands[0];
	h->mountpoint = operands[1];
}

/*
 * Returns path made absolute against the current directory, without resolving it (the store
 * directory may not exist yet), as a new string: the daemon leaves its working directory when
 * it goes into the background.
 */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	char *out;
	int n;

	if (path[0] == '/')
		n = asprintf(&out, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = asprintf(&out, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, path);
	else
		err(EX_OSERR, "getcwd");
	if (n < 0)
		err(EX_OSERR, "out of memory");
	return out;
}

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* dir/DAEMON_NAME if that is an executable file (a new string), else NULL. */
static char *try_dir(const char *dir, size_t dir_len)
{
	char *path;

	if (dir_len == 0) { /* an empty $PATH entry is the current directory */
		dir = ".";
		dir_len = 1;
	}
	if (asprintf(&path, "%.*s/%s", (int)dir_len, dir, DAEMON_NAME) < 0)
		err(EX_OSERR, "out of memory");
	if (is_executable(path))
		return path;
	free(path);
	return NULL;
}

/* The daemon: next to this program, in ../bin relative to it, then on $PATH. NULL if none. */
static char *find_daemon(void)
{
	char self[PATH_MAX];
	const char *path, *p;
	char *found, *slash, *up, *bin;
	ssize_t len;

	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0) {
		self[len] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			found = try_dir(self, strlen(self));
			if (found)
				return found;
			if (asprintf(&up, "%s/../bin", self) < 0)
				err(EX_OSERR, "out of memory");
			bin = realpath(up, NULL);
			free(up);
			found = bin ? try_dir(bin, strlen(bin)) : NULL;
			free(bin);
			if (found)
				return found;
		}
	}
	path = getenv("PATH");
	if (!path || path[0] == '\0')
		path = DEFAULT_PATH;
	for (p = path;;) {
		const char *end = strchrnul(p, ':');

		found = try_dir(p, (size_t)(end - p));
		if (found)
			return found;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	return NULL;
}

/* Joins the daemon's options with commas; NULL when there are none. */
static char *join_opts(const struct helper *h)
{
	size_t i, len = 0;
	char *s, *p;

	if (h->opts_cnt == 0)
		return NULL;
	for (i = 0; i < h->opts_cnt; i++)
		len += strlen(h->opts[i]) + 1;
	s = malloc(len);
	if (!s)
		err(EX_OSERR, "out of memory");
	p = s;
	for (i = 0; i < h->opts_cnt; i++) {
		size_t n = strlen(h->opts[i]);

		memcpy(p, h->opts[i], n);
		p += n;
		*p++ = i + 1 < h->opts_cnt ? ',' : '\0';
	}
	return s;
}

/*
 * Clears the ambient, permitted, effective and inheritable capability sets. A switch from
 * root to another user with setuid() already empties permitted and effective; this also covers
 * a helper started by a non-root user with capabilities, and the inheritable set.
 */
static void drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	bool any = false;
	size_t i;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
		err(EX_OSERR, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		err(EX_OSERR, "capget");
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			any = true;
	if (!any)
		return;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		err(EX_OSERR, "capset");
}

static void set_user_env(const struct passwd *pw)
{
	if (setenv("HOME", pw->pw_dir, 1) == -1 || setenv("USER", pw->pw_name, 1) == -1 ||
	    setenv("LOGNAME", pw->pw_name, 1) == -1)
		err(EX_OSERR, "setenv");
}

/* Becomes the user pw for good: supplementary groups, group, then user. */
static void switch_user(const struct passwd *pw)
{
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid) {
		set_user_env(pw);
		return;
	}
	if (geteuid() != 0)
		errx(EX_NOPERM, "setuid=%s: only root can run the daemon as another user",
		     pw->pw_name);
	if (initgroups(pw->pw_name, pw->pw_gid) == -1)
		err(EX_OSERR, "initgroups %s", pw->pw_name);
	if (setgid(pw->pw_gid) == -1)
		err(EX_OSERR, "setgid %lu", (unsigned long)pw->pw_gid);
	if (setuid(pw->pw_uid) == -1)
		err(EX_OSERR, "setuid %lu", (unsigned long)pw->pw_uid);
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		errx(EX_OSERR, "setuid=%s: could still regain root; refusing to go on",
		     pw->pw_name);
	set_user_env(pw);
}

int main(int argc, char **argv)
{
	struct helper h = { 0 };
	struct passwd *pw = NULL;
	char *source, *mountpoint, *daemon_path = NULL, *opts = NULL;
	const char *dargv[6];
	int dargc = 0, i, rc = EX_OK;

	parse_args(&h, argc, argv);
	source = absolute(h.source);
	mountpoint = absolute(h.mountpoint);
	if (h.setuid_name) {
		errno = 0;
		pw = getpwnam(h.setuid_name);
		if (!pw) {
			if (errno)
				err(EX_OSERR, "getpwnam %s", h.setuid_name);
			errx(EX_NOUSER, "setuid=%s: no such user", h.setuid_name);
		}
	}
	daemon_path = find_daemon();
	if (!daemon_path)
		errx(EX_UNAVAILABLE, "cannot find %s next to this program or on PATH", DAEMON_NAME);
	opts = join_opts(&h);
	dargv[dargc++] = daemon_path;
	dargv[dargc++] = source;
	dargv[dargc++] = mountpoint;
	if (opts) {
		dargv[dargc++] = "-o";
		dargv[dargc++] = opts;
	}
	dargv[dargc] = NULL;

	if (h.dry_run) {
		for (i = 0; i < dargc; i++)
			printf("%s\n", dargv[i]);
		if (fflush(stdout) != 0) {
			warn("stdout");
			rc = EX_IOERR;
		}
		goto out;
	}
	if (h.verbose) {
		fprintf(stderr, "mount.fractiofs:");
		if (pw)
			fprintf(stderr, " as %s:", pw->pw_name);
		for (i = 0; i < dargc; i++)
			fprintf(stderr, " %s", dargv[i]);
		fputc('\n', stderr);
	}
	if (h.fake)
		goto out;

	if (pw)
		switch_user(pw);
	else if (!getenv("HOME") && (pw = getpwuid(getuid())) != NULL)
		set_user_env(pw); /* mount(8) at boot may leave HOME unset */
	if (getuid() != 0 || geteuid() != 0)
		drop_caps();

	execv(daemon_path, (char *const *)dargv);
	rc = errno == ENOENT ? EX_UNAVAILABLE : EX_OSERR;
	warn("exec %s", daemon_path);
out:
	free(opts);
	free(daemon_path);
	free(mountpoint);
	free(source);
	free(h.opts);
	return rc;
}
