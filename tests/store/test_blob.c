/* SPDX-License-Identifier: MIT */
/*
 * test_blob.c - the blob file layer: round trips with and without compression, handles,
 * every byte region of a file corrupted in turn (FR_CORRUPTION from the scan, and from a read
 * of a value whose bytes were hit), and truncation; direct blob files cut anywhere keep exactly
 * their whole records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "blob/blob.h"
#include "io/io.h"
#include "testutil.h"

#define N_VALS 20

struct fixture {
	char *dir;
	char path[512];
	struct blob_handle h[N_VALS];
	struct blob_meta meta;
	uint8_t *vals[N_VALS];
	size_t lens[N_VALS];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("blob");
	snprintf(f->path, sizeof(f->path), "%s/7.blob", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	tu_rmtree_free(f->dir);
	for (int i = 0; i < N_VALS; i++)
		free(f->vals[i]);
	free(f);
	return 0;
}

/* Writes N_VALS values: compressible ones (even i) and random ones (odd i), some empty-ish. */
static void write_file(struct fixture *f, bool compress, size_t step)
{
	uint64_t rs = 42;
	struct blob_writer *w;
	fr_error e;
	assert_int_equal(blob_writer_open(io_posix(), f->path, 7, compress, &w, &e), FR_OK);
	for (int i = 0; i < N_VALS; i++) {
		size_t n = i == 3 ? 0 : 70 + step * (size_t)i;
		free(f->vals[i]);
		f->vals[i] = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			f->vals[i][k] = i % 2 ? (uint8_t)tu_rand(&rs) : (uint8_t)('a' + k % 7);
		f->lens[i] = n;
		char key[32];
		int kl = snprintf(key, sizeof(key), "key-%04d", i);
		assert_int_equal(blob_writer_add(w, key, (size_t)kl, f->vals[i], n, &f->h[i], &e),
				 FR_OK);
		assert_int_equal(f->h[i].file_id, 7);
		assert_int_equal(f->h[i].value_len, n);
	}
	assert_int_equal(blob_writer_finish(w, &f->meta, &e), FR_OK);
	assert_int_equal(f->meta.value_cnt, N_VALS);
}

static void check_reads(struct fixture *f)
{
	fr_error e;
	for (int i = 0; i < N_VALS; i++) {
		void *v;
		size_t n;
		assert_int_equal(blob_read(io_posix(), NULL, f->path, &f->h[i], &v, &n, &e), FR_OK);
		assert_int_equal(n, f->lens[i]);
		assert_memory_equal(v, f->vals[i], n);
		fr_free(v);
	}
}

struct scan_ctx {
	struct fixture *f;
	int seen;
};

static fr_status scan_fn(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen, const struct blob_handle *h)
{
	struct scan_ctx *c = ctx;
	char want[32];
	int kl = snprintf(want, sizeof(want), "key-%04d", c->seen);
	assert_int_equal(klen, (size_t)kl);
	assert_memory_equal(key, want, klen);
	assert_int_equal(vlen, c->f->lens[c->seen]);
	assert_memory_equal(val, c->f->vals[c->seen], vlen);
	assert_int_equal(h->off, c->f->h[c->seen].off);
	assert_int_equal(h->cksum, c->f->h[c->seen].cksum);
	c->seen++;
	return FR_OK;
}

static void test_blob_round_trip(void **state)
{
	struct fixture *f = *state;
	for (int compress = 0; compress < 2; compress++) {
		io_unlink(io_posix(), f->path, NULL);
		write_file(f, compress, 997);
		check_reads(f);
		uint64_t stored = 0, raw = 0;
		for (int i = 0; i < N_VALS; i++) {
			stored += f->h[i].stored_len;
			raw += f->h[i].value_len;
			if (!compress || i % 2)
				assert_int_equal(f->h[i].stored_len, f->h[i].value_len);
		}
		assert_int_equal(stored, f->meta.value_bytes);
		if (compress)
			assert_true(stored < raw - raw / 4); /* the repetitive half shrank */
		struct scan_ctx c = {f, 0};
		struct blob_meta m;
		fr_error e;
		assert_int_equal(blob_scan(io_posix(), f->path, 7, scan_fn, &c, &m, &e), FR_OK);
		assert_int_equal(c.seen, N_VALS);
		assert_int_equal(m.file_size, f->meta.file_size);
		assert_int_equal(m.value_bytes, f->meta.value_bytes);
		/* the wrong id is corruption */
		assert_int_equal(blob_scan(io_posix(), f->path, 8, NULL, NULL, NULL, &e),
				 FR_CORRUPTION);
	}
}

/* Large values are compressed whole only when a probe of their start compresses: random ones
 * are stored as they are without a full try, compressible ones next to them still shrink, and
 * every value reads back. */
