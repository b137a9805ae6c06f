/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c - a consistent copy of an open database in another directory, openable on its
 * own (FORMAT.md §7.1).
 *
 * The cut: as the only writer (db_exclusive, so no commit runs), the journal is synced, every
 * tree's active memtable is sealed and every sealed memtable flushed (a running flush of a
 * tree is waited for), then the current version of every tree and the last seqno are taken.
 * At that moment the tables of those versions hold every commit up to that seqno and nothing
 * newer, in all trees alike, so a batch spanning keyspaces is wholly in the copy or wholly out.
 * Writes resume before the copy is made: the version references keep every listed file from
 * being deleted by a compaction meanwhile.
 *
 * The copy: the files each version needs (tv_files_each) are hard-linked under the same
 * relative paths, or copied when linking is impossible (another file system); then FORMAT, an
 * empty journal directory, and through vset_write_state a manifest holding exactly those
 * versions, and CURRENT last. Every directory is synced before CURRENT is written, so a
 * checkpoint with CURRENT is whole; on failure everything made is removed again (and the
 * directory itself when this call created it).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"
#include "db/db.h"
#include "io/io.h"
#include "version/version.h"

#define COPY_CHUNK (1u << 20)
#define SUBDIR_MAX 8 /* distinct directories the files of a version live in */

/* What the cut holds: one referenced version per tree and the seqno they reach. */
struct cpt_cut {
	struct tree_version **vers;
	size_t cnt;
	uint64_t seqno;
};

static void cut_fini(struct cpt_cut *c)
{
	for (size_t i = 0; i < c->cnt; i++)
		tv_unref(c->vers[i]);
	fr_free(c->vers);
	memset(c, 0, sizeof(*c));
}

/* Runs as the only writer: flushes everything and takes the versions. */
static fr_status cut_fn(fr_db *db, void *ctx, fr_error *err)
{
	struct cpt_cut *c = ctx;
	uint32_t *ids = NULL;
	size_t n = 0;
	fr_status rc = db_seal_all(db, true, err);
	if (rc)
		return rc;
	if (vset_tree_ids(db->vs, &ids, &n))
		return FR_ERR(err, FR_NOMEM, "checkpoint: tree list");
	c->vers = fr_calloc(n ? n : 1, sizeof(*c->vers));
	if (!c->vers) {
		fr_free(ids);
		return FR_ERR(err, FR_NOMEM, "checkpoint: versions");
	}
	for (size_t i = 0; i < n; i++)
		c->vers[c->cnt++] = vset_current(db->vs, ids[i]);
	fr_free(ids);
	/* no commit runs: every seqno handed out is visible and, now, in a table */
	c->seqno = db->seqno;
	return FR_OK;
}

/* ---- building the copy ---- */

struct cpt_build {
	fr_db *db;
	const char *dir;
	char *subdirs[SUBDIR_MAX]; /* relative directories made so far, to sync */
	size_t subdir_cnt;
	struct cpt_stats *st;
};

static fr_status join(char *buf, const char *dir, const char *rel, fr_error *err)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, rel) >= PATH_MAX)
		return FR_ERR(err, FR_INVALID, "path too long: %s/%s", dir, rel);
	return FR_OK;
}

/* Makes <dir>/<sub> once and remembers it for the final sync. */
static fr_status subdir_make(struct cpt_build *b, const char *sub, size_t len, fr_error *err)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < b->subdir_cnt; i++)
		if (strlen(b->subdirs[i]) == len && !memcmp(b->subdirs[i], sub, len))
			return FR_OK;
	if (b->subdir_cnt == SUBDIR_MAX)
		return FR_ERR(err, FR_INVALID, "checkpoint: too many directories");
	char *s = fr_malloc(len + 1);
	if (!s)
		return FR_ERR(err, FR_NOMEM, "checkpoint");
	memcpy(s, sub, len);
	s[len] = 0;
	fr_status rc = join(path, b->dir, s, err);
	if (!rc)
		rc = io_mkdir(b->db->io, path, err);
	if (rc) {
		fr_free(s);
		return rc;
	}
	b->subdirs[b->subdir_cnt++] = s;
	return FR_OK;
}

