/* SPDX-License-Identifier: MIT */
/*
 * test_schema.c - the fractiofs key builders and value codecs (fs/schema.h, fs/SCHEMA.md) and
 * the status-to-errno map (fs/errmap.h): round trips of every codec, the exact byte layout of
 * each value, every decoder against truncation at every length and against bad bytes, numeric
 * key order, name checks at the length limits, superblock validation, and the errno (and log
 * line) for every engine status.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fractio.h>

#include "bdi.h"
#include "errmap.h"
#include "schema.h"

#define INODE_HEADER_LEN 89 /* SCHEMA.md §3.1 */
#define INODE_OFF_PARENT 77
#define INODE_OFF_PAYLOAD_LEN 85
#define PAYLOAD_BOUND (1u << 20)

/* ---- helpers ---- */

static uint64_t le_at(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static void sample_inode(struct fs_inode *in)
{
	fss_inode_init(in);
	in->ino = 42;
	in->mode = S_IFREG | 0640;
	in->uid = 1000;
	in->gid = 0xfffffffeu;
	in->nlink = 3;
	in->flags = FSI_INLINE | FSI_XATTR;
	in->size = 0x0102030405060708ull;
	in->rdev = 0x1112131415161718ull;
	in->generation = 0x2122232425262728ull;
	in->atime_ns = 1700000000123456789ll;
	in->mtime_ns = -1;
	in->ctime_ns = INT64_MIN;
	in->btime_ns = INT64_MAX;
	/* The codec does not tie parent to the type; distinct bytes catch a misplaced field. */
	in->parent = 0x3132333435363738ull;
}

static uint8_t *encode_inode(const struct fs_inode *in, size_t *len)
{
	size_t n = fss_inode_encoded_len(in);
	uint8_t *buf = malloc(n);

	assert_non_null(buf);
	fss_inode_encode(in, buf);
	*len = n;
	return buf;
}

static void assert_inode_equal(const struct fs_inode *a, const struct fs_inode *b)
{
	assert_int_equal(a->ino, b->ino);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->nlink, b->nlink);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->size == b->size);
	assert_true(a->rdev == b->rdev);
	assert_true(a->generation == b->generation);
	assert_true(a->atime_ns == b->atime_ns);
	assert_true(a->mtime_ns == b->mtime_ns);
	assert_true(a->ctime_ns == b->ctime_ns);
	assert_true(a->btime_ns == b->btime_ns);
	assert_true(a->parent == b->parent);
	assert_int_equal(a->payload_len, b->payload_len);
	if (a->payload_len)
		assert_memory_equal(a->payload, b->payload, a->payload_len);
	else
		assert_null(b->payload);
}

static void assert_inode_empty(const struct fs_inode *in)
{
	struct fs_inode z;

	memset(&z, 0, sizeof(z));
	assert_null(in->payload);
	assert_int_equal(in->payload_len, 0);
	assert_memory_equal(in, &z, sizeof(z));
}

/* Round-trips `in` with a payload of n patterned bytes. */
static void inode_round_trip(struct fs_inode *in, size_t n)
{
	uint8_t *pl = NULL, *buf;
	struct fs_inode out;
	size_t len;

	if (n) {
		pl = malloc(n);
		assert_non_null(pl);
		for (size_t i = 0; i < n; i++)
			pl[i] = (uint8_t)(i * 31 + 7);
	}
	assert_int_equal(fss_inode_set_payload(in, pl, n), 0);
	buf = encode_inode(in, &len);
	assert_int_equal(len, INODE_HEADER_LEN + n);
	fss_inode_init(&out);
	assert_int_equal(fss_inode_decode(in->ino, buf, len, &out), 0);
	assert_inode_equal(in, &out);
	fss_inode_fini(&out);
	free(buf);
	free(pl);
}

/* ---- inodes ---- */

