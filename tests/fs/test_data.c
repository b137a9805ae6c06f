/* SPDX-License-Identifier: MIT */
/*
 * test_data.c - file contents over a real engine (fs/data.c): writes across chunk boundaries,
 * holes, inline files growing into chunks and back, truncate and punch keeping the rule that no
 * chunk holds bytes past the size, SEEK_DATA/SEEK_HOLE on sparse files, dropping small and
 * large files, reads past the end, the size limit, corrupt chunks, and a random model test
 * that compares every operation with an in-memory byte array. A 4 KiB chunk and a 64-byte
 * inline limit put the edges close together.
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
#include <sys/stat.h>
#include <unistd.h>

#include "data.h"
#include "fractio.h"
#include "schema.h"
#include "testutil.h"

#define CS 4096u
#define INLINE_MAX 64u
#define SIZE_MAX_FS (1ULL << 62)

static fr_error E;

#define OK(call)                                                                           \
	do {                                                                               \
		fr_status rc_ = (call);                                                    \
		if (rc_ != FR_OK)                                                          \
			fail_msg("line %d: %s -> %s: %s", __LINE__, #call,                 \
				 fr_status_str(rc_), E.msg);                               \
	} while (0)

struct fx {
	char *dir;
	fr_db *db;
	fr_keyspace *ks;
	fr_batch *b;
	struct fsd d;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	fr_db_options o;
	fr_keyspace_options ko;

	if (!f)
		return -1;
	f->dir = tu_tmpdir("fsdata");
	fr_db_options_init(&o);
	if (fr_db_open(f->dir, &o, &f->db, &E) != FR_OK)
		goto fail;
	fr_keyspace_options_init(&ko);
	if (fr_keyspace_open(f->db, FSS_KS_DATA, &ko, &f->ks, &E) != FR_OK)
		goto fail;
	if (fr_batch_new(f->db, &f->b) != FR_OK)
		goto fail;
	f->d.data = f->ks;
	f->d.chunk_size = CS;
	f->d.inline_max = INLINE_MAX;
	*state = f;
	return 0;
fail:
	fprintf(stderr, "setup: %s\n", E.msg);
	fr_keyspace_close(f->ks);
	fr_db_close(f->db, NULL);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fr_batch_free(f->b);
	fr_keyspace_close(f->ks);
	fr_db_close(f->db, NULL);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static void commit(struct fx *f)
{
	OK(fr_batch_commit(f->b, FR_PERSIST_BUFFER, NULL, &E));
}

/* A regular file as create() makes it: inline and empty. */
static void new_file(struct fs_inode *in, uint64_t ino)
{
	fss_inode_init(in);
	in->ino = ino;
	in->mode = S_IFREG | 0644;
	in->nlink = 1;
	in->flags = FSI_INLINE;
}

static void wr(struct fx *f, struct fs_inode *in, uint64_t off, const void *buf, size_t len)
{
	int rc = fsd_write(&f->d, in, f->b, off, buf, len);
	if (rc)
		fail_msg("write %llu+%zu: %d", (unsigned long long)off, len, rc);
	commit(f);
}

static void wr_fill(struct fx *f, struct fs_inode *in, uint64_t off, int c, size_t len)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	memset(p, c, len);
	wr(f, in, off, p, len);
	free(p);
}

static void trunc_to(struct fx *f, struct fs_inode *in, uint64_t size)
{
	int rc = fsd_truncate(&f->d, in, f->b, size);
	if (rc)
		fail_msg("truncate %llu: %d", (unsigned long long)size, rc);
	commit(f);
	assert_int_equal(in->size, size);
}

static void punch(struct fx *f, struct fs_inode *in, uint64_t off, uint64_t len)
{
	uint64_t size = in->size;
	int rc = fsd_punch(&f->d, in, f->b, off, len);
	if (rc)
		fail_msg("punch %llu+%llu: %d", (unsigned long long)off, (unsigned long long)len,
			 rc);
	commit(f);
	assert_int_equal(in->size, size);
}

