/* SPDX-License-Identifier: MIT */
/*
 * record.c - record files (FORMAT.md §2): writing framed, checksummed records behind a file
 * header, and reading them back with the torn-tail rule.
 *
 * Every check is seeded with the record's file offset, so a record is valid only at the place it
 * was written: a stale or duplicated copy elsewhere in the file never passes. The writer buffers
 * records and hands them to the OS in one pwrite at its tracked end offset; a record with a body
 * of REC_DIRECT_MIN bytes or more is not copied: the buffer (ending in the record's header) is
 * written, then the body from the caller's memory, its checksum streamed over both parts. A
 * crash between the two writes leaves a torn tail, as a crash inside one write does. A failed write or
 * sync makes the writer refuse all further work (a failed fsync may have dropped the dirty pages,
 * and records of a failed commit must not be written later by another one).
 *
 * The reader streams the file through a window (1 MiB, or one record when larger). On the first
 * bad record it scans every later offset for a complete valid record: one found means the bad
 * record is corruption; none means the file ends in a torn tail at the bad record.
 */
#include "io/record.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/error.h"
#include "io/io.h"

#define REC_VERSION 1u
#define REC_WINDOW (1u << 20)    /* read window */
#define REC_BUF_KEEP (4u << 20)  /* writer buffers larger than this are freed after a flush */
#define REC_DIRECT_MIN (256u << 10) /* a body this large goes to the OS from the caller's memory */

static_assert(REC_HEADER_LEN == 16, "FORMAT.md §2 record header");
static_assert(REC_FILE_HEADER_LEN == 24, "FORMAT.md §2 file header");

struct rec_writer {
	struct fr_io *io;
	struct io_file *f;
	char *path;
	struct fr_buf buf; /* framed records not yet handed to the OS */
	uint64_t off;      /* end of the bytes handed to the OS */
	uint64_t wb_off;   /* end of the bytes whose write-back was started */
	XXH3_state_t *xs;  /* checksum state of direct records, made at the first */
	fr_status failed;  /* sticky: set by a failed write or sync */
};

/* FORMAT.md §2: the header check covers the 4 length bytes, seeded with the record offset. */
static uint32_t rec_hdr_check(const uint8_t *len_bytes, uint64_t off)
{
	return (uint32_t)fr_xxh3_seed(len_bytes, 4, off);
}

static void rec_encode_file_header(uint8_t *p, uint32_t magic, uint64_t file_id)
{
	enc_u32(p, magic);
	enc_u32(p + 4, REC_VERSION);
	enc_u64(p + 8, file_id);
	enc_u64(p + 16, fr_xxh3(p, 16));
}

static fr_status rec_writer_refuse(const struct rec_writer *w, fr_error *err)
{
	return FR_ERR(err, w->failed, "%s: an earlier write or sync of this file failed", w->path);
}

fr_status rec_writer_open(struct fr_io *io, const char *path, uint32_t magic, uint64_t file_id,
			  struct rec_writer **out, fr_error *err)
{
	fr_status rc;
	*out = NULL;
	struct rec_writer *w = fr_calloc(1, sizeof(*w));
	if (!w)
		return FR_ERR(err, FR_NOMEM, "creating %s", path);
	buf_init(&w->buf);
	w->io = io;
	w->path = fr_strdup(path);
	if (!w->path) {
		rc = FR_ERR(err, FR_NOMEM, "creating %s", path);
		goto out_free;
	}
	rc = io_open(io, path, IO_RDWR | IO_CREATE | IO_EXCL, &w->f, err);
	if (rc)
		goto out_free;
	uint8_t hdr[REC_FILE_HEADER_LEN];
	rec_encode_file_header(hdr, magic, file_id);
	rc = io_pwrite(w->f, hdr, sizeof(hdr), 0, err);
	if (rc)
		goto out_unlink;
	w->off = REC_FILE_HEADER_LEN;
	*out = w;
	return FR_OK;

out_unlink:
	io_close(w->f);
	io_unlink(io, path, NULL); /* best effort, so that a retry can create it again */
out_free:
	fr_free(w->path);
	fr_free(w);
	return rc;
}

