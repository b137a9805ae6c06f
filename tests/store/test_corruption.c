/* SPDX-License-Identifier: MIT */
/*
 * test_corruption.c - bad bytes on disk: damaged tables, manifests and journals must give
 * FR_CORRUPTION naming the file (or, for a torn journal tail, a clean open without the torn
 * record), never wrong data, a crash or a hang.
 *
 * The targeted tests build a database on the real file system with data in tables (after
 * fr_db_flush) and in the journal, and damage copies of its directory: a byte of a table's data
 * block, a byte in the middle of the MANIFEST, a byte of a journal record that is not the last,
 * the journal cut short in its last record.
 *
 * The sweep builds a small database in memory (io_mem) and, for every file, flips each byte in
 * turn (and truncates at many lengths) in a fresh copy, then opens it and reads everything with
 * point reads and an iterator. The outcome must be an error status, or FR_OK with the exact data
 * of the database after a prefix of its journal records: all of them, or all but the last when
 * that one was damaged (a torn tail), or any prefix when the journal was cut short.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "fractio.h"
#include "io/io.h"
#include "io/io_mem.h"
#include "testutil.h"

#define WATCHDOG_S 100

/* ---- files on the real file system ---- */

static void *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	uint8_t *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void write_whole(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Copies directory src (two levels: files and subdirectories of files) to dst, without LOCK. */
static void copy_tree(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *de;
	char s[8192], t[8192];
	assert_non_null(d);
	mkdir(dst, 0755);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "LOCK"))
			continue;
		snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
		snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
		struct stat st;
		assert_int_equal(stat(s, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			copy_tree(s, t);
		} else {
			size_t n;
			void *p = read_whole(s, &n);
			write_whole(t, p, n);
			free(p);
		}
	}
	closedir(d);
}

static void flip_at(const char *path, uint64_t off)
{
	size_t n;
	uint8_t *p = read_whole(path, &n);
	assert_true(off < n);
	p[off] ^= 0x20;
	write_whole(path, p, n);
	free(p);
}

static void truncate_to(const char *path, uint64_t len)
{
	assert_int_equal(truncate(path, (off_t)len), 0);
}

/* The file of dir/sub with the largest size whose name ends in suffix (or starts with it when
 * prefix): its path into out. */
