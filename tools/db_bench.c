/* SPDX-License-Identifier: MIT */
/*
 * db_bench.c - fractio-db-bench: the db_bench workloads of LevelDB and RocksDB, run against
 * libfractio through fractio.h, or against RocksDB or LevelDB when the build found them, so the
 * engines can be compared on one machine with the same keys, values and settings.
 *
 * The benchmarks named by --benchmarks run in order on one database, as in db_bench: fillseq,
 * ingest and fillrandom start from an empty database, the others use what the earlier ones
 * left. Key i (0 <= i < --num) is its big-endian 8-byte index padded with '0' to --key_size
 * bytes; a missing key is a present key's bytes followed by '.', so it sorts between real keys.
 * Values are cut from a pool in which every 100-byte piece repeats its first half (printable
 * random text), so they compress to about half, like db_bench's generator.
 *
 * The benchmark keeps a bitmap of the keys that must be present, so every read is checked: a
 * get, a seek or a scan that misses a present key or finds an absent one counts as a
 * verify error, which the output reports and which makes the exit status 1.
 *
 * Each benchmark prints one JSON line. The definitions, the same for every engine:
 *  - ops_per_sec: operations / wall time of the workload (an operation is one put or delete,
 *    one get, one seek with its 10 nexts, one entry of a scan; readwhilewriting counts the
 *    readers' gets only);
 *  - mb_per_sec: bytes of keys and values written (or deleted keys), or read, per second, in
 *    MiB as db_bench counts it;
 *  - p50_us, p99_us: latency of one operation (one commit with --batch_size > 1) from a
 *    log-bucketed histogram (32 buckets per power of two: within 3%);
 *  - write_amp: bytes the process wrote to storage (/proc/self/io write_bytes, which counts
 *    a page when it is dirtied, so data still in the page cache is included) from the start
 *    of the workload until after the memtables were flushed and the process then wrote nothing
 *    for a while, divided by the key and value bytes the workload wrote. Files deleted before
 *    write-back still count: that is what the engine asked to write;
 *  - disk_bytes: allocated size of the database directory's files (st_blocks * 512, like du),
 *    measured after the workload; disk_apparent_bytes sums st_size;
 *  - peak_rss_kb: the process's peak resident set so far (getrusage), so it never decreases
 *    from one benchmark to the next.
 * The flush and the wait after a writing workload are not part of its time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "db_bench.h"
#include "fractio.h"

#define PROG "fractio-db-bench"
#define MARKER ".fractio-db-bench" /* in a database directory this program may empty */
#define KEY_INDEX_LEN 8
#define KEY_SIZE_MAX 1024
#define VALUE_SIZE_MAX (64u << 20)
#define NUM_MAX (1ull << 40)
#define POOL_MIN (1u << 20)
#define PIECE_LEN 100
#define SEEK_NEXTS 10
#define QUICK_NUM 10000
#define MISMATCH_LOG_MAX 5      /* verify errors described on stderr, per thread */
#define SETTLE_QUIET_POLLS 3    /* polls without a write that end the wait for quiet */
#define SETTLE_POLL_MS 100
#define SETTLE_POLL_MS_QUICK 20
#define SETTLE_MAX_S 600

/* ---- workloads ---- */
enum workload {
	W_FILLSEQ,
	W_FILLRANDOM,
	W_OVERWRITE,
	W_READRANDOM,
	W_READMISSING,
	W_READSEQ,
	W_SEEKRANDOM,
	W_DELETERANDOM,
	W_READWHILEWRITING,
	W_COMPACT,
	W_INGEST,
};

static const char *const workload_names[] = {
	[W_FILLSEQ] = "fillseq",
	[W_FILLRANDOM] = "fillrandom",
	[W_OVERWRITE] = "overwrite",
	[W_READRANDOM] = "readrandom",
	[W_READMISSING] = "readmissing",
	[W_READSEQ] = "readseq",
	[W_SEEKRANDOM] = "seekrandom",
	[W_DELETERANDOM] = "deleterandom",
	[W_READWHILEWRITING] = "readwhilewriting",
	[W_COMPACT] = "compact",
	[W_INGEST] = "ingest",
};
#define WORKLOAD_CNT (sizeof(workload_names) / sizeof(workload_names[0]))

static bool workload_writes(enum workload w)
{
	return w == W_FILLSEQ || w == W_FILLRANDOM || w == W_OVERWRITE || w == W_DELETERANDOM ||
	       w == W_READWHILEWRITING || w == W_INGEST;
}

static bool workload_reads(enum workload w)
{
	return w == W_READRANDOM || w == W_READMISSING || w == W_READSEQ || w == W_SEEKRANDOM ||
	       w == W_READWHILEWRITING;
}

static const struct bench_engine *const engines[] = {
	&bench_engine_fractio,
#ifdef FR_BENCH_ROCKSDB
	&bench_engine_rocksdb,
#endif
#ifdef FR_BENCH_LEVELDB
	&bench_engine_leveldb,
#endif
};
#define ENGINE_CNT (sizeof(engines) / sizeof(engines[0]))

/* ---- histogram: exact below 32 ns, then 32 buckets per power of two ---- */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LEN ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t cnt[HIST_LEN];
	uint64_t n;
	uint64_t max_ns;
};

static unsigned hist_bucket(uint64_t ns)
{
	unsigned shift;

	if (ns < HIST_SUB)
		return (unsigned)ns;
	shift = 63u - (unsigned)__builtin_clzll(ns) - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((ns >> shift) - HIST_SUB);
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->cnt[hist_bucket(ns)]++;
	h->n++;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	unsigned i;

	for (i = 0; i < HIST_LEN; i++)
		to->cnt[i] += from->cnt[i];
	to->n += from->n;
	if (from->max_ns > to->max_ns)
		to->max_ns = from->max_ns;
}

/* The latency below which `permille` thousandths of the samples lie, in ns (bucket middle). */
static double hist_quantile(const struct hist *h, unsigned permille)
{
	uint64_t want = (h->n * permille + 999) / 1000, seen = 0;
	unsigned i;

	if (h->n == 0)
		return NAN;
	if (want == 0)
		want = 1;
	for (i = 0; i < HIST_LEN; i++) {
		seen += h->cnt[i];
		if (seen >= want)
			break;
	}
	if (i < HIST_SUB)
		return (double)i;
	if (i >= HIST_LEN)
		return (double)h->max_ns;
	{
		unsigned shift = i / HIST_SUB - 1;
		double low = (double)((uint64_t)(HIST_SUB + i % HIST_SUB) << shift);
		double mid = low + (double)(1ull << shift) / 2.0;

		return mid < (double)h->max_ns ? mid : (double)h->max_ns;
	}
}

