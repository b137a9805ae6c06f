/* SPDX-License-Identifier: MIT */
/*
 * db_bench.h - the engine adapters of fractio-db-bench.
 *
 * Every workload in db_bench.c is written once against struct bench_engine, a small table of
 * function pointers; db_bench_fractio.c, db_bench_rocksdb.c and db_bench_leveldb.c fill one
 * each. The other two engines are compiled in only when CMake found their development files
 * (FR_BENCH_ROCKSDB, FR_BENCH_LEVELDB).
 *
 * Thread-safety: a struct bench_db is shared by all benchmark threads (every engine's handle is
 * thread-safe); a struct bench_batch and a struct bench_iter are used by one thread at a time.
 *
 * The benchmark's keys never begin with the byte 0xff (they start with a big-endian index below
 * 2^56); the LevelDB adapter relies on that to flush.
 */
#ifndef FRACTIO_TOOLS_DB_BENCH_H
#define FRACTIO_TOOLS_DB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The settings every engine gets, translated to its own options. */
struct bench_config {
	uint64_t cache_bytes;        /* block cache */
	uint64_t write_buffer_bytes; /* one memtable */
	int bloom_bits;              /* per key; 0: no filter */
	bool compress;               /* LZ4 (LevelDB: Snappy, its only fast codec) */
	bool sync;                   /* every commit synced to the device */
	/* KV separation: values of at least this many bytes go to blob files, compressed when
	 * compress is set; 0: off. Only engines with `blobs` set accept it. */
	uint64_t blob_threshold;
};

#define BENCH_ERR_MAX 256

/* Why an adapter call failed, filled only on failure. */
struct bench_err {
	char msg[BENCH_ERR_MAX];
};

/* Return values of the adapter calls. */
enum {
	BENCH_FAIL = -1,     /* see the struct bench_err */
	BENCH_OK = 0,
	BENCH_NOT_FOUND = 1, /* get only */
};

struct bench_db;
struct bench_batch;
struct bench_iter;
struct bench_ingest;

struct bench_engine {
	const char *name;
	/* The codec used when bench_config.compress is set ("lz4" or "snappy"). */
	const char *codec;
	/* Honours bench_config.blob_threshold (the program refuses the flag otherwise). */
	bool blobs;
	/* Opens or creates the database in the existing directory dir. */
	int (*open)(const char *dir, const struct bench_config *cfg, struct bench_db **out,
		    struct bench_err *e);
	/* Closes and frees db; accepts NULL. */
	int (*close)(struct bench_db *db, struct bench_err *e);
	int (*put)(struct bench_db *db, const void *key, size_t key_len, const void *val,
		   size_t val_len, struct bench_err *e);
	/* BENCH_OK and the value's length in *val_len, or BENCH_NOT_FOUND. */
	int (*get)(struct bench_db *db, const void *key, size_t key_len, size_t *val_len,
		   struct bench_err *e);
	int (*del)(struct bench_db *db, const void *key, size_t key_len, struct bench_err *e);
	/* Write batches: filled with put/del, then committed (and emptied) at once. */
	int (*batch_new)(struct bench_db *db, struct bench_batch **out, struct bench_err *e);
	void (*batch_free)(struct bench_batch *b);
	int (*batch_put)(struct bench_batch *b, const void *key, size_t key_len, const void *val,
			 size_t val_len, struct bench_err *e);
	int (*batch_del)(struct bench_batch *b, const void *key, size_t key_len,
			 struct bench_err *e);
	int (*batch_commit)(struct bench_batch *b, struct bench_err *e);
	/* An iterator over a consistent view, positioned on the first key >= start (start NULL:
	 * the first key). Key and value views stay valid until the next call on it. */
	int (*iter_open)(struct bench_db *db, const void *start, size_t start_len,
			 struct bench_iter **out, struct bench_err *e);
	void (*iter_close)(struct bench_iter *it);
	bool (*iter_valid)(struct bench_iter *it);
	int (*iter_next)(struct bench_iter *it, struct bench_err *e);
	const void *(*iter_key)(struct bench_iter *it, size_t *len);
	const void *(*iter_value)(struct bench_iter *it, size_t *len);
	/* Writes the memtables to tables and waits for that. */
	int (*flush)(struct bench_db *db, struct bench_err *e);
	/* Waits for background flushes and compactions, as far as the engine can tell. */
	int (*wait_idle)(struct bench_db *db, struct bench_err *e);
	/* Merges everything into the last level and waits for it. */
	int (*compact)(struct bench_db *db, struct bench_err *e);
	/* Bulk ingestion of keys given in ascending order, published at once by ingest_finish
	 * (which frees the ingestion). NULL when the engine has none in this program. */
	int (*ingest_start)(struct bench_db *db, struct bench_ingest **out, struct bench_err *e);
	int (*ingest_put)(struct bench_ingest *in, const void *key, size_t key_len,
			  const void *val, size_t val_len, struct bench_err *e);
	int (*ingest_finish)(struct bench_ingest *in, struct bench_err *e);
};

extern const struct bench_engine bench_engine_fractio;
#ifdef FR_BENCH_ROCKSDB
extern const struct bench_engine bench_engine_rocksdb;
#endif
#ifdef FR_BENCH_LEVELDB
extern const struct bench_engine bench_engine_leveldb;
#endif

/* Fills e->msg like snprintf; returns BENCH_FAIL. */
int bench_fail(struct bench_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* FRACTIO_TOOLS_DB_BENCH_H */
