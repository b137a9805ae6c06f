/* SPDX-License-Identifier: MIT */
/*
 * memfs.c - fractio-memfs, an in-memory FUSE file system used as the reference of the file
 * system benchmark (tools/fsbench): it speaks to the kernel exactly as fractiofs does (low-level
 * API, fractiofs's own request loop (fs/session.h), writeback cache, default_permissions, readdirplus, the same entry
 * and attribute timeouts) but keeps everything in memory behind one lock, so what it reaches
 * is the most any FUSE file system reaches on the machine. The ratio fractiofs/memfs is the
 * part of a gap that is ours; the ratio memfs/ext4 is the part that is FUSE's.
 *
 * usage: fractio-memfs [FUSE options] STORE MOUNTPOINT   (STORE is ignored: the same command
 * line as fractiofs, so the benchmark can run either)
 *
 * Enough of POSIX for the benchmark's workloads: files, directories, symlinks, hard links,
 * rename without flags, truncate, times and modes. No extended attributes (ENOTSUP). Nothing
 * is freed before unmount except file contents on truncate; it is a benchmark tool.
 */
#define FUSE_USE_VERSION 312 /* as fractiofs: the loop config API of 3.12 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "session.h"

#define TIMEOUT 3600.0

struct mnode {
	struct stat st;
	uint8_t *data;   /* regular file contents */
	size_t cap;
	char *target;    /* symlink */
	struct dent **ents; /* directory entries, in creation order; NULL slots were removed */
	size_t ent_cnt, ent_cap;
};

