/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c - SIGKILL of the fractiofs daemon in the middle of a metadata-and-data workload:
 * every acknowledged operation must survive, and the tree must be consistent.
 *
 * Each round forks a child that runs random operations against the mount through a directory
 * descriptor opened while the mount was live (so nothing can land in the mount point's
 * underlying directory once the mount is gone): mkdir, create with content, overwrite, append,
 * truncate, rename of files and directories (replacing files and empty directories, and the
 * no-op rename onto another link of the same file), link, unlink, rmdir, symlink, and fsync of
 * files and directories now and then. File contents derive from the name and the operation's
 * sequence number. A file operation opens, writes and closes (close flushes the kernel's cached
 * pages to the daemon), and only then counts as acknowledged. The child appends a record of each
 * acknowledged operation to a log outside the mount; at its first failure it records the
 * operation as in flight and stops.
 *
 * The parent sleeps a random 50-500 ms, SIGKILLs the daemon (mnt_kill), waits for the child,
 * mounts again and checks (check_tree): the log replayed into the model of the previous round
 * must equal the real tree (names, types, file contents, symlink targets, link groups), where
 * the in-flight operation may or may not have happened; an in-flight write or create may also
 * have landed in part (every byte old or new, the size between). The walk itself requires that
 * every entry lstat()s, d_type agrees, file link counts equal the names with that inode,
 * directory link counts are 2 + subdirectories, sizes agree with the bytes read and no directory
 * is reachable twice. The next round starts from the checked tree. A clean unmount and mount and
 * one more check end the test.
 *
 * FR_FS_KILLS sets the number of rounds (default 20), FR_SEED the randomness. In plain-directory
 * mode (FRACTIO_TEST_DIR) nothing is killed: the child stops after a random number of operations
 * and usually simulates an interrupted last one (not done, done, or done in part).
 *
 * test_fs_crash_checker_detects_damage shows that the checker fails on damage it must see.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

#define PATH_LEN 128
#define PATH_USE 100 /* generated paths stay below this */
#define DATA_MAX (300u * 1024)
#define ENT_SOFT_MAX 300 /* past this many names the workload stops adding */
#define NAMES_PER_KIND 8
#define DEFAULT_ROUNDS 20
#define FUSE_MAGIC 0x65735546
#define WHY_LEN 1024
#define REC_MAGIC 0x46524352u

/* ---- the model of the tree ---- */

enum kind { K_NONE, K_FILE, K_DIR, K_SYMLINK };

struct obj { /* what one inode holds */
	enum kind kind;
	int names; /* entries naming it; 0 = dead */
	uint8_t *data;
	size_t size;
	char target[PATH_LEN];
};

struct ent {
	char path[PATH_LEN]; /* relative to the root, no leading slash */
	int obj;
};

struct model {
	struct ent *ent;
	size_t nent, ent_cap;
	struct obj *obj;
	size_t nobj, obj_cap;
};

enum op {
	OP_MKDIR = 1,
	OP_CREATE,  /* a, len, dseed */
	OP_WRITE,   /* a, off, len, dseed (an append has off = the size) */
	OP_TRUNC,   /* a, len */
	OP_RENAME,  /* a -> b */
	OP_LINK,    /* a -> new name b */
	OP_UNLINK,  /* a */
	OP_RMDIR,   /* a */
	OP_SYMLINK, /* a -> target b */
	OP_FSYNC,   /* a, a directory ("" for the root): no change */
};

static const char *const op_names[] = {"?",	 "mkdir",  "create", "write",	"truncate",
				       "rename", "link",   "unlink", "rmdir",	"symlink",
				       "fsyncdir"};

enum {
	REC_ACK = 1,	  /* the syscalls returned success */
	REC_FAIL = 2,	  /* in flight: a syscall failed (err) */
	REC_APPEND = 4,	  /* OP_WRITE done through O_APPEND */
	REC_FSYNC = 8,	  /* fsync before close */
	REC_SIMULATED = 16 /* plain mode: the failure was made up */
};

struct rec {
	uint32_t magic;
	uint8_t op;
	uint8_t flags;
	uint16_t pad;
	int32_t err;
	uint64_t seq;
	uint64_t off, len, dseed;
	int64_t t_ns; /* CLOCK_MONOTONIC when the operation ended */
	char a[PATH_LEN], b[PATH_LEN];
};

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->nobj; i++)
		free(m->obj[i].data);
	free(m->obj);
	free(m->ent);
	memset(m, 0, sizeof(*m));
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		abort(); /* test code: out of memory is not a result */
	return q;
}

static int model_new_obj(struct model *m, enum kind kind)
{
	if (m->nobj == m->obj_cap) {
		m->obj_cap = m->obj_cap ? 2 * m->obj_cap : 64;
		m->obj = xrealloc(m->obj, m->obj_cap * sizeof(*m->obj));
	}
	struct obj *o = &m->obj[m->nobj];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	return (int)m->nobj++;
}

static void model_add(struct model *m, const char *path, int obj)
{
	if (m->nent == m->ent_cap) {
		m->ent_cap = m->ent_cap ? 2 * m->ent_cap : 64;
		m->ent = xrealloc(m->ent, m->ent_cap * sizeof(*m->ent));
	}
	snprintf(m->ent[m->nent].path, PATH_LEN, "%s", path);
	m->ent[m->nent].obj = obj;
	m->nent++;
	m->obj[obj].names++;
}

static void model_clone(struct model *dst, const struct model *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->nent = dst->ent_cap = src->nent;
	dst->ent = xrealloc(NULL, src->nent * sizeof(*dst->ent));
	memcpy(dst->ent, src->ent, src->nent * sizeof(*dst->ent));
	dst->nobj = dst->obj_cap = src->nobj;
	dst->obj = xrealloc(NULL, src->nobj * sizeof(*dst->obj));
	memcpy(dst->obj, src->obj, src->nobj * sizeof(*dst->obj));
	for (size_t i = 0; i < src->nobj; i++) {
		if (src->obj[i].data) {
			dst->obj[i].data = xrealloc(NULL, src->obj[i].size);
			memcpy(dst->obj[i].data, src->obj[i].data, src->obj[i].size);
		}
	}
}

static int model_find(const struct model *m, const char *path)
{
	for (size_t i = 0; i < m->nent; i++)
		if (strcmp(m->ent[i].path, path) == 0)
			return (int)i;
	return -1;
}

static enum kind model_kind(const struct model *m, const char *path)
{
	int e = model_find(m, path);
	return e < 0 ? K_NONE : m->obj[m->ent[e].obj].kind;
}