/* ---- randomness: splitmix64, seeded per benchmark and thread ---- */
struct rng {
	uint64_t s;
};

static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* Uniform in [0, n) by multiply-shift; the bias is below 2^-24 for n < 2^40. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static struct rng rng_for(uint64_t seed, unsigned bench_idx, unsigned thread)
{
	struct rng r = { mix64(seed ^ mix64(((uint64_t)bench_idx << 32) | thread)) };

	return r;
}

/* ---- configuration and state ---- */
struct bench {
	/* the command line */
	const struct bench_engine *engine;
	const char *benchmarks;
	uint64_t num;
	uint64_t reads;  /* per reading thread */
	size_t key_size;
	size_t value_size;
	uint64_t batch_size;
	unsigned threads;
	uint64_t seed;
	bool use_existing;
	bool keep;
	bool quick;
	struct bench_config cfg;

	char *dir;
	bool dir_is_temp;
	bool io_ok;       /* /proc/self/io is readable */
	struct bench_db *db;
	uint64_t *present; /* bit i: key i must be in the database */
	unsigned char *pool;
	size_t pool_len;
	unsigned bench_idx;
	uint64_t verify_errors; /* over all benchmarks */
};

/* The temporary database directory, named on stderr when the benchmark dies. */
static const char *temp_dir;

int bench_fail(struct bench_err *e, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return BENCH_FAIL;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return BENCH_FAIL;
}

static void die(const char *what, const struct bench_err *e)
{
	if (temp_dir != NULL)
		warnx("the database is left in %s", temp_dir);
	errx(1, "%s: %s", what, e != NULL ? e->msg : "failed");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- keys, values, the present-key bitmap ---- */
static void key_make(const struct bench *b, uint64_t i, unsigned char *key)
{
	unsigned j;

	for (j = 0; j < KEY_INDEX_LEN; j++)
		key[j] = (unsigned char)(i >> (8 * (KEY_INDEX_LEN - 1 - j)));
	memset(key + KEY_INDEX_LEN, '0', b->key_size - KEY_INDEX_LEN);
}

/* The index of a key this program wrote, or false for any other key. */
static bool key_index(const struct bench *b, const void *key, size_t len, uint64_t *out)
{
	const unsigned char *k = key;
	uint64_t i = 0;
	size_t j;

	if (len != b->key_size)
		return false;
	for (j = KEY_INDEX_LEN; j < len; j++)
		if (k[j] != '0')
			return false;
	for (j = 0; j < KEY_INDEX_LEN; j++)
		i = i << 8 | k[j];
	*out = i;
	return true;
}

static bool bit_test(const uint64_t *bits, uint64_t i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *bits, uint64_t i)
{
	bits[i / 64] |= 1ull << (i % 64);
}

static void bit_clear(uint64_t *bits, uint64_t i)
{
	bits[i / 64] &= ~(1ull << (i % 64));
}

static size_t bitmap_words(const struct bench *b)
{
	return (size_t)((b->num + 63) / 64);
}

static uint64_t bitmap_count(const struct bench *b)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < bitmap_words(b); i++)
		n += (uint64_t)__builtin_popcountll(b->present[i]);
	return n;
}

/* Printable random text in which each 100-byte piece repeats its first half. */
static void pool_make(struct bench *b)
{
	struct rng r = rng_for(b->seed, UINT32_MAX, 0);
	size_t off, i;

	b->pool_len = 2 * b->value_size > POOL_MIN ? 2 * b->value_size : POOL_MIN;
	b->pool = malloc(b->pool_len);
	if (b->pool == NULL)
		err(1, "value pool");
	for (off = 0; off < b->pool_len; off += PIECE_LEN) {
		size_t n = b->pool_len - off < PIECE_LEN ? b->pool_len - off : PIECE_LEN;
		size_t half = (n + 1) / 2;

		for (i = 0; i < half; i++)
			b->pool[off + i] = (unsigned char)(' ' + rng_below(&r, 95));
		for (i = half; i < n; i++)
			b->pool[off + i] = b->pool[off + i - half];
	}
}

struct valgen {
	const unsigned char *pool;
	size_t pool_len;
	size_t len;
	size_t pos;
};

static void valgen_init(struct valgen *v, const struct bench *b, unsigned thread)
{
	v->pool = b->pool;
	v->pool_len = b->pool_len;
	v->len = b->value_size;
	v->pos = ((size_t)thread * 7919u * PIECE_LEN) % (b->pool_len - b->value_size + 1);
}

static const unsigned char *valgen_next(struct valgen *v)
{
	const unsigned char *p;

	if (v->pos + v->len > v->pool_len)
		v->pos = 0;
	p = v->pool + v->pos;
	v->pos += v->len;
	return p;
}

/* ---- the process's storage writes and the database directory ---- */
/* write_bytes of /proc/self/io, or UINT64_MAX when it cannot be read. */
static uint64_t io_written(void)
{
	char buf[512];
	const char *p;
	ssize_t n;
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return UINT64_MAX;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return UINT64_MAX;
	buf[n] = '\0';
	p = strstr(buf, "\nwrite_bytes: ");
	if (p == NULL)
		return UINT64_MAX;
	return strtoull(p + strlen("\nwrite_bytes: "), NULL, 10);
}

/* Waits until the process has written nothing for a few polls in a row: the engines' own
 * signals for idle background work are uneven (LevelDB has none), this one is the same for
 * all. */
static void io_settle(const struct bench *b)
{
	unsigned poll_ms = b->quick ? SETTLE_POLL_MS_QUICK : SETTLE_POLL_MS;
	uint64_t last = io_written(), deadline = now_ns() + SETTLE_MAX_S * 1000000000ull;
	unsigned quiet = 0;

	if (!b->io_ok)
		return;
	while (quiet < SETTLE_QUIET_POLLS) {
		uint64_t cur;

		if (now_ns() > deadline) {
			warnx("still writing after %d s; measuring anyway", SETTLE_MAX_S);
			return;
		}
		sleep_ms(poll_ms);
		cur = io_written();
		if (cur == last) {
			quiet++;
		} else {
			quiet = 0;
			last = cur;
		}
	}
}

