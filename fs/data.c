/* SPDX-License-Identifier: MIT */
/*
 * data.c - file contents over the engine: inline payloads and fixed-size chunks in the data
 * keyspace (data.h, fs/SCHEMA.md §4). Every writer here keeps one invariant: no stored chunk
 * holds a byte at or beyond the file size, so a file that grows (truncate up, a write past a
 * hole) reads zeros there without any work. Writers only add operations to the caller's batch
 * and change the caller's struct fs_inode; they compute on local copies of size, flags and
 * payload and commit them to the struct only once every batch operation has been added, so a
 * failure leaves the inode as it was.
 *
 * Removing chunks: up to FSD_POINT_MAX chunks are removed with point removes (blind, a remove of
 * an absent key is harmless); more with one range delete. Range tombstones are costly for the
 * engine's point lookups today, so deleting thousands of small files must not add one each,
 * while a point remove per chunk of a huge file would flood the tree with tombstones.
 */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmap.h"
#include "schema.h"

/* The largest file size: keeps every offset and chunk number far from overflow. */
#define FSD_SIZE_MAX (1ULL << 62)
/* Remove at most this many chunks with point removes; more take one range delete. */
#define FSD_POINT_MAX 64
/* Reads spanning at most this many chunks use a get per chunk, longer ones an iterator. */
#define FSD_READ_GETS_MAX 4

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Number of chunks that hold bytes of a file of `size` bytes. */
static uint64_t chunk_cnt(const struct fsd *d, uint64_t size)
{
	return size / d->chunk_size + (size % d->chunk_size != 0);
}

/* A negative errno for a failed engine call. */
static int engine_err(fr_status st, const fr_error *err, const char *what)
{
	fr_error none = {.code = st};
	int e = fs_errno(st, err ? err : &none, what);
	return e > 0 ? -e : -EIO;
}

static int corrupt_chunk(uint64_t ino, uint64_t n, size_t len, uint32_t cs)
{
	fprintf(stderr, "fractiofs: inode %llu chunk %llu: %zu bytes, more than the chunk size"
		" %u\n", (unsigned long long)ino, (unsigned long long)n, len, cs);
	return -EIO;
}

/* The exclusive upper bound of every chunk key of ino: key(ino + 1, 0), or for the largest ino
 * key(ino, UINT64_MAX) followed by one more byte. Returns the key length. */
static size_t chunk_key_end(uint64_t ino, uint8_t out[FSS_CHUNK_KEY_LEN + 1])
{
	if (ino < UINT64_MAX) {
		fss_chunk_key(ino + 1, 0, out);
		return FSS_CHUNK_KEY_LEN;
	}
	fss_chunk_key(ino, UINT64_MAX, out);
	out[FSS_CHUNK_KEY_LEN] = 0;
	return FSS_CHUNK_KEY_LEN + 1;
}

/* Adds the removal of chunks [first, end) of ino to b: point removes for a few, else one range
 * delete, which with to_end reaches past `end` to the last possible chunk key of ino (for
 * callers that remove everything from `first` on). */
static int remove_chunks(const struct fsd *d, uint64_t ino, fr_batch *b, uint64_t first,
			 uint64_t end, bool to_end)
{
	uint8_t key[FSS_CHUNK_KEY_LEN], hi[FSS_CHUNK_KEY_LEN + 1];
	fr_status st = FR_OK;

	if (first >= end)
		return 0;
	if (end - first <= FSD_POINT_MAX) {
		for (uint64_t n = first; n < end && st == FR_OK; n++) {
			fss_chunk_key(ino, n, key);
			st = fr_batch_remove(b, d->data, key, sizeof(key));
		}
	} else {
		size_t hi_len = FSS_CHUNK_KEY_LEN;
		if (to_end)
			hi_len = chunk_key_end(ino, hi);
		else
			fss_chunk_key(ino, end, hi);
		fss_chunk_key(ino, first, key);
		st = fr_batch_delete_range(b, d->data, key, sizeof(key), hi, hi_len);
	}
	return st == FR_OK ? 0 : engine_err(st, NULL, "data remove");
}

