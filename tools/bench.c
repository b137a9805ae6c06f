/* SPDX-License-Identifier: MIT */
/*
 * bench.c - fractio-bench, a db_bench-style benchmark of libfractio through its public API.
 *
 * Workloads (--benchmarks, run in the order given):
 *   fillseq     put --num keys in ascending order into a fresh database
 *   fillrandom  put --num keys chosen uniformly at random (with repeats, as db_bench does)
 *               into a fresh database
 *   readrandom  get --reads keys chosen at random from the key set of the last fill; when no
 *               fill has run yet, an untimed fillseq runs first
 *
 * Keys are --key-size bytes: zero-padded decimal numbers for fillseq, PRNG-derived bytes for
 * fillrandom. Values are --value-size bytes cut from a pool of printable random text in which
 * every 100-byte piece repeats its first half, so they compress to about 50% (db_bench's
 * compression ratio 0.5).
 *
 * Each workload prints one JSON line: throughput, p50/p99/max latency of one operation (one
 * commit of --batch entries for the fills, one get for readrandom) measured with
 * CLOCK_MONOTONIC into a log-linear histogram (<= 1.6% bucket error), write amplification
 * from the engine's counters ((journal + flush + compaction bytes written) / user bytes
 * written, after waiting for background work to finish), the disk usage of the database
 * directory (like du) and the process's peak RSS so far (getrusage ru_maxrss).
 *
 * The database lives in --db DIR, which must be missing or empty (the benchmark deletes what
 * it wrote there between fills) and is kept afterwards; without --db a temporary directory is
 * used and removed at the end.
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
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "fractio.h"

#define KEY_SIZE_MAX 4096
#define VALUE_POOL_MIN (1u << 20)
#define PIECE_LEN 100

/* ---- histogram: 64 exact buckets, then 64 sub-buckets per power of two ---- */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t cnt[HIST_BUCKETS];
	uint64_t n;
	uint64_t max_ns;
	uint64_t sum_ns;
};

static unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return ((shift + 1) << HIST_SUB_BITS) + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The middle of bucket i, in nanoseconds. */
static double hist_value(unsigned i)
{
	unsigned group = i >> HIST_SUB_BITS, shift;
	uint64_t low;

	if (group == 0)
		return (double)i;
	shift = group - 1;
	low = (uint64_t)(HIST_SUB + (i & (HIST_SUB - 1))) << shift;
	return (double)low + (double)((1ull << shift) - 1) / 2.0;
}

static void hist_add(struct hist *h, uint64_t ns)
{
	h->cnt[hist_index(ns)]++;
	h->n++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

/* The latency at quantile q (0 < q <= 1), in nanoseconds. */
static double hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;
	unsigned i;

	if (h->n == 0)
		return 0.0;
	want = (uint64_t)(q * (double)h->n); /* rounded up below, without libm */
	if ((double)want < q * (double)h->n || want == 0)
		want++;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->cnt[i];
		if (seen >= want)
			return hist_value(i);
	}
	return (double)h->max_ns;
}

/* ---- PRNG: splitmix64, so that a key can be derived from its index alone ---- */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return mix64(r->s);
}

/* Uniform in [0, n), n > 0 (modulo bias is negligible for benchmark sizes). */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

/* ---- configuration and state ---- */
enum key_kind { KEYS_NONE, KEYS_SEQ, KEYS_RANDOM };

struct bench {
	uint64_t num;
	uint64_t reads;
	size_t key_size;
	size_t value_size;
	uint64_t batch;
	uint64_t seed;
	bool sync;
	const char *benchmarks;
	char *dir;
	bool dir_is_temp;

