/* SPDX-License-Identifier: MIT */
/*
 * blob_file.c - the blob file writer, the reader of one value by handle, and the whole-file
 * scan (FORMAT.md §8). The writer gathers records in a buffer and appends it once it passes
 * BLOB_WBUF bytes, so a file of small values is not a write call per value.
 */
#include "blob/blob.h"

#include <lz4.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/checksum.h"
#include "base/coding.h"
#include "base/error.h"
#include "io/compress.h"
#include "io/ftab.h"
#include "io/io.h"

#define BLOB_WBUF (1u << 20)
/* A value of at least BLOB_PROBE_MIN bytes is compressed whole only when its first
 * BLOB_PROBE_LEN bytes compress: random or already compressed data (media, archives, the
 * contents of most large files) then costs LZ4 a sixteenth of the value or less, not all of it.
 * Deciding per value keeps compressible values next to incompressible ones compressed. */
#define BLOB_PROBE_MIN (16u << 10)
#define BLOB_PROBE_LEN (4u << 10)
/* the fixed part of a record head: two checksums; then three varints (FORMAT.md §8.2) */
#define REC_HEAD_MAX (8 + 3 * VARINT_MAX + 8)

struct blob_writer {
	struct fr_io *io;
	struct io_file *f;
	char *path;
	uint64_t id;
	bool compress;
	uint64_t off;         /* file offset of buf's first byte */
	struct fr_buf buf;    /* records not yet appended */
	struct fr_buf cbuf;   /* compression scratch */
	uint64_t value_cnt;
	uint64_t value_bytes;
	uint64_t tries; /* values compressed whole (probes not counted) */
	uint64_t wb_off; /* end of the bytes whose write-back was started (blob_writer_writeback) */
	bool keep;       /* a failed finish leaves the file: records in it are referenced */
};

/* ---- handles (FORMAT.md §8.3) ---- */

size_t blob_handle_encode(const struct blob_handle *h, uint8_t *out)
{
	size_t n = 0;

	n += enc_varint(out + n, h->file_id);
	n += enc_varint(out + n, h->off);
	n += enc_varint(out + n, h->stored_len);
	n += enc_varint(out + n, h->value_len);
	n += enc_varint(out + n, h->cksum);
	return n;
}

bool blob_handle_decode(const uint8_t *p, size_t len, struct blob_handle *h)
{
	const uint8_t *end = p + len;

	if (!dec_varint(&p, end, &h->file_id) || !dec_varint(&p, end, &h->off) ||
	    !dec_varint(&p, end, &h->stored_len) || !dec_varint(&p, end, &h->value_len) ||
	    !dec_varint(&p, end, &h->cksum))
		return false;
	/* a stored form is never larger than the value (LZ4 is kept only when it saves) */
	return p == end && h->stored_len <= h->value_len && h->value_len <= SIZE_MAX / 2 &&
	       h->off <= UINT64_MAX - h->stored_len;
}

/* ---- writing ---- */

static void header_encode(uint8_t *hdr, uint64_t id)
{
	enc_u32(hdr, BLOB_MAGIC);
	enc_u32(hdr + 4, BLOB_VERSION);
	enc_u64(hdr + 8, id);
}

/* The writer both open and resume start from: path opened with flags, nothing written yet. */
static fr_status writer_new(struct fr_io *io, const char *path, uint64_t id, bool compress,
			    int flags, struct blob_writer **out, fr_error *err)
{
	struct blob_writer *w = fr_calloc(1, sizeof(*w));
	fr_status rc;

	*out = NULL;
	if (!w)
		return FR_ERR(err, FR_NOMEM, "blob writer %s", path);
	buf_init(&w->buf);
	buf_init(&w->cbuf);
	w->path = fr_strdup(path);
	if (!w->path) {
		fr_free(w);
		return FR_ERR(err, FR_NOMEM, "blob writer %s", path);
	}
	rc = io_open(io, path, flags, &w->f, err);
	if (rc) {
		fr_free(w->path);
		fr_free(w);
		return rc;
	}
	w->io = io;
	w->id = id;
	w->compress = compress;
	*out = w;
	return FR_OK;
}

