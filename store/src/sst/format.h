/* SPDX-License-Identifier: MIT */
/*
 * format.h - the on-disk layout of a table file (FORMAT.md §4): magic, version, the stored block
 * trailer, compression and block kinds, the footer and the properties block. Every enum value
 * here is written to disk: never renumber, keep retired values as comments.
 *
 * File layout (§4.1): data blocks, [filter block], range-tombstone block, [index partitions],
 * index block, properties block, footer. Each block is followed by its 9-byte trailer (§4.2).
 *
 * The codecs of the footer and of the properties block are declared here so that readers,
 * writers and the dump tool share them; they are implemented in sst_write.c (encoders) and
 * sst_read.c (decoders). Decoders check every length before reading.
 */
#ifndef FRACTIO_SST_FORMAT_H
#define FRACTIO_SST_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/coding.h"
#include "fractio.h"

struct fr_buf;

/* "FRACTSST" as little-endian bytes 46 52 41 43 54 53 53 54 (§4.6) */
#define SST_MAGIC UINT64_C(0x5453535443415246)
/* Footer versions (§4.6, §4.10). A table that uses neither a partitioned index nor hashed data
 * blocks is written as version 1, byte for byte as before version 2 existed. */
#define SST_FORMAT_V1 1
#define SST_FORMAT_V2 2 /* the index may be partitioned (§4.4.1), data blocks hashed (§4.3.1) */
#define SST_FORMAT_VERSION SST_FORMAT_V2 /* the newest version read and written */

/* Stored block trailer (§4.2): u8 compression type + u64 xxh3(stored bytes || type byte). */
#define SST_BLOCK_TRAILER_LEN 9

/* Compression types (§4.2): the first byte of a block trailer. */
enum sst_compression {
	SST_COMP_NONE = 0,
	SST_COMP_LZ4 = 1, /* payload: varint raw_len, LZ4 block (LZ4_compress_default) */
};

/* Block kinds: not stored inside blocks (the footer and index say what each block is); used in
 * messages and by the dump tool. Values are fixed like every other format enum. */
enum sst_block_kind {
	SST_BLOCK_DATA = 1,
	SST_BLOCK_INDEX = 2,
	SST_BLOCK_FILTER = 3,
	SST_BLOCK_RANGE_DEL = 4,
	SST_BLOCK_PROPS = 5,
	SST_BLOCK_INDEX_PART = 6, /* a partition of a partitioned index (§4.4.1) */
};

/* The hash index of a data block (§4.3.1): the restart count's top bit says it is there; each
 * bucket is a u8 restart index or one of the two markers. */
#define SST_BLOCK_HASH_FLAG (UINT32_C(1) << 31)
enum {
	SST_HASH_RESTART_MAX = 253, /* blocks with more restart points carry no hash index */
	SST_HASH_COLLISION = 254,   /* user keys of several restart runs share the bucket */
	SST_HASH_NONE = 255,	    /* no user key of the block has this bucket */
};

/* Filter types (§4.5): the first byte of the filter block. */
enum sst_filter_type {
	SST_FILTER_BLOOM = 1, /* filter.h: bits, then u8 k; probes by double hashing of xxh3 */
};

/* Properties (§4.7): records of varint tag, varint len, len bytes. Tags ascend, each at most
 * once; unknown tags are skipped. Integer properties hold one varint filling the record. */
enum sst_prop_tag {
	SST_PROP_ENTRY_CNT = 1,
	SST_PROP_TOMBSTONE_CNT = 2,
	SST_PROP_RANGE_DEL_CNT = 3,
	SST_PROP_MIN_SEQNO = 4,
	SST_PROP_MAX_SEQNO = 5,
	SST_PROP_SMALLEST = 6, /* bytes: smallest user key */
	SST_PROP_LARGEST = 7,  /* bytes: largest user key */
	SST_PROP_BLOCK_SIZE = 8,
	SST_PROP_RESTART_INTERVAL = 9,
	SST_PROP_BLOOM_BITS = 10,
	SST_PROP_COMPRESSION = 11, /* 0: off, 1: LZ4 allowed */
	SST_PROP_DATA_BLOCK_CNT = 12,
	SST_PROP_CREATED = 13, /* optional: wall-clock seconds at write */
	SST_PROP_INDEX_PARTS = 14, /* v2: partitions of the index; 0 or absent: one block */
	SST_PROP_DATA_HASH = 15,   /* v2, optional: 1 when data blocks may carry a hash index */
};
#define SST_PROP_TAG_MAX SST_PROP_DATA_HASH /* the last tag this code knows */

