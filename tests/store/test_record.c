/* SPDX-License-Identifier: MIT */
/*
 * test_record.c - record files (io/record.h, FORMAT.md §2) on the real file system: round trips,
 * the exact byte layout, and the torn-tail rule against header damage, truncation at every
 * offset of the last record, flipped bytes, appended garbage and a duplicated last record.
 * Random sizes print their seed (FR_SEED repeats a run).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "io/io.h"
#include "io/io_fault.h"
#include "io/record.h"
#include "testutil.h"

#define MAGIC 0x54534554u /* "TEST" */
#define FILE_ID 0x1122334455667788ull

struct fixture {
	char *dir;
	char path[512];
	char path2[512];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->dir = tu_tmpdir("record");
	snprintf(fx->path, sizeof(fx->path), "%s/file.rec", fx->dir);
	snprintf(fx->path2, sizeof(fx->path2), "%s/copy.rec", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	tu_rmtree_free(fx->dir);
	free(fx);
	return 0;
}

/* Deterministic payload of record idx. */
static void fill_payload(uint8_t *p, size_t len, uint64_t idx)
{
	uint64_t s = idx * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(tu_rand(&s) >> 56);
}

/* A written file: record sizes and offsets, and its image. */
struct written {
	size_t n;
	size_t *len;
	uint64_t *off;
	uint8_t *img;
	size_t img_len;
};

static void written_free(struct written *wr)
{
	free(wr->len);
	free(wr->off);
	fr_free(wr->img);
	memset(wr, 0, sizeof(*wr));
}

/* Writes records of the given sizes to path (flushing after every k-th, k > 0) and loads the
 * image. */
static void write_records(const char *path, const size_t *lens, size_t n, size_t flush_every,
			  struct written *wr)
{
	fr_error err = {0};
	struct rec_writer *w;
	uint8_t *p = NULL;
	size_t cap = 0;
	wr->n = n;
	wr->len = calloc(n ? n : 1, sizeof(*wr->len));
	wr->off = calloc(n ? n : 1, sizeof(*wr->off));
	assert_non_null(wr->len);
	assert_non_null(wr->off);
	assert_int_equal(rec_writer_open(io_posix(), path, MAGIC, FILE_ID, &w, &err), FR_OK);
	assert_int_equal(rec_writer_size(w), REC_FILE_HEADER_LEN);
	for (size_t i = 0; i < n; i++) {
		if (lens[i] > cap) {
			cap = lens[i];
			p = realloc(p, cap);
			assert_non_null(p);
		}
		fill_payload(p, lens[i], i);
		wr->len[i] = lens[i];
		wr->off[i] = rec_writer_size(w);
		assert_int_equal(rec_writer_add(w, p, lens[i], &err), FR_OK);
		assert_int_equal(rec_writer_size(w), wr->off[i] + REC_HEADER_LEN + lens[i]);
		if (flush_every && (i + 1) % flush_every == 0)
			assert_int_equal(rec_writer_flush(w, &err), FR_OK);
	}
	uint64_t size = rec_writer_size(w);
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	free(p);
	void *img;
	assert_int_equal(io_read_file(io_posix(), path, &img, &wr->img_len, &err), FR_OK);
	wr->img = img;
	assert_int_equal(wr->img_len, size);
}

static void write_image(const char *path, const void *data, size_t len)
{
	fr_error err = {0};
	struct io_file *f;
	assert_int_equal(io_open(io_posix(), path, IO_RDWR | IO_CREATE | IO_TRUNC, &f, &err),
			 FR_OK);
	if (len)
		assert_int_equal(io_pwrite(f, data, len, 0, &err), FR_OK);
	io_close(f);
}

/* Checks each record read against the written ones. */
struct check {
	const struct written *wr;
	size_t seen;
	size_t bad;
	uint8_t *tmp;
	size_t tmp_cap;
	size_t stop_at;    /* return stop_rc at this record (1-based), 0 never */
	fr_status stop_rc;
};

static fr_status check_rec(void *ctx, const uint8_t *rec, size_t len, uint64_t off,
			   fr_error *err)
{
	struct check *c = ctx;
	size_t i = c->seen++;
	if (c->stop_at && c->seen == c->stop_at)
		return c->stop_rc;
	(void)err;
	if (i >= c->wr->n || len != c->wr->len[i] || off != c->wr->off[i]) {
		c->bad++;
		return FR_OK;
	}
	if (len > c->tmp_cap) {
		c->tmp = realloc(c->tmp, len);
		assert_non_null(c->tmp);
		c->tmp_cap = len;
	}
	fill_payload(c->tmp, len, i);
	if (len && memcmp(c->tmp, rec, len) != 0)
		c->bad++;
	return FR_OK;
}

/* Reads path, checking records; returns the status. */
static fr_status read_check(const char *path, const struct written *wr,
			    struct rec_read_result *res, size_t *seen, fr_error *err)
{
	struct check c = {.wr = wr};
	memset(res, 0xa5, sizeof(*res));
	fr_status rc = rec_read_file(io_posix(), path, MAGIC, check_rec, &c, res, err);
	free(c.tmp);
	assert_int_equal(c.bad, 0);
	*seen = c.seen;
	return rc;
}

static void make_sizes(size_t *lens, size_t n, uint64_t *s, size_t max)
{
	for (size_t i = 0; i < n; i++)
		lens[i] = (size_t)tu_rand_below(s, max + 1);
}

/* ---- tests ---- */

static void test_record_round_trip(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	enum { N = 300 };
	size_t lens[N];
	for (size_t i = 0; i < N; i++) {
		switch (tu_rand_below(&s, 4)) {
		case 0: lens[i] = (size_t)tu_rand_below(&s, 65); break;
		case 1: lens[i] = (size_t)tu_rand_below(&s, 4097); break;
		default: lens[i] = (size_t)tu_rand_below(&s, 100 * 1024 + 1); break;
		}
	}
	lens[0] = 0;
	lens[1] = 100 * 1024;
	lens[N / 2] = 3u << 20; /* larger than the read window */
	lens[N - 1] = 0;
	struct written wr = {0};
	write_records(fx->path, lens, N, 7, &wr);

	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	assert_int_equal(read_check(fx->path, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(seen, N);
	assert_int_equal(res.records, N);
	assert_int_equal(res.file_id, FILE_ID);
	assert_false(res.torn);
	assert_int_equal(res.valid_len, wr.img_len);
	assert_int_equal(res.file_len, wr.img_len);

	/* a NULL callback only counts */
	assert_int_equal(rec_read_file(io_posix(), fx->path, MAGIC, NULL, NULL, &res, &err), FR_OK);
	assert_int_equal(res.records, N);
	written_free(&wr);
}

/* Records framed from two parts, the large ones (a body of 256 KiB or more) written from the
 * caller's memory, make the same bytes as records added whole; a file cut inside a large body
 * ends in a torn tail there. */
static void test_record_direct_large(void **state)
{
	struct fixture *fx = *state;
	enum { N = 10 };
	const size_t lens[N] = {10, 300 << 10, 0, 5, 1 << 20, 200, 256 << 10, (256 << 10) + 2,
				(256 << 10) - 1, 3};
	struct written wr = {0};
	write_records(fx->path, lens, N, 0, &wr); /* whole: never direct */

	fr_error err = {0};
	struct rec_writer *w;
	uint8_t *p = malloc(1 << 20);
	assert_non_null(p);
	assert_int_equal(rec_writer_open(io_posix(), fx->path2, MAGIC, FILE_ID, &w, &err), FR_OK);
	for (size_t i = 0; i < N; i++) {
		size_t h = lens[i] < 2 ? lens[i] : 2;
		fill_payload(p, lens[i], i);
		assert_int_equal(rec_writer_add2(w, p, h, p + h, lens[i] - h, &err), FR_OK);
		assert_int_equal(rec_writer_size(w), wr.off[i] + REC_HEADER_LEN + lens[i]);
	}
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	free(p);
	void *img;
	size_t img_len;
	assert_int_equal(io_read_file(io_posix(), fx->path2, &img, &img_len, &err), FR_OK);
	assert_int_equal(img_len, wr.img_len);
	assert_memory_equal(img, wr.img, img_len);
	fr_free(img);

	struct rec_read_result res;
	size_t seen;
	assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(seen, N);
	assert_false(res.torn);
	/* cut inside the 1 MiB body of record 4: records 0..3 remain */
	write_image(fx->path2, wr.img, (size_t)wr.off[4] + REC_HEADER_LEN + 1000);
	assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(seen, 4);
	assert_true(res.torn);
	assert_int_equal(res.valid_len, wr.off[4]);
	written_free(&wr);
}

static void test_record_empty_file(void **state)
{
	struct fixture *fx = *state;
	struct written wr = {0};
	write_records(fx->path, NULL, 0, 0, &wr);
	assert_int_equal(wr.img_len, REC_FILE_HEADER_LEN);
	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	assert_int_equal(read_check(fx->path, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(seen, 0);
	assert_int_equal(res.records, 0);
	assert_false(res.torn);
	assert_int_equal(res.valid_len, REC_FILE_HEADER_LEN);
	assert_int_equal(res.file_id, FILE_ID);
	written_free(&wr);
}

/* The bytes are exactly those FORMAT.md §2 describes. */
static void test_record_format_bytes(void **state)
{
	struct fixture *fx = *state;
	size_t lens[3] = {5, 0, 40};
	struct written wr = {0};
	write_records(fx->path, lens, 3, 0, &wr);
	const uint8_t *p = wr.img;
	assert_int_equal(wr.img_len, 24 + 16 + 5 + 16 + 0 + 16 + 40);
	assert_int_equal(dec_u32(p), MAGIC);
	assert_int_equal(dec_u32(p + 4), 1);
	assert_int_equal(dec_u64(p + 8), FILE_ID);
	assert_int_equal(dec_u64(p + 16), XXH3_64bits(p, 16));
	uint64_t off = 24;
	for (size_t i = 0; i < 3; i++) {
		uint8_t want[64];
		fill_payload(want, lens[i], i);
		const uint8_t *h = p + off;
		assert_int_equal(wr.off[i], off);
		assert_int_equal(dec_u32(h), lens[i]);
		assert_int_equal(dec_u32(h + 4), (uint32_t)XXH3_64bits_withSeed(h, 4, off));
		assert_int_equal(dec_u64(h + 8), XXH3_64bits_withSeed(h + 16, lens[i], off));
		assert_memory_equal(h + 16, want, lens[i]);
		off += 16 + lens[i];
	}
	written_free(&wr);
}

static void test_record_file_header_corrupt(void **state)
{
	struct fixture *fx = *state;
	size_t lens[4] = {10, 20, 30, 40};
	struct written wr = {0};
	write_records(fx->path, lens, 4, 0, &wr);
	fr_error err;
	struct rec_read_result res;
	size_t seen;
	for (size_t i = 0; i < REC_FILE_HEADER_LEN; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			wr.img[i] ^= (uint8_t)(1u << bit);
			write_image(fx->path2, wr.img, wr.img_len);
			wr.img[i] ^= (uint8_t)(1u << bit);
			memset(&err, 0, sizeof(err));
			assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err),
					 FR_CORRUPTION);
			assert_int_equal(err.code, FR_CORRUPTION);
			assert_int_equal(seen, 0);
			assert_non_null(strstr(err.msg, fx->path2));
		}
	}
	/* a file of another kind */
	memset(&err, 0, sizeof(err));
	assert_int_equal(rec_read_file(io_posix(), fx->path, MAGIC + 1, NULL, NULL, &res, &err),
			 FR_CORRUPTION);
	assert_int_equal(err.offset, 0);
	/* a header whose check is right but whose version is unknown */
	wr.img[4] = 2;
	enc_u64(wr.img + 16, XXH3_64bits(wr.img, 16));
	write_image(fx->path2, wr.img, wr.img_len);
	memset(&err, 0, sizeof(err));
	assert_int_equal(rec_read_file(io_posix(), fx->path2, MAGIC, NULL, NULL, &res, &err),
			 FR_CORRUPTION);
	assert_int_equal(err.offset, 4);
	written_free(&wr);
}

/* Cutting the file anywhere inside the last record (header included) loses only that record. */
static void test_record_truncate_every_offset(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	enum { N = 20 };
	size_t lens[N];
	make_sizes(lens, N, &s, 2000);
	lens[N - 1] = 777;
	struct written wr = {0};
	write_records(fx->path, lens, N, 3, &wr);
	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	uint64_t last = wr.off[N - 1];
	for (uint64_t t = last + 1; t < wr.img_len; t++) {
		write_image(fx->path2, wr.img, (size_t)t);
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(seen, N - 1);
		assert_int_equal(res.records, N - 1);
		assert_true(res.torn);
		assert_int_equal(res.valid_len, last);
		assert_int_equal(res.file_len, t);
	}
	/* the whole file is intact */
	write_image(fx->path2, wr.img, wr.img_len);
	assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(res.records, N);
	assert_false(res.torn);
	/* shorter than the file header: empty and torn */
	for (uint64_t t = 0; t < REC_FILE_HEADER_LEN; t++) {
		write_image(fx->path2, wr.img, (size_t)t);
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(seen, 0);
		assert_int_equal(res.records, 0);
		assert_true(res.torn);
		assert_int_equal(res.valid_len, 0);
		assert_int_equal(res.file_len, t);
	}
	/* cutting exactly between records is a clean file */
	for (size_t i = 0; i < N; i++) {
		write_image(fx->path2, wr.img, (size_t)wr.off[i]);
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(res.records, i);
		assert_false(res.torn);
		assert_int_equal(res.valid_len, wr.off[i]);
	}
	written_free(&wr);
}

/* A large last record cut short is a torn tail too. */
static void test_record_truncate_large_last(void **state)
{
	struct fixture *fx = *state;
	size_t lens[3] = {100, 2u << 20, 5u << 20};
	struct written wr = {0};
	write_records(fx->path, lens, 3, 1, &wr);
	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	uint64_t cuts[] = {wr.off[2] + 1, wr.off[2] + 16, wr.off[2] + (3u << 20),
			   wr.img_len - 1};
	for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
		write_image(fx->path2, wr.img, (size_t)cuts[k]);
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(res.records, 2);
		assert_true(res.torn);
		assert_int_equal(res.valid_len, wr.off[2]);
	}
	written_free(&wr);
}

/* A damaged record followed by a good one is corruption, named by file and offset. */
static void test_record_flip_middle_is_corruption(void **state)
{
	struct fixture *fx = *state;
	enum { N = 10 };
	size_t lens[N] = {50, 60, 70, 80, 90, 300, 110, 120, 130, 140};
	struct written wr = {0};
	write_records(fx->path, lens, N, 0, &wr);
	uint64_t mid = wr.off[5];
	/* payload bytes, then each header field */
	size_t pos[] = {16, 17, 16 + 150, 16 + 299, 0, 1, 3, 4, 7, 8, 15};
	for (size_t k = 0; k < sizeof(pos) / sizeof(pos[0]); k++) {
		fr_error err = {0};
		struct rec_read_result res;
		size_t seen;
		wr.img[mid + pos[k]] ^= 0x10;
		write_image(fx->path2, wr.img, wr.img_len);
		wr.img[mid + pos[k]] ^= 0x10;
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_CORRUPTION);
		assert_int_equal(err.code, FR_CORRUPTION);
		assert_int_equal(err.offset, mid);
		assert_int_equal(seen, 5);
		char want[64];
		snprintf(want, sizeof(want), "offset %llu", (unsigned long long)mid);
		assert_non_null(strstr(err.msg, fx->path2));
		assert_non_null(strstr(err.msg, want));
	}
	/* damage in the very first record */
	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	wr.img[wr.off[0] + 20] ^= 1;
	write_image(fx->path2, wr.img, wr.img_len);
	assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_CORRUPTION);
	assert_int_equal(err.offset, REC_FILE_HEADER_LEN);
	assert_int_equal(seen, 0);
	written_free(&wr);
}

