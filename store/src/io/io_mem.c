/* SPDX-License-Identifier: MIT */
/*
 * io_mem.c - an in-memory file system for tests (io_mem.h), modelling what a machine keeps when
 * it loses power.
 *
 * Model:
 *  - An inode holds the current contents and a durable image. sync(file) copies the contents to
 *    the image. Inodes are refcounted by the names that point at them in either namespace and
 *    by open handles, so an unlinked but open file stays alive.
 *  - A dentry is one path with two inode pointers: `cur`, the name as the running system sees
 *    it, and `dur`, the name as it would be found after a power cut. sync_dir(dir) copies `cur`
 *    to `dur` for every path directly in dir (creations, renames, unlinks, links).
 *  - io_mem_power_cut(): every dentry's `cur` := `dur`, every inode's contents := its image,
 *    all locks are released and every open handle goes stale (its calls fail with FR_IO, EIO;
 *    io_close still frees it). The power cut never allocates.
 *
 * Simplifications (documented for test authors):
 *  - Directories are durable as soon as mkdir returns; a directory rename is applied to both
 *    namespaces at once (also durable at once). There is no rmdir.
 *  - Paths are normalised lexically ("//" and "." dropped, ".." pops a component, a trailing
 *    "/" dropped); "/" and "." always exist. Relative paths live under ".", unrelated to "/".
 *  - Locks are flock-like: per inode, exclusive, FR_BUSY when held through another handle,
 *    released by io_close of the locking handle or by a power cut.
 *  - Errors use the statuses and messages of io_posix.c for the same errno: ENOENT is
 *    FR_NOT_FOUND for open, unlink, rmdir and list, and FR_IO elsewhere (rename, link, mkdir,
 *    sync_dir), as in io_posix; EEXIST on open with IO_EXCL is FR_INVALID. Unlike io_posix, mkdir over an
 *    existing regular file fails (FR_IO, EEXIST) and opening a directory fails (EISDIR).
 *  - The io must outlive its handles: close every file before io_destroy.
 *
 * Thread-safety: thread-safe. One mutex (mem_io.mu) guards everything: the dentry table, every
 * inode, and every handle's link to its inode. It is never held across a call into user code
 * (list() copies the names first).
 */
#include "io/io_mem.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/fr_assert.h"
#include "base/sync.h"
#include "io/io.h"

struct mem_file;

struct mem_inode {
	struct mem_inode *prev, *next; /* in mem_io.inodes; under mu */
	uint8_t *data;		       /* current contents; under mu */
	size_t len;
	size_t cap;   /* never shrinks, so cap >= dur_len always: the power cut copies in place */
	uint8_t *dur; /* the durable image */
	size_t dur_len;
	size_t dur_cap;
	uint32_t cur_nlink;	  /* dentries whose cur points here */
	uint32_t dur_nlink;	  /* dentries whose dur points here */
	uint32_t handles;	  /* open handles, stale ones included */
	uint32_t live_handles;	  /* handles opened since the last power cut */
	struct mem_file *locker; /* the handle holding the lock, or NULL */
};

struct mem_dentry {
	char *path; /* normalised; never "/" or "." (those always exist) */
	bool is_dir;
	struct mem_inode *cur; /* NULL: absent from the current namespace */
	struct mem_inode *dur; /* NULL: absent from the durable namespace */
};

struct mem_io {
	struct fr_io base;
	struct fr_mutex mu;
	struct mem_dentry **ents; /* sorted by path (strcmp); under mu */
	size_t ent_cnt, ent_cap;
	struct mem_inode *inodes; /* every live inode; under mu */
	uint64_t gen;		  /* bumped by each power cut; under mu */
};

struct mem_file {
	struct io_file base;
	struct mem_inode *ino; /* under mu */
	char *path;	       /* as given to open, for messages */
	uint64_t gen;	       /* mem_io.gen at open; differs once a power cut made it stale */
	bool writable;
};

static const struct io_ops mem_ops;

static struct mem_io *mem_of(struct fr_io *io)
{
	fr_assert(io->ops == &mem_ops);
	return (struct mem_io *)io;
}

/*
 * Paths
 */

