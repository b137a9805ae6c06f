/* SPDX-License-Identifier: MIT */
/*
 * test_checkpoint.c - fr_db_checkpoint: the copy holds exactly the source's state at one
 * commit (every keyspace, memtable and table data, range deletes), across trees while a writer
 * runs; it opens read-only while the source keeps writing and compacting, and outlives the
 * source; opened read-write it is independent of the source both ways; table files are hard
 * links, or copies when linking fails with EXDEV; a non-empty target is refused and a fault
 * midway leaves nothing that opens and a source that still reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "fractio.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "testutil.h"
#include "testutil_db.h"

static fr_error E;

#define OK(call) TU_OK(call, E)

struct fx {
	char *dir; /* holds src/ and the checkpoints */
	char src[PATH_MAX];
	fr_db *db;
	fr_db_options o;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir = tu_tmpdir("ckpt");
	snprintf(f->src, sizeof(f->src), "%s/src", f->dir);
	fr_db_options_init(&f->o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->db)
		fr_db_close(f->db, NULL);
	tu_rmtree_free(f->dir);
	free(f);
	return 0;
}

static void path_in(const struct fx *f, const char *name, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s", f->dir, name);
}

static fr_keyspace *t_ks_open(fr_db *db, const char *name, const char *tree)
{
	fr_keyspace_options o;
	fr_keyspace *ks;
	fr_keyspace_options_init(&o);
	o.tree = tree;
	OK(fr_keyspace_open(db, name, &o, &ks, &E));
	return ks;
}

static fr_db *open_ro(const char *path)
{
	fr_db_options o;
	fr_db *db;
	fr_db_options_init(&o);
	o.read_only = true;
	o.create_if_missing = false;
	OK(fr_db_open(path, &o, &db, &E));
	return db;
}

static void put_str(fr_keyspace *ks, const char *k, const char *v)
{
	OK(fr_put(ks, k, strlen(k), v, strlen(v), &E));
}

/* ---- a whole database as text: every keyspace by name, then its entries in order ---- */

struct text {
	char *p;
	size_t len, cap;
};