/* Damage in the last record with nothing valid after it is a torn tail. */
static void test_record_flip_last_is_torn(void **state)
{
	struct fixture *fx = *state;
	enum { N = 8 };
	size_t lens[N] = {10, 200, 0, 3000, 1, 77, 500, 400};
	struct written wr = {0};
	write_records(fx->path, lens, N, 2, &wr);
	uint64_t last = wr.off[N - 1];
	size_t pos[] = {16, 100, 16 + 399, 0, 5, 12};
	for (size_t k = 0; k < sizeof(pos) / sizeof(pos[0]); k++) {
		fr_error err = {0};
		struct rec_read_result res;
		size_t seen;
		wr.img[last + pos[k]] ^= 0x80;
		write_image(fx->path2, wr.img, wr.img_len);
		wr.img[last + pos[k]] ^= 0x80;
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(seen, N - 1);
		assert_int_equal(res.records, N - 1);
		assert_true(res.torn);
		assert_int_equal(res.valid_len, last);
		assert_int_equal(res.file_len, wr.img_len);
	}
	written_free(&wr);
}

/* Garbage after the last record is a torn tail and every record is read. */
static void test_record_garbage_tail(void **state)
{
	struct fixture *fx = *state;
	uint64_t s = tu_seed();
	enum { N = 12, PATTERNS = 10 };
	size_t lens[N];
	make_sizes(lens, N, &s, 3000);
	struct written wr = {0};
	write_records(fx->path, lens, N, 4, &wr);
	uint64_t end = wr.img_len;
	for (int pat = 0; pat < PATTERNS; pat++) {
		size_t glen = 0;
		uint8_t *g = malloc(8192 + wr.img_len);
		assert_non_null(g);
		switch (pat) {
		case 0: /* zeros, as a preallocated or half-written block */
			glen = 4096;
			memset(g, 0, glen);
			break;
		case 1:
			glen = 4096;
			memset(g, 0xff, glen);
			break;
		case 2: /* random */
			glen = 5000;
			for (size_t i = 0; i < glen; i++)
				g[i] = (uint8_t)tu_rand(&s);
			break;
		case 3: /* one byte */
			glen = 1;
			g[0] = 0x42;
			break;
		case 4: /* a shorter-than-header fragment */
			glen = 15;
			memset(g, 0x07, glen);
			break;
		case 5: /* a header with a valid check, claiming more bytes than there are */
			glen = 16 + 100;
			enc_u32(g, 1000);
			enc_u32(g + 4, (uint32_t)XXH3_64bits_withSeed(g, 4, end));
			enc_u64(g + 8, 0);
			memset(g + 16, 0x33, 100);
			break;
		case 6: /* a good header with a payload that does not match its check */
			glen = 16 + 64;
			enc_u32(g, 64);
			enc_u32(g + 4, (uint32_t)XXH3_64bits_withSeed(g, 4, end));
			memset(g + 16, 0x44, 64);
			enc_u64(g + 8, XXH3_64bits_withSeed(g + 16, 64, end) ^ 1);
			break;
		case 7: /* a copy of the first records, valid only at their own offsets */
			glen = (size_t)(wr.off[3] - wr.off[0]);
			memcpy(g, wr.img + wr.off[0], glen);
			break;
		case 8: /* a copy of the file header and everything: an old file image */
			glen = wr.img_len;
			memcpy(g, wr.img, glen);
			break;
		case 9: /* text */
			glen = (size_t)snprintf((char *)g, 8192, "%s",
						"the quick brown fox jumps over the lazy dog\n");
			break;
		}
		uint8_t *img = malloc(wr.img_len + glen);
		assert_non_null(img);
		memcpy(img, wr.img, wr.img_len);
		memcpy(img + wr.img_len, g, glen);
		write_image(fx->path2, img, wr.img_len + glen);
		free(img);
		free(g);
		fr_error err = {0};
		struct rec_read_result res;
		size_t seen;
		assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
		assert_int_equal(seen, N);
		assert_int_equal(res.records, N);
		assert_true(res.torn);
		assert_int_equal(res.valid_len, end);
		assert_int_equal(res.file_len, end + glen);
	}
	written_free(&wr);
}