fr_status blob_writer_open(struct fr_io *io, const char *path, uint64_t id, bool compress,
			   struct blob_writer **out, fr_error *err)
{
	struct blob_writer *w;
	fr_status rc = writer_new(io, path, id, compress, IO_RDWR | IO_CREATE | IO_EXCL, &w, err);

	*out = NULL;
	if (rc)
		return rc;
	uint8_t hdr[BLOB_HDR_LEN];
	header_encode(hdr, id);
	if (buf_append(&w->buf, hdr, sizeof(hdr))) {
		blob_writer_abort(w);
		return FR_ERR(err, FR_NOMEM, "blob writer %s", path);
	}
	*out = w;
	return FR_OK;
}

static fr_status wflush(struct blob_writer *w, fr_error *err)
{
	if (!w->buf.len)
		return FR_OK;
	fr_status rc = io_append(w->f, w->buf.data, w->buf.len, err);
	if (rc)
		return rc;
	w->off += w->buf.len;
	buf_clear(&w->buf);
	return FR_OK;
}

/* False when val is large and its probe does not shrink by an eighth (the test the whole
 * value must pass too). The probe goes to w->cbuf, which holds bound bytes. */
static bool worth_compressing(struct blob_writer *w, const void *val, size_t vlen, int bound)
{
	if (vlen < BLOB_PROBE_MIN)
		return true;
	int c = fr_lz4_compress(val, BLOB_PROBE_LEN, w->cbuf.data, bound);
	return c > 0 && (size_t)c <= BLOB_PROBE_LEN - BLOB_PROBE_LEN / 8;
}

fr_status blob_writer_add(struct blob_writer *w, const void *key, size_t klen, const void *val,
			  size_t vlen, struct blob_handle *h, fr_error *err)
{
	const uint8_t *stored = val;
	size_t slen = vlen;

	if (w->compress && vlen >= 64 && vlen <= LZ4_MAX_INPUT_SIZE) {
		int bound = LZ4_compressBound((int)vlen);

		buf_clear(&w->cbuf);
		if (buf_reserve(&w->cbuf, (size_t)bound))
			return FR_ERR(err, FR_NOMEM, "blob compression");
		int c = 0;
		if (worth_compressing(w, val, vlen, bound)) {
			w->tries++;
			c = fr_lz4_compress(val, (int)vlen, w->cbuf.data, bound);
		}
		/* kept only when it saves at least an eighth */
		if (c > 0 && (size_t)c <= vlen - vlen / 8) {
			stored = w->cbuf.data;
			slen = (size_t)c;
		}
	}
	uint8_t head[REC_HEAD_MAX];
	size_t n = 8;
	n += enc_varint(head + n, klen);
	n += enc_varint(head + n, vlen);
	n += enc_varint(head + n, slen);
	uint64_t vsum = fr_xxh3(stored, slen);
	enc_u64(head + n, vsum);
	n += 8;

	uint64_t rec_off = w->off + w->buf.len;
	size_t at = w->buf.len;
	if (buf_append(&w->buf, head, n) || buf_append(&w->buf, key, klen))
		return FR_ERR(err, FR_NOMEM, "blob record of %zu bytes", vlen);
	/* the head checksum covers the rest of the head and the key */
	enc_u64(w->buf.data + at, fr_xxh3(w->buf.data + at + 8, n - 8 + klen));
	if (buf_append(&w->buf, stored, slen))
		return FR_ERR(err, FR_NOMEM, "blob record of %zu bytes", vlen);
	*h = (struct blob_handle){ .file_id = w->id, .off = rec_off + n + klen,
				   .stored_len = slen, .value_len = vlen, .cksum = vsum };
	w->value_cnt++;
	w->value_bytes += slen;
	if (w->buf.len >= BLOB_WBUF)
		return wflush(w, err);
	return FR_OK;
}

uint64_t blob_writer_size(const struct blob_writer *w)
{
	return w->off + w->buf.len;
}

uint64_t blob_writer_id(const struct blob_writer *w)
{
	return w->id;
}

uint64_t blob_writer_compress_tries(const struct blob_writer *w)
{
	return w->tries;
}