/* Chunk keys of ino in the keyspace (all of them when ino is 0). */
static uint64_t count_chunks(struct fx *f, uint64_t ino)
{
	uint8_t prefix[FSS_CHUNK_KEY_LEN];
	fr_iter_options o = {0};
	fr_iter *it;
	uint64_t n = 0;

	if (ino) {
		fss_chunk_key(ino, 0, prefix);
		o.prefix = prefix;
		o.prefix_len = 8;
	}
	OK(fr_iter_open(f->ks, &o, &it, &E));
	while (fr_iter_valid(it)) {
		n++;
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
	return n;
}

static bool chunk_exists(struct fx *f, uint64_t ino, uint64_t n)
{
	uint8_t key[FSS_CHUNK_KEY_LEN];
	bool yes;

	fss_chunk_key(ino, n, key);
	OK(fr_contains(f->ks, key, sizeof(key), &yes, &E));
	return yes;
}

/* No chunk of in holds a byte at or past its size; an inline file has no chunks. */
static void check_invariant(struct fx *f, const struct fs_inode *in)
{
	uint8_t prefix[FSS_CHUNK_KEY_LEN];
	fr_iter_options o = {.prefix = prefix, .prefix_len = 8};
	fr_iter *it;

	if (in->flags & FSI_INLINE) {
		assert_true(in->size <= INLINE_MAX);
		assert_int_equal(in->payload_len, in->size);
		assert_true(in->size ? in->payload != NULL : in->payload == NULL);
	} else {
		assert_null(in->payload);
	}
	fss_chunk_key(in->ino, 0, prefix);
	OK(fr_iter_open(f->ks, &o, &it, &E));
	while (fr_iter_valid(it)) {
		size_t kl, vl;
		const void *k = fr_iter_key(it, &kl);
		uint64_t ino, n;
		fr_iter_value(it, &vl);
		assert_int_equal(fss_chunk_key_decode(k, kl, &ino, &n), 0);
		assert_int_equal(ino, in->ino);
		if (in->flags & FSI_INLINE)
			fail_msg("inline file %llu has chunk %llu", (unsigned long long)ino,
				 (unsigned long long)n);
		if (vl > CS || n * CS + vl > in->size)
			fail_msg("chunk %llu holds %zu bytes, file size %llu",
				 (unsigned long long)n, vl, (unsigned long long)in->size);
		OK(fr_iter_next(it, &E));
	}
	fr_iter_close(it);
}

/* The whole file reads as want[0..in->size). */
static void check_contents(struct fx *f, const struct fs_inode *in, const uint8_t *want)
{
	size_t size = (size_t)in->size;
	uint8_t *got = malloc(size + 1);
	assert_non_null(got);
	memset(got, 0xa5, size + 1); /* a byte the read leaves alone shows */
	ssize_t n = fsd_read(&f->d, in, 0, got, size + 1);
	if (n != (ssize_t)size)
		fail_msg("read returned %zd, size %zu", n, size);
	for (size_t i = 0; i < size; i++)
		if (got[i] != want[i])
			fail_msg("byte %zu: got %#x, want %#x", i, got[i], want[i]);
	free(got);
}

/* Bytes [off, off+len) of in are all c. */
static void check_fill(struct fx *f, const struct fs_inode *in, uint64_t off, uint64_t len, int c)
{
	uint8_t *got = malloc(len ? len : 1);
	assert_non_null(got);
	memset(got, 0xa5, len ? len : 1); /* a byte the read leaves alone shows */
	ssize_t n = fsd_read(&f->d, in, off, got, len);
	assert_int_equal(n, len);
	for (uint64_t i = 0; i < len; i++)
		if (got[i] != (uint8_t)c)
			fail_msg("byte %llu: got %#x, want %#x", (unsigned long long)(off + i),
				 got[i], (uint8_t)c);
	free(got);
}

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 8)) | 1); /* never zero */
}

/* ---- tests ---- */

static void test_fs_data_write_across_chunks(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t want[13000] = {0}, p[10000], q[20];

	new_file(&in, 7);
	pattern(p, sizeof(p), 1);
	wr(f, &in, 3000, p, sizeof(p)); /* chunks 0..3, partial at both ends */
	memcpy(want + 3000, p, sizeof(p));
	assert_int_equal(in.size, 13000);
	assert_false(in.flags & FSI_INLINE);
	assert_int_equal(count_chunks(f, 7), 4);
	check_contents(f, &in, want);
	check_invariant(f, &in);

	/* an overwrite that straddles the first chunk boundary */
	pattern(q, sizeof(q), 2);
	wr(f, &in, CS - 10, q, sizeof(q));
	memcpy(want + CS - 10, q, sizeof(q));
	assert_int_equal(in.size, 13000);
	check_contents(f, &in, want);

	/* a whole aligned chunk written directly */
	uint8_t full[CS];
	pattern(full, sizeof(full), 3);
	wr(f, &in, 2 * CS, full, sizeof(full));
	memcpy(want + 2 * CS, full, sizeof(full));
	check_contents(f, &in, want);

	/* reads at odd offsets across boundaries */
	uint8_t got[5000];
	assert_int_equal(fsd_read(&f->d, &in, CS - 1, got, 5000), 5000);
	assert_memory_equal(got, want + CS - 1, 5000);
	assert_int_equal(fsd_read(&f->d, &in, 3 * CS - 7, got, 14), 14);
	assert_memory_equal(got, want + 3 * CS - 7, 14);
	check_invariant(f, &in);
	fss_inode_fini(&in);
}