static void test_schema_inode_round_trip(void **state)
{
	struct fs_inode in;
	char target[FSS_SYMLINK_MAX];

	(void)state;
	sample_inode(&in);
	inode_round_trip(&in, 0);
	inode_round_trip(&in, 1);
	inode_round_trip(&in, 4096);
	inode_round_trip(&in, PAYLOAD_BOUND);

	/* A symlink with the longest target. */
	memset(target, 'x', sizeof(target));
	in.mode = S_IFLNK | 0777;
	in.flags = 0;
	in.size = sizeof(target);
	assert_int_equal(fss_inode_set_payload(&in, target, sizeof(target)), 0);
	inode_round_trip(&in, sizeof(target));

	/* All-zero and all-ones fields. */
	fss_inode_fini(&in);
	in.ino = 1;
	inode_round_trip(&in, 0);
	in.mode = in.uid = in.gid = in.nlink = UINT32_MAX;
	in.flags = FSI_XATTR;
	in.size = in.rdev = in.generation = UINT64_MAX;
	in.atime_ns = in.mtime_ns = in.ctime_ns = in.btime_ns = -1000000000ll;
	in.parent = UINT64_MAX;
	inode_round_trip(&in, 3);
	fss_inode_fini(&in);

	/* Directories as the daemon writes them: the root is its own parent, a subdirectory
	 * names the directory holding it; other types carry 0. */
	fss_inode_init(&in);
	in.ino = FSS_ROOT_INO;
	in.mode = S_IFDIR | 0755;
	in.nlink = 2;
	in.parent = FSS_ROOT_INO;
	inode_round_trip(&in, 0);
	in.ino = 4711;
	in.parent = 0x0100000000000002ull; /* high and low bytes both matter */
	inode_round_trip(&in, 0);
	in.mode = S_IFREG | 0644;
	in.parent = 0;
	inode_round_trip(&in, 0);
	fss_inode_fini(&in);
}

/* Changing only parent changes only bytes 77..84 of the encoding. */
static void test_schema_inode_parent_bytes(void **state)
{
	struct fs_inode in;
	uint8_t *a, *b;
	size_t alen, blen;

	(void)state;
	sample_inode(&in);
	assert_int_equal(fss_inode_set_payload(&in, "xy", 2), 0);
	in.parent = 0;
	a = encode_inode(&in, &alen);
	in.parent = 0xa1a2a3a4a5a6a7a8ull;
	b = encode_inode(&in, &blen);
	assert_int_equal(alen, blen);
	assert_int_equal(alen, INODE_HEADER_LEN + 2);
	for (size_t i = 0; i < alen; i++) {
		bool in_parent = i >= INODE_OFF_PARENT && i < INODE_OFF_PARENT + 8;

		if (in_parent) {
			assert_int_equal(a[i], 0);
			assert_int_equal(b[i], 0xa8 - (i - INODE_OFF_PARENT));
		} else {
			assert_int_equal(a[i], b[i]);
		}
	}
	free(a);
	free(b);
	fss_inode_fini(&in);
}

static void test_schema_inode_layout(void **state)
{
	struct fs_inode in;
	uint8_t *buf;
	size_t len;

	(void)state;
	sample_inode(&in);
	assert_int_equal(fss_inode_set_payload(&in, "abc", 3), 0);
	buf = encode_inode(&in, &len);
	assert_int_equal(len, 92);
	/* SCHEMA.md §3.1, offset by offset. */
	assert_int_equal(buf[0], 1);
	assert_int_equal(le_at(buf + 1, 4), in.mode);
	assert_int_equal(le_at(buf + 5, 4), 1000);
	assert_int_equal(le_at(buf + 9, 4), 0xfffffffeu);
	assert_int_equal(le_at(buf + 13, 4), 3);
	assert_int_equal(le_at(buf + 17, 4), FSI_INLINE | FSI_XATTR);
	assert_true(le_at(buf + 21, 8) == 0x0102030405060708ull);
	assert_int_equal(buf[21], 0x08); /* little-endian */
	assert_true(le_at(buf + 29, 8) == 0x1112131415161718ull);
	assert_true(le_at(buf + 37, 8) == 0x2122232425262728ull);
	assert_true(le_at(buf + 45, 8) == 1700000000123456789ull);
	assert_true(le_at(buf + 53, 8) == UINT64_MAX);
	assert_true(le_at(buf + 61, 8) == 0x8000000000000000ull);
	assert_true(le_at(buf + 69, 8) == 0x7fffffffffffffffull);
	assert_true(le_at(buf + 77, 8) == 0x3132333435363738ull);
	assert_int_equal(buf[77], 0x38);
	assert_int_equal(le_at(buf + 85, 4), 3);
	assert_memory_equal(buf + 89, "abc", 3);
	free(buf);
	fss_inode_fini(&in);
}

