/* SPDX-License-Identifier: MIT */
/*
 * test_manifest.c - the version set: opening and creating, replaying random edits against a
 * model across reopens, torn and corrupt manifests, CURRENT switching and manifest rollover,
 * orphan deletion, obsolete tables outliving the versions that pin them, rejected edits, read-
 * only opens, injected manifest write failures (FR_POISONED afterwards), and readers racing an
 * applier.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/record.h"
#include "sst/sst.h"
#include "testutil.h"
#include "version/version.h"
#include "version/version_int.h"

#define TREES 3

/* ---- helpers ---- */

static char *dir_of(void **state)
{
	return *state;
}

static int setup_dir(void **state)
{
	*state = tu_tmpdir("mfst");
	return 0;
}

static int teardown_dir(void **state)
{
	tu_rmtree_free(*state);
	return 0;
}

static bool file_exists(const char *dir, const char *name)
{
	char p[2 * PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static void touch(const char *dir, const char *name)
{
	char p[2 * PATH_MAX];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static bool table_exists(const char *dir, uint64_t id)
{
	char name[64];

	snprintf(name, sizeof(name), "tables/%llu.sst", (unsigned long long)id);
	return file_exists(dir, name);
}

static void touch_table(const char *dir, uint64_t id)
{
	char name[64];

	snprintf(name, sizeof(name), "tables/%llu.sst", (unsigned long long)id);
	touch(dir, name);
}

static char key_a[32], key_b[32];

/* Table `id` covers keys "t<id>a".."t<id>z": tables never overlap each other. */
static void meta_for(struct sst_meta *m, uint64_t id, uint64_t max_seqno)
{
	memset(m, 0, sizeof(*m));
	snprintf(key_a, sizeof(key_a), "t%08llua", (unsigned long long)id);
	snprintf(key_b, sizeof(key_b), "t%08lluz", (unsigned long long)id);
	m->id = id;
	m->file_size = 4096 + id;
	m->entry_cnt = id * 3;
	m->tombstone_cnt = id % 5;
	m->range_del_cnt = id % 2;
	m->min_seqno = max_seqno / 2;
	m->max_seqno = max_seqno;
	m->smallest = (uint8_t *)key_a;
	m->smallest_len = strlen(key_a);
	m->largest = (uint8_t *)key_b;
	m->largest_len = strlen(key_b);
}

static fr_status add1(struct vset *vs, uint32_t tree, uint32_t level, uint64_t id,
		      uint64_t max_seqno, fr_error *err)
{
	struct vedit e;
	struct sst_meta m;
	fr_status rc;

	vedit_init(&e);
	meta_for(&m, id, max_seqno);
	assert_int_equal(vedit_add_table(&e, tree, level, &m), FR_OK);
	rc = vset_apply(vs, &e, err);
	vedit_fini(&e);
	return rc;
}

static fr_status del1(struct vset *vs, uint32_t tree, uint32_t level, uint64_t id, fr_error *err)
{
	struct vedit e;
	fr_status rc;

	vedit_init(&e);
	assert_int_equal(vedit_del_table(&e, tree, level, id), FR_OK);
	rc = vset_apply(vs, &e, err);
	vedit_fini(&e);
	return rc;
}

static struct vset *open_vs(const char *dir, bool create)
{
	struct vset *vs;
	fr_error err;
	fr_status rc = vset_open(io_posix(), dir, create, false, &vs, &err);

	if (rc)
		fail_msg("vset_open: %s", err.msg);
	return vs;
}

/* ---- the model ---- */

struct mtable {
	uint64_t id;
	uint64_t max_seqno;
	uint32_t level;
	bool fresh; /* added by the edit being built: edits apply deletes before adds */
};

struct mtree {
	bool present;
	uint64_t flushed;
	struct mtable t[512];
	size_t cnt;
};

struct model {
	struct mtree tree[TREES];
	uint64_t last_seqno;
	uint64_t next_file_id; /* what a reopened vset hands out first */
};

static int cmp_mt_l0(const void *a, const void *b)
{
	const struct mtable *x = a, *y = b;

	if (x->max_seqno != y->max_seqno)
		return x->max_seqno > y->max_seqno ? -1 : 1;
	return x->id > y->id ? -1 : 1;
}

static int cmp_mt_id(const void *a, const void *b)
{
	const struct mtable *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Checks that vs holds exactly the model's state. */
static void check_model(struct vset *vs, const struct model *mo)
{
	uint32_t *ids;
	size_t cnt, k = 0;

	assert_int_equal(vset_tree_ids(vs, &ids, &cnt), FR_OK);
	for (uint32_t t = 0; t < TREES; t++) {
		const struct mtree *mt = &mo->tree[t];
		struct tree_version *v = vset_current(vs, t + 1);

		assert_non_null(v);
		assert_int_equal(v->tree_id, t + 1);
		if (mt->present) {
			assert_true(k < cnt);
			assert_int_equal(ids[k++], t + 1);
		}
		assert_int_equal(v->flushed_seqno, mt->present ? mt->flushed : 0);
		assert_int_equal(tv_table_cnt(v), mt->present ? mt->cnt : 0);
		for (uint32_t l = 0; l < LEVEL_CNT; l++) {
			struct mtable want[512];
			size_t n = 0;

			for (size_t i = 0; mt->present && i < mt->cnt; i++)
				if (mt->t[i].level == l)
					want[n++] = mt->t[i];
			qsort(want, n, sizeof(*want), l ? cmp_mt_id : cmp_mt_l0);
			assert_int_equal(v->level_cnt[l], n);
			for (size_t i = 0; i < n; i++) {
				const struct table *tb = v->levels[l][i];
				struct sst_meta m;

				assert_int_equal(tb->meta.id, want[i].id);
				assert_int_equal(tb->tree_id, t + 1);
				meta_for(&m, want[i].id, want[i].max_seqno);
				assert_int_equal(tb->meta.file_size, m.file_size);
				assert_int_equal(tb->meta.entry_cnt, m.entry_cnt);
				assert_int_equal(tb->meta.tombstone_cnt, m.tombstone_cnt);
				assert_int_equal(tb->meta.range_del_cnt, m.range_del_cnt);
				assert_int_equal(tb->meta.min_seqno, m.min_seqno);
				assert_int_equal(tb->meta.max_seqno, m.max_seqno);
				assert_int_equal(tb->meta.smallest_len, m.smallest_len);
				assert_memory_equal(tb->meta.smallest, m.smallest, m.smallest_len);
				assert_memory_equal(tb->meta.largest, m.largest, m.largest_len);
				assert_non_null(strstr(tb->path, "/tables/"));
			}
		}
		tv_unref(v);
	}
	assert_int_equal(k, cnt);
	fr_free(ids);
	assert_int_equal(vset_last_seqno(vs), mo->last_seqno);
}

/* One random edit applied to both vs and the model. */
static void random_edit(struct vset *vs, struct model *mo, uint64_t *rs, int step)
{
	struct vedit e;
	struct model next = *mo;
	fr_error err;
	bool touched[TREES] = { false };

	vedit_init(&e);
	/* now and then drop a tree (tree 3, which the edit below may then refill) */
	if (step % 37 == 36 && mo->tree[2].present) {
		assert_int_equal(vedit_drop_tree(&e, 3), FR_OK);
		next.tree[2].present = false;
		next.tree[2].cnt = 0;
		next.tree[2].flushed = 0;
		touched[2] = true;
	}
	int ops = 1 + (int)tu_rand_below(rs, 4);
	for (int o = 0; o < ops; o++) {
		uint32_t t = (uint32_t)tu_rand_below(rs, TREES);
		struct mtree *mt = &next.tree[t];

		if (touched[t] && !mt->present)
			continue; /* dropped in this edit */
		switch (tu_rand_below(rs, 5)) {
		case 0:
		case 1: { /* add a table */
			uint64_t id = vset_new_file_id(vs);
			uint32_t level = (uint32_t)tu_rand_below(rs, 4);
			uint64_t seq = 1 + tu_rand_below(rs, 1000);
			struct sst_meta m;

			if (mt->cnt == 512)
				break;
			meta_for(&m, id, seq);
			assert_int_equal(vedit_add_table(&e, t + 1, level, &m), FR_OK);
			mt->t[mt->cnt++] = (struct mtable){ id, seq, level, true };
			mt->present = true;
			break;
		}
		case 2: /* delete one */
		case 3: /* or move one down a level (delete + add of the same id) */
			if (!mt->cnt || touched[t])
				break;
			{
				size_t i = (size_t)tu_rand_below(rs, mt->cnt);
				struct mtable x = mt->t[i];

				if (x.fresh)
					break;

				assert_int_equal(vedit_del_table(&e, t + 1, x.level, x.id), FR_OK);
				mt->t[i] = mt->t[--mt->cnt];
				if (o % 2 && x.level + 1 < LEVEL_CNT) {
					struct sst_meta m;

					meta_for(&m, x.id, x.max_seqno);
					x.level++;
					x.fresh = true;
					assert_int_equal(vedit_add_table(&e, t + 1, x.level, &m),
							 FR_OK);
					mt->t[mt->cnt++] = x;
				}
				touched[t] = true; /* one delete per tree per edit */
			}
			break;
		default: { /* flushed seqno */
			uint64_t s = tu_rand_below(rs, 100000);

			assert_int_equal(vedit_set_flushed(&e, t + 1, s), FR_OK);
			mt->flushed = s;
			mt->present = true;
			break;
		}
		}
	}
	if (tu_rand_below(rs, 3) == 0) {
		uint64_t s = tu_rand_below(rs, 1u << 30);

		e.has_last_seqno = true;
		e.last_seqno = s;
		if (s > next.last_seqno)
			next.last_seqno = s;
	}
	if (vset_apply(vs, &e, &err) != FR_OK)
		fail_msg("vset_apply step %d: %s", step, err.msg);
	vedit_fini(&e);
	for (int t = 0; t < TREES; t++)
		for (size_t i = 0; i < next.tree[t].cnt; i++)
			next.tree[t].t[i].fresh = false;
	/* the edit persisted the counter as it was; taking one more is not persisted */
	next.next_file_id = vset_new_file_id(vs);
	*mo = next;
}

/* ---- tests ---- */

static void test_manifest_create_empty(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	fr_error err;
	char sub[PATH_MAX];
	char buf[64] = { 0 };
	int fd;

	/* nothing there and no create */
	snprintf(sub, sizeof(sub), "%s/db", dir);
	assert_int_equal(vset_open(io_posix(), sub, false, false, &vs, &err), FR_NOT_FOUND);
	assert_null(vs);

	vs = open_vs(sub, true);
	assert_true(file_exists(sub, "CURRENT"));
	assert_true(file_exists(sub, "MANIFEST-1"));
	assert_true(file_exists(sub, "tables"));
	char cur[PATH_MAX + 16];
	snprintf(cur, sizeof(cur), "%s/CURRENT", sub);
	fd = open(cur, O_RDONLY);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf)), 11);
	close(fd);
	assert_string_equal(buf, "MANIFEST-1\n");
	assert_true(vset_manifest_bytes(vs) > REC_FILE_HEADER_LEN);

	uint32_t *ids;
	size_t cnt;
	assert_int_equal(vset_tree_ids(vs, &ids, &cnt), FR_OK);
	assert_int_equal(cnt, 0);
	fr_free(ids);
	assert_int_equal(vset_new_file_id(vs), 1);
	assert_int_equal(vset_new_file_id(vs), 2);
	assert_int_equal(vset_last_seqno(vs), 0);
	struct tree_version *v = vset_current(vs, 42);
	assert_int_equal(v->tree_id, 42);
	assert_int_equal(tv_table_cnt(v), 0);
	tv_unref(v);
	char p[PATH_MAX];
	vset_table_path(vs, 17, p, sizeof(p));
	snprintf(buf, sizeof(buf), "/tables/17.sst");
	assert_non_null(strstr(p, buf));
	vset_close(vs);

	/* a tree with no tables yet still exists */
	vs = open_vs(sub, false);
	assert_int_equal(vset_new_file_id(vs), 1); /* nothing persisted the ids handed out */
	struct vedit e;
	vedit_init(&e);
	assert_int_equal(vedit_set_flushed(&e, 9, 0), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	vset_close(vs);
	vs = open_vs(sub, false);
	assert_int_equal(vset_tree_ids(vs, &ids, &cnt), FR_OK);
	assert_int_equal(cnt, 1);
	assert_int_equal(ids[0], 9);
	fr_free(ids);
	assert_int_equal(vset_new_file_id(vs), 2); /* the edit persisted id 1 as handed out */
	vset_close(vs);
	vset_close(NULL);
}

static void test_manifest_replay_model(void **state)
{
	const char *dir = dir_of(state);
	uint64_t rs = tu_seed();
	struct model mo;
	struct vset *vs;

	memset(&mo, 0, sizeof(mo));
	vs = open_vs(dir, true);
	for (int i = 0; i < 100; i++) {
		random_edit(vs, &mo, &rs, i);
		if (i % 25 == 0)
			check_model(vs, &mo);
	}
	check_model(vs, &mo);
	vset_close(vs);
	for (int r = 0; r < 5; r++) {
		vs = open_vs(dir, false);
		check_model(vs, &mo);
		assert_int_equal(vset_manifest_num(vs), (uint64_t)r + 2);
		assert_int_equal(vset_new_file_id(vs), mo.next_file_id);
		/* a few more edits after some of the reopens */
		for (int i = 0; r % 2 && i < 10; i++)
			random_edit(vs, &mo, &rs, 100 + r * 10 + i);
		vset_close(vs);
	}
	/* a read-only open sees the same and writes nothing */
	struct vset *ro;
	fr_error err;
	assert_int_equal(vset_open(io_posix(), dir, false, true, &ro, &err), FR_OK);
	check_model(ro, &mo);
	assert_int_equal(vset_apply(ro, &(struct vedit){ 0 }, &err), FR_INVALID);
	assert_int_equal(vset_delete_orphans(ro, &err), FR_OK);
	vset_close(ro);
	assert_false(file_exists(dir, "MANIFEST-7"));
	assert_true(file_exists(dir, "MANIFEST-6"));
}

static void test_manifest_torn_tail(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	char path[PATH_MAX];
	uint64_t before, after, n;
	fr_error err;

	vs = open_vs(dir, true);
	assert_int_equal(add1(vs, 1, 0, vset_new_file_id(vs), 10, &err), FR_OK);
	assert_int_equal(add1(vs, 1, 1, vset_new_file_id(vs), 11, &err), FR_OK);
	before = vset_manifest_bytes(vs);
	assert_int_equal(add1(vs, 2, 0, vset_new_file_id(vs), 12, &err), FR_OK);
	after = vset_manifest_bytes(vs);
	assert_true(after > before);
	n = vset_manifest_num(vs);
	vset_close(vs);

	/* cut the last edit short, as a crash during its write would */
	snprintf(path, sizeof(path), "%s/MANIFEST-%llu", dir, (unsigned long long)n);
	assert_int_equal(truncate(path, (off_t)(after - 3)), 0);
	vs = open_vs(dir, false);
	struct tree_version *v = vset_current(vs, 1);
	assert_int_equal(tv_table_cnt(v), 2);
	tv_unref(v);
	v = vset_current(vs, 2);
	assert_int_equal(tv_table_cnt(v), 0);
	tv_unref(v);
	uint32_t *ids;
	size_t cnt;
	assert_int_equal(vset_tree_ids(vs, &ids, &cnt), FR_OK);
	assert_int_equal(cnt, 1);
	fr_free(ids);
	/* the new manifest holds the state without the torn edit */
	vset_close(vs);
	vs = open_vs(dir, false);
	v = vset_current(vs, 1);
	assert_int_equal(tv_table_cnt(v), 2);
	tv_unref(v);
	vset_close(vs);
}

static void test_manifest_corrupt_middle(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	char path[PATH_MAX];
	uint64_t off[4], n;
	fr_error err;
	int fd;

	vs = open_vs(dir, true);
	for (int i = 0; i < 4; i++) {
		off[i] = vset_manifest_bytes(vs);
		assert_int_equal(add1(vs, 1, 0, vset_new_file_id(vs), 10 + (uint64_t)i, &err),
				 FR_OK);
	}
	n = vset_manifest_num(vs);
	vset_close(vs);

	/* flip a byte in the payload of the second edit */
	snprintf(path, sizeof(path), "%s/MANIFEST-%llu", dir, (unsigned long long)n);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	off_t at = (off_t)(off[1] + REC_HEADER_LEN + 2);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);

	assert_int_equal(vset_open(io_posix(), dir, false, false, &vs, &err), FR_CORRUPTION);
	assert_null(vs);
	assert_non_null(strstr(err.msg, "MANIFEST-"));
	assert_int_equal(vset_open(io_posix(), dir, false, true, &vs, &err), FR_CORRUPTION);
	/* nothing was rewritten: CURRENT still names the damaged manifest */
	char next[64];
	snprintf(next, sizeof(next), "MANIFEST-%llu", (unsigned long long)n + 1);
	assert_false(file_exists(dir, next));

	/* a CURRENT that is not "MANIFEST-<n>\n" is corruption too */
	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "MANIFEST-x\n", 11), 11);
	close(fd);
	assert_int_equal(vset_open(io_posix(), dir, true, false, &vs, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "CURRENT"));
	/* and one naming a missing manifest */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "MANIFEST-99\n", 12), 12);
	close(fd);
	assert_int_equal(vset_open(io_posix(), dir, true, false, &vs, &err), FR_CORRUPTION);
}

