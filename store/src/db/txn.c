/* SPDX-License-Identifier: MIT */
/*
 * txn.c - transactions (txn.h). The write set is a skiplist of its own (nodes fr_malloc'd one
 * by one, used by one thread) ordered by (tree id, tree key), so a transaction's iterator can
 * take the writes of one keyspace in order, and a commit hands them to the leader in order.
 */
#include "db/txn.h"

#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"
#include "base/ikey.h"
#include "base/kv_iter.h"
#include "base/sync.h"
#include "db/db.h"
#include "db/oracle.h"
#include "tx/batch.h"

#define WS_HEIGHT 16

struct wnode {
	uint32_t tree;
	uint8_t op;       /* BOP_PUT, BOP_DEL, BOP_WEAK_DEL */
	uint8_t height;
	fr_keyspace *ks;  /* referenced by the transaction (fr_tx.ks) */
	uint8_t *val;     /* fr_malloc'd; NULL when empty */
	size_t val_len;
	size_t key_len;   /* tree key, stored after next[] */
	struct wnode *next[];
};

struct fr_tx {
	fr_db *db;
	fr_tx_kind kind;
	fr_snapshot *snap;
	uint64_t seqno;
	struct wnode *head;     /* WS_HEIGHT links, no key */
	int height;
	size_t write_cnt;
	uint64_t rnd;
	fr_keyspace **ks;       /* one reference to each keyspace written */
	size_t ks_cnt, ks_cap;
	fr_status broken;       /* sticky failure (txn.h) */
	fr_error broken_err;
	struct orc_tx otx;      /* FR_TX_OPTIMISTIC only */
};

static const uint8_t *node_key(const struct wnode *n)
{
	return (const uint8_t *)(n->next + n->height);
}

static int node_cmp(const struct wnode *n, uint32_t tree, const uint8_t *k, size_t len)
{
	if (n->tree != tree)
		return n->tree < tree ? -1 : 1;
	return bytes_cmp(node_key(n), n->key_len, k, len);
}

/* The first node >= (tree, k); prev[] (optional) gets the last node < it on each level. */
static struct wnode *ws_seek(const fr_tx *tx, uint32_t tree, const uint8_t *k, size_t len,
			     struct wnode **prev)
{
	struct wnode *x = tx->head;
	for (int l = WS_HEIGHT - 1; l >= 0; l--) {
		while (x->next[l] && node_cmp(x->next[l], tree, k, len) < 0)
			x = x->next[l];
		if (prev)
			prev[l] = x;
	}
	return x->next[0];
}

static struct wnode *ws_find(const fr_tx *tx, uint32_t tree, const uint8_t *k, size_t len)
{
	struct wnode *n = ws_seek(tx, tree, k, len, NULL);
	return n && !node_cmp(n, tree, k, len) ? n : NULL;
}