static void footer_encode(uint8_t *out, uint64_t cnt, uint64_t end, uint64_t value_bytes)
{
	enc_u64(out, cnt);
	enc_u64(out + 8, end);
	enc_u64(out + 16, value_bytes);
	enc_u64(out + 24, fr_xxh3(out, 24));
	enc_u32(out + 32, BLOB_VERSION);
	enc_u32(out + 36, BLOB_MAGIC);
}

static void writer_free(struct blob_writer *w)
{
	buf_fini(&w->buf);
	buf_fini(&w->cbuf);
	fr_free(w->path);
	fr_free(w);
}

fr_status blob_writer_finish(struct blob_writer *w, struct blob_meta *m, fr_error *err)
{
	uint8_t foot[BLOB_FOOTER_LEN];
	uint64_t end = blob_writer_size(w);
	fr_status rc;

	footer_encode(foot, w->value_cnt, end, w->value_bytes);
	rc = buf_append(&w->buf, foot, sizeof(foot));
	if (rc)
		rc = FR_ERR(err, FR_NOMEM, "blob footer of %s", w->path);
	if (!rc)
		rc = wflush(w, err);
	if (!rc)
		rc = io_sync(w->f, FR_PERSIST_SYNC_DATA, err);
	if (rc) {
		if (w->keep)
			blob_writer_close(w);
		else
			blob_writer_abort(w);
		return rc;
	}
	io_close(w->f);
	*m = (struct blob_meta){ .id = w->id, .file_size = end + BLOB_FOOTER_LEN,
				 .value_cnt = w->value_cnt, .value_bytes = w->value_bytes };
	writer_free(w);
	return FR_OK;
}

fr_status blob_writer_flush(struct blob_writer *w, fr_error *err)
{
	return wflush(w, err);
}

fr_status blob_writer_sync(struct blob_writer *w, fr_error *err)
{
	fr_status rc = wflush(w, err);
	return rc ? rc : io_sync(w->f, FR_PERSIST_SYNC_DATA, err);
}

void blob_writer_writeback(struct blob_writer *w, uint64_t min)
{
	io_writeback_since(w->f, &w->wb_off, w->off, min);
}

void blob_writer_set_keep(struct blob_writer *w)
{
	w->keep = true;
}

void blob_writer_close(struct blob_writer *w)
{
	if (!w)
		return;
	io_close(w->f);
	writer_free(w);
}

fr_status blob_writer_resume(struct fr_io *io, const char *path, uint64_t id, bool compress,
			     const struct blob_meta *pre, struct blob_writer **out, fr_error *err)
{
	struct blob_writer *w;
	fr_status rc = writer_new(io, path, id, compress, IO_RDWR | IO_CREATE, &w, err);

	*out = NULL;
	if (rc)
		return rc;
	w->keep = true;
	/* a prefix without a whole header starts the file again */
	uint64_t end = pre->file_size >= BLOB_HDR_LEN ? pre->file_size : 0;
	rc = io_truncate(w->f, end, err);
	if (!rc && !end) {
		uint8_t hdr[BLOB_HDR_LEN];
		header_encode(hdr, id);
		rc = io_append(w->f, hdr, sizeof(hdr), err);
		end = BLOB_HDR_LEN;
	}
	if (!rc)
		rc = io_sync(w->f, FR_PERSIST_SYNC_DATA, err);
	if (rc) {
		blob_writer_close(w);
		return rc;
	}
	w->off = w->wb_off = end;
	w->value_cnt = end > BLOB_HDR_LEN ? pre->value_cnt : 0;
	w->value_bytes = end > BLOB_HDR_LEN ? pre->value_bytes : 0;
	*out = w;
	return FR_OK;
}

void blob_writer_abort(struct blob_writer *w)
{
	if (!w)
		return;
	io_close(w->f);
	io_unlink(w->io, w->path, NULL);
	writer_free(w);
}

/* ---- reading one value ---- */

