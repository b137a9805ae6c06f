/* SPDX-License-Identifier: MIT */
/*
 * journal_read.c - recovery side of the journal (FORMAT.md §3): listing segments and replaying
 * them in id order.
 *
 * Every segment but the newest was synced when the writer rotated away from it, so any bad
 * record in one of them, torn tail included, is FR_CORRUPTION. The newest may end in a torn tail
 * (a crash during a commit): it is truncated to its last valid record and the truncation synced.
 * A newest segment shorter than its header (a crash right after it was created) holds no record
 * and is deleted, so that it cannot become a short non-newest segment once the next is created.
 * The newest segment is synced after replay even when intact, because its last records may have
 * been written without a sync by the process that crashed: a writer started after replay must
 * not leave an older segment that can still lose its tail.
 */
#include "journal/journal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/log.h"
#include "io/compress.h"
#include "io/io.h"
#include "io/record.h"

#define JNL_NAME_DIGITS 10
#define JNL_NAME_LEN (JNL_NAME_DIGITS + 4) /* "0000000007.jnl" */

static fr_status jnl_seg_path(char *path, size_t n, const char *dir, uint64_t seg_id,
			      fr_error *err)
{
	int k = snprintf(path, n, "%s/%010llu.jnl", dir, (unsigned long long)seg_id);
	if (k < 0 || (size_t)k >= n)
		return FR_ERR(err, FR_INVALID, "journal path too long: %s", dir);
	return FR_OK;
}

/* True for exactly ten decimal digits followed by ".jnl". */
static bool jnl_parse_name(const char *name, uint64_t *id)
{
	if (strlen(name) != JNL_NAME_LEN || strcmp(name + JNL_NAME_DIGITS, ".jnl") != 0)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < JNL_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	*id = v;
	return true;
}

struct list_ctx {
	uint64_t *ids;
	size_t cnt;
	size_t cap;
	bool nomem;
};