static void test_fs_data_holes_read_zero(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t p[10];

	new_file(&in, 9);
	pattern(p, sizeof(p), 4);
	wr(f, &in, 100000, p, sizeof(p));
	assert_int_equal(in.size, 100010);
	assert_int_equal(count_chunks(f, 9), 1);
	check_fill(f, &in, 0, 100000, 0);
	uint8_t got[10];
	assert_int_equal(fsd_read(&f->d, &in, 100000, got, 10), 10);
	assert_memory_equal(got, p, 10);

	/* data at the start; the middle stays a hole */
	wr(f, &in, 0, p, 5);
	assert_int_equal(count_chunks(f, 9), 2);
	check_fill(f, &in, 5, 100000 - 5, 0);
	assert_int_equal(fsd_read(&f->d, &in, 0, got, 5), 5);
	assert_memory_equal(got, p, 5);
	check_invariant(f, &in);
	fss_inode_fini(&in);
}

static void test_fs_data_inline_convert(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t want[3 * CS] = {0}, p[80];

	pattern(p, sizeof(p), 5);
	new_file(&in, 11);
	wr(f, &in, 0, p, 50);
	memcpy(want, p, 50);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(in.size, 50);
	assert_int_equal(in.payload_len, 50);
	assert_int_equal(count_chunks(f, 11), 0);
	check_contents(f, &in, want);

	/* grows but stays within inline_max, with a gap that reads as zeros */
	wr(f, &in, 60, p + 50, 4);
	memcpy(want + 60, p + 50, 4);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(in.size, INLINE_MAX);
	check_contents(f, &in, want);
	assert_int_equal(count_chunks(f, 11), 0);

	/* one byte past inline_max: old bytes and new write move to chunk 0 */
	wr(f, &in, 62, p + 60, 3);
	memcpy(want + 62, p + 60, 3);
	assert_false(in.flags & FSI_INLINE);
	assert_null(in.payload);
	assert_int_equal(in.payload_len, 0);
	assert_int_equal(in.size, 65);
	assert_int_equal(count_chunks(f, 11), 1);
	check_contents(f, &in, want);
	check_invariant(f, &in);

	/* truncate 0: inline again, chunks gone */
	trunc_to(f, &in, 0);
	assert_true(in.flags & FSI_INLINE);
	assert_null(in.payload);
	assert_int_equal(count_chunks(f, 11), 0);

	/* an inline file written far away: its bytes go to chunk 0, the write to chunk 2 */
	memset(want, 0, sizeof(want));
	wr(f, &in, 0, p, 30);
	memcpy(want, p, 30);
	wr(f, &in, 2 * CS + 5, p + 30, 40);
	memcpy(want + 2 * CS + 5, p + 30, 40);
	assert_false(in.flags & FSI_INLINE);
	assert_int_equal(in.size, 2 * CS + 45);
	assert_int_equal(count_chunks(f, 11), 2);
	assert_true(chunk_exists(f, 11, 0));
	assert_true(chunk_exists(f, 11, 2));
	check_contents(f, &in, want);
	check_invariant(f, &in);

	/* truncate up inside inline_max pads with zeros */
	trunc_to(f, &in, 0);
	memset(want, 0, sizeof(want));
	wr(f, &in, 0, p, 20);
	memcpy(want, p, 20);
	trunc_to(f, &in, 60);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(in.payload_len, 60);
	check_contents(f, &in, want);
	/* truncate down inside inline storage */
	trunc_to(f, &in, 10);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(in.payload_len, 10);
	memset(want + 10, 0, 10);
	trunc_to(f, &in, 20);
	check_contents(f, &in, want); /* bytes 10..20 read as zeros again */

	/* truncate up past inline_max: the bytes go to a chunk, the rest is a hole */
	trunc_to(f, &in, 2 * CS + 1);
	assert_false(in.flags & FSI_INLINE);
	assert_null(in.payload);
	assert_int_equal(count_chunks(f, 11), 1);
	check_contents(f, &in, want);
	check_invariant(f, &in);
	fss_inode_fini(&in);
}

