/* SPDX-License-Identifier: MIT */
/*
 * api_tx.c - the public fr_tx_* functions of fractio.h: argument checks, then txn.c. The
 * composite updates (take, fetch_update, update_fetch) are a read then a write of the same
 * transaction, so they see and record exactly what a caller doing the same would.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "db/db.h"
#include "db/iter_int.h"
#include "db/txn.h"
#include "tx/batch.h"

static fr_status check_args(fr_tx *tx, const fr_keyspace *ks, const void *k, size_t n,
			    fr_error *err)
{
	if (!tx || !ks)
		return FR_ERR(err, FR_INVALID, "transaction or keyspace is NULL");
	if (ks->db != txn_db(tx))
		return FR_ERR(err, FR_INVALID, "keyspace of another database");
	if (atomic_load_acq_bool(&((fr_keyspace *)ks)->dropped))
		return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted", ks->name);
	return api_check_key(k, n, err);
}

fr_status fr_tx_begin(fr_db *db, fr_tx_kind kind, fr_tx **out, fr_error *err)
{
	if (!db || !out || (kind != FR_TX_SINGLE_WRITER && kind != FR_TX_OPTIMISTIC))
		return FR_ERR(err, FR_INVALID, "fr_tx_begin: bad arguments");
	*out = NULL;
	return txn_begin(db, kind, out, err);
}

fr_status fr_tx_get(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len, void **val,
		    size_t *val_len, fr_error *err)
{
	fr_status rc = check_args(tx, ks, key, key_len, err);
	if (rc) {
		if (val)
			*val = NULL;
		return rc;
	}
	return txn_get(tx, ks, key, key_len, val, val_len, err);
}

fr_status fr_tx_contains(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len, bool *out,
			 fr_error *err)
{
	if (!out)
		return FR_ERR(err, FR_INVALID, "out is NULL");
	fr_status rc = check_args(tx, ks, key, key_len, err);
	if (!rc)
		rc = txn_get(tx, ks, key, key_len, NULL, NULL, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	*out = rc == FR_OK;
	return FR_OK;
}

static fr_status write_op(fr_tx *tx, fr_keyspace *ks, uint8_t op, const void *key,
			  size_t key_len, const void *val, size_t val_len, fr_error *err)
{
	fr_status rc = check_args(tx, ks, key, key_len, err);
	if (!rc && op == BOP_PUT)
		rc = api_check_val(val, val_len, err);
	if (rc)
		return rc;
	return txn_write(tx, ks, op, key, key_len, val, val_len, err);
}

fr_status fr_tx_put(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
		    const void *val, size_t val_len, fr_error *err)
{
	return write_op(tx, ks, BOP_PUT, key, key_len, val, val_len, err);
}

fr_status fr_tx_remove(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
		       fr_error *err)
{
	return write_op(tx, ks, BOP_DEL, key, key_len, NULL, 0, err);
}

fr_status fr_tx_remove_weak(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			    fr_error *err)
{
	return write_op(tx, ks, BOP_WEAK_DEL, key, key_len, NULL, 0, err);
}

fr_status fr_tx_take(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len, void **val,
		     size_t *val_len, fr_error *err)
{
	void *v = NULL;
	size_t n = 0;
	fr_status rc = check_args(tx, ks, key, key_len, err);
	if (!rc)
		rc = txn_get(tx, ks, key, key_len, val ? &v : NULL, &n, err);
	if (!rc)
		rc = txn_write(tx, ks, BOP_DEL, key, key_len, NULL, 0, err);
	if (rc) {
		fr_free(v);
		if (val)
			*val = NULL;
		return rc;
	}
	if (val)
		*val = v;
	if (val_len)
		*val_len = n;
	return FR_OK;
}

/* Runs fn over the key's current value and writes its result. *old gets the value before
 * (fr_malloc'd, NULL when absent); on FR_OK *new_copy (when asked) the value after. */