static struct {
	uint64_t alloc;
	uint64_t apparent;
} du;

static int du_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	if (type == FTW_F && strcmp(path + f->base, MARKER) != 0) {
		du.alloc += (uint64_t)st->st_blocks * 512u;
		du.apparent += (uint64_t)st->st_size;
	}
	return 0;
}

static void disk_usage(const char *dir, uint64_t *alloc, uint64_t *apparent)
{
	du.alloc = 0;
	du.apparent = 0;
	if (nftw(dir, du_visit, 16, FTW_PHYS) != 0)
		warn("cannot measure %s", dir);
	*alloc = du.alloc;
	*apparent = du.apparent;
}

static int rm_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)type;
	if (f->level == 0)
		return 0; /* the directory itself stays */
	if (remove(path) != 0 && errno != ENOENT) {
		warn("remove %s", path);
		return 1;
	}
	return 0;
}

static void dir_empty(const char *dir)
{
	if (nftw(dir, rm_visit, 16, FTW_DEPTH | FTW_PHYS) != 0)
		errx(1, "cannot empty %s", dir);
}

/* Whether dir holds nothing, or only a database this program created (the marker file). */
static bool dir_is_ours(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool empty = true, marked = false;

	if (d == NULL)
		err(1, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strcmp(de->d_name, MARKER) == 0)
			marked = true;
		empty = false;
	}
	closedir(d);
	return empty || marked;
}

static void dir_prepare(struct bench *b, const char *db_path)
{
	struct stat st;

	if (db_path == NULL) {
		const char *tmp = getenv("TMPDIR");

		if (tmp == NULL || tmp[0] == '\0')
			tmp = "/tmp";
		if (asprintf(&b->dir, "%s/%s-XXXXXX", tmp, PROG) < 0)
			err(1, "asprintf");
		if (mkdtemp(b->dir) == NULL)
			err(1, "mkdtemp %s", b->dir);
		b->dir_is_temp = true;
		temp_dir = b->dir;
		return;
	}
	b->dir = strdup(db_path);
	if (b->dir == NULL)
		err(1, "strdup");
	if (b->use_existing) {
		if (stat(b->dir, &st) != 0 || !S_ISDIR(st.st_mode))
			errx(EX_NOINPUT, "--use_existing_db: no database directory %s", b->dir);
		return;
	}
	if (mkdir(b->dir, 0777) == 0)
		return;
	if (errno != EEXIST)
		err(1, "mkdir %s", b->dir);
	if (!dir_is_ours(b->dir))
		errx(EX_USAGE, "%s: not empty and not made by " PROG "; see --use_existing_db",
		     b->dir);
}

/* ---- opening and closing ---- */
static void db_close(struct bench *b)
{
	struct bench_err e = { { 0 } };

	if (b->db == NULL)
		return;
	if (b->engine->close(b->db, &e) != BENCH_OK) {
		b->db = NULL;
		die("close", &e);
	}
	b->db = NULL;
}

static void db_open(struct bench *b)
{
	struct bench_err e = { { 0 } };

	if (b->engine->open(b->dir, &b->cfg, &b->db, &e) != BENCH_OK)
		die(b->dir, &e);
}

/* An empty database, as db_bench's fills start from. */
static void db_fresh(struct bench *b)
{
	int fd;
	char *marker;

	db_close(b);
	dir_empty(b->dir);
	if (asprintf(&marker, "%s/%s", b->dir, MARKER) < 0)
		err(1, "asprintf");
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0)
		err(1, "%s", marker);
	close(fd);
	free(marker);
	memset(b->present, 0, bitmap_words(b) * sizeof(*b->present));
	db_open(b);
}

/* Opens an existing database and learns which keys it holds (untimed). */
static void db_open_existing(struct bench *b)
{
	struct bench_err e = { { 0 } };
	struct bench_iter *it;
	uint64_t n = 0, i;

	db_open(b);
	if (b->engine->iter_open(b->db, NULL, 0, &it, &e) != BENCH_OK)
		die("scan", &e);
	while (b->engine->iter_valid(it)) {
		size_t len;
		const void *k = b->engine->iter_key(it, &len);

		if (key_index(b, k, len, &i) && i < b->num) {
			bit_set(b->present, i);
			n++;
		}
		if (b->engine->iter_next(it, &e) != BENCH_OK)
			die("scan", &e);
	}
	b->engine->iter_close(it);
	fprintf(stderr, "%s: %s holds %" PRIu64 " of keys 0..%" PRIu64 "\n", PROG, b->dir, n,
		b->num - 1);
	if (b->engine->wait_idle(b->db, &e) != BENCH_OK)
		die("wait", &e);
	io_settle(b);
}

/* ---- writing ---- */
struct writer {
	struct bench *b;
	bool seq;
	bool del;
	uint64_t limit;     /* operations to do */
	atomic_bool *stop;  /* or stop when this is set (readwhilewriting) */
	uint64_t *bits;     /* puts set their key's bit, deletes clear it */
	struct rng rng;
	struct valgen vals;
	struct hist *hist;
	uint64_t ops;
	uint64_t user_bytes;
	int rc;
	struct bench_err err;
};