/* A semantically bad edit in the manifest (deleting a table that is not there), with valid
 * checksums: replay reports FR_CORRUPTION at the record. */
static void test_manifest_bad_edit_in_file(void **state)
{
	const char *dir = dir_of(state);
	struct rec_writer *w;
	struct fr_buf b;
	struct vedit e;
	char path[PATH_MAX];
	struct vset *vs;
	fr_error err;

	snprintf(path, sizeof(path), "%s/MANIFEST-3", dir);
	assert_int_equal(rec_writer_open(io_posix(), path, MFST_MAGIC, 3, &w, &err), FR_OK);
	vedit_init(&e);
	assert_int_equal(vedit_del_table(&e, 1, 0, 5), FR_OK);
	buf_init(&b);
	assert_int_equal(vedit_encode(&e, &b), FR_OK);
	assert_int_equal(rec_writer_add(w, b.data, b.len, &err), FR_OK);
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	buf_fini(&b);
	vedit_fini(&e);
	assert_int_equal(io_write_file_atomic(io_posix(), dir, "CURRENT", "MANIFEST-3\n", 11, &err),
			 FR_OK);
	assert_int_equal(vset_open(io_posix(), dir, false, false, &vs, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "MANIFEST-3"));
	assert_non_null(strstr(err.msg, "table 5"));
	assert_int_equal(err.offset, REC_FILE_HEADER_LEN);

	/* a manifest whose header names another file number */
	assert_int_equal(io_write_file_atomic(io_posix(), dir, "CURRENT", "MANIFEST-4\n", 11, &err),
			 FR_OK);
	snprintf(path, sizeof(path), "%s/MANIFEST-4", dir);
	assert_int_equal(rec_writer_open(io_posix(), path, MFST_MAGIC, 8, &w, &err), FR_OK);
	assert_int_equal(rec_writer_add(w, "", 0, &err), FR_OK);
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	assert_int_equal(vset_open(io_posix(), dir, false, false, &vs, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "another manifest"));

	/* a manifest without a single edit would silently lose every table */
	assert_int_equal(io_write_file_atomic(io_posix(), dir, "CURRENT", "MANIFEST-5\n", 11, &err),
			 FR_OK);
	snprintf(path, sizeof(path), "%s/MANIFEST-5", dir);
	assert_int_equal(rec_writer_open(io_posix(), path, MFST_MAGIC, 5, &w, &err), FR_OK);
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	assert_int_equal(vset_open(io_posix(), dir, false, true, &vs, &err), FR_CORRUPTION);
	assert_non_null(strstr(err.msg, "no edit"));
}