/* A duplicate of the last record appended is checked with the wrong offset seed: a tail. */
static void test_record_duplicate_last_rejected(void **state)
{
	struct fixture *fx = *state;
	enum { N = 6 };
	size_t lens[N] = {100, 0, 250, 33, 1000, 64};
	struct written wr = {0};
	write_records(fx->path, lens, N, 0, &wr);
	size_t last_len = wr.img_len - (size_t)wr.off[N - 1];
	uint8_t *img = malloc(wr.img_len + last_len);
	assert_non_null(img);
	memcpy(img, wr.img, wr.img_len);
	memcpy(img + wr.img_len, wr.img + wr.off[N - 1], last_len);
	write_image(fx->path2, img, wr.img_len + last_len);
	fr_error err = {0};
	struct rec_read_result res;
	size_t seen;
	assert_int_equal(read_check(fx->path2, &wr, &res, &seen, &err), FR_OK);
	assert_int_equal(seen, N);
	assert_true(res.torn);
	assert_int_equal(res.valid_len, wr.img_len);
	free(img);
	written_free(&wr);
}

/* The callback's status stops the read. */
static void test_record_callback_stops(void **state)
{
	struct fixture *fx = *state;
	size_t lens[5] = {1, 2, 3, 4, 5};
	struct written wr = {0};
	write_records(fx->path, lens, 5, 0, &wr);
	struct check c = {.wr = &wr, .stop_at = 3, .stop_rc = FR_INVALID};
	struct rec_read_result res;
	fr_error err = {0};
	assert_int_equal(rec_read_file(io_posix(), fx->path, MAGIC, check_rec, &c, &res, &err),
			 FR_INVALID);
	assert_int_equal(c.seen, 3);
	free(c.tmp);
	written_free(&wr);
}