static void test_schema_inode_truncated(void **state)
{
	struct fs_inode in, out;
	uint8_t *buf;
	size_t len;

	(void)state;
	sample_inode(&in);
	assert_int_equal(fss_inode_set_payload(&in, "0123456789", 10), 0);
	buf = encode_inode(&in, &len);
	for (size_t n = 0; n < len; n++) {
		/* A fresh copy of exactly n bytes, so ASan sees any read past the end. */
		uint8_t *cut = malloc(n ? n : 1);

		assert_non_null(cut);
		memcpy(cut, buf, n);
		fss_inode_init(&out);
		assert_int_equal(fss_inode_decode(7, cut, n, &out), -EIO);
		assert_inode_empty(&out);
		free(cut);
	}
	/* One byte too many is as bad as one too few. */
	{
		uint8_t *longer = malloc(len + 1);

		assert_non_null(longer);
		memcpy(longer, buf, len);
		longer[len] = 0;
		assert_int_equal(fss_inode_decode(7, longer, len + 1, &out), -EIO);
		assert_inode_empty(&out);
		free(longer);
	}
	assert_int_equal(fss_inode_decode(7, buf, len, &out), 0);
	assert_int_equal(out.ino, 7);
	fss_inode_fini(&out);
	free(buf);
	fss_inode_fini(&in);
}

static void test_schema_inode_bad_bytes(void **state)
{
	struct fs_inode in, out;
	uint8_t *buf;
	size_t len;

	(void)state;
	sample_inode(&in);
	assert_int_equal(fss_inode_set_payload(&in, "0123456789", 10), 0);
	buf = encode_inode(&in, &len);
	fss_inode_init(&out);

	/* Version byte: 0, 2 and 0xff are all rejected. */
	for (int v = 0; v < 256; v++) {
		buf[0] = (uint8_t)v;
		assert_int_equal(fss_inode_decode(1, buf, len, &out), v == 1 ? 0 : -EIO);
		if (v != 1)
			assert_inode_empty(&out);
	}
	buf[0] = 1;

	/* payload_len disagreeing with the value length, both ways. */
	buf[INODE_OFF_PAYLOAD_LEN] = 9;
	assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
	assert_inode_empty(&out);
	buf[INODE_OFF_PAYLOAD_LEN] = 11;
	assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
	assert_inode_empty(&out);
	/* A huge payload_len must not wrap or allocate. */
	for (int i = 0; i < 4; i++)
		buf[INODE_OFF_PAYLOAD_LEN + i] = 0xff;
	assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
	assert_inode_empty(&out);
	/* payload_len 0 in front of a 10-byte payload. */
	for (int i = 0; i < 4; i++)
		buf[INODE_OFF_PAYLOAD_LEN + i] = 0;
	assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
	assert_inode_empty(&out);
	buf[INODE_OFF_PAYLOAD_LEN] = 10;

	/* Every unknown flag bit. */
	for (int bit = 2; bit < 32; bit++) {
		uint32_t f = (FSI_INLINE | FSI_XATTR) | (1u << bit);

		for (int i = 0; i < 4; i++)
			buf[17 + i] = (uint8_t)(f >> (8 * i));
		assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
		assert_inode_empty(&out);
	}
	buf[17] = FSI_INLINE, buf[18] = buf[19] = buf[20] = 0;
	assert_int_equal(fss_inode_decode(1, buf, len, &out), 0);
	assert_int_equal(out.flags, FSI_INLINE);

	/* Decoding into a struct that holds a payload replaces it (no leak under ASan), and a
	 * failing decode empties it. */
	assert_int_equal(fss_inode_decode(2, buf, len, &out), 0);
	assert_int_equal(out.ino, 2);
	assert_int_equal(out.payload_len, 10);
	buf[0] = 2;
	assert_int_equal(fss_inode_decode(3, buf, len, &out), -EIO);
	assert_inode_empty(&out);

	free(buf);
	fss_inode_fini(&in);
}

static void test_schema_inode_payload_bound(void **state)
{
	size_t len = INODE_HEADER_LEN + PAYLOAD_BOUND + 1;
	uint8_t *buf = calloc(1, len);
	struct fs_inode out;
	uint32_t plen = PAYLOAD_BOUND + 1;

	(void)state;
	assert_non_null(buf);
	buf[0] = 1;
	for (int i = 0; i < 4; i++)
		buf[INODE_OFF_PAYLOAD_LEN + i] = (uint8_t)(plen >> (8 * i));
	fss_inode_init(&out);
	/* Lengths agree, but the payload is past the sanity bound. */
	assert_int_equal(fss_inode_decode(1, buf, len, &out), -EIO);
	assert_inode_empty(&out);
	plen = PAYLOAD_BOUND;
	for (int i = 0; i < 4; i++)
		buf[INODE_OFF_PAYLOAD_LEN + i] = (uint8_t)(plen >> (8 * i));
	assert_int_equal(fss_inode_decode(1, buf, len - 1, &out), 0);
	assert_int_equal(out.payload_len, PAYLOAD_BOUND);
	fss_inode_fini(&out);
	free(buf);
}