	fr_db *db;
	fr_keyspace *ks;
	enum key_kind filled; /* the key set in the database */
	unsigned char *pool;  /* value bytes */
	size_t pool_len;
	size_t pool_pos;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void make_key(const struct bench *b, enum key_kind kind, uint64_t i, unsigned char *key)
{
	size_t off;

	if (kind == KEYS_SEQ) {
		char digits[24];
		int n = snprintf(digits, sizeof(digits), "%" PRIu64, i);

		/* key_size >= the digits of num - 1 was checked at start-up */
		memset(key, '0', b->key_size - (size_t)n);
		memcpy(key + b->key_size - (size_t)n, digits, (size_t)n);
		return;
	}
	/* KEYS_RANDOM: the bytes of mix64(seed, index, word) for word = 0, 1, ... */
	for (off = 0; off < b->key_size; off += 8) {
		uint64_t w = mix64(b->seed ^ mix64(i) ^ (off / 8) * 0x632be59bd9b4e019ull);
		size_t n = b->key_size - off < 8 ? b->key_size - off : 8;

		memcpy(key + off, &w, n);
	}
}

static const unsigned char *next_value(struct bench *b)
{
	const unsigned char *v;

	if (b->pool_pos + b->value_size > b->pool_len)
		b->pool_pos = 0;
	v = b->pool + b->pool_pos;
	b->pool_pos += b->value_size;
	return v;
}

/* Printable random text in which each 100-byte piece repeats its first half. */
static void make_pool(struct bench *b)
{
	struct rng r = { b->seed ^ 0x5eed5eedull };
	size_t off, i, half;

	b->pool_len = b->value_size > VALUE_POOL_MIN ? b->value_size : VALUE_POOL_MIN;
	b->pool = malloc(b->pool_len);
	if (b->pool == NULL)
		err(1, "value pool");
	for (off = 0; off < b->pool_len; off += PIECE_LEN) {
		size_t n = b->pool_len - off < PIECE_LEN ? b->pool_len - off : PIECE_LEN;

		half = (n + 1) / 2;
		for (i = 0; i < half; i++)
			b->pool[off + i] = (unsigned char)(' ' + rng_below(&r, 95));
		for (i = half; i < n; i++)
			b->pool[off + i] = b->pool[off + i - half];
	}
}

/* ---- the database directory ---- */
/* A temporary database directory, named when the benchmark dies so it can be inspected. */
static const char *temp_dir;

static uint64_t du_total;

static int du_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)type;
	(void)f;
	du_total += (uint64_t)st->st_blocks * 512u;
	return 0;
}

/* Disk usage of the tree under dir, in bytes, as du(1) counts it. */
static uint64_t disk_usage(const char *dir)
{
	du_total = 0;
	if (nftw(dir, du_visit, 16, FTW_PHYS) != 0)
		warn("du %s", dir);
	return du_total;
}

static int rm_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	if (f->level == 0)
		return 0; /* keep the top directory itself */
	if (remove(path) != 0 && errno != ENOENT) {
		warn("remove %s", path);
		return 1;
	}
	(void)type;
	return 0;
}

/* Removes everything under dir, keeping dir. */
static void empty_dir(const char *dir)
{
	if (nftw(dir, rm_visit, 16, FTW_DEPTH | FTW_PHYS) != 0)
		errx(1, "cannot empty %s", dir);
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		err(1, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = false;
			break;
		}
	}
	closedir(d);
	return empty;
}

static void prepare_dir(struct bench *b)
{
	if (b->dir == NULL) {
		const char *tmp = getenv("TMPDIR");
		size_t len;

		if (tmp == NULL || tmp[0] == '\0')
			tmp = "/tmp";
		len = strlen(tmp) + sizeof("/fractio-bench-XXXXXX");
		b->dir = malloc(len);
		if (b->dir == NULL)
			err(1, "malloc");
		snprintf(b->dir, len, "%s/fractio-bench-XXXXXX", tmp);
		if (mkdtemp(b->dir) == NULL)
			err(1, "mkdtemp %s", b->dir);
		b->dir_is_temp = true;
		temp_dir = b->dir;
		return;
	}
	if (mkdir(b->dir, 0777) != 0) {
		if (errno != EEXIST)
			err(1, "mkdir %s", b->dir);
		if (!dir_is_empty(b->dir))
			errx(1, "%s is not empty; give --db a new or empty directory", b->dir);
	}
}

static void die(const char *what, fr_status st, const fr_error *e)
{
	const char *msg = e != NULL && e->code == st && e->msg[0] != '\0' ? e->msg :
									    fr_status_str(st);

	if (temp_dir != NULL)
		warnx("the database is left in %s", temp_dir);
	errx(1, "%s: %s", what, msg);
}