/*
 * The bytes of chunk n of a file whose current contents are `inl` ? `payload` : the stored
 * chunks, and whose size is `size`: copies them to buf (chunk_size bytes) and sets *len, the
 * count of meaningful bytes (the rest reads as zeros). Bytes at or beyond `size` are ignored.
 */
static int chunk_load(const struct fsd *d, const struct fs_inode *in, bool inl, uint64_t size,
		      uint64_t n, uint8_t *buf, size_t *len)
{
	uint64_t cstart = n * d->chunk_size;
	uint64_t want = size > cstart ? min64(d->chunk_size, size - cstart) : 0;
	uint8_t key[FSS_CHUNK_KEY_LEN];
	fr_error err;
	void *val = NULL;
	size_t vlen = 0;

	*len = 0;
	if (!want)
		return 0;
	if (inl) {
		size_t have = in->payload_len > cstart ? in->payload_len - cstart : 0;
		size_t cp = (size_t)min64(want, have);
		if (cp)
			memcpy(buf, (const uint8_t *)in->payload + cstart, cp);
		memset(buf + cp, 0, want - cp);
		*len = (size_t)want;
		return 0;
	}
	fss_chunk_key(in->ino, n, key);
	fr_status st = fr_get(d->data, key, sizeof(key), &val, &vlen, &err);
	if (st == FR_NOT_FOUND)
		return 0;
	if (st != FR_OK)
		return engine_err(st, &err, "data read");
	if (vlen > d->chunk_size) {
		fr_free(val);
		return corrupt_chunk(in->ino, n, vlen, d->chunk_size);
	}
	*len = (size_t)min64(vlen, want);
	memcpy(buf, val, *len);
	fr_free(val);
	return 0;
}

/* The file range [off, end) being read into out, and how far from off it is written. Chunks
 * arrive in ascending order: what lies between them (holes, short chunks) is zeroed as they
 * come, so no byte of out is written twice. */
struct read_out {
	uint8_t *out;
	uint64_t off, end, filled;
};

/* Copies the overlap of chunk c's stored bytes v[0..vlen) with the range to ro, zeroing the
 * gap before it. */
static void copy_overlap(uint32_t cs, uint64_t c, const uint8_t *v, size_t vlen,
			 struct read_out *ro)
{
	uint64_t cstart = c * cs;
	uint64_t from = max64(ro->off, cstart), to = min64(ro->end, cstart + vlen);
	if (from >= to)
		return;
	if (from > ro->filled)
		memset(ro->out + (ro->filled - ro->off), 0, from - ro->filled);
	memcpy(ro->out + (from - ro->off), v + (from - cstart), to - from);
	ro->filled = max64(ro->filled, to);
}

/* Reads chunks [first, last] with one get each into ro. */
static int read_gets(const struct fsd *d, const struct fs_inode *in, uint64_t first,
		     uint64_t last, struct read_out *ro)
{
	uint8_t key[FSS_CHUNK_KEY_LEN];
	fr_error err;

	for (uint64_t c = first; c <= last; c++) {
		void *v;
		size_t vlen;
		fss_chunk_key(in->ino, c, key);
		fr_status st = fr_get(d->data, key, sizeof(key), &v, &vlen, &err);
		if (st == FR_NOT_FOUND)
			continue;
		if (st != FR_OK)
			return engine_err(st, &err, "data read");
		if (vlen > d->chunk_size) {
			fr_free(v);
			return corrupt_chunk(in->ino, c, vlen, d->chunk_size);
		}
		copy_overlap(d->chunk_size, c, v, vlen, ro);
		fr_free(v);
	}
	return 0;
}

/* Reads chunks [first, last] with one iterator over [key(ino, first), key(ino, last + 1)) into
 * ro. */
