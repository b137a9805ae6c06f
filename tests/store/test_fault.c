/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c - power loss, I/O faults, a full disk and allocation failures, through the public
 * API with an injected fr_io (io_mem for power cuts, io_fault for failures) and the allocator
 * hook.
 *
 * Every test drives the same kind of workload: numbered batches, each putting four keys
 * "k<N>-<i>" over two keyspaces (two trees) and overwriting a "counter" key in both with N,
 * committed with FR_PERSIST_SYNC_DATA or FR_PERSIST_BUFFER, with flushes and compactions in
 * between. A model remembers which batches must be present after a reopen (acknowledged, and
 * durable for the failure at hand) and which may be (unacknowledged, or acknowledged only to the
 * OS before a power cut). After each fault the database is closed, the fault cleared, and the
 * reopened database checked: it opens, every required batch is whole, every other batch is whole
 * or absent, nothing else is there, and the counters name the newest batch present. After a
 * power cut the batches present must also be a prefix of the batches committed.
 *
 * The loop tests arm the Nth operation of a kind for N = 1, 2, ... until a run completes without
 * reaching the fault (STYLE.md §3.9). A watchdog alarm turns a hang into a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/error.h"
#include "fractio.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/io_mem.h"
#include "testutil.h"

#define DB_PATH "/db"
#define KEYS 4
#define MAX_BATCH 4096
#define WATCHDOG_S 100

enum need {
	NEED_NONE = 0,  /* never committed (or lost and renumbered) */
	NEED_MUST = 1,  /* acknowledged and durable: must be present whole */
	NEED_MAY = 2,   /* may be present, but only whole */
};

struct model {
	uint8_t need[MAX_BATCH];
	uint64_t next;     /* next batch number */
	bool prefix;       /* the batches present must be 1..R for some R (power cuts) */
};

struct wl_opts {
	bool background;
	size_t memtable_max;
	size_t segment_max;
	bool power;        /* a power cut may come: BUFFER commits are only NEED_MAY */
	fr_status allowed; /* the failure status the fault produces (besides FR_POISONED) */
	uint64_t batches;  /* how many batches the workload commits */
	bool reopen;       /* close and reopen in the middle */
};

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	m->next = 1;
}

static void batch_key(uint64_t n, unsigned i, char *out, size_t len)
{
	snprintf(out, len, "k%06" PRIu64 "-%u", n, i);
}

static size_t batch_val(uint64_t n, unsigned i, char *out)
{
	size_t len = 24 + (size_t)((n * 13 + i * 7) % 300);
	int k = snprintf(out, 32, "v%" PRIu64 ".%u:", n, i);
	for (size_t j = (size_t)k; j < len; j++)
		out[j] = (char)('A' + (n * 5 + i + j * 3) % 26);
	return len;
}

static void db_opts(fr_db_options *o, struct fr_io *io, const struct wl_opts *w)
{
	fr_db_options_init(o);
	o->io = io;
	o->background = w ? w->background : false;
	o->memtable_max = w && w->memtable_max ? w->memtable_max : (1u << 20);
	o->journal_segment_max = w && w->segment_max ? w->segment_max : (1u << 20);
	o->write_buffer_max = 64u << 10;
}

static void watchdog(void)
{
	alarm(WATCHDOG_S);
}

/* The engine's warnings and errors of the current run (it logs what it handles itself). */
static char log_lines[8][FR_ERROR_MSG_MAX + 64];
static unsigned log_cnt;

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	snprintf(log_lines[log_cnt % 8], sizeof(log_lines[0]), "%s", line);
	log_cnt++;
}

static bool log_has(const char *what)
{
	unsigned first = log_cnt > 8 ? log_cnt - 8 : 0;
	for (unsigned i = first; i < log_cnt; i++)
		if (strstr(log_lines[i % 8], what))
			return true;
	return false;
}

static void log_dump(void)
{
	unsigned first = log_cnt > 8 ? log_cnt - 8 : 0;
	for (unsigned i = first; i < log_cnt; i++)
		fprintf(stderr, "  log: %s\n", log_lines[i % 8]);
}

/* ---- checking a reopened database against the model ---- */

