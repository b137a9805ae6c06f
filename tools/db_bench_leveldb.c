/* SPDX-License-Identifier: MIT */
/*
 * db_bench_leveldb.c - the LevelDB adapter of fractio-db-bench, through LevelDB's C API
 * (leveldb/c.h). Compiled only when CMake found LevelDB's development files.
 *
 * Settings: write_buffer_size is the memtable size, the LRU block cache has the given size (a
 * 0-byte cache caches nothing), the bloom filter has the given bits per key, sync commits set
 * WriteOptions::sync, and the log is always on. LevelDB has no LZ4: "compression on" means
 * Snappy, its only codec (bench_engine.codec says so, and the output names it). Everything else
 * keeps LevelDB's defaults (4 KiB blocks, 2 MiB tables, one background thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "db_bench.h"

struct bench_db {
	leveldb_t *db;
	leveldb_options_t *opts;
	leveldb_cache_t *cache;
	leveldb_filterpolicy_t *filter;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
};

struct bench_batch {
	struct bench_db *db;
	leveldb_writebatch_t *wb;
};

struct bench_iter {
	leveldb_iterator_t *it;
};

/* Moves a LevelDB error string into e and frees it. */
static int fail(struct bench_err *e, const char *what, char *msg)
{
	bench_fail(e, "%s: %s", what, msg != NULL ? msg : "failed");
	leveldb_free(msg);
	return BENCH_FAIL;
}

static int lx_close(struct bench_db *db, struct bench_err *e)
{
	(void)e;
	if (db == NULL)
		return BENCH_OK;
	/* the database uses the cache and the filter until it is closed */
	if (db->db != NULL)
		leveldb_close(db->db);
	if (db->ropts != NULL)
		leveldb_readoptions_destroy(db->ropts);
	if (db->wopts != NULL)
		leveldb_writeoptions_destroy(db->wopts);
	if (db->opts != NULL)
		leveldb_options_destroy(db->opts);
	if (db->cache != NULL)
		leveldb_cache_destroy(db->cache);
	if (db->filter != NULL)
		leveldb_filterpolicy_destroy(db->filter);
	free(db);
	return BENCH_OK;
}

static int lx_open(const char *dir, const struct bench_config *cfg, struct bench_db **out,
		   struct bench_err *e)
{
	struct bench_db *db = calloc(1, sizeof(*db));
	char *msg = NULL;

	*out = NULL;
	if (db == NULL)
		return bench_fail(e, "out of memory");
	db->opts = leveldb_options_create();
	db->ropts = leveldb_readoptions_create();
	db->wopts = leveldb_writeoptions_create();
	leveldb_options_set_create_if_missing(db->opts, 1);
	leveldb_options_set_write_buffer_size(db->opts, (size_t)cfg->write_buffer_bytes);
	leveldb_options_set_compression(db->opts, cfg->compress ? leveldb_snappy_compression :
								  leveldb_no_compression);
	db->cache = leveldb_cache_create_lru((size_t)cfg->cache_bytes);
	leveldb_options_set_cache(db->opts, db->cache);
	if (cfg->bloom_bits > 0) {
		db->filter = leveldb_filterpolicy_create_bloom(cfg->bloom_bits);
		leveldb_options_set_filter_policy(db->opts, db->filter);
	}
	leveldb_writeoptions_set_sync(db->wopts, cfg->sync);
	db->db = leveldb_open(db->opts, dir, &msg);
	if (msg != NULL) {
		db->db = NULL;
		fail(e, "leveldb_open", msg);
		lx_close(db, NULL);
		return BENCH_FAIL;
	}
	*out = db;
	return BENCH_OK;
}

static int lx_put(struct bench_db *db, const void *key, size_t key_len, const void *val,
		  size_t val_len, struct bench_err *e)
{
	char *msg = NULL;

	leveldb_put(db->db, db->wopts, key, key_len, val, val_len, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "leveldb_put", msg);
}

static int lx_get(struct bench_db *db, const void *key, size_t key_len, size_t *val_len,
		  struct bench_err *e)
{
	char *msg = NULL;
	char *v = leveldb_get(db->db, db->ropts, key, key_len, val_len, &msg);

	if (msg != NULL)
		return fail(e, "leveldb_get", msg);
	if (v == NULL)
		return BENCH_NOT_FOUND;
	leveldb_free(v);
	return BENCH_OK;
}

static int lx_del(struct bench_db *db, const void *key, size_t key_len, struct bench_err *e)
{
	char *msg = NULL;

	leveldb_delete(db->db, db->wopts, key, key_len, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "leveldb_delete", msg);
}