static void test_fs_data_truncate_down_then_up(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;

	new_file(&in, 12);
	wr_fill(f, &in, 0, 0xAA, 3 * CS);
	assert_int_equal(count_chunks(f, 12), 3);

	trunc_to(f, &in, 5000); /* mid chunk 1: chunk 2 removed, chunk 1 trimmed */
	check_invariant(f, &in);
	assert_int_equal(count_chunks(f, 12), 2);
	trunc_to(f, &in, 3 * CS);
	check_fill(f, &in, 0, 5000, 0xAA);
	check_fill(f, &in, 5000, 3 * CS - 5000, 0);

	/* down to a chunk boundary then up */
	wr_fill(f, &in, 0, 0xAB, 3 * CS);
	trunc_to(f, &in, CS);
	assert_int_equal(count_chunks(f, 12), 1);
	check_invariant(f, &in);
	trunc_to(f, &in, 2 * CS + 7);
	check_fill(f, &in, 0, CS, 0xAB);
	check_fill(f, &in, CS, CS + 7, 0);

	/* a write past a hole after a shrink does not revive old bytes */
	wr_fill(f, &in, 0, 0xAC, 2 * CS);
	trunc_to(f, &in, 100);
	wr_fill(f, &in, CS + 10, 0x11, 5);
	check_fill(f, &in, 0, 100, 0xAC);
	check_fill(f, &in, 100, CS + 10 - 100, 0);
	check_fill(f, &in, CS + 10, 5, 0x11);
	check_invariant(f, &in);

	/* a large shrink (many chunks: one range delete) */
	wr_fill(f, &in, 0, 0x22, 100 * CS);
	trunc_to(f, &in, 3 * CS + 1);
	assert_int_equal(count_chunks(f, 12), 4);
	check_invariant(f, &in);
	trunc_to(f, &in, 100 * CS);
	check_fill(f, &in, 0, 3 * CS + 1, 0x22);
	check_fill(f, &in, 3 * CS + 1, 97 * CS - 1, 0);
	fss_inode_fini(&in);
}

static void test_fs_data_punch(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;

	new_file(&in, 13);
	wr_fill(f, &in, 0, 0xBB, 5 * CS);
	assert_int_equal(count_chunks(f, 13), 5);

	punch(f, &in, 100, 100); /* inside chunk 0 */
	check_fill(f, &in, 0, 100, 0xBB);
	check_fill(f, &in, 100, 100, 0);
	check_fill(f, &in, 200, CS - 200, 0xBB);
	assert_int_equal(count_chunks(f, 13), 5);

	punch(f, &in, CS, CS); /* exactly chunk 1 */
	assert_false(chunk_exists(f, 13, 1));
	assert_int_equal(count_chunks(f, 13), 4);
	check_fill(f, &in, CS, CS, 0);

	/* from the middle of chunk 2 to past the end: clipped, size unchanged */
	punch(f, &in, 2 * CS + 1000, 10 * CS);
	assert_int_equal(in.size, 5 * CS);
	assert_true(chunk_exists(f, 13, 2));
	assert_false(chunk_exists(f, 13, 3));
	assert_false(chunk_exists(f, 13, 4));
	check_fill(f, &in, 2 * CS, 1000, 0xBB);
	check_fill(f, &in, 2 * CS + 1000, 3 * CS - 1000, 0);
	check_fill(f, &in, 0, 100, 0xBB);
	check_invariant(f, &in);

	/* past the end: nothing */
	punch(f, &in, 5 * CS, 100);
	/* the tail of a short last chunk */
	trunc_to(f, &in, 0);
	wr_fill(f, &in, 0, 0xCC, CS + 500);
	punch(f, &in, CS + 100, 1000);
	check_fill(f, &in, CS, 100, 0xCC);
	check_fill(f, &in, CS + 100, 400, 0);
	check_invariant(f, &in);

	/* many whole chunks (a range delete) between partial ones */
	wr_fill(f, &in, 0, 0xDD, 100 * CS);
	punch(f, &in, 10 * CS + 1, 80 * CS);
	assert_int_equal(count_chunks(f, 13), 100 - 79);
	check_fill(f, &in, 0, 10 * CS + 1, 0xDD);
	check_fill(f, &in, 10 * CS + 1, 80 * CS, 0);
	check_fill(f, &in, 90 * CS + 1, 10 * CS - 1, 0xDD);
	check_invariant(f, &in);

	/* inline: zeroes payload bytes */
	struct fs_inode il;
	new_file(&il, 14);
	wr_fill(f, &il, 0, 0xEE, 40);
	punch(f, &il, 10, 5);
	assert_true(il.flags & FSI_INLINE);
	check_fill(f, &il, 0, 10, 0xEE);
	check_fill(f, &il, 10, 5, 0);
	check_fill(f, &il, 15, 25, 0xEE);
	punch(f, &il, 30, 1000);
	check_fill(f, &il, 30, 10, 0);
	assert_int_equal(il.size, 40);
	fss_inode_fini(&il);
	fss_inode_fini(&in);
}

static void seek_is(struct fx *f, const struct fs_inode *in, uint64_t off, int whence,
		    int64_t want)
{
	uint64_t got = 0xdeadbeef;
	int rc = fsd_seek(&f->d, in, off, whence, &got);
	if (want < 0) {
		if (rc != want)
			fail_msg("seek %s from %llu: rc %d, want %lld",
				 whence == SEEK_DATA ? "data" : "hole", (unsigned long long)off,
				 rc, (long long)want);
	} else if (rc != 0 || got != (uint64_t)want) {
		fail_msg("seek %s from %llu: rc %d, got %llu, want %lld",
			 whence == SEEK_DATA ? "data" : "hole", (unsigned long long)off, rc,
			 (unsigned long long)got, (long long)want);
	}
}

