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
	j->bytes_written += j->outs[j->out_cnt].file_size;
	j->out_cnt++;
	return FR_OK;
}

static void delete_outputs(struct compact_job *j)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < j->out_cnt; i++) {
		vset_table_path(j->vs, j->outs[i].id, path, sizeof(path));
		io_unlink(j->io, path, NULL);
	}
	compact_job_fini(j);
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
	j->bytes_read = j->bytes_written = 0;
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
		if ((rc = sst_writer_add(o.w, in->key, in->key_len, in->val, in->val_len, err)))
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
	goto out;
out_nomem:
	rc = FR_ERR(err, FR_NOMEM, "compaction");
out:
	if (o.w)
		sst_writer_abort(o.w);
	if (rc)
		delete_outputs(j);
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
}