/* Is path a child of dir ("" = the root) at any depth? */
static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 0)
		return true;
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static bool model_dir_empty(const struct model *m, const char *dir)
{
	for (size_t i = 0; i < m->nent; i++)
		if (path_under(m->ent[i].path, dir))
			return false;
	return true;
}

static void parent_of(const char *path, char *out)
{
	const char *sl = strrchr(path, '/');
	size_t n = sl ? (size_t)(sl - path) : 0;
	memcpy(out, path, n);
	out[n] = 0;
}

static void model_remove(struct model *m, int e)
{
	struct obj *o = &m->obj[m->ent[e].obj];
	if (--o->names == 0) {
		free(o->data);
		o->data = NULL;
		o->size = 0;
		o->kind = K_NONE;
	}
	m->ent[e] = m->ent[--m->nent];
}

static void gen_data(uint64_t dseed, uint8_t *p, size_t len)
{
	uint64_t x = dseed | 1;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = tu_rand(&x) | 1;
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

static void obj_resize(struct obj *o, size_t size)
{
	o->data = xrealloc(o->data, size);
	if (size > o->size)
		memset(o->data + o->size, 0, size - o->size);
	o->size = size;
}

/* Applies one operation. -1 if it cannot apply (its preconditions do not hold). */
static int model_apply(struct model *m, const struct rec *r)
{
	int e = model_find(m, r->a), eb = r->op == OP_RENAME || r->op == OP_LINK
						 ? model_find(m, r->b)
						 : -1;
	char par[PATH_LEN];
	parent_of(r->a, par);
	bool new_ok = e < 0 && (par[0] == 0 || model_kind(m, par) == K_DIR);
	switch (r->op) {
	case OP_MKDIR:
		if (!new_ok)
			return -1;
		model_add(m, r->a, model_new_obj(m, K_DIR));
		return 0;
	case OP_CREATE: {
		if (!new_ok || r->len > DATA_MAX)
			return -1;
		int o = model_new_obj(m, K_FILE);
		obj_resize(&m->obj[o], (size_t)r->len);
		gen_data(r->dseed, m->obj[o].data, (size_t)r->len);
		model_add(m, r->a, o);
		return 0;
	}
	case OP_WRITE: {
		if (e < 0 || m->obj[m->ent[e].obj].kind != K_FILE || r->off + r->len > DATA_MAX)
			return -1;
		struct obj *o = &m->obj[m->ent[e].obj];
		if (r->off + r->len > o->size)
			obj_resize(o, (size_t)(r->off + r->len));
		gen_data(r->dseed, o->data + r->off, (size_t)r->len);
		return 0;
	}
	case OP_TRUNC:
		if (e < 0 || m->obj[m->ent[e].obj].kind != K_FILE || r->len > DATA_MAX)
			return -1;
		obj_resize(&m->obj[m->ent[e].obj], (size_t)r->len);
		return 0;
	case OP_RENAME: {
		if (e < 0 || strcmp(r->a, r->b) == 0)
			return -1;
		char bpar[PATH_LEN];
		parent_of(r->b, bpar);
		if (bpar[0] && model_kind(m, bpar) != K_DIR)
			return -1;
		int so = m->ent[e].obj;
		bool dir = m->obj[so].kind == K_DIR;
		if (eb >= 0) {
			int to = m->ent[eb].obj;
			if (to == so)
				return 0; /* two links of one file: rename does nothing */
			if ((m->obj[to].kind == K_DIR) != dir)
				return -1;
			if (dir && !model_dir_empty(m, r->b))
				return -1;
		}
		if (dir && (path_under(r->b, r->a)))
			return -1;
		if (eb >= 0)
			model_remove(m, eb);
		size_t alen = strlen(r->a);
		for (size_t i = 0; i < m->nent; i++) {
			struct ent *x = &m->ent[i];
			if (strcmp(x->path, r->a) == 0) {
				snprintf(x->path, PATH_LEN, "%s", r->b);
			} else if (dir && path_under(x->path, r->a)) {
				char np[2 * PATH_LEN];
				snprintf(np, sizeof(np), "%s%s", r->b, x->path + alen);
				if (strlen(np) >= PATH_LEN)
					return -1;
				memcpy(x->path, np, strlen(np) + 1);
			}
		}
		return 0;
	}
	case OP_LINK: {
		char bpar[PATH_LEN];
		parent_of(r->b, bpar);
		if (e < 0 || eb >= 0 || m->obj[m->ent[e].obj].kind != K_FILE ||
		    (bpar[0] && model_kind(m, bpar) != K_DIR))
			return -1;
		model_add(m, r->b, m->ent[e].obj);
		return 0;
	}
	case OP_UNLINK:
		if (e < 0 || m->obj[m->ent[e].obj].kind == K_DIR)
			return -1;
		model_remove(m, e);
		return 0;
	case OP_RMDIR:
		if (e < 0 || m->obj[m->ent[e].obj].kind != K_DIR || !model_dir_empty(m, r->a))
			return -1;
		model_remove(m, e);
		return 0;
	case OP_SYMLINK: {
		if (!new_ok)
			return -1;
		int o = model_new_obj(m, K_SYMLINK);
		snprintf(m->obj[o].target, PATH_LEN, "%s", r->b);
		model_add(m, r->a, o);
		return 0;
	}
	case OP_FSYNC:
		return r->a[0] == 0 || model_kind(m, r->a) == K_DIR ? 0 : -1;
	}
	return -1;
}

static void rec_str(const struct rec *r, char *out, size_t n)
{
	snprintf(out, n, "#%" PRIu64 " %s %s%s%s off %" PRIu64 " len %" PRIu64 "%s%s", r->seq,
		 r->op < sizeof(op_names) / sizeof(op_names[0]) ? op_names[r->op] : "?", r->a,
		 r->b[0] ? " -> " : "", r->b, r->off, r->len, r->flags & REC_APPEND ? " append" : "",
		 r->flags & REC_FSYNC ? " fsync" : "");
}

/* ---- a snapshot of the real tree, and the checks of its walk ---- */

struct snap_ent {
	char path[PATH_LEN];
	enum kind kind;
	ino_t ino;
	nlink_t nlink;
	uint64_t size;
	int file; /* index into snap.files (K_FILE) */
	char target[PATH_LEN];
};

struct snap_file {
	ino_t ino;
	uint8_t *data;
	size_t size;
	int names;
};

struct snap {
	struct snap_ent *ent;
	size_t nent, ent_cap;
	struct snap_file *file;
	size_t nfile, file_cap;
	ino_t *dirs; /* directory inodes seen */
	size_t ndirs, dirs_cap;
};

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->nfile; i++)
		free(s->file[i].data);
	free(s->file);
	free(s->ent);
	free(s->dirs);
	memset(s, 0, sizeof(*s));
}

