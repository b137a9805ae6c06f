/* SPDX-License-Identifier: MIT */
/*
 * txn.h - transactions (fr_tx): a snapshot taken at begin, a write set ordered by tree and tree
 * key (the last write to a key wins) read before the snapshot (read-your-own-writes), and a
 * commit that turns the write set into one batch. A single-writer transaction holds the
 * database's one writer turn (db->tx_mu) from begin to its end; an optimistic one records what
 * it reads and writes and is validated by the commit leader (oracle.h).
 *
 * Keys given here are user keys of the keyspace; the api_tx.c wrappers have checked the
 * arguments. A transaction is used by one thread at a time. After an operation failed for want
 * of memory it is broken: every later call returns that failure, and commit rolls back.
 */
#ifndef FRACTIO_DB_TXN_H
#define FRACTIO_DB_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct kv_iter;

fr_status txn_begin(fr_db *db, fr_tx_kind kind, fr_tx **out, fr_error *err);
fr_db *txn_db(const fr_tx *tx);
uint64_t txn_seqno(const fr_tx *tx);
/* The value as the transaction sees it: FR_OK with an fr_malloc'd value (val may be NULL to
 * test presence), FR_NOT_FOUND. An optimistic transaction records the key as read. */
fr_status txn_get(fr_tx *tx, fr_keyspace *ks, const void *k, size_t klen, void **val,
		  size_t *vlen, fr_error *err);
/* Adds op (BOP_PUT, BOP_DEL or BOP_WEAK_DEL) to the write set, replacing any earlier write of
 * the key. */
fr_status txn_write(fr_tx *tx, fr_keyspace *ks, uint8_t op, const void *k, size_t klen,
		    const void *v, size_t vlen, fr_error *err);
/* The transaction's writes to ks now, as an iterator over internal keys of seqno SEQNO_MAX
 * (weak removes read as removes inside the transaction, as txn_get reads them). */
fr_status txn_overlay(fr_tx *tx, fr_keyspace *ks, struct kv_iter **out, fr_error *err);
/* Records [lo, hi) of tree tree_id as read (optimistic; hi NULL: no upper bound). */
fr_status txn_read_range(fr_tx *tx, uint32_t tree_id, const uint8_t *lo, size_t lo_len,
			 const uint8_t *hi, size_t hi_len, fr_error *err);
/* Commits and frees the transaction, on failure too. */
fr_status txn_commit(fr_tx *tx, fr_persist mode, uint64_t *seqno, fr_error *err);
void txn_rollback(fr_tx *tx);

#endif
