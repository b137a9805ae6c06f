/* SPDX-License-Identifier: MIT */
/*
 * bdi.c - finding a FUSE mount's device number and setting its read-ahead window (bdi.h).
 */
#include "bdi.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Decodes the octal escapes (\040 and the like) the kernel writes for spaces, tabs, newlines
 * and backslashes in a mountinfo path, in place. */
static void unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* One line: "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE ...".
 * 1 when it is a fuse mount at mnt (*maj, *min set), 0 when it is another mount, -EINVAL. */
static int parse_line(char *line, const char *mnt, unsigned *maj, unsigned *min)
{
	char *save = NULL, *tok[5];
	unsigned a, b;
	char end;

	for (int i = 0; i < 5; i++) {
		tok[i] = strtok_r(i ? NULL : line, " \n", &save);
		if (!tok[i])
			return -EINVAL;
	}
	if (sscanf(tok[2], "%u:%u%c", &a, &b, &end) != 2)
		return -EINVAL;
	char *t;
	while ((t = strtok_r(NULL, " \n", &save)) && strcmp(t, "-") != 0)
		;
	char *fstype = t ? strtok_r(NULL, " \n", &save) : NULL;
	if (!fstype)
		return -EINVAL;
	unescape(tok[4]);
	if (strcmp(tok[4], mnt) != 0 || strncmp(fstype, "fuse", 4) != 0)
		return 0;
	*maj = a;
	*min = b;
	return 1;
}

int fs_mountinfo_dev(FILE *mountinfo, const char *mnt, unsigned *maj, unsigned *min)
{
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	/* mounts are listed oldest first: the last match is the one on top */
	while (getline(&line, &cap, mountinfo) > 0) {
		int r = parse_line(line, mnt, maj, min);

		if (r < 0) {
			rc = r;
			break;
		}
		if (r > 0)
			rc = 0;
	}
	free(line);
	return rc;
}

int fs_set_read_ahead(const char *mnt, unsigned kb)
{
	unsigned maj, min;
	char path[64];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int rc;

	if (!f)
		return -errno;
	rc = fs_mountinfo_dev(f, mnt, &maj, &min);
	fclose(f);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	rc = fprintf(f, "%u\n", kb) < 0 ? -EIO : 0;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

struct ra_job {
	unsigned kb;
	int verbose;
	char mnt[]; /* one allocation */
};

static void *ra_thread(void *arg)
{
	struct ra_job *j = arg;
	struct stat st;
	int rc = stat(j->mnt, &st) ? -errno : fs_set_read_ahead(j->mnt, j->kb);

	if (rc && (j->verbose || (rc != -EACCES && rc != -EPERM && rc != -ENOTCONN)))
		fprintf(stderr, "fractiofs: read_ahead=%u not set: %s\n", j->kb, strerror(-rc));
	free(j);
	return NULL;
}

int fs_read_ahead_after_init(const char *mnt, unsigned kb, int verbose)
{
	size_t n = strlen(mnt) + 1;
	struct ra_job *j = malloc(sizeof(*j) + n);
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (!j)
		return -ENOMEM;
	j->kb = kb;
	j->verbose = verbose;
	memcpy(j->mnt, mnt, n);
	rc = pthread_attr_init(&attr);
	if (!rc) {
		rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (!rc)
			rc = pthread_create(&t, &attr, ra_thread, j);
		pthread_attr_destroy(&attr);
	}
	if (rc)
		free(j);
	return -rc;
}