/* Writes the normalised form of `in` to out (PATH_MAX bytes); returns 0 or an errno. */
static int norm_path(const char *in, char *out)
{
	if (!*in)
		return ENOENT;
	bool abs = in[0] == '/';
	size_t n = 0;
	if (abs)
		out[n++] = '/';
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p && *p != '/')
			p++;
		size_t clen = (size_t)(p - s);
		if (clen == 0 || (clen == 1 && s[0] == '.'))
			continue;
		if (clen == 2 && s[0] == '.' && s[1] == '.') {
			size_t base = abs ? 1 : 0;
			while (n > base && out[n - 1] != '/')
				n--;
			if (n > base)
				n--; /* the separator */
			continue;
		}
		bool sep = n > (abs ? 1u : 0u);
		if (n + sep + clen + 1 > PATH_MAX)
			return ENAMETOOLONG;
		if (sep)
			out[n++] = '/';
		memcpy(out + n, s, clen);
		n += clen;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = 0;
	return 0;
}

static bool is_root(const char *p)
{
	return !strcmp(p, "/") || !strcmp(p, ".");
}

/* Parent directory of normalised path p (not a root) into out (PATH_MAX bytes). */
static void parent_of(const char *p, char *out)
{
	const char *slash = strrchr(p, '/');
	if (!slash) {
		strcpy(out, ".");
		return;
	}
	if (slash == p) {
		strcpy(out, "/");
		return;
	}
	memcpy(out, p, (size_t)(slash - p));
	out[slash - p] = 0;
}

/* Is normalised path p (not a root) directly in directory dir? */
static bool in_dir(const char *p, const char *dir)
{
	const char *slash = strrchr(p, '/');
	if (!slash)
		return !strcmp(dir, ".");
	if (slash == p)
		return !strcmp(dir, "/");
	size_t n = (size_t)(slash - p);
	return strlen(dir) == n && !memcmp(p, dir, n);
}

/*
 * Dentry table and inodes. Requires: mu held for all of these.
 */

/* Binary search; returns the dentry or NULL and sets *at to where it is or would go. */
static struct mem_dentry *dent_find(struct mem_io *m, const char *path, size_t *at)
{
	size_t lo = 0, hi = m->ent_cnt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->ents[mid]->path, path);
		if (c == 0) {
			if (at)
				*at = mid;
			return m->ents[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at)
		*at = lo;
	return NULL;
}

/* Inserts a fresh empty dentry for path at index at; NULL on out of memory. */
static struct mem_dentry *dent_insert(struct mem_io *m, const char *path, size_t at)
{
	if (m->ent_cnt == m->ent_cap) {
		size_t cap = m->ent_cap ? m->ent_cap * 2 : 16;
		struct mem_dentry **ents = fr_realloc(m->ents, cap * sizeof(*ents));
		if (!ents)
			return NULL;
		m->ents = ents;
		m->ent_cap = cap;
	}
	struct mem_dentry *d = fr_calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->path = fr_strdup(path);
	if (!d->path) {
		fr_free(d);
		return NULL;
	}
	memmove(m->ents + at + 1, m->ents + at, (m->ent_cnt - at) * sizeof(*m->ents));
	m->ents[at] = d;
	m->ent_cnt++;
	return d;
}

/* The dentry for path, created (empty) if missing; NULL on out of memory. */
static struct mem_dentry *dent_get(struct mem_io *m, const char *path)
{
	size_t at;
	struct mem_dentry *d = dent_find(m, path, &at);
	return d ? d : dent_insert(m, path, at);
}

static bool dent_is_dead(const struct mem_dentry *d)
{
	return !d->is_dir && !d->cur && !d->dur;
}

/* Frees dentries that name nothing in either namespace. */
static void dent_prune(struct mem_io *m)
{
	size_t j = 0;
	for (size_t i = 0; i < m->ent_cnt; i++) {
		struct mem_dentry *d = m->ents[i];
		if (dent_is_dead(d)) {
			fr_free(d->path);
			fr_free(d);
		} else {
			m->ents[j++] = d;
		}
	}
	m->ent_cnt = j;
}