static void db_close(struct bench *b)
{
	fr_error e = { 0 };
	fr_status st;

	fr_keyspace_close(b->ks);
	b->ks = NULL;
	if (b->db == NULL)
		return;
	st = fr_db_close(b->db, &e);
	b->db = NULL;
	if (st != FR_OK)
		die("close", st, &e);
}

/* Opens the database in b->dir; `fresh` empties the directory first. */
static void db_open(struct bench *b, bool fresh)
{
	fr_db_options o;
	fr_error e = { 0 };
	fr_status st;

	db_close(b);
	if (fresh) {
		empty_dir(b->dir);
		b->filled = KEYS_NONE;
	}
	fr_db_options_init(&o);
	o.default_persist = b->sync ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER;
	st = fr_db_open(b->dir, &o, &b->db, &e);
	if (st != FR_OK)
		die(b->dir, st, &e);
	st = fr_keyspace_open(b->db, "bench", NULL, &b->ks, &e);
	if (st != FR_OK)
		die("keyspace bench", st, &e);
}

/* ---- workloads ---- */
struct result {
	const char *name;
	uint64_t ops;       /* entries written or keys read */
	uint64_t found;     /* readrandom */
	uint64_t elapsed_ns;
	struct hist *lat;
	fr_db_stats before;
	fr_db_stats after;
	bool writes;
};

static void stats_get(struct bench *b, fr_db_stats *s)
{
	fr_error e = { 0 };
	fr_status st = fr_db_stats_get(b->db, s, &e);

	if (st != FR_OK)
		die("stats", st, &e);
}

static void do_fill(struct bench *b, enum key_kind kind, struct result *res)
{
	struct rng r = { b->seed };
	unsigned char *key = malloc(b->key_size);
	fr_persist mode = b->sync ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER;
	fr_batch *batch = NULL;
	fr_error e = { 0 };
	fr_status st;
	uint64_t i = 0, start;

	if (key == NULL)
		err(1, "malloc");
	if (b->batch > 1) {
		st = fr_batch_new(b->db, &batch);
		if (st != FR_OK)
			die("batch", st, NULL);
	}
	start = now_ns();
	while (i < b->num) {
		uint64_t t0 = now_ns(), j;

		for (j = 0; j < b->batch && i < b->num; j++, i++) {
			uint64_t idx = kind == KEYS_SEQ ? i : rng_below(&r, b->num);
			const unsigned char *val = next_value(b);

			make_key(b, kind, idx, key);
			if (batch == NULL)
				st = fr_put(b->ks, key, b->key_size, val, b->value_size, &e);
			else
				st = fr_batch_put(batch, b->ks, key, b->key_size, val,
						  b->value_size);
			if (st != FR_OK)
				die("put", st, batch == NULL ? &e : NULL);
		}
		if (batch != NULL) {
			st = fr_batch_commit(batch, mode, NULL, &e);
			if (st != FR_OK)
				die("commit", st, &e);
		}
		hist_add(res->lat, now_ns() - t0);
	}
	res->elapsed_ns = now_ns() - start;
	res->ops = b->num;
	fr_batch_free(batch);
	free(key);
	b->filled = kind;
}

static void do_readrandom(struct bench *b, struct result *res)
{
	struct rng r = { b->seed ^ 0x7265616472616e64ull };
	unsigned char *key = malloc(b->key_size);
	fr_error e = { 0 };
	fr_status st;
	uint64_t i, start;

	if (key == NULL)
		err(1, "malloc");
	start = now_ns();
	for (i = 0; i < b->reads; i++) {
		uint64_t t0 = now_ns();
		void *val = NULL;
		size_t val_len = 0;

		make_key(b, b->filled, rng_below(&r, b->num), key);
		st = fr_get(b->ks, key, b->key_size, &val, &val_len, &e);
		if (st == FR_OK)
			res->found++;
		else if (st != FR_NOT_FOUND)
			die("get", st, &e);
		fr_free(val);
		hist_add(res->lat, now_ns() - t0);
	}
	res->elapsed_ns = now_ns() - start;
	res->ops = b->reads;
	free(key);
}

/* Prints x, or null when it is not a finite number. */
static void json_num(const char *name, double x, bool last)
{
	if (isfinite(x))
		printf("\"%s\":%.6g%s", name, x, last ? "" : ",");
	else
		printf("\"%s\":null%s", name, last ? "" : ",");
}