static void test_schema_inode_payload_ownership(void **state)
{
	struct fs_inode in;
	char src[8] = "payload";

	(void)state;
	fss_inode_init(&in);
	assert_null(in.payload);
	assert_int_equal(fss_inode_set_payload(&in, src, 7), 0);
	assert_ptr_not_equal(in.payload, src);
	src[0] = 'X'; /* a copy, not a borrow */
	assert_memory_equal(in.payload, "payload", 7);
	assert_int_equal(fss_inode_set_payload(&in, "ab", 2), 0);
	assert_int_equal(in.payload_len, 2);
	assert_memory_equal(in.payload, "ab", 2);
	assert_int_equal(fss_inode_set_payload(&in, NULL, 0), 0);
	assert_null(in.payload);
	assert_int_equal(in.payload_len, 0);
	assert_int_equal(fss_inode_encoded_len(&in), INODE_HEADER_LEN);
	assert_int_equal(fss_inode_set_payload(&in, "z", 1), 0);
	fss_inode_fini(&in);
	assert_inode_empty(&in);
	fss_inode_fini(&in); /* fini of a fini'ed struct is harmless */
	fss_inode_fini(NULL);
}

/* ---- directory entries ---- */

static void test_schema_dirent_round_trip(void **state)
{
	static const uint8_t types[] = { DT_REG, DT_DIR, DT_LNK, DT_CHR, DT_BLK, DT_FIFO, DT_SOCK,
					 DT_UNKNOWN };
	static const uint64_t inos[] = { 1, 2, 255, 256, 0x0102030405060708ull, UINT64_MAX };
	uint8_t buf[FSS_DIRENT_LEN], dtype;
	uint64_t ino;

	(void)state;
	for (size_t t = 0; t < sizeof(types); t++) {
		for (size_t i = 0; i < sizeof(inos) / sizeof(inos[0]); i++) {
			fss_dirent_encode(inos[i], types[t], buf);
			assert_true(le_at(buf, 8) == inos[i]);
			assert_int_equal(buf[8], types[t]);
			assert_int_equal(fss_dirent_decode(buf, sizeof(buf), &ino, &dtype), 0);
			assert_true(ino == inos[i]);
			assert_int_equal(dtype, types[t]);
		}
	}
}

static void test_schema_dirent_bad(void **state)
{
	uint8_t buf[FSS_DIRENT_LEN + 1], dtype = 0xaa;
	uint64_t ino = 0xaa;

	(void)state;
	fss_dirent_encode(77, DT_REG, buf);
	buf[FSS_DIRENT_LEN] = 0;
	for (size_t n = 0; n <= sizeof(buf); n++) {
		if (n == FSS_DIRENT_LEN)
			continue;
		assert_int_equal(fss_dirent_decode(buf, n, &ino, &dtype), -EIO);
	}
	/* Outputs untouched on failure. */
	assert_int_equal(ino, 0xaa);
	assert_int_equal(dtype, 0xaa);
	fss_dirent_encode(0, DT_REG, buf);
	assert_int_equal(fss_dirent_decode(buf, FSS_DIRENT_LEN, &ino, &dtype), -EIO);
	fss_dirent_encode(5, 3, buf); /* 3 is no DT_* value */
	assert_int_equal(fss_dirent_decode(buf, FSS_DIRENT_LEN, &ino, &dtype), -EIO);
	fss_dirent_encode(5, 0xff, buf);
	assert_int_equal(fss_dirent_decode(buf, FSS_DIRENT_LEN, &ino, &dtype), -EIO);
}

static void test_schema_mode_dtype(void **state)
{
	(void)state;
	assert_int_equal(fss_mode_dtype(S_IFREG | 0644), DT_REG);
	assert_int_equal(fss_mode_dtype(S_IFDIR | 0755), DT_DIR);
	assert_int_equal(fss_mode_dtype(S_IFLNK | 0777), DT_LNK);
	assert_int_equal(fss_mode_dtype(S_IFCHR), DT_CHR);
	assert_int_equal(fss_mode_dtype(S_IFBLK), DT_BLK);
	assert_int_equal(fss_mode_dtype(S_IFIFO), DT_FIFO);
	assert_int_equal(fss_mode_dtype(S_IFSOCK | 07777), DT_SOCK);
	assert_int_equal(fss_mode_dtype(0644), DT_UNKNOWN);
}

/* ---- keys ---- */