static void test_manifest_orphans(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	fr_error err;

	vs = open_vs(dir, true);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(vset_new_file_id(vs), id);
		touch_table(dir, id);
	}
	assert_int_equal(add1(vs, 1, 0, 1, 5, &err), FR_OK);
	assert_int_equal(add1(vs, 2, 1, 3, 5, &err), FR_OK);
	vset_close(vs);

	/* leftovers of a crash: tables never added, temporaries, a stray manifest */
	touch_table(dir, 2);
	touch_table(dir, 77);
	touch(dir, "tables/9.sst.tmp");
	touch(dir, "tables/notes.txt");
	touch(dir, "tables/x.sst");
	touch(dir, "MANIFEST-99");
	touch(dir, "README");
	vs = open_vs(dir, false);
	assert_true(file_exists(dir, "MANIFEST-1"));
	assert_true(file_exists(dir, "MANIFEST-2"));
	assert_int_equal(vset_delete_orphans(vs, &err), FR_OK);
	assert_true(table_exists(dir, 1));
	assert_true(table_exists(dir, 3));
	assert_false(table_exists(dir, 2));
	assert_false(table_exists(dir, 77));
	assert_false(file_exists(dir, "tables/9.sst.tmp"));
	assert_true(file_exists(dir, "tables/notes.txt"));
	assert_true(file_exists(dir, "tables/x.sst"));
	assert_false(file_exists(dir, "MANIFEST-1"));
	assert_false(file_exists(dir, "MANIFEST-99"));
	assert_true(file_exists(dir, "MANIFEST-2"));
	assert_true(file_exists(dir, "CURRENT"));
	assert_true(file_exists(dir, "README"));
	/* the ids in use are never handed out again */
	assert_true(vset_new_file_id(vs) >= 4);
	vset_close(vs);
	vs = open_vs(dir, false);
	struct tree_version *v = vset_current(vs, 2);
	assert_int_equal(v->level_cnt[1], 1);
	assert_int_equal(v->levels[1][0]->meta.id, 3);
	tv_unref(v);
	vset_close(vs);
}