/* Turns the stored bytes s of h into the value (s is consumed: returned or freed). */
static fr_status unpack(const char *path, const struct blob_handle *h, uint8_t *s, void **val,
			size_t *vlen, fr_error *err)
{
	if (fr_xxh3(s, h->stored_len) != h->cksum) {
		fr_free(s);
		return FR_CORRUPT(err, path, h->off, "blob value checksum mismatch");
	}
	if (h->stored_len == h->value_len) {
		*val = s;
		*vlen = h->value_len;
		return FR_OK;
	}
	uint8_t *v = fr_malloc(h->value_len ? h->value_len : 1);
	if (!v) {
		fr_free(s);
		return FR_ERR(err, FR_NOMEM, "blob value of %llu bytes",
			      (unsigned long long)h->value_len);
	}
	bool ok = fr_lz4_decompress(s, (size_t)h->stored_len, v, (size_t)h->value_len);
	fr_free(s);
	if (!ok) {
		fr_free(v);
		return FR_CORRUPT(err, path, h->off, "blob value does not decompress");
	}
	*val = v;
	*vlen = h->value_len;
	return FR_OK;
}

/* The end of a read of h's got stored bytes into s (rc: the read's status): a short read is a
 * handle past the end of what the file holds. */
static fr_status read_done(const char *path, const struct blob_handle *h, fr_status rc,
			   uint8_t *s, size_t got, void **val, size_t *vlen, fr_error *err)
{
	if (!rc && got != h->stored_len)
		rc = FR_CORRUPT(err, path, h->off, "blob value past the end of the file");
	if (rc) {
		fr_free(s);
		return rc;
	}
	return unpack(path, h, s, val, vlen, err);
}

/* The buffer the stored bytes of h are read into (*val is cleared first). */
static fr_status stored_buf(const struct blob_handle *h, uint8_t **s, void **val, fr_error *err)
{
	*val = NULL;
	*s = fr_malloc(h->stored_len ? h->stored_len : 1);
	if (!*s)
		return FR_ERR(err, FR_NOMEM, "blob value of %llu bytes",
			      (unsigned long long)h->stored_len);
	return FR_OK;
}

fr_status blob_read(struct fr_io *io, struct ftab *ft, const char *path,
		    const struct blob_handle *h, void **val, size_t *vlen, fr_error *err)
{
	uint8_t *s;
	size_t got = 0;
	fr_status rc = stored_buf(h, &s, val, err);

	if (rc)
		return rc;
	if (ft) {
		rc = ftab_pread(ft, h->file_id, path, s, h->stored_len, h->off, &got, err);
	} else {
		struct io_file *f;

		rc = io_open(io, path, IO_RDONLY, &f, err);
		if (!rc) {
			rc = io_pread(f, s, h->stored_len, h->off, &got, err);
			io_close(f);
		}
	}
	if (rc == FR_NOT_FOUND)
		rc = FR_CORRUPT(err, path, 0, "blob file of a live handle is missing");
	return read_done(path, h, rc, s, got, val, vlen, err);
}

fr_status blob_read_file(struct io_file *f, const char *path, const struct blob_handle *h,
			 void **val, size_t *vlen, fr_error *err)
{
	uint8_t *s;
	size_t got = 0;
	fr_status rc = stored_buf(h, &s, val, err);

	if (rc)
		return rc;
	rc = io_pread(f, s, h->stored_len, h->off, &got, err);
	return read_done(path, h, rc, s, got, val, vlen, err);
}

/* ---- scanning ---- */

/* A record's head, decoded (FORMAT.md §8.2). */
struct brec {
	size_t n;             /* head bytes: the two checksums and the three lengths */
	uint64_t klen, vlen, slen;
	uint64_t vcksum;      /* the stored value's checksum */
	uint64_t short_off;   /* BREC_SHORT: where the file ended */
};

/* What read_brec found at an offset. */
enum brec_state {
	BREC_WHOLE,     /* a record whose head checksum matches */
	BREC_SHORT,     /* the file ends before the bytes its size promised */
	BREC_BAD_HEAD,  /* the head does not decode */
	BREC_PAST_END,  /* its lengths run past the records */
	BREC_BAD_CKSUM, /* the head checksum does not match */
};

/* what blob_scan reports for a record that is not whole (BREC_SHORT: io_pread_exact's words) */
static const char *const brec_what[] = {
	[BREC_BAD_HEAD] = "bad blob record head",
	[BREC_PAST_END] = "blob record runs past the records",
	[BREC_BAD_CKSUM] = "blob record head checksum mismatch",
};

/* Reads the record at off of records ending at `end` into rec (head, key, stored value: the
 * key at rec->data + r->n) and checks its head; *st says what was found. Only I/O errors and
 * out of memory fail. Shared by the scan of a finished file and the valid prefix of an
 * unfinished one, which differ only in what they make of a record that is not whole. */