/* Starts a record of len bytes at the end of the buffer, with room for `room` bytes after its
 * header: its length, header check and head (hlen bytes) are written. Returns where the
 * record starts, or NULL when out of memory. */
static uint8_t *frame_head(struct rec_writer *w, const void *head, size_t hlen, size_t len,
			   size_t room)
{
	if (buf_reserve(&w->buf, REC_HEADER_LEN + room))
		return NULL;
	uint8_t *p = w->buf.data + w->buf.len;
	enc_u32(p, (uint32_t)len);
	enc_u32(p + 4, rec_hdr_check(p, w->off + w->buf.len));
	if (hlen)
		memcpy(p + REC_HEADER_LEN, head, hlen);
	return p;
}

/* rec_writer_add2 of a large body: frames the header and head in the buffer, hands the buffer
 * to the OS, then the body straight from the caller. */
static fr_status add_direct(struct rec_writer *w, const void *head, size_t hlen, const void *body,
			    size_t blen, fr_error *err)
{
	size_t len = hlen + blen;

	if (!w->xs && !(w->xs = XXH3_createState()))
		return FR_ERR(err, FR_NOMEM, "%s: checksum state", w->path);
	uint64_t off = w->off + w->buf.len;
	uint8_t *p = frame_head(w, head, hlen, len, hlen);
	if (!p)
		return FR_ERR(err, FR_NOMEM, "%s: buffering a record of %zu bytes", w->path, len);
	/* the same value as fr_xxh3_seed over the record's bytes in one piece */
	if (XXH3_64bits_reset_withSeed(w->xs, off) != XXH_OK ||
	    XXH3_64bits_update(w->xs, p + REC_HEADER_LEN, hlen) != XXH_OK ||
	    XXH3_64bits_update(w->xs, body, blen) != XXH_OK)
		return FR_ERR(err, FR_INVALID, "%s: checksum of a record of %zu bytes", w->path,
			      len);
	enc_u64(p + 8, (uint64_t)XXH3_64bits_digest(w->xs));
	w->buf.len += REC_HEADER_LEN + hlen;
	fr_status rc = rec_writer_flush(w, err);
	if (rc)
		return rc;
	rc = io_pwrite(w->f, body, blen, w->off, err);
	if (rc) {
		w->failed = rc;
		return rc;
	}
	w->off += blen;
	return FR_OK;
}

fr_status rec_writer_add2(struct rec_writer *w, const void *head, size_t hlen, const void *body,
			  size_t blen, fr_error *err)
{
	size_t len = hlen + blen;

	if (w->failed)
		return rec_writer_refuse(w, err);
	if (len < hlen || len > REC_MAX_LEN)
		return FR_ERR(err, FR_INVALID, "%s: record of %zu bytes exceeds the maximum %u",
			      w->path, len, REC_MAX_LEN);
	if (blen >= REC_DIRECT_MIN)
		return add_direct(w, head, hlen, body, blen, err);
	uint64_t off = w->off + w->buf.len;
	uint8_t *p = frame_head(w, head, hlen, len, len);
	if (!p)
		return FR_ERR(err, FR_NOMEM, "%s: buffering a record of %zu bytes", w->path, len);
	if (blen)
		memcpy(p + REC_HEADER_LEN + hlen, body, blen);
	/* the record's bytes are whole in the buffer now: one checksum over them */
	enc_u64(p + 8, fr_xxh3_seed(len ? p + REC_HEADER_LEN : (const uint8_t *)"", len, off));
	w->buf.len += REC_HEADER_LEN + len;
	return FR_OK;
}

fr_status rec_writer_add(struct rec_writer *w, const void *rec, size_t len, fr_error *err)
{
	return rec_writer_add2(w, rec, len, NULL, 0, err);
}