static void text_add(struct text *t, const void *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		t->p = realloc(t->p, cap);
		assert_non_null(t->p);
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

struct names {
	char *v[64];
	size_t cnt;
};

static int name_cb(void *ctx, const char *name)
{
	struct names *n = ctx;
	assert_true(n->cnt < 64);
	n->v[n->cnt++] = strdup(name);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_ks(fr_keyspace *ks, struct text *t)
{
	fr_iter *it;
	OK(fr_iter_open(ks, NULL, &it, &E));
	while (fr_iter_valid(it)) {
		size_t kl, vl;
		const void *k = fr_iter_key(it, &kl);
		const void *v = fr_iter_value(it, &vl);
		text_add(t, k, kl);
		text_add(t, "=", 1);
		text_add(t, v, vl);
		text_add(t, "\n", 1);
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
}

/* The text of db (fresh; free()). */
static char *dump(fr_db *db)
{
	struct names n = {.cnt = 0};
	struct text t = {0};
	OK(fr_keyspace_list(db, name_cb, &n, &E));
	qsort(n.v, n.cnt, sizeof(n.v[0]), cmp_str);
	text_add(&t, "", 0);
	for (size_t i = 0; i < n.cnt; i++) {
		fr_keyspace *ks;
		OK(fr_keyspace_open(db, n.v[i], NULL, &ks, &E));
		text_add(&t, "[", 1);
		text_add(&t, n.v[i], strlen(n.v[i]));
		text_add(&t, "]\n", 2);
		dump_ks(ks, &t);
		fr_keyspace_close(ks);
		free(n.v[i]);
	}
	return t.p;
}

static char *dump_path(const char *path)
{
	fr_db *db = open_ro(path);
	char *s = dump(db);
	OK(fr_db_close(db, &E));
	return s;
}

/* Files in dir/sub: count, and how many have more than one link. */
static void count_links(const char *dir, const char *sub, size_t *files, size_t *linked)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	assert_non_null(d);
	struct dirent *de;
	*files = *linked = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char fp[PATH_MAX + 256];
		struct stat st;
		snprintf(fp, sizeof(fp), "%s/%s", path, de->d_name);
		assert_int_equal(stat(fp, &st), 0);
		(*files)++;
		if (st.st_nlink > 1)
			(*linked)++;
	}
	closedir(d);
}

/* Fills a: own tree; b and c: one shared tree; some data flushed to tables, some in memtables,
 * removes and range deletes on both sides; keyspace "gone" created and dropped. */
static void fill(fr_db *db)
{
	fr_keyspace *a = t_ks_open(db, "a", NULL);
	fr_keyspace *b = t_ks_open(db, "b", "shared");
	fr_keyspace *c = t_ks_open(db, "c", "shared");
	fr_keyspace *g = t_ks_open(db, "gone", NULL);
	fr_keyspace_options bo;
	fr_keyspace *big;
	fr_keyspace_options_init(&bo);
	bo.blob_threshold = 100; /* its values go to blob files at flush */
	OK(fr_keyspace_open(db, "big", &bo, &big, &E));
	char k[32], v[64], bv[300];
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "b%05d", i);
		memset(bv, 'a' + i % 26, sizeof(bv));
		snprintf(bv, sizeof(bv), "big-%d", i);
		bv[strlen(bv)] = '.';
		OK(fr_put(big, k, strlen(k), bv, sizeof(bv) - (size_t)(i % 7), &E));
	}
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "k%05d", i);
		snprintf(v, sizeof(v), "a-%d", i);
		put_str(a, k, v);
		snprintf(v, sizeof(v), "b-%d", i);
		put_str(b, k, v);
		if (i % 3 == 0) {
			snprintf(v, sizeof(v), "c-%d", i);
			put_str(c, k, v);
		}
	}
	put_str(g, "x", "y");
	OK(fr_db_flush(db, &E));
	/* in tables: range delete and removes over table data */
	OK(fr_delete_range(a, "k00100", 6, "k00200", 6, &E));
	OK(fr_remove(b, "k00007", 6, &E));
	OK(fr_db_flush(db, &E));
	/* in memtables */
	for (int i = 1500; i < 2500; i++) {
		snprintf(k, sizeof(k), "k%05d", i);
		snprintf(v, sizeof(v), "a2-%d", i);
		put_str(a, k, v);
	}
	OK(fr_delete_range(b, "k01000", 6, "k01100", 6, &E));
	OK(fr_delete_range(c, "k00000", 6, "k00050", 6, &E));
	OK(fr_remove(a, "k00001", 6, &E));
	put_str(c, "new", "value");
	/* blob values in the memtable, and one overwritten */
	for (int i = 290; i < 310; i++) {
		snprintf(k, sizeof(k), "b%05d", i);
		memset(bv, 'A' + i % 26, sizeof(bv));
		OK(fr_put(big, k, strlen(k), bv, sizeof(bv), &E));
	}
	fr_keyspace_close(big);
	fr_keyspace_close(g);
	OK(fr_keyspace_delete(db, "gone", &E));
	fr_keyspace_close(a);
	fr_keyspace_close(b);
	fr_keyspace_close(c);
}

