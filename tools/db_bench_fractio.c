/* SPDX-License-Identifier: MIT */
/*
 * db_bench_fractio.c - the libfractio adapter of fractio-db-bench, through fractio.h only.
 *
 * The benchmark's data lives in one keyspace, "bench", with its own tree. The settings map as
 * follows: the block cache is block_cache_bytes; the write buffer is memtable_max (one
 * memtable, as RocksDB's and LevelDB's write_buffer_size are), with write_buffer_max at twice
 * that so one memtable can be filled while another is flushed (RocksDB's default of two write
 * buffers); bloom bits and LZ4 are the keyspace's table options; sync commits use
 * FR_PERSIST_SYNC_DATA (fdatasync), others FR_PERSIST_BUFFER. The tree is leveled with
 * RocksDB's default shape (L0 trigger 4, level ratio 10, 64 MiB tables). A blob threshold is the
 * keyspace's blob_threshold, with blob_compress following the compression setting (blob files
 * of 64 MiB, GC at 50% stale: the defaults). Everything else keeps the engine's defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_bench.h"
#include "fractio.h"

#define KEYSPACE "bench"

struct bench_db {
	fr_db *db;
	fr_keyspace *ks;
	fr_persist persist;
};

struct bench_batch {
	struct bench_db *db;
	fr_batch *b;
};

struct bench_iter {
	fr_iter *it;
};

struct bench_ingest {
	fr_ingest *in;
};

static int fail(struct bench_err *e, const char *what, fr_status st, const fr_error *fe)
{
	const char *msg = fe != NULL && fe->code == st && fe->msg[0] != '\0' ? fe->msg : "";

	return bench_fail(e, "%s: %s%s%s", what, fr_status_str(st), msg[0] ? ": " : "", msg);
}

/* The engine writes an fr_error only on failure, and fail() reads one only when its code is
 * the failing status: clearing code and message is enough for the calls made once per entry
 * of a scan, where zeroing all 272 bytes each time showed in the seekrandom profile. */
static void fe_clear(fr_error *fe)
{
	fe->code = FR_OK;
	fe->msg[0] = '\0';
}

static int fx_close(struct bench_db *db, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st;

	if (db == NULL)
		return BENCH_OK;
	fr_keyspace_close(db->ks);
	st = fr_db_close(db->db, &fe);
	free(db);
	return st == FR_OK ? BENCH_OK : fail(e, "fr_db_close", st, &fe);
}

static int fx_open(const char *dir, const struct bench_config *cfg, struct bench_db **out,
		   struct bench_err *e)
{
	struct bench_db *db = calloc(1, sizeof(*db));
	fr_db_options o;
	fr_keyspace_options ko;
	fr_error fe = { 0 };
	fr_status st;

	*out = NULL;
	if (db == NULL)
		return bench_fail(e, "out of memory");
	fr_db_options_init(&o);
	o.block_cache_bytes = (size_t)cfg->cache_bytes;
	o.memtable_max = (size_t)cfg->write_buffer_bytes;
	o.write_buffer_max = 2 * (size_t)cfg->write_buffer_bytes;
	db->persist = cfg->sync ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER;
	o.default_persist = db->persist;
	st = fr_db_open(dir, &o, &db->db, &fe);
	if (st != FR_OK) {
		free(db);
		return fail(e, "fr_db_open", st, &fe);
	}
	fr_keyspace_options_init(&ko);
	ko.bloom_bits_per_key = (uint32_t)cfg->bloom_bits;
	ko.compress = cfg->compress;
	/* RocksDB's shape, spelled out so that a change of our defaults cannot skew a comparison */
	ko.compaction = FR_COMPACTION_LEVELED;
	ko.l0_trigger = 4;
	ko.level_ratio = 10;
	ko.table_target_size = 64u << 20;
	ko.blob_threshold = (uint32_t)cfg->blob_threshold;
	ko.blob_compress = cfg->compress;
	st = fr_keyspace_open(db->db, KEYSPACE, &ko, &db->ks, &fe);
	if (st != FR_OK) {
		fail(e, "fr_keyspace_open", st, &fe);
		fr_db_close(db->db, NULL);
		free(db);
		return BENCH_FAIL;
	}
	*out = db;
	return BENCH_OK;
}