static void test_record_writer_errors(void **state)
{
	struct fixture *fx = *state;
	fr_error err = {0};
	struct rec_writer *w;
	struct rec_read_result res;
	assert_int_equal(rec_writer_open(io_posix(), fx->path, MAGIC, 1, &w, &err), FR_OK);
	/* too long: refused before the payload is touched */
	uint8_t b = 0;
	assert_int_equal(rec_writer_add(w, &b, (size_t)REC_MAX_LEN + 1, &err), FR_INVALID);
	assert_int_equal(rec_writer_size(w), REC_FILE_HEADER_LEN);
	assert_int_equal(rec_writer_add(w, "abc", 3, &err), FR_OK);
	assert_int_equal(rec_writer_sync(w, FR_PERSIST_SYNC_DATA, &err), FR_OK);
	assert_int_equal(rec_writer_add(w, "de", 2, &err), FR_OK);
	/* close flushes */
	assert_int_equal(rec_writer_close(w, &err), FR_OK);
	assert_int_equal(rec_writer_close(NULL, &err), FR_OK);
	assert_int_equal(rec_read_file(io_posix(), fx->path, MAGIC, NULL, NULL, &res, &err), FR_OK);
	assert_int_equal(res.records, 2);
	assert_int_equal(res.file_id, 1);
	/* the file exists already */
	w = (struct rec_writer *)&b;
	assert_int_equal(rec_writer_open(io_posix(), fx->path, MAGIC, 1, &w, &err), FR_INVALID);
	assert_null(w);
	/* no file */
	assert_int_equal(rec_read_file(io_posix(), fx->path2, MAGIC, NULL, NULL, &res, &err),
			 FR_NOT_FOUND);
}

