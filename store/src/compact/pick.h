/* SPDX-License-Identifier: MIT */
/*
 * pick.h - choosing the next compaction of one tree, for the three strategies (leveled, tiered,
 * FIFO). Pure: it looks at one tree_version and the tree's policy and returns a plan; running
 * the plan (merging, writing tables, applying the edit) is the caller's.
 *
 * Version invariants the plans keep: L0 tables may overlap and are ordered newest first; each
 * level >= 1 is one sorted run of disjoint tables; a key's newer versions are never in a deeper
 * level than its older ones (so every plan takes, with a table of level L, every table of
 * level L+1..out_level that overlaps the key range being moved, and all L0 tables older than
 * any L0 table it takes). Key ranges are the tables' inclusive [smallest, largest] user keys,
 * compared bytewise. Two neighbours of a level may share a boundary key; a plan never takes one
 * without the other (a "clean cut"), so a key's versions never end up split across levels the
 * wrong way round. Merge outputs (cut from the merged inputs) fall inside the span of the
 * inputs, and no table outside the inputs at out_level overlaps that span, so out_level stays
 * disjoint.
 *
 * Leveled. Level targets: target(1) = l0_trigger * table_target_size (256 MiB by default: L1
 * holds about one L0 trigger's worth of full-size tables), target(L + 1) = target(L) *
 * level_ratio (2.5 GiB, 25 GiB, ... by default). L0 scores cnt / l0_trigger (due at >= 1);
 * levels 1..5 score bytes / target(L) (due above 1); L6 is never scored. The highest due score
 * wins, the shallower level on a tie.
 *  - L0: every L0 table, plus the tables of the output level overlapping their span.
 *  - Level L >= 1: one table of L (with its clean-cut neighbours) and the overlapping tables of
 *    the output level. Of the candidates whose overlap is at most 25 table targets, the one
 *    with the least overlap bytes per input byte (the cheapest merge per byte pushed down)
 *    wins, then the oldest (max seqno). If every candidate overlaps more, the least
 *    overlapping one is taken anyway, so a level past its target always makes progress.
 *  - Output level ("pull-down"): the next level N = L + 1. When N is empty, data goes past it
 *    to the first non-empty level D below while D holds less than target(N) (D stands in for
 *    N until it outgrows N's target), and to L6 when everything below is empty. So a young
 *    tree compacts L0 straight into L6, and the middle levels fill from the top as L6 grows.
 *  - Nothing overlapping at the output level (and, for L0, the L0 tables pairwise disjoint):
 *    PICK_MOVE instead of a merge.
 *
 * Tiered (universal-style, one sorted run per level slot). The sorted runs, newest first, are
 * the L0 tables, then each non-empty level. Runs are merged whole and only with their
 * neighbours in age order; the result goes to the slot of the oldest run merged.
 *  - When L0 holds l0_trigger tables and there is an empty level above the shallowest
 *    non-empty one, all of L0 becomes a new run in the deepest such empty level (L6 at first;
 *    a PICK_MOVE when the L0 tables are pairwise disjoint).
 *  - Otherwise, level_ratio (at most 6, the level slots) or more consecutive level runs of
 *    similar size (the largest less than level_ratio times the smallest) are merged into one.
 *  - Otherwise, when L0 is due and L1 is taken, L0 is merged with the run of L1 and with each
 *    following run no larger than everything already in the merge.
 * While slots last, data is rewritten about once per level_ratio-fold growth of its run
 * (instead of about level_ratio / 2 times per level under leveled); once all six are taken,
 * merges through L1 rewrite more. The price is up to 6 level runs (plus L0) to read.
 *
 * FIFO never merges. The tables of all levels, oldest first (by max seqno, then id), are
 * dropped while the rest exceed fifo_limit_bytes or the oldest one left is expired (created_s
 * + fifo_ttl_s < now_s; created_s == 0 is unknown and never expires, which also keeps every
 * newer table from expiring). Drops are always a prefix of that order: no table is dropped
 * while an older one is kept. One plan satisfies both rules.
 *
 * Policy values: l0_trigger, level_ratio or table_target_size 0 mean the default (4, 10,
 * 64 MiB); level_ratio 1 counts as 2; fifo_limit_bytes 0 means no size limit.
 */
#ifndef FRACTIO_COMPACT_PICK_H
#define FRACTIO_COMPACT_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct table;
struct tree_version;

enum compact_strategy {
	CS_LEVELED = 0, /* values equal fr_compaction's */
	CS_TIERED = 1,
	CS_FIFO = 2,
};

struct compact_policy {
	enum compact_strategy strategy;
	uint32_t l0_trigger;        /* leveled, tiered: L0 tables that start a compaction */
	uint32_t level_ratio;       /* leveled: target(L+1) = target(L) * ratio; tiered: this many
				     * runs of similar size (within this ratio) merged at once */
	uint64_t table_target_size; /* output tables are cut near this size */
	uint64_t fifo_limit_bytes;  /* FIFO: total table bytes kept (0: no limit) */
	uint64_t fifo_ttl_s;        /* FIFO: drop tables created longer ago than this; 0: never */
};
/* Leveled, 4, 10, 64 MiB, 1 GiB, 0. */
void compact_policy_default(struct compact_policy *p);

enum pick_kind {
	PICK_NONE = 0,  /* nothing to do */
	PICK_MERGE = 1, /* merge the inputs into new tables at out_level */
	PICK_MOVE = 2,  /* move the inputs unchanged to out_level (no overlap there): an edit only */
	PICK_DROP = 3,  /* delete the inputs (FIFO) */
};

struct pick_input {
	uint32_t level;
	struct table *t; /* borrowed from the version the plan was made from */
};

struct compact_pick {
	enum pick_kind kind;
	struct pick_input *in; /* fr_malloc'd, grouped by level ascending; L0 newest first, other
				* levels in key order (as in the version) */
	size_t in_cnt;
	uint32_t out_level;    /* MERGE, MOVE: >= 1 and >= every input's level; DROP: 0 */
	bool bottom;           /* nothing outside the inputs at or below out_level overlaps the
				* span [min smallest, max largest] of the inputs: tombstones older
				* than every snapshot may be dropped (false for DROP) */
	uint64_t target_size;  /* cut outputs near this */
	double score;          /* how urgent (>= 1 means past a target), for logs and stats */
};

/* Chooses the most urgent compaction of v under p, or PICK_NONE. `now_s` is wall-clock seconds
 * (FIFO's TTL). `major` asks for a full compaction: every table merged into the last level
 * (leveled, tiered), or the limit and TTL applied (FIFO). A major request on an empty tree is
 * PICK_NONE; on any other it rewrites every table, even a tree already in one last-level run
 * (it may hold versions only a since-closed snapshot needed). The caller runs one major plan,
 * it does not loop on it.
 * Repeated non-major picking, each plan applied, reaches PICK_NONE.
 * *out is always initialised (PICK_NONE, no inputs, on failure). FR_NOMEM only. */
fr_status compact_pick(const struct tree_version *v, const struct compact_policy *p,
		       uint64_t now_s, bool major, struct compact_pick *out);
/* Frees the inputs array and resets pk to PICK_NONE. NULL allowed. */
void compact_pick_fini(struct compact_pick *pk);

/* The target size of level L >= 1 under a leveled policy (for stats and tests); saturates at
 * UINT64_MAX; 0 for L0, whose trigger is a table count. */
uint64_t compact_level_target(const struct compact_policy *p, uint32_t level);

#endif