static int fx_put(struct bench_db *db, const void *key, size_t key_len, const void *val,
		  size_t val_len, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_put(db->ks, key, key_len, val, val_len, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_put", st, &fe);
}

static int fx_get(struct bench_db *db, const void *key, size_t key_len, size_t *val_len,
		  struct bench_err *e)
{
	fr_error fe = { 0 };
	void *val = NULL;
	fr_status st = fr_get(db->ks, key, key_len, &val, val_len, &fe);

	fr_free(val);
	if (st == FR_NOT_FOUND)
		return BENCH_NOT_FOUND;
	return st == FR_OK ? BENCH_OK : fail(e, "fr_get", st, &fe);
}

static int fx_del(struct bench_db *db, const void *key, size_t key_len, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_remove(db->ks, key, key_len, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_remove", st, &fe);
}

static int fx_batch_new(struct bench_db *db, struct bench_batch **out, struct bench_err *e)
{
	struct bench_batch *b = calloc(1, sizeof(*b));
	fr_status st;

	*out = NULL;
	if (b == NULL)
		return bench_fail(e, "out of memory");
	st = fr_batch_new(db->db, &b->b);
	if (st != FR_OK) {
		free(b);
		return fail(e, "fr_batch_new", st, NULL);
	}
	b->db = db;
	*out = b;
	return BENCH_OK;
}

static void fx_batch_free(struct bench_batch *b)
{
	if (b == NULL)
		return;
	fr_batch_free(b->b);
	free(b);
}

static int fx_batch_put(struct bench_batch *b, const void *key, size_t key_len, const void *val,
			size_t val_len, struct bench_err *e)
{
	fr_status st = fr_batch_put(b->b, b->db->ks, key, key_len, val, val_len);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_batch_put", st, NULL);
}

static int fx_batch_del(struct bench_batch *b, const void *key, size_t key_len,
			struct bench_err *e)
{
	fr_status st = fr_batch_remove(b->b, b->db->ks, key, key_len);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_batch_remove", st, NULL);
}

static int fx_batch_commit(struct bench_batch *b, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_batch_commit(b->b, b->db->persist, NULL, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_batch_commit", st, &fe);
}

/* The start key is the iterator's lower bound: fr_iter_open positions the iterator itself, so
 * opening it and then seeking would position it twice. Iteration goes forward only, where a
 * lower bound never hides an entry past the start. */
static int fx_iter_open(struct bench_db *db, const void *start, size_t start_len,
			struct bench_iter **out, struct bench_err *e)
{
	struct bench_iter *it = calloc(1, sizeof(*it));
	fr_iter_options o;
	fr_error fe;
	fr_status st;

	fe_clear(&fe);
	*out = NULL;
	if (it == NULL)
		return bench_fail(e, "out of memory");
	memset(&o, 0, sizeof(o));
	o.lower = start;
	o.lower_len = start != NULL ? start_len : 0;
	st = fr_iter_open(db->ks, &o, &it->it, &fe);
	if (st != FR_OK) {
		free(it);
		return fail(e, "fr_iter_open", st, &fe);
	}
	*out = it;
	return BENCH_OK;
}

static void fx_iter_close(struct bench_iter *it)
{
	if (it == NULL)
		return;
	fr_iter_close(it->it);
	free(it);
}

static bool fx_iter_valid(struct bench_iter *it)
{
	return fr_iter_valid(it->it);
}

static int fx_iter_next(struct bench_iter *it, struct bench_err *e)
{
	fr_error fe;
	fr_status st;

	fe_clear(&fe);
	st = fr_iter_next(it->it, &fe);
	return st == FR_OK ? BENCH_OK : fail(e, "fr_iter_next", st, &fe);
}

static const void *fx_iter_key(struct bench_iter *it, size_t *len)
{
	return fr_iter_key(it->it, len);
}

static const void *fx_iter_value(struct bench_iter *it, size_t *len)
{
	return fr_iter_value(it->it, len);
}

static int fx_flush(struct bench_db *db, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_db_flush(db->db, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_db_flush", st, &fe);
}

static int fx_wait_idle(struct bench_db *db, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_db_wait_idle(db->db, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_db_wait_idle", st, &fe);
}

static int fx_compact(struct bench_db *db, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_major_compact(db->ks, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_major_compact", st, &fe);
}

static int fx_ingest_start(struct bench_db *db, struct bench_ingest **out, struct bench_err *e)
{
	struct bench_ingest *in = calloc(1, sizeof(*in));
	fr_error fe = { 0 };
	fr_status st;

	*out = NULL;
	if (in == NULL)
		return bench_fail(e, "out of memory");
	st = fr_ingest_start(db->ks, &in->in, &fe);
	if (st != FR_OK) {
		free(in);
		return fail(e, "fr_ingest_start", st, &fe);
	}
	*out = in;
	return BENCH_OK;
}

static int fx_ingest_put(struct bench_ingest *in, const void *key, size_t key_len,
			 const void *val, size_t val_len, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_ingest_put(in->in, key, key_len, val, val_len, &fe);

	return st == FR_OK ? BENCH_OK : fail(e, "fr_ingest_put", st, &fe);
}

static int fx_ingest_finish(struct bench_ingest *in, struct bench_err *e)
{
	fr_error fe = { 0 };
	fr_status st = fr_ingest_finish(in->in, NULL, &fe);

	free(in);
	return st == FR_OK ? BENCH_OK : fail(e, "fr_ingest_finish", st, &fe);
}

const struct bench_engine bench_engine_fractio = {
	.name = "fractio",
	.codec = "lz4",
	.blobs = true,
	.open = fx_open,
	.close = fx_close,
	.put = fx_put,
	.get = fx_get,
	.del = fx_del,
	.batch_new = fx_batch_new,
	.batch_free = fx_batch_free,
	.batch_put = fx_batch_put,
	.batch_del = fx_batch_del,
	.batch_commit = fx_batch_commit,
	.iter_open = fx_iter_open,
	.iter_close = fx_iter_close,
	.iter_valid = fx_iter_valid,
	.iter_next = fx_iter_next,
	.iter_key = fx_iter_key,
	.iter_value = fx_iter_value,
	.flush = fx_flush,
	.wait_idle = fx_wait_idle,
	.compact = fx_compact,
	.ingest_start = fx_ingest_start,
	.ingest_put = fx_ingest_put,
	.ingest_finish = fx_ingest_finish,
};