/* Runs one writer to its limit or its stop flag; one commit per --batch_size operations. */
static void *writer_run(void *arg)
{
	struct writer *w = arg;
	struct bench *b = w->b;
	const struct bench_engine *eng = b->engine;
	struct bench_batch *batch = NULL;
	unsigned char key[KEY_SIZE_MAX];
	uint64_t next_seq = 0;

	w->rc = BENCH_OK;
	if (b->batch_size > 1) {
		w->rc = eng->batch_new(b->db, &batch, &w->err);
		if (w->rc != BENCH_OK)
			return NULL;
	}
	while (w->ops < w->limit) {
		uint64_t t0, j;

		if (w->stop != NULL && atomic_load_explicit(w->stop, memory_order_relaxed))
			break;
		t0 = now_ns();
		for (j = 0; j < b->batch_size && w->ops < w->limit; j++, w->ops++) {
			uint64_t i = w->seq ? next_seq++ : rng_below(&w->rng, b->num);

			key_make(b, i, key);
			if (w->del) {
				w->rc = batch ? eng->batch_del(batch, key, b->key_size, &w->err) :
						eng->del(b->db, key, b->key_size, &w->err);
				bit_clear(w->bits, i);
				w->user_bytes += b->key_size;
			} else {
				const unsigned char *v = valgen_next(&w->vals);

				w->rc = batch ? eng->batch_put(batch, key, b->key_size, v,
							       b->value_size, &w->err) :
						eng->put(b->db, key, b->key_size, v, b->value_size,
							 &w->err);
				bit_set(w->bits, i);
				w->user_bytes += b->key_size + b->value_size;
			}
			if (w->rc != BENCH_OK)
				goto out_free_batch;
		}
		if (batch != NULL) {
			w->rc = eng->batch_commit(batch, &w->err);
			if (w->rc != BENCH_OK)
				goto out_free_batch;
		}
		if (w->hist != NULL)
			hist_add(w->hist, now_ns() - t0);
	}
out_free_batch:
	if (batch != NULL)
		eng->batch_free(batch);
	return NULL;
}

/* ---- reading ---- */
struct reader {
	struct bench *b;
	enum workload w;
	unsigned idx;
	pthread_barrier_t *start;
	pthread_t tid;
	struct rng rng;
	struct hist hist;
	uint64_t ops;
	uint64_t found;
	uint64_t not_found;
	uint64_t bytes;
	uint64_t bad; /* verify errors */
	uint64_t start_ns;
	uint64_t end_ns;
	int rc;
	struct bench_err err;
};