static int read_iter(const struct fsd *d, const struct fs_inode *in, uint64_t first,
		     uint64_t last, struct read_out *ro)
{
	uint8_t lo_key[FSS_CHUNK_KEY_LEN], hi_key[FSS_CHUNK_KEY_LEN];
	fr_iter *it = NULL;
	fr_error err;
	int rc = 0;

	fss_chunk_key(in->ino, first, lo_key);
	fss_chunk_key(in->ino, last + 1, hi_key);
	fr_iter_options o = {.lower = lo_key, .lower_len = sizeof(lo_key), .upper = hi_key,
			     .upper_len = sizeof(hi_key)};
	fr_status st = fr_iter_open(d->data, &o, &it, &err);
	if (st != FR_OK)
		return engine_err(st, &err, "data read");
	while (fr_iter_valid(it)) {
		size_t klen, vlen;
		const void *k = fr_iter_key(it, &klen);
		const uint8_t *v = fr_iter_value(it, &vlen);
		uint64_t kino, c;

		if (fss_chunk_key_decode(k, klen, &kino, &c) || kino != in->ino || c < first ||
		    c > last) {
			fprintf(stderr, "fractiofs: inode %llu: bad key in the data keyspace\n",
				(unsigned long long)in->ino);
			rc = -EIO;
			goto out;
		}
		if (vlen > d->chunk_size) {
			rc = corrupt_chunk(in->ino, c, vlen, d->chunk_size);
			goto out;
		}
		copy_overlap(d->chunk_size, c, v, vlen, ro);
		st = fr_iter_next(it, &err);
		if (st != FR_OK) {
			rc = engine_err(st, &err, "data read");
			goto out;
		}
	}
out:
	fr_iter_close(it);
	return rc;
}

/*
 * A get per chunk for reads of up to FSD_READ_GETS_MAX chunks, one iterator for longer ones;
 * chosen by measurement (RelWithDebInfo, 8 files, memtable and flushed tables, shared 2-core
 * machine, so +-30% noise): with 64 KiB chunks a 128 KiB read took 21-47 us with gets and 30-53
 * us with an iterator, and a sparse 8-chunk range 13-15 us against 19-29 us (absent chunks cost
 * little: bloom filters); with 4 KiB chunks a 32-chunk read took 57-125 us with gets and 44-85
 * us with an iterator. Opening an iterator has a fixed cost that only pays back over many small
 * chunks. The iterator reads one state of the store; the gets read each chunk at its own
 * moment, so a read racing a commit to the same range may mix old and new chunks (callers that
 * need more take the inode lock).
 */
ssize_t fsd_read(const struct fsd *d, const struct fs_inode *in, uint64_t off, void *buf,
		 size_t len)
{
	const uint32_t cs = d->chunk_size;
	uint8_t *out = buf;

	if (off >= in->size || !len)
		return 0;
	uint64_t n = min64(min64(len, in->size - off), SSIZE_MAX);
	uint64_t end = off + n;

	if (in->flags & FSI_INLINE) {
		size_t have = in->payload_len > off ? (size_t)min64(in->payload_len - off, n) : 0;
		if (have)
			memcpy(out, (const uint8_t *)in->payload + off, have);
		memset(out + have, 0, n - have);
		return (ssize_t)n;
	}

	struct read_out ro = {.out = out, .off = off, .end = end, .filled = off};
	uint64_t first = off / cs, last = (end - 1) / cs;
	int rc = last - first < FSD_READ_GETS_MAX ? read_gets(d, in, first, last, &ro)
						 : read_iter(d, in, first, last, &ro);
	if (rc)
		return rc;
	memset(out + (ro.filled - off), 0, end - ro.filled); /* the tail past the last chunk */
	return (ssize_t)n;
}

/* Adds puts of chunks [0, chunk_cnt(size)) holding an inline file's payload. */
static int payload_to_chunks(const struct fsd *d, const struct fs_inode *in, fr_batch *b,
			     uint64_t size, uint64_t skip_first, uint64_t skip_last,
			     uint8_t *tmp)
{
	uint8_t key[FSS_CHUNK_KEY_LEN];
	uint64_t cnt = chunk_cnt(d, size);

	for (uint64_t n = 0; n < cnt; n++) {
		size_t clen;
		if (n >= skip_first && n <= skip_last)
			continue;
		int rc = chunk_load(d, in, true, size, n, tmp, &clen);
		if (rc)
			return rc;
		fss_chunk_key(in->ino, n, key);
		fr_status st = fr_batch_put(b, d->data, key, sizeof(key), tmp, clen);
		if (st != FR_OK)
			return engine_err(st, NULL, "data write");
	}
	return 0;
}