static void test_manifest_obsolete_after_last_ref(void **state)
{
	const char *dir = dir_of(state);
	struct tree_version *pinned, *v;
	struct vset *vs;
	struct vedit e;
	struct sst_meta m;
	fr_error err;

	vs = open_vs(dir, true);
	for (uint64_t id = 1; id <= 7; id++) {
		assert_int_equal(vset_new_file_id(vs), id);
		touch_table(dir, id);
	}
	assert_int_equal(add1(vs, 1, 0, 1, 5, &err), FR_OK);
	assert_int_equal(add1(vs, 1, 0, 2, 6, &err), FR_OK);
	assert_int_equal(add1(vs, 1, 0, 3, 7, &err), FR_OK);
	assert_int_equal(add1(vs, 2, 2, 4, 7, &err), FR_OK);
	assert_int_equal(add1(vs, 2, 2, 5, 7, &err), FR_OK);

	/* a reader pins the version holding table 1 */
	pinned = vset_current(vs, 1);
	assert_int_equal(pinned->level_cnt[0], 3);
	assert_int_equal(pinned->levels[0][0]->meta.id, 3); /* newest first */
	assert_int_equal(del1(vs, 1, 0, 1, &err), FR_OK);
	v = vset_current(vs, 1);
	assert_int_equal(tv_table_cnt(v), 2);
	tv_unref(v);
	assert_true(table_exists(dir, 1)); /* still pinned */
	assert_int_equal(del1(vs, 1, 0, 2, &err), FR_OK);
	assert_true(table_exists(dir, 2)); /* pinned too, by the same old version */
	tv_unref(pinned);
	assert_false(table_exists(dir, 1));
	assert_false(table_exists(dir, 2));
	assert_true(table_exists(dir, 3));

	/* a table moved to another level keeps its file */
	vedit_init(&e);
	assert_int_equal(vedit_del_table(&e, 1, 0, 3), FR_OK);
	meta_for(&m, 3, 7);
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	assert_true(table_exists(dir, 3));
	v = vset_current(vs, 1);
	assert_int_equal(v->level_cnt[0], 0);
	assert_int_equal(v->level_cnt[1], 1);
	tv_unref(v);

	/* a dropped tree takes its tables with it, after its last reader */
	pinned = vset_current(vs, 2);
	vedit_init(&e);
	assert_int_equal(vedit_drop_tree(&e, 2), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	assert_true(table_exists(dir, 4));
	uint32_t *ids;
	size_t cnt;
	assert_int_equal(vset_tree_ids(vs, &ids, &cnt), FR_OK);
	assert_int_equal(cnt, 1);
	assert_int_equal(ids[0], 1);
	fr_free(ids);
	tv_unref(pinned);
	assert_false(table_exists(dir, 4));
	assert_false(table_exists(dir, 5));

	/* nobody pins it: deleted by the edit that removes it */
	assert_int_equal(add1(vs, 1, 2, 6, 9, &err), FR_OK);
	assert_true(table_exists(dir, 6));
	assert_int_equal(del1(vs, 1, 2, 6, &err), FR_OK);
	assert_false(table_exists(dir, 6));

	/* closing deletes nothing */
	touch_table(dir, 7);
	assert_int_equal(add1(vs, 1, 2, 7, 9, &err), FR_OK);
	vset_close(vs);
	assert_true(table_exists(dir, 7));
	assert_true(table_exists(dir, 3));
}

static void test_manifest_rejects_bad_edits(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	struct vedit e;
	struct sst_meta m;
	fr_error err;
	uint64_t bytes;

	vs = open_vs(dir, true);
	assert_int_equal(add1(vs, 1, 1, 10, 5, &err), FR_OK);
	bytes = vset_manifest_bytes(vs);
	assert_int_equal(vset_manifest_num(vs), 1);
	/* deleting a table that is not there */
	assert_int_equal(del1(vs, 1, 1, 11, &err), FR_INVALID);
	assert_int_equal(del1(vs, 1, 2, 10, &err), FR_INVALID);
	assert_int_equal(del1(vs, 7, 0, 10, &err), FR_INVALID);
	/* adding one twice */
	assert_int_equal(add1(vs, 1, 2, 10, 5, &err), FR_INVALID);
	/* a level out of range */
	assert_int_equal(add1(vs, 1, LEVEL_CNT, 12, 5, &err), FR_INVALID);
	/* overlapping tables in a level >= 1 */
	vedit_init(&e);
	meta_for(&m, 13, 5);
	m.smallest = (uint8_t *)"t00000010m"; /* starts inside table 10's range */
	m.smallest_len = strlen("t00000010m");
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_INVALID);
	assert_non_null(strstr(err.msg, "overlap"));
	vedit_fini(&e);
	/* nothing was written for the rejected ones */
	assert_int_equal(vset_manifest_bytes(vs), bytes);
	/* the same in L0 is fine */
	assert_int_equal(vedit_add_table(&e, 1, 0, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	/* and the vset still works */
	assert_true(vset_manifest_bytes(vs) > bytes);
	assert_int_equal(add1(vs, 1, 1, 14, 5, &err), FR_OK);
	struct tree_version *v = vset_current(vs, 1);
	assert_int_equal(v->level_cnt[1], 2);
	assert_int_equal(v->level_cnt[0], 1);
	tv_unref(v);
	vset_close(vs);
}

static void test_manifest_rollover(void **state)
{
	const char *dir = dir_of(state);
	struct model mo;
	uint64_t rs = tu_seed();
	struct vset *vs;
	fr_error err;

	memset(&mo, 0, sizeof(mo));
	vs = open_vs(dir, true);
	vset_set_roll_bytes(vs, 600);
	for (int i = 0; i < 60; i++) {
		random_edit(vs, &mo, &rs, i);
	}
	uint64_t n = vset_manifest_num(vs);
	assert_true(n > 3);
	check_model(vs, &mo);
	assert_int_equal(vset_delete_orphans(vs, &err), FR_OK);
	assert_false(file_exists(dir, "MANIFEST-1"));
	assert_false(file_exists(dir, "MANIFEST-2"));
	vset_close(vs);
	vs = open_vs(dir, false);
	assert_int_equal(vset_manifest_num(vs), n + 1);
	check_model(vs, &mo);
	assert_int_equal(vset_new_file_id(vs), mo.next_file_id);
	vset_close(vs);
}

static void check_fault(const char *dir, enum io_fault_kind kind, int e, uint64_t id)
{
	struct fr_io *fio = io_fault_new(io_posix());
	struct tree_version *v;
	struct vset *vs;
	fr_error err;
	fr_status rc;

	assert_non_null(fio);
	assert_int_equal(vset_open(fio, dir, true, false, &vs, &err), FR_OK);
	assert_int_equal(add1(vs, 1, 0, id, 5, &err), FR_OK);
	size_t before;
	v = vset_current(vs, 1);
	before = tv_table_cnt(v);
	tv_unref(v);

	io_fault_arm(fio, kind, 1, e, false);
	rc = add1(vs, 1, 0, id + 1, 6, &err);
	assert_int_equal(rc, e == ENOSPC ? FR_NO_SPACE : FR_IO);
	assert_int_equal(io_fault_injected(fio), 1);
	/* nothing published, and no more edits, even with the fault gone */
	v = vset_current(vs, 1);
	assert_int_equal(tv_table_cnt(v), before);
	tv_unref(v);
	io_fault_clear(fio);
	assert_int_equal(add1(vs, 1, 0, id + 2, 7, &err), FR_POISONED);
	assert_int_equal(add1(vs, 1, 0, id + 3, 7, &err), FR_POISONED);
	vset_close(vs);

	/* a reopen finds a consistent state: the failed edit may or may not have stuck */
	vs = open_vs(dir, false);
	v = vset_current(vs, 1);
	assert_true(tv_table_cnt(v) == before || tv_table_cnt(v) == before + 1);
	for (size_t i = 0; i < v->level_cnt[0]; i++)
		assert_true(v->levels[0][i]->meta.id % 10 < 2);
	tv_unref(v);
	vset_close(vs);
	io_destroy(fio);
}

static void test_manifest_write_failure_poisons(void **state)
{
	const char *dir = dir_of(state);

	check_fault(dir, IO_FAULT_WRITE, EIO, 10);
	check_fault(dir, IO_FAULT_SYNC, EIO, 20);
	check_fault(dir, IO_FAULT_WRITE, ENOSPC, 30);
}

/* A failure while starting a new manifest (rollover) poisons as well, and the old manifest
 * or the new one, whichever CURRENT names, has the full state. */
static void test_manifest_rollover_failure(void **state)
{
	const char *dir = dir_of(state);
	static const enum io_fault_kind kinds[] = { IO_FAULT_OPEN, IO_FAULT_WRITE, IO_FAULT_SYNC,
						    IO_FAULT_RENAME };

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (uint64_t nth = 1; nth <= 3; nth++) {
			struct fr_io *fio = io_fault_new(io_posix());
			struct vset *vs;
			fr_error err;
			fr_status rc;
			uint64_t id = 1000 * (k + 1) + 10 * nth;

			assert_int_equal(vset_open(fio, dir, true, false, &vs, &err), FR_OK);
			assert_int_equal(add1(vs, 5, 1, id, 5, &err), FR_OK);
			vset_set_roll_bytes(vs, 1);
			io_fault_arm(fio, kinds[k], nth, EIO, false);
			rc = add1(vs, 5, 1, id + 1, 6, &err);
			if (io_fault_injected(fio)) {
				assert_int_not_equal(rc, FR_OK);
				assert_int_equal(add1(vs, 5, 1, id + 2, 6, &err), FR_POISONED);
			} else {
				assert_int_equal(rc, FR_OK);
			}
			vset_close(vs);
			io_destroy(fio);

			vs = open_vs(dir, false);
			struct tree_version *v = vset_current(vs, 5);
			bool have = false;
			for (size_t i = 0; i < v->level_cnt[1]; i++)
				have |= v->levels[1][i]->meta.id == id;
			assert_true(have);
			tv_unref(v);
			vset_close(vs);
		}
	}
}

/* Blob files: added with their tables, kept while a table refers to them (also across a
 * reopen), dropped with the last one, their file deleted at the last unref; a table referring
 * to a blob file the tree lacks is refused. */
static void test_manifest_blob_liveness(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs = open_vs(dir, true);
	struct vedit e;
	struct sst_meta m;
	struct blob_meta bm = {.id = 50, .file_size = 1000, .value_cnt = 3, .value_bytes = 900};
	struct sst_blob_ref refs[2] = {{50, 300}, {51, 10}};
	fr_error err;

	touch(dir, "blobs/50.blob");
	/* two tables refer to blob file 50 */
	vedit_init(&e);
	assert_int_equal(vedit_add_blob(&e, 1, &bm), FR_OK);
	meta_for(&m, 60, 5);
	m.blob_refs = refs;
	m.blob_ref_cnt = 1;
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	refs[0].bytes = 200;
	meta_for(&m, 61, 6);
	m.blob_refs = refs;
	m.blob_ref_cnt = 1;
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	struct tree_version *v = vset_current(vs, 1);
	assert_int_equal(v->blob_cnt, 1);
	assert_int_equal(tv_blob_live_bytes(v, 50), 500);
	uint64_t cnt, bytes, stale;
	tv_blob_stats(v, &cnt, &bytes, &stale);
	assert_int_equal(cnt, 1);
	assert_int_equal(bytes, 1000);
	assert_int_equal(stale, 400);
	assert_false(tv_blob_is_stale(v, v->blobs[0], 50));
	assert_true(tv_blob_is_stale(v, v->blobs[0], 40));
	assert_false(tv_blob_is_stale(v, v->blobs[0], 0));
	tv_unref(v);

	/* a table referring to a blob file the tree does not have */
	vedit_init(&e);
	meta_for(&m, 62, 7);
	m.blob_refs = refs + 1;
	m.blob_ref_cnt = 1;
	assert_int_equal(vedit_add_table(&e, 1, 1, &m), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_INVALID);
	vedit_fini(&e);

	/* the state survives a reopen (full-state edit with ADD_TABLE_BLOBS and ADD_BLOB) */
	vset_close(vs);
	vs = open_vs(dir, false);
	assert_int_equal(vset_delete_orphans(vs, &err), FR_OK);
	assert_true(file_exists(dir, "blobs/50.blob"));
	v = vset_current(vs, 1);
	assert_int_equal(v->blob_cnt, 1);
	assert_int_equal(v->blobs[0]->meta.value_bytes, 900);
	assert_int_equal(tv_blob_live_bytes(v, 50), 500);

	/* one table goes: the file stays, 700 bytes stale; the pinned old version is unchanged */
	assert_int_equal(del1(vs, 1, 1, 60, &err), FR_OK);
	struct tree_version *v2 = vset_current(vs, 1);
	assert_int_equal(tv_blob_live_bytes(v2, 50), 200);
	assert_int_equal(tv_blob_live_bytes(v, 50), 500);
	tv_unref(v2);
	/* the last one goes: the blob file leaves, and its file goes once v lets go */
	assert_int_equal(del1(vs, 1, 1, 61, &err), FR_OK);
	v2 = vset_current(vs, 1);
	assert_int_equal(v2->blob_cnt, 0);
	tv_unref(v2);
	assert_true(file_exists(dir, "blobs/50.blob"));
	tv_unref(v);
	assert_false(file_exists(dir, "blobs/50.blob"));
	vset_close(vs);
}

/* Allocation failures at every point of vset_open and vset_apply: FR_NOMEM, no leak, and
 * the state on disk stays whole. */
static void test_manifest_nomem(void **state)
{
	const char *dir = dir_of(state);
	struct vset *vs;
	struct vedit e;
	struct sst_meta m;
	fr_error err;
	fr_status rc;
	unsigned long n;

	vs = open_vs(dir, true);
	assert_int_equal(add1(vs, 1, 0, 1, 5, &err), FR_OK);
	assert_int_equal(add1(vs, 2, 1, 2, 5, &err), FR_OK);
	assert_int_equal(add1(vs, 2, 1, 3, 5, &err), FR_OK);
	vset_close(vs);

	for (n = 1;; n++) {
		fr_alloc_fail_at(n);
		rc = vset_open(io_posix(), dir, false, false, &vs, &err);
		fr_alloc_fail_at(0);
		if (rc == FR_OK)
			break;
		assert_int_equal(rc, FR_NOMEM);
		assert_null(vs);
	}
	assert_true(n > 5);
	vset_close(vs);

	for (n = 1;; n++) {
		uint64_t id = 10 + n;

		vs = open_vs(dir, false);
		vedit_init(&e);
		meta_for(&m, id, 9);
		assert_int_equal(vedit_add_table(&e, 2, 1, &m), FR_OK);
		assert_int_equal(vedit_del_table(&e, 2, 1, 3), FR_OK);
		assert_int_equal(vedit_set_flushed(&e, 2, 9), FR_OK);
		fr_alloc_fail_at(n);
		rc = vset_apply(vs, &e, &err);
		fr_alloc_fail_at(0);
		vedit_fini(&e);
		struct tree_version *v = vset_current(vs, 2);
		if (rc == FR_OK) {
			assert_int_equal(v->level_cnt[1], 2);
			assert_int_equal(v->flushed_seqno, 9);
			tv_unref(v);
			vset_close(vs);
			break;
		}
		assert_int_equal(rc, FR_NOMEM);
		/* nothing published */
		assert_int_equal(v->level_cnt[1], 2);
		assert_int_equal(v->levels[1][1]->meta.id, 3);
		tv_unref(v);
		vset_close(vs);
	}
	assert_true(n > 3);
	vs = open_vs(dir, false);
	struct tree_version *v = vset_current(vs, 2);
	assert_int_equal(v->level_cnt[1], 2);
	assert_int_equal(v->levels[1][1]->meta.id, 10 + n);
	tv_unref(v);
	vset_close(vs);
}

struct race {
	struct vset *vs;
	bool stop;
	uint64_t reads;
};

static void *reader_thread(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct tree_version *v = vset_current(r->vs, 1);
		uint64_t bytes = 0;

		for (size_t l = 0; l < LEVEL_CNT; l++)
			for (size_t i = 0; i < v->level_cnt[l]; i++)
				bytes += v->levels[l][i]->meta.file_size;
		if (bytes != tv_table_bytes(v))
			abort();
		tv_unref(v);
		r->reads++;
	}
	return NULL;
}

