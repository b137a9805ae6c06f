/* SPDX-License-Identifier: MIT */
/*
 * version_int.h - what version_edit.c, version.c and manifest.c share beyond version.h: the
 * vset itself, table and version constructors, and a test hook for the manifest size limit.
 * Nothing outside src/version/ includes this but the version and manifest unit tests.
 *
 * Lock order: vs->apply_mu, then vs->mu, then a table's reader lock (version.c). apply_mu
 * serialises edits and owns the manifest writer; mu guards only the published tree array, so
 * readers taking a version (vset_current) never wait for a manifest sync.
 */
#ifndef FRACTIO_VERSION_VERSION_INT_H
#define FRACTIO_VERSION_VERSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sync.h"
#include "fractio.h"
#include "version/version.h"

struct rec_writer;

/* A new manifest is started when the current one passes this many bytes. */
#define MFST_ROLL_BYTES (UINT64_C(4) << 20)

struct vset {
	struct fr_io *io;
	char *dir;
	char *tables_dir;
	char *blobs_dir;
	bool read_only;

	/* Serialises vset_apply, manifest rollover and vset_delete_orphans's snapshot of the
	 * state. Taken before mu. */
	struct fr_mutex apply_mu;
	struct rec_writer *mfst;  /* under apply_mu; NULL when read-only */
	uint64_t mfst_num;        /* under apply_mu: the n of the live MANIFEST-<n> */
	uint64_t mfst_bytes;      /* atomic: size of the live manifest, read by stats */
	uint64_t mfst_roll_bytes; /* under apply_mu: MFST_ROLL_BYTES unless a test changed it */
	fr_status failed;         /* under apply_mu: sticky manifest write failure, FR_OK if none */

	/* Guards the published state below. Taken after apply_mu; held only for pointer swaps
	 * and reference taking, never across I/O. */
	struct fr_mutex mu;
	struct tree_version **trees; /* under mu (written also under apply_mu): by tree_id */
	size_t tree_cnt;             /* under mu */

	/* under apply_mu (edits copy it into the tables they make); vset_set_read_env writes it
	 * holding mu too */
	struct sst_read_env read_env;

	uint64_t next_file_id; /* atomic: vset_new_file_id hands these out without a lock */
	uint64_t last_seqno;   /* atomic: written under apply_mu, read by anyone */
};

/* Copies m into a fresh table of tree tree_id whose file is path (copied) and whose reader
 * reads with env (copied; NULL: none); refs starts at 1. */
fr_status table_new_env(struct fr_io *io, const struct sst_read_env *env, const char *path,
			uint32_t tree_id, const struct sst_meta *m, struct table **out);
/* table_new_env without an environment. */
fr_status table_new(struct fr_io *io, const char *path, uint32_t tree_id,
		    const struct sst_meta *m, struct table **out);
/* A blob file of tree tree_id whose file is path (copied), read through files (may be NULL);
 * refs starts at 1. */
fr_status blob_file_new(struct fr_io *io, struct ftab *files, const char *path, uint32_t tree_id,
			const struct blob_meta *m, struct blob_file **out);
/* A new empty version with one reference. NULL on NOMEM. */
struct tree_version *tv_new(uint32_t tree_id);
/* A static empty version for vset_current to hand out when allocation fails; tv_ref and
 * tv_unref leave it alone. */
struct tree_version *tv_empty_fallback(void);


/* Test hook: start a new manifest once the current one passes `bytes`. */
void vset_set_roll_bytes(struct vset *vs, uint64_t bytes);
/* Number n of the live MANIFEST-<n> (tests). */
uint64_t vset_manifest_num(struct vset *vs);

#endif