static int lx_batch_new(struct bench_db *db, struct bench_batch **out, struct bench_err *e)
{
	struct bench_batch *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (b == NULL)
		return bench_fail(e, "out of memory");
	b->db = db;
	b->wb = leveldb_writebatch_create();
	*out = b;
	return BENCH_OK;
}

static void lx_batch_free(struct bench_batch *b)
{
	if (b == NULL)
		return;
	leveldb_writebatch_destroy(b->wb);
	free(b);
}

static int lx_batch_put(struct bench_batch *b, const void *key, size_t key_len, const void *val,
			size_t val_len, struct bench_err *e)
{
	(void)e;
	leveldb_writebatch_put(b->wb, key, key_len, val, val_len);
	return BENCH_OK;
}

static int lx_batch_del(struct bench_batch *b, const void *key, size_t key_len,
			struct bench_err *e)
{
	(void)e;
	leveldb_writebatch_delete(b->wb, key, key_len);
	return BENCH_OK;
}

static int lx_batch_commit(struct bench_batch *b, struct bench_err *e)
{
	char *msg = NULL;

	leveldb_write(b->db->db, b->db->wopts, b->wb, &msg);
	leveldb_writebatch_clear(b->wb);
	return msg == NULL ? BENCH_OK : fail(e, "leveldb_write", msg);
}

static int lx_iter_open(struct bench_db *db, const void *start, size_t start_len,
			struct bench_iter **out, struct bench_err *e)
{
	struct bench_iter *it = calloc(1, sizeof(*it));
	char *msg = NULL;

	*out = NULL;
	if (it == NULL)
		return bench_fail(e, "out of memory");
	it->it = leveldb_create_iterator(db->db, db->ropts);
	if (start != NULL)
		leveldb_iter_seek(it->it, start, start_len);
	else
		leveldb_iter_seek_to_first(it->it);
	leveldb_iter_get_error(it->it, &msg);
	if (msg != NULL) {
		leveldb_iter_destroy(it->it);
		free(it);
		return fail(e, "leveldb_iter_seek", msg);
	}
	*out = it;
	return BENCH_OK;
}

static void lx_iter_close(struct bench_iter *it)
{
	if (it == NULL)
		return;
	leveldb_iter_destroy(it->it);
	free(it);
}

static bool lx_iter_valid(struct bench_iter *it)
{
	return leveldb_iter_valid(it->it) != 0;
}

static int lx_iter_next(struct bench_iter *it, struct bench_err *e)
{
	char *msg = NULL;

	leveldb_iter_next(it->it);
	leveldb_iter_get_error(it->it, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "leveldb_iter_next", msg);
}

static const void *lx_iter_key(struct bench_iter *it, size_t *len)
{
	return leveldb_iter_key(it->it, len);
}

static const void *lx_iter_value(struct bench_iter *it, size_t *len)
{
	return leveldb_iter_value(it->it, len);
}

/*
 * LevelDB has no flush call. CompactRange always writes the memtable out first, then compacts
 * the tables overlapping the range; a range above every benchmark key (they never begin with
 * 0xff, db_bench.h) overlaps none, so only the memtable is written.
 */
static int lx_flush(struct bench_db *db, struct bench_err *e)
{
	static const char above[] = "\xff\xff\xff\xff\xff\xff\xff\xff";

	(void)e;
	leveldb_compact_range(db->db, above, sizeof(above) - 1, above, sizeof(above) - 1);
	return BENCH_OK;
}

/* LevelDB cannot tell whether a compaction is running or due; the caller's wait for the
 * process's writes to stop covers it. */
static int lx_wait_idle(struct bench_db *db, struct bench_err *e)
{
	(void)db;
	(void)e;
	return BENCH_OK;
}

static int lx_compact(struct bench_db *db, struct bench_err *e)
{
	(void)e;
	leveldb_compact_range(db->db, NULL, 0, NULL, 0);
	return BENCH_OK;
}

const struct bench_engine bench_engine_leveldb = {
	.name = "leveldb",
	.codec = "snappy",
	.open = lx_open,
	.close = lx_close,
	.put = lx_put,
	.get = lx_get,
	.del = lx_del,
	.batch_new = lx_batch_new,
	.batch_free = lx_batch_free,
	.batch_put = lx_batch_put,
	.batch_del = lx_batch_del,
	.batch_commit = lx_batch_commit,
	.iter_open = lx_iter_open,
	.iter_close = lx_iter_close,
	.iter_valid = lx_iter_valid,
	.iter_next = lx_iter_next,
	.iter_key = lx_iter_key,
	.iter_value = lx_iter_value,
	.flush = lx_flush,
	.wait_idle = lx_wait_idle,
	.compact = lx_compact,
};