static void ino_free(struct mem_inode *ino)
{
	fr_free(ino->data);
	fr_free(ino->dur);
	fr_free(ino);
}

/* Frees ino once no name and no handle refers to it. */
static void ino_maybe_free(struct mem_io *m, struct mem_inode *ino)
{
	if (ino->cur_nlink || ino->dur_nlink || ino->handles)
		return;
	if (ino->prev)
		ino->prev->next = ino->next;
	else
		m->inodes = ino->next;
	if (ino->next)
		ino->next->prev = ino->prev;
	ino_free(ino);
}

static struct mem_inode *ino_new(struct mem_io *m)
{
	struct mem_inode *ino = fr_calloc(1, sizeof(*ino));
	if (!ino)
		return NULL;
	ino->next = m->inodes;
	if (m->inodes)
		m->inodes->prev = ino;
	m->inodes = ino;
	return ino;
}

static void dent_set_cur(struct mem_io *m, struct mem_dentry *d, struct mem_inode *ino)
{
	struct mem_inode *old = d->cur;
	if (ino)
		ino->cur_nlink++;
	d->cur = ino;
	if (old) {
		old->cur_nlink--;
		ino_maybe_free(m, old);
	}
}

static void dent_set_dur(struct mem_io *m, struct mem_dentry *d, struct mem_inode *ino)
{
	struct mem_inode *old = d->dur;
	if (ino)
		ino->dur_nlink++;
	d->dur = ino;
	if (old) {
		old->dur_nlink--;
		ino_maybe_free(m, old);
	}
}

static bool path_is_dir(struct mem_io *m, const char *p)
{
	if (is_root(p))
		return true;
	struct mem_dentry *d = dent_find(m, p, NULL);
	return d && d->is_dir;
}

/* The current file at p, or NULL. */
static struct mem_inode *path_file(struct mem_io *m, const char *p)
{
	if (is_root(p))
		return NULL;
	struct mem_dentry *d = dent_find(m, p, NULL);
	return d ? d->cur : NULL;
}

/* 0 when the parent of p is a directory, else ENOENT or ENOTDIR. */
static int parent_check(struct mem_io *m, const char *p)
{
	char parent[PATH_MAX];
	if (is_root(p))
		return 0;
	parent_of(p, parent);
	if (path_is_dir(m, parent))
		return 0;
	return path_file(m, parent) ? ENOTDIR : ENOENT;
}

/* Grows ino's current buffer to hold at least n bytes; false on out of memory. */
static bool ino_reserve(struct mem_inode *ino, size_t n)
{
	if (n <= ino->cap)
		return true;
	size_t cap = ino->cap ? ino->cap : 64;
	while (cap < n)
		cap = cap > SIZE_MAX / 2 ? n : cap * 2;
	uint8_t *data = fr_realloc(ino->data, cap);
	if (!data)
		return false;
	ino->data = data;
	ino->cap = cap;
	return true;
}

/*
 * Files
 */

/* fills err for a failed call on f and returns its status (stale handles: EIO) */
static fr_status file_check(struct mem_io *m, struct mem_file *f, const char *what, bool write,
			    fr_error *err)
{
	if (f->gen != m->gen)
		return FR_ERR_SYS(err, EIO, "%s %s", what, f->path);
	if (write && !f->writable)
		return FR_ERR_SYS(err, EBADF, "%s %s", what, f->path);
	return FR_OK;
}