/* Copies file from into a new file to, synced; *len its size. */
static fr_status copy_file(struct fr_io *io, const char *from, const char *to, uint64_t *len,
			   fr_error *err)
{
	struct io_file *in = NULL, *out = NULL;
	void *buf = fr_malloc(COPY_CHUNK);
	uint64_t off = 0;
	fr_status rc;

	if (!buf)
		return FR_ERR(err, FR_NOMEM, "copying %s", from);
	rc = io_open(io, from, IO_RDONLY, &in, err);
	if (rc)
		goto out;
	rc = io_open(io, to, IO_RDWR | IO_CREATE | IO_EXCL, &out, err);
	if (rc)
		goto out;
	for (;;) {
		size_t got;
		rc = io_pread(in, buf, COPY_CHUNK, off, &got, err);
		if (rc || !got)
			break;
		rc = io_append(out, buf, got, err);
		if (rc)
			break;
		off += got;
	}
	if (!rc)
		rc = io_sync(out, FR_PERSIST_SYNC_ALL, err);
	*len = off;
out:
	io_close(in);
	io_close(out);
	fr_free(buf);
	return rc;
}

/* Link failures that mean "this file system cannot link here", where a copy does the job. */
static bool link_impossible(int e)
{
	return e == EXDEV || e == EPERM || e == EMLINK || e == ENOTSUP || e == EOPNOTSUPP;
}

static fr_status place_file(void *ctx, const char *path, const char *rel, uint64_t size,
			    fr_error *err)
{
	struct cpt_build *b = ctx;
	const char *slash = strrchr(rel, '/');
	char to[PATH_MAX];
	fr_status rc;

	if (slash) {
		rc = subdir_make(b, rel, (size_t)(slash - rel), err);
		if (rc)
			return rc;
	}
	rc = join(to, b->dir, rel, err);
	if (rc)
		return rc;
	fr_error le = {0};
	rc = io_link(b->db->io, path, to, &le);
	if (!rc) {
		b->st->files++;
		b->st->linked_files++;
		b->st->linked_bytes += size;
		return FR_OK;
	}
	if (!link_impossible(le.sys_errno)) {
		if (err)
			*err = le;
		return rc;
	}
	uint64_t len = 0;
	rc = copy_file(b->db->io, path, to, &len, err);
	if (rc) {
		io_unlink(b->db->io, to, NULL);
		return rc;
	}
	b->st->files++;
	b->st->copied_files++;
	b->st->copied_bytes += len;
	return FR_OK;
}

/* ---- removing a failed copy ---- */

struct name_vec {
	char **v;
	size_t cnt, cap;
	bool nomem;
};

static int collect(void *ctx, const char *name)
{
	struct name_vec *nv = ctx;
	if (nv->cnt == nv->cap) {
		size_t cap = nv->cap ? nv->cap * 2 : 16;
		char **v = fr_realloc(nv->v, cap * sizeof(*v));
		if (!v) {
			nv->nomem = true;
			return 1;
		}
		nv->v = v;
		nv->cap = cap;
	}
	nv->v[nv->cnt] = fr_strdup(name);
	if (!nv->v[nv->cnt]) {
		nv->nomem = true;
		return 1;
	}
	nv->cnt++;
	return 0;
}

/* Removes everything below dir (best effort: the checkpoint already failed). The directory
 * was empty when the checkpoint began, so all of it is the checkpoint's. */
static void remove_below(struct fr_io *io, const char *dir, int depth)
{
	struct name_vec nv = {0};
	char path[PATH_MAX];

	if (io_list(io, dir, collect, &nv, NULL) == FR_OK) {
		for (size_t i = 0; i < nv.cnt; i++) {
			if (join(path, dir, nv.v[i], NULL))
				continue;
			fr_error e = {0};
			if (io_unlink(io, path, &e) && depth < 4) {
				remove_below(io, path, depth + 1);
				io_rmdir(io, path, NULL);
			}
		}
	}
	for (size_t i = 0; i < nv.cnt; i++)
		fr_free(nv.v[i]);
	fr_free(nv.v);
}

