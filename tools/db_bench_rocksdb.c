/* SPDX-License-Identifier: MIT */
/*
 * db_bench_rocksdb.c - the RocksDB adapter of fractio-db-bench, through RocksDB's C API
 * (rocksdb/c.h). Compiled only when CMake found RocksDB's development files.
 *
 * Settings: write_buffer_size is the memtable size (RocksDB keeps its default of two write
 * buffers), the block-based table gets an LRU block cache of the given size (none for 0) and a
 * full bloom filter of the given bits per key, compression is LZ4 or none, sync commits set
 * WriteOptions::sync, and the write-ahead log stays on. A blob threshold turns on the integrated
 * BlobDB: enable_blob_files, min_blob_size, blob_compression_type following the compression
 * setting, and enable_blob_garbage_collection. Everything else keeps RocksDB's defaults (4 KiB
 * blocks, leveled compaction, two background jobs, 256 MiB blob files).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rocksdb/c.h>

#include "db_bench.h"

/* Values of rocksdb::BottommostLevelCompaction, which c.h passes as a plain byte. */
#define BOTTOMMOST_FORCE_OPTIMIZED 3

struct bench_db {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_cache_t *cache;
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts;
};

struct bench_batch {
	struct bench_db *db;
	rocksdb_writebatch_t *wb;
};

struct bench_iter {
	rocksdb_iterator_t *it;
};

/* Moves a RocksDB error string into e and frees it. */
static int fail(struct bench_err *e, const char *what, char *msg)
{
	bench_fail(e, "%s: %s", what, msg != NULL ? msg : "failed");
	rocksdb_free(msg);
	return BENCH_FAIL;
}

static int rx_close(struct bench_db *db, struct bench_err *e)
{
	(void)e;
	if (db == NULL)
		return BENCH_OK;
	if (db->db != NULL)
		rocksdb_close(db->db);
	if (db->ropts != NULL)
		rocksdb_readoptions_destroy(db->ropts);
	if (db->wopts != NULL)
		rocksdb_writeoptions_destroy(db->wopts);
	if (db->opts != NULL)
		rocksdb_options_destroy(db->opts);
	if (db->cache != NULL)
		rocksdb_cache_destroy(db->cache);
	free(db);
	return BENCH_OK;
}

static int rx_open(const char *dir, const struct bench_config *cfg, struct bench_db **out,
		   struct bench_err *e)
{
	struct bench_db *db = calloc(1, sizeof(*db));
	rocksdb_block_based_table_options_t *t;
	char *msg = NULL;

	*out = NULL;
	if (db == NULL)
		return bench_fail(e, "out of memory");
	db->opts = rocksdb_options_create();
	db->ropts = rocksdb_readoptions_create();
	db->wopts = rocksdb_writeoptions_create();
	t = rocksdb_block_based_options_create();
	rocksdb_options_set_create_if_missing(db->opts, 1);
	rocksdb_options_set_write_buffer_size(db->opts, (size_t)cfg->write_buffer_bytes);
	rocksdb_options_set_compression(db->opts, cfg->compress ? rocksdb_lz4_compression :
								  rocksdb_no_compression);
	if (cfg->cache_bytes > 0) {
		db->cache = rocksdb_cache_create_lru((size_t)cfg->cache_bytes);
		rocksdb_block_based_options_set_block_cache(t, db->cache);
	} else {
		rocksdb_block_based_options_set_no_block_cache(t, 1);
	}
	/* the table options take ownership of the policy */
	if (cfg->bloom_bits > 0)
		rocksdb_block_based_options_set_filter_policy(
			t, rocksdb_filterpolicy_create_bloom_full(cfg->bloom_bits));
	rocksdb_options_set_block_based_table_factory(db->opts, t);
	rocksdb_block_based_options_destroy(t);
	rocksdb_writeoptions_set_sync(db->wopts, cfg->sync);
	if (cfg->blob_threshold > 0) {
		/* integrated BlobDB: values go to blob files at flush, and compaction relocates
		 * those of old blob files (age cutoff 0.25, the default) */
		rocksdb_options_set_enable_blob_files(db->opts, 1);
		rocksdb_options_set_min_blob_size(db->opts, cfg->blob_threshold);
		rocksdb_options_set_blob_compression_type(
			db->opts, cfg->compress ? rocksdb_lz4_compression : rocksdb_no_compression);
		rocksdb_options_set_enable_blob_gc(db->opts, 1);
	}
	db->db = rocksdb_open(db->opts, dir, &msg);
	if (msg != NULL) {
		db->db = NULL;
		fail(e, "rocksdb_open", msg);
		rx_close(db, NULL);
		return BENCH_FAIL;
	}
	*out = db;
	return BENCH_OK;
}

static int rx_put(struct bench_db *db, const void *key, size_t key_len, const void *val,
		  size_t val_len, struct bench_err *e)
{
	char *msg = NULL;

	rocksdb_put(db->db, db->wopts, key, key_len, val, val_len, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "rocksdb_put", msg);
}

static int rx_get(struct bench_db *db, const void *key, size_t key_len, size_t *val_len,
		  struct bench_err *e)
{
	char *msg = NULL;
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned(db->db, db->ropts, key, key_len, &msg);

	if (msg != NULL)
		return fail(e, "rocksdb_get", msg);
	if (v == NULL)
		return BENCH_NOT_FOUND;
	rocksdb_pinnableslice_value(v, val_len);
	rocksdb_pinnableslice_destroy(v);
	return BENCH_OK;
}

static int rx_del(struct bench_db *db, const void *key, size_t key_len, struct bench_err *e)
{
	char *msg = NULL;

	rocksdb_delete(db->db, db->wopts, key, key_len, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "rocksdb_delete", msg);
}