static int list_one(void *c, const char *name)
{
	struct list_ctx *l = c;
	uint64_t id;
	if (!jnl_parse_name(name, &id))
		return 0;
	if (l->cnt == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *ids = cap <= SIZE_MAX / sizeof(*ids) ?
					fr_realloc(l->ids, cap * sizeof(*ids)) : NULL;
		if (!ids) {
			l->nomem = true;
			return 1;
		}
		l->ids = ids;
		l->cap = cap;
	}
	l->ids[l->cnt++] = id;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

fr_status jnl_list_segments(struct fr_io *io, const char *dir, uint64_t **ids, size_t *cnt,
			    fr_error *err)
{
	struct list_ctx l = {0};
	*ids = NULL;
	*cnt = 0;
	fr_status rc = io_list(io, dir, list_one, &l, err);
	if (l.nomem)
		rc = FR_ERR(err, FR_NOMEM, "listing journal %s", dir);
	else if (rc == FR_NOT_FOUND)
		rc = FR_OK; /* no directory: no segments */
	if (rc) {
		fr_free(l.ids);
		return rc;
	}
	if (l.cnt > 1)
		qsort(l.ids, l.cnt, sizeof(*l.ids), cmp_u64);
	*ids = l.ids;
	*cnt = l.cnt;
	return FR_OK;
}

struct replay_ctx {
	jnl_replay_fn fn;
	void *ctx;
	uint64_t seg_id;
	const char *path;
	bool framed;         /* a JNL_MAGIC2 segment */
	struct fr_buf raw;   /* a decompressed batch */
	uint64_t start;      /* the segment's start record, 0 before it */
};

static fr_status replay_one(void *c, const uint8_t *rec, size_t len, uint64_t off, fr_error *err)
{
	struct replay_ctx *r = c;
	if (!r->framed)
		return r->fn(r->ctx, r->seg_id, rec, len, err);
	/* the record's checksum held: a bad frame is corruption the writer made, or a bug */
	const uint8_t *p = rec, *end = rec + len;
	if (len < 1 || rec[0] > JNL_CODEC_START)
		return FR_CORRUPT(err, r->path, off, "journal record: unknown codec");
	p++;
	if (rec[0] == JNL_CODEC_START) {
		uint64_t s;
		if (!dec_varint(&p, end, &s) || p != end || s == 0)
			return FR_CORRUPT(err, r->path, off, "journal record: bad start record");
		if (!r->start)
			r->start = s;
		return FR_OK;
	}
	if (rec[0] == JNL_CODEC_NONE)
		return r->fn(r->ctx, r->seg_id, p, (size_t)(end - p), err);
	uint64_t raw_len;
	if (!dec_varint(&p, end, &raw_len) || raw_len < JNL_COMPRESS_MIN ||
	    raw_len > REC_MAX_LEN)
		return FR_CORRUPT(err, r->path, off, "journal record: bad compressed length");
	buf_clear(&r->raw);
	if (buf_reserve(&r->raw, (size_t)raw_len))
		return FR_ERR(err, FR_NOMEM, "journal %s: decompressing a record", r->path);
	if (!fr_lz4_decompress(p, (size_t)(end - p), r->raw.data, (size_t)raw_len))
		return FR_CORRUPT(err, r->path, off, "journal record: bad LZ4 data");
	return r->fn(r->ctx, r->seg_id, r->raw.data, (size_t)raw_len, err);
}

/* The magic at the start of `path` (0 when the file is shorter than 4 bytes): it says how
 * the records are framed. */
static fr_status seg_magic(struct fr_io *io, const char *path, uint32_t *magic, fr_error *err)
{
	struct io_file *f;
	uint8_t b[4];
	size_t got = 0;
	fr_status rc = io_open(io, path, IO_RDONLY, &f, err);
	if (rc)
		return rc;
	rc = io_pread(f, b, sizeof(b), 0, &got, err);
	io_close(f);
	*magic = !rc && got == sizeof(b) ? dec_u32(b) : 0;
	return rc;
}

/* The newest segment: drops a short one, truncates a torn tail, makes the rest durable. */
static fr_status jnl_settle_newest(struct fr_io *io, const char *dir, const char *path,
				   const struct rec_read_result *res, fr_error *err)
{
	struct io_file *f;
	fr_status rc;
	if (res->file_len < REC_FILE_HEADER_LEN) {
		FR_LOG(FR_LOG_WARN, "journal %s: shorter than its header (%llu bytes), deleted",
		       path, (unsigned long long)res->file_len);
		rc = io_unlink(io, path, err);
		if (!rc)
			rc = io_sync_dir(io, dir, err);
		return rc;
	}
	if (!res->torn) {
		rc = io_open(io, path, IO_RDONLY, &f, err);
		if (rc)
			return rc;
		rc = io_sync(f, FR_PERSIST_SYNC_DATA, err);
		io_close(f);
		return rc;
	}
	rc = io_open(io, path, IO_RDWR, &f, err);
	if (rc)
		return rc;
	rc = io_truncate(f, res->valid_len, err);
	if (!rc)
		rc = io_sync(f, FR_PERSIST_SYNC_DATA, err);
	io_close(f);
	if (!rc)
		FR_LOG(FR_LOG_WARN, "journal %s: torn tail at offset %llu truncated (%llu bytes)",
		       path, (unsigned long long)res->valid_len,
		       (unsigned long long)(res->file_len - res->valid_len));
	return rc;
}

fr_status jnl_replay(struct fr_io *io, const char *dir, jnl_replay_fn fn, void *ctx,
		     uint64_t *max_seg, fr_error *err)
{
	return jnl_replay_from(io, dir, fn, ctx, max_seg, NULL, err);
}

fr_status jnl_replay_from(struct fr_io *io, const char *dir, jnl_replay_fn fn, void *ctx,
			  uint64_t *max_seg, uint64_t *first_start, fr_error *err)
{
	if (first_start)
		*first_start = 0;
	uint64_t *ids;
	size_t cnt;
	char path[PATH_MAX];
	*max_seg = 0;
	fr_status rc = jnl_list_segments(io, dir, &ids, &cnt, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < cnt; i++) {
		bool newest = i + 1 == cnt;
		struct replay_ctx r = {.fn = fn, .ctx = ctx, .seg_id = ids[i], .path = path};
		struct rec_read_result res;
		uint32_t magic;
		rc = jnl_seg_path(path, sizeof(path), dir, ids[i], err);
		if (!rc)
			rc = seg_magic(io, path, &magic, err);
		if (rc)
			goto out_free;
		/* anything but the first version's magic is read as the current one (a wrong
		 * magic is then reported by the record reader) */
		r.framed = magic != JNL_MAGIC;
		buf_init(&r.raw);
		rc = rec_read_file(io, path, r.framed ? JNL_MAGIC2 : JNL_MAGIC, replay_one, &r, &res,
				   err);
		buf_fini(&r.raw);
		if (rc)
			goto out_free;
		if (i == 0 && first_start)
			*first_start = r.start;
		if (res.file_len >= REC_FILE_HEADER_LEN && res.file_id != ids[i]) {
			rc = FR_CORRUPT(err, path, 8, "segment id in the header is not the name's");
			goto out_free;
		}
		if (newest) {
			rc = jnl_settle_newest(io, dir, path, &res, err);
			if (rc)
				goto out_free;
		} else if (res.file_len < REC_FILE_HEADER_LEN) {
			rc = FR_CORRUPT(err, path, res.file_len,
					"older journal segment shorter than its header");
			goto out_free;
		} else if (res.torn) {
			rc = FR_CORRUPT(err, path, res.valid_len,
					"torn tail in an older segment (synced at rotation)");
			goto out_free;
		}
	}
	if (cnt)
		*max_seg = ids[cnt - 1];
out_free:
	fr_free(ids);
	return rc;
}