static fr_status mem_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
			  fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e)
		goto out_errno_nolock;

	struct mem_file *f = fr_calloc(1, sizeof(*f));
	if (!f)
		return FR_ERR(err, FR_NOMEM, "open %s", path);
	f->path = fr_strdup(path);
	if (!f->path) {
		fr_free(f);
		return FR_ERR(err, FR_NOMEM, "open %s", path);
	}

	fr_mutex_lock(&m->mu);
	if (path_is_dir(m, np)) {
		e = EISDIR;
		goto out_unlock;
	}
	e = parent_check(m, np);
	if (e)
		goto out_unlock;
	struct mem_dentry *d = dent_find(m, np, NULL);
	struct mem_inode *ino = d ? d->cur : NULL;
	if (ino && (flags & IO_CREATE) && (flags & IO_EXCL)) {
		e = EEXIST;
		goto out_unlock;
	}
	if (!ino) {
		if (!(flags & IO_CREATE)) {
			e = ENOENT;
			goto out_unlock;
		}
		d = dent_get(m, np);
		if (!d) {
			e = ENOMEM;
			goto out_unlock;
		}
		ino = ino_new(m);
		if (!ino) {
			if (dent_is_dead(d))
				dent_prune(m);
			e = ENOMEM;
			goto out_unlock;
		}
		dent_set_cur(m, d, ino);
	}
	if (flags & IO_TRUNC)
		ino->len = 0;
	ino->handles++;
	ino->live_handles++;
	f->ino = ino;
	f->gen = m->gen;
	f->writable = (flags & IO_RDWR) != 0;
	f->base.io = io;
	fr_mutex_unlock(&m->mu);
	*out = &f->base;
	return FR_OK;

out_unlock:
	fr_mutex_unlock(&m->mu);
	fr_free(f->path);
	fr_free(f);
out_errno_nolock:
	if (e == ENOENT)
		return fr_err_set(err, FR_NOT_FOUND, e, 0, __FILE__, __LINE__, "open %s", path);
	if (e == EEXIST)
		return fr_err_set(err, FR_INVALID, e, 0, __FILE__, __LINE__, "open %s", path);
	return FR_ERR_SYS(err, e, "open %s", path);
}

static fr_status mem_pread(struct io_file *file, void *buf, size_t len, uint64_t off,
			   size_t *got, fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "pread", false, err);
	if (!rc) {
		struct mem_inode *ino = f->ino;
		size_t n = 0;
		if (off < ino->len) {
			n = ino->len - (size_t)off;
			if (n > len)
				n = len;
			memcpy(buf, ino->data + off, n);
		}
		*got = n;
	}
	fr_mutex_unlock(&m->mu);
	return rc;
}

/* Requires: mu held. Writes len bytes at off, zero-filling any gap past the end. */
static fr_status ino_write(struct mem_file *f, const void *buf, size_t len, uint64_t off,
			   fr_error *err)
{
	struct mem_inode *ino = f->ino;
	if (len == 0)
		return FR_OK; /* like pwrite(2): does not extend the file */
	if (off > SIZE_MAX - len || off + len > (uint64_t)INT64_MAX)
		return FR_ERR_SYS(err, EFBIG, "pwrite %s", f->path);
	size_t end = (size_t)off + len;
	if (!ino_reserve(ino, end))
		return FR_ERR_SYS(err, ENOMEM, "pwrite %s", f->path);
	if (off > ino->len)
		memset(ino->data + ino->len, 0, (size_t)off - ino->len);
	memcpy(ino->data + off, buf, len);
	if (end > ino->len)
		ino->len = end;
	return FR_OK;
}

static fr_status mem_pwrite(struct io_file *file, const void *buf, size_t len, uint64_t off,
			    fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "pwrite", true, err);
	if (!rc)
		rc = ino_write(f, buf, len, off, err);
	fr_mutex_unlock(&m->mu);
	return rc;
}

static fr_status mem_append(struct io_file *file, const void *buf, size_t len, fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "pwrite", true, err);
	if (!rc)
		rc = ino_write(f, buf, len, f->ino->len, err);
	fr_mutex_unlock(&m->mu);
	return rc;
}

static fr_status mem_sync(struct io_file *file, fr_persist mode, fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	(void)mode; /* data and metadata are one thing here */
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "sync", false, err);
	if (rc)
		goto out_unlock;
	struct mem_inode *ino = f->ino;
	if (ino->len > ino->dur_cap) {
		uint8_t *dur = fr_realloc(ino->dur, ino->cap);
		if (!dur) {
			rc = FR_ERR_SYS(err, ENOMEM, "sync %s", f->path);
			goto out_unlock;
		}
		ino->dur = dur;
		ino->dur_cap = ino->cap;
	}
	if (ino->len)
		memcpy(ino->dur, ino->data, ino->len);
	ino->dur_len = ino->len;
out_unlock:
	fr_mutex_unlock(&m->mu);
	return rc;
}