static void test_manifest_concurrent_readers(void **state)
{
	const char *dir = dir_of(state);
	struct race r = { 0 };
	pthread_t th;
	fr_error err;

	r.vs = open_vs(dir, true);
	assert_int_equal(pthread_create(&th, NULL, reader_thread, &r), 0);
	for (uint64_t i = 1; i <= 150; i++) {
		uint64_t id = vset_new_file_id(r.vs);

		touch_table(dir, id);
		assert_int_equal(add1(r.vs, 1, 0, id, i, &err), FR_OK);
		if (i % 3 == 0)
			assert_int_equal(del1(r.vs, 1, 0, id - 1, &err), FR_OK);
	}
	__atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_true(r.reads > 0);
	struct tree_version *v = vset_current(r.vs, 1);
	assert_int_equal(tv_table_cnt(v), 100);
	for (size_t i = 0; i < v->level_cnt[0]; i++)
		assert_true(table_exists(dir, v->levels[0][i]->meta.id));
	tv_unref(v);
	/* deleted tables are gone */
	assert_false(table_exists(dir, 2));
	vset_close(r.vs);
}

/* ---- a state written elsewhere (checkpoints) ---- */

struct files_seen {
	char rel[16][64];
	uint64_t size[16];
	size_t cnt;
};

static fr_status see_file(void *ctx, const char *path, const char *rel, uint64_t size,
			  fr_error *err)
{
	struct files_seen *f = ctx;

	(void)err;
	assert_true(f->cnt < 16);
	assert_non_null(strstr(path, rel)); /* the relative path names the same file */
	snprintf(f->rel[f->cnt], sizeof(f->rel[0]), "%s", rel);
	f->size[f->cnt++] = size;
	return f->cnt == 3 ? FR_NO_SPACE : FR_OK; /* a callback's failure ends the walk */
}