static fr_status read_brec(struct io_file *f, const char *path, uint64_t off, uint64_t end,
			   struct fr_buf *rec, struct brec *r, enum brec_state *st, fr_error *err)
{
	uint8_t head[REC_HEAD_MAX];
	size_t hn = end - off < sizeof(head) ? (size_t)(end - off) : sizeof(head);
	const uint8_t *p = head + 8, *e = head + hn;
	size_t got = 0;
	fr_status rc = io_pread(f, head, hn, off, &got, err);

	if (rc)
		return rc;
	if (got != hn) {
		r->short_off = off + got;
		*st = BREC_SHORT;
		return FR_OK;
	}
	if (hn < 8 + 3 + 8 || !dec_varint(&p, e, &r->klen) || !dec_varint(&p, e, &r->vlen) ||
	    !dec_varint(&p, e, &r->slen) || e - p < 8) {
		*st = BREC_BAD_HEAD;
		return FR_OK;
	}
	r->n = (size_t)(p + 8 - head);
	r->vcksum = dec_u64(p);
	uint64_t room = end - off - r->n;
	if (r->klen > room || r->slen > room - r->klen || r->slen > r->vlen ||
	    r->klen > SIZE_MAX / 4 || r->slen > SIZE_MAX / 4) {
		*st = BREC_PAST_END;
		return FR_OK;
	}
	size_t rlen = r->n + (size_t)(r->klen + r->slen);
	buf_clear(rec);
	if (buf_reserve(rec, rlen))
		return FR_ERR(err, FR_NOMEM, "scanning %s", path);
	/* the head is read already: only the key and the stored value are left */
	memcpy(rec->data, head, r->n);
	if (rlen > r->n) {
		rc = io_pread(f, rec->data + r->n, rlen - r->n, off + r->n, &got, err);
		if (rc)
			return rc;
		if (got != rlen - r->n) {
			r->short_off = off + r->n + got;
			*st = BREC_SHORT;
			return FR_OK;
		}
	}
	/* the head checksum covers the head's lengths, the value checksum and the key */
	*st = fr_xxh3(rec->data + 8, r->n - 8 + (size_t)r->klen) == dec_u64(head) ? BREC_WHOLE
										 : BREC_BAD_CKSUM;
	return FR_OK;
}

fr_status blob_scan(struct fr_io *io, const char *path, uint64_t id, blob_scan_fn fn, void *ctx,
		    struct blob_meta *m, fr_error *err)
{
	struct io_file *f;
	uint64_t size = 0, cnt = 0, vbytes = 0;
	uint8_t hdr[BLOB_HDR_LEN], foot[BLOB_FOOTER_LEN];
	struct fr_buf rec;
	fr_status rc;