static void test_schema_ino_key_order(void **state)
{
	uint8_t a[FSS_INO_KEY_LEN], b[FSS_INO_KEY_LEN];
	static const uint64_t seq[] = { 0, 1, 2, 255, 256, 65535, 65536, 1ull << 32,
					(1ull << 56) - 1, 1ull << 56, UINT64_MAX - 1, UINT64_MAX };
	uint64_t ino;

	(void)state;
	fss_ino_key(0x0102030405060708ull, a);
	assert_memory_equal(a, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	for (size_t i = 0; i + 1 < sizeof(seq) / sizeof(seq[0]); i++) {
		fss_ino_key(seq[i], a);
		fss_ino_key(seq[i + 1], b);
		assert_true(memcmp(a, b, sizeof(a)) < 0);
		assert_int_equal(fss_ino_key_decode(a, sizeof(a), &ino), 0);
		assert_true(ino == seq[i]);
	}
	ino = 99;
	for (size_t n = 0; n <= 9; n++) {
		if (n != FSS_INO_KEY_LEN)
			assert_int_equal(fss_ino_key_decode(a, n, &ino), -EIO);
	}
	assert_int_equal(ino, 99);
}

static void test_schema_chunk_key_order(void **state)
{
	uint8_t k[FSS_CHUNK_KEY_LEN], prev[FSS_CHUNK_KEY_LEN], next_ino[FSS_INO_KEY_LEN];
	uint8_t extra[FSS_CHUNK_KEY_LEN + 1];
	static const uint64_t chunks[] = { 0, 1, 255, 256, 1ull << 40, UINT64_MAX };
	uint64_t ino, chunk;

	(void)state;
	fss_chunk_key(0x0102030405060708ull, 0x1112131415161718ull, k);
	assert_memory_equal(k, "\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18",
			    16);
	for (uint64_t base = 255; base <= 256; base++) {
		fss_ino_key(base + 1, next_ino);
		for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
			fss_chunk_key(base, chunks[i], k);
			if (i)
				assert_true(memcmp(prev, k, sizeof(k)) < 0);
			memcpy(prev, k, sizeof(k));
			/* Every chunk of ino sorts before ino + 1's first chunk (and its
			 * 8-byte prefix key, the end of a range delete). */
			fss_chunk_key(base + 1, 0, extra);
			assert_true(memcmp(k, extra, sizeof(k)) < 0);
			assert_true(keycmp(k, sizeof(k), next_ino, sizeof(next_ino)) < 0);
			assert_int_equal(fss_chunk_key_decode(k, sizeof(k), &ino, &chunk), 0);
			assert_true(ino == base);
			assert_true(chunk == chunks[i]);
		}
	}
	ino = chunk = 99;
	memset(extra, 0, sizeof(extra));
	for (size_t n = 0; n <= sizeof(extra); n++) {
		if (n != FSS_CHUNK_KEY_LEN)
			assert_int_equal(fss_chunk_key_decode(extra, n, &ino, &chunk), -EIO);
	}
	assert_int_equal(ino, 99);
	assert_int_equal(chunk, 99);
}

static void test_schema_xattr_key(void **state)
{
	uint8_t k[FSS_XATTR_KEY_MAX], k2[FSS_XATTR_KEY_MAX], ino_next[FSS_INO_KEY_LEN];
	char name[FSS_NAME_MAX + 1];
	size_t n, n2;

	(void)state;
	n = fss_xattr_key(256, "user.a", 6, k);
	assert_int_equal(n, 14);
	assert_memory_equal(k, "\0\0\0\0\0\0\x01\x00user.a", 14);
	/* All xattrs of ino 255 sort before those of 256, whatever the names. */
	n2 = fss_xattr_key(255, "\xff\xff\xff", 3, k2);
	assert_true(keycmp(k2, n2, k, n) < 0);
	fss_ino_key(257, ino_next);
	assert_true(keycmp(k, n, ino_next, sizeof(ino_next)) < 0);
	/* The longest name fills the buffer exactly. */
	memset(name, 'n', sizeof(name));
	n = fss_xattr_key(UINT64_MAX, name, FSS_NAME_MAX, k);
	assert_int_equal(n, FSS_XATTR_KEY_MAX);
	assert_memory_equal(k + 8, name, FSS_NAME_MAX);
	/* Past the limit: no key, nothing written past the buffer. */
	assert_int_equal(fss_xattr_key(1, name, FSS_NAME_MAX + 1, k), 0);
	/* An empty name is just the ino prefix. */
	assert_int_equal(fss_xattr_key(9, "", 0, k), 8);
}

