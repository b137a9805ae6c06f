/* SPDX-License-Identifier: MIT */
/*
 * oracle.h - conflict detection for optimistic transactions. While at least one optimistic
 * transaction is open, the commit leader records the tree keys (and the ranges of range
 * deletes and keyspace drops) of every batch it commits, with the batch's seqno. A committing
 * optimistic transaction is validated by the leader, before seqnos are handed out, against the
 * records newer than the seqno it read at: it conflicts when any of them wrote a key it read or
 * wrote, or a key inside a range it iterated. Records no open transaction can conflict with
 * (seqno at or below the oldest open transaction's read seqno) are dropped, so the oracle holds
 * only the commits made during the oldest open transaction.
 *
 * Keys are compared exactly (the hash only picks the slot), so there are neither false
 * negatives nor false positives. When a record cannot be allocated, the oracle remembers the
 * seqno instead and every transaction that began before it conflicts (a false positive, never
 * a false negative).
 *
 * Thread-safety: struct orc is thread-safe (orc->mu, a leaf lock: nothing is taken under it).
 * An orc_set is used by its transaction's thread, then read by the commit leader while that
 * thread waits in its commit.
 */
#ifndef FRACTIO_DB_ORACLE_H
#define FRACTIO_DB_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "fractio.h"

struct leader_ops;
struct orc;

struct orc_key {
	uint64_t hash;
	uint32_t tree;
	size_t off, len; /* in the set's bytes */
};

struct orc_range {
	uint32_t tree;
	bool has_hi;
	size_t lo_off, lo_len; /* tree keys, in the set's bytes */
	size_t hi_off, hi_len;
};

/* What one optimistic transaction read or wrote. */
struct orc_set {
	struct orc_key *tab; /* open addressing, cap a power of two; hash 0 never stored */
	size_t cap, cnt;
	struct orc_range *ranges;
	size_t range_cnt, range_cap;
	struct fr_buf bytes;
};

/* An open optimistic transaction, as the oracle knows it. */
struct orc_tx {
	uint64_t read_seqno;        /* under orc->mu; 0 until its snapshot was taken */
	struct orc_tx *prev, *next; /* under orc->mu */
	struct orc_set set;         /* the transaction's thread (see above) */
};

fr_status orc_set_add_key(struct orc_set *s, uint32_t tree, const uint8_t *k, size_t len);
/* hi NULL: no upper bound. */
fr_status orc_set_add_range(struct orc_set *s, uint32_t tree, const uint8_t *lo, size_t lo_len,
			    const uint8_t *hi, size_t hi_len);
void orc_set_fini(struct orc_set *s);

fr_status orc_new(struct orc **out);
void orc_free(struct orc *o);

/* Registers t before its snapshot is taken: from here on every commit that becomes visible is
 * recorded until orc_tx_end, and nothing is pruned until orc_tx_set_seqno gives its seqno. */
void orc_tx_begin(struct orc *o, struct orc_tx *t);
void orc_tx_set_seqno(struct orc *o, struct orc_tx *t, uint64_t seqno);
/* Unregisters t and drops the records no open transaction needs. */
void orc_tx_end(struct orc *o, struct orc_tx *t);

/* Whether an optimistic transaction is open: the commit leader's one check per group, made
 * after it published the group's visible seqno (a sequentially consistent store, pairing with
 * the sequentially consistent increment in orc_tx_begin and load in txn_begin). */
bool orc_is_active(struct orc *o);

void orc_lock(struct orc *o);
void orc_unlock(struct orc *o);
/* Requires: orc->mu held. True when t conflicts with a recorded commit newer than it read. */
bool orc_conflicts(struct orc *o, const struct orc_tx *t);
/* Requires: orc->mu held. Records the operations of the batch committed at seqno. */
void orc_record(struct orc *o, uint64_t seqno, const struct leader_ops *lo);

#ifdef FR_TESTING
/* Records held now, and recorded since open. */
void orc_test_counts(struct orc *o, size_t *held, uint64_t *recorded);
#endif

#endif
