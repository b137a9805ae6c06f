/* SPDX-License-Identifier: MIT */
/*
 * testutil_db.h - plumbing shared by the store tests that go through the public interface: a
 * call check that names the failing call and its error, and a database fixture (a fresh
 * directory, options, and the handle closed and the directory removed at the end).
 *
 * Header-only on purpose: testutil.c is also linked into the file-system tests, which do not
 * link the engine, so nothing here may become an undefined reference there. Include after
 * <cmocka.h>.
 */
#ifndef FRACTIO_TESTS_TESTUTIL_DB_H
#define FRACTIO_TESTS_TESTUTIL_DB_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fractio.h"
#include "testutil.h"

/* Fails the test unless call returns FR_OK, naming the line, the call and err's message (err
 * is the fr_error the call fills). */
#define TU_OK(call, err)                                                                   \
	do {                                                                               \
		fr_status rc_ = (call);                                                    \
		if (rc_ != FR_OK)                                                          \
			fail_msg("line %d: %s -> %s: %s", __LINE__, #call,                 \
				 fr_status_str(rc_), (err).msg);                           \
	} while (0)

struct tu_fx {
	char *dir;
	fr_db *db; /* opened by the test; closed by tu_fx_free if still open */
	fr_db_options o;
};

/* A fixture in a fresh directory named after tag, with default options; inline_mode turns
 * background work off and uses an 8 KiB memtable, so that flushes and compactions run inline
 * (memtables grow by arena blocks of 4 KiB and more, so a 4 KiB limit would seal, and flush,
 * after every single commit). NULL when out of memory. */
static inline struct tu_fx *tu_fx_new(const char *tag, bool inline_mode)
{
	struct tu_fx *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->dir = tu_tmpdir(tag);
	fr_db_options_init(&f->o);
	if (inline_mode) {
		f->o.background = false;
		f->o.memtable_max = 8192;
	}
	return f;
}

static inline void tu_fx_free(struct tu_fx *f)
{
	if (f->db)
		fr_db_close(f->db, NULL);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
}

/* The cmocka teardown of a test whose state is a struct tu_fx. */
static inline int tu_fx_teardown(void **state)
{
	tu_fx_free(*state);
	return 0;
}

static inline void tu_fx_open(struct tu_fx *f)
{
	fr_error e;
	TU_OK(fr_db_open(f->dir, &f->o, &f->db, &e), e);
	assert_non_null(f->db);
}

static inline void tu_fx_close(struct tu_fx *f)
{
	fr_error e;
	TU_OK(fr_db_close(f->db, &e), e);
	f->db = NULL;
}

static inline void tu_fx_reopen(struct tu_fx *f)
{
	tu_fx_close(f);
	tu_fx_open(f);
}

/* Keyspace name of f->db with default options, in tree (NULL: a tree of its own). */
static inline fr_keyspace *tu_fx_ks(struct tu_fx *f, const char *name, const char *tree)
{
	fr_keyspace_options o;
	fr_keyspace_options_init(&o);
	o.tree = tree;
	fr_keyspace *ks = NULL;
	fr_error e;
	TU_OK(fr_keyspace_open(f->db, name, &o, &ks, &e), e);
	assert_non_null(ks);
	return ks;
}

static inline bool tu_ks_exists(fr_db *db, const char *name)
{
	bool x = false;
	fr_error e;
	TU_OK(fr_keyspace_exists(db, name, &x, &e), e);
	return x;
}

static inline void tu_put_s(fr_keyspace *ks, const char *k, const char *v)
{
	fr_error e;
	TU_OK(fr_put(ks, k, strlen(k), v, strlen(v), &e), e);
}

/* Checks k through fr_get and fr_contains (v NULL: absent). */
static inline void tu_expect_s(fr_keyspace *ks, const char *k, const char *v)
{
	void *val = NULL;
	size_t n = 0;
	bool has = !v;
	fr_error e;
	fr_status rc = fr_get(ks, k, strlen(k), &val, &n, &e);
	fr_error ce;
	TU_OK(fr_contains(ks, k, strlen(k), &has, &ce), ce);
	if (!v) {
		if (rc != FR_NOT_FOUND)
			fail_msg("%s/%s: expected absent, got %s (%.*s)", fr_keyspace_name(ks), k,
				 fr_status_str(rc), rc ? 0 : (int)n, rc ? "" : (char *)val);
		assert_false(has);
		assert_null(val);
		return;
	}
	if (rc != FR_OK)
		fail_msg("%s/%s: expected %s, got %s: %s", fr_keyspace_name(ks), k, v,
			 fr_status_str(rc), e.msg);
	if (n != strlen(v) || memcmp(val, v, n))
		fail_msg("%s/%s: expected %s, got %.*s", fr_keyspace_name(ks), k, v, (int)n,
			 (char *)val);
	assert_true(has);
	fr_free(val);
}

#endif