static void test_schema_dir_ks_name(void **state)
{
	char name[FSS_DIR_KS_NAME_MAX];

	(void)state;
	fss_dir_ks_name(FSS_ROOT_INO, name);
	assert_string_equal(name, "dir.1");
	fss_dir_ks_name(1234567, name);
	assert_string_equal(name, "dir.1234567");
	fss_dir_ks_name(UINT64_MAX, name);
	assert_string_equal(name, "dir.18446744073709551615");
	assert_true(strlen(name) < FSS_DIR_KS_NAME_MAX);
}

/* ---- names ---- */

static void test_schema_name_check(void **state)
{
	char name[FSS_NAME_MAX + 3];

	(void)state;
	assert_int_equal(fss_name_check("a"), 0);
	assert_int_equal(fss_name_check("..."), 0);
	assert_int_equal(fss_name_check(".hidden"), 0);
	assert_int_equal(fss_name_check("..x"), 0);
	assert_int_equal(fss_name_check("caf\xc3\xa9 \t\n"), 0);
	assert_int_equal(fss_name_check(""), -EINVAL);
	assert_int_equal(fss_name_check("."), -EINVAL);
	assert_int_equal(fss_name_check(".."), -EINVAL);
	assert_int_equal(fss_name_check("/"), -EINVAL);
	assert_int_equal(fss_name_check("a/b"), -EINVAL);
	assert_int_equal(fss_name_check("ab/"), -EINVAL);

	memset(name, 'x', sizeof(name));
	name[FSS_NAME_MAX] = '\0';
	assert_int_equal(strlen(name), 255);
	assert_int_equal(fss_name_check(name), 0);
	name[FSS_NAME_MAX - 1] = '/';
	assert_int_equal(fss_name_check(name), -EINVAL);
	name[FSS_NAME_MAX - 1] = 'x';
	name[FSS_NAME_MAX] = 'x';
	name[FSS_NAME_MAX + 1] = '\0';
	assert_int_equal(strlen(name), 256);
	assert_int_equal(fss_name_check(name), -ENAMETOOLONG);
	name[FSS_NAME_MAX + 1] = 'x';
	name[FSS_NAME_MAX + 2] = '\0';
	assert_int_equal(fss_name_check(name), -ENAMETOOLONG);
}

/* ---- superblock ---- */

static void sample_super(struct fs_super *s)
{
	s->version = FSS_FORMAT_VERSION;
	s->chunk_size = 65536;
	s->inline_max = 4096;
	s->created_ns = 1700000000000000001ll;
	s->mount_cnt = 0x0102030405060708ull;
}

static int super_try(uint32_t cs, uint32_t imax)
{
	struct fs_super s, out;
	uint8_t buf[FSS_SUPER_LEN];

	sample_super(&s);
	s.chunk_size = cs;
	s.inline_max = imax;
	fss_super_encode(&s, buf);
	memset(&out, 0, sizeof(out));
	return fss_super_decode(buf, sizeof(buf), &out);
}

static void test_schema_super_round_trip(void **state)
{
	struct fs_super s, out;
	uint8_t buf[FSS_SUPER_LEN];

	(void)state;
	sample_super(&s);
	fss_super_encode(&s, buf);
	assert_int_equal(le_at(buf, 4), FSS_FORMAT_VERSION);
	assert_int_equal(le_at(buf + 4, 4), 65536);
	assert_int_equal(le_at(buf + 8, 4), 4096);
	assert_int_equal(le_at(buf + 12, 4), 0);
	assert_true(le_at(buf + 16, 8) == 1700000000000000001ull);
	assert_true(le_at(buf + 24, 8) == 0x0102030405060708ull);
	memset(&out, 0, sizeof(out));
	assert_int_equal(fss_super_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.version, s.version);
	assert_int_equal(out.chunk_size, s.chunk_size);
	assert_int_equal(out.inline_max, s.inline_max);
	assert_true(out.created_ns == s.created_ns);
	assert_true(out.mount_cnt == s.mount_cnt);

	s.created_ns = -5;
	s.mount_cnt = UINT64_MAX;
	fss_super_encode(&s, buf);
	assert_int_equal(fss_super_decode(buf, sizeof(buf), &out), 0);
	assert_true(out.created_ns == -5);
	assert_true(out.mount_cnt == UINT64_MAX);
}

