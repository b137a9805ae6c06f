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

#endif