static void test_fs_data_seek_sparse(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;

	/* data in chunks 0, 1 and 5; a hole to the end at 40000 */
	new_file(&in, 15);
	wr_fill(f, &in, 0, 1, 2 * CS);
	wr_fill(f, &in, 5 * CS + 100, 2, 10);
	trunc_to(f, &in, 40000);

	seek_is(f, &in, 0, SEEK_DATA, 0);
	seek_is(f, &in, 100, SEEK_DATA, 100);
	seek_is(f, &in, 0, SEEK_HOLE, 2 * CS);
	seek_is(f, &in, CS + 5, SEEK_HOLE, 2 * CS);
	seek_is(f, &in, 2 * CS, SEEK_DATA, 5 * CS);
	seek_is(f, &in, 9000, SEEK_DATA, 5 * CS);
	seek_is(f, &in, 9000, SEEK_HOLE, 9000);
	seek_is(f, &in, 5 * CS + 3, SEEK_DATA, 5 * CS + 3);
	seek_is(f, &in, 5 * CS, SEEK_HOLE, 6 * CS);
	seek_is(f, &in, 6 * CS, SEEK_DATA, -ENXIO);
	seek_is(f, &in, 30000, SEEK_HOLE, 30000);
	seek_is(f, &in, 40000, SEEK_DATA, -ENXIO);
	seek_is(f, &in, 40000, SEEK_HOLE, -ENXIO);
	seek_is(f, &in, 0, SEEK_SET, -EINVAL);

	/* data to the end: the hole is the end of the file */
	trunc_to(f, &in, 5 * CS + 50);
	seek_is(f, &in, 5 * CS, SEEK_HOLE, 5 * CS + 50);
	seek_is(f, &in, 3 * CS, SEEK_DATA, 5 * CS);

	/* another inode's chunks are not this file's data */
	struct fs_inode other;
	new_file(&other, 16);
	wr_fill(f, &other, 0, 3, 3 * CS);
	trunc_to(f, &in, 0);
	trunc_to(f, &in, 10 * CS);
	seek_is(f, &in, 0, SEEK_DATA, -ENXIO);
	seek_is(f, &in, 0, SEEK_HOLE, 0);

	/* inline: all data */
	trunc_to(f, &in, 0);
	wr_fill(f, &in, 0, 4, 30);
	seek_is(f, &in, 3, SEEK_DATA, 3);
	seek_is(f, &in, 3, SEEK_HOLE, 30);
	seek_is(f, &in, 30, SEEK_DATA, -ENXIO);
	fss_inode_fini(&other);
	fss_inode_fini(&in);
}

static void test_fs_data_drop(void **state)
{
	struct fx *f = *state;
	struct fs_inode a, small, large, z;

	/* neighbours on both sides must survive */
	new_file(&a, 20);
	new_file(&small, 21);
	new_file(&large, 22);
	new_file(&z, 23);
	wr_fill(f, &a, 0, 1, 3 * CS);
	wr_fill(f, &z, 0, 1, 2 * CS);
	wr_fill(f, &small, 0, 2, 10 * CS);
	wr_fill(f, &large, 0, 3, 200 * CS);
	wr_fill(f, &large, 1000 * CS, 3, 10); /* sparse tail */
	assert_int_equal(count_chunks(f, 21), 10);
	assert_int_equal(count_chunks(f, 22), 201);

	assert_int_equal(fsd_drop(&f->d, &small, f->b), 0);
	assert_int_equal(fr_batch_count(f->b), 10); /* point removes */
	commit(f);
	assert_int_equal(count_chunks(f, 21), 0);

	assert_int_equal(fsd_drop(&f->d, &large, f->b), 0);
	assert_int_equal(fr_batch_count(f->b), 1); /* one range delete */
	commit(f);
	assert_int_equal(count_chunks(f, 22), 0);

	assert_int_equal(count_chunks(f, 20), 3);
	assert_int_equal(count_chunks(f, 23), 2);
	assert_int_equal(count_chunks(f, 0), 5);

	/* inline files and other types own no chunks */
	struct fs_inode il;
	new_file(&il, 24);
	wr_fill(f, &il, 0, 5, 20);
	assert_int_equal(fsd_drop(&f->d, &il, f->b), 0);
	assert_int_equal(fr_batch_count(f->b), 0);
	fss_inode_fini(&il);
	fss_inode_fini(&a);
	fss_inode_fini(&small);
	fss_inode_fini(&large);
	fss_inode_fini(&z);
}

