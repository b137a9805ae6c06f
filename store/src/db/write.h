/* SPDX-License-Identifier: MIT */
/*
 * write.h - what the commit leader builds for one batch: the resolved tree operations, with
 * key and value bytes owned here. Shared by write.c and keyspace.c. One thread at a time.
 */
#ifndef FRACTIO_DB_WRITE_H
#define FRACTIO_DB_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"
#include "tx/batch.h"

/* A keyspace a batch dropped: its name and the id it had. */
struct lo_drop {
	char *name;
	uint32_t ks_id;
};

struct leader_ops {
	struct batch_op *ops;
	size_t cnt;
	size_t cap;
	void **owned; /* buffers the ops point into */
	size_t owned_cnt;
	size_t owned_cap;
	struct lo_drop *dropped; /* keyspaces dropped by this batch */
	size_t dropped_cnt;
};

/* Appends an op; key and val are copied when copy is true, else borrowed. */
fr_status lo_add(struct leader_ops *lo, uint8_t op, uint32_t tree_id, const void *k, size_t klen,
		 const void *v, size_t vlen, bool copy);
void lo_reset(struct leader_ops *lo);
void lo_fini(struct leader_ops *lo);

#endif
