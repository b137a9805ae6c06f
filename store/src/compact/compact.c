/* SPDX-License-Identifier: MIT */
/* compact.c - the output side of flushes and compactions (see compact.h for the rules). */
#include "compact/compact.h"

#include <limits.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/sync.h"
#include "blob/blob.h"
#include "io/io.h"
#include "compact/rdset.h"
#include "version/version.h"

struct out_state {
	struct compact_job *j;
	struct sst_writer *w;
	struct fr_buf start;    /* first user key of the open table */
	bool start_unbounded;   /* the open table is the first: it starts at -inf */
	uint64_t added;         /* entries and tombstones in the open table */
	size_t cap;
	struct blob_writer *bw; /* the open output blob file */
	size_t blob_cap;
	struct sst_blob_ref *refs; /* what the open table refers to, ascending by file id */
	size_t ref_cnt, ref_cap;
	struct fr_buf ik;       /* an input key with its type changed */
};

/* index of the stripe of seqno: the first live snapshot >= seqno, or snap_cnt for "latest" */
static size_t stripe_of(const struct compact_job *j, uint64_t seqno)
{
	size_t lo = 0, hi = j->snap_cnt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (j->snaps[mid] >= seqno)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static uint64_t stripe_top(const struct compact_job *j, size_t s)
{
	return s < j->snap_cnt ? j->snaps[s] : UINT64_MAX;
}

static fr_status out_open(struct out_state *o, fr_error *err)
{
	struct compact_job *j = o->j;
	char path[PATH_MAX];
	uint64_t id = vset_new_file_id(j->vs);
	vset_table_path(j->vs, id, path, sizeof(path));
	return sst_writer_open(j->io, path, id, &j->opts, &o->w, err);
}

/* Adds the tombstones that must survive, clipped to [start, end) (end NULL: unbounded). */
static fr_status out_add_range_dels(struct out_state *o, const uint8_t *end, size_t end_len,
				    fr_error *err)
{
	struct compact_job *j = o->j;
	const struct range_del *all;
	size_t n = rdset_all(j->rds, &all);
	for (size_t i = 0; i < n; i++) {
		struct range_del rd = all[i];
		if (j->bottom && stripe_of(j, rd.seqno) == 0)
			continue; /* nothing older is left to hide */
		if (!o->start_unbounded &&
		    bytes_cmp(rd.start, rd.start_len, o->start.data, o->start.len) < 0) {
			rd.start = o->start.data;
			rd.start_len = o->start.len;
		}
		if (end && bytes_cmp(rd.end, rd.end_len, end, end_len) > 0) {
			rd.end = end;
			rd.end_len = end_len;
		}
		if (bytes_cmp(rd.start, rd.start_len, rd.end, rd.end_len) >= 0)
			continue;
		fr_status rc = sst_writer_add_range_del(o->w, &rd, err);
		if (rc)
			return rc;
		o->added++;
	}
	return FR_OK;
}

static fr_status out_finish(struct out_state *o, const uint8_t *end, size_t end_len,
			    fr_error *err)
{
	struct compact_job *j = o->j;
	fr_status rc = out_add_range_dels(o, end, end_len, err);
	if (rc)
		return rc;
	if (o->added == 0) {
		/* a table needs an entry or a tombstone; none survived, so drop it */
		sst_writer_abort(o->w);
		o->w = NULL;
		return FR_OK;
	}
	if (j->out_cnt == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 4;
		struct sst_meta *m = fr_realloc(j->outs, cap * sizeof(*m));
		if (!m)
			return FR_ERR(err, FR_NOMEM, "compaction output list");
		j->outs = m;
		o->cap = cap;
	}
	struct sst_writer *w = o->w;
	o->w = NULL;
	o->added = 0;
	rc = sst_writer_finish(w, &j->outs[j->out_cnt], err);
	if (rc)
		return rc;
	struct sst_meta *m = &j->outs[j->out_cnt];
	m->blob_refs = o->refs; /* the table's references move to its metadata */
	m->blob_ref_cnt = o->ref_cnt;
	o->refs = NULL;
	o->ref_cnt = o->ref_cap = 0;
	j->bytes_written += m->file_size;
	j->out_cnt++;
	return FR_OK;
}

void compact_job_delete_outputs(struct compact_job *j)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < j->out_cnt; i++) {
		vset_table_path(j->vs, j->outs[i].id, path, sizeof(path));
		io_unlink(j->io, path, NULL);
	}
	for (size_t i = 0; i < j->blob_out_cnt; i++) {
		vset_blob_path(j->vs, j->blob_outs[i].id, path, sizeof(path));
		io_unlink(j->io, path, NULL);
	}
}