static void test_fs_data_read_past_eof(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t got[2 * CS];

	new_file(&in, 30);
	memset(got, 0x5A, sizeof(got));
	assert_int_equal(fsd_read(&f->d, &in, 0, got, 10), 0); /* empty */
	wr_fill(f, &in, 0, 7, 20);
	assert_int_equal(fsd_read(&f->d, &in, 20, got, 10), 0);
	assert_int_equal(fsd_read(&f->d, &in, 1000, got, 10), 0);
	assert_int_equal(fsd_read(&f->d, &in, 15, got, 100), 5); /* short, inline */
	assert_int_equal(got[5], 0x5A);                          /* nothing written past it */

	wr_fill(f, &in, CS - 50, 8, 100); /* chunked now, size CS + 50 */
	memset(got, 0x5A, sizeof(got));
	assert_int_equal(fsd_read(&f->d, &in, CS - 10, got, sizeof(got)), 60);
	for (int i = 0; i < 60; i++)
		assert_int_equal(got[i], 8);
	assert_int_equal(got[60], 0x5A);
	assert_int_equal(fsd_read(&f->d, &in, CS + 50, got, 10), 0);
	assert_int_equal(fsd_read(&f->d, &in, UINT64_MAX - 5, got, 10), 0);
	assert_int_equal(fsd_read(&f->d, &in, 0, got, 0), 0);
	fss_inode_fini(&in);
}

static void test_fs_data_efbig(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t p[100];

	memset(p, 9, sizeof(p));
	new_file(&in, 40);
	wr(f, &in, 0, p, 10);
	assert_int_equal(fsd_write(&f->d, &in, f->b, SIZE_MAX_FS - 10, p, 100), -EFBIG);
	assert_int_equal(fsd_write(&f->d, &in, f->b, UINT64_MAX - 5, p, 10), -EFBIG);
	assert_int_equal(fsd_write(&f->d, &in, f->b, SIZE_MAX_FS, p, 1), -EFBIG);
	assert_int_equal(fsd_truncate(&f->d, &in, f->b, SIZE_MAX_FS + 1), -EFBIG);
	/* unchanged */
	assert_int_equal(in.size, 10);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(in.payload_len, 10);
	assert_int_equal(fr_batch_count(f->b), 0);

	/* the last bytes below the limit are fine */
	wr(f, &in, SIZE_MAX_FS - 10, p, 10);
	assert_int_equal(in.size, SIZE_MAX_FS);
	uint8_t got[20];
	assert_int_equal(fsd_read(&f->d, &in, SIZE_MAX_FS - 20, got, 100), 20);
	for (int i = 0; i < 10; i++)
		assert_int_equal(got[i], 0);
	assert_memory_equal(got + 10, p, 10);
	seek_is(f, &in, 1000, SEEK_DATA, 1000);
	seek_is(f, &in, CS, SEEK_DATA, SIZE_MAX_FS - CS);
	seek_is(f, &in, SIZE_MAX_FS - 1, SEEK_HOLE, SIZE_MAX_FS);
	seek_is(f, &in, 0, SEEK_HOLE, CS);
	assert_int_equal(count_chunks(f, 40), 2);
	check_invariant(f, &in);
	assert_int_equal(fsd_drop(&f->d, &in, f->b), 0);
	commit(f);
	assert_int_equal(count_chunks(f, 40), 0);
	fss_inode_fini(&in);
}

static void test_fs_data_corrupt_chunk(void **state)
{
	struct fx *f = *state;
	struct fs_inode in;
	uint8_t key[FSS_CHUNK_KEY_LEN], big[CS + 1], got[16];

	new_file(&in, 50);
	wr_fill(f, &in, 0, 1, 6 * CS);
	memset(big, 2, sizeof(big));
	fss_chunk_key(50, 1, key);
	OK(fr_put(f->ks, key, sizeof(key), big, sizeof(big), &E));

	/* short reads take a get per chunk, long ones an iterator: both notice */
	assert_int_equal(fsd_read(&f->d, &in, CS + 5, got, sizeof(got)), -EIO);
	uint8_t *all = malloc(6 * CS);
	assert_non_null(all);
	assert_int_equal(fsd_read(&f->d, &in, 0, all, 6 * CS), -EIO);
	free(all);
	assert_int_equal(fsd_read(&f->d, &in, 0, got, sizeof(got)), 16); /* chunk 0 is fine */

	/* a partial write over it fails and leaves the inode alone */
	uint8_t *w = calloc(1, 5 * CS + 10);
	assert_non_null(w);
	assert_int_equal(fsd_write(&f->d, &in, f->b, CS + 1, w, 5 * CS + 10), -EIO);
	free(w);
	assert_int_equal(in.size, 6 * CS);
	assert_false(in.flags & FSI_INLINE);
	assert_null(in.payload);
	/* so does a truncate that must trim it; the caller discards the batch */
	assert_int_equal(fsd_truncate(&f->d, &in, f->b, CS + 10), -EIO);
	assert_int_equal(in.size, 6 * CS);
	fr_batch_free(f->b);
	OK(fr_batch_new(f->db, &f->b));
	fss_inode_fini(&in);
}