static void mismatch(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void mismatch(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->bad++ >= MISMATCH_LOG_MAX)
		return;
	flockfile(stderr);
	fprintf(stderr, "%s: %s: verify error: ", PROG, workload_names[r->w]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/*
 * Checks a lookup of key i against the bitmap. While a writer runs (readwhilewriting) the
 * bitmap is the state before it started and the writer only adds keys, so a key present then
 * must be found, and an absent one may have been written since.
 */
static void check_lookup(struct reader *r, uint64_t i, bool found)
{
	bool want = bit_test(r->b->present, i);

	if (want && !found)
		mismatch(r, "key %" PRIu64 " is missing", i);
	else if (!want && found && r->w != W_READWHILEWRITING)
		mismatch(r, "key %" PRIu64 " is absent but found", i);
}

static int read_random(struct reader *r)
{
	struct bench *b = r->b;
	unsigned char key[KEY_SIZE_MAX + 1];
	bool missing = r->w == W_READMISSING;
	size_t key_len = b->key_size + (missing ? 1 : 0);
	uint64_t n;

	for (n = 0; n < b->reads; n++) {
		uint64_t i = rng_below(&r->rng, b->num), t0;
		size_t val_len = 0;
		int rc;

		key_make(b, i, key);
		key[b->key_size] = '.'; /* used by readmissing only */
		t0 = now_ns();
		rc = b->engine->get(b->db, key, key_len, &val_len, &r->err);
		hist_add(&r->hist, now_ns() - t0);
		if (rc == BENCH_FAIL)
			return rc;
		r->ops++;
		if (rc == BENCH_OK) {
			r->found++;
			r->bytes += key_len + val_len;
			if (val_len != b->value_size)
				mismatch(r, "key %" PRIu64 ": value of %zu bytes, want %zu", i,
					 val_len, b->value_size);
		} else {
			r->not_found++;
		}
		if (missing) {
			if (rc == BENCH_OK)
				mismatch(r, "missing key %" PRIu64 ". is found", i);
		} else {
			check_lookup(r, i, rc == BENCH_OK);
		}
	}
	return BENCH_OK;
}

static int read_seq(struct reader *r)
{
	struct bench *b = r->b;
	const struct bench_engine *eng = b->engine;
	struct bench_iter *it;
	unsigned char prev[KEY_SIZE_MAX + 1];
	size_t prev_len = 0;
	uint64_t in_range = 0;
	bool first = true;
	int rc;

	rc = eng->iter_open(b->db, NULL, 0, &it, &r->err);
	if (rc != BENCH_OK)
		return rc;
	while (r->ops < b->reads && eng->iter_valid(it)) {
		uint64_t t0 = now_ns(), i;
		size_t key_len, val_len;
		const void *key = eng->iter_key(it, &key_len);
		const void *val = eng->iter_value(it, &val_len);
		size_t cmp_len = key_len < prev_len ? key_len : prev_len;
		int c = first ? 1 : memcmp(key, prev, cmp_len);

		(void)val;
		if (!first && (c < 0 || (c == 0 && key_len <= prev_len)))
			mismatch(r, "keys out of order at entry %" PRIu64, r->ops);
		first = false;
		prev_len = key_len < sizeof(prev) ? key_len : sizeof(prev);
		memcpy(prev, key, prev_len);
		if (key_index(b, key, key_len, &i) && i < b->num) {
			in_range++;
			if (!bit_test(b->present, i))
				mismatch(r, "key %" PRIu64 " is absent but scanned", i);
			else if (val_len != b->value_size)
				mismatch(r, "key %" PRIu64 ": value of %zu bytes, want %zu", i,
					 val_len, b->value_size);
		}
		r->ops++;
		r->found++;
		r->bytes += key_len + val_len;
		rc = eng->iter_next(it, &r->err);
		hist_add(&r->hist, now_ns() - t0);
		if (rc != BENCH_OK)
			goto out_close;
	}
	/* a scan that reached the end saw every present key */
	if (!eng->iter_valid(it) && in_range != bitmap_count(b))
		mismatch(r, "the scan found %" PRIu64 " keys, want %" PRIu64, in_range,
			 bitmap_count(b));
	rc = BENCH_OK;
out_close:
	eng->iter_close(it);
	return rc;
}

/* A fresh iterator per seek, as db_bench does, so that each seek sees the newest data. */
static int seek_random(struct reader *r)
{
	struct bench *b = r->b;
	const struct bench_engine *eng = b->engine;
	unsigned char key[KEY_SIZE_MAX];
	uint64_t n;

	for (n = 0; n < b->reads; n++) {
		uint64_t i = rng_below(&r->rng, b->num), t0;
		struct bench_iter *it;
		bool found = false;
		int rc, j;

		key_make(b, i, key);
		t0 = now_ns();
		rc = eng->iter_open(b->db, key, b->key_size, &it, &r->err);
		if (rc != BENCH_OK)
			return rc;
		for (j = 0; j <= SEEK_NEXTS && eng->iter_valid(it); j++) {
			size_t key_len, val_len;
			const void *k = eng->iter_key(it, &key_len);

			eng->iter_value(it, &val_len);
			if (j == 0)
				found = key_len == b->key_size && memcmp(k, key, key_len) == 0;
			r->bytes += key_len + val_len;
			if (j < SEEK_NEXTS) {
				rc = eng->iter_next(it, &r->err);
				if (rc != BENCH_OK)
					break;
			}
		}
		eng->iter_close(it);
		hist_add(&r->hist, now_ns() - t0);
		if (rc != BENCH_OK)
			return rc;
		r->ops++;
		if (found)
			r->found++;
		else
			r->not_found++;
		check_lookup(r, i, found);
	}
	return BENCH_OK;
}

static void *reader_run(void *arg)
{
	struct reader *r = arg;

	pthread_barrier_wait(r->start);
	r->start_ns = now_ns();
	switch (r->w) {
	case W_READSEQ:
		r->rc = read_seq(r);
		break;
	case W_SEEKRANDOM:
		r->rc = seek_random(r);
		break;
	default:
		r->rc = read_random(r);
		break;
	}
	r->end_ns = now_ns();
	return NULL;
}

/* ---- running one benchmark ---- */
struct result {
	enum workload w;
	unsigned threads;
	uint64_t ops;
	uint64_t found;
	uint64_t not_found;
	uint64_t bytes;       /* moved: written, or read */
	uint64_t user_bytes;  /* key and value bytes written */
	uint64_t writer_ops;  /* readwhilewriting */
	uint64_t bad;
	uint64_t elapsed_ns;
	uint64_t io_start;
	uint64_t io_end;
	struct hist hist;
};

static void run_writes(struct bench *b, struct result *res)
{
	struct writer w;

	memset(&w, 0, sizeof(w));
	w.b = b;
	w.seq = res->w == W_FILLSEQ;
	w.del = res->w == W_DELETERANDOM;
	w.limit = b->num;
	w.bits = b->present;
	w.rng = rng_for(b->seed, b->bench_idx, 0);
	valgen_init(&w.vals, b, 0);
	w.hist = &res->hist;
	res->threads = 1;
	res->elapsed_ns = now_ns();
	writer_run(&w);
	res->elapsed_ns = now_ns() - res->elapsed_ns;
	if (w.rc != BENCH_OK)
		die(workload_names[res->w], &w.err);
	res->ops = w.ops;
	res->user_bytes = w.user_bytes;
	res->bytes = w.user_bytes;
}

static void run_reads(struct bench *b, struct result *res)
{
	struct reader *rd = calloc(b->threads, sizeof(*rd));
	pthread_barrier_t start;
	struct writer w;
	pthread_t wtid;
	atomic_bool stop;
	uint64_t *added = NULL, first = 0, last = 0;
	unsigned t;
	int rc;

	if (rd == NULL)
		err(1, "calloc");
	if (pthread_barrier_init(&start, NULL, b->threads + 1) != 0)
		errx(1, "pthread_barrier_init failed");
	atomic_init(&stop, false);
	if (res->w == W_READWHILEWRITING) {
		/* the writer records its keys apart, so readers can check against the bitmap */
		added = calloc(bitmap_words(b), sizeof(*added));
		if (added == NULL)
			err(1, "calloc");
		memset(&w, 0, sizeof(w));
		w.b = b;
		w.limit = UINT64_MAX;
		w.stop = &stop;
		w.bits = added;
		w.rng = rng_for(b->seed, b->bench_idx, b->threads);
		valgen_init(&w.vals, b, b->threads);
		rc = pthread_create(&wtid, NULL, writer_run, &w);
		if (rc != 0) {
			errno = rc;
			err(1, "pthread_create");
		}
	}
	for (t = 0; t < b->threads; t++) {
		rd[t].b = b;
		rd[t].w = res->w;
		rd[t].idx = t;
		rd[t].start = &start;
		rd[t].rng = rng_for(b->seed, b->bench_idx, t);
		rc = pthread_create(&rd[t].tid, NULL, reader_run, &rd[t]);
		if (rc != 0) {
			errno = rc;
			err(1, "pthread_create");
		}
	}
	pthread_barrier_wait(&start);
	/* from the first reader's start to the last one's end: this thread may run late */
	for (t = 0; t < b->threads; t++) {
		pthread_join(rd[t].tid, NULL);
		if (t == 0 || rd[t].start_ns < first)
			first = rd[t].start_ns;
		if (rd[t].end_ns > last)
			last = rd[t].end_ns;
	}
	res->elapsed_ns = last - first;
	if (res->w == W_READWHILEWRITING) {
		size_t i;

		atomic_store_explicit(&stop, true, memory_order_relaxed);
		pthread_join(wtid, NULL);
		if (w.rc != BENCH_OK)
			die("readwhilewriting writer", &w.err);
		for (i = 0; i < bitmap_words(b); i++)
			b->present[i] |= added[i];
		res->writer_ops = w.ops;
		res->user_bytes = w.user_bytes;
		free(added);
	}
	res->threads = b->threads;
	for (t = 0; t < b->threads; t++) {
		if (rd[t].rc != BENCH_OK)
			die(workload_names[res->w], &rd[t].err);
		res->ops += rd[t].ops;
		res->found += rd[t].found;
		res->not_found += rd[t].not_found;
		res->bytes += rd[t].bytes;
		res->bad += rd[t].bad;
		hist_merge(&res->hist, &rd[t].hist);
	}
	pthread_barrier_destroy(&start);
	free(rd);
}

/* fillseq's keys and values, through the engine's bulk ingestion: one operation is one entry
 * handed over; the time includes the publication at the end. */
static void run_ingest(struct bench *b, struct result *res)
{
	const struct bench_engine *eng = b->engine;
	struct bench_err e = { { 0 } };
	struct bench_ingest *in;
	struct valgen vals;
	unsigned char key[KEY_SIZE_MAX];
	uint64_t i, t0;

	valgen_init(&vals, b, 0);
	res->threads = 1;
	res->elapsed_ns = now_ns();
	if (eng->ingest_start(b->db, &in, &e) != BENCH_OK)
		die("ingest", &e);
	for (i = 0; i < b->num; i++) {
		const unsigned char *v = valgen_next(&vals);

		key_make(b, i, key);
		t0 = now_ns();
		if (eng->ingest_put(in, key, b->key_size, v, b->value_size, &e) != BENCH_OK)
			die("ingest", &e);
		hist_add(&res->hist, now_ns() - t0);
		bit_set(b->present, i);
	}
	if (eng->ingest_finish(in, &e) != BENCH_OK)
		die("ingest", &e);
	res->elapsed_ns = now_ns() - res->elapsed_ns;
	res->ops = b->num;
	res->user_bytes = b->num * (b->key_size + b->value_size);
	res->bytes = res->user_bytes;
}

static void run_compact(struct bench *b, struct result *res)
{
	struct bench_err e = { { 0 } };
	uint64_t t0 = now_ns();

	if (b->engine->compact(b->db, &e) != BENCH_OK)
		die("compact", &e);
	res->elapsed_ns = now_ns() - t0;
	hist_add(&res->hist, res->elapsed_ns);
	res->ops = 1;
	res->threads = 1;
}

/* Prints x, or null when it is not a finite number. */
static void json_num(const char *name, double x)
{
	if (isfinite(x))
		printf(",\"%s\":%.6g", name, x);
	else
		printf(",\"%s\":null", name);
}

static void json_u64(const char *name, uint64_t x)
{
	printf(",\"%s\":%" PRIu64, name, x);
}

static void report(const struct bench *b, const struct result *res)
{
	double secs = (double)res->elapsed_ns / 1e9;
	bool io = res->io_start != UINT64_MAX && res->io_end != UINT64_MAX &&
		  res->io_end >= res->io_start;
	uint64_t written = io ? res->io_end - res->io_start : 0, alloc, apparent;
	uint64_t live = bitmap_count(b) * (b->key_size + b->value_size);
	struct rusage ru;

	disk_usage(b->dir, &alloc, &apparent);
	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"engine\":\"%s\",\"benchmark\":\"%s\"", b->engine->name,
	       workload_names[res->w]);
	json_u64("ops", res->ops);
	json_num("ops_per_sec", secs > 0 ? (double)res->ops / secs : NAN);
	json_num("mb_per_sec",
		 secs > 0 && res->w != W_COMPACT ? (double)res->bytes / 1048576.0 / secs : NAN);
	json_num("p50_us", hist_quantile(&res->hist, 500) / 1e3);
	json_num("p99_us", hist_quantile(&res->hist, 990) / 1e3);
	json_num("write_amp", io && res->user_bytes > 0 ?
				      (double)written / (double)res->user_bytes :
				      NAN);
	json_u64("disk_bytes", alloc);
	printf(",\"peak_rss_kb\":%ld", ru.ru_maxrss);
	printf(",\"threads\":%u", res->threads);
	json_num("seconds", secs);
	if (workload_reads(res->w)) {
		json_u64("found", res->found);
		json_u64("not_found", res->not_found);
	}
	if (res->w == W_READWHILEWRITING)
		json_u64("writer_ops", res->writer_ops);
	json_u64("verify_errors", res->bad);
	json_u64("user_bytes", res->user_bytes);
	if (io)
		json_u64("written_bytes", written);
	else
		printf(",\"written_bytes\":null");
	json_u64("disk_apparent_bytes", apparent);
	if (res->w == W_COMPACT) {
		json_u64("logical_bytes", b->num * (b->key_size + b->value_size));
		json_u64("live_bytes", live);
		json_num("space_amp", live > 0 ? (double)alloc / (double)live : NAN);
	}
	printf(",\"compression\":\"%s\"", b->cfg.compress ? b->engine->codec : "none");
	printf(",\"key_size\":%zu,\"value_size\":%zu", b->key_size, b->value_size);
	json_u64("batch_size", b->batch_size);
	json_u64("blob_threshold", b->cfg.blob_threshold);
	printf(",\"sync\":%s}\n", b->cfg.sync ? "true" : "false");
	fflush(stdout);
}

static void run_one(struct bench *b, enum workload w)
{
	struct result *res = calloc(1, sizeof(*res));
	struct bench_err e = { { 0 } };

	if (res == NULL)
		err(1, "calloc");
	res->w = w;
	if (w == W_FILLSEQ || w == W_FILLRANDOM || w == W_INGEST) {
		if (b->use_existing) {
			fprintf(stderr, "%s: %s: skipped with --use_existing_db\n", PROG,
				workload_names[w]);
			free(res);
			return;
		}
		db_fresh(b);
	}
	res->io_start = io_written();
	switch (w) {
	case W_FILLSEQ:
	case W_FILLRANDOM:
	case W_OVERWRITE:
	case W_DELETERANDOM:
		run_writes(b, res);
		break;
	case W_COMPACT:
		run_compact(b, res);
		break;
	case W_INGEST:
		run_ingest(b, res);
		break;
	default:
		run_reads(b, res);
		break;
	}
	/* Count what the workload left in memtables and background work, too. */
	if (workload_writes(w) || w == W_COMPACT) {
		if (b->engine->flush(b->db, &e) != BENCH_OK)
			die("flush", &e);
		if (b->engine->wait_idle(b->db, &e) != BENCH_OK)
			die("wait", &e);
		io_settle(b);
	}
	res->io_end = io_written();
	report(b, res);
	b->verify_errors += res->bad;
	free(res);
}

/* ---- the command line ---- */
static void usage(FILE *f, int status)
{
	size_t i;

	fputs("usage: " PROG " [--benchmarks=LIST] [--engine=NAME] [--num=N] [--reads=N]\n"
	      "       [--key_size=N] [--value_size=N] [--batch_size=N] [--sync=0|1] [--threads=N]\n"
	      "       [--cache_size=BYTES] [--write_buffer_size=BYTES] [--bloom_bits=N]\n"
	      "       [--compression=lz4|none] [--blob_threshold=BYTES] [--db=DIR] [--keep]\n"
	      "       [--use_existing_db] [--seed=N] [--quick]\n"
	      "\n"
	      "  --benchmarks=LIST   comma-separated, run in order on one database (default\n"
	      "                      fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,\n"
	      "                      seekrandom,deleterandom,readwhilewriting,compact):\n"
	      "    fillseq           --num puts in key order into an empty database\n"
	      "    fillrandom        --num puts of random keys (with repeats) into an empty one\n"
	      "    overwrite         --num puts of random keys\n"
	      "    readrandom        --reads gets of random keys per thread\n"
	      "    readmissing       --reads gets of absent keys per thread\n"
	      "    readseq           a scan from the first key, up to --reads entries per thread\n"
	      "    seekrandom        --reads seeks to random keys, each followed by 10 nexts\n"
	      "    deleterandom      --num deletes of random keys\n"
	      "    readwhilewriting  readrandom in --threads threads while one more thread puts\n"
	      "                      random keys; reports the readers\n"
	      "    compact           a major compaction; reports disk_bytes, logical_bytes\n"
	      "                      (num * (key_size + value_size)) and live_bytes\n"
	      "    ingest            fillseq's entries through bulk ingestion into an empty\n"
	      "                      database (fractio only)\n"
	      "  --engine=NAME       fractio (default), rocksdb or leveldb, when compiled in\n"
	      "  --num=N             keys (default 1000000; 10000 with --quick)\n"
	      "  --reads=N           reads per thread (default --num)\n"
	      "  --key_size=N        key bytes, 8 to 1024 (default 16)\n"
	      "  --value_size=N      value bytes (default 100), compressible to about half\n"
	      "  --batch_size=N      operations per write batch (default 1: single puts)\n"
	      "  --sync=0|1          sync every commit to the device (default 0)\n"
	      "  --threads=N         threads of the read workloads (default 1)\n"
	      "  --cache_size=BYTES  block cache (default 67108864)\n"
	      "  --write_buffer_size=BYTES  memtable size (default 67108864)\n"
	      "  --bloom_bits=N      bloom filter bits per key, 0 for none (default 10)\n"
	      "  --compression=C     lz4 (default) or none; LevelDB has no LZ4 and uses Snappy\n"
	      "                      instead, which the output's \"compression\" field shows\n"
	      "  --blob_threshold=BYTES  KV separation: values of at least BYTES go to blob\n"
	      "                      files, compressed as --compression says (default 0: off;\n"
	      "                      fractio and rocksdb only)\n"
	      "  --db=DIR            database directory (kept); it must be new, empty, or made\n"
	      "                      by this program (default: a temporary directory)\n"
	      "  --keep              keep the temporary directory and print its name\n"
	      "  --use_existing_db   open the database in --db as it is; fills are skipped\n"
	      "  --seed=N            seed of the random keys (default 301)\n"
	      "  --quick             a small default --num and shorter waits for quiet\n"
	      "\n"
	      "Prints one JSON line per benchmark. Reads are checked against the keys written;\n"
	      "a wrong result is a verify error and makes the exit status 1.\n"
	      "Engines compiled in:",
	      f);
	for (i = 0; i < ENGINE_CNT; i++)
		fprintf(f, " %s", engines[i]->name);
	fputc('\n', f);
	exit(status);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		errx(EX_USAGE, "--%s: expected a number from %" PRIu64 " to %" PRIu64 ", got '%s'",
		     opt, min, max, s);
	return (uint64_t)v;
}

/* A flag given alone means 1. */
static bool parse_bool(const char *opt, const char *s)
{
	return s == NULL || parse_u64(opt, s, 0, 1) == 1;
}

static const struct bench_engine *engine_find(const char *name)
{
	size_t i;

	for (i = 0; i < ENGINE_CNT; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	if (strcmp(name, "rocksdb") == 0 || strcmp(name, "leveldb") == 0)
		errx(EX_UNAVAILABLE, "--engine=%s: not compiled in; install lib%s-dev, rerun cmake",
		     name, name);
	errx(EX_USAGE, "--engine=%s: unknown engine (fractio, rocksdb, leveldb)", name);
}

static enum workload workload_find(const char *name)
{
	size_t i;

	for (i = 0; i < WORKLOAD_CNT; i++)
		if (strcmp(workload_names[i], name) == 0)
			return (enum workload)i;
	errx(EX_USAGE, "unknown benchmark: '%s' (see --help)", name);
}

/* Calls fn for each name of the comma-separated list. */
static void for_each_workload(struct bench *b, void (*fn)(struct bench *b, enum workload w))
{
	char *list = strdup(b->benchmarks), *name, *save = NULL;

	if (list == NULL)
		err(1, "strdup");
	for (name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
		fn(b, workload_find(name));
		b->bench_idx++;
	}
	free(list);
}

static void check_only(struct bench *b, enum workload w)
{
	if (w == W_INGEST && b->engine->ingest_start == NULL)
		errx(EX_USAGE, "ingest: the %s engine has no bulk ingestion here", b->engine->name);
}

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "%s: engine%s: %s\n", PROG, level == FR_LOG_ERR ? " error" : "", line);
}