/* vset_write_state writes exactly the versions it is given, while the vset moves on; the
 * directory opens to the same tables, flushed seqnos and counters; tv_files_each lists them. */
static void test_manifest_write_state(void **state)
{
	char *dir = dir_of(state);
	char src[PATH_MAX], dst[PATH_MAX];
	struct tree_version *vers[2];
	struct vset *vs, *cp;
	struct vedit e;
	fr_error err;

	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	assert_int_equal(vset_open(io_posix(), src, true, false, &vs, &err), FR_OK);
	for (uint64_t id = 1; id <= 4; id++)
		assert_int_equal(add1(vs, id <= 2 ? 0 : 7, id == 4 ? 1 : 0, id, id * 10, &err),
				 FR_OK);
	vedit_init(&e);
	assert_int_equal(vedit_set_flushed(&e, 7, 35), FR_OK);
	assert_int_equal(vset_apply(vs, &e, &err), FR_OK);
	vedit_fini(&e);
	vers[0] = vset_current(vs, 0);
	vers[1] = vset_current(vs, 7);
	uint64_t next_id = vset_new_file_id(vs) + 1;

	/* the vset moves on after the cut */
	assert_int_equal(add1(vs, 7, 0, 9, 90, &err), FR_OK);
	assert_int_equal(del1(vs, 0, 0, 1, &err), FR_OK);

	struct files_seen fs = {.cnt = 0};
	assert_int_equal(tv_files_each(vers[1], see_file, &fs, &err), FR_OK);
	assert_int_equal(fs.cnt, 2);
	assert_string_equal(fs.rel[0], "tables/3.sst");
	assert_string_equal(fs.rel[1], "tables/4.sst");
	assert_int_equal(fs.size[1], 4096 + 4);
	assert_int_equal(tv_files_each(vers[0], see_file, &fs, &err), FR_NO_SPACE);
	assert_int_equal(fs.cnt, 3);

	assert_int_equal(mkdir(dst, 0755), 0);
	assert_int_equal(vset_write_state(vs, dst, vers, 2, 77, &err), FR_OK);
	tv_unref(vers[0]);
	tv_unref(vers[1]);
	vset_close(vs);
	assert_true(file_exists(dst, "CURRENT"));
	assert_true(file_exists(dst, "MANIFEST-1"));

	assert_int_equal(vset_open(io_posix(), dst, false, true, &cp, &err), FR_OK);
	assert_int_equal(vset_last_seqno(cp), 77);
	assert_true(vset_new_file_id(cp) >= next_id);
	struct tree_version *v = vset_current(cp, 0);
	assert_int_equal(tv_table_cnt(v), 2); /* table 1 still there: deleted after the cut */
	assert_int_equal(v->levels[0][0]->meta.id + v->levels[0][1]->meta.id, 3);
	tv_unref(v);
	v = vset_current(cp, 7);
	assert_int_equal(v->flushed_seqno, 35);
	assert_int_equal(v->level_cnt[0], 1); /* table 9 came after the cut */
	assert_int_equal(v->levels[0][0]->meta.id, 3);
	assert_int_equal(v->level_cnt[1], 1);
	assert_int_equal(v->levels[1][0]->meta.id, 4);
	assert_int_equal(v->levels[1][0]->meta.entry_cnt, 12);
	tv_unref(v);
	vset_close(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
		T(test_manifest_create_empty),
		T(test_manifest_replay_model),
		T(test_manifest_torn_tail),
		T(test_manifest_corrupt_middle),
		T(test_manifest_bad_edit_in_file),
		T(test_manifest_orphans),
		T(test_manifest_obsolete_after_last_ref),
		T(test_manifest_rejects_bad_edits),
		T(test_manifest_rollover),
		T(test_manifest_write_failure_poisons),
		T(test_manifest_rollover_failure),
		T(test_manifest_blob_liveness),
		T(test_manifest_nomem),
		T(test_manifest_concurrent_readers),
		T(test_manifest_write_state),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