/* inline_max may exceed the chunk size: a payload then spans several chunks. */
static void test_fs_data_inline_larger_than_chunk(void **state)
{
	struct fx *f = *state;
	struct fsd d = f->d;
	struct fs_inode in;
	uint8_t want[3 * CS] = {0}, p[2 * CS + 200];

	d.inline_max = 2 * CS + 100;
	pattern(p, sizeof(p), 6);
	new_file(&in, 60);
	assert_int_equal(fsd_write(&d, &in, f->b, 0, p, 2 * CS + 50), 0);
	commit(f);
	memcpy(want, p, 2 * CS + 50);
	assert_true(in.flags & FSI_INLINE);
	assert_int_equal(count_chunks(f, 60), 0);
	/* converts: chunks 0 and 1 from the payload, chunk 2 merged with the write */
	assert_int_equal(fsd_write(&d, &in, f->b, 2 * CS + 80, p, 100), 0);
	commit(f);
	memcpy(want + 2 * CS + 80, p, 100);
	assert_false(in.flags & FSI_INLINE);
	assert_int_equal(count_chunks(f, 60), 3);
	assert_int_equal(fsd_read(&d, &in, 0, p, sizeof(p)), 2 * CS + 180);
	assert_memory_equal(p, want, 2 * CS + 180);
	check_invariant(f, &in);

	/* truncate up past inline_max moves a multi-chunk payload */
	assert_int_equal(fsd_truncate(&d, &in, f->b, 0), 0);
	pattern(p, sizeof(p), 7);
	assert_int_equal(fsd_write(&d, &in, f->b, 0, p, CS + 7), 0);
	assert_int_equal(fsd_truncate(&d, &in, f->b, 3 * CS), 0);
	commit(f);
	assert_false(in.flags & FSI_INLINE);
	assert_int_equal(count_chunks(f, 60), 2);
	memcpy(want, p, CS + 7);
	memset(want + CS + 7, 0, sizeof(want) - CS - 7);
	uint8_t got[3 * CS];
	assert_int_equal(fsd_read(&d, &in, 0, got, sizeof(got)), 3 * CS);
	assert_memory_equal(got, want, 3 * CS);
	check_invariant(f, &in);
	fss_inode_fini(&in);
}

/*
 * 3000 random writes, truncates and punches on one file, compared after each one with a byte
 * array: the whole file is read back, a random range too, and every stored chunk is checked
 * to lie below the size. Offsets reach ~200 KiB, lengths ~20 KiB; one op in eight works near
 * the inline limit. The tables are flushed now and then so reads merge several sources.
 */
/* fsd_write_whole puts exactly the chunks a write covers whole, and only when the write cannot
 * leave the file inline; with fsd_write_rest the file ends as fsd_write leaves it, an inline
 * file's payload becoming chunk 0 beside them. */