/* Where a stored block is: offset of its first byte and its size without the trailer. */
struct sst_handle {
	uint64_t off;
	uint64_t size;
};

/* Index values (§4.4): varint off, varint size. Returns the bytes written (<= 20). */
static inline size_t sst_handle_encode(uint8_t *p, const struct sst_handle *h)
{
	size_t n = enc_varint(p, h->off);
	return n + enc_varint(p + n, h->size);
}
/* False when [p, end) is not exactly one encoded handle. */
static inline bool sst_handle_decode(const uint8_t *p, const uint8_t *end, struct sst_handle *h)
{
	return dec_varint(&p, end, &h->off) && dec_varint(&p, end, &h->size) && p == end;
}

/* Footer (§4.6): fixed size, the last bytes of the file. */
enum {
	SST_FOOTER_INDEX = 0, /* handle slots, in file order of the footer */
	SST_FOOTER_FILTER = 1,
	SST_FOOTER_RANGE_DEL = 2,
	SST_FOOTER_PROPS = 3,
	SST_FOOTER_HANDLE_CNT = 4,
};
#define SST_FOOTER_VERSION_OFF 64
#define SST_FOOTER_MAGIC_OFF 68
#define SST_FOOTER_CHECKSUM_OFF 76
#define SST_FOOTER_LEN 84
_Static_assert(SST_FOOTER_VERSION_OFF == 16 * SST_FOOTER_HANDLE_CNT, "handles, then version");
_Static_assert(SST_FOOTER_CHECKSUM_OFF + 8 == SST_FOOTER_LEN, "the checksum ends the footer");

struct sst_footer {
	struct sst_handle h[SST_FOOTER_HANDLE_CNT]; /* filter: {0, 0} when there is none */
	uint32_t version;			    /* SST_FORMAT_V1 or SST_FORMAT_V2 */
};

/* What the properties block records. */
struct sst_props {
	uint64_t entry_cnt;
	uint64_t tombstone_cnt;
	uint64_t range_del_cnt;
	uint64_t min_seqno;
	uint64_t max_seqno;
	const uint8_t *smallest; /* views: into the caller's data when decoded */
	size_t smallest_len;
	const uint8_t *largest;
	size_t largest_len;
	uint64_t block_size;
	uint64_t restart_interval;
	uint64_t bloom_bits;
	uint64_t compression;
	uint64_t data_block_cnt;
	uint64_t created_s; /* 0 when absent */
	uint64_t index_parts; /* 0 when absent: the index is one block */
	uint64_t data_hash;   /* 0 when absent */
};

/* Fills out[SST_FOOTER_LEN] with the handles, f->version, the magic and the checksum. */
void sst_footer_encode(const struct sst_footer *f, uint8_t *out);
/* Checks magic, version (1 or 2) and checksum of p[SST_FOOTER_LEN] (read at file offset `off`
 * of `path`, for messages). FR_CORRUPTION on any mismatch. */
fr_status sst_footer_decode(const uint8_t *p, const char *path, uint64_t off, struct sst_footer *f,
			    fr_error *err);

/* Writes tags 14 and 15 only when index_parts or data_hash is set (a version 2 table). */
fr_status sst_props_encode(const struct sst_props *p, struct fr_buf *out);
/* Decodes block contents [data, data + len); the key views point into data. Whether the
 * version 2 tags fit the footer's version is the reader's check. */
fr_status sst_props_decode(const uint8_t *data, size_t len, const char *path, uint64_t off,
			   struct sst_props *p, fr_error *err);

#endif