static void test_schema_super_validation(void **state)
{
	struct fs_super s, out;
	uint8_t buf[FSS_SUPER_LEN + 1];

	(void)state;
	/* Chunk sizes: powers of two from 4 KiB to 1 MiB only. */
	for (uint32_t cs = 4096; cs <= (1u << 20); cs <<= 1)
		assert_int_equal(super_try(cs, 0), 0);
	assert_int_equal(super_try(2048, 0), -EIO);
	assert_int_equal(super_try(2u << 20, 0), -EIO);
	assert_int_equal(super_try(0, 0), -EIO);
	assert_int_equal(super_try(65535, 0), -EIO);
	assert_int_equal(super_try(65536 + 4096, 0), -EIO);
	assert_int_equal(super_try(0x80000000u, 0), -EIO);
	/* inline_max up to the chunk size. */
	assert_int_equal(super_try(4096, 4096), 0);
	assert_int_equal(super_try(4096, 4097), -EIO);
	assert_int_equal(super_try(65536, UINT32_MAX), -EIO);

	sample_super(&s);
	fss_super_encode(&s, buf);
	buf[FSS_SUPER_LEN] = 0;
	memset(&out, 0, sizeof(out));
	for (size_t n = 0; n <= sizeof(buf); n++) {
		if (n != FSS_SUPER_LEN)
			assert_int_equal(fss_super_decode(buf, n, &out), -EIO);
	}
	assert_int_equal(out.version, 0); /* untouched on failure */
	/* Every other version. */
	for (uint32_t v = 0; v < 300; v++) {
		if (v == FSS_FORMAT_VERSION)
			continue;
		s.version = v;
		fss_super_encode(&s, buf);
		assert_int_equal(fss_super_decode(buf, FSS_SUPER_LEN, &out), -EIO);
	}
	s.version = FSS_FORMAT_VERSION;
	fss_super_encode(&s, buf);
	buf[3] = 0x80; /* high byte of the version */
	assert_int_equal(fss_super_decode(buf, FSS_SUPER_LEN, &out), -EIO);
	buf[3] = 0;
	buf[13] = 1; /* the reserved word must stay zero */
	assert_int_equal(fss_super_decode(buf, FSS_SUPER_LEN, &out), -EIO);
	buf[13] = 0;
	assert_int_equal(fss_super_decode(buf, FSS_SUPER_LEN, &out), 0);
}

/* ---- time ---- */

static void test_schema_now_ns(void **state)
{
	struct timespec ts;
	int64_t a, b, now;

	(void)state;
	a = fss_now_ns();
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	b = fss_now_ns();
	assert_true(a <= now + 1000000);
	assert_true(now <= b + 1000000);
	assert_true(a > 1500000000ll * 1000000000); /* after 2017: nanoseconds, not seconds */
}

/* ---- errno map ---- */

/* Runs fs_errno with stderr redirected to a file and returns what it printed. */
static int errno_logged(fr_status st, const fr_error *err, const char *what, char *log,
			size_t log_len)
{
	FILE *tmp = tmpfile();
	int saved, e;
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	e = fs_errno(st, err, what);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(log, 1, log_len - 1, tmp);
	log[n] = '\0';
	fclose(tmp);
	return e;
}

static void test_schema_errno_map(void **state)
{
	static const struct {
		fr_status st;
		int e;
		bool logs;
	} map[] = {
		{ FR_OK, 0, false },		 { FR_NOT_FOUND, ENOENT, false },
		{ FR_INVALID, EINVAL, false },	 { FR_CORRUPTION, EIO, true },
		{ FR_IO, EIO, true },		 { FR_NO_SPACE, ENOSPC, false },
		{ FR_NOMEM, ENOMEM, false },	 { FR_BUSY, EBUSY, false },
		{ FR_CONFLICT, EAGAIN, false },	 { FR_POISONED, EIO, true },
		{ FR_CLOSED, EIO, false },
	};
	char log[512];
	fr_error err;

	(void)state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(errno_logged(map[i].st, &err, "op", log, sizeof(log)), map[i].e);
		assert_int_equal(log[0] != '\0', map[i].logs);
		assert_int_equal(errno_logged(map[i].st, NULL, NULL, log, sizeof(log)), map[i].e);
		assert_int_equal(log[0] != '\0', map[i].logs);
	}
	/* An unknown status is EIO (and worth a log line). */
	assert_int_equal(errno_logged((fr_status)99, NULL, "op", log, sizeof(log)), EIO);
	assert_true(strstr(log, "fractiofs: op: ") == log);
}