/* A name in a directory; also a chain link of the global (parent, name) hash table. */
struct dent {
	uint64_t parent;
	uint64_t ino;
	size_t slot;       /* index in the parent's ents */
	struct dent *next; /* hash chain */
	char name[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct mnode **nodes; /* by inode number; 1 is the root */
static size_t node_cnt, node_cap;
static struct dent **htab;
static size_t hcap = 1u << 16, hcnt;

static uint64_t hash_name(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return h;
}

static struct dent **hfind(uint64_t parent, const char *name)
{
	struct dent **pp = &htab[hash_name(parent, name) & (hcap - 1)];

	while (*pp && ((*pp)->parent != parent || strcmp((*pp)->name, name) != 0))
		pp = &(*pp)->next;
	return pp;
}

static int hgrow(void)
{
	size_t ncap = hcap * 2, i;
	struct dent **nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return ENOMEM;
	for (i = 0; i < hcap; i++) {
		struct dent *d = htab[i], *next;

		for (; d; d = next) {
			struct dent **slot = &nt[hash_name(d->parent, d->name) & (ncap - 1)];

			next = d->next;
			d->next = *slot;
			*slot = d;
		}
	}
	free(htab);
	htab = nt;
	hcap = ncap;
	return 0;
}

static struct mnode *node(fuse_ino_t ino)
{
	return ino < node_cnt ? nodes[ino] : NULL;
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* A change of contents: mtime and ctime both become now. */
static void touch(struct mnode *n)
{
	now(&n->st.st_mtim);
	n->st.st_ctim = n->st.st_mtim;
}

static struct mnode *node_new(mode_t mode, dev_t rdev, const struct fuse_ctx *cx)
{
	struct mnode *n;

	if (node_cnt == node_cap) {
		size_t ncap = node_cap ? node_cap * 2 : 1024;
		struct mnode **nn = realloc(nodes, ncap * sizeof(*nn));

		if (!nn)
			return NULL;
		nodes = nn;
		node_cap = ncap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->st.st_ino = node_cnt;
	n->st.st_mode = mode;
	n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	n->st.st_uid = cx->uid;
	n->st.st_gid = cx->gid;
	n->st.st_rdev = rdev;
	n->st.st_blksize = 4096;
	now(&n->st.st_mtim);
	n->st.st_atim = n->st.st_ctim = n->st.st_mtim;
	nodes[node_cnt++] = n;
	return n;
}

static int dir_add(struct mnode *dir, const char *name, uint64_t ino)
{
	size_t len = strlen(name);
	struct dent *d, **slot;

	if (hcnt * 2 > hcap && hgrow() != 0)
		return ENOMEM;
	if (dir->ent_cnt == dir->ent_cap) {
		size_t ncap = dir->ent_cap ? dir->ent_cap * 2 : 16;
		struct dent **ne = realloc(dir->ents, ncap * sizeof(*ne));

		if (!ne)
			return ENOMEM;
		dir->ents = ne;
		dir->ent_cap = ncap;
	}
	d = malloc(sizeof(*d) + len + 1);
	if (!d)
		return ENOMEM;
	d->parent = dir->st.st_ino;
	d->ino = ino;
	d->slot = dir->ent_cnt;
	memcpy(d->name, name, len + 1);
	slot = hfind(d->parent, name);
	d->next = NULL;
	*slot = d;
	dir->ents[dir->ent_cnt++] = d;
	hcnt++;
	dir->st.st_size++;
	touch(dir);
	return 0;
}

static void dir_del(struct mnode *dir, struct dent **pp)
{
	struct dent *d = *pp;

	*pp = d->next;
	dir->ents[d->slot] = NULL;
	dir->st.st_size--;
	hcnt--;
	touch(dir);
	free(d);
}

static void entry_param(const struct mnode *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->st.st_ino;
	e->attr = n->st;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
}

static void reply_entry(fuse_req_t req, const struct mnode *n)
{
	struct fuse_entry_param e;

	entry_param(n, &e);
	fuse_reply_entry(req, &e);
}

static void m_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE)
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_write = 1u << 20;
	conn->time_gran = 1;
}

static void m_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct dent *d;

	pthread_mutex_lock(&mu);
	d = *hfind(parent, name);
	if (!d) {
		struct fuse_entry_param e;

		pthread_mutex_unlock(&mu);
		memset(&e, 0, sizeof(e));
		e.entry_timeout = TIMEOUT; /* a negative entry, as fractiofs gives */
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, nodes[d->ino]);
	pthread_mutex_unlock(&mu);
}

static void m_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void m_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnode *n;
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node(ino);
	if (n)
		st = n->st;
	pthread_mutex_unlock(&mu);
	if (!n)
		fuse_reply_err(req, ENOENT);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static int resize(struct mnode *n, size_t size)
{
	if (size > n->cap) {
		size_t ncap = n->cap ? n->cap : 4096;
		uint8_t *nd;

		while (ncap < size)
			ncap *= 2;
		nd = realloc(n->data, ncap);
		if (!nd)
			return ENOMEM;
		memset(nd + n->cap, 0, ncap - n->cap);
		n->data = nd;
		n->cap = ncap;
	}
	if (size < (size_t)n->st.st_size)
		memset(n->data + size, 0, (size_t)n->st.st_size - size);
	n->st.st_size = (off_t)size;
	n->st.st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

static void set_time(struct timespec *dst, const struct timespec *src, int now_flag, int set)
{
	if (now_flag)
		now(dst);
	else if (set)
		*dst = *src;
}

static void m_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi)
{
	struct mnode *n;
	struct stat st;
	int err = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node(ino);
	if (!n) {
		err = ENOENT;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE)
		n->st.st_mode = (n->st.st_mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		n->st.st_uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		n->st.st_gid = attr->st_gid;
	if ((to_set & FUSE_SET_ATTR_SIZE) && (err = resize(n, (size_t)attr->st_size)) != 0)
		goto out;
	set_time(&n->st.st_atim, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW,
		 to_set & FUSE_SET_ATTR_ATIME);
	set_time(&n->st.st_mtim, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW,
		 to_set & FUSE_SET_ATTR_MTIME);
	now(&n->st.st_ctim);
	st = n->st;
out:
	pthread_mutex_unlock(&mu);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

/* Makes a node named `name` in `parent`; replies. */
static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		 const char *target, struct fuse_file_info *fi)
{
	struct mnode *dir, *n = NULL;
	int err = 0;

	pthread_mutex_lock(&mu);
	dir = node(parent);
	if (!dir || !S_ISDIR(dir->st.st_mode)) {
		err = ENOENT;
		goto out;
	}
	if (*hfind(parent, name)) {
		err = EEXIST;
		goto out;
	}
	n = node_new(mode, rdev, fuse_req_ctx(req));
	if (!n || (target && !(n->target = strdup(target)))) {
		err = ENOMEM;
		goto out;
	}
	if (target)
		n->st.st_size = (off_t)strlen(target);
	err = dir_add(dir, name, n->st.st_ino);
	if (!err && S_ISDIR(mode))
		dir->st.st_nlink++;
out:
	if (err) {
		pthread_mutex_unlock(&mu);
		fuse_reply_err(req, err);
		return;
	}
	if (fi) {
		struct fuse_entry_param e;

		entry_param(n, &e);
		pthread_mutex_unlock(&mu);
		fuse_reply_create(req, &e, fi);
		return;
	}
	reply_entry(req, n);
	pthread_mutex_unlock(&mu);
}

static void m_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make(req, parent, name, mode, rdev, NULL, NULL);
}

static void m_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

static void m_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, S_IFLNK | 0777, 0, link, NULL);
}