fr_status rec_writer_flush(struct rec_writer *w, fr_error *err)
{
	if (w->failed)
		return rec_writer_refuse(w, err);
	if (!w->buf.len)
		return FR_OK;
	fr_status rc = io_pwrite(w->f, w->buf.data, w->buf.len, w->off, err);
	if (rc) {
		w->failed = rc;
		buf_fini(&w->buf);
		return rc;
	}
	w->off += w->buf.len;
	if (w->buf.cap > REC_BUF_KEEP)
		buf_fini(&w->buf);
	else
		buf_clear(&w->buf);
	return FR_OK;
}

void rec_writer_writeback(struct rec_writer *w, uint64_t min)
{
	if (!w->failed)
		io_writeback_since(w->f, &w->wb_off, w->off, min);
}

fr_status rec_writer_sync(struct rec_writer *w, fr_persist mode, fr_error *err)
{
	fr_status rc = rec_writer_flush(w, err);
	if (rc)
		return rc;
	rc = io_sync(w->f, mode, err);
	if (rc)
		w->failed = rc;
	return rc;
}

uint64_t rec_writer_size(const struct rec_writer *w)
{
	return w->off + w->buf.len;
}

fr_status rec_writer_close(struct rec_writer *w, fr_error *err)
{
	if (!w)
		return FR_OK;
	fr_status rc = rec_writer_flush(w, err);
	io_close(w->f);
	buf_fini(&w->buf);
	XXH3_freeState(w->xs);
	fr_free(w->path);
	fr_free(w);
	return rc;
}

/* ---- reading ---- */

/* A window over the file: buf holds [off, off + len). One record always fits. */
struct rec_win {
	struct io_file *f;
	const char *path;
	uint64_t file_len;
	uint8_t *buf;
	size_t cap;
	uint64_t off;
	size_t len;
};

/* Points *p at file bytes [off, off + need); the caller has checked off + need <= file_len. */
static fr_status win_get(struct rec_win *w, uint64_t off, size_t need, const uint8_t **p,
			 fr_error *err)
{
	if (off >= w->off && off + need <= w->off + w->len) {
		*p = w->buf + (off - w->off);
		return FR_OK;
	}
	if (need > w->cap) {
		size_t cap = REC_WINDOW;
		if (w->file_len < cap)
			cap = (size_t)w->file_len;
		if (cap < need)
			cap = need;
		uint8_t *nb = fr_malloc(cap);
		if (!nb)
			return FR_ERR(err, FR_NOMEM, "reading %s: window of %zu bytes", w->path,
				      cap);
		fr_free(w->buf);
		w->buf = nb;
		w->cap = cap;
	}
	uint64_t left = w->file_len - off;
	size_t n = left < w->cap ? (size_t)left : w->cap;
	w->len = 0;
	fr_status rc = io_pread_exact(w->f, w->path, w->buf, n, off, err);
	if (rc)
		return rc;
	w->off = off;
	w->len = n;
	*p = w->buf;
	return FR_OK;
}

/*
 * Checks for a complete valid record at off. On FR_OK, *why is NULL when it is valid (then
 * *payload and *len describe it, valid until the next window call) or says what is wrong.
 */
static fr_status rec_check_at(struct rec_win *w, uint64_t off, const uint8_t **payload,
			      uint32_t *len, const char **why, fr_error *err)
{
	const uint8_t *p = NULL;
	fr_status rc;
	if (w->file_len - off < REC_HEADER_LEN) {
		*why = "record header cut short by the end of the file";
		return FR_OK;
	}
	rc = win_get(w, off, REC_HEADER_LEN, &p, err);
	if (rc)
		return rc;
	uint32_t n = dec_u32(p);
	if (dec_u32(p + 4) != rec_hdr_check(p, off)) {
		*why = "record header checksum mismatch";
		return FR_OK;
	}
	uint64_t want = dec_u64(p + 8);
	if (n > REC_MAX_LEN) {
		*why = "record length exceeds the maximum";
		return FR_OK;
	}
	if (n > w->file_len - off - REC_HEADER_LEN) {
		*why = "record runs past the end of the file";
		return FR_OK;
	}
	rc = win_get(w, off, REC_HEADER_LEN + (size_t)n, &p, err);
	if (rc)
		return rc;
	if (fr_xxh3_seed(p + REC_HEADER_LEN, n, off) != want) {
		*why = "record payload checksum mismatch";
		return FR_OK;
	}
	*payload = p + REC_HEADER_LEN;
	*len = n;
	*why = NULL;
	return FR_OK;
}

