/* SPDX-License-Identifier: MIT */
/*
 * compact.h - writes the output tables of a flush or a compaction from a merged input,
 * dropping what no reader can see:
 *  - of the versions of a key that fall between the same two live snapshots (a "stripe"),
 *    only the newest is kept;
 *  - a version hidden by a range tombstone of the same stripe is dropped;
 *  - when the output is the bottom of the tree, tombstones (point and range) older than every
 *    live snapshot are dropped too, as nothing below them remains to hide.
 * Versions of one user key never straddle two output tables; range tombstones are clipped to
 * the key span of each output table so tables of one level stay disjoint.
 */
#ifndef FRACTIO_COMPACT_COMPACT_H
#define FRACTIO_COMPACT_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"
#include "sst/sst.h"

struct fr_io;
struct kv_iter;
struct rdset;
struct vset;

struct compact_job {
	/* inputs */
	struct fr_io *io;
	struct vset *vs;             /* file ids and paths of the outputs */
	struct sst_options opts;
	struct kv_iter *input;       /* merged input entries; owned by the caller */
	const struct rdset *rds;     /* input range tombstones, or NULL */
	const uint64_t *snaps;       /* live snapshot seqnos, ascending */
	size_t snap_cnt;
	bool bottom;
	uint64_t target_size;        /* cut output tables near this size */
	const bool *cancel;          /* atomic; when it turns true the job stops with FR_CLOSED
				      * and deletes its outputs (NULL: never) */
	/* outputs, filled by compact_run (release with compact_job_fini) */
	struct sst_meta *outs;
	size_t out_cnt;
	uint64_t bytes_read;         /* key+value bytes of the input */
	uint64_t bytes_written;      /* file bytes of the outputs */
	bool out_cnt_keep;           /* the caller's: outputs may be referenced, never delete */
};

/* Runs the job. On failure, outputs already written are deleted and none are returned. */
fr_status compact_run(struct compact_job *j, fr_error *err);
/* Frees the output metadata (not the files). */
void compact_job_fini(struct compact_job *j);

#endif