static void find_file(const char *dir, const char *sub, const char *match, bool prefix,
		      char *out, size_t len)
{
	char d[2048];
	snprintf(d, sizeof(d), "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
	DIR *dh = opendir(d);
	struct dirent *de;
	off_t best = -1;
	assert_non_null(dh);
	while ((de = readdir(dh))) {
		size_t nl = strlen(de->d_name), ml = strlen(match);
		bool ok = prefix ? !strncmp(de->d_name, match, ml)
				 : nl > ml && !strcmp(de->d_name + nl - ml, match);
		if (!ok)
			continue;
		char p[4096];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		assert_int_equal(stat(p, &st), 0);
		if (st.st_size > best) {
			best = st.st_size;
			snprintf(out, len, "%s", p);
		}
	}
	closedir(dh);
	assert_true(best >= 0);
}

/* ---- the database of the targeted tests ---- */

#define T_KEYS 400  /* in tables */
#define J_KEYS 40   /* in the journal only, one commit each */

static size_t t_val(unsigned i, char *out)
{
	size_t n = 60 + i % 90;
	int k = snprintf(out, 32, "value-%u:", i);
	for (size_t j = (size_t)k; j < n; j++)
		out[j] = (char)('a' + (i * 7 + j) % 26);
	return n;
}

static void t_key(unsigned i, char *out, size_t n)
{
	snprintf(out, n, "key%05u", i);
}

static fr_db *open_db(const char *dir, fr_status *rc, fr_error *e)
{
	fr_db_options o;
	fr_db *db = NULL;
	fr_db_options_init(&o);
	o.background = false;
	o.create_if_missing = true;
	*rc = fr_db_open(dir, &o, &db, e);
	return *rc ? NULL : db;
}

/* Keys 0..T_KEYS-1 flushed to tables in two flushes (so the MANIFEST holds several edits),
 * keys T_KEYS..T_KEYS+J_KEYS-1 in the journal only, one record each, "zlast" the last one. */
static char *build_db(void)
{
	char *dir = tu_tmpdir("corrupt-src");
	fr_status rc;
	fr_error e;
	fr_db *db = open_db(dir, &rc, &e);
	fr_keyspace *ks;
	fr_keyspace_options ko;
	char key[32], val[200];
	assert_non_null(db);
	fr_keyspace_options_init(&ko);
	ko.compress = false; /* damage lands in raw key and value bytes */
	ko.block_size = 1024;
	assert_int_equal(fr_keyspace_open(db, "alpha", &ko, &ks, &e), FR_OK);
	for (unsigned i = 0; i < T_KEYS; i++) {
		t_key(i, key, sizeof(key));
		size_t n = t_val(i, val);
		assert_int_equal(fr_put(ks, key, strlen(key), val, n, &e), FR_OK);
		if (i == T_KEYS / 2)
			assert_int_equal(fr_db_flush(db, &e), FR_OK);
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	for (unsigned i = T_KEYS; i < T_KEYS + J_KEYS; i++) {
		t_key(i, key, sizeof(key));
		size_t n = t_val(i, val);
		assert_int_equal(fr_put(ks, key, strlen(key), val, n, &e), FR_OK);
	}
	assert_int_equal(fr_put(ks, "zlast", 5, "the last record", 15, &e), FR_OK);
	fr_keyspace_stats st;
	assert_int_equal(fr_keyspace_stats_get(ks, &st, &e), FR_OK);
	assert_true(st.table_cnt >= 2);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	return dir;
}

static char *copy_db(const char *src, const char *tag)
{
	char *dir = tu_tmpdir(tag);
	copy_tree(src, dir);
	return dir;
}

struct read_result {
	unsigned ok, corrupt, not_found;
	char corrupt_msg[FR_ERROR_MSG_MAX];
};

/* Point reads of keys [0, cnt): every OK must carry the right value. */
static void read_all(fr_keyspace *ks, unsigned cnt, struct read_result *r)
{
	char key[32], val[200];
	fr_error e;
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < cnt; i++) {
		void *v;
		size_t vl;
		t_key(i, key, sizeof(key));
		fr_status rc = fr_get(ks, key, strlen(key), &v, &vl, &e);
		if (rc == FR_OK) {
			size_t n = t_val(i, val);
			if (vl != n || memcmp(v, val, n))
				fail_msg("%s: wrong value read back", key);
			fr_free(v);
			r->ok++;
		} else if (rc == FR_CORRUPTION) {
			r->corrupt++;
			snprintf(r->corrupt_msg, sizeof(r->corrupt_msg), "%s", e.msg);
		} else if (rc == FR_NOT_FOUND) {
			r->not_found++;
		} else {
			fail_msg("%s: %s (%s)", key, fr_status_str(rc), e.msg);
		}
	}
}

static void test_corruption_table_data_block(void **state)
{
	const char *src = *state;
	char *dir = copy_db(src, "corrupt-sst");
	char sst[4096];
	fr_status rc;
	fr_error e;
	find_file(dir, "tables", ".sst", false, sst, sizeof(sst));
	flip_at(sst, 100); /* inside the first data block (data blocks come first) */
	fr_db *db = open_db(dir, &rc, &e);
	if (!db)
		fail_msg("open: %s (%s)", fr_status_str(rc), e.msg);
	fr_keyspace *ks;
	assert_int_equal(fr_keyspace_open(db, "alpha", NULL, &ks, &e), FR_OK);
	struct read_result r;
	read_all(ks, T_KEYS + J_KEYS, &r);
	/* the keys of the damaged block fail, naming the table; the others read */
	assert_true(r.corrupt > 0);
	assert_int_equal(r.not_found, 0);
	assert_true(r.ok >= J_KEYS + T_KEYS / 4);
	const char *base = strrchr(sst, '/') + 1;
	if (!strstr(r.corrupt_msg, base))
		fail_msg("the message does not name %s: %s", base, r.corrupt_msg);
	/* an iteration over everything stops with the same corruption */
	fr_iter *it;
	rc = fr_iter_open(ks, NULL, &it, &e);
	unsigned seen = 0;
	while (!rc && fr_iter_valid(it)) {
		seen++;
		rc = fr_iter_next(it, &e);
	}
	if (rc != FR_CORRUPTION)
		fail_msg("iteration ended with %s after %u keys", fr_status_str(rc), seen);
	if (!strstr(e.msg, base))
		fail_msg("the iterator's message does not name %s: %s", base, e.msg);
	fr_iter_close(it);
	fr_keyspace_close(ks);
	fr_db_close(db, &e);
	tu_rmtree_free(dir);
}

/* The offset of the second record of a record file (record header: u32 len, u32 check, u64
 * checksum; the file header is 24 bytes). */
static uint64_t second_record(const char *path)
{
	size_t n;
	uint8_t *p = read_whole(path, &n);
	assert_true(n > 24 + 16);
	uint32_t len = (uint32_t)p[24] | (uint32_t)p[25] << 8 | (uint32_t)p[26] << 16 |
		       (uint32_t)p[27] << 24;
	free(p);
	assert_true(24 + 16 + (uint64_t)len < n);
	return 24 + 16 + len;
}

/* The offset of the last record of a record file. */
static uint64_t last_record(const char *path)
{
	size_t n;
	uint8_t *p = read_whole(path, &n);
	uint64_t off = 24, last = 0;
	while (off + 16 <= n) {
		uint32_t len = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
			       (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24;
		if (off + 16 + len > n)
			break;
		last = off;
		off += 16 + len;
	}
	free(p);
	assert_int_equal(off, n);
	return last;
}

static void test_corruption_manifest_middle(void **state)
{
	const char *src = *state;
	char *dir = copy_db(src, "corrupt-mfst");
	char mf[4096];
	fr_status rc;
	fr_error e;
	find_file(dir, NULL, "MANIFEST-", true, mf, sizeof(mf));
	uint64_t second = second_record(mf);
	uint64_t last = last_record(mf);
	assert_true(second < last); /* at least three records: the first is in the middle */
	flip_at(mf, 24 + 16 + (second - 24 - 16) / 2);
	fr_db *db = open_db(dir, &rc, &e);
	assert_null(db);
	assert_int_equal(rc, FR_CORRUPTION);
	if (!strstr(e.msg, "MANIFEST"))
		fail_msg("the message does not name the manifest: %s", e.msg);
	/* and a damaged record in the middle of the later ones too */
	tu_rmtree_free(dir);
	dir = copy_db(src, "corrupt-mfst2");
	find_file(dir, NULL, "MANIFEST-", true, mf, sizeof(mf));
	flip_at(mf, second + 20);
	db = open_db(dir, &rc, &e);
	assert_null(db);
	assert_int_equal(rc, FR_CORRUPTION);
	if (!strstr(e.msg, "MANIFEST"))
		fail_msg("the message does not name the manifest: %s", e.msg);
	tu_rmtree_free(dir);
}

static void test_corruption_journal_record(void **state)
{
	const char *src = *state;
	char *dir = copy_db(src, "corrupt-jnl");
	char jf[4096];
	fr_status rc;
	fr_error e;
	find_file(dir, "journal", ".jnl", false, jf, sizeof(jf));
	uint64_t last = last_record(jf);
	/* a record in the middle of the unflushed ones: the body of the one before the last */
	size_t n;
	uint8_t *p = read_whole(jf, &n);
	uint64_t off = 24, prev = 0;
	while (off < last) {
		prev = off;
		off += 16 + ((uint32_t)p[off] | (uint32_t)p[off + 1] << 8 |
			     (uint32_t)p[off + 2] << 16 | (uint32_t)p[off + 3] << 24);
	}
	free(p);
	flip_at(jf, prev + 16 + 3);
	fr_db *db = open_db(dir, &rc, &e);
	assert_null(db);
	assert_int_equal(rc, FR_CORRUPTION);
	const char *base = strrchr(jf, '/') + 1;
	if (!strstr(e.msg, base))
		fail_msg("the message does not name %s: %s", base, e.msg);
	tu_rmtree_free(dir);

	/* the first record (already flushed to a table) is checked all the same */
	dir = copy_db(src, "corrupt-jnl2");
	find_file(dir, "journal", ".jnl", false, jf, sizeof(jf));
	flip_at(jf, 24 + 16 + 1);
	db = open_db(dir, &rc, &e);
	assert_null(db);
	assert_int_equal(rc, FR_CORRUPTION);
	if (!strstr(e.msg, ".jnl"))
		fail_msg("the message does not name the journal: %s", e.msg);
	tu_rmtree_free(dir);
}

static void test_corruption_journal_torn_tail(void **state)
{
	const char *src = *state;
	char *dir = copy_db(src, "corrupt-torn");
	char jf[4096];
	fr_status rc;
	fr_error e;
	find_file(dir, "journal", ".jnl", false, jf, sizeof(jf));
	uint64_t last = last_record(jf);
	size_t n;
	free(read_whole(jf, &n));
	truncate_to(jf, last + (n - last) / 2);
	fr_db *db = open_db(dir, &rc, &e);
	if (!db)
		fail_msg("open after a torn tail: %s (%s)", fr_status_str(rc), e.msg);
	fr_keyspace *ks;
	assert_int_equal(fr_keyspace_open(db, "alpha", NULL, &ks, &e), FR_OK);
	struct read_result r;
	read_all(ks, T_KEYS + J_KEYS, &r);
	assert_int_equal(r.ok, T_KEYS + J_KEYS);
	assert_int_equal(fr_get(ks, "zlast", 5, NULL, NULL, &e), FR_NOT_FOUND);
	/* the database goes on: a new write survives a reopen next to the old data */
	assert_int_equal(fr_put(ks, "after", 5, "x", 1, &e), FR_OK);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	db = open_db(dir, &rc, &e);
	assert_non_null(db);
	assert_int_equal(fr_keyspace_open(db, "alpha", NULL, &ks, &e), FR_OK);
	read_all(ks, T_KEYS + J_KEYS, &r);
	assert_int_equal(r.ok, T_KEYS + J_KEYS);
	assert_int_equal(fr_get(ks, "after", 5, NULL, NULL, &e), FR_OK);
	assert_int_equal(fr_get(ks, "zlast", 5, NULL, NULL, &e), FR_NOT_FOUND);
	fr_keyspace_close(ks);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	tu_rmtree_free(dir);
}

/* ---- the sweep, in memory ---- */

#define SW_DIR "/db"
#define SW_A 24 /* alpha keys in tables */
#define SW_B 12 /* beta keys in tables */

struct sw_file {
	char path[128];
	uint8_t *data;
	size_t len;
};

struct sw_db {
	struct sw_file files[32];
	size_t cnt;
};

/* The journal commits after the flush, in order; the model is the state after a prefix. */
enum { J_PUT_A, J_DEL_A, J_RANGE_B, J_PUT_B };
static const struct {
	int op;
	const char *k, *k2, *v;
} sw_ops[] = {
	{J_PUT_A, "j0", NULL, "journal zero"},
	{J_PUT_A, "j1", NULL, "journal one"},
	{J_DEL_A, "a03", NULL, NULL},
	{J_RANGE_B, "b02", "b06", NULL},
	{J_PUT_B, "b04", NULL, "written again"},
	{J_PUT_A, "zlast", NULL, "the last record"},
};
#define SW_OPS (sizeof(sw_ops) / sizeof(sw_ops[0]))

struct kv {
	char k[16];
	char v[64];
};

struct sw_state {
	struct kv a[SW_A + SW_OPS], b[SW_B + SW_OPS];
	size_t a_cnt, b_cnt;
};

static void sw_val(char ks, unsigned i, char *out, size_t n)
{
	snprintf(out, n, "%c-value-%02u-%.*s", ks, i, (int)(i % 20), "abcdefghijklmnopqrstuvwxyz");
}

static void kv_set(struct kv *a, size_t *cnt, const char *k, const char *v)
{
	size_t i = 0;
	while (i < *cnt && strcmp(a[i].k, k) < 0)
		i++;
	if (i < *cnt && !strcmp(a[i].k, k)) {
		snprintf(a[i].v, sizeof(a[i].v), "%s", v);
		return;
	}
	memmove(a + i + 1, a + i, (*cnt - i) * sizeof(*a));
	snprintf(a[i].k, sizeof(a[i].k), "%s", k);
	snprintf(a[i].v, sizeof(a[i].v), "%s", v);
	(*cnt)++;
}

static void kv_del(struct kv *a, size_t *cnt, const char *lo, const char *hi)
{
	size_t n = 0;
	for (size_t i = 0; i < *cnt; i++)
		if (strcmp(a[i].k, lo) < 0 || (hi ? strcmp(a[i].k, hi) >= 0 : strcmp(a[i].k, lo)))
			a[n++] = a[i];
	*cnt = n;
}

/* The state after the flushed data and the first j journal commits. */
static void sw_state_at(size_t j, struct sw_state *s)
{
	char k[16], v[64];
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < SW_A; i++) {
		snprintf(k, sizeof(k), "a%02u", i);
		sw_val('a', i, v, sizeof(v));
		kv_set(s->a, &s->a_cnt, k, v);
	}
	for (unsigned i = 0; i < SW_B; i++) {
		snprintf(k, sizeof(k), "b%02u", i);
		sw_val('b', i, v, sizeof(v));
		kv_set(s->b, &s->b_cnt, k, v);
	}
	for (size_t i = 0; i < j; i++) {
		switch (sw_ops[i].op) {
		case J_PUT_A:
			kv_set(s->a, &s->a_cnt, sw_ops[i].k, sw_ops[i].v);
			break;
		case J_DEL_A:
			kv_del(s->a, &s->a_cnt, sw_ops[i].k, NULL);
			break;
		case J_RANGE_B:
			kv_del(s->b, &s->b_cnt, sw_ops[i].k, sw_ops[i].k2);
			break;
		case J_PUT_B:
			kv_set(s->b, &s->b_cnt, sw_ops[i].k, sw_ops[i].v);
			break;
		}
	}
}

static const char *kv_find(const struct kv *a, size_t cnt, const char *k, size_t kl)
{
	for (size_t i = 0; i < cnt; i++)
		if (strlen(a[i].k) == kl && !memcmp(a[i].k, k, kl))
			return a[i].v;
	return NULL;
}

static int sw_collect(void *ctx, const char *name)
{
	char (*names)[64] = ctx;
	for (int i = 0; i < 16; i++) {
		if (!names[i][0]) {
			snprintf(names[i], 64, "%s", name);
			return 0;
		}
	}
	return 1;
}

static void sw_snapshot_dir(struct fr_io *io, const char *dir, struct sw_db *out)
{
	char names[16][64];
	fr_error e;
	memset(names, 0, sizeof(names));
	assert_int_equal(io_list(io, dir, sw_collect, names, &e), FR_OK);
	for (int i = 0; i < 16 && names[i][0]; i++) {
		char p[256];
		int pn = snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		assert_true(pn > 0 && (size_t)pn < sizeof(p));
		if (!strcmp(names[i], "tables") || !strcmp(names[i], "journal") ||
		    !strcmp(names[i], "blobs")) {
			sw_snapshot_dir(io, p, out);
			continue;
		}
		if (!strcmp(names[i], "LOCK"))
			continue;
		void *data;
		size_t len;
		assert_int_equal(io_read_file(io, p, &data, &len, &e), FR_OK);
		assert_true(out->cnt < 32);
		struct sw_file *f = &out->files[out->cnt++];
		assert_true(strlen(p) < sizeof(f->path));
		snprintf(f->path, sizeof(f->path), "%.127s", p);
		f->data = malloc(len ? len : 1);
		assert_non_null(f->data);
		memcpy(f->data, data, len);
		f->len = len;
		fr_free(data);
	}
}

static void sw_build(struct sw_db *out)
{
	struct fr_io *io = io_mem_new();
	fr_db_options o;
	fr_db *db;
	fr_keyspace *a, *b;
	fr_keyspace_options ko;
	fr_error e;
	char k[16], v[64];
	fr_db_options_init(&o);
	o.io = io;
	o.background = false;
	assert_int_equal(fr_db_open(SW_DIR, &o, &db, &e), FR_OK);
	fr_keyspace_options_init(&ko);
	ko.compress = false;
	ko.block_size = 200; /* several data blocks */
	assert_int_equal(fr_keyspace_open(db, "alpha", &ko, &a, &e), FR_OK);
	fr_keyspace_options_init(&ko);
	assert_int_equal(fr_keyspace_open(db, "beta", &ko, &b, &e), FR_OK);
	for (unsigned i = 0; i < SW_A; i++) {
		snprintf(k, sizeof(k), "a%02u", i);
		sw_val('a', i, v, sizeof(v));
		assert_int_equal(fr_put(a, k, strlen(k), v, strlen(v), &e), FR_OK);
	}
	for (unsigned i = 0; i < SW_B; i++) {
		snprintf(k, sizeof(k), "b%02u", i);
		sw_val('b', i, v, sizeof(v));
		assert_int_equal(fr_put(b, k, strlen(k), v, strlen(v), &e), FR_OK);
	}
	assert_int_equal(fr_db_flush(db, &e), FR_OK);
	for (size_t i = 0; i < SW_OPS; i++) {
		const char *x = sw_ops[i].k, *y = sw_ops[i].k2, *z = sw_ops[i].v;
		fr_status rc = FR_OK;
		switch (sw_ops[i].op) {
		case J_PUT_A:
			rc = fr_put(a, x, strlen(x), z, strlen(z), &e);
			break;
		case J_DEL_A:
			rc = fr_remove(a, x, strlen(x), &e);
			break;
		case J_RANGE_B:
			rc = fr_delete_range(b, x, strlen(x), y, strlen(y), &e);
			break;
		case J_PUT_B:
			rc = fr_put(b, x, strlen(x), z, strlen(z), &e);
			break;
		}
		assert_int_equal(rc, FR_OK);
	}
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	assert_int_equal(fr_db_close(db, &e), FR_OK);
	memset(out, 0, sizeof(*out));
	sw_snapshot_dir(io, SW_DIR, out);
	io_destroy(io);
}

static struct fr_io *sw_copy(const struct sw_db *d, size_t which, uint64_t off, bool truncate,
			     uint64_t trunc_len)
{
	struct fr_io *io = io_mem_new();
	fr_error e;
	assert_non_null(io);
	assert_int_equal(io_mkdir(io, SW_DIR, &e), FR_OK);
	assert_int_equal(io_mkdir(io, SW_DIR "/tables", &e), FR_OK);
	assert_int_equal(io_mkdir(io, SW_DIR "/journal", &e), FR_OK);
	for (size_t i = 0; i < d->cnt; i++) {
		const struct sw_file *f = &d->files[i];
		struct io_file *h;
		size_t len = f->len;
		assert_int_equal(io_open(io, f->path, IO_RDWR | IO_CREATE, &h, &e), FR_OK);
		if (i == which && truncate)
			len = (size_t)trunc_len;
		if (len)
			assert_int_equal(io_pwrite(h, f->data, len, 0, &e), FR_OK);
		if (i == which && !truncate) {
			uint8_t x = f->data[off] ^ (uint8_t)(1u << (off % 8));
			assert_int_equal(io_pwrite(h, &x, 1, off, &e), FR_OK);
		}
		io_close(h);
	}
	return io;
}

struct sw_tally {
	uint64_t trials, ok, errors[16];
};

/* Reads keyspace `name` of the opened db and narrows *mask, the journal prefixes (bit j: the
 * first j journal commits) the data read so far fits; none left is wrong data. *rc_out is the
 * first error met (FR_OK when every read succeeded). */
static void sw_check_ks(fr_db *db, const char *name, bool is_a, const char *what,
			fr_status *rc_out, uint32_t *mask)
{
	fr_keyspace *ks;
	fr_error e;
	fr_status rc = fr_keyspace_open(db, name, NULL, &ks, &e);
	if (rc) {
		*rc_out = rc;
		return;
	}
	struct sw_state states[SW_OPS + 1];
	for (size_t j = 0; j <= SW_OPS; j++)
		sw_state_at(j, &states[j]);
	/* iterate: the result must be one of the allowed states exactly */
	fr_iter *it;
	struct kv seen[SW_A + SW_B + SW_OPS];
	size_t seen_cnt = 0;
	rc = fr_iter_open(ks, NULL, &it, &e);
	while (!rc && fr_iter_valid(it)) {
		size_t kl, vl;
		const char *k = fr_iter_key(it, &kl);
		const char *v = fr_iter_value(it, &vl);
		if (seen_cnt == SW_A + SW_B + SW_OPS || kl >= 16 || vl >= 64)
			fail_msg("%s: %s: unexpected entry", what, name);
		memcpy(seen[seen_cnt].k, k, kl);
		seen[seen_cnt].k[kl] = 0;
		memcpy(seen[seen_cnt].v, v, vl);
		seen[seen_cnt].v[vl] = 0;
		seen_cnt++;
		rc = fr_iter_next(it, &e);
	}
	fr_iter_close(it);
	if (!rc) {
		uint32_t fit = 0;
		for (size_t j = 0; j <= SW_OPS; j++) {
			const struct kv *x = is_a ? states[j].a : states[j].b;
			size_t xc = is_a ? states[j].a_cnt : states[j].b_cnt;
			bool same = xc == seen_cnt;
			for (size_t i = 0; i < xc && same; i++)
				same = !strcmp(x[i].k, seen[i].k) && !strcmp(x[i].v, seen[i].v);
			if (same)
				fit |= 1u << j;
		}
		if (!(fit & *mask))
			fail_msg("%s: %s iterates to a state the database never had (%zu keys)",
				 what, name, seen_cnt);
		*mask &= fit;
	} else if (!*rc_out) {
		*rc_out = rc;
	}
	/* point reads: each value and each not-found must fit an allowed state */
	char k[16];
	for (unsigned i = 0; i < (is_a ? SW_A : SW_B) + SW_OPS; i++) {
		if (i < (is_a ? SW_A : SW_B))
			snprintf(k, sizeof(k), "%c%02u", is_a ? 'a' : 'b', i);
		else
			snprintf(k, sizeof(k), "%s", sw_ops[i - (is_a ? SW_A : SW_B)].k);
		void *v;
		size_t vl;
		rc = fr_get(ks, k, strlen(k), &v, &vl, &e);
		if (rc && rc != FR_NOT_FOUND) {
			if (!*rc_out)
				*rc_out = rc;
			continue;
		}
		uint32_t fit = 0;
		for (size_t j = 0; j <= SW_OPS; j++) {
			const char *want = kv_find(is_a ? states[j].a : states[j].b,
						   is_a ? states[j].a_cnt : states[j].b_cnt, k,
						   strlen(k));
			bool same = rc == FR_NOT_FOUND ? want == NULL
						       : want && strlen(want) == vl &&
								 !memcmp(want, v, vl);
			if (same)
				fit |= 1u << j;
		}
		if (!rc)
			fr_free(v);
		if (!(fit & *mask))
			fail_msg("%s: %s: get %s gave %s, which no allowed state has", what, name,
				 k, fr_status_str(rc));
		*mask &= fit;
	}
	fr_keyspace_close(ks);
}

/* One damaged copy: open, read everything, close. */
static void sw_trial(const struct sw_db *d, size_t which, uint64_t off, bool truncate,
		     size_t min_j, struct sw_tally *t)
{
	struct fr_io *io = sw_copy(d, which, off, truncate, off);
	fr_db_options o;
	fr_db *db;
	fr_error e;
	char what[192];
	snprintf(what, sizeof(what), "%s %s at %" PRIu64, d->files[which].path,
		 truncate ? "cut" : "flipped", off);
	fr_db_options_init(&o);
	o.io = io;
	o.background = false;
	o.create_if_missing = false;
	fr_status rc = fr_db_open(SW_DIR, &o, &db, &e);
	t->trials++;
	if (!rc) {
		/* the journal prefixes allowed: min_j..all */
		uint32_t mask = ((1u << (SW_OPS + 1)) - 1) & ~((1u << min_j) - 1);
		fr_status first = FR_OK;
		sw_check_ks(db, "alpha", true, what, &first, &mask);
		sw_check_ks(db, "beta", false, what, &first, &mask);
		rc = first;
		fr_error ce;
		fr_db_close(db, &ce);
	}
	if (rc == FR_OK)
		t->ok++;
	else
		t->errors[rc < 16 ? rc : 15]++;
	io_destroy(io);
}

static void sw_print(const char *what, const struct sw_tally *t)
{
	fprintf(stderr, "# %s: %" PRIu64 " trials, %" PRIu64 " read back correctly", what,
		t->trials, t->ok);
	for (int s = 1; s < 16; s++)
		if (t->errors[s])
			fprintf(stderr, ", %s %" PRIu64, fr_status_str((fr_status)s),
				t->errors[s]);
	fprintf(stderr, "\n");
}

static void test_corruption_sweep(void **state)
{
	(void)state;
	struct sw_db d;
	struct sw_tally flips = {0}, cuts = {0};
	sw_build(&d);
	size_t total = 0;
	for (size_t i = 0; i < d.cnt; i++)
		total += d.files[i].len;
	fprintf(stderr, "# sweep over %zu files, %zu bytes\n", d.cnt, total);
	for (size_t i = 0; i < d.cnt; i++) {
		const struct sw_file *f = &d.files[i];
		bool jnl = strstr(f->path, ".jnl") != NULL;
		uint64_t step = total > 12000 ? 3 : 1;
		alarm(WATCHDOG_S);
		for (uint64_t off = 0; off < f->len; off += step)
			sw_trial(&d, i, off, false, jnl ? SW_OPS - 1 : SW_OPS, &flips);
		for (uint64_t len = 0; len < f->len; len += 1 + len / 16)
			sw_trial(&d, i, len, true, jnl ? 0 : SW_OPS, &cuts);
	}
	sw_print("flips", &flips);
	sw_print("cuts", &cuts);
	/* most damage must be detected (the flips that read back fine hit bytes that do not
	 * matter: unused, or a torn last journal record) */
	assert_true(flips.errors[FR_CORRUPTION] > flips.trials / 2);
	for (size_t i = 0; i < d.cnt; i++)
		free(d.files[i].data);
}

static int group_setup(void **state)
{
	*state = build_db();
	return 0;
}

static int group_teardown(void **state)
{
	tu_rmtree_free(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corruption_table_data_block),
		cmocka_unit_test(test_corruption_manifest_middle),
		cmocka_unit_test(test_corruption_journal_record),
		cmocka_unit_test(test_corruption_journal_torn_tail),
		cmocka_unit_test(test_corruption_sweep),
	};
	alarm(WATCHDOG_S * 3);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