/* A failed write or sync returns its status, and the writer accepts nothing after it. */
static void test_record_writer_faults(void **state)
{
	struct fixture *fx = *state;
	struct fr_io *io = io_fault_new(io_posix());
	assert_non_null(io);
	fr_error err = {0};
	struct rec_writer *w;
	struct rec_read_result res;

	/* the header write of open fails: no writer, no file */
	io_fault_arm(io, IO_FAULT_WRITE, 1, EIO, false);
	assert_int_equal(rec_writer_open(io, fx->path, MAGIC, 1, &w, &err), FR_IO);
	assert_null(w);
	bool exists = true;
	assert_int_equal(io_exists(io, fx->path, &exists, &err), FR_OK);
	assert_false(exists);

	/* a failed flush */
	io_fault_clear(io);
	assert_int_equal(rec_writer_open(io, fx->path, MAGIC, 1, &w, &err), FR_OK);
	assert_int_equal(rec_writer_add(w, "kept", 4, &err), FR_OK);
	assert_int_equal(rec_writer_flush(w, &err), FR_OK);
	io_fault_arm(io, IO_FAULT_WRITE, 1, EIO, false);
	assert_int_equal(rec_writer_add(w, "lost", 4, &err), FR_OK);
	memset(&err, 0, sizeof(err));
	assert_int_equal(rec_writer_flush(w, &err), FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	assert_non_null(strstr(err.msg, fx->path));
	io_fault_clear(io);
	assert_int_equal(rec_writer_add(w, "more", 4, &err), FR_IO);
	assert_int_equal(rec_writer_flush(w, &err), FR_IO);
	assert_int_equal(rec_writer_sync(w, FR_PERSIST_SYNC_DATA, &err), FR_IO);
	assert_int_equal(rec_writer_close(w, &err), FR_IO);
	assert_int_equal(rec_read_file(io, fx->path, MAGIC, NULL, NULL, &res, &err), FR_OK);
	assert_int_equal(res.records, 1);
	assert_false(res.torn);

	/* a failed sync */
	assert_int_equal(rec_writer_open(io, fx->path2, MAGIC, 2, &w, &err), FR_OK);
	assert_int_equal(rec_writer_add(w, "x", 1, &err), FR_OK);
	io_fault_arm(io, IO_FAULT_SYNC, 1, EIO, false);
	memset(&err, 0, sizeof(err));
	assert_int_equal(rec_writer_sync(w, FR_PERSIST_SYNC_ALL, &err), FR_IO);
	assert_int_equal(err.sys_errno, EIO);
	io_fault_clear(io);
	assert_int_equal(rec_writer_sync(w, FR_PERSIST_SYNC_ALL, &err), FR_IO);
	assert_int_equal(rec_writer_close(w, &err), FR_IO);
	io_destroy(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_record_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_direct_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_format_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_file_header_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_truncate_every_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_record_truncate_large_last, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_flip_middle_is_corruption, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_record_flip_last_is_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_garbage_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_duplicate_last_rejected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_record_callback_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_writer_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_writer_faults, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