enum {
	OPT_BENCHMARKS = 256,
	OPT_ENGINE,
	OPT_NUM,
	OPT_READS,
	OPT_KEY_SIZE,
	OPT_VALUE_SIZE,
	OPT_BATCH_SIZE,
	OPT_SYNC,
	OPT_THREADS,
	OPT_CACHE_SIZE,
	OPT_WRITE_BUFFER_SIZE,
	OPT_BLOOM_BITS,
	OPT_COMPRESSION,
	OPT_BLOB_THRESHOLD,
	OPT_DB,
	OPT_KEEP,
	OPT_USE_EXISTING_DB,
	OPT_SEED,
	OPT_QUICK,
};

/* The long name of option val, for messages. */
static const char *option_name(const struct option *opts, int val)
{
	for (; opts->name != NULL; opts++)
		if (opts->val == val)
			return opts->name;
	return "?";
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "benchmarks", required_argument, NULL, OPT_BENCHMARKS },
		{ "engine", required_argument, NULL, OPT_ENGINE },
		{ "num", required_argument, NULL, OPT_NUM },
		{ "reads", required_argument, NULL, OPT_READS },
		{ "key_size", required_argument, NULL, OPT_KEY_SIZE },
		{ "value_size", required_argument, NULL, OPT_VALUE_SIZE },
		{ "batch_size", required_argument, NULL, OPT_BATCH_SIZE },
		{ "sync", optional_argument, NULL, OPT_SYNC },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "cache_size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "write_buffer_size", required_argument, NULL, OPT_WRITE_BUFFER_SIZE },
		{ "bloom_bits", required_argument, NULL, OPT_BLOOM_BITS },
		{ "compression", required_argument, NULL, OPT_COMPRESSION },
		{ "blob_threshold", required_argument, NULL, OPT_BLOB_THRESHOLD },
		{ "db", required_argument, NULL, OPT_DB },
		{ "keep", optional_argument, NULL, OPT_KEEP },
		{ "use_existing_db", optional_argument, NULL, OPT_USE_EXISTING_DB },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "quick", optional_argument, NULL, OPT_QUICK },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b;
	const char *db_path = NULL;
	bool num_given = false, reads_given = false;
	int ch;

	memset(&b, 0, sizeof(b));
	b.engine = &bench_engine_fractio;
	b.benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,seekrandom,"
		       "deleterandom,readwhilewriting,compact";
	b.num = 1000000;
	b.key_size = 16;
	b.value_size = 100;
	b.batch_size = 1;
	b.threads = 1;
	b.seed = 301;
	b.cfg.cache_bytes = 64u << 20;
	b.cfg.write_buffer_bytes = 64u << 20;
	b.cfg.bloom_bits = 10;
	b.cfg.compress = true;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const char *opt = option_name(longopts, ch);

		switch (ch) {
		case OPT_BENCHMARKS:
			b.benchmarks = optarg;
			break;
		case OPT_ENGINE:
			b.engine = engine_find(optarg);
			break;
		case OPT_NUM:
			b.num = parse_u64(opt, optarg, 1, NUM_MAX);
			num_given = true;
			break;
		case OPT_READS:
			b.reads = parse_u64(opt, optarg, 0, UINT64_MAX / 2);
			reads_given = true;
			break;
		case OPT_KEY_SIZE:
			b.key_size = (size_t)parse_u64(opt, optarg, KEY_INDEX_LEN, KEY_SIZE_MAX);
			break;
		case OPT_VALUE_SIZE:
			b.value_size = (size_t)parse_u64(opt, optarg, 0, VALUE_SIZE_MAX);
			break;
		case OPT_BATCH_SIZE:
			b.batch_size = parse_u64(opt, optarg, 1, 1u << 20);
			break;
		case OPT_SYNC:
			b.cfg.sync = parse_bool(opt, optarg);
			break;
		case OPT_THREADS:
			b.threads = (unsigned)parse_u64(opt, optarg, 1, 1024);
			break;
		case OPT_CACHE_SIZE:
			b.cfg.cache_bytes = parse_u64(opt, optarg, 0, SIZE_MAX / 2);
			break;
		case OPT_WRITE_BUFFER_SIZE:
			b.cfg.write_buffer_bytes = parse_u64(opt, optarg, 4096, SIZE_MAX / 4);
			break;
		case OPT_BLOOM_BITS:
			b.cfg.bloom_bits = (int)parse_u64(opt, optarg, 0, 64);
			break;
		case OPT_COMPRESSION:
			if (strcmp(optarg, "lz4") == 0)
				b.cfg.compress = true;
			else if (strcmp(optarg, "none") == 0)
				b.cfg.compress = false;
			else
				errx(EX_USAGE, "--compression: lz4 or none, not '%s'", optarg);
			break;
		case OPT_BLOB_THRESHOLD:
			/* the bound of fr_keyspace_options.blob_threshold */
			b.cfg.blob_threshold = parse_u64(opt, optarg, 0, UINT32_MAX);
			break;
		case OPT_DB:
			db_path = optarg;
			break;
		case OPT_KEEP:
			b.keep = parse_bool(opt, optarg);
			break;
		case OPT_USE_EXISTING_DB:
			b.use_existing = parse_bool(opt, optarg);
			break;
		case OPT_SEED:
			b.seed = parse_u64(opt, optarg, 0, UINT64_MAX);
			break;
		case OPT_QUICK:
			b.quick = parse_bool(opt, optarg);
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, EX_USAGE);
		}
	}
	if (optind != argc) {
		warnx("unexpected operand: %s", argv[optind]);
		usage(stderr, EX_USAGE);
	}
	if (b.quick && !num_given)
		b.num = QUICK_NUM;
	if (!reads_given)
		b.reads = b.num;
	if (b.use_existing && db_path == NULL)
		errx(EX_USAGE, "--use_existing_db needs --db");
	if (b.cfg.blob_threshold > 0 && !b.engine->blobs)
		errx(EX_USAGE, "--blob_threshold: the %s engine has no KV separation",
		     b.engine->name);
	for_each_workload(&b, check_only); /* a bad name fails before any work */
	b.bench_idx = 0;

	b.present = calloc(bitmap_words(&b), sizeof(*b.present));
	if (b.present == NULL)
		err(1, "key bitmap of %" PRIu64 " bits", b.num);
	b.io_ok = io_written() != UINT64_MAX;
	if (!b.io_ok)
		warnx("/proc/self/io is unreadable: write_amp and written_bytes will be null");
	if (b.engine == &bench_engine_fractio)
		fr_log_set(log_sink, NULL, FR_LOG_WARN);
	pool_make(&b);
	dir_prepare(&b, db_path);
	if (b.use_existing)
		db_open_existing(&b);
	else
		db_fresh(&b);

	for_each_workload(&b, run_one);

	db_close(&b);
	if (b.dir_is_temp && !b.keep) {
		dir_empty(b.dir);
		if (rmdir(b.dir) != 0)
			warn("rmdir %s", b.dir);
	} else if (b.dir_is_temp) {
		fprintf(stderr, "%s: the database is kept in %s\n", PROG, b.dir);
	}
	temp_dir = NULL;
	fr_log_set(NULL, NULL, FR_LOG_ERR);
	free(b.dir);
	free(b.pool);
	free(b.present);
	if (b.verify_errors > 0) {
		warnx("%" PRIu64 " verify errors", b.verify_errors);
		return 1;
	}
	return 0;
}