static const char *const kind_names[] = {"nothing", "file", "directory", "symlink"};

/* Says what is wrong in why (WHY_LEN bytes). */
__attribute__((format(printf, 2, 3))) static void say(char *why, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, WHY_LEN, fmt, ap);
	va_end(ap);
}

static int read_file_at(int dirfd, const char *name, uint8_t **out, size_t *len, char *why,
			const char *path)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW);
	if (fd < 0) {
		say(why, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 64 * 1024, n = 0;
	uint8_t *p = xrealloc(NULL, cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			p = xrealloc(p, cap);
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say(why, "%s: read at %zu: %s", path, n, strerror(errno));
			free(p);
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = p;
	*len = n;
	return 0;
}

static enum kind kind_of(mode_t mode)
{
	return S_ISREG(mode) ? K_FILE : S_ISDIR(mode) ? K_DIR : S_ISLNK(mode) ? K_SYMLINK : K_NONE;
}

/* Walks directory dirfd (path rel, "" for the root) into s. -1 with why on a broken walk. */
static int snap_walk(struct snap *s, int dirfd, const char *rel, nlink_t dir_nlink, char *why)
{
	int rc = -1, subdirs = 0;
	/* a descriptor of its own: a dup would share (and move) dirfd's offset */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		say(why, "/%s: opendir: %s", rel, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno) {
				say(why, "/%s: readdir: %s", rel, strerror(errno));
				goto out;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char path[PATH_LEN];
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "",
				     de->d_name) >= sizeof(path)) {
			say(why, "/%s/%s: path too long", rel, de->d_name);
			goto out;
		}
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			say(why, "/%s: listed but lstat fails: %s", path, strerror(errno));
			goto out;
		}
		enum kind k = kind_of(st.st_mode);
		if (k == K_NONE) {
			say(why, "/%s: unexpected file type 0%o", path, (unsigned)(st.st_mode & S_IFMT));
			goto out;
		}
		if (de->d_type != DT_UNKNOWN &&
		    de->d_type != (k == K_FILE ? DT_REG : k == K_DIR ? DT_DIR : DT_LNK)) {
			say(why, "/%s: d_type %u disagrees with st_mode 0%o", path, de->d_type,
			    (unsigned)st.st_mode);
			goto out;
		}
		if (s->nent == s->ent_cap) {
			s->ent_cap = s->ent_cap ? 2 * s->ent_cap : 64;
			s->ent = xrealloc(s->ent, s->ent_cap * sizeof(*s->ent));
		}
		struct snap_ent *x = &s->ent[s->nent++];
		memset(x, 0, sizeof(*x));
		memcpy(x->path, path, strlen(path) + 1);
		x->kind = k;
		x->ino = st.st_ino;
		x->nlink = st.st_nlink;
		x->size = (uint64_t)st.st_size;
		x->file = -1;
		if (k == K_SYMLINK) {
			ssize_t n = readlinkat(dirfd, de->d_name, x->target, PATH_LEN - 1);
			if (n < 0) {
				say(why, "/%s: readlink: %s", path, strerror(errno));
				goto out;
			}
			x->target[n] = 0;
			if ((uint64_t)n != x->size) {
				say(why, "/%s: symlink st_size %" PRIu64 " but target has %zd bytes", path,
				    x->size, n);
				goto out;
			}
		} else if (k == K_FILE) {
			size_t i;
			for (i = 0; i < s->nfile; i++)
				if (s->file[i].ino == st.st_ino)
					break;
			if (i == s->nfile) {
				if (s->nfile == s->file_cap) {
					s->file_cap = s->file_cap ? 2 * s->file_cap : 64;
					s->file = xrealloc(s->file, s->file_cap * sizeof(*s->file));
				}
				struct snap_file *f = &s->file[s->nfile];
				memset(f, 0, sizeof(*f));
				f->ino = st.st_ino;
				if (read_file_at(dirfd, de->d_name, &f->data, &f->size, why, path))
					goto out;
				s->nfile++;
				if (f->size != x->size) {
					say(why, "/%s: st_size %" PRIu64 " but %zu bytes read", path,
					    x->size, f->size);
					goto out;
				}
			} else if (s->file[i].size != x->size) {
				say(why, "/%s: st_size %" PRIu64 ", another link of inode %" PRIu64
				    " read %zu bytes",
				    path, x->size, (uint64_t)st.st_ino, s->file[i].size);
				goto out;
			}
			s->file[i].names++;
			x->file = (int)i;
		} else {
			subdirs++;
			for (size_t i = 0; i < s->ndirs; i++) {
				if (s->dirs[i] == st.st_ino) {
					say(why, "/%s: directory inode %" PRIu64 " reachable twice", path,
					    (uint64_t)st.st_ino);
					goto out;
				}
			}
			if (s->ndirs == s->dirs_cap) {
				s->dirs_cap = s->dirs_cap ? 2 * s->dirs_cap : 64;
				s->dirs = xrealloc(s->dirs, s->dirs_cap * sizeof(*s->dirs));
			}
			s->dirs[s->ndirs++] = st.st_ino;
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub < 0) {
				say(why, "/%s: open directory: %s", path, strerror(errno));
				goto out;
			}
			int r = snap_walk(s, sub, path, st.st_nlink, why);
			close(sub);
			if (r)
				goto out;
		}
	}
	if (dir_nlink != (nlink_t)(2 + subdirs)) {
		say(why, "/%s: directory nlink %" PRIu64 ", but 2 + %d subdirectories", rel,
		    (uint64_t)dir_nlink, subdirs);
		goto out;
	}
	rc = 0;
out:
	closedir(d);
	return rc;
}

/* Takes a snapshot of the tree under rootfd, checking the walk's own invariants. */
static int snap_take(struct snap *s, int rootfd, char *why)
{
	struct stat st;
	memset(s, 0, sizeof(*s));
	if (fstat(rootfd, &st) != 0) {
		say(why, "root: fstat: %s", strerror(errno));
		return -1;
	}
	s->dirs = xrealloc(NULL, sizeof(*s->dirs));
	s->dirs[0] = st.st_ino;
	s->ndirs = s->dirs_cap = 1;
	if (snap_walk(s, rootfd, "", st.st_nlink, why))
		return -1;
	for (size_t i = 0; i < s->nent; i++) {
		const struct snap_ent *x = &s->ent[i];
		if (x->kind == K_FILE && x->nlink != (nlink_t)s->file[x->file].names) {
			say(why, "/%s: nlink %" PRIu64 " but %d names of inode %" PRIu64, x->path,
			    (uint64_t)x->nlink, s->file[x->file].names, (uint64_t)x->ino);
			return -1;
		}
		if (x->kind == K_SYMLINK && x->nlink != 1) {
			say(why, "/%s: symlink nlink %" PRIu64, x->path, (uint64_t)x->nlink);
			return -1;
		}
	}
	return 0;
}