	buf_init(&rec);
	rc = io_open(io, path, IO_RDONLY, &f, err);
	if (rc)
		return rc;
	rc = io_size(f, &size, err);
	if (rc)
		goto out;
	if (size < BLOB_HDR_LEN + BLOB_FOOTER_LEN) {
		rc = FR_CORRUPT(err, path, size, "blob file too short");
		goto out;
	}
	rc = io_pread_exact(f, path, hdr, sizeof(hdr), 0, err);
	if (!rc)
		rc = io_pread_exact(f, path, foot, sizeof(foot), size - BLOB_FOOTER_LEN, err);
	if (rc)
		goto out;
	if (dec_u32(hdr) != BLOB_MAGIC) {
		rc = FR_CORRUPT(err, path, 0, "bad blob file magic");
		goto out;
	}
	if (dec_u32(hdr + 4) != BLOB_VERSION) {
		rc = FR_CORRUPT(err, path, 4, "unknown blob file version");
		goto out;
	}
	if (dec_u64(hdr + 8) != id) {
		rc = FR_CORRUPT(err, path, 8, "blob file holds another file id");
		goto out;
	}
	uint64_t foff = size - BLOB_FOOTER_LEN;
	if (dec_u32(foot + 36) != BLOB_MAGIC) {
		rc = FR_CORRUPT(err, path, foff + 36, "bad blob footer magic (truncated file?)");
		goto out;
	}
	if (dec_u32(foot + 32) != BLOB_VERSION) {
		rc = FR_CORRUPT(err, path, foff + 32, "unknown blob footer version");
		goto out;
	}
	if (dec_u64(foot + 24) != fr_xxh3(foot, 24)) {
		rc = FR_CORRUPT(err, path, foff, "blob footer checksum mismatch");
		goto out;
	}
	if (dec_u64(foot + 8) != foff) {
		rc = FR_CORRUPT(err, path, foff + 8, "blob footer does not end the records");
		goto out;
	}
	uint64_t off = BLOB_HDR_LEN;
	while (off < foff) {
		struct brec r;
		enum brec_state st;

		rc = read_brec(f, path, off, foff, &rec, &r, &st, err);
		if (rc)
			goto out;
		if (st == BREC_SHORT) {
			rc = FR_CORRUPT(err, path, r.short_off, "file ends early");
			goto out;
		}
		if (st != BREC_WHOLE) {
			rc = FR_CORRUPT(err, path, off, brec_what[st]);
			goto out;
		}
		const uint8_t *kp = rec.data + r.n;
		struct blob_handle h = { .file_id = id, .off = off + r.n + r.klen,
					 .stored_len = r.slen, .value_len = r.vlen,
					 .cksum = r.vcksum };
		uint8_t *s = fr_memdup(kp + r.klen, (size_t)r.slen);
		void *v = NULL;
		size_t got = 0;
		if (!s && r.slen) {
			rc = FR_ERR(err, FR_NOMEM, "scanning %s", path);
			goto out;
		}
		if (!s)
			s = fr_malloc(1);
		rc = s ? unpack(path, &h, s, &v, &got, err) : FR_ERR(err, FR_NOMEM, "scanning");
		if (rc)
			goto out;
		if (fn)
			rc = fn(ctx, kp, (size_t)r.klen, v, got, &h);
		fr_free(v);
		if (rc)
			goto out;
		cnt++;
		vbytes += r.slen;
		off += r.n + r.klen + r.slen;
	}
	if (cnt != dec_u64(foot) || vbytes != dec_u64(foot + 16)) {
		rc = FR_CORRUPT(err, path, foff, "blob footer counts do not match the records");
		goto out;
	}
	if (m)
		*m = (struct blob_meta){ .id = id, .file_size = size, .value_cnt = cnt,
					 .value_bytes = vbytes };
out:
	io_close(f);
	buf_fini(&rec);
	return rc;
}

/* ---- the valid prefix of an unfinished file ---- */

fr_status blob_valid_prefix(struct io_file *f, const char *path, uint64_t id,
			    struct blob_meta *pre, fr_error *err)
{
	uint64_t size = 0;
	uint8_t hdr[BLOB_HDR_LEN];
	struct fr_buf rec;
	size_t got = 0;
	fr_status rc;

	*pre = (struct blob_meta){ .id = id };
	rc = io_size(f, &size, err);
	if (!rc && size >= BLOB_HDR_LEN)
		rc = io_pread(f, hdr, sizeof(hdr), 0, &got, err);
	if (rc)
		return rc;
	/* a torn or foreign header: nothing in the file can be trusted */
	if (size < BLOB_HDR_LEN || got != sizeof(hdr) || dec_u32(hdr) != BLOB_MAGIC ||
	    dec_u32(hdr + 4) != BLOB_VERSION || dec_u64(hdr + 8) != id)
		return FR_OK;
	buf_init(&rec);
	uint64_t off = BLOB_HDR_LEN, cnt = 0, vbytes = 0;
	while (off < size) {
		struct brec r;
		enum brec_state st;

		rc = read_brec(f, path, off, size, &rec, &r, &st, err);
		if (rc || st != BREC_WHOLE)
			break;
		if (fr_xxh3(rec.data + r.n + r.klen, (size_t)r.slen) != r.vcksum)
			break;
		cnt++;
		vbytes += r.slen;
		off += r.n + r.klen + r.slen;
	}
	buf_fini(&rec);
	if (rc)
		return rc;
	*pre = (struct blob_meta){ .id = id, .file_size = off, .value_cnt = cnt,
				   .value_bytes = vbytes };
	return FR_OK;
}