static int rx_batch_new(struct bench_db *db, struct bench_batch **out, struct bench_err *e)
{
	struct bench_batch *b = calloc(1, sizeof(*b));

	*out = NULL;
	if (b == NULL)
		return bench_fail(e, "out of memory");
	b->db = db;
	b->wb = rocksdb_writebatch_create();
	*out = b;
	return BENCH_OK;
}

static void rx_batch_free(struct bench_batch *b)
{
	if (b == NULL)
		return;
	rocksdb_writebatch_destroy(b->wb);
	free(b);
}

static int rx_batch_put(struct bench_batch *b, const void *key, size_t key_len, const void *val,
			size_t val_len, struct bench_err *e)
{
	(void)e;
	rocksdb_writebatch_put(b->wb, key, key_len, val, val_len);
	return BENCH_OK;
}

static int rx_batch_del(struct bench_batch *b, const void *key, size_t key_len,
			struct bench_err *e)
{
	(void)e;
	rocksdb_writebatch_delete(b->wb, key, key_len);
	return BENCH_OK;
}

static int rx_batch_commit(struct bench_batch *b, struct bench_err *e)
{
	char *msg = NULL;

	rocksdb_write(b->db->db, b->db->wopts, b->wb, &msg);
	rocksdb_writebatch_clear(b->wb);
	return msg == NULL ? BENCH_OK : fail(e, "rocksdb_write", msg);
}

static int rx_iter_open(struct bench_db *db, const void *start, size_t start_len,
			struct bench_iter **out, struct bench_err *e)
{
	struct bench_iter *it = calloc(1, sizeof(*it));
	char *msg = NULL;

	*out = NULL;
	if (it == NULL)
		return bench_fail(e, "out of memory");
	it->it = rocksdb_create_iterator(db->db, db->ropts);
	if (start != NULL)
		rocksdb_iter_seek(it->it, start, start_len);
	else
		rocksdb_iter_seek_to_first(it->it);
	rocksdb_iter_get_error(it->it, &msg);
	if (msg != NULL) {
		rocksdb_iter_destroy(it->it);
		free(it);
		return fail(e, "rocksdb_iter_seek", msg);
	}
	*out = it;
	return BENCH_OK;
}

static void rx_iter_close(struct bench_iter *it)
{
	if (it == NULL)
		return;
	rocksdb_iter_destroy(it->it);
	free(it);
}

static bool rx_iter_valid(struct bench_iter *it)
{
	return rocksdb_iter_valid(it->it) != 0;
}

static int rx_iter_next(struct bench_iter *it, struct bench_err *e)
{
	char *msg = NULL;

	rocksdb_iter_next(it->it);
	rocksdb_iter_get_error(it->it, &msg);
	return msg == NULL ? BENCH_OK : fail(e, "rocksdb_iter_next", msg);
}

static const void *rx_iter_key(struct bench_iter *it, size_t *len)
{
	return rocksdb_iter_key(it->it, len);
}

static const void *rx_iter_value(struct bench_iter *it, size_t *len)
{
	return rocksdb_iter_value(it->it, len);
}

static int rx_flush(struct bench_db *db, struct bench_err *e)
{
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	char *msg = NULL;

	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(db->db, fo, &msg);
	rocksdb_flushoptions_destroy(fo);
	return msg == NULL ? BENCH_OK : fail(e, "rocksdb_flush", msg);
}

/* The C API has no call that waits for background work, so poll the properties that say
 * whether any is running or due. */
static int rx_wait_idle(struct bench_db *db, struct bench_err *e)
{
	static const char *const props[] = {
		"rocksdb.mem-table-flush-pending",
		"rocksdb.num-running-flushes",
		"rocksdb.compaction-pending",
		"rocksdb.num-running-compactions",
	};
	const struct timespec pause = { 0, 10 * 1000 * 1000 };
	bool busy;

	do {
		size_t i;

		busy = false;
		for (i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
			uint64_t v = 0;

			if (rocksdb_property_int(db->db, props[i], &v) != 0)
				return bench_fail(e, "rocksdb property %s unknown", props[i]);
			busy = busy || v != 0;
		}
		if (busy)
			nanosleep(&pause, NULL);
	} while (busy);
	return BENCH_OK;
}

static int rx_compact(struct bench_db *db, struct bench_err *e)
{
	rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();

	/* rewrite the last level too, as a major compaction does, but only once */
	rocksdb_compactoptions_set_bottommost_level_compaction(co, BOTTOMMOST_FORCE_OPTIMIZED);
	rocksdb_compact_range_opt(db->db, co, NULL, 0, NULL, 0);
	rocksdb_compactoptions_destroy(co);
	return rx_wait_idle(db, e);
}

const struct bench_engine bench_engine_rocksdb = {
	.name = "rocksdb",
	.codec = "lz4",
	.blobs = true,
	.open = rx_open,
	.close = rx_close,
	.put = rx_put,
	.get = rx_get,
	.del = rx_del,
	.batch_new = rx_batch_new,
	.batch_free = rx_batch_free,
	.batch_put = rx_batch_put,
	.batch_del = rx_batch_del,
	.batch_commit = rx_batch_commit,
	.iter_open = rx_iter_open,
	.iter_close = rx_iter_close,
	.iter_valid = rx_iter_valid,
	.iter_next = rx_iter_next,
	.iter_key = rx_iter_key,
	.iter_value = rx_iter_value,
	.flush = rx_flush,
	.wait_idle = rx_wait_idle,
	.compact = rx_compact,
};