static int any_entry(void *ctx, const char *name)
{
	(void)name;
	*(bool *)ctx = true;
	return 1;
}

/* FR_INVALID unless dir is missing or an empty directory; *exists tells which. */
static fr_status dir_check(struct fr_io *io, const char *dir, bool *exists, fr_error *err)
{
	bool found = false;
	fr_status rc = io_exists(io, dir, exists, err);
	if (rc || !*exists)
		return rc;
	rc = io_list(io, dir, any_entry, &found, err);
	if (rc)
		return rc;
	if (found)
		return FR_ERR(err, FR_INVALID, "checkpoint: %s exists and is not empty", dir);
	return FR_OK;
}

/* The directory that holds dir, into buf: "." for a bare name. */
static void parent_dir(const char *dir, char *buf)
{
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len && dir[len - 1] != '/')
		len--;
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (!len) {
		strcpy(buf, ".");
		return;
	}
	memcpy(buf, dir, len);
	buf[len] = 0;
}

static fr_status build(fr_db *db, const char *dir, bool existed, struct cpt_cut *c,
		       struct cpt_stats *st, fr_error *err)
{
	struct cpt_build b = {.db = db, .dir = dir, .st = st};
	char path[PATH_MAX];
	fr_status rc = io_mkdir(db->io, dir, err);

	for (size_t i = 0; i < c->cnt && !rc; i++)
		rc = tv_files_each(c->vers[i], place_file, &b, err);
	/* an empty database still has the directories open expects */
	if (!rc)
		rc = subdir_make(&b, TABLES_SUBDIR, strlen(TABLES_SUBDIR), err);
	if (!rc)
		rc = subdir_make(&b, JOURNAL_SUBDIR, strlen(JOURNAL_SUBDIR), err);
	if (!rc)
		rc = db_write_format(db->io, dir, err);
	for (size_t i = 0; i < b.subdir_cnt && !rc; i++) {
		rc = join(path, dir, b.subdirs[i], err);
		if (!rc)
			rc = io_sync_dir(db->io, path, err);
	}
	if (!rc && !existed) {
		parent_dir(dir, path);
		rc = io_sync_dir(db->io, path, err);
	}
	/* last: CURRENT makes it a database */
	if (!rc)
		rc = vset_write_state(db->vs, dir, c->vers, c->cnt, c->seqno, err);
	for (size_t i = 0; i < b.subdir_cnt; i++)
		fr_free(b.subdirs[i]);
	if (rc) {
		remove_below(db->io, dir, 0);
		if (!existed)
			io_rmdir(db->io, dir, NULL);
	}
	return rc;
}

fr_status db_checkpoint(fr_db *db, const char *dir, struct cpt_stats *st, fr_error *err)
{
	struct cpt_cut c = {0};
	bool existed;
	fr_status rc;

	memset(st, 0, sizeof(*st));
	if (db->opts.read_only)
		return FR_ERR(err, FR_INVALID, "checkpoint: database opened read-only");
	rc = dir_check(db->io, dir, &existed, err);
	if (rc)
		return rc;
	rc = db_exclusive(db, cut_fn, &c, err);
	if (!rc)
		rc = build(db, dir, existed, &c, st, err);
	if (!rc) {
		st->seqno = c.seqno;
		FR_LOG(FR_LOG_INFO,
		       "checkpoint %s at seqno %llu: %llu files, %llu bytes linked, %llu copied", dir,
		       (unsigned long long)c.seqno, (unsigned long long)st->files,
		       (unsigned long long)st->linked_bytes, (unsigned long long)st->copied_bytes);
	}
	cut_fini(&c);
	return rc;
}