static fr_status mem_size(struct io_file *file, uint64_t *out, fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "fstat", false, err);
	if (!rc)
		*out = f->ino->len;
	fr_mutex_unlock(&m->mu);
	return rc;
}

static fr_status mem_truncate(struct io_file *file, uint64_t len, fr_error *err)
{
	struct mem_file *f = (struct mem_file *)file;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	fr_status rc = file_check(m, f, "truncate", true, err);
	if (rc)
		goto out_unlock;
	struct mem_inode *ino = f->ino;
	if (len > (uint64_t)INT64_MAX || len > SIZE_MAX) {
		rc = FR_ERR_SYS(err, EFBIG, "truncate %s", f->path);
		goto out_unlock;
	}
	if (len > ino->len) {
		if (!ino_reserve(ino, (size_t)len)) {
			rc = FR_ERR_SYS(err, ENOMEM, "truncate %s", f->path);
			goto out_unlock;
		}
		memset(ino->data + ino->len, 0, (size_t)len - ino->len);
	}
	ino->len = (size_t)len;
out_unlock:
	fr_mutex_unlock(&m->mu);
	return rc;
}

static void mem_close(struct io_file *file)
{
	struct mem_file *f = (struct mem_file *)file;
	if (!f)
		return;
	struct mem_io *m = mem_of(file->io);
	fr_mutex_lock(&m->mu);
	struct mem_inode *ino = f->ino;
	ino->handles--;
	if (f->gen == m->gen) {
		ino->live_handles--;
		if (ino->locker == f)
			ino->locker = NULL;
	}
	ino_maybe_free(m, ino);
	fr_mutex_unlock(&m->mu);
	fr_free(f->path);
	fr_free(f);
}

/*
 * Names
 */

static int dent_cmp(const void *a, const void *b)
{
	const struct mem_dentry *x = *(struct mem_dentry *const *)a;
	const struct mem_dentry *y = *(struct mem_dentry *const *)b;
	return strcmp(x->path, y->path);
}

/* Does path p equal dir or lie below it? */
static bool is_under(const char *p, const char *dir, size_t dir_len)
{
	return !strncmp(p, dir, dir_len) && (p[dir_len] == 0 || p[dir_len] == '/');
}

/*
 * Requires: mu held. Renames directory from to `to` in both namespaces (directories are durable
 * at once). Returns 0 or an errno.
 */
static int dir_rename(struct mem_io *m, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);
	if (is_root(from) || is_root(to) || is_under(to, from, flen))
		return !strcmp(from, to) ? 0 : EINVAL;
	int e = parent_check(m, to);
	if (e)
		return e;
	if (path_file(m, to))
		return ENOTDIR;
	/* `to` may be an existing directory only if nothing at all lies below it */
	for (size_t i = 0; i < m->ent_cnt; i++) {
		const char *p = m->ents[i]->path;
		if (is_under(p, to, tlen) && p[tlen] == '/')
			return ENOTEMPTY;
	}
	size_t moved = 0;
	for (size_t i = 0; i < m->ent_cnt; i++)
		if (is_under(m->ents[i]->path, from, flen))
			moved++;
	char **names = fr_calloc(moved, sizeof(*names));
	if (!names)
		return ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->ent_cnt; i++) {
		const char *p = m->ents[i]->path;
		if (!is_under(p, from, flen))
			continue;
		size_t rest = strlen(p + flen);
		if (tlen + rest + 1 > PATH_MAX) {
			e = ENAMETOOLONG;
			goto out_free;
		}
		names[k] = fr_malloc(tlen + rest + 1);
		if (!names[k]) {
			e = ENOMEM;
			goto out_free;
		}
		memcpy(names[k], to, tlen);
		memcpy(names[k] + tlen, p + flen, rest + 1);
		k++;
	}
	/* commit: nothing below can fail */
	struct mem_dentry *old_to = dent_find(m, to, NULL);
	if (old_to)
		old_to->is_dir = false; /* an empty directory, replaced; pruned below */
	k = 0;
	for (size_t i = 0; i < m->ent_cnt; i++) {
		struct mem_dentry *d = m->ents[i];
		if (d == old_to || !is_under(d->path, from, flen))
			continue;
		fr_free(d->path);
		d->path = names[k];
		names[k++] = NULL;
	}
	dent_prune(m);
	qsort(m->ents, m->ent_cnt, sizeof(*m->ents), dent_cmp);