static void test_blob_compress_probe(void **state)
{
	struct fixture *f = *state;
	enum { LARGE = 64 << 10 };
	uint64_t rs = 7;
	struct blob_writer *w;
	fr_error e;
	assert_int_equal(blob_writer_open(io_posix(), f->path, 7, true, &w, &e), FR_OK);
	for (int i = 0; i < N_VALS; i++) {
		/* i % 4: 0 random, 1 compressible, 2 random start then compressible, 3 small random */
		size_t n = i % 4 == 3 ? 1000 : LARGE;
		free(f->vals[i]);
		f->vals[i] = malloc(n);
		for (size_t k = 0; k < n; k++) {
			bool rnd = i % 4 == 0 || i % 4 == 3 || (i % 4 == 2 && k < 8192);
			f->vals[i][k] = rnd ? (uint8_t)tu_rand(&rs) : (uint8_t)('a' + k % 7);
		}
		f->lens[i] = n;
		char key[32];
		int kl = snprintf(key, sizeof(key), "key-%04d", i);
		assert_int_equal(blob_writer_add(w, key, (size_t)kl, f->vals[i], n, &f->h[i], &e),
				 FR_OK);
		if (i % 4 == 1)
			assert_true(f->h[i].stored_len < n / 4);
		else
			assert_int_equal(f->h[i].stored_len, n);
	}
	/* whole tries: the compressible large values and the small random ones (no probe) */
	assert_int_equal(blob_writer_compress_tries(w), N_VALS / 2);
	assert_int_equal(blob_writer_finish(w, &f->meta, &e), FR_OK);
	check_reads(f);
}

static void test_blob_handle_codec(void **state)
{
	(void)state;
	struct blob_handle h = {123456789, 1u << 30, 1000, 5000, UINT64_MAX}, g;
	uint8_t b[BLOB_HANDLE_MAX];
	size_t n = blob_handle_encode(&h, b);
	assert_true(n <= BLOB_HANDLE_MAX);
	assert_true(blob_handle_decode(b, n, &g));
	assert_memory_equal(&g, &h, sizeof(h));
	for (size_t k = 0; k < n; k++)
		assert_false(blob_handle_decode(b, k, &g)); /* every prefix is short */
	uint8_t longer[BLOB_HANDLE_MAX + 1];
	memcpy(longer, b, n);
	longer[n] = 0;
	assert_false(blob_handle_decode(longer, n + 1, &g)); /* trailing bytes */
	h.stored_len = h.value_len + 1; /* never larger than the value */
	n = blob_handle_encode(&h, b);
	assert_false(blob_handle_decode(b, n, &g));
}

static uint8_t *read_all(const char *path, size_t *len)
{
	void *d;
	fr_error e;
	assert_int_equal(io_read_file(io_posix(), path, &d, len, &e), FR_OK);
	return d;
}

static void write_all(const char *path, const uint8_t *d, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(d, 1, len, fp), len);
	fclose(fp);
}

/* Flips each byte of the file in turn: the scan reports FR_CORRUPTION every time, and a read of
 * a value whose stored bytes were hit does too (reads of other values still succeed). Small
 * values keep the file (and the sweep) short. */
static void test_blob_every_byte_corrupt(void **state)
{
	struct fixture *f = *state;
	write_file(f, true, 23);
	size_t len;
	uint8_t *orig = read_all(f->path, &len);
	assert_int_equal(len, f->meta.file_size);
	for (size_t off = 0; off < len; off++) {
		orig[off] ^= 0x41;
		write_all(f->path, orig, len);
		fr_error e;
		memset(&e, 0, sizeof(e));
		fr_status rc = blob_scan(io_posix(), f->path, 7, NULL, NULL, NULL, &e);
		if (rc != FR_CORRUPTION)
			fail_msg("byte %zu flipped: scan gave %d", off, rc);
		assert_non_null(strstr(e.msg, "7.blob"));
		for (int i = 0; i < N_VALS; i++) {
			void *v = NULL;
			size_t n;
			bool hit = off >= f->h[i].off && off < f->h[i].off + f->h[i].stored_len;
			rc = blob_read(io_posix(), NULL, f->path, &f->h[i], &v, &n, &e);
			if (hit) {
				assert_int_equal(rc, FR_CORRUPTION);
			} else {
				assert_int_equal(rc, FR_OK);
				assert_int_equal(n, f->lens[i]);
				assert_memory_equal(v, f->vals[i], n);
			}
			fr_free(v);
		}
		orig[off] ^= 0x41;
	}
	free(orig);
}

static void test_blob_truncated(void **state)
{
	struct fixture *f = *state;
	write_file(f, false, 997);
	size_t len;
	uint8_t *orig = read_all(f->path, &len);
	/* every cut inside the last record and the footer, and a few further in */
	for (size_t cut = 0; cut < len; cut += cut + 200 < len ? 97 : 1) {
		write_all(f->path, orig, cut);
		fr_error e;
		assert_int_equal(blob_scan(io_posix(), f->path, 7, NULL, NULL, NULL, &e),
				 FR_CORRUPTION);
		/* a value past the cut is corruption, never a short read */
		const struct blob_handle *h = &f->h[N_VALS - 1];
		if (h->off + h->stored_len > cut) {
			void *v = NULL;
			size_t n;
			assert_int_equal(blob_read(io_posix(), NULL, f->path, h, &v, &n, &e),
					 FR_CORRUPTION);
		}
	}
	/* a missing file read through a handle is corruption too */
	io_unlink(io_posix(), f->path, NULL);
	void *v = NULL;
	size_t n;
	fr_error e;
	assert_int_equal(blob_read(io_posix(), NULL, f->path, &f->h[0], &v, &n, &e), FR_CORRUPTION);
	free(orig);
}


