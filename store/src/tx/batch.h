/* SPDX-License-Identifier: MIT */
/*
 * batch.h - the journal record of one committed batch (FORMAT.md §3.3): a sequence number and a
 * list of operations on trees. Keys here are tree keys (keyspace prefix included). Encoding is
 * done by the commit leader; decoding by recovery. One thread at a time.
 */
#ifndef FRACTIO_TX_BATCH_H
#define FRACTIO_TX_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_buf;

/* Operation codes: on-disk values, never renumber. */
enum {
	BOP_PUT = 1,
	BOP_DEL = 2,
	BOP_WEAK_DEL = 3,
	BOP_RANGE_DEL = 4,
	/* a put whose value went to a direct blob file at commit: the value here is its handle
	 * (FORMAT.md §3.3, §8.3), the memtable entry VT_BLOB */
	BOP_PUT_HANDLE = 5,
};

struct batch_op {
	uint8_t op;
	uint32_t tree_id;
	const uint8_t *key; /* for BOP_RANGE_DEL: start */
	size_t key_len;
	const uint8_t *val; /* for BOP_RANGE_DEL: end; for BOP_PUT_HANDLE: the handle */
	size_t val_len;
};

/* Appends the record for (seqno, ops) to out. */
fr_status batch_encode(uint64_t seqno, const struct batch_op *ops, size_t cnt,
		       struct fr_buf *out);

/* Calls fn for each operation of an encoded record; views point into rec. */
typedef fr_status (*batch_op_fn)(void *ctx, uint64_t seqno, const struct batch_op *op,
				 fr_error *err);
fr_status batch_decode(const uint8_t *rec, size_t len, batch_op_fn fn, void *ctx,
		       uint64_t *seqno, const char *path, fr_error *err);

#endif