out_free:
	for (size_t i = 0; i < moved; i++)
		fr_free(names[i]);
	fr_free(names);
	return e;
}

static fr_status mem_rename(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char nf[PATH_MAX], nt[PATH_MAX];
	int e = norm_path(from, nf);
	if (!e)
		e = norm_path(to, nt);
	if (e)
		return FR_ERR_SYS(err, e, "rename %s to %s", from, to);
	fr_mutex_lock(&m->mu);
	if (path_is_dir(m, nf)) {
		e = dir_rename(m, nf, nt);
		goto out_unlock;
	}
	e = parent_check(m, nf);
	if (e)
		goto out_unlock;
	struct mem_dentry *fd = dent_find(m, nf, NULL);
	if (!fd || !fd->cur) {
		e = ENOENT;
		goto out_unlock;
	}
	e = parent_check(m, nt);
	if (e)
		goto out_unlock;
	if (path_is_dir(m, nt)) {
		e = EISDIR;
		goto out_unlock;
	}
	struct mem_dentry *td = dent_get(m, nt);
	if (!td) {
		e = ENOMEM;
		goto out_unlock;
	}
	if (td->cur == fd->cur)
		goto out_unlock; /* same file (or hard links to it): POSIX says do nothing */
	dent_set_cur(m, td, fd->cur);
	dent_set_cur(m, fd, NULL);
	if (dent_is_dead(fd))
		dent_prune(m);
out_unlock:
	fr_mutex_unlock(&m->mu);
	if (e)
		return FR_ERR_SYS(err, e, "rename %s to %s", from, to);
	return FR_OK;
}

static fr_status mem_unlink(struct fr_io *io, const char *path, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e)
		goto out_err;
	fr_mutex_lock(&m->mu);
	if (path_is_dir(m, np)) {
		e = EISDIR;
	} else if (!(e = parent_check(m, np))) {
		struct mem_dentry *d = dent_find(m, np, NULL);
		if (!d || !d->cur) {
			e = ENOENT;
		} else {
			dent_set_cur(m, d, NULL);
			if (dent_is_dead(d))
				dent_prune(m);
		}
	}
	fr_mutex_unlock(&m->mu);
	if (!e)
		return FR_OK;
out_err:
	if (e == ENOENT)
		return fr_err_set(err, FR_NOT_FOUND, e, 0, __FILE__, __LINE__, "unlink %s", path);
	return FR_ERR_SYS(err, e, "unlink %s", path);
}

static fr_status mem_mkdir(struct fr_io *io, const char *path, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e)
		return FR_ERR_SYS(err, e, "mkdir %s", path);
	fr_mutex_lock(&m->mu);
	if (path_is_dir(m, np))
		goto out_unlock;
	e = parent_check(m, np);
	if (e)
		goto out_unlock;
	struct mem_dentry *d = dent_get(m, np);
	if (!d) {
		e = ENOMEM;
	} else if (d->cur) {
		e = EEXIST;
	} else {
		/* a name only left in the durable namespace is replaced by the (durable) dir */
		dent_set_dur(m, d, NULL);
		d->is_dir = true;
	}
out_unlock:
	fr_mutex_unlock(&m->mu);
	if (e)
		return FR_ERR_SYS(err, e, "mkdir %s", path);
	return FR_OK;
}

/* A directory is durable at once in this model (mem_mkdir), so its removal is too; names left
 * only in the durable namespace below it (unlinked, not yet synced) go with it. */
