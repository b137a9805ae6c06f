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
 *
 * KV separation (blob/blob.h): a VT_PUT value of at least blob_threshold bytes is written to an
 * output blob file (cut near blob_file_target) and the table gets a VT_BLOB entry holding its
 * handle. A VT_BLOB input passes through unchanged, unless its blob file is in the relocation
 * set: then its value is read (from blob_src) and written again like a VT_PUT value, so that
 * once every table referring to a file was rewritten the file leaves the version (GC by
 * relocation). Each output table's sst_meta.blob_refs says how many stored bytes of each blob
 * file it refers to.
 */
#ifndef FRACTIO_COMPACT_COMPACT_H
#define FRACTIO_COMPACT_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"
#include "sst/sst.h"

struct fr_io;
struct blob_meta;
struct kv_iter;
struct rdset;
struct tree_version;
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
	uint32_t blob_threshold;     /* 0: values stay in the tables */
	uint64_t blob_file_target;   /* cut output blob files near this size */
	bool blob_compress;
	const uint64_t *blob_reloc;  /* ascending ids of the blob files to rewrite */
	size_t blob_reloc_cnt;
	const struct tree_version *blob_src; /* holds the relocated files (NULL: no relocation) */
	/* outputs, filled by compact_run (release with compact_job_fini) */
	struct sst_meta *outs;
	size_t out_cnt;
	uint64_t bytes_read;         /* key+value bytes of the input */
	uint64_t bytes_written;      /* file bytes of the outputs (tables and blob files) */
	struct blob_meta *blob_outs; /* the blob files written */
	size_t blob_out_cnt;
	uint64_t blob_bytes_written; /* their file bytes */
	uint64_t blob_relocated;     /* values moved out of relocated blob files */
	bool out_cnt_keep;           /* the caller's: outputs may be referenced, never delete */
};

/* Runs the job. On failure, outputs already written (tables and blob files) are deleted and
 * none are returned. */
fr_status compact_run(struct compact_job *j, fr_error *err);
/* Frees the output metadata (not the files). */
/* Deletes the output tables and blob files of j (a job whose edit could not be applied). */
void compact_job_delete_outputs(struct compact_job *j);
void compact_job_fini(struct compact_job *j);

#endif