static void test_schema_errno_io_and_log(void **state)
{
	char log[512], want[512];
	fr_error err;

	(void)state;
	memset(&err, 0, sizeof(err));
	err.code = FR_IO;
	err.sys_errno = EROFS;
	snprintf(err.msg, sizeof(err.msg), "pwrite 000012.sst: Read-only file system");
	assert_int_equal(errno_logged(FR_IO, &err, "write", log, sizeof(log)), EROFS);
	assert_string_equal(log, "fractiofs: write: pwrite 000012.sst: Read-only file system\n");
	err.sys_errno = 0;
	assert_int_equal(errno_logged(FR_IO, &err, "write", log, sizeof(log)), EIO);

	/* No message: the status text; no operation name: "operation". */
	memset(&err, 0, sizeof(err));
	snprintf(want, sizeof(want), "fractiofs: operation: %s\n", fr_status_str(FR_CORRUPTION));
	assert_int_equal(errno_logged(FR_CORRUPTION, &err, NULL, log, sizeof(log)), EIO);
	assert_string_equal(log, want);
	snprintf(want, sizeof(want), "fractiofs: getattr: %s\n", fr_status_str(FR_POISONED));
	assert_int_equal(errno_logged(FR_POISONED, NULL, "getattr", log, sizeof(log)), EIO);
	assert_string_equal(log, want);

	/* Quiet statuses print nothing even with a message. */
	snprintf(err.msg, sizeof(err.msg), "no such key");
	assert_int_equal(errno_logged(FR_NOT_FOUND, &err, "lookup", log, sizeof(log)), ENOENT);
	assert_string_equal(log, "");
}

/* The mount's device number comes from /proc/self/mountinfo (bdi.h): the newest fuse mount at
 * the path wins, escaped paths match, other types and other paths do not, bad lines fail. */
static int mountinfo_dev(const char *text, const char *mnt, unsigned *maj, unsigned *min)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	assert_non_null(f);
	rc = fs_mountinfo_dev(f, mnt, maj, min);
	fclose(f);
	return rc;
}

static void test_schema_mountinfo_dev(void **state)
{
	const char *text =
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
		"40 22 0:41 / /mnt/a rw,nosuid,nodev,relatime shared:20 - fuse.fractiofs st rw,user_id=0\n"
		"41 22 0:45 / /mnt/my\\040dir rw,relatime - fuse.fractiofs st rw\n"
		"42 22 0:46 / /mnt/b rw,relatime - tmpfs tmpfs rw\n"
		"43 40 0:47 / /mnt/a rw,relatime master:3 master:4 - fuse st2 rw\n";
	unsigned maj = 99, min = 99;

	(void)state;
	assert_int_equal(mountinfo_dev(text, "/mnt/a", &maj, &min), 0);
	assert_int_equal(maj, 0);
	assert_int_equal(min, 47); /* the one stacked on top */
	assert_int_equal(mountinfo_dev(text, "/mnt/my dir", &maj, &min), 0);
	assert_int_equal(min, 45);
	assert_int_equal(mountinfo_dev(text, "/mnt/b", &maj, &min), -ENOENT); /* not fuse */
	assert_int_equal(mountinfo_dev(text, "/mnt", &maj, &min), -ENOENT);
	assert_int_equal(mountinfo_dev(text, "/mnt/my\\040dir", &maj, &min), -ENOENT);
	assert_int_equal(mountinfo_dev("40 22 0:41 / /mnt/a rw\n", "/mnt/a", &maj, &min),
			 -EINVAL); /* no separator, no type */
	assert_int_equal(mountinfo_dev("40 22 x / /mnt/a rw - fuse s rw\n", "/mnt/a", &maj, &min),
			 -EINVAL);
	assert_int_equal(mountinfo_dev("", "/mnt/a", &maj, &min), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_inode_round_trip),
		cmocka_unit_test(test_schema_inode_layout),
		cmocka_unit_test(test_schema_inode_parent_bytes),
		cmocka_unit_test(test_schema_inode_truncated),
		cmocka_unit_test(test_schema_inode_bad_bytes),
		cmocka_unit_test(test_schema_inode_payload_bound),
		cmocka_unit_test(test_schema_inode_payload_ownership),
		cmocka_unit_test(test_schema_dirent_round_trip),
		cmocka_unit_test(test_schema_dirent_bad),
		cmocka_unit_test(test_schema_mode_dtype),
		cmocka_unit_test(test_schema_ino_key_order),
		cmocka_unit_test(test_schema_chunk_key_order),
		cmocka_unit_test(test_schema_xattr_key),
		cmocka_unit_test(test_schema_dir_ks_name),
		cmocka_unit_test(test_schema_name_check),
		cmocka_unit_test(test_schema_super_round_trip),
		cmocka_unit_test(test_schema_super_validation),
		cmocka_unit_test(test_schema_now_ns),
		cmocka_unit_test(test_schema_errno_map),
		cmocka_unit_test(test_schema_errno_io_and_log),
		cmocka_unit_test(test_schema_mountinfo_dev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