static void m_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi)
{
	make(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

static void m_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct mnode *n;
	char *t = NULL;

	pthread_mutex_lock(&mu);
	n = node(ino);
	if (n && n->target)
		t = strdup(n->target);
	pthread_mutex_unlock(&mu);
	if (!t) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	fuse_reply_readlink(req, t);
	free(t);
}

static void m_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char *name)
{
	struct mnode *n, *dir;
	int err;

	pthread_mutex_lock(&mu);
	n = node(ino);
	dir = node(parent);
	if (!n || !dir)
		err = ENOENT;
	else if (*hfind(parent, name))
		err = EEXIST;
	else
		err = dir_add(dir, name, ino);
	if (!err) {
		n->st.st_nlink++;
		now(&n->st.st_ctim);
		reply_entry(req, n);
	}
	pthread_mutex_unlock(&mu);
	if (err)
		fuse_reply_err(req, err);
}

static bool dir_empty(const struct mnode *d)
{
	return d->st.st_size == 0;
}

static void m_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_dir)
{
	struct mnode *dir, *n;
	struct dent **pp;
	int err = 0;

	pthread_mutex_lock(&mu);
	dir = node(parent);
	pp = dir ? hfind(parent, name) : NULL;
	if (!pp || !*pp) {
		err = ENOENT;
		goto out;
	}
	n = nodes[(*pp)->ino];
	if (is_dir != !!S_ISDIR(n->st.st_mode)) {
		err = is_dir ? ENOTDIR : EISDIR;
		goto out;
	}
	if (is_dir && !dir_empty(n)) {
		err = ENOTEMPTY;
		goto out;
	}
	dir_del(dir, pp);
	if (is_dir) {
		dir->st.st_nlink--;
		n->st.st_nlink = 0;
	} else {
		n->st.st_nlink--;
	}
	now(&n->st.st_ctim);
	if (n->st.st_nlink == 0 && n->data) {
		free(n->data);
		n->data = NULL;
		n->cap = 0;
	}
out:
	pthread_mutex_unlock(&mu);
	fuse_reply_err(req, err);
}

static void m_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	m_remove(req, parent, name, false);
}

static void m_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	m_remove(req, parent, name, true);
}

static void m_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	struct mnode *from, *to, *n, *old;
	struct dent **pp, **qp;
	uint64_t ino;
	int err = 0;

	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&mu);
	from = node(parent);
	to = node(newparent);
	pp = from ? hfind(parent, name) : NULL;
	if (!to || !pp || !*pp) {
		err = ENOENT;
		goto out;
	}
	ino = (*pp)->ino;
	n = nodes[ino];
	qp = hfind(newparent, newname);
	if (*qp) {
		if ((*qp)->ino == ino)
			goto out;
		old = nodes[(*qp)->ino];
		if (S_ISDIR(old->st.st_mode) && !dir_empty(old)) {
			err = ENOTEMPTY;
			goto out;
		}
		if (S_ISDIR(old->st.st_mode)) {
			to->st.st_nlink--;
			old->st.st_nlink = 0;
		} else {
			old->st.st_nlink--;
		}
		dir_del(to, qp);
	}
	dir_del(from, hfind(parent, name));
	err = dir_add(to, newname, ino);
	if (!err && S_ISDIR(n->st.st_mode) && from != to) {
		from->st.st_nlink--;
		to->st.st_nlink++;
	}
	now(&n->st.st_ctim);
out:
	pthread_mutex_unlock(&mu);
	fuse_reply_err(req, err);
}

static void m_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnode *n;
	int err = 0;

	pthread_mutex_lock(&mu);
	n = node(ino);
	if (!n)
		err = ENOENT;
	else if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY)
		err = resize(n, 0);
	pthread_mutex_unlock(&mu);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
}

static void m_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct mnode *n;
	char *buf = NULL;
	size_t len = 0;
	int err = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node(ino);
	if (!n) {
		err = ENOENT;
	} else if (off < n->st.st_size) {
		len = (size_t)(n->st.st_size - off);
		if (len > size)
			len = size;
		buf = malloc(len ? len : 1);
		if (!buf)
			err = ENOMEM;
		else
			memcpy(buf, n->data + off, len);
	}
	pthread_mutex_unlock(&mu);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

static void m_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mnode *n;
	int err = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node(ino);
	if (!n)
		err = ENOENT;
	else if ((size_t)off + size > (size_t)n->st.st_size)
		err = resize(n, (size_t)off + size);
	if (!err) {
		memcpy(n->data + off, buf, size);
		touch(n);
	}
	pthread_mutex_unlock(&mu);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