static void test_fs_data_write_whole(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = malloc(4 * CS), want[4 * CS];
	struct fs_inode in;
	struct fsd_whole w;

	assert_non_null(buf);
	for (size_t i = 0; i < 4 * CS; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	/* ends within inline_max: nothing ahead of time */
	assert_int_equal(fsd_write_whole(&f->d, 5, f->b, 0, buf, INLINE_MAX, &w), 0);
	assert_int_equal(w.first, w.end);
	/* no chunk covered whole */
	assert_int_equal(fsd_write_whole(&f->d, 5, f->b, 10, buf, CS, &w), 0);
	assert_int_equal(w.first, w.end);
	/* past the largest file */
	assert_int_equal(fsd_write_whole(&f->d, 5, f->b, SIZE_MAX_FS, buf, CS, &w), 0);
	assert_int_equal(w.first, w.end);

	/* an inline file of 20 bytes gets [CS - 5, 4 CS - 5): chunks 1 and 2 whole */
	new_file(&in, 5);
	wr(f, &in, 0, buf, 20);
	assert_true(in.flags & FSI_INLINE);
	memset(want, 0, sizeof(want));
	memcpy(want, buf, 20);
	assert_int_equal(fsd_write_whole(&f->d, in.ino, f->b, CS - 5, buf, 3 * CS, &w), 0);
	assert_int_equal(w.first, 1);
	assert_int_equal(w.end, 3);
	assert_int_equal(fsd_write_rest(&f->d, &in, f->b, CS - 5, buf, 3 * CS, &w), 0);
	commit(f);
	memcpy(want + CS - 5, buf, 3 * CS);
	assert_false(in.flags & FSI_INLINE);
	assert_int_equal(in.size, 4 * CS - 5);
	check_contents(f, &in, want);
	check_invariant(f, &in);

	/* an aligned overwrite: all four chunks whole, nothing left for the rest to do */
	assert_int_equal(fsd_write_whole(&f->d, in.ino, f->b, 0, buf, 4 * CS, &w), 0);
	assert_int_equal(w.first, 0);
	assert_int_equal(w.end, 4);
	assert_int_equal(fsd_write_rest(&f->d, &in, f->b, 0, buf, 4 * CS, &w), 0);
	commit(f);
	assert_int_equal(in.size, 4 * CS);
	check_contents(f, &in, buf);
	check_invariant(f, &in);
	fss_inode_fini(&in);
	free(buf);
}

static void test_fs_data_model(void **state)
{
	struct fx *f = *state;
	const size_t cap = 256 * 1024;
	uint8_t *model = calloc(1, cap), *buf = malloc(cap), *got = malloc(cap);
	uint64_t rng = tu_seed();
	struct fs_inode in;
	uint64_t msize = 0;

	assert_non_null(model);
	assert_non_null(buf);
	assert_non_null(got);
	new_file(&in, 77);
	for (int i = 0; i < 3000; i++) {
		uint64_t op = tu_rand_below(&rng, 100);
		bool small = tu_rand_below(&rng, 8) == 0;
		uint64_t off = small ? tu_rand_below(&rng, 2 * INLINE_MAX)
				     : tu_rand_below(&rng, 200 * 1024);
		uint64_t len = small ? tu_rand_below(&rng, INLINE_MAX)
				     : tu_rand_below(&rng, 20 * 1024 + 1);
		int rc;

		if (op < 50) {
			for (uint64_t j = 0; j < len; j++)
				buf[j] = (uint8_t)tu_rand(&rng) | 1;
			if (i % 2) {
				/* as the daemon writes: whole chunks first, then the rest */
				struct fsd_whole w;
				rc = fsd_write_whole(&f->d, in.ino, f->b, off, buf, len, &w);
				if (!rc)
					rc = fsd_write_rest(&f->d, &in, f->b, off, buf, len, &w);
			} else {
				rc = fsd_write(&f->d, &in, f->b, off, buf, len);
			}
			if (len) {
				if (off > msize)
					memset(model + msize, 0, off - msize);
				memcpy(model + off, buf, len);
				if (off + len > msize)
					msize = off + len;
			}
		} else if (op < 75) {
			uint64_t size = op < 70 ? off + len : 0;
			rc = fsd_truncate(&f->d, &in, f->b, size);
			if (size > msize)
				memset(model + msize, 0, size - msize);
			msize = size;
		} else {
			rc = fsd_punch(&f->d, &in, f->b, off, len);
			if (off < msize) {
				uint64_t end = off + len < msize ? off + len : msize;
				memset(model + off, 0, end - off);
			}
		}
		if (rc)
			fail_msg("op %d (%llu at %llu+%llu): %d", i, (unsigned long long)op,
				 (unsigned long long)off, (unsigned long long)len, rc);
		commit(f);
		if (in.size != msize)
			fail_msg("op %d: size %llu, model %llu", i, (unsigned long long)in.size,
				 (unsigned long long)msize);

		ssize_t n = fsd_read(&f->d, &in, 0, got, cap);
		if (n != (ssize_t)msize)
			fail_msg("op %d: read %zd, size %llu", i, n, (unsigned long long)msize);
		if (memcmp(got, model, msize)) {
			size_t k = 0;
			while (got[k] == model[k])
				k++;
			fail_msg("op %d: byte %zu differs: %#x, model %#x", i, k, got[k], model[k]);
		}
		uint64_t roff = tu_rand_below(&rng, msize + 10);
		uint64_t rlen = tu_rand_below(&rng, 3 * CS);
		n = fsd_read(&f->d, &in, roff, got, rlen);
		uint64_t rwant = roff < msize ? (rlen < msize - roff ? rlen : msize - roff) : 0;
		assert_int_equal(n, rwant);
		if (rwant)
			assert_memory_equal(got, model + roff, rwant);
		check_invariant(f, &in);
		if (i % 500 == 499)
			OK(fr_db_flush(f->db, &E));
	}
	free(model);
	free(buf);
	free(got);
	fss_inode_fini(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fs_data_write_across_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_holes_read_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_inline_convert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_truncate_down_then_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_punch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_seek_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_read_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_efbig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_corrupt_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_inline_larger_than_chunk, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_write_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fs_data_model, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