/* ---- comparing a snapshot with a model ---- */

/* A file whose in-flight write or create may have landed in part: each byte is its old or its
 * new value, and the size lies between. */
struct lenient {
	int obj; /* in the model with the operation applied; -1 = none */
	const uint8_t *old;
	size_t old_size;
};

static int cmp_ent_path(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path, ((const struct ent *)b)->path);
}

static int cmp_snap_path(const void *a, const void *b)
{
	return strcmp(((const struct snap_ent *)a)->path, ((const struct snap_ent *)b)->path);
}

static int cmp_content(const struct obj *o, const struct snap_file *f, const struct lenient *l,
		       bool is_lenient, const char *path, char *why)
{
	if (!is_lenient) {
		if (f->size != o->size) {
			say(why, "/%s: size %zu, model %zu", path, f->size, o->size);
			return -1;
		}
		for (size_t i = 0; i < f->size; i++) {
			if (f->data[i] != o->data[i]) {
				say(why, "/%s: byte %zu is 0x%02x, model 0x%02x (size %zu)", path, i,
				    f->data[i], o->data[i], f->size);
				return -1;
			}
		}
		return 0;
	}
	size_t lo = l->old_size < o->size ? l->old_size : o->size;
	size_t hi = l->old_size < o->size ? o->size : l->old_size;
	if (f->size < lo || f->size > hi) {
		say(why, "/%s (in flight): size %zu, not between %zu and %zu", path, f->size, lo, hi);
		return -1;
	}
	for (size_t i = 0; i < f->size; i++) {
		uint8_t old = i < l->old_size ? l->old[i] : 0, nw = i < o->size ? o->data[i] : 0;
		if (f->data[i] != old && f->data[i] != nw) {
			say(why, "/%s (in flight): byte %zu is 0x%02x, neither old 0x%02x nor new 0x%02x",
			    path, i, f->data[i], old, nw);
			return -1;
		}
	}
	return 0;
}

/* Does the snapshot equal the model? l (may be NULL) names a file that may be partly written;
 * if absent_ok, that file may also be missing altogether. */
static int snap_match(const struct snap *s, const struct model *m, const struct lenient *l,
		      bool absent_ok, char *why)
{
	int rc = -1;
	struct ent *me = xrealloc(NULL, m->nent * sizeof(*me));
	struct snap_ent *se = xrealloc(NULL, s->nent * sizeof(*se));
	ino_t *ino_of = xrealloc(NULL, m->nobj * sizeof(*ino_of));
	memcpy(me, m->ent, m->nent * sizeof(*me));
	memcpy(se, s->ent, s->nent * sizeof(*se));
	qsort(me, m->nent, sizeof(*me), cmp_ent_path);
	qsort(se, s->nent, sizeof(*se), cmp_snap_path);
	memset(ino_of, 0, m->nobj * sizeof(*ino_of));
	size_t i = 0, j = 0;
	while (i < m->nent || j < s->nent) {
		int c = i == m->nent ? 1 : j == s->nent ? -1 : strcmp(me[i].path, se[j].path);
		if (c < 0) {
			if (absent_ok && l && me[i].obj == l->obj) {
				i++;
				continue;
			}
			say(why, "/%s: missing (the model has a %s)", me[i].path,
			    kind_names[m->obj[me[i].obj].kind]);
			goto out;
		}
		if (c > 0) {
			say(why, "/%s: present but not in the model", se[j].path);
			goto out;
		}
		const struct obj *o = &m->obj[me[i].obj];
		const struct snap_ent *x = &se[j];
		if (o->kind != x->kind) {
			say(why, "/%s: a %s, the model has a %s", x->path, kind_names[x->kind],
			    kind_names[o->kind]);
			goto out;
		}
		if (o->kind == K_SYMLINK && strcmp(o->target, x->target) != 0) {
			say(why, "/%s: symlink to '%s', model '%s'", x->path, x->target, o->target);
			goto out;
		}
		if (o->kind == K_FILE) {
			/* link groups: one inode per model file and one model file per inode */
			if (ino_of[me[i].obj] == 0) {
				for (size_t k = 0; k < m->nobj; k++) {
					if (ino_of[k] == x->ino) {
						say(why, "/%s: inode %" PRIu64 " also holds another file "
						    "of the model",
						    x->path, (uint64_t)x->ino);
						goto out;
					}
				}
				ino_of[me[i].obj] = x->ino;
				if (cmp_content(o, &s->file[x->file], l,
						l && me[i].obj == l->obj, x->path, why))
					goto out;
			} else if (ino_of[me[i].obj] != x->ino) {
				say(why, "/%s: inode %" PRIu64 ", but the model links it to inode %" PRIu64,
				    x->path, (uint64_t)x->ino, (uint64_t)ino_of[me[i].obj]);
				goto out;
			}
			if (x->nlink != (nlink_t)o->names) {
				say(why, "/%s: nlink %" PRIu64 ", model %d names", x->path,
				    (uint64_t)x->nlink, o->names);
				goto out;
			}
		}
		i++;
		j++;
	}
	rc = 0;
out:
	free(me);
	free(se);
	free(ino_of);
	return rc;
}

/*
 * The checker: the tree under rootfd must be consistent (snap_take) and equal the model before
 * with the acknowledged operations already applied, or, when inflight is not NULL, that model
 * with the in-flight operation applied (a write or create in flight may have landed in part).
 * On success fills *real (if not NULL) with the snapshot, which the caller frees. On failure
 * why says what differs.
 */
static int check_tree(int rootfd, const struct model *before, const struct rec *inflight,
		      struct snap *real, char *why)
{
	struct snap s;
	int rc = snap_take(&s, rootfd, why);
	if (rc)
		goto out;
	if (!inflight) {
		rc = snap_match(&s, before, NULL, false, why);
		goto out;
	}
	struct model after;
	model_clone(&after, before);
	if (model_apply(&after, inflight) != 0) {
		/* the operation could not have succeeded: only the old state is right */
		rc = snap_match(&s, before, NULL, false, why);
	} else {
		struct lenient l = {.obj = -1};
		bool absent_ok = false;
		if (inflight->op == OP_CREATE || inflight->op == OP_WRITE) {
			int e = model_find(&after, inflight->a);
			l.obj = after.ent[e].obj;
			absent_ok = inflight->op == OP_CREATE;
			if (inflight->op == OP_WRITE) {
				int eb = model_find(before, inflight->a);
				l.old = before->obj[before->ent[eb].obj].data;
				l.old_size = before->obj[before->ent[eb].obj].size;
			}
		}
		char why2[WHY_LEN];
		rc = snap_match(&s, &after, &l, absent_ok, why);
		if (rc && snap_match(&s, before, NULL, false, why2) == 0)
			rc = 0;
		if (rc) {
			size_t n = strlen(why);
			snprintf(why + n, WHY_LEN - n, " [without the in-flight op: %s]", why2);
		}
	}
	model_free(&after);
out:
	if (rc == 0 && real)
		*real = s;
	else
		snap_free(&s);
	return rc;
}