int fsd_write_whole(const struct fsd *d, uint64_t ino, fr_batch *b, uint64_t off,
		    const void *buf, size_t len, struct fsd_whole *w)
{
	const uint32_t cs = d->chunk_size;
	uint8_t key[FSS_CHUNK_KEY_LEN];

	w->first = w->end = 0;
	if (!len || off > FSD_SIZE_MAX || len > FSD_SIZE_MAX - off || off + len <= d->inline_max)
		return 0;
	uint64_t first = off / cs + (off % cs != 0), end = (off + len) / cs;
	for (uint64_t n = first; n < end; n++) {
		fss_chunk_key(ino, n, key);
		fr_status st = fr_batch_put(b, d->data, key, sizeof(key),
					    (const uint8_t *)buf + (n * cs - off), cs);
		if (st != FR_OK)
			return engine_err(st, NULL, "data write");
	}
	if (first < end) {
		w->first = first;
		w->end = end;
	}
	return 0;
}

int fsd_write(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
	      const void *buf, size_t len)
{
	const struct fsd_whole none = {0, 0};

	return fsd_write_rest(d, in, b, off, buf, len, &none);
}

int fsd_write_rest(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
		   const void *buf, size_t len, const struct fsd_whole *w)
{
	const uint32_t cs = d->chunk_size;
	const uint8_t *src = buf;
	uint8_t key[FSS_CHUNK_KEY_LEN];
	uint8_t *tmp = NULL;
	int rc = 0;

	if (!len)
		return 0;
	if (off > FSD_SIZE_MAX || len > FSD_SIZE_MAX - off)
		return -EFBIG;
	uint64_t end = off + len;
	uint64_t size = max64(in->size, end);
	bool inl = in->flags & FSI_INLINE;

	if (inl && size <= d->inline_max) {
		/* stays inline: build the new payload */
		tmp = malloc(size);
		if (!tmp)
			return -ENOMEM;
		size_t have = (size_t)min64(in->payload_len, in->size);
		if (have)
			memcpy(tmp, in->payload, have);
		memset(tmp + have, 0, size - have);
		memcpy(tmp + off, src, len);
		rc = fss_inode_set_payload(in, tmp, size);
		if (!rc)
			in->size = size;
		goto out;
	}

	tmp = malloc(cs);
	if (!tmp)
		return -ENOMEM;
	uint64_t first = off / cs, last = (end - 1) / cs;
	for (uint64_t n = first; n <= last; n++) {
		uint64_t cstart = n * cs;
		if (n >= w->first && n < w->end)
			continue; /* put by fsd_write_whole */
		size_t lo = n == first ? off - cstart : 0;
		size_t hi = n == last ? end - cstart : cs;
		const uint8_t *p = src + (cstart + lo - off);
		const void *val = p;
		size_t vlen = cs;
		fr_status st;

		if (lo || hi < cs) {
			/* partial: read-modify-write (the old bytes come from the payload when
			 * converting) */
			size_t olen;
			rc = chunk_load(d, in, inl, in->size, n, tmp, &olen);
			if (rc)
				goto out;
			if (lo > olen)
				memset(tmp + olen, 0, lo - olen);
			memcpy(tmp + lo, p, hi - lo);
			val = tmp;
			vlen = olen > hi ? olen : hi;
		}
		fss_chunk_key(in->ino, n, key);
		st = fr_batch_put(b, d->data, key, sizeof(key), val, vlen);
		if (st != FR_OK) {
			rc = engine_err(st, NULL, "data write");
			goto out;
		}
	}
	if (inl) {
		/* converting: the payload's chunks that the write did not touch */
		rc = payload_to_chunks(d, in, b, in->size, first, last, tmp);
		if (rc)
			goto out;
		rc = fss_inode_set_payload(in, NULL, 0);
		if (rc)
			goto out;
		in->flags &= ~FSI_INLINE;
	}
	in->size = size;
out:
	free(tmp);
	return rc;
}