static fr_status mem_rmdir(struct fr_io *io, const char *path, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e)
		goto out_err;
	fr_mutex_lock(&m->mu);
	struct mem_dentry *d = is_root(np) ? NULL : dent_find(m, np, NULL);
	if (is_root(np)) {
		e = EBUSY;
	} else if (!d || !d->is_dir) {
		e = d && d->cur ? ENOTDIR : ENOENT;
	} else {
		size_t len = strlen(np);
		for (size_t i = 0; i < m->ent_cnt && !e; i++) {
			struct mem_dentry *c = m->ents[i];
			if (c != d && is_under(c->path, np, len) && (c->is_dir || c->cur))
				e = ENOTEMPTY;
		}
		if (!e) {
			for (size_t i = 0; i < m->ent_cnt; i++) {
				struct mem_dentry *c = m->ents[i];
				if (c != d && is_under(c->path, np, len))
					dent_set_dur(m, c, NULL);
			}
			d->is_dir = false;
			dent_prune(m);
		}
	}
	fr_mutex_unlock(&m->mu);
	if (!e)
		return FR_OK;
out_err:
	if (e == ENOENT)
		return fr_err_set(err, FR_NOT_FOUND, e, 0, __FILE__, __LINE__, "rmdir %s", path);
	return FR_ERR_SYS(err, e, "rmdir %s", path);
}

static fr_status mem_sync_dir(struct fr_io *io, const char *path, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e)
		return FR_ERR_SYS(err, e, "open directory %s", path);
	fr_mutex_lock(&m->mu);
	if (!path_is_dir(m, np)) {
		e = path_file(m, np) ? ENOTDIR : ENOENT;
		goto out_unlock;
	}
	for (size_t i = 0; i < m->ent_cnt; i++) {
		struct mem_dentry *d = m->ents[i];
		if (!d->is_dir && d->dur != d->cur && in_dir(d->path, np))
			dent_set_dur(m, d, d->cur);
	}
	dent_prune(m);
out_unlock:
	fr_mutex_unlock(&m->mu);
	if (e)
		return FR_ERR_SYS(err, e, "open directory %s", path);
	return FR_OK;
}

static fr_status mem_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx,
			  fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	char **names = NULL;
	size_t cnt = 0;
	int e = norm_path(dir, np);
	if (e)
		goto out_err;
	fr_mutex_lock(&m->mu);
	if (!path_is_dir(m, np)) {
		e = path_file(m, np) ? ENOTDIR : ENOENT;
		goto out_unlock;
	}
	names = fr_calloc(m->ent_cnt, sizeof(*names));
	if (!names) {
		e = ENOMEM;
		goto out_unlock;
	}
	for (size_t i = 0; i < m->ent_cnt; i++) {
		struct mem_dentry *d = m->ents[i];
		if ((!d->is_dir && !d->cur) || !in_dir(d->path, np))
			continue;
		const char *slash = strrchr(d->path, '/');
		names[cnt] = fr_strdup(slash ? slash + 1 : d->path);
		if (!names[cnt]) {
			e = ENOMEM;
			goto out_unlock;
		}
		cnt++;
	}
out_unlock:
	fr_mutex_unlock(&m->mu);
	/* the callback runs unlocked: it may call back into this io */
	for (size_t i = 0; !e && i < cnt; i++)
		if (fn(ctx, names[i]))
			break;
	for (size_t i = 0; i < cnt; i++)
		fr_free(names[i]);
	fr_free(names);
	if (!e)
		return FR_OK;
out_err:
	if (e == ENOENT)
		return fr_err_set(err, FR_NOT_FOUND, e, 0, __FILE__, __LINE__, "opendir %s", dir);
	return FR_ERR_SYS(err, e, "opendir %s", dir);
}

static fr_status mem_exists(struct fr_io *io, const char *path, bool *out, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char np[PATH_MAX];
	int e = norm_path(path, np);
	if (e == ENOENT) {
		*out = false;
		return FR_OK;
	}
	if (e)
		return FR_ERR_SYS(err, e, "stat %s", path);
	fr_mutex_lock(&m->mu);
	*out = path_is_dir(m, np) || path_file(m, np);
	fr_mutex_unlock(&m->mu);
	return FR_OK;
}