/* Looks for a complete valid record at any offset after `from`; *found is its offset. */
static fr_status rec_scan(struct rec_win *w, uint64_t from, bool *found, uint64_t *at,
			  fr_error *err)
{
	*found = false;
	for (uint64_t off = from; off + REC_HEADER_LEN <= w->file_len; off++) {
		const uint8_t *p;
		fr_status rc = win_get(w, off, REC_HEADER_LEN, &p, err);
		if (rc)
			return rc;
		/* cheap filter first: garbage passes the header check once in 2^32 */
		if (dec_u32(p + 4) != rec_hdr_check(p, off))
			continue;
		const uint8_t *payload;
		uint32_t n;
		const char *why;
		rc = rec_check_at(w, off, &payload, &n, &why, err);
		if (rc)
			return rc;
		if (!why) {
			*found = true;
			*at = off;
			return FR_OK;
		}
	}
	return FR_OK;
}

static fr_status rec_check_file_header(const uint8_t *p, const char *path, uint32_t magic,
				       uint64_t *file_id, fr_error *err)
{
	char what[96];
	if (dec_u32(p) != magic) {
		snprintf(what, sizeof(what), "bad file magic 0x%08x, expected 0x%08x", dec_u32(p),
			 magic);
		return FR_CORRUPT(err, path, 0, what);
	}
	if (dec_u32(p + 4) != REC_VERSION) {
		snprintf(what, sizeof(what), "unknown record file version %u", dec_u32(p + 4));
		return FR_CORRUPT(err, path, 4, what);
	}
	if (dec_u64(p + 16) != fr_xxh3(p, 16))
		return FR_CORRUPT(err, path, 16, "file header checksum mismatch");
	*file_id = dec_u64(p + 8);
	return FR_OK;
}

fr_status rec_read_file(struct fr_io *io, const char *path, uint32_t magic, rec_fn fn, void *ctx,
			struct rec_read_result *res, fr_error *err)
{
	struct rec_read_result r = {0};
	struct rec_win w = {.path = path};
	const uint8_t *p;
	fr_status rc = io_open(io, path, IO_RDONLY, &w.f, err);
	if (rc)
		return rc;
	rc = io_size(w.f, &w.file_len, err);
	if (rc)
		goto out_close;
	r.file_len = w.file_len;
	if (w.file_len < REC_FILE_HEADER_LEN) {
		/* cut short at creation: empty and torn, the caller decides what that means */
		r.torn = true;
		goto out_done;
	}
	rc = win_get(&w, 0, REC_FILE_HEADER_LEN, &p, err);
	if (rc)
		goto out_close;
	rc = rec_check_file_header(p, path, magic, &r.file_id, err);
	if (rc)
		goto out_close;

	uint64_t off = REC_FILE_HEADER_LEN;
	r.valid_len = off;
	while (off < w.file_len) {
		const uint8_t *payload;
		uint32_t n;
		const char *why;
		rc = rec_check_at(&w, off, &payload, &n, &why, err);
		if (rc)
			goto out_close;
		if (why) {
			bool found;
			uint64_t at;
			rc = rec_scan(&w, off + 1, &found, &at, err);
			if (rc)
				goto out_close;
			if (found) {
				char what[160];
				snprintf(what, sizeof(what),
					 "%s, and a valid record follows at %llu", why,
					 (unsigned long long)at);
				rc = FR_CORRUPT(err, path, off, what);
				goto out_close;
			}
			r.torn = true;
			break;
		}
		if (fn) {
			rc = fn(ctx, payload, n, off, err);
			if (rc)
				goto out_close;
		}
		r.records++;
		off += REC_HEADER_LEN + (uint64_t)n;
		r.valid_len = off;
	}
out_done:
	*res = r;
out_close:
	fr_free(w.buf);
	io_close(w.f);
	return rc;
}