/* The model of a checked tree: one object per inode. */
static void model_from_snap(struct model *m, const struct snap *s)
{
	int *obj_of_file = xrealloc(NULL, (s->nfile + 1) * sizeof(int));
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < s->nfile; i++) {
		obj_of_file[i] = model_new_obj(m, K_FILE);
		struct obj *o = &m->obj[obj_of_file[i]];
		o->data = xrealloc(NULL, s->file[i].size);
		memcpy(o->data, s->file[i].data, s->file[i].size);
		o->size = s->file[i].size;
	}
	for (size_t i = 0; i < s->nent; i++) {
		const struct snap_ent *x = &s->ent[i];
		int o = x->kind == K_FILE ? obj_of_file[x->file] : model_new_obj(m, x->kind);
		if (x->kind == K_SYMLINK)
			memcpy(m->obj[o].target, x->target, sizeof(x->target));
		model_add(m, x->path, o);
	}
	free(obj_of_file);
}

/* ---- the workload (runs in the child) ---- */

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t path_hash(const char *p)
{
	uint64_t h = 1469598103934665603ull;
	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

/* A random entry of the model whose object has the kind (K_NONE: file or symlink), -1 if none. */
static int pick_ent(const struct model *m, uint64_t *rng, enum kind kind, bool empty_dir)
{
	int n = 0, pick = -1;
	for (size_t i = 0; i < m->nent; i++) {
		enum kind k = m->obj[m->ent[i].obj].kind;
		bool ok = kind == K_NONE ? k == K_FILE || k == K_SYMLINK : k == kind;
		if (ok && empty_dir && !model_dir_empty(m, m->ent[i].path))
			ok = false;
		if (ok && tu_rand_below(rng, (uint64_t)++n) == 0)
			pick = (int)i;
	}
	return pick;
}

/* A path for a new or replaced name: a random directory (or the root) and a name of the kind's
 * letter. */
static void pick_name(const struct model *m, uint64_t *rng, char letter, char *out)
{
	int d = pick_ent(m, rng, K_DIR, false);
	if (d >= 0 && tu_rand_below(rng, 4) == 0)
		d = -1;
	unsigned k = (unsigned)tu_rand_below(rng, NAMES_PER_KIND);
	if ((size_t)snprintf(out, PATH_LEN, "%s%s%c%u", d >= 0 ? m->ent[d].path : "",
			     d >= 0 ? "/" : "", letter, k) >= PATH_LEN)
		out[0] = 0; /* too long: callers refuse an empty name */
}

static uint64_t rand_size(uint64_t *rng, uint64_t max)
{
	uint64_t r = tu_rand_below(rng, 100), n;
	if (r < 10)
		n = 0;
	else if (r < 55)
		n = tu_rand_below(rng, 4097);
	else if (r < 88)
		n = tu_rand_below(rng, 64 * 1024);
	else
		n = tu_rand_below(rng, DATA_MAX + 1);
	return n > max ? max : n;
}

/* Fills r with a random operation that is valid on m. */
static void gen_op(const struct model *m, uint64_t *rng, uint64_t seq, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->magic = REC_MAGIC;
	r->seq = seq;
	bool full = m->nent >= ENT_SOFT_MAX;
	for (;;) {
		unsigned w = (unsigned)tu_rand_below(rng, 100);
		int e;
		/* nothing of a refused attempt may leak into the next */
		memset(r->a, 0, sizeof(r->a));
		memset(r->b, 0, sizeof(r->b));
		r->off = r->len = 0;
		/* fsync before close, for the operations that open a file */
		r->flags = tu_rand_below(rng, 10) == 0 ? REC_FSYNC : 0;
		if (w < 10) {
			if (full)
				continue;
			r->op = OP_MKDIR;
			pick_name(m, rng, 'd', r->a);
			if (model_find(m, r->a) >= 0 || strlen(r->a) > PATH_USE || !r->a[0])
				continue;
		} else if (w < 28) {
			if (full)
				continue;
			r->op = OP_CREATE;
			pick_name(m, rng, 'f', r->a);
			if (model_find(m, r->a) >= 0 || strlen(r->a) > PATH_USE || !r->a[0])
				continue;
			r->len = rand_size(rng, DATA_MAX);
		} else if (w < 46) {
			if ((e = pick_ent(m, rng, K_FILE, false)) < 0)
				continue;
			const struct obj *o = &m->obj[m->ent[e].obj];
			r->op = OP_WRITE;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
			if (w < 38) {
				r->off = tu_rand_below(rng, o->size + 1);
			} else {
				r->off = o->size;
				r->flags |= REC_APPEND;
			}
			r->len = rand_size(rng, DATA_MAX - r->off);
		} else if (w < 52) {
			if ((e = pick_ent(m, rng, K_FILE, false)) < 0)
				continue;
			r->op = OP_TRUNC;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
			size_t size = m->obj[m->ent[e].obj].size;
			r->len = tu_rand_below(rng, 2) ? tu_rand_below(rng, size + 1)
						       : rand_size(rng, DATA_MAX);
		} else if (w < 64) {
			/* rename a file or symlink, maybe over another one */
			if ((e = pick_ent(m, rng, K_NONE, false)) < 0)
				continue;
			r->op = OP_RENAME;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
			const char *base = strrchr(r->a, '/');
			pick_name(m, rng, base ? base[1] : r->a[0], r->b);
			if (strcmp(r->a, r->b) == 0 || strlen(r->b) > PATH_USE || !r->b[0])
				continue;
		} else if (w < 69) {
			/* rename a directory, maybe over an empty one */
			if ((e = pick_ent(m, rng, K_DIR, false)) < 0)
				continue;
			r->op = OP_RENAME;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
			pick_name(m, rng, 'd', r->b);
			if (strcmp(r->a, r->b) == 0 || !r->b[0] || path_under(r->b, r->a))
				continue;
			int eb = model_find(m, r->b);
			if (eb >= 0 && !model_dir_empty(m, r->b))
				continue;
			size_t longest = strlen(r->b);
			for (size_t i = 0; i < m->nent; i++)
				if (path_under(m->ent[i].path, r->a) &&
				    strlen(m->ent[i].path) - strlen(r->a) + strlen(r->b) > longest)
					longest = strlen(m->ent[i].path) - strlen(r->a) + strlen(r->b);
			if (longest > PATH_USE)
				continue;
		} else if (w < 75) {
			if (full || (e = pick_ent(m, rng, K_FILE, false)) < 0)
				continue;
			r->op = OP_LINK;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
			pick_name(m, rng, 'f', r->b);
			if (model_find(m, r->b) >= 0 || strlen(r->b) > PATH_USE || !r->b[0])
				continue;
		} else if (w < 86) {
			if ((e = pick_ent(m, rng, K_NONE, false)) < 0)
				continue;
			r->op = OP_UNLINK;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
		} else if (w < 92) {
			if ((e = pick_ent(m, rng, K_DIR, true)) < 0)
				continue;
			r->op = OP_RMDIR;
			memcpy(r->a, m->ent[e].path, PATH_LEN);
		} else if (w < 97) {
			if (full)
				continue;
			r->op = OP_SYMLINK;
			pick_name(m, rng, 's', r->a);
			if (model_find(m, r->a) >= 0 || strlen(r->a) > PATH_USE || !r->a[0])
				continue;
			snprintf(r->b, PATH_LEN, "%s/t%" PRIu64,
				 tu_rand_below(rng, 2) ? ".." : "/nonexistent", seq);
		} else {
			r->op = OP_FSYNC;
			e = pick_ent(m, rng, K_DIR, false);
			if (e >= 0 && tu_rand_below(rng, 3))
				memcpy(r->a, m->ent[e].path, PATH_LEN);
			r->flags = 0;
		}
		break;
	}
	if (r->op != OP_CREATE && r->op != OP_WRITE && r->op != OP_TRUNC)
		r->flags &= (uint8_t)~REC_FSYNC;
	if (r->op == OP_CREATE || r->op == OP_WRITE)
		r->dseed = path_hash(r->a) ^ (seq * 0x9E3779B97F4A7C15ull);
}

static int write_all(int fd, const uint8_t *p, size_t len, bool positional, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = positional ? pwrite(fd, p + done, len - done, (off_t)(off + done))
				       : write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* Runs r against the tree; part (0 < part < len) writes only that many bytes, to simulate an
 * interrupted write. 0, or -1 with errno. */
static int do_op(int rootfd, const struct rec *r, uint8_t *buf, size_t part)
{
	int fd = -1, rc = -1, saved = 0;
	size_t len = part ? part : (size_t)r->len;
	switch (r->op) {
	case OP_MKDIR:
		return mkdirat(rootfd, r->a, 0755);
	case OP_CREATE:
	case OP_WRITE:
		gen_data(r->dseed, buf, (size_t)r->len);
		if (r->op == OP_CREATE)
			fd = openat(rootfd, r->a, O_WRONLY | O_CREAT | O_EXCL, 0644);
		else
			fd = openat(rootfd, r->a,
				    O_WRONLY | (r->flags & REC_APPEND ? O_APPEND : 0));
		if (fd < 0)
			return -1;
		rc = write_all(fd, buf, len, !(r->flags & REC_APPEND), r->off);
		break;
	case OP_TRUNC:
		fd = openat(rootfd, r->a, O_WRONLY);
		if (fd < 0)
			return -1;
		rc = ftruncate(fd, (off_t)r->len);
		break;
	case OP_RENAME:
		return renameat(rootfd, r->a, rootfd, r->b);
	case OP_LINK:
		return linkat(rootfd, r->a, rootfd, r->b, 0);
	case OP_UNLINK:
		return unlinkat(rootfd, r->a, 0);
	case OP_RMDIR:
		return unlinkat(rootfd, r->a, AT_REMOVEDIR);
	case OP_SYMLINK:
		return symlinkat(r->b, rootfd, r->a);
	case OP_FSYNC:
		fd = openat(rootfd, r->a[0] ? r->a : ".", O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return -1;
		rc = fsync(fd);
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (rc == 0 && (r->flags & REC_FSYNC))
		rc = fsync(fd);
	saved = errno;
	/* close flushes the pages the kernel cached to the daemon: part of the operation */
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	errno = saved;
	return rc;
}

static int log_rec(int logfd, struct rec *r)
{
	r->t_ns = now_ns();
	return write(logfd, r, sizeof(*r)) == (ssize_t)sizeof(*r) ? 0 : -1;
}

enum { CHILD_BUDGET = 0, CHILD_FAILED = 1, CHILD_BROKEN = 2 };

/*
 * The child: runs up to max_ops operations on m (its own copy), logging each acknowledged one,
 * and stops at the first failure after logging it as in flight. When simulate is set (plain
 * mode), the last operation is usually logged as in flight after being done not at all, fully
 * or in part. Returns a CHILD_* code.
 */
static int workload(int rootfd, struct model *m, uint64_t seed, uint64_t first_seq,
		    uint64_t max_ops, bool simulate, int logfd)
{
	uint64_t rng = seed;
	uint8_t *buf = xrealloc(NULL, DATA_MAX);
	int ret = CHILD_BROKEN;
	for (uint64_t i = 0; i < max_ops; i++) {
		struct rec r;
		gen_op(m, &rng, first_seq + i, &r);
		if (simulate && i + 1 == max_ops && tu_rand_below(&rng, 3)) {
			unsigned how = (unsigned)tu_rand_below(&rng, 3);
			size_t part = 0;
			if (how == 2 && (r.op == OP_CREATE || r.op == OP_WRITE) && r.len > 1)
				part = 1 + (size_t)tu_rand_below(&rng, r.len - 1);
			if (how != 0 && do_op(rootfd, &r, buf, part) != 0)
				goto out;
			r.flags |= REC_FAIL | REC_SIMULATED;
			ret = log_rec(logfd, &r) ? CHILD_BROKEN : CHILD_FAILED;
			goto out;
		}
		if (do_op(rootfd, &r, buf, 0) != 0) {
			r.err = errno;
			r.flags |= REC_FAIL;
			ret = log_rec(logfd, &r) ? CHILD_BROKEN : CHILD_FAILED;
			goto out;
		}
		r.flags |= REC_ACK;
		if (log_rec(logfd, &r) || model_apply(m, &r) != 0)
			goto out;
	}
	ret = CHILD_BUDGET;
out:
	free(buf);
	return ret;
}

/* ---- the test ---- */

struct crash {
	struct mnt m;
	bool set_up;
	int rootfd;
	char *logdir;
	char log[PATH_MAX];
	struct model model;
	struct rec *acks; /* the round's acknowledged operations */
	uint64_t seed, rng;
};

static int open_root(struct crash *c)
{
	c->rootfd = open(c->m.dir, O_RDONLY | O_DIRECTORY);
	if (c->rootfd < 0)
		return -1;
	struct statfs sf;
	if (!mnt_is_plain(&c->m) && (fstatfs(c->rootfd, &sf) != 0 || sf.f_type != FUSE_MAGIC)) {
		fprintf(stderr, "%s is not a FUSE mount\n", c->m.dir);
		return -1;
	}
	return 0;
}

/* Reads the round's log: acknowledged records into *acks, the in-flight one (if any) into
 * *inflight. */
static size_t read_log(const char *path, struct rec **acks, struct rec *inflight,
		       bool *has_inflight)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = 0, cap = 0;
	struct rec r;
	*acks = NULL;
	*has_inflight = false;
	while (fread(&r, sizeof(r), 1, f) == 1) {
		assert_int_equal(r.magic, REC_MAGIC);
		assert_false(*has_inflight); /* nothing follows the in-flight operation */
		if (r.flags & REC_FAIL) {
			*inflight = r;
			*has_inflight = true;
			continue;
		}
		assert_true(r.flags & REC_ACK);
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			*acks = xrealloc(*acks, cap * sizeof(**acks));
		}
		(*acks)[n++] = r;
	}
	fclose(f);
	return n;
}

/* Waits for the child up to 60 s; returns its CHILD_* code. */
static int wait_child(pid_t pid)
{
	int st;
	for (int i = 0; i < 6000; i++) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("the workload child did not end within 60 s of the kill");
	return -1;
}

static uint64_t env_count(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* Checks the tree against c->model and the in-flight op; then the model becomes the tree. */
static void check_and_adopt(struct crash *c, const struct rec *inflight, const char *when)
{
	char why[WHY_LEN];
	struct snap real;
	if (check_tree(c->rootfd, &c->model, inflight, &real, why) != 0) {
		char op[2 * PATH_LEN + 64] = "none";
		if (inflight)
			rec_str(inflight, op, sizeof(op));
		fail_msg("%s: %s (in flight: %s; seed %" PRIu64 ")", when, why, op, c->seed);
	}
	model_free(&c->model);
	model_from_snap(&c->model, &real);
	snap_free(&real);
}

static void test_fs_crash_kill_daemon(void **state)
{
	struct crash *c = *state;
	bool plain = mnt_is_plain(&c->m);
	uint64_t rounds = env_count("FR_FS_KILLS", DEFAULT_ROUNDS), seq = 1, acked = 0;
	unsigned inflight_seen = 0, budget_ends = 0;
	int64_t t0 = now_ns();
	for (uint64_t round = 0; round < rounds; round++) {
		int logfd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		assert_true(logfd >= 0);
		uint64_t max_ops = plain ? 20 + tu_rand_below(&c->rng, 600) : UINT64_MAX;
		uint64_t child_seed = tu_rand(&c->rng) | 1;
		int64_t t_kill = INT64_MAX;
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(workload(c->rootfd, &c->model, child_seed, seq, max_ops, plain,
				       logfd));
		close(logfd);
		/* the child's copy is enough: hold no descriptor on the mount that is killed */
		close(c->rootfd);
		c->rootfd = -1;
		if (!plain) {
			usleep((useconds_t)(50000 + tu_rand_below(&c->rng, 450001)));
			t_kill = now_ns();
			assert_int_equal(mnt_kill(&c->m), 0);
		}
		int code = wait_child(pid);

		struct rec inflight;
		bool has_inflight;
		size_t n = read_log(c->log, &c->acks, &inflight, &has_inflight);
		const struct rec *acks = c->acks;
		char op[2 * PATH_LEN + 64];
		for (size_t i = 0; i < n; i++) {
			if (model_apply(&c->model, &acks[i]) != 0) {
				rec_str(&acks[i], op, sizeof(op));
				fail_msg("round %" PRIu64 ": acknowledged %s does not apply to the "
					 "model (seed %" PRIu64 ")",
					 round, op, c->seed);
			}
		}
		acked += n;
		seq += n + 1;
		if (code == CHILD_FAILED) {
			assert_true(has_inflight);
			inflight_seen++;
			rec_str(&inflight, op, sizeof(op));
			if (plain && !(inflight.flags & REC_SIMULATED))
				fail_msg("round %" PRIu64 ": %s failed: %s (seed %" PRIu64 ")", round,
					 op, strerror(inflight.err), c->seed);
			if (!plain && (inflight.t_ns < t_kill ||
				       (inflight.err != ENOTCONN && inflight.err != ECONNABORTED &&
					inflight.err != EIO)))
				fail_msg("round %" PRIu64 ": %s failed with %s %s the kill (seed %"
					 PRIu64 ")",
					 round, op, strerror(inflight.err),
					 inflight.t_ns < t_kill ? "before" : "after", c->seed);
		} else if (code == CHILD_BUDGET) {
			assert_false(has_inflight);
			budget_ends++;
		} else {
			fail_msg("round %" PRIu64 ": the workload child ended with code %d (seed %"
				 PRIu64 ")",
				 round, code, c->seed);
		}
		free(c->acks);
		c->acks = NULL;

		assert_int_equal(mnt_start(&c->m), 0);
		assert_int_equal(open_root(c), 0);
		char when[64];
		snprintf(when, sizeof(when), "round %" PRIu64 " (%zu acknowledged)", round, n);
		check_and_adopt(c, has_inflight ? &inflight : NULL, when);
		if (has_inflight)
			rec_str(&inflight, op, sizeof(op));
		print_message("# round %" PRIu64 ": %zu acknowledged, in flight: %s%s%s, tree of %zu "
			      "names checked\n",
			      round, n, has_inflight ? op : "none", has_inflight ? ": " : "",
			      !has_inflight ? ""
			      : inflight.flags & REC_SIMULATED ? "simulated"
							       : strerror(inflight.err),
			      c->model.nent);
	}
	/* a clean unmount keeps everything too */
	close(c->rootfd);
	c->rootfd = -1;
	assert_int_equal(mnt_stop(&c->m), 0);
	assert_int_equal(mnt_start(&c->m), 0);
	assert_int_equal(open_root(c), 0);
	check_and_adopt(c, NULL, "after a clean remount");
	size_t files = 0, dirs = 0;
	for (size_t i = 0; i < c->model.nent; i++) {
		files += c->model.obj[c->model.ent[i].obj].kind == K_FILE;
		dirs += c->model.obj[c->model.ent[i].obj].kind == K_DIR;
	}
	printf("# crash: %" PRIu64 " rounds (%u with an operation in flight, %u ended by budget), "
	       "%" PRIu64 " acknowledged ops checked, final tree %zu names (%zu file names, %zu "
	       "dirs), %.1f s, %s, seed %" PRIu64 "\n",
	       rounds, inflight_seen, budget_ends, acked, c->model.nent, files, dirs,
	       (double)(now_ns() - t0) / 1e9, plain ? "plain directory (no kills)" : "fractiofs",
	       c->seed);
}

/* Damage the checker must see, and in-flight states it must accept. */
static void test_fs_crash_checker_detects_damage(void **state)
{
	struct crash *c = *state;
	char why[WHY_LEN];
	int logfd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	assert_true(logfd >= 0);
	/* build a tree in-process, with a hard link and a symlink for sure */
	assert_int_equal(workload(c->rootfd, &c->model, c->seed, 1, 300, false, logfd),
			 CHILD_BUDGET);
	struct rec r = {.magic = REC_MAGIC, .op = OP_CREATE, .len = 5000, .dseed = 7};
	snprintf(r.a, PATH_LEN, "zf");
	struct rec lk = {.magic = REC_MAGIC, .op = OP_LINK};
	snprintf(lk.a, PATH_LEN, "zf");
	snprintf(lk.b, PATH_LEN, "zg");
	struct rec sl = {.magic = REC_MAGIC, .op = OP_SYMLINK};
	snprintf(sl.a, PATH_LEN, "zs");
	snprintf(sl.b, PATH_LEN, "target");
	struct rec *all[] = {&r, &lk, &sl};
	uint8_t *buf = malloc(DATA_MAX);
	assert_non_null(buf);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(do_op(c->rootfd, all[i], buf, 0), 0);
		assert_int_equal(model_apply(&c->model, all[i]), 0);
	}
	close(logfd);
	assert_int_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);

	/* a changed byte */
	int fd = openat(c->rootfd, "zf", O_RDWR);
	assert_true(fd >= 0);
	uint8_t b, x;
	assert_int_equal(pread(fd, &b, 1, 4000), 1);
	x = (uint8_t)~b;
	assert_int_equal(pwrite(fd, &x, 1, 4000), 1);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(pwrite(fd, &b, 1, 4000), 1);
	/* a longer file */
	assert_int_equal(ftruncate(fd, 5001), 0);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(ftruncate(fd, 5000), 0);
	close(fd);
	assert_int_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	/* an extra name, a missing name, a broken link group, a changed symlink */
	fd = openat(c->rootfd, "extra", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(unlinkat(c->rootfd, "extra", 0), 0);
	assert_int_equal(renameat(c->rootfd, "zg", c->rootfd, "zh"), 0);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(unlinkat(c->rootfd, "zh", 0), 0);
	assert_int_equal(linkat(c->rootfd, "zf", c->rootfd, "zh", 0), 0);
	/* zf and zh are one inode; the model has zf and zg: a missing and an extra name */
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	assert_int_equal(unlinkat(c->rootfd, "zh", 0), 0);
	fd = openat(c->rootfd, "zg", O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	uint8_t *data = malloc(5000);
	assert_non_null(data);
	gen_data(7, data, 5000);
	assert_int_equal(write(fd, data, 5000), 5000);
	close(fd);
	/* same names and bytes, but zg is a copy rather than a link */
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(unlinkat(c->rootfd, "zg", 0), 0);
	assert_int_equal(linkat(c->rootfd, "zf", c->rootfd, "zg", 0), 0);
	assert_int_equal(unlinkat(c->rootfd, "zs", 0), 0);
	assert_int_equal(symlinkat("other", c->rootfd, "zs"), 0);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(unlinkat(c->rootfd, "zs", 0), 0);
	assert_int_equal(symlinkat("target", c->rootfd, "zs"), 0);
	assert_int_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);

	/* in flight: an overwrite of zf not done, done in part, done, and botched */
	struct rec w = {.magic = REC_MAGIC, .op = OP_WRITE, .off = 1000, .len = 6000,
			.dseed = 99};
	snprintf(w.a, PATH_LEN, "zf");
	assert_int_equal(check_tree(c->rootfd, &c->model, &w, NULL, why), 0);
	assert_int_equal(do_op(c->rootfd, &w, buf, 4500), 0);
	assert_int_equal(check_tree(c->rootfd, &c->model, &w, NULL, why), 0);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, NULL, NULL, why), 0);
	fd = openat(c->rootfd, "zf", O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 2000), 1);
	x = (uint8_t)(b ^ 0x5a);
	assert_int_equal(pwrite(fd, &x, 1, 2000), 1);
	close(fd);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, &w, NULL, why), 0);
	print_message("# detected: %s\n", why);
	assert_int_equal(do_op(c->rootfd, &w, buf, 0), 0);
	assert_int_equal(check_tree(c->rootfd, &c->model, &w, NULL, why), 0);
	/* an unlink in flight: either state, but not a third one */
	struct rec u = {.magic = REC_MAGIC, .op = OP_UNLINK};
	snprintf(u.a, PATH_LEN, "zs");
	assert_int_equal(model_apply(&c->model, &w), 0);
	assert_int_equal(check_tree(c->rootfd, &c->model, &u, NULL, why), 0);
	assert_int_equal(unlinkat(c->rootfd, "zg", 0), 0);
	assert_int_not_equal(check_tree(c->rootfd, &c->model, &u, NULL, why), 0);
	print_message("# detected: %s\n", why);
	free(buf);
	free(data);
}

static int teardown(void **state)
{
	struct crash *c = *state;
	if (!c)
		return 0;
	if (c->rootfd >= 0)
		close(c->rootfd);
	if (c->set_up)
		mnt_teardown(&c->m);
	if (c->logdir)
		tu_rmtree(c->logdir);
	free(c->logdir);
	model_free(&c->model);
	free(c->acks);
	free(c);
	return 0;
}

static int setup(void **state)
{
	struct crash *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->rootfd = -1;
	c->seed = tu_seed();
	c->rng = c->seed;
	c->logdir = tu_tmpdir("crashlog");
	snprintf(c->log, sizeof(c->log), "%s/ops.log", c->logdir);
	if (mnt_setup(&c->m, "crash") != 0)
		goto fail;
	c->set_up = true;
	if (mnt_start(&c->m) != 0 || open_root(c) != 0)
		goto fail;
	*state = c;
	return 0;
fail:
	/* cmocka runs no teardown after a failed setup */
	teardown((void **)&c);
	return -1;
}

int main(void)
{
	int rc = mnt_require_fuse(); /* 0 in plain-directory mode */
	if (rc)
		return rc;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_crash_checker_detects_damage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fs_crash_kill_daemon, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