static void m_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void m_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	m_ok(req, ino, fi);
}

static void m_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mnode *n;

	pthread_mutex_lock(&mu);
	n = node(ino);
	pthread_mutex_unlock(&mu);
	if (!n)
		fuse_reply_err(req, ENOENT);
	else if (!S_ISDIR(n->st.st_mode))
		fuse_reply_err(req, ENOTDIR);
	else
		fuse_reply_open(req, fi);
}

/* Offsets: 1 and 2 for "." and "..", then 3 + the slot of each entry. */
static void listdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct mnode *dir;
	char *buf = malloc(size);
	size_t pos = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&mu);
	dir = node(ino);
	if (!dir) {
		pthread_mutex_unlock(&mu);
		free(buf);
		fuse_reply_err(req, ENOENT);
		return;
	}
	for (;; off++) {
		const char *name;
		const struct mnode *n;
		struct fuse_entry_param e;
		size_t need;

		if (off == 0 || off == 1) {
			name = off ? ".." : ".";
			n = dir;
		} else if ((size_t)off - 2 < dir->ent_cnt) {
			const struct dent *d = dir->ents[off - 2];

			if (!d)
				continue;
			name = d->name;
			n = nodes[d->ino];
		} else {
			break;
		}
		entry_param(n, &e);
		if (plus) {
			/* "." and "..": no lookup count for the kernel to forget */
			if (off < 2) {
				memset(&e, 0, sizeof(e));
				e.attr = n->st;
			}
			need = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, off + 1);
		} else {
			need = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr, off + 1);
		}
		if (need > size - pos)
			break;
		pos += need;
	}
	pthread_mutex_unlock(&mu);
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void m_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)fi;
	listdir(req, ino, size, off, false);
}

static void m_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	(void)fi;
	listdir(req, ino, size, off, true);
}

static void m_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	m_ok(req, ino, fi);
}

static void m_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = sv.f_bfree = sv.f_bavail = 1ull << 30;
	sv.f_files = sv.f_ffree = sv.f_favail = 1ull << 30;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = m_init,
	.lookup = m_lookup,
	.forget = m_forget,
	.getattr = m_getattr,
	.setattr = m_setattr,
	.readlink = m_readlink,
	.mknod = m_mknod,
	.mkdir = m_mkdir,
	.unlink = m_unlink,
	.rmdir = m_rmdir,
	.symlink = m_symlink,
	.rename = m_rename,
	.link = m_link,
	.open = m_open,
	.read = m_read,
	.write = m_write,
	.flush = m_ok,
	.release = m_ok,
	.fsync = m_fsync,
	.opendir = m_opendir,
	.readdir = m_readdir,
	.readdirplus = m_readdirplus,
	.releasedir = m_ok,
	.fsyncdir = m_fsyncdir,
	.statfs = m_statfs,
	.create = m_create,
};

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct fuse_cmdline_opts copts;
	struct fuse_session *se;
	struct fuse_ctx root_cx = { .uid = 0, .gid = 0 };
	int ret = 1;

	/* drop STORE, the first operand (options may come first, "-o x" taking two words): the
	 * rest is a FUSE command line */
	int store = 0;
	for (int i = 1; i < argc && !store; i++) {
		if (strcmp(argv[i], "-o") == 0)
			i++;
		else if (argv[i][0] != '-')
			store = i;
	}
	if (!store) {
		fprintf(stderr, "usage: %s [options] STORE MOUNTPOINT (STORE is ignored)\n",
			argv[0]);
		return 64;
	}
	for (int i = store; i + 1 < argc; i++)
		argv[i] = argv[i + 1];
	args = (struct fuse_args)FUSE_ARGS_INIT(argc - 1, argv);
	if (fuse_parse_cmdline(&args, &copts) != 0 || !copts.mountpoint)
		return 64;
	htab = calloc(hcap, sizeof(*htab));
	if (!htab || !node_new(0, 0, &root_cx) || !node_new(S_IFDIR | 0755, 0, &root_cx))
		return 1;
	if (fuse_opt_add_arg(&args, "-odefault_permissions"))
		return 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, copts.mountpoint) != 0)
		goto out_session;
	fuse_daemonize(copts.foreground);
	/* the request loop fractiofs runs (fs/session.h), with as many threads */
	ret = fs_session_loop(se, 10, false, false) != 0;
	fuse_session_unmount(se);
out_session:
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
out:
	free(copts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