static void delete_outputs(struct compact_job *j)
{
	compact_job_delete_outputs(j);
	compact_job_fini(j);
}

/* ---- blob values ---- */

static bool is_reloc(const struct compact_job *j, uint64_t id)
{
	size_t lo = 0, hi = j->blob_reloc_cnt;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (j->blob_reloc[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->blob_reloc_cnt && j->blob_reloc[lo] == id;
}

/* Counts bytes of blob file id as referred to by the open table. */
static fr_status ref_add(struct out_state *o, uint64_t id, uint64_t bytes)
{
	size_t i = o->ref_cnt;
	while (i > 0 && o->refs[i - 1].file_id > id)
		i--;
	if (i > 0 && o->refs[i - 1].file_id == id) {
		o->refs[i - 1].bytes += bytes;
		return FR_OK;
	}
	if (o->ref_cnt == o->ref_cap) {
		size_t cap = o->ref_cap ? o->ref_cap * 2 : 4;
		struct sst_blob_ref *a = fr_realloc(o->refs, cap * sizeof(*a));
		if (!a)
			return FR_NOMEM;
		o->refs = a;
		o->ref_cap = cap;
	}
	memmove(o->refs + i + 1, o->refs + i, (o->ref_cnt - i) * sizeof(*o->refs));
	o->refs[i] = (struct sst_blob_ref){ id, bytes };
	o->ref_cnt++;
	return FR_OK;
}

static fr_status blob_finish(struct out_state *o, fr_error *err)
{
	struct compact_job *j = o->j;
	if (j->blob_out_cnt == o->blob_cap) {
		size_t cap = o->blob_cap ? o->blob_cap * 2 : 4;
		struct blob_meta *m = fr_realloc(j->blob_outs, cap * sizeof(*m));
		if (!m)
			return FR_ERR(err, FR_NOMEM, "compaction output list");
		j->blob_outs = m;
		o->blob_cap = cap;
	}
	struct blob_writer *w = o->bw;
	o->bw = NULL;
	fr_status rc = blob_writer_finish(w, &j->blob_outs[j->blob_out_cnt], err);
	if (rc)
		return rc;
	j->bytes_written += j->blob_outs[j->blob_out_cnt].file_size;
	j->blob_bytes_written += j->blob_outs[j->blob_out_cnt].file_size;
	j->blob_out_cnt++;
	return FR_OK;
}

/* Writes a value to the open output blob file (opening one first if needed). */
static fr_status blob_put(struct out_state *o, const uint8_t *ik, size_t iklen, const void *val,
			  size_t vlen, struct blob_handle *h, fr_error *err)
{
	struct compact_job *j = o->j;
	fr_status rc;
	if (!o->bw) {
		char path[PATH_MAX];
		uint64_t id = vset_new_file_id(j->vs);
		vset_blob_path(j->vs, id, path, sizeof(path));
		rc = blob_writer_open(j->io, path, id, j->blob_compress, &o->bw, err);
		if (rc)
			return rc;
	}
	rc = blob_writer_add(o->bw, ik, ikey_user_len(iklen), val, vlen, h, err);
	if (!rc)
		rc = ref_add(o, h->file_id, h->stored_len)
			     ? FR_ERR(err, FR_NOMEM, "compaction blob references")
			     : FR_OK;
	if (!rc && blob_writer_size(o->bw) >= j->blob_file_target)
		rc = blob_finish(o, err);
	return rc;
}

/* ik with its type changed to `type`, in o->ik. */
static const uint8_t *retype(struct out_state *o, const uint8_t *ik, size_t iklen, uint8_t type)
{
	buf_clear(&o->ik);
	if (buf_append(&o->ik, ik, iklen))
		return NULL;
	enc_u64(o->ik.data + iklen - IKEY_TRAILER_LEN,
		ikey_pack(ikey_seqno(ik, iklen), type));
	return o->ik.data;
}

/* Adds one kept entry to the open table, moving its value into or between blob files as the
 * job says (see compact.h). */
static fr_status out_add(struct out_state *o, const uint8_t *ik, size_t iklen, const uint8_t *val,
			 size_t vlen, fr_error *err)
{
	struct compact_job *j = o->j;
	uint8_t type = ikey_type(ik, iklen);
	void *owned = NULL;
	fr_status rc;
	if (type == VT_BLOB) {
		struct blob_handle h;
		if (!blob_handle_decode(val, vlen, &h))
			return FR_CORRUPT(err, "compaction input", 0, "malformed blob handle");
		if (!j->blob_src || !is_reloc(j, h.file_id)) {
			if (ref_add(o, h.file_id, h.stored_len))
				return FR_ERR(err, FR_NOMEM, "compaction blob references");
			return sst_writer_add(o->w, ik, iklen, val, vlen, err);
		}
		size_t n = 0;
		rc = tv_blob_read(j->blob_src, val, vlen, &owned, &n, err);
		if (rc)
			return rc;
		j->blob_relocated++;
		val = owned;
		vlen = n;
		type = VT_PUT;
		if (!j->blob_threshold || vlen < j->blob_threshold) {
			/* separation was turned off or raised since: the value goes back inline */
			const uint8_t *k = retype(o, ik, iklen, VT_PUT);
			rc = k ? sst_writer_add(o->w, k, iklen, val, vlen, err)
			       : FR_ERR(err, FR_NOMEM, "compaction");
			fr_free(owned);
			return rc;
		}
	}
	if (type == VT_PUT && j->blob_threshold && vlen >= j->blob_threshold) {
		struct blob_handle h;
		uint8_t hb[BLOB_HANDLE_MAX];
		rc = blob_put(o, ik, iklen, val, vlen, &h, err);
		fr_free(owned);
		if (rc)
			return rc;
		size_t hn = blob_handle_encode(&h, hb);
		const uint8_t *k = retype(o, ik, iklen, VT_BLOB);
		if (!k)
			return FR_ERR(err, FR_NOMEM, "compaction");
		return sst_writer_add(o->w, k, iklen, hb, hn, err);
	}
	rc = sst_writer_add(o->w, ik, iklen, val, vlen, err);
	fr_free(owned);
	return rc;
}

/* The weak tombstones of one key and stripe that found no value to cancel in the stripe. */
struct weak_pend {
	uint64_t *seqnos; /* newest first */
	size_t cnt, cap;
	size_t stripe;
	struct fr_buf ik;
};

static fr_status weak_push(struct weak_pend *w, uint64_t seqno)
{
	if (w->cnt == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4;
		uint64_t *a = fr_realloc(w->seqnos, cap * sizeof(*a));
		if (!a)
			return FR_NOMEM;
		w->seqnos = a;
		w->cap = cap;
	}
	w->seqnos[w->cnt++] = seqno;
	return FR_OK;
}

/* Writes the pending weak tombstones of user key k: they must still cancel an older value
 * below this input (none is left below the bottom's oldest stripe). */
static fr_status weak_flush(struct out_state *o, struct weak_pend *w, const uint8_t *k,
			    size_t klen, fr_error *err)
{
	size_t n = w->cnt;
	w->cnt = 0;
	if (!n || (o->j->bottom && w->stripe == 0))
		return FR_OK;
	buf_clear(&w->ik);
	if (buf_reserve(&w->ik, klen + IKEY_TRAILER_LEN))
		return FR_ERR(err, FR_NOMEM, "compaction");
	for (size_t i = 0; i < n; i++) {
		fr_status rc;
		if (!o->w && (rc = out_open(o, err)))
			return rc;
		ikey_encode(w->ik.data, k, klen, w->seqnos[i], VT_WEAK_DEL);
		rc = sst_writer_add(o->w, w->ik.data, klen + IKEY_TRAILER_LEN, NULL, 0, err);
		if (rc)
			return rc;
		o->added++;
	}
	return FR_OK;
}

fr_status compact_run(struct compact_job *j, fr_error *err)
{
	struct out_state o = {.j = j, .start_unbounded = true};
	struct fr_buf cur; /* current user key */
	buf_init(&cur);
	buf_init(&o.start);
	bool have_key = false;
	/* The stripe being resolved. Its versions, newest first, are resolved as readers do: a
	 * weak tombstone cancels the next value (both go; weak tombstones left over are kept, by
	 * weak_flush); the first tombstone, or value no weak tombstone cancels, is kept and hides
	 * the rest. Except below a kept value: a newer weak tombstone may cancel it, and must
	 * then meet what it hid, so resolving goes on down to a tombstone, keeping it and the
	 * weak tombstones that cancel older stripes' values. */
	size_t stripe = SIZE_MAX;
	bool decided = false;
	bool put_kept = false; /* the stripe's newest value is written */
	struct weak_pend weak = {0};
	buf_init(&weak.ik);
	fr_status rc = FR_OK;
	struct kv_iter *in = j->input;

	j->outs = NULL;
	j->out_cnt = 0;
	j->blob_outs = NULL;
	j->blob_out_cnt = 0;
	j->bytes_read = j->bytes_written = j->blob_bytes_written = j->blob_relocated = 0;
	buf_init(&o.ik);
	uint64_t n_in = 0;
	for (kv_seek_first(in); in->valid; kv_next(in)) {
		if ((++n_in & 1023) == 0 && j->cancel && atomic_load_acq_bool(j->cancel)) {
			rc = FR_ERR(err, FR_CLOSED, "compaction abandoned: the database is closing");
			goto out;
		}
		size_t ulen = ikey_user_len(in->key_len);
		uint64_t seqno = ikey_seqno(in->key, in->key_len);
		uint8_t type = ikey_type(in->key, in->key_len);
		j->bytes_read += in->key_len + in->val_len;
		bool new_key = !have_key || bytes_cmp(cur.data, cur.len, in->key, ulen) != 0;
		size_t s = stripe_of(j, seqno);
		if (new_key || s != stripe) {
			if ((rc = weak_flush(&o, &weak, cur.data, cur.len, err)))
				goto out;
			stripe = weak.stripe = s;
			decided = false;
			put_kept = false;
		}
		if (new_key) {
			/* a new user key: the place to cut a full table */
			if (o.w && sst_writer_size(o.w) >= j->target_size) {
				rc = out_finish(&o, in->key, ulen, err);
				if (rc)
					goto out;
				o.start_unbounded = false;
				buf_clear(&o.start);
				if ((rc = buf_append(&o.start, in->key, ulen)))
					goto out_nomem;
			}
			buf_clear(&cur);
			if ((rc = buf_append(&cur, in->key, ulen)))
				goto out_nomem;
			have_key = true;
		}
		if (decided)
			continue; /* shadowed by a newer version of the same stripe */
		uint64_t t = rdset_max_cover(j->rds, in->key, ulen, stripe_top(j, s));
		if (t > seqno) {
			decided = true; /* deleted by a range tombstone of the same stripe */
			continue;
		}
		if (type == VT_WEAK_DEL) {
			if (weak_push(&weak, seqno))
				goto out_nomem;
			continue;
		}
		if (type != VT_DEL && weak.cnt) {
			weak.cnt--; /* the value and the oldest pending weak tombstone cancel */
			continue;
		}
		if (type == VT_DEL) {
			weak.cnt = 0; /* a tombstone hides everything older anyway */
			decided = true;
		} else if (put_kept) {
			decided = true; /* an older value of a key written several times */
			continue;
		} else {
			put_kept = true;
		}
		if (type == VT_DEL && j->bottom && s == 0)
			continue; /* nothing older is left to hide */
		if (!o.w) {
			if ((rc = out_open(&o, err)))
				goto out;
		}
		if ((rc = out_add(&o, in->key, in->key_len, in->val, in->val_len, err)))
			goto out;
		o.added++;
	}
	if (in->status) {
		rc = in->status;
		if (err)
			*err = in->err;
		goto out;
	}
	if ((rc = weak_flush(&o, &weak, cur.data, cur.len, err)))
		goto out;
	/* the last table (or a table of tombstones only) runs to +inf */
	if (!o.w && rdset_all(j->rds, &(const struct range_del *){NULL}) > 0) {
		if ((rc = out_open(&o, err)))
			goto out;
	}
	if (o.w)
		rc = out_finish(&o, NULL, 0, err);
	if (!rc && o.bw)
		rc = blob_finish(&o, err);
	goto out;
out_nomem:
	rc = FR_ERR(err, FR_NOMEM, "compaction");
out:
	if (o.w)
		sst_writer_abort(o.w);
	blob_writer_abort(o.bw);
	if (rc)
		delete_outputs(j);
	fr_free(o.refs);
	buf_fini(&o.ik);
	buf_fini(&cur);
	buf_fini(&o.start);
	buf_fini(&weak.ik);
	fr_free(weak.seqnos);
	return rc;
}

void compact_job_fini(struct compact_job *j)
{
	for (size_t i = 0; i < j->out_cnt; i++)
		sst_meta_fini(&j->outs[i]);
	fr_free(j->outs);
	j->outs = NULL;
	j->out_cnt = 0;
	fr_free(j->blob_outs);
	j->blob_outs = NULL;
	j->blob_out_cnt = 0;
}