static bool parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (!n || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* Scans keyspace k; marks present[n] |= 1 << i; returns the counter (0 when absent). */
static uint64_t scan_keyspace(fr_keyspace *ks, unsigned k, const struct model *m,
			      uint8_t *present, const char *what)
{
	fr_iter *it;
	fr_error e;
	char val[400];
	uint64_t counter = 0;
	fr_status rc = fr_iter_open(ks, NULL, &it, &e);
	if (rc)
		fail_msg("%s: iter open: %s (%s)", what, fr_status_str(rc), e.msg);
	for (; fr_iter_valid(it); rc = fr_iter_next(it, &e)) {
		if (rc)
			break;
		size_t kl, vl;
		const char *kp = fr_iter_key(it, &kl);
		const char *vp = fr_iter_value(it, &vl);
		uint64_t n = 0, i = 0;
		if (kl == 7 && !memcmp(kp, "counter", 7)) {
			if (!parse_u64(vp, vl, &counter))
				fail_msg("%s: bad counter value", what);
			continue;
		}
		if (kl != 9 || kp[0] != 'k' || kp[7] != '-' || !parse_u64(kp + 1, 6, &n) ||
		    !parse_u64(kp + 8, 1, &i))
			fail_msg("%s: unexpected key %.*s", what, (int)kl, kp);
		if (n == 0 || n >= m->next || m->need[n] == NEED_NONE || i >= KEYS ||
		    i % 2 != k)
			fail_msg("%s: key %.*s of a batch never committed", what, (int)kl, kp);
		size_t el = batch_val(n, (unsigned)i, val);
		if (vl != el || memcmp(vp, val, el))
			fail_msg("%s: key %.*s has a wrong value", what, (int)kl, kp);
		present[n] |= (uint8_t)(1u << i);
	}
	if (rc)
		fail_msg("%s: iterating: %s (%s)", what, fr_status_str(rc), e.msg);
	fr_iter_close(it);
	return counter;
}

/* Opens the database on io, checks it against m and closes it. Batches present become
 * NEED_MUST (a reopen makes what it recovered durable), the others NEED_NONE, and m->next
 * follows the newest present, so the next workload continues from there. */
static void check_db(struct fr_io *io, struct model *m, const char *what)
{
	fr_db_options o;
	fr_db *db;
	fr_error e;
	fr_keyspace *ks[2] = {NULL, NULL};
	static uint8_t present[MAX_BATCH];
	uint64_t counter[2] = {0, 0};

	db_opts(&o, io, NULL);
	fr_status rc = fr_db_open(DB_PATH, &o, &db, &e);
	if (rc)
		fail_msg("%s: reopen: %s (%s)", what, fr_status_str(rc), e.msg);
	memset(present, 0, sizeof(present));
	for (unsigned k = 0; k < 2; k++) {
		const char *name = k ? "beta" : "alpha";
		bool exists;
		assert_int_equal(fr_keyspace_exists(db, name, &exists, &e), FR_OK);
		if (!exists)
			continue;
		rc = fr_keyspace_open(db, name, NULL, &ks[k], &e);
		if (rc)
			fail_msg("%s: keyspace %s: %s (%s)", what, name, fr_status_str(rc), e.msg);
		counter[k] = scan_keyspace(ks[k], k, m, present, what);
	}
	uint64_t newest = 0;
	bool gap = false;
	for (uint64_t n = 1; n < m->next; n++) {
		if (present[n] && present[n] != (1u << KEYS) - 1)
			fail_msg("%s: batch %" PRIu64 " is partly present (mask 0x%x)", what, n,
				 present[n]);
		if (m->need[n] == NEED_MUST && !present[n])
			fail_msg("%s: acknowledged batch %" PRIu64 " is missing", what, n);
		if (present[n]) {
			if (gap && m->prefix)
				fail_msg("%s: batch %" PRIu64 " present after a missing one", what,
					 n);
			newest = n;
		} else {
			gap = true;
		}
	}
	for (unsigned k = 0; k < 2; k++)
		if (counter[k] != newest)
			fail_msg("%s: counter of keyspace %u is %" PRIu64 ", newest batch %" PRIu64,
				 what, k, counter[k], newest);
	/* a point read through the lookup path for the newest batches */
	for (uint64_t n = newest > 8 ? newest - 8 : 1; n <= newest + 1 && n < MAX_BATCH; n++) {
		for (unsigned i = 0; i < KEYS; i++) {
			char key[32], val[400];
			void *v;
			size_t vl;
			if (!ks[i % 2])
				continue;
			batch_key(n, i, key, sizeof(key));
			rc = fr_get(ks[i % 2], key, strlen(key), &v, &vl, &e);
			if (present[n]) {
				if (rc)
					fail_msg("%s: get %s: %s (%s)", what, key,
						 fr_status_str(rc), e.msg);
				size_t el = batch_val(n, i, val);
				assert_int_equal(vl, el);
				assert_memory_equal(v, val, el);
				fr_free(v);
			} else if (rc != FR_NOT_FOUND) {
				fail_msg("%s: get %s: %s, expected not found", what, key,
					 fr_status_str(rc));
			}
		}
	}
	fr_db_stats st;
	assert_int_equal(fr_db_stats_get(db, &st, &e), FR_OK);
	assert_false(st.poisoned);
	fr_keyspace_close(ks[0]);
	fr_keyspace_close(ks[1]);
	rc = fr_db_close(db, &e);
	if (rc)
		fail_msg("%s: close after the check: %s (%s)", what, fr_status_str(rc), e.msg);
	for (uint64_t n = 1; n < MAX_BATCH; n++)
		m->need[n] = n <= newest && present[n] ? NEED_MUST : NEED_NONE;
	m->next = newest + 1;
}

/* ---- the workload ---- */

struct run {
	fr_db *db;
	fr_keyspace *ks[2];
	const struct wl_opts *w;
	struct model *m;
	uint64_t failures;     /* calls that failed */
	uint64_t poison_checks;
	bool late_poison;      /* poisoned by work after a call that returned FR_OK */
	bool stop;             /* the database is poisoned or gone: stop the workload */
	char first_err[FR_ERROR_MSG_MAX];
};

static bool db_poisoned(fr_db *db)
{
	fr_db_stats st;
	fr_error e;
	return fr_db_stats_get(db, &st, &e) == FR_OK && st.poisoned;
}

/* A poisoned database refuses every write with FR_POISONED, at once. */
static void check_poisoned_refuses(struct run *r)
{
	fr_error e;
	fr_batch *b;
	char val[400];
	assert_int_equal(fr_batch_new(r->db, &b), FR_OK);
	size_t vl = batch_val(1, 0, val);
	assert_int_equal(fr_batch_put(b, r->ks[0], "x", 1, val, vl), FR_OK);
	assert_int_equal(fr_batch_commit(b, FR_PERSIST_SYNC_DATA, NULL, &e), FR_POISONED);
	fr_batch_free(b);
	assert_int_equal(fr_put(r->ks[1], "x", 1, "y", 1, &e), FR_POISONED);
	assert_int_equal(fr_remove(r->ks[1], "x", 1, &e), FR_POISONED);
	assert_int_equal(fr_db_flush(r->db, &e), FR_POISONED);
	assert_int_equal(fr_db_persist(r->db, FR_PERSIST_SYNC_DATA, &e), FR_POISONED);
	r->poison_checks++;
}

/* Records a failed call: its status must be the fault's (or FR_POISONED). */
static void failed(struct run *r, const char *call, fr_status rc, const fr_error *e)
{
	if (rc != r->w->allowed && rc != FR_POISONED)
		fail_msg("%s returned %s (%s); expected %s or %s", call, fr_status_str(rc),
			 e->msg, fr_status_str(r->w->allowed), fr_status_str(FR_POISONED));
	if (!r->failures)
		snprintf(r->first_err, sizeof(r->first_err), "%s", e->msg);
	r->failures++;
	if (r->db && r->ks[0] && r->ks[1] && db_poisoned(r->db)) {
		check_poisoned_refuses(r);
		r->stop = true;
	}
}

static void trace(const char *call, uint64_t n, fr_status rc)
{
	static int on = -1;
	if (on < 0)
		on = getenv("FR_FAULT_TRACE") != NULL;
	if (on)
		fprintf(stderr, "  %s %" PRIu64 ": %s\n", call, n, fr_status_str(rc));
}

static void commit_batch(struct run *r, uint64_t n, fr_persist mode)
{
	fr_batch *b;
	fr_error e;
	char key[32], val[400];
	if (n >= MAX_BATCH)
		fail_msg("batch %" PRIu64 " beyond the model", n);
	assert_int_equal(fr_batch_new(r->db, &b), FR_OK);
	for (unsigned i = 0; i < KEYS; i++) {
		batch_key(n, i, key, sizeof(key));
		size_t vl = batch_val(n, i, val);
		assert_int_equal(fr_batch_put(b, r->ks[i % 2], key, strlen(key), val, vl), FR_OK);
	}
	int cl = snprintf(val, sizeof(val), "%" PRIu64, n);
	for (unsigned k = 0; k < 2; k++)
		assert_int_equal(fr_batch_put(b, r->ks[k], "counter", 7, val, (size_t)cl), FR_OK);
	r->m->need[n] = NEED_MAY;
	fr_status rc = fr_batch_commit(b, mode, NULL, &e);
	trace("commit", n, rc);
	fr_batch_free(b);
	/* before a power cut a BUFFER batch is only NEED_MAY; if a later durable step kept it,
	 * check_db's prefix rule requires it whole */
	if (!rc && (mode != FR_PERSIST_BUFFER || !r->w->power))
		r->m->need[n] = NEED_MUST;
	if (rc)
		failed(r, "fr_batch_commit", rc, &e);
}

/* Opens the database and both keyspaces; a failure stops the workload. */
static void run_open(struct run *r, struct fr_io *io)
{
	fr_db_options o;
	fr_error e;
	db_opts(&o, io, r->w);
	fr_status rc = fr_db_open(DB_PATH, &o, &r->db, &e);
	trace("open", 0, rc);
	if (rc) {
		r->db = NULL;
		failed(r, "fr_db_open", rc, &e);
		r->stop = true;
		return;
	}
	for (unsigned k = 0; k < 2 && !r->stop; k++) {
		rc = fr_keyspace_open(r->db, k ? "beta" : "alpha", NULL, &r->ks[k], &e);
		if (rc) {
			r->ks[k] = NULL;
			failed(r, "fr_keyspace_open", rc, &e);
			r->stop = true;
		}
	}
}

static void run_close(struct run *r)
{
	fr_error e;
	/* a failure after a successful commit (an inline flush) poisons for the next write */
	if (r->db && r->ks[0] && r->ks[1] && !r->stop && db_poisoned(r->db)) {
		r->late_poison = true;
		check_poisoned_refuses(r);
	}
	fr_keyspace_close(r->ks[0]);
	fr_keyspace_close(r->ks[1]);
	r->ks[0] = r->ks[1] = NULL;
	if (r->db) {
		fr_status rc = fr_db_close(r->db, &e);
		trace("close", 0, rc);
		r->db = NULL;
		if (rc && rc != r->w->allowed && rc != FR_POISONED)
			fail_msg("fr_db_close returned %s (%s)", fr_status_str(rc), e.msg);
	}
}

static void run_flush(struct run *r)
{
	fr_error e;
	fr_status rc = fr_db_flush(r->db, &e);
	trace("flush", 0, rc);
	if (rc)
		failed(r, "fr_db_flush", rc, &e);
}

static void run_compact(struct run *r)
{
	fr_error e;
	fr_status rc = fr_major_compact(r->ks[r->m->next % 2], &e);
	trace("compact", 0, rc);
	if (rc)
		failed(r, "fr_major_compact", rc, &e);
}

/* The workload: open, batches (every third SYNC_DATA) with a flush every 12 and a major
 * compaction every 25, optionally a reopen half way, close. Stops at a poisoned database. */
static void workload(struct run *r, struct fr_io *io)
{
	run_open(r, io);
	uint64_t end = r->m->next + r->w->batches;
	for (uint64_t k = 0; !r->stop && r->m->next < end; k++) {
		uint64_t n = r->m->next++;
		commit_batch(r, n, n % 3 == 0 ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER);
		if (!r->stop && k % 12 == 11)
			run_flush(r);
		if (!r->stop && k % 25 == 24)
			run_compact(r);
		if (!r->stop && r->w->reopen && k == r->w->batches / 2) {
			run_close(r);
			run_open(r, io);
		}
	}
	run_close(r);
}

/* Creates the database with keyspaces alpha and beta and a few durable batches. */
static void setup_db(struct fr_io *io, struct model *m, bool flushed)
{
	struct wl_opts w = {.allowed = FR_OK, .batches = 6};
	struct run r = {.w = &w, .m = m};
	fr_error e;
	run_open(&r, io);
	assert_false(r.stop);
	assert_int_equal(fr_db_persist(r.db, FR_PERSIST_SYNC_DATA, &e), FR_OK);
	for (int i = 0; i < 6; i++) {
		uint64_t n = m->next++;
		commit_batch(&r, n, FR_PERSIST_SYNC_DATA);
		if (flushed && i == 3)
			run_flush(&r);
	}
	assert_int_equal(r.failures, 0);
	run_close(&r);
}

/* ---- power loss ---- */

/* Rounds of: SYNC_DATA batches, BUFFER batches, an optional flush/compaction, a power cut, a
 * reopen and the check. */
static void power_rounds(const struct wl_opts *w, int extra, uint64_t sync_n, uint64_t buf_n)
{
	struct fr_io *io = io_mem_new();
	struct model m;
	char what[96];
	assert_non_null(io);
	model_init(&m);
	m.prefix = true;
	setup_db(io, &m, false);
	for (int round = 0; round < 6; round++) {
		struct run r = {.w = w, .m = &m};
		run_open(&r, io);
		assert_false(r.stop);
		for (uint64_t i = 0; i < sync_n; i++) {
			uint64_t n = m.next++;
			commit_batch(&r, n, i % 2 ? FR_PERSIST_SYNC_ALL : FR_PERSIST_SYNC_DATA);
		}
		for (uint64_t i = 0; i < buf_n; i++) {
			uint64_t n = m.next++;
			commit_batch(&r, n, FR_PERSIST_BUFFER);
			if (extra == 3 && i == buf_n / 2)
				run_flush(&r); /* BUFFER batches on both sides of a flush */
		}
		if (extra == 1)
			run_flush(&r);
		if (extra == 2)
			run_compact(&r);
		assert_int_equal(r.failures, 0);
		io_mem_power_cut(io);
		/* the process is gone with the power: its handle only frees memory now */
		fr_error e;
		fr_keyspace_close(r.ks[0]);
		fr_keyspace_close(r.ks[1]);
		fr_db_close(r.db, &e);
		snprintf(what, sizeof(what), "power cut, extra %d, round %d", extra, round);
		uint64_t before = m.next;
		check_db(io, &m, what);
		if (extra == 1 || extra == 2)
			assert_int_equal(m.next, before); /* flushed: nothing lost */
	}
	io_destroy(io);
}

static void test_fault_power_cut_journal_only(void **state)
{
	(void)state;
	watchdog();
	struct wl_opts w = {.power = true, .allowed = FR_OK};
	power_rounds(&w, 0, 20, 15);
}

static void test_fault_power_cut_inline_flushes(void **state)
{
	(void)state;
	watchdog();
	/* tiny memtables without a background thread: flushes run inline in the commits */
	struct wl_opts w = {.power = true, .allowed = FR_OK, .memtable_max = 4096,
			    .segment_max = 16384};
	power_rounds(&w, 0, 40, 40);
}

static void test_fault_power_cut_after_flush(void **state)
{
	(void)state;
	watchdog();
	struct wl_opts w = {.power = true, .allowed = FR_OK, .memtable_max = 4096,
			    .segment_max = 16384};
	power_rounds(&w, 1, 20, 20);
	power_rounds(&w, 3, 20, 30);
}

static void test_fault_power_cut_after_compaction(void **state)
{
	(void)state;
	watchdog();
	struct wl_opts w = {.power = true, .allowed = FR_OK, .memtable_max = 4096,
			    .segment_max = 16384};
	power_rounds(&w, 2, 20, 20);
}

/*
 * A power cut at every mutating I/O operation: cut_io forwards to io_mem and counts each call
 * that changes files (open for writing, pwrite, append, sync, truncate, rename, unlink, mkdir,
 * sync_dir, link, lock). At call number cut_at it cuts the power of the inner io and fails that
 * call and every later one with EIO, as if the machine died there. The whole life of a database
 * runs under it, creation included; the reopen (on the inner io) must then succeed with every
 * batch acknowledged as synced present, and a prefix of the batches.
 */
struct cut_io {
	struct fr_io base;
	struct fr_io *inner;
	uint64_t ops;    /* mutating calls so far */
	uint64_t cut_at; /* 0: never */
	bool cut;
};

struct cut_file {
	struct io_file base;
	struct io_file *inner;
};

static fr_status cut_gate(struct fr_io *io, bool mutating, const char *what, fr_error *err)
{
	struct cut_io *c = (struct cut_io *)io;
	if (!c->cut && mutating && ++c->ops == c->cut_at) {
		io_mem_power_cut(c->inner);
		c->cut = true;
	}
	if (c->cut)
		return FR_ERR_SYS(err, EIO, "%s (after the power cut)", what);
	return FR_OK;
}

static struct io_file *cut_in(struct io_file *f)
{
	return ((struct cut_file *)f)->inner;
}

static fr_status cut_open(struct fr_io *io, const char *path, int flags, struct io_file **out,
			  fr_error *err)
{
	bool mut = flags & (IO_RDWR | IO_CREATE | IO_TRUNC);
	fr_status rc = cut_gate(io, mut, path, err);
	if (rc)
		return rc;
	struct cut_file *f = fr_calloc(1, sizeof(*f));
	if (!f)
		return FR_NOMEM;
	rc = io_open(((struct cut_io *)io)->inner, path, flags, &f->inner, err);
	if (rc) {
		fr_free(f);
		return rc;
	}
	f->base.io = io;
	*out = &f->base;
	return FR_OK;
}

static fr_status cut_pread(struct io_file *f, void *buf, size_t len, uint64_t off, size_t *got,
			   fr_error *err)
{
	fr_status rc = cut_gate(f->io, false, "pread", err);
	return rc ? rc : io_pread(cut_in(f), buf, len, off, got, err);
}

static fr_status cut_pwrite(struct io_file *f, const void *buf, size_t len, uint64_t off,
			    fr_error *err)
{
	fr_status rc = cut_gate(f->io, true, "pwrite", err);
	return rc ? rc : io_pwrite(cut_in(f), buf, len, off, err);
}

static fr_status cut_append(struct io_file *f, const void *buf, size_t len, fr_error *err)
{
	fr_status rc = cut_gate(f->io, true, "append", err);
	return rc ? rc : io_append(cut_in(f), buf, len, err);
}

static fr_status cut_sync(struct io_file *f, fr_persist mode, fr_error *err)
{
	fr_status rc = cut_gate(f->io, true, "sync", err);
	return rc ? rc : io_sync(cut_in(f), mode, err);
}

static fr_status cut_size(struct io_file *f, uint64_t *out, fr_error *err)
{
	fr_status rc = cut_gate(f->io, false, "size", err);
	return rc ? rc : io_size(cut_in(f), out, err);
}

static fr_status cut_truncate(struct io_file *f, uint64_t len, fr_error *err)
{
	fr_status rc = cut_gate(f->io, true, "truncate", err);
	return rc ? rc : io_truncate(cut_in(f), len, err);
}

static void cut_close(struct io_file *f)
{
	if (!f)
		return;
	io_close(cut_in(f));
	fr_free(f);
}

#define CUT_INNER(io) (((struct cut_io *)(io))->inner)

static fr_status cut_rename(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	fr_status rc = cut_gate(io, true, "rename", err);
	return rc ? rc : io_rename(CUT_INNER(io), from, to, err);
}

static fr_status cut_unlink(struct fr_io *io, const char *path, fr_error *err)
{
	fr_status rc = cut_gate(io, true, "unlink", err);
	return rc ? rc : io_unlink(CUT_INNER(io), path, err);
}

static fr_status cut_mkdir(struct fr_io *io, const char *path, fr_error *err)
{
	fr_status rc = cut_gate(io, true, "mkdir", err);
	return rc ? rc : io_mkdir(CUT_INNER(io), path, err);
}

static fr_status cut_sync_dir(struct fr_io *io, const char *path, fr_error *err)
{
	fr_status rc = cut_gate(io, true, "sync_dir", err);
	return rc ? rc : io_sync_dir(CUT_INNER(io), path, err);
}

static fr_status cut_list(struct fr_io *io, const char *dir, io_list_fn fn, void *ctx,
			  fr_error *err)
{
	fr_status rc = cut_gate(io, false, "list", err);
	return rc ? rc : io_list(CUT_INNER(io), dir, fn, ctx, err);
}

static fr_status cut_exists(struct fr_io *io, const char *path, bool *out, fr_error *err)
{
	fr_status rc = cut_gate(io, false, "exists", err);
	return rc ? rc : io_exists(CUT_INNER(io), path, out, err);
}

static fr_status cut_link(struct fr_io *io, const char *from, const char *to, fr_error *err)
{
	fr_status rc = cut_gate(io, true, "link", err);
	return rc ? rc : io_link(CUT_INNER(io), from, to, err);
}

static fr_status cut_lock(struct fr_io *io, const char *path, struct io_file **out,
			  fr_error *err)
{
	fr_status rc = cut_gate(io, true, "lock", err);
	if (rc)
		return rc;
	struct cut_file *f = fr_calloc(1, sizeof(*f));
	if (!f)
		return FR_NOMEM;
	rc = io_lock(CUT_INNER(io), path, &f->inner, err);
	if (rc) {
		fr_free(f);
		return rc;
	}
	f->base.io = io;
	*out = &f->base;
	return FR_OK;
}

static void cut_destroy(struct fr_io *io)
{
	fr_free(io);
}

static const struct io_ops cut_ops = {
	.open = cut_open,
	.pread = cut_pread,
	.pwrite = cut_pwrite,
	.append = cut_append,
	.sync = cut_sync,
	.size = cut_size,
	.truncate = cut_truncate,
	.close = cut_close,
	.rename = cut_rename,
	.unlink = cut_unlink,
	.mkdir = cut_mkdir,
	.sync_dir = cut_sync_dir,
	.list = cut_list,
	.exists = cut_exists,
	.link = cut_link,
	.lock = cut_lock,
	.destroy = cut_destroy,
};

/* One life of a database under a power cut at mutating call cut_at (0: none). Returns the
 * number of mutating calls made. */
static uint64_t cut_run(uint64_t cut_at, bool verify)
{
	struct fr_io *inner = io_mem_new();
	struct cut_io *c = fr_calloc(1, sizeof(*c));
	struct model m;
	assert_non_null(inner);
	assert_non_null(c);
	c->base.ops = &cut_ops;
	c->inner = inner;
	c->cut_at = cut_at;
	model_init(&m);
	m.prefix = true;
	struct wl_opts w = {.power = true, .allowed = FR_IO, .memtable_max = 4096,
			    .segment_max = 8192, .batches = 40, .reopen = true};
	struct run r = {.w = &w, .m = &m};
	workload(&r, &c->base);
	if (!cut_at)
		assert_int_equal(r.failures, 0);
	uint64_t ops = c->ops;
	if (verify) {
		char what[64];
		if (!c->cut)
			io_mem_power_cut(inner); /* the cut came after the last call */
		snprintf(what, sizeof(what), "power cut at mutating call %" PRIu64, cut_at);
		check_db(inner, &m, what);
	}
	fr_free(c);
	io_destroy(inner);
	return ops;
}

static void test_fault_power_cut_at_every_call(void **state)
{
	(void)state;
	watchdog();
	uint64_t total = cut_run(0, true);
	fprintf(stderr, "# %" PRIu64 " mutating calls in the workload\n", total);
	assert_true(total > 50);
	for (uint64_t n = 1; n <= total; n++) {
		if (n % 64 == 0)
			watchdog();
		cut_run(n, true);
	}
}

/* ---- I/O faults: the Nth call of a kind fails ---- */

struct loop_stats {
	uint64_t runs;
	uint64_t failing_runs;
	uint64_t poisoned_runs;
	uint64_t jnl, sst, mfst, other; /* where the first failure was */
};

/* One run with the Nth call of kind failing; returns whether the fault was reached. */
static bool fault_run(enum io_fault_kind kind, int e, bool sticky, uint64_t n,
		      const struct wl_opts *w, struct loop_stats *ls)
{
	struct fr_io *inner = io_mem_new();
	struct fr_io *fio = io_fault_new(inner);
	struct model m;
	char what[128];
	assert_non_null(inner);
	assert_non_null(fio);
	model_init(&m);
	setup_db(fio, &m, true);
	io_fault_reset_counts(fio);
	log_cnt = 0;
	io_fault_arm(fio, kind, n, e, sticky);
	struct run r = {.w = w, .m = &m};
	workload(&r, fio);
	bool hit = io_fault_injected(fio) > 0;
	io_fault_clear(fio);
	ls->runs++;
	if (r.failures) {
		ls->failing_runs++;
		ls->poisoned_runs += r.poison_checks > 0;
		if (strstr(r.first_err, ".jnl"))
			ls->jnl++;
		else if (strstr(r.first_err, ".sst"))
			ls->sst++;
		else if (strstr(r.first_err, "MANIFEST") || strstr(r.first_err, "CURRENT"))
			ls->mfst++;
		else
			ls->other++;
	}
	/* an injected fault must show: a call fails, the database is poisoned, or the engine
	 * logged a failure it handled itself (a best-effort unlink or directory sync) */
	if (hit && !r.failures && !r.late_poison && !log_has("(injected)")) {
		log_dump();
		fail_msg("kind %d call %" PRIu64 ": a fault was injected and went unnoticed", kind,
			 n);
	}
	snprintf(what, sizeof(what), "fault kind %d errno %d%s at call %" PRIu64, kind, e,
		 sticky ? " (sticky)" : "", n);
	check_db(fio, &m, what);
	io_destroy(fio);
	io_destroy(inner);
	return hit;
}

static void fault_loop(enum io_fault_kind kind, int e, bool sticky, const struct wl_opts *w,
		       uint64_t step, bool all_places)
{
	struct loop_stats ls = {0};
	uint64_t n = 1;
	for (; n < 100000; n += step) {
		watchdog();
		if (!fault_run(kind, e, sticky, n, w, &ls))
			break;
	}
	fprintf(stderr, "# kind %d errno %d%s%s: %" PRIu64 " runs, %" PRIu64
		" with a failed call (%" PRIu64 " poisoned; first failure in journal %" PRIu64
		", table %" PRIu64 ", manifest %" PRIu64 ", other %" PRIu64 ")\n",
		kind, e, sticky ? " sticky" : "", w->background ? " background" : "", ls.runs,
		ls.failing_runs, ls.poisoned_runs, ls.jnl, ls.sst, ls.mfst, ls.other);
	assert_true(n > 1);               /* the workload reached the fault at least once */
	assert_true(ls.failing_runs > 0);
	if (all_places) { /* journal, table and manifest writes all failed at least once */
		assert_true(ls.jnl > 0);
		assert_true(ls.sst > 0);
		assert_true(ls.mfst > 0);
	}
}

static struct wl_opts fault_wl(fr_status allowed, bool background)
{
	struct wl_opts w = {.allowed = allowed, .background = background, .memtable_max = 4096,
			    .segment_max = 8192, .batches = 40, .reopen = true};
	return w;
}

static void test_fault_write_enospc(void **state)
{
	(void)state;
	struct wl_opts w = fault_wl(FR_NO_SPACE, false);
	fault_loop(IO_FAULT_WRITE, ENOSPC, false, &w, 1, true);
}

static void test_fault_write_eio(void **state)
{
	(void)state;
	struct wl_opts w = fault_wl(FR_IO, false);
	fault_loop(IO_FAULT_WRITE, EIO, false, &w, 1, true);
	fault_loop(IO_FAULT_WRITE, EIO, true, &w, 3, true);
}

static void test_fault_sync_eio(void **state)
{
	(void)state;
	struct wl_opts w = fault_wl(FR_IO, false);
	fault_loop(IO_FAULT_SYNC, EIO, false, &w, 1, true);
}

static void test_fault_rename_eio(void **state)
{
	(void)state;
	struct wl_opts w = fault_wl(FR_IO, false);
	fault_loop(IO_FAULT_RENAME, EIO, false, &w, 1, false);
}

static void test_fault_background_write_eio(void **state)
{
	(void)state;
	/* the fault lands in the background thread as often as in a commit: the writers must
	 * see FR_POISONED (never hang in a write stall) */
	struct wl_opts w = fault_wl(FR_IO, true);
	fault_loop(IO_FAULT_WRITE, EIO, false, &w, 2, false);
	fault_loop(IO_FAULT_SYNC, EIO, false, &w, 2, false);
}

/* ---- a full disk ---- */

static void test_fault_space_budget(void **state)
{
	(void)state;
	uint64_t runs = 0, failing = 0;
	struct wl_opts w = fault_wl(FR_NO_SPACE, false);
	for (uint64_t budget = 0;; budget += 1500) {
		watchdog();
		struct fr_io *inner = io_mem_new();
		struct fr_io *fio = io_fault_new(inner);
		struct model m;
		char what[64];
		model_init(&m);
		setup_db(fio, &m, true);
		log_cnt = 0;
		io_fault_set_space(fio, budget);
		struct run r = {.w = &w, .m = &m};
		workload(&r, fio);
		bool hit = io_fault_injected(fio) > 0;
		io_fault_clear(fio);
		runs++;
		failing += r.failures > 0;
		if (hit && !r.failures && !r.late_poison && !log_has("(injected)"))
			fail_msg("budget %" PRIu64 ": a write failed unnoticed", budget);
		snprintf(what, sizeof(what), "space budget %" PRIu64, budget);
		check_db(fio, &m, what);
		io_destroy(fio);
		io_destroy(inner);
		if (!hit)
			break;
		assert_true(budget < (64u << 20));
	}
	fprintf(stderr, "# space budget: %" PRIu64 " runs, %" PRIu64 " failing\n", runs, failing);
	assert_true(failing > 0);
}

/* ---- allocation failures ---- */

struct alloc_tally {
	uint64_t failures;
};

static void alloc_failed(struct alloc_tally *t, const char *call, fr_status rc, const fr_error *e)
{
	if (rc != FR_NOMEM && rc != FR_POISONED)
		fail_msg("%s returned %s (%s) under an allocation failure", call,
			 fr_status_str(rc), e->msg);
	t->failures++;
}

/* open (create), put x3, get, flush, put, close, reopen (recovery), get, close; under
 * fr_alloc_fail_at(n). Returns whether the nth allocation was reached. */
static bool alloc_run(unsigned long n, struct model *m, struct alloc_tally *t)
{
	struct fr_io *io = io_mem_new();
	fr_db_options o;
	fr_db *db = NULL;
	fr_keyspace *ks[2] = {NULL, NULL};
	fr_error e;
	fr_status rc;
	char key[32], val[400];
	assert_non_null(io);
	model_init(m);
	db_opts(&o, io, NULL);
	o.memtable_max = 4096;
	fr_alloc_fail_at(n);
	for (int pass = 0; pass < 2; pass++) {
		rc = fr_db_open(DB_PATH, &o, &db, &e);
		if (rc) {
			alloc_failed(t, "fr_db_open", rc, &e);
			db = NULL;
			break;
		}
		for (unsigned k = 0; k < 2 && !rc; k++) {
			rc = fr_keyspace_open(db, k ? "beta" : "alpha", NULL, &ks[k], &e);
			if (rc) {
				alloc_failed(t, "fr_keyspace_open", rc, &e);
				ks[k] = NULL;
			}
		}
		if (rc) {
			fr_keyspace_close(ks[0]);
			ks[0] = NULL;
			rc = fr_db_close(db, &e);
			db = NULL;
			if (rc)
				alloc_failed(t, "fr_db_close", rc, &e);
			break;
		}
		if (pass == 0) {
			for (int j = 0; j < 4; j++) {
				uint64_t b = m->next++;
				fr_batch *bt;
				if (fr_batch_new(db, &bt)) {
					t->failures++;
					continue;
				}
				bool built = true;
				for (unsigned i = 0; i < KEYS && built; i++) {
					batch_key(b, i, key, sizeof(key));
					size_t vl = batch_val(b, i, val);
					built = !fr_batch_put(bt, ks[i % 2], key, strlen(key), val,
							      vl);
				}
				int cl = snprintf(val, sizeof(val), "%" PRIu64, b);
				for (unsigned k = 0; k < 2 && built; k++)
					built = !fr_batch_put(bt, ks[k], "counter", 7, val,
							      (size_t)cl);
				if (built) {
					m->need[b] = NEED_MAY;
					rc = fr_batch_commit(bt, FR_PERSIST_BUFFER, NULL, &e);
					if (rc)
						alloc_failed(t, "fr_batch_commit", rc, &e);
					else
						m->need[b] = NEED_MUST;
				} else {
					t->failures++;
				}
				fr_batch_free(bt);
				if (j == 2) {
					rc = fr_db_flush(db, &e);
					if (rc)
						alloc_failed(t, "fr_db_flush", rc, &e);
				}
			}
		}
		/* reads: an acknowledged batch reads back, or the read fails with FR_NOMEM */
		for (uint64_t b = 1; b < m->next; b++) {
			void *v;
			size_t vl;
			batch_key(b, 1, key, sizeof(key));
			rc = fr_get(ks[1], key, strlen(key), &v, &vl, &e);
			if (rc == FR_OK) {
				size_t el = batch_val(b, 1, val);
				assert_int_equal(vl, el);
				assert_memory_equal(v, val, el);
				fr_free(v);
			} else if (rc == FR_NOT_FOUND) {
				if (m->need[b] == NEED_MUST)
					fail_msg("alloc fail at %lu: acknowledged batch %" PRIu64
						 " not found", n, b);
			} else {
				alloc_failed(t, "fr_get", rc, &e);
			}
		}
		fr_keyspace_close(ks[0]);
		fr_keyspace_close(ks[1]);
		ks[0] = ks[1] = NULL;
		rc = fr_db_close(db, &e);
		db = NULL;
		if (rc)
			alloc_failed(t, "fr_db_close", rc, &e);
	}
	bool hit = fr_alloc_count() >= n;
	fr_alloc_fail_at(0);
	char what[64];
	snprintf(what, sizeof(what), "allocation failure %lu", n);
	check_db(io, m, what);
	io_destroy(io);
	return hit;
}

static void test_fault_alloc_failures(void **state)
{
	(void)state;
	struct alloc_tally t = {0};
	struct model m;
	unsigned long n = 1;
	for (; n <= 5000; n++) {
		if (n % 100 == 1)
			watchdog();
		if (!alloc_run(n, &m, &t))
			break;
	}
	fprintf(stderr, "# allocation failures: %lu runs, %" PRIu64 " failed calls\n", n,
		t.failures);
	assert_true(n > 10);
	assert_true(n <= 5000); /* a run completed without reaching its failure */
	assert_true(t.failures > 0);
}

int main(void)
{
	fr_log_set(log_sink, NULL, FR_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_power_cut_journal_only),
		cmocka_unit_test(test_fault_power_cut_inline_flushes),
		cmocka_unit_test(test_fault_power_cut_after_flush),
		cmocka_unit_test(test_fault_power_cut_after_compaction),
		cmocka_unit_test(test_fault_power_cut_at_every_call),
		cmocka_unit_test(test_fault_write_enospc),
		cmocka_unit_test(test_fault_write_eio),
		cmocka_unit_test(test_fault_sync_eio),
		cmocka_unit_test(test_fault_rename_eio),
		cmocka_unit_test(test_fault_background_write_eio),
		cmocka_unit_test(test_fault_space_budget),
		cmocka_unit_test(test_fault_alloc_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