int fsd_truncate(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t size)
{
	const uint32_t cs = d->chunk_size;
	uint8_t *tmp = NULL;
	int rc = 0;

	if (size > FSD_SIZE_MAX)
		return -EFBIG;
	if (size == in->size && (size || (in->flags & FSI_INLINE)))
		return 0;

	if (size == 0) {
		if (!(in->flags & FSI_INLINE)) {
			rc = remove_chunks(d, in->ino, b, 0, chunk_cnt(d, in->size), true);
			if (rc)
				return rc;
		}
		rc = fss_inode_set_payload(in, NULL, 0);
		if (rc)
			return rc;
		in->flags |= FSI_INLINE;
		in->size = 0;
		return 0;
	}

	if (in->flags & FSI_INLINE) {
		if (size > d->inline_max) {
			/* grows out of inline storage: the existing bytes become chunks, the rest
			 * is a hole */
			tmp = malloc(cs);
			if (!tmp)
				return -ENOMEM;
			rc = payload_to_chunks(d, in, b, in->size, 1, 0, tmp);
			if (!rc)
				rc = fss_inode_set_payload(in, NULL, 0);
			if (rc)
				goto out;
			in->flags &= ~FSI_INLINE;
			in->size = size;
			goto out;
		}
		/* a copy: the payload is replaced by a copy of its own prefix or a padding */
		tmp = malloc(size);
		if (!tmp)
			return -ENOMEM;
		size_t have = (size_t)min64(min64(in->payload_len, in->size), size);
		if (have)
			memcpy(tmp, in->payload, have);
		memset(tmp + have, 0, size - have);
		rc = fss_inode_set_payload(in, tmp, size);
		if (!rc)
			in->size = size;
		goto out;
	}

	if (size > in->size) {
		/* a hole: nothing is stored at or past the old size */
		in->size = size;
		return 0;
	}

	/* shrinking a chunked file: drop whole chunks past the end, trim the new last one */
	rc = remove_chunks(d, in->ino, b, chunk_cnt(d, size), chunk_cnt(d, in->size), true);
	if (rc)
		return rc;
	if (size % cs) {
		uint64_t n = size / cs;
		size_t olen;
		tmp = malloc(cs);
		if (!tmp)
			return -ENOMEM;
		rc = chunk_load(d, in, false, in->size, n, tmp, &olen);
		if (rc)
			goto out;
		if (olen > size % cs) {
			uint8_t key[FSS_CHUNK_KEY_LEN];
			fss_chunk_key(in->ino, n, key);
			fr_status st = fr_batch_put(b, d->data, key, sizeof(key), tmp, size % cs);
			if (st != FR_OK) {
				rc = engine_err(st, NULL, "data truncate");
				goto out;
			}
		}
	}
	in->size = size;
out:
	free(tmp);
	return rc;
}