static int random_height(fr_tx *tx)
{
	uint64_t x = tx->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	tx->rnd = x;
	int h = 1;
	while (h < WS_HEIGHT && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

static fr_status ws_put(fr_tx *tx, fr_keyspace *ks, uint8_t op, const uint8_t *k, size_t len,
			const void *v, size_t vlen)
{
	uint32_t tree = ks->tree->id;
	struct wnode *prev[WS_HEIGHT];
	struct wnode *n = ws_seek(tx, tree, k, len, prev);
	uint8_t *val = NULL;
	if (vlen && !(val = fr_memdup(v, vlen)))
		return FR_NOMEM;
	if (n && !node_cmp(n, tree, k, len)) {
		fr_free(n->val);
		n->val = val;
		n->val_len = vlen;
		n->op = op;
		n->ks = ks;
		return FR_OK;
	}
	int h = random_height(tx);
	n = fr_malloc(sizeof(*n) + (size_t)h * sizeof(n->next[0]) + len);
	if (!n) {
		fr_free(val);
		return FR_NOMEM;
	}
	n->tree = tree;
	n->op = op;
	n->height = (uint8_t)h;
	n->ks = ks;
	n->val = val;
	n->val_len = vlen;
	n->key_len = len;
	if (len)
		memcpy((uint8_t *)(n->next + h), k, len);
	for (int l = 0; l < h; l++) {
		n->next[l] = prev[l]->next[l];
		prev[l]->next[l] = n;
	}
	tx->write_cnt++;
	return FR_OK;
}

static fr_status set_broken(fr_tx *tx, fr_status rc, fr_error *err, const char *what)
{
	tx->broken = rc;
	FR_ERR(&tx->broken_err, rc, "transaction: %s", what);
	if (err)
		*err = tx->broken_err;
	return rc;
}

static fr_status check_broken(const fr_tx *tx, fr_error *err)
{
	if (tx->broken && err)
		*err = tx->broken_err;
	return tx->broken;
}

fr_status txn_begin(fr_db *db, fr_tx_kind kind, fr_tx **out, fr_error *err)
{
	fr_tx *tx = fr_calloc(1, sizeof(*tx));
	struct wnode *head = fr_calloc(1, sizeof(*head) + WS_HEIGHT * sizeof(head->next[0]));
	if (!tx || !head) {
		fr_free(tx);
		fr_free(head);
		return FR_ERR(err, FR_NOMEM, "transaction");
	}
	tx->db = db;
	tx->kind = kind;
	tx->head = head;
	head->height = WS_HEIGHT;
	tx->rnd = (uint64_t)(uintptr_t)tx * 0x9e3779b97f4a7c15ull | 1;
	if (kind == FR_TX_SINGLE_WRITER) {
		fr_mutex_lock(&db->tx_mu);
		while (db->tx_writer_open)
			fr_cond_wait(&db->tx_cv, &db->tx_mu);
		db->tx_writer_open = true;
		fr_mutex_unlock(&db->tx_mu);
	} else {
		/* register before reading the visible seqno (sequentially consistent, pairing with
		 * the leader's store of it and its load of the oracle's count): every commit newer
		 * than the snapshot below is then recorded */
		orc_tx_begin(db->orc, &tx->otx);
		(void)atomic_load_sc_u64(&db->visible_seqno);
	}
	fr_status rc = snap_open(db, &tx->snap);
	if (rc) {
		txn_rollback(tx);
		return FR_ERR(err, rc, "transaction snapshot");
	}
	tx->seqno = tx->snap->seqno;
	if (kind == FR_TX_OPTIMISTIC)
		orc_tx_set_seqno(db->orc, &tx->otx, tx->seqno);
	*out = tx;
	return FR_OK;
}

fr_db *txn_db(const fr_tx *tx)
{
	return tx->db;
}

uint64_t txn_seqno(const fr_tx *tx)
{
	return tx->seqno;
}

static fr_status ks_hold(fr_tx *tx, fr_keyspace *ks)
{
	for (size_t i = 0; i < tx->ks_cnt; i++)
		if (tx->ks[i] == ks)
			return FR_OK;
	if (tx->ks_cnt == tx->ks_cap) {
		size_t cap = tx->ks_cap ? tx->ks_cap * 2 : 4;
		fr_keyspace **a = fr_realloc(tx->ks, cap * sizeof(*a));
		if (!a)
			return FR_NOMEM;
		tx->ks = a;
		tx->ks_cap = cap;
	}
	fr_mutex_lock(&tx->db->cat_mu);
	ks->refs++;
	fr_mutex_unlock(&tx->db->cat_mu);
	tx->ks[tx->ks_cnt++] = ks;
	return FR_OK;
}

/* The start of every keyed operation: the transaction must not be broken, and k becomes its
 * tree key (release with tkey_fini). */
static fr_status op_key(fr_tx *tx, fr_keyspace *ks, const void *k, size_t klen, struct tkey *key,
			fr_error *err)
{
	fr_status rc = check_broken(tx, err);
	return rc ? rc : tkey_make(key, ks, k, klen, err);
}

fr_status txn_get(fr_tx *tx, fr_keyspace *ks, const void *k, size_t klen, void **val,
		  size_t *vlen, fr_error *err)
{
	struct tkey key;
	fr_status rc = op_key(tx, ks, k, klen, &key, err);
	if (rc)
		return rc;
	const uint8_t *tk = key.p;
	size_t tlen = key.len;
	uint32_t tree = ks->tree->id;
	if (tx->kind == FR_TX_OPTIMISTIC && orc_set_add_key(&tx->otx.set, tree, tk, tlen)) {
		rc = set_broken(tx, FR_NOMEM, err, "recording a read");
		goto out;
	}
	const struct wnode *n = ws_find(tx, tree, tk, tlen);
	if (n) {
		if (n->op != BOP_PUT) {
			rc = FR_NOT_FOUND;
		} else if (val) {
			void *v = fr_memdup(n->val, n->val_len);
			if (!v) {
				rc = FR_ERR(err, FR_NOMEM, "value");
				goto out;
			}
			*val = v;
		}
		if (!rc && vlen)
			*vlen = n->val_len;
		goto out;
	}
	void *v = NULL;
	size_t vl = 0;
	rc = tree_get_value(tx->db, ks->tree, tk, tlen, tx->seqno, val ? &v : NULL, &vl, err);
	if (!rc) {
		if (val)
			*val = v;
		if (vlen)
			*vlen = vl;
	}
out:
	tkey_fini(&key);
	if (rc && val)
		*val = NULL;
	return rc;
}

fr_status txn_write(fr_tx *tx, fr_keyspace *ks, uint8_t op, const void *k, size_t klen,
		    const void *v, size_t vlen, fr_error *err)
{
	struct tkey key;
	fr_status rc = op_key(tx, ks, k, klen, &key, err);
	if (rc)
		return rc;
	/* a failure below leaves the write set or the conflict set short of this write */
	if (ks_hold(tx, ks) || ws_put(tx, ks, op, key.p, key.len, v, vlen) ||
	    (tx->kind == FR_TX_OPTIMISTIC &&
	     orc_set_add_key(&tx->otx.set, ks->tree->id, key.p, key.len)))
		rc = set_broken(tx, FR_NOMEM, err, "recording a write");
	tkey_fini(&key);
	return rc;
}

fr_status txn_read_range(fr_tx *tx, uint32_t tree_id, const uint8_t *lo, size_t lo_len,
			 const uint8_t *hi, size_t hi_len, fr_error *err)
{
	fr_status rc = check_broken(tx, err);
	if (rc || tx->kind != FR_TX_OPTIMISTIC)
		return rc;
	if (orc_set_add_range(&tx->otx.set, tree_id, lo, lo_len, hi, hi_len))
		return set_broken(tx, FR_NOMEM, err, "recording a range read");
	return FR_OK;
}

/* ---- the overlay: a sorted copy of a keyspace's writes ---- */

struct ov_ent {
	size_t key_off, key_len; /* internal key */
	size_t val_off, val_len;
};

struct ov_iter {
	struct kv_iter base;
	struct ov_ent *ents;
	size_t cnt;
	size_t pos; /* cnt: invalid */
	struct fr_buf bytes;
};

static void ov_set(struct ov_iter *o, size_t pos)
{
	o->pos = pos < o->cnt ? pos : o->cnt;
	o->base.valid = o->pos < o->cnt;
	if (o->base.valid) {
		const struct ov_ent *e = &o->ents[o->pos];
		o->base.key = o->bytes.data + e->key_off;
		o->base.key_len = e->key_len;
		o->base.val = o->bytes.data + e->val_off;
		o->base.val_len = e->val_len;
	}
}

/* The first entry with internal key >= k. */
static size_t ov_lower(const struct ov_iter *o, const uint8_t *k, size_t len)
{
	size_t lo = 0, hi = o->cnt;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ov_ent *e = &o->ents[mid];
		if (ikey_cmp(o->bytes.data + e->key_off, e->key_len, k, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ov_seek_first(struct kv_iter *it)
{
	ov_set((struct ov_iter *)it, 0);
}

static void ov_seek_last(struct kv_iter *it)
{
	struct ov_iter *o = (struct ov_iter *)it;
	ov_set(o, o->cnt ? o->cnt - 1 : o->cnt);
}

static void ov_seek(struct kv_iter *it, const uint8_t *k, size_t len)
{
	struct ov_iter *o = (struct ov_iter *)it;
	ov_set(o, ov_lower(o, k, len));
}

static void ov_seek_prev(struct kv_iter *it, const uint8_t *k, size_t len)
{
	struct ov_iter *o = (struct ov_iter *)it;
	size_t i = ov_lower(o, k, len); /* first >= k */
	if (i < o->cnt) {
		const struct ov_ent *e = &o->ents[i];
		if (!ikey_cmp(o->bytes.data + e->key_off, e->key_len, k, len)) {
			ov_set(o, i);
			return;
		}
	}
	ov_set(o, i ? i - 1 : o->cnt);
}

static void ov_next(struct kv_iter *it)
{
	struct ov_iter *o = (struct ov_iter *)it;
	ov_set(o, o->pos + 1);
}

static void ov_prev(struct kv_iter *it)
{
	struct ov_iter *o = (struct ov_iter *)it;
	ov_set(o, o->pos && o->pos < o->cnt ? o->pos - 1 : o->cnt);
}

static void ov_free(struct kv_iter *it)
{
	struct ov_iter *o = (struct ov_iter *)it;
	fr_free(o->ents);
	buf_fini(&o->bytes);
	fr_free(o);
}

static const struct kv_iter_ops ov_ops = {
	.seek_first = ov_seek_first,
	.seek_last = ov_seek_last,
	.seek = ov_seek,
	.seek_prev = ov_seek_prev,
	.next = ov_next,
	.prev = ov_prev,
	.free = ov_free,
};

fr_status txn_overlay(fr_tx *tx, fr_keyspace *ks, struct kv_iter **out, fr_error *err)
{
	fr_status rc = check_broken(tx, err);
	if (rc)
		return rc;
	struct ov_iter *o = fr_calloc(1, sizeof(*o));
	if (!o)
		return FR_ERR(err, FR_NOMEM, "iterator");
	o->base.ops = &ov_ops;
	uint32_t tree = ks->tree->id;
	size_t cap = 0;
	for (const struct wnode *n = ws_seek(tx, tree, ks->prefix, KS_PREFIX_LEN, NULL);
	     n && n->tree == tree && n->key_len >= KS_PREFIX_LEN &&
	     !memcmp(node_key(n), ks->prefix, KS_PREFIX_LEN);
	     n = n->next[0]) {
		if (o->cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct ov_ent *e = fr_realloc(o->ents, cap * sizeof(*e));
			if (!e)
				goto out_nomem;
			o->ents = e;
		}
		struct ov_ent *e = &o->ents[o->cnt];
		uint8_t trailer[IKEY_TRAILER_LEN];
		/* a weak remove reads as a remove inside the transaction, as in txn_get */
		enc_u64(trailer, ikey_pack(SEQNO_MAX, n->op == BOP_PUT ? VT_PUT : VT_DEL));
		e->key_off = o->bytes.len;
		e->key_len = n->key_len + IKEY_TRAILER_LEN;
		if (buf_append(&o->bytes, node_key(n), n->key_len) ||
		    buf_append(&o->bytes, trailer, sizeof(trailer)))
			goto out_nomem;
		e->val_off = o->bytes.len;
		e->val_len = n->val_len;
		if (n->val_len && buf_append(&o->bytes, n->val, n->val_len))
			goto out_nomem;
		o->cnt++;
	}
	ov_set(o, o->cnt);
	*out = &o->base;
	return FR_OK;
out_nomem:
	ov_free(&o->base);
	return FR_ERR(err, FR_NOMEM, "iterator");
}

/* ---- end ---- */

static void txn_free(fr_tx *tx)
{
	fr_db *db = tx->db;
	if (tx->kind == FR_TX_SINGLE_WRITER) {
		fr_mutex_lock(&db->tx_mu);
		db->tx_writer_open = false;
		fr_cond_signal(&db->tx_cv);
		fr_mutex_unlock(&db->tx_mu);
	} else {
		orc_tx_end(db->orc, &tx->otx);
		orc_set_fini(&tx->otx.set);
	}
	snap_close(tx->snap);
	struct wnode *n = tx->head;
	while (n) {
		struct wnode *next = n->next[0];
		fr_free(n->val);
		fr_free(n);
		n = next;
	}
	for (size_t i = 0; i < tx->ks_cnt; i++)
		ks_unref(tx->ks[i]);
	fr_free(tx->ks);
	fr_free(tx);
}

void txn_rollback(fr_tx *tx)
{
	if (tx)
		txn_free(tx);
}

fr_status txn_commit(fr_tx *tx, fr_persist mode, uint64_t *seqno, fr_error *err)
{
	fr_db *db = tx->db;
	fr_status rc = check_broken(tx, err);
	if (rc || !tx->write_cnt) {
		/* pairs with the store in leader_write */
		if (!rc && seqno)
			*seqno = atomic_load_acq_u64(&db->visible_seqno);
		txn_free(tx);
		return rc;
	}
	fr_batch b;
	memset(&b, 0, sizeof(b));
	b.db = db;
	b.otx = tx->kind == FR_TX_OPTIMISTIC ? &tx->otx : NULL;
	for (const struct wnode *n = tx->head->next[0]; n && !rc; n = n->next[0])
		rc = batch_add(&b, n->op, n->ks, node_key(n) + KS_PREFIX_LEN,
			       n->key_len - KS_PREFIX_LEN, n->val, n->val_len);
	if (rc)
		rc = FR_ERR(err, rc, "transaction batch");
	else
		rc = db_commit(db, &b, mode, seqno, err);
	batch_reset(&b);
	fr_free(b.ops);
	buf_fini(&b.data);
	txn_free(tx);
	return rc;
}