/* Direct blob files: written record by record with no footer, then cut anywhere (a crash
 * mid-write) or followed by garbage: recovery keeps exactly the whole records, each value of
 * the prefix reads back, each past it is FR_CORRUPTION, and the finished file scans clean. */
static void test_blob_direct_prefix(void **state)
{
	struct fixture *f = *state;
	fr_error e;
	struct blob_direct *d;
	assert_int_equal(blob_direct_create(io_posix(), f->path, 7, true, &d, &e), FR_OK);
	uint64_t rs = 9, ends[N_VALS];
	for (int i = 0; i < N_VALS; i++) {
		size_t n = 100 + 613 * (size_t)i;
		f->vals[i] = malloc(n);
		for (size_t k = 0; k < n; k++)
			f->vals[i][k] = i % 2 ? (uint8_t)tu_rand(&rs) : (uint8_t)('a' + k % 5);
		f->lens[i] = n;
		char key[32];
		int kl = snprintf(key, sizeof(key), "key-%04d", i);
		assert_int_equal(blob_direct_add(d, key, (size_t)kl, f->vals[i], n, &f->h[i], &e),
				 FR_OK);
		ends[i] = f->h[i].off + f->h[i].stored_len;
		/* readable as soon as written, before any footer */
		assert_int_equal(blob_direct_write(d, 1u << 20, &e), FR_OK);
		void *v;
		size_t got;
		assert_int_equal(blob_direct_read(d, &f->h[i], &v, &got, &e), FR_OK);
		assert_int_equal(got, n);
		assert_memory_equal(v, f->vals[i], n);
		fr_free(v);
	}
	assert_int_equal(blob_direct_sync(d, &e), FR_OK);
	blob_direct_unref(d); /* unfinished: the file stays */
	size_t len;
	uint8_t *orig = read_all(f->path, &len);
	assert_int_equal(len, ends[N_VALS - 1]);

	char cut_path[600];
	snprintf(cut_path, sizeof(cut_path), "%s/8.blob", f->dir);
	for (size_t cut = 0; cut <= len + 64; cut += cut < 40 ? 3 : 401) {
		/* the file up to cut, then (past the end) garbage */
		uint8_t *img = malloc(cut + 1);
		memcpy(img, orig, cut < len ? cut : len);
		for (size_t k = len; k < cut; k++)
			img[k] = (uint8_t)(k * 37);
		write_all(cut_path, img, cut);
		free(img);
		int whole = 0;
		while (whole < N_VALS && ends[whole] <= cut)
			whole++;
		for (int ro = 1; ro >= 0; ro--) {
			assert_int_equal(blob_direct_recover(io_posix(), cut_path, 7, !ro, &d, &e),
					 FR_OK);
			for (int i = 0; i < N_VALS; i++) {
				void *v = NULL;
				size_t got;
				fr_status rc = blob_direct_read(d, &f->h[i], &v, &got, &e);
				if (i < whole) {
					assert_int_equal(rc, FR_OK);
					assert_int_equal(got, f->lens[i]);
					assert_memory_equal(v, f->vals[i], got);
					fr_free(v);
				} else {
					assert_int_equal(rc, FR_CORRUPTION);
					assert_non_null(strstr(e.msg, "8.blob"));
				}
			}
			struct blob_handle h;
			assert_int_equal(blob_direct_add(d, "k", 1, "v", 1, &h, &e), FR_INVALID);
			if (!ro) {
				struct blob_meta m;
				assert_int_equal(blob_direct_finish(d, &m, &e), FR_OK);
				assert_int_equal(m.value_cnt, (uint64_t)whole);
				struct blob_meta sm;
				assert_int_equal(
					blob_scan(io_posix(), cut_path, 7, NULL, NULL, &sm, &e),
					FR_OK);
				assert_int_equal(sm.value_cnt, (uint64_t)whole);
				assert_int_equal(sm.file_size, m.file_size);
			}
			blob_direct_unref(d);
		}
	}
	/* a missing file is made again, empty, when writable */
	io_unlink(io_posix(), cut_path, NULL);
	assert_int_equal(blob_direct_recover(io_posix(), cut_path, 7, false, &d, &e),
			 FR_NOT_FOUND);
	assert_int_equal(blob_direct_recover(io_posix(), cut_path, 7, true, &d, &e), FR_OK);
	void *v = NULL;
	size_t got;
	assert_int_equal(blob_direct_read(d, &f->h[0], &v, &got, &e), FR_CORRUPTION);
	blob_direct_unref(d);
	free(orig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_blob_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_compress_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_handle_codec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_every_byte_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_direct_prefix, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