static fr_status mem_link(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	char nf[PATH_MAX], nt[PATH_MAX];
	int e = norm_path(from, nf);
	if (!e)
		e = norm_path(to, nt);
	if (e)
		return FR_ERR_SYS(err, e, "link %s to %s", from, to);
	fr_mutex_lock(&m->mu);
	if (path_is_dir(m, nf)) {
		e = EPERM;
		goto out_unlock;
	}
	e = parent_check(m, nf);
	if (e)
		goto out_unlock;
	struct mem_inode *ino = path_file(m, nf);
	if (!ino) {
		e = ENOENT;
		goto out_unlock;
	}
	e = parent_check(m, nt);
	if (e)
		goto out_unlock;
	if (path_is_dir(m, nt) || path_file(m, nt)) {
		e = EEXIST;
		goto out_unlock;
	}
	struct mem_dentry *td = dent_get(m, nt);
	if (!td) {
		e = ENOMEM;
		goto out_unlock;
	}
	dent_set_cur(m, td, ino);
out_unlock:
	fr_mutex_unlock(&m->mu);
	if (e)
		return FR_ERR_SYS(err, e, "link %s to %s", from, to);
	return FR_OK;
}

static fr_status mem_lock(struct fr_io *io, const char *path, struct io_file **out, fr_error *err)
{
	struct mem_io *m = mem_of(io);
	struct io_file *file;
	fr_status rc = mem_open(io, path, IO_RDWR | IO_CREATE, &file, err);
	if (rc)
		return rc;
	struct mem_file *f = (struct mem_file *)file;
	fr_mutex_lock(&m->mu);
	bool busy = f->gen != m->gen || f->ino->locker != NULL;
	if (!busy)
		f->ino->locker = f;
	fr_mutex_unlock(&m->mu);
	if (busy) {
		mem_close(file);
		return fr_err_set(err, FR_BUSY, EWOULDBLOCK, 0, __FILE__, __LINE__,
				  "%s is locked by another opener", path);
	}
	*out = file;
	return FR_OK;
}

static void mem_destroy(struct fr_io *io)
{
	struct mem_io *m = mem_of(io);
	for (size_t i = 0; i < m->ent_cnt; i++) {
		fr_free(m->ents[i]->path);
		fr_free(m->ents[i]);
	}
	fr_free(m->ents);
	struct mem_inode *ino = m->inodes;
	while (ino) {
		struct mem_inode *next = ino->next;
		ino_free(ino);
		ino = next;
	}
	fr_mutex_fini(&m->mu);
	fr_free(m);
}

static const struct io_ops mem_ops = {
	.open = mem_open,
	.pread = mem_pread,
	.pwrite = mem_pwrite,
	.append = mem_append,
	.sync = mem_sync,
	.size = mem_size,
	.truncate = mem_truncate,
	.close = mem_close,
	.rename = mem_rename,
	.unlink = mem_unlink,
	.mkdir = mem_mkdir,
	.rmdir = mem_rmdir,
	.sync_dir = mem_sync_dir,
	.list = mem_list,
	.exists = mem_exists,
	.link = mem_link,
	.lock = mem_lock,
	.destroy = mem_destroy,
};

struct fr_io *io_mem_new(void)
{
	struct mem_io *m = fr_calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->base.ops = &mem_ops;
	fr_mutex_init(&m->mu);
	return &m->base;
}

void io_mem_power_cut(struct fr_io *io)
{
	struct mem_io *m = mem_of(io);
	fr_mutex_lock(&m->mu);
	m->gen++;
	for (size_t i = 0; i < m->ent_cnt; i++) {
		struct mem_dentry *d = m->ents[i];
		if (d->cur != d->dur)
			dent_set_cur(m, d, d->dur);
	}
	dent_prune(m);
	for (struct mem_inode *ino = m->inodes; ino; ino = ino->next) {
		fr_assert(ino->dur_len <= ino->cap);
		if (ino->dur_len)
			memcpy(ino->data, ino->dur, ino->dur_len);
		ino->len = ino->dur_len;
		ino->live_handles = 0;
		ino->locker = NULL;
	}
	fr_mutex_unlock(&m->mu);
}

uint64_t io_mem_bytes(struct fr_io *io)
{
	struct mem_io *m = mem_of(io);
	uint64_t total = 0;
	fr_mutex_lock(&m->mu);
	for (struct mem_inode *ino = m->inodes; ino; ino = ino->next)
		if (ino->cur_nlink || ino->live_handles)
			total += ino->len;
	fr_mutex_unlock(&m->mu);
	return total;
}