static fr_status update(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			fr_tx_update_fn fn, void *ctx, void **old, size_t *old_len,
			bool *old_found, void **new_copy, size_t *new_len, bool *new_found,
			fr_error *err)
{
	if (!fn)
		return FR_ERR(err, FR_INVALID, "update function is NULL");
	fr_status rc = check_args(tx, ks, key, key_len, err);
	if (rc)
		return rc;
	*old = NULL;
	*old_len = 0;
	rc = txn_get(tx, ks, key, key_len, old, old_len, err);
	if (rc && rc != FR_NOT_FOUND)
		return rc;
	*old_found = rc == FR_OK;
	const void *nv = NULL;
	size_t nl = 0;
	bool rm = false;
	rc = fn(ctx, *old, *old_len, *old_found, &nv, &nl, &rm);
	if (rc) {
		FR_ERR(err, rc, "the update function failed: nothing was written");
		goto out_free;
	}
	if (!rm && (rc = api_check_val(nv, nl, err)))
		goto out_free;
	if (new_copy && !rm) {
		*new_copy = fr_memdup(nv, nl);
		if (!*new_copy) {
			rc = FR_ERR(err, FR_NOMEM, "value");
			goto out_free;
		}
	}
	rc = txn_write(tx, ks, rm ? BOP_DEL : BOP_PUT, key, key_len, rm ? NULL : nv,
		       rm ? 0 : nl, err);
	if (rc) {
		if (new_copy && !rm)
			fr_free(*new_copy);
		goto out_free;
	}
	if (new_copy && rm)
		*new_copy = NULL;
	*new_len = rm ? 0 : nl;
	*new_found = !rm;
	return FR_OK;
out_free:
	fr_free(*old);
	*old = NULL;
	return rc;
}

fr_status fr_tx_fetch_update(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			     fr_tx_update_fn fn, void *ctx, void **val, size_t *val_len,
			     bool *found, fr_error *err)
{
	void *old = NULL;
	size_t old_len = 0, new_len = 0;
	bool old_found = false, new_found = false;
	fr_status rc = update(tx, ks, key, key_len, fn, ctx, &old, &old_len, &old_found, NULL,
			      &new_len, &new_found, err);
	if (rc) {
		if (val)
			*val = NULL;
		return rc;
	}
	if (val)
		*val = old;
	else
		fr_free(old);
	if (val_len)
		*val_len = old_found ? old_len : 0;
	if (found)
		*found = old_found;
	return FR_OK;
}

fr_status fr_tx_update_fetch(fr_tx *tx, fr_keyspace *ks, const void *key, size_t key_len,
			     fr_tx_update_fn fn, void *ctx, void **val, size_t *val_len,
			     bool *found, fr_error *err)
{
	void *old = NULL, *nv = NULL;
	size_t old_len = 0, new_len = 0;
	bool old_found = false, new_found = false;
	fr_status rc = update(tx, ks, key, key_len, fn, ctx, &old, &old_len, &old_found,
			      val ? &nv : NULL, &new_len, &new_found, err);
	if (rc) {
		if (val)
			*val = NULL;
		return rc;
	}
	fr_free(old);
	if (val)
		*val = nv;
	if (val_len)
		*val_len = new_len;
	if (found)
		*found = new_found;
	return FR_OK;
}

fr_status fr_tx_iter_open(fr_tx *tx, fr_keyspace *ks, const fr_iter_options *o, fr_iter **out,
			  fr_error *err)
{
	if (!out)
		return FR_ERR(err, FR_INVALID, "out is NULL");
	*out = NULL;
	fr_status rc = check_args(tx, ks, NULL, 0, err);
	if (rc)
		return rc;
	if (o && o->snapshot)
		return FR_ERR(err, FR_INVALID, "a transaction's iterator reads at its snapshot");
	struct kv_iter *ov;
	rc = txn_overlay(tx, ks, &ov, err);
	if (rc)
		return rc;
	fr_iter *it;
	rc = api_iter_open(ks, o, txn_seqno(tx), ov, &it, err);
	if (rc)
		return rc;
	/* the whole bounded range counts as read, wherever the caller goes in it */
	const uint8_t *lo, *hi;
	size_t lo_len, hi_len;
	titer_bounds(it->ti, &lo, &lo_len, &hi, &hi_len);
	rc = txn_read_range(tx, ks->tree->id, lo, lo_len, hi, hi_len, err);
	if (rc) {
		fr_iter_close(it);
		return rc;
	}
	*out = it;
	return FR_OK;
}

fr_seqno fr_tx_seqno(const fr_tx *tx)
{
	return tx ? txn_seqno(tx) : 0;
}

fr_status fr_tx_commit(fr_tx *tx, fr_persist mode, fr_seqno *seqno, fr_error *err)
{
	if (!tx)
		return FR_ERR(err, FR_INVALID, "transaction is NULL");
	if (mode > FR_PERSIST_SYNC_ALL) {
		txn_rollback(tx);
		return FR_ERR(err, FR_INVALID, "bad persist mode");
	}
	return txn_commit(tx, mode, seqno, err);
}

void fr_tx_rollback(fr_tx *tx)
{
	txn_rollback(tx);
}