int fsd_punch(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
	      uint64_t len)
{
	const uint32_t cs = d->chunk_size;
	uint8_t key[FSS_CHUNK_KEY_LEN];
	uint8_t *tmp = NULL;
	int rc = 0;

	if (off >= in->size || !len)
		return 0;
	uint64_t end = len > in->size - off ? in->size : off + len;

	if (in->flags & FSI_INLINE) {
		/* in place: cannot fail */
		if (in->payload_len > off)
			memset((uint8_t *)in->payload + off, 0, min64(end, in->payload_len) - off);
		return 0;
	}

	/* Only the first and the last chunk can be partly covered; a chunk is whole when the
	 * range covers all of it that lies before the end of the file. */
	uint64_t first = off / cs, last = (end - 1) / cs;
	uint64_t wfirst = first, wend = last + 1; /* whole chunks [wfirst, wend) */
	for (int side = 0; side < 2; side++) {
		uint64_t n = side ? last : first;
		if (side && last == first)
			break;
		uint64_t cstart = n * cs;
		size_t lo = n == first ? off - cstart : 0;
		size_t hi = n == last ? end - cstart : cs;
		size_t stored_max = (size_t)min64(cs, in->size - cstart);
		if (lo == 0 && hi >= stored_max)
			continue;
		if (n == first)
			wfirst = first + 1;
		if (n == last)
			wend = last;
		if (!tmp) {
			tmp = malloc(cs);
			if (!tmp)
				return -ENOMEM;
		}
		size_t olen;
		rc = chunk_load(d, in, false, in->size, n, tmp, &olen);
		if (rc)
			goto out;
		if (lo >= olen)
			continue; /* nothing stored in the range */
		fr_status st;
		fss_chunk_key(in->ino, n, key);
		if (hi >= olen) { /* the stored tail becomes zeros: keep the prefix only */
			st = lo ? fr_batch_put(b, d->data, key, sizeof(key), tmp, lo)
				: fr_batch_remove(b, d->data, key, sizeof(key));
		} else {
			memset(tmp + lo, 0, hi - lo);
			st = fr_batch_put(b, d->data, key, sizeof(key), tmp, olen);
		}
		if (st != FR_OK) {
			rc = engine_err(st, NULL, "data punch");
			goto out;
		}
	}
	rc = remove_chunks(d, in->ino, b, wfirst, wend, false);
out:
	free(tmp);
	return rc;
}

int fsd_seek(const struct fsd *d, const struct fs_inode *in, uint64_t off, int whence,
	     uint64_t *out)
{
	const uint32_t cs = d->chunk_size;
	uint8_t lo_key[FSS_CHUNK_KEY_LEN], hi_key[FSS_CHUNK_KEY_LEN];
	fr_iter *it = NULL;
	fr_error err;
	int rc = 0;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= in->size)
		return -ENXIO;
	if (in->flags & FSI_INLINE) {
		*out = whence == SEEK_DATA ? off : in->size;
		return 0;
	}

	/* the chunks from the one holding off to the last one inside the file */
	uint64_t n = off / cs;
	fss_chunk_key(in->ino, n, lo_key);
	fss_chunk_key(in->ino, chunk_cnt(d, in->size), hi_key);
	fr_iter_options o = {.lower = lo_key, .lower_len = sizeof(lo_key), .upper = hi_key,
			     .upper_len = sizeof(hi_key), .prefix = lo_key, .prefix_len = 8};
	fr_status st = fr_iter_open(d->data, &o, &it, &err);
	if (st != FR_OK) {
		it = NULL;
		rc = engine_err(st, &err, "data seek");
		goto out;
	}
	/* Data: the whole slot of a stored chunk, clipped to the size. SEEK_DATA finds the
	 * first stored chunk; SEEK_HOLE the first slot after a run of stored chunks that
	 * starts at n. */
	while (fr_iter_valid(it)) {
		size_t klen;
		const void *k = fr_iter_key(it, &klen);
		uint64_t kino, c;
		if (fss_chunk_key_decode(k, klen, &kino, &c) || kino != in->ino || c < n) {
			fprintf(stderr, "fractiofs: inode %llu: bad key in the data keyspace\n",
				(unsigned long long)in->ino);
			rc = -EIO;
			goto out;
		}
		if (whence == SEEK_DATA) {
			*out = max64(off, c * cs);
			goto out;
		}
		if (c != n)
			break;
		n++;
		st = fr_iter_next(it, &err);
		if (st != FR_OK) {
			rc = engine_err(st, &err, "data seek");
			goto out;
		}
	}
	if (whence == SEEK_DATA)
		rc = -ENXIO;
	else
		*out = min64(in->size, max64(off, n * cs));
out:
	fr_iter_close(it);
	return rc;
}

int fsd_drop(const struct fsd *d, const struct fs_inode *in, fr_batch *b)
{
	/* only chunked regular files own chunks */
	if (!S_ISREG(in->mode) || (in->flags & FSI_INLINE))
		return 0;
	return remove_chunks(d, in->ino, b, 0, chunk_cnt(d, in->size), true);
}