static void report(const struct bench *b, const struct result *res)
{
	struct rusage ru;
	double secs = (double)res->elapsed_ns / 1e9;
	uint64_t user = res->after.user_write_bytes - res->before.user_write_bytes;
	uint64_t written =
		(res->after.journal_write_bytes - res->before.journal_write_bytes) +
		(res->after.flush_write_bytes - res->before.flush_write_bytes) +
		(res->after.compaction_write_bytes - res->before.compaction_write_bytes);
	uint64_t disk = disk_usage(b->dir);

	memset(&ru, 0, sizeof(ru));
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"benchmark\":\"%s\",\"num\":%" PRIu64 ",\"key_size\":%zu,\"value_size\":%zu,"
	       "\"batch\":%" PRIu64 ",\"sync\":%s,",
	       res->name, res->ops, b->key_size, b->value_size, b->batch,
	       b->sync ? "true" : "false");
	json_num("seconds", secs, false);
	json_num("ops_per_sec", secs > 0 ? (double)res->ops / secs : NAN, false);
	json_num("mb_per_sec",
		 secs > 0 && res->writes ?
			 (double)res->ops * (double)(b->key_size + b->value_size) / secs / 1e6 :
			 NAN,
		 false);
	json_num("p50_us", hist_quantile(res->lat, 0.50) / 1e3, false);
	json_num("p99_us", hist_quantile(res->lat, 0.99) / 1e3, false);
	json_num("max_us", (double)res->lat->max_ns / 1e3, false);
	json_num("avg_us",
		 res->lat->n > 0 ? (double)res->lat->sum_ns / (double)res->lat->n / 1e3 : NAN,
		 false);
	if (!res->writes)
		printf("\"found\":%" PRIu64 ",", res->found);
	printf("\"user_bytes\":%" PRIu64 ",\"bytes_written\":%" PRIu64 ",", user, written);
	json_num("write_amp", res->writes && user > 0 ? (double)written / (double)user : NAN,
		 false);
	printf("\"disk_bytes\":%" PRIu64 ",", disk);
	json_num("disk_per_user_byte",
		 res->writes && user > 0 ? (double)disk / (double)user : NAN, false);
	printf("\"peak_rss_kb\":%ld}\n", ru.ru_maxrss);
	fflush(stdout);
}

static void run_one(struct bench *b, const char *name)
{
	struct result res;
	fr_error e = { 0 };
	fr_status st;

	memset(&res, 0, sizeof(res));
	res.name = name;
	res.lat = calloc(1, sizeof(*res.lat));
	if (res.lat == NULL)
		err(1, "calloc");
	if (strcmp(name, "fillseq") == 0 || strcmp(name, "fillrandom") == 0) {
		db_open(b, true);
		res.writes = true;
		stats_get(b, &res.before);
		do_fill(b, name[4] == 's' ? KEYS_SEQ : KEYS_RANDOM, &res);
	} else if (strcmp(name, "readrandom") == 0) {
		if (b->db == NULL || b->filled == KEYS_NONE) {
			struct result pre;

			fprintf(stderr, "fractio-bench: readrandom: no fill yet, running an "
					"untimed fillseq first\n");
			memset(&pre, 0, sizeof(pre));
			pre.lat = res.lat;
			db_open(b, true);
			do_fill(b, KEYS_SEQ, &pre);
			memset(res.lat, 0, sizeof(*res.lat));
		}
		st = fr_db_wait_idle(b->db, &e);
		if (st != FR_OK)
			die("wait idle", st, &e);
		stats_get(b, &res.before);
		do_readrandom(b, &res);
	} else {
		errx(EX_USAGE, "unknown benchmark: %s (fillseq, fillrandom, readrandom)", name);
	}
	/* Count the flushes and compactions the workload set off, too. */
	st = fr_db_wait_idle(b->db, &e);
	if (st != FR_OK)
		die("wait idle", st, &e);
	stats_get(b, &res.after);
	report(b, &res);
	free(res.lat);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
		errx(EX_USAGE, "%s: expected a number from %" PRIu64 " to %" PRIu64 ", got '%s'",
		     opt, min, max, s);
	return (uint64_t)v;
}