static void test_checkpoint_contents(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	char *want = dump(f->db);
	assert_null(strstr(want, "[gone]"));
	assert_non_null(strstr(want, "[a]\n"));
	assert_non_null(strstr(want, "k00300=c-300\n"));
	assert_null(strstr(want, "k00150=a-150\n"));
	OK(fr_db_checkpoint(f->db, ck, &E));
	fr_seqno src_seq = fr_db_seqno(f->db);

	fr_db *c = open_ro(ck);
	char *got = dump(c);
	assert_string_equal(got, want);
	assert_int_equal(fr_db_seqno(c), src_seq);
	bool ex = true;
	OK(fr_keyspace_exists(c, "gone", &ex, &E));
	assert_false(ex);
	OK(fr_db_close(c, &E));
	free(got);

	/* the source closed: what it left in the journal changes nothing in the copy */
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	got = dump_path(ck);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

/* An empty database checkpoints too, and the copy opens. */
static void test_checkpoint_empty(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	assert_int_equal(mkdir(ck, 0755), 0); /* existing and empty is fine */
	OK(fr_db_checkpoint(f->db, ck, &E));
	char *got = dump_path(ck);
	assert_string_equal(got, "");
	free(got);
}

/* ---- consistency across trees while a writer runs ---- */

#define CW_MAX 200000

struct cwriter {
	fr_db *db;
	fr_keyspace *x, *y;
	bool stop;            /* atomic */
	uint64_t n;           /* atomic: batches committed */
	fr_seqno seq[CW_MAX]; /* seq[i]: seqno of batch i (1-based); written before n moves */
};

static void *cwriter_main(void *arg)
{
	struct cwriter *w = arg;
	char v[32], fk[32], fv[200];
	memset(fv, 'f', sizeof(fv));
	for (uint64_t i = 1; i < CW_MAX && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++) {
		fr_batch *b;
		fr_seqno s;
		int vl = snprintf(v, sizeof(v), "%llu", (unsigned long long)i);
		int fl = snprintf(fk, sizeof(fk), "f%06llu", (unsigned long long)(i % 5000));
		assert_int_equal(fr_batch_new(w->db, &b), FR_OK);
		assert_int_equal(fr_batch_put(b, w->x, "ctr", 3, v, (size_t)vl), FR_OK);
		assert_int_equal(fr_batch_put(b, w->y, "ctr", 3, v, (size_t)vl), FR_OK);
		assert_int_equal(fr_batch_put(b, w->x, fk, (size_t)fl, fv, sizeof(fv)), FR_OK);
		assert_int_equal(fr_batch_commit(b, FR_PERSIST_BUFFER, &s, NULL), FR_OK);
		fr_batch_free(b);
		w->seq[i] = s;
		__atomic_store_n(&w->n, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

static uint64_t read_ctr(fr_db *db, const char *ks_name)
{
	fr_keyspace *ks;
	void *v;
	size_t vl;
	char buf[32];
	OK(fr_keyspace_open(db, ks_name, NULL, &ks, &E));
	fr_status rc = fr_get(ks, "ctr", 3, &v, &vl, &E);
	fr_keyspace_close(ks);
	if (rc == FR_NOT_FOUND)
		return 0;
	OK(rc);
	assert_true(vl < sizeof(buf));
	memcpy(buf, v, vl);
	buf[vl] = 0;
	fr_free(v);
	return strtoull(buf, NULL, 10);
}

static void test_checkpoint_consistent_under_writes(void **state)
{
	struct fx *f = *state;
	f->o.memtable_max = 64 << 10; /* flushes run all the time */
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	struct cwriter *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->db = f->db;
	w->x = t_ks_open(f->db, "x", NULL);
	w->y = t_ks_open(f->db, "y", NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, cwriter_main, w), 0);

	enum { CK = 6 };
	uint64_t ctr[CK];
	fr_seqno ck_seq[CK];
	for (int i = 0; i < CK; i++) {
		char name[32], ck[PATH_MAX];
		/* let the writer get going between checkpoints (a count, not a time) */
		uint64_t start = __atomic_load_n(&w->n, __ATOMIC_ACQUIRE);
		while (__atomic_load_n(&w->n, __ATOMIC_ACQUIRE) < start + 200)
			sched_yield();
		snprintf(name, sizeof(name), "ck%d", i);
		path_in(f, name, ck);
		OK(fr_db_checkpoint(f->db, ck, &E));
		fr_db *c = open_ro(ck);
		ctr[i] = read_ctr(c, "x");
		assert_int_equal(read_ctr(c, "y"), ctr[i]);
		ck_seq[i] = fr_db_seqno(c);
		OK(fr_db_close(c, &E));
	}
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	uint64_t n = __atomic_load_n(&w->n, __ATOMIC_ACQUIRE);
	for (int i = 0; i < CK; i++) {
		/* the copy holds exactly the batches up to its seqno: the counter is the last of
		 * them, and the next one is newer */
		assert_true(ctr[i] >= 1 && ctr[i] <= n);
		assert_true(w->seq[ctr[i]] <= ck_seq[i]);
		if (ctr[i] < n)
			assert_true(w->seq[ctr[i] + 1] > ck_seq[i]);
		if (i)
			assert_true(ctr[i] > ctr[i - 1]);
	}
	fr_keyspace_close(w->x);
	fr_keyspace_close(w->y);
	free(w);
}

/* ---- read-only use while the source writes and compacts; outliving the source ---- */

struct churn {
	fr_db *db;
	fr_keyspace *ks;
	bool stop; /* atomic */
	uint64_t rounds; /* atomic */
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	char k[32], v[128];
	uint64_t r = 0;
	memset(v, 'v', sizeof(v));
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		r++;
		for (int i = 0; i < 500; i++) {
			int kl = snprintf(k, sizeof(k), "key%05d", (int)((r * 7919 + (uint64_t)i * 31) % 3000));
			char head[32];
			int hl = snprintf(head, sizeof(head), "r%llu-", (unsigned long long)r);
			memcpy(v, head, (size_t)hl); /* no NUL: the dumps are compared as strings */
			assert_int_equal(fr_put(c->ks, k, (size_t)kl, v, 100, NULL), FR_OK);
		}
		__atomic_store_n(&c->rounds, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

static fr_keyspace *ks_small(fr_db *db, const char *name)
{
	fr_keyspace_options o;
	fr_keyspace *ks;
	fr_keyspace_options_init(&o);
	o.table_target_size = 32 << 10;
	o.l0_trigger = 2;
	o.level_ratio = 4;
	OK(fr_keyspace_open(db, name, &o, &ks, &E));
	return ks;
}

static void test_checkpoint_read_while_source_compacts(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	f->o.memtable_max = 32 << 10;
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	struct churn ch = {.db = f->db};
	ch.ks = ks_small(f->db, "data");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, churn_main, &ch), 0);
	while (__atomic_load_n(&ch.rounds, __ATOMIC_ACQUIRE) < 20)
		sched_yield();
	OK(fr_db_checkpoint(f->db, ck, &E));
	fr_keyspace_stats s0;
	OK(fr_keyspace_stats_get(ch.ks, &s0, &E));

	/* read the copy fully, again and again, while the source rewrites its tables */
	fr_db *c = open_ro(ck);
	char *first = dump(c);
	if (strlen(first) <= 1000)
		fail_msg("copy holds %zu bytes of text: %.300s", strlen(first), first);
	uint64_t r0 = __atomic_load_n(&ch.rounds, __ATOMIC_ACQUIRE);
	for (int i = 0; i < 5; i++) {
		while (__atomic_load_n(&ch.rounds, __ATOMIC_ACQUIRE) < r0 + 10 * (uint64_t)(i + 1))
			sched_yield();
		char *again = dump(c);
		assert_string_equal(again, first);
		free(again);
	}
	__atomic_store_n(&ch.stop, true, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* every table the copy was made from is rewritten in the source */
	OK(fr_major_compact(ch.ks, &E));
	OK(fr_db_wait_idle(f->db, &E));
	fr_keyspace_stats s1;
	OK(fr_keyspace_stats_get(ch.ks, &s1, &E));
	assert_true(s1.compactions_done > s0.compactions_done);
	char *again = dump(c);
	assert_string_equal(again, first);
	free(again);

	/* the source goes away entirely */
	fr_keyspace_close(ch.ks);
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	tu_rmtree(f->src);
	again = dump(c);
	assert_string_equal(again, first);
	free(again);
	OK(fr_db_close(c, &E));
	again = dump_path(ck);
	assert_string_equal(again, first);
	free(again);
	free(first);
}

/* ---- a read-write copy is a database of its own ---- */

static void test_checkpoint_read_write_independent(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	char *src_text = dump(f->db);
	OK(fr_db_checkpoint(f->db, ck, &E));

	fr_db *c;
	fr_db_options o;
	fr_db_options_init(&o);
	o.create_if_missing = false;
	OK(fr_db_open(ck, &o, &c, &E));
	fr_keyspace *a = t_ks_open(c, "a", NULL);
	put_str(a, "only-in-copy", "1");
	OK(fr_remove(a, "k00002", 6, &E));
	fr_keyspace *n = t_ks_open(c, "new-ks", NULL);
	put_str(n, "k", "v");
	fr_keyspace_close(n);
	OK(fr_db_flush(c, &E));
	OK(fr_major_compact(a, &E));
	put_str(a, "after-flush", "2");
	fr_keyspace_close(a);
	char *ck_text = dump(c);
	OK(fr_db_close(c, &E));
	assert_string_not_equal(ck_text, src_text);
	assert_non_null(strstr(ck_text, "only-in-copy=1\n"));

	/* survives reopen */
	OK(fr_db_open(ck, &o, &c, &E));
	char *again = dump(c);
	assert_string_equal(again, ck_text);
	free(again);
	OK(fr_db_close(c, &E));

	/* the source did not change */
	again = dump(f->db);
	assert_string_equal(again, src_text);
	free(again);

	/* and the source's later writes and compactions do not change the copy */
	a = t_ks_open(f->db, "a", NULL);
	put_str(a, "only-in-source", "1");
	OK(fr_remove(a, "k00003", 6, &E));
	OK(fr_db_flush(f->db, &E));
	OK(fr_major_compact(a, &E));
	fr_keyspace_close(a);
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	again = dump_path(ck);
	assert_string_equal(again, ck_text);
	assert_null(strstr(again, "only-in-source"));
	free(again);
	free(ck_text);
	free(src_text);
}

/* ---- links and the copy fallback ---- */

static void test_checkpoint_hard_links(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	f->o.background = false; /* no compaction may drop the source's names meanwhile */
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	char *want = dump(f->db);
	OK(fr_db_checkpoint(f->db, ck, &E));
	size_t files, linked, blobs, blobs_linked;
	count_links(ck, "tables", &files, &linked);
	assert_true(files >= 3);
	assert_int_equal(linked, files);
	count_links(ck, "blobs", &blobs, &blobs_linked);
	assert_true(blobs >= 1);
	assert_int_equal(blobs_linked, blobs);
	char *got = dump_path(ck);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void test_checkpoint_copy_fallback(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	struct fr_io *fio = io_fault_new(io_posix());
	assert_non_null(fio);
	f->o.io = fio;
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	char *want = dump(f->db);
	/* every link fails as across file systems */
	io_fault_arm(fio, IO_FAULT_LINK, 1, EXDEV, true);
	struct cpt_stats st;
	OK(db_checkpoint(f->db, ck, &st, &E));
	assert_true(io_fault_count(fio, IO_FAULT_LINK) >= 3);
	assert_int_equal(st.linked_files, 0);
	assert_int_equal(st.copied_files, st.files);
	assert_true(st.copied_bytes > 0);
	size_t files, linked, blobs, blobs_linked;
	count_links(ck, "tables", &files, &linked);
	count_links(ck, "blobs", &blobs, &blobs_linked);
	assert_true(blobs >= 1);
	assert_int_equal(files + blobs, st.files);
	assert_int_equal(linked + blobs_linked, 0);
	char *got = dump_path(ck);
	assert_string_equal(got, want);
	free(got);
	/* the copy outlives the source */
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	tu_rmtree(f->src);
	got = dump_path(ck);
	assert_string_equal(got, want);
	free(got);
	free(want);
	io_destroy(fio);
}

/* A real second file system, when /dev/shm is one. */
static void test_checkpoint_other_file_system(void **state)
{
	struct fx *f = *state;
	struct stat a, b;
	if (stat("/dev/shm", &b) != 0 || stat(f->dir, &a) != 0 || a.st_dev == b.st_dev ||
	    access("/dev/shm", W_OK) != 0)
		skip();
	char ck[PATH_MAX];
	snprintf(ck, sizeof(ck), "/dev/shm/fractio-ckpt-%d", (int)getpid());
	tu_rmtree(ck);
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	char *want = dump(f->db);
	struct cpt_stats st;
	OK(db_checkpoint(f->db, ck, &st, &E));
	assert_int_equal(st.linked_files, 0);
	assert_true(st.copied_files >= 3);
	char *got = dump_path(ck);
	tu_rmtree(ck);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

/* ---- refusals and faults ---- */

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_checkpoint_refuses_non_empty(void **state)
{
	struct fx *f = *state;
	char ck[PATH_MAX], marker[PATH_MAX + 16];
	path_in(f, "ck", ck);
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	assert_int_equal(mkdir(ck, 0755), 0);
	snprintf(marker, sizeof(marker), "%s/mine", ck);
	FILE *fp = fopen(marker, "w");
	assert_non_null(fp);
	fclose(fp);
	fr_error err = {0};
	assert_int_equal(fr_db_checkpoint(f->db, ck, &err), FR_INVALID);
	assert_non_null(strstr(err.msg, "not empty"));
	assert_int_equal(count_entries(ck), 1);
	/* a file in the way, the source itself, bad arguments */
	assert_int_equal(fr_db_checkpoint(f->db, marker, &err), FR_IO);
	assert_int_equal(fr_db_checkpoint(f->db, f->src, &err), FR_INVALID);
	assert_int_equal(fr_db_checkpoint(f->db, "", &err), FR_INVALID);
	assert_int_equal(fr_db_checkpoint(NULL, ck, &err), FR_INVALID);
	assert_int_equal(count_entries(ck), 1);
}

/* Fails the nth call of kind during a checkpoint, for n = 1, 2, ... until one succeeds; after
 * each failure nothing that opens is left, and the source (reopened if the failure poisoned
 * it) holds what it held. With exdev, every link fails as across file systems (copies). */
static void fault_loop(struct fx *f, enum io_fault_kind kind, bool exdev, bool flushed)
{
	char ck[PATH_MAX];
	path_in(f, "ck", ck);
	struct fr_io *fio = io_fault_new(io_posix());
	assert_non_null(fio);
	f->o.io = fio;
	f->o.background = false; /* the only I/O is the checkpoint's, so the nth call is ours */
	OK(fr_db_open(f->src, &f->o, &f->db, &E));
	fill(f->db);
	/* flushed: the cut has nothing to flush, so every count reaches the copy's own calls;
	 * else the first failures hit the cut's flushes (and poison the source) */
	if (flushed)
		OK(fr_db_flush(f->db, &E));
	char *want = dump(f->db);
	uint64_t n, failures = 0;
	for (n = 1; n < 1000; n++) {
		tu_rmtree(ck);
		if (exdev)
			io_fault_arm(fio, IO_FAULT_LINK, 1, EXDEV, true);
		io_fault_arm(fio, kind, n, EIO, false);
		fr_error err = {0};
		fr_status rc = fr_db_checkpoint(f->db, ck, &err);
		io_fault_clear(fio);
		if (rc == FR_OK)
			break;
		failures++;
		assert_int_equal(rc, FR_IO);
		/* the directory this call made is gone; nothing opens there */
		assert_int_equal(count_entries(ck), -1);
		fr_db_options o;
		fr_db *c = NULL;
		fr_db_options_init(&o);
		o.read_only = true;
		o.create_if_missing = false;
		assert_int_equal(fr_db_open(ck, &o, &c, NULL), FR_NOT_FOUND);
		fr_db_stats s;
		OK(fr_db_stats_get(f->db, &s, &E));
		if (s.poisoned) {
			/* a fault in the cut's flush: the engine's rule is reopen */
			fr_db_close(f->db, NULL);
			OK(fr_db_open(f->src, &f->o, &f->db, &E));
		}
		char *got = dump(f->db);
		assert_string_equal(got, want);
		free(got);
	}
	assert_true(n < 1000);
	assert_true(failures >= 1);
	char *got = dump_path(ck);
	assert_string_equal(got, want);
	free(got);
	OK(fr_db_close(f->db, &E));
	f->db = NULL;
	got = dump_path(f->src);
	assert_string_equal(got, want);
	free(got);
	free(want);
	io_destroy(fio);
}

static void test_checkpoint_fault_write(void **state)
{
	fault_loop(*state, IO_FAULT_WRITE, false, false);
}

static void test_checkpoint_fault_write_copying(void **state)
{
	fault_loop(*state, IO_FAULT_WRITE, true, true);
}

static void test_checkpoint_fault_sync(void **state)
{
	fault_loop(*state, IO_FAULT_SYNC, false, false);
}

static void test_checkpoint_fault_sync_flushed(void **state)
{
	fault_loop(*state, IO_FAULT_SYNC, false, true);
}

static void test_checkpoint_fault_sync_copying(void **state)
{
	fault_loop(*state, IO_FAULT_SYNC, true, true);
}

static void test_checkpoint_fault_open_copying(void **state)
{
	fault_loop(*state, IO_FAULT_OPEN, true, true);
}

static void test_checkpoint_fault_link(void **state)
{
	fault_loop(*state, IO_FAULT_LINK, false, true);
}

static void test_checkpoint_fault_rename(void **state)
{
	fault_loop(*state, IO_FAULT_RENAME, false, true);
}

/* Power lost during a checkpoint (in memory: from the nth sync on nothing more becomes
 * durable, then the cut): what is left either opens as the whole copy or not at all. */
static void test_checkpoint_power_cut(void **state)
{
	(void)state;
	char *want = NULL;
	uint64_t n;
	for (n = 1; n < 200; n++) {
		struct fr_io *mem = io_mem_new();
		struct fr_io *fio = io_fault_new(mem);
		assert_non_null(fio);
		fr_db_options o;
		fr_db_options_init(&o);
		o.io = fio;
		o.background = false;
		fr_db *db;
		OK(fr_db_open("/src", &o, &db, &E));
		fill(db);
		if (n % 2)
			OK(fr_db_flush(db, &E)); /* odd n: nothing left for the cut to flush */
		free(want);
		want = dump(db);
		io_fault_arm(fio, IO_FAULT_SYNC, (n + 1) / 2, EIO, true);
		fr_status rc = fr_db_checkpoint(db, "/ck", NULL);
		uint64_t hit = io_fault_injected(fio);
		fr_db_close(db, NULL);
		io_fault_clear(fio);
		io_mem_power_cut(mem);

		fr_db_options_init(&o);
		o.io = mem;
		o.read_only = true;
		o.create_if_missing = false;
		fr_db *c = NULL;
		fr_status orc = fr_db_open("/ck", &o, &c, &E);
		if (orc == FR_OK) {
			char *got = dump(c);
			assert_string_equal(got, want);
			free(got);
			OK(fr_db_close(c, &E));
		} else {
			assert_int_equal(orc, FR_NOT_FOUND);
			assert_int_not_equal(rc, FR_OK); /* a reported success is durable */
		}
		io_destroy(fio);
		io_destroy(mem);
		if (!hit && n % 2 == 0) {
			assert_int_equal(rc, FR_OK);
			assert_int_equal(orc, FR_OK);
			break;
		}
	}
	assert_true(n < 200);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkpoint_contents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_consistent_under_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_read_while_source_compacts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_read_write_independent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_copy_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_other_file_system, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_refuses_non_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_write_copying, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_sync_flushed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_sync_copying, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_open_copying, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_fault_rename, setup, teardown),
		cmocka_unit_test(test_checkpoint_power_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