static void usage(FILE *f, int status)
{
	fputs("usage: fractio-bench [--benchmarks LIST] [--num N] [--reads N] [--key-size N]\n"
	      "                     [--value-size N] [--batch N] [--sync] [--seed N] [--db DIR]\n"
	      "\n"
	      "  --benchmarks LIST  comma-separated: fillseq, fillrandom, readrandom\n"
	      "                     (default fillseq,fillrandom,readrandom)\n"
	      "  --num N            entries per fill (default 1000000)\n"
	      "  --reads N          gets for readrandom (default --num)\n"
	      "  --key-size N       key bytes (default 16)\n"
	      "  --value-size N     value bytes (default 100)\n"
	      "  --batch N          entries per commit in the fills (default 1)\n"
	      "  --sync             commit with fdatasync (FR_PERSIST_SYNC_DATA)\n"
	      "  --seed N           PRNG seed (default 301)\n"
	      "  --db DIR           database directory, missing or empty; kept afterwards\n"
	      "                     (default: a temporary directory, removed at the end)\n"
	      "\n"
	      "Prints one JSON line per benchmark.\n",
	      f);
	exit(status);
}

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	(void)ctx;
	fprintf(stderr, "fractio-bench: engine%s: %s\n", level == FR_LOG_ERR ? " error" : "", line);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "benchmarks", required_argument, NULL, 'b' },
		{ "num", required_argument, NULL, 'n' },
		{ "reads", required_argument, NULL, 'r' },
		{ "key-size", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "batch", required_argument, NULL, 'B' },
		{ "sync", no_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b;
	char digits[24], *list, *name, *save = NULL;
	bool reads_given = false;
	int ch;

	memset(&b, 0, sizeof(b));
	b.num = 1000000;
	b.key_size = 16;
	b.value_size = 100;
	b.batch = 1;
	b.seed = 301;
	b.benchmarks = "fillseq,fillrandom,readrandom";
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			b.benchmarks = optarg;
			break;
		case 'n':
			b.num = parse_u64("--num", optarg, 1, UINT64_MAX / 2);
			break;
		case 'r':
			b.reads = parse_u64("--reads", optarg, 1, UINT64_MAX / 2);
			reads_given = true;
			break;
		case 'k':
			b.key_size = (size_t)parse_u64("--key-size", optarg, 1, KEY_SIZE_MAX);
			break;
		case 'v':
			b.value_size = (size_t)parse_u64("--value-size", optarg, 0, 64u << 20);
			break;
		case 'B':
			b.batch = parse_u64("--batch", optarg, 1, 1u << 20);
			break;
		case 's':
			b.sync = true;
			break;
		case 'S':
			b.seed = parse_u64("--seed", optarg, 0, UINT64_MAX);
			break;
		case 'd':
			b.dir = strdup(optarg);
			if (b.dir == NULL)
				err(1, "strdup");
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
	if (!reads_given)
		b.reads = b.num;
	if ((size_t)snprintf(digits, sizeof(digits), "%" PRIu64, b.num - 1) > b.key_size)
		errx(EX_USAGE, "--key-size %zu is too small for %" PRIu64 " sequential keys",
		     b.key_size, b.num);

	/* Check the list before doing any work. */
	list = strdup(b.benchmarks);
	if (list == NULL)
		err(1, "strdup");
	for (name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
		if (strcmp(name, "fillseq") != 0 && strcmp(name, "fillrandom") != 0 &&
		    strcmp(name, "readrandom") != 0)
			errx(EX_USAGE, "unknown benchmark: %s (fillseq, fillrandom, readrandom)",
			     name);
	}
	free(list);

	fr_log_set(log_sink, NULL, FR_LOG_WARN);
	make_pool(&b);
	prepare_dir(&b);

	list = strdup(b.benchmarks);
	if (list == NULL)
		err(1, "strdup");
	save = NULL;
	for (name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save))
		run_one(&b, name);
	free(list);

	db_close(&b);
	if (b.dir_is_temp) {
		empty_dir(b.dir);
		if (rmdir(b.dir) != 0)
			warn("rmdir %s", b.dir);
		temp_dir = NULL;
	}
	fr_log_set(NULL, NULL, FR_LOG_ERR);
	free(b.dir);
	free(b.pool);
	return 0;
}
