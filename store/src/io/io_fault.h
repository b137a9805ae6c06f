/* SPDX-License-Identifier: MIT */
/*
 * io_fault.h - wraps an io and injects faults, for the fault and crash tests:
 *  - fail the Nth operation of a kind (counted from arming) with a chosen errno, once or from
 *    then on (sticky);
 *  - ENOSPC once a byte budget of writes (pwrite + append) is used up;
 *  - operation counters, so loop tests can run with the fault at N = 1, 2, ... until a run
 *    completes without reaching it.
 * For power loss use it over io_mem and call io_mem_power_cut on the inner io.
 */
#ifndef FRACTIO_IO_IO_FAULT_H
#define FRACTIO_IO_IO_FAULT_H

#include <stdbool.h>
#include <stdint.h>

struct fr_io;

enum io_fault_kind {
	IO_FAULT_OPEN = 0,
	IO_FAULT_READ = 1,   /* pread */
	IO_FAULT_WRITE = 2,  /* pwrite and append */
	IO_FAULT_SYNC = 3,   /* sync and sync_dir */
	IO_FAULT_RENAME = 4,
	IO_FAULT_UNLINK = 5,
	IO_FAULT_LINK = 6,   /* link; EXDEV makes a link look like one across file systems */
	IO_FAULT_KIND_CNT = 7,
};

/* Wraps `inner` (not owned). Destroy with io_destroy. */
struct fr_io *io_fault_new(struct fr_io *inner);
/* The nth (1-based) operation of `kind` from now fails with errno e; with sticky, every
 * later one fails too. n = 0 disarms that kind. Resets that kind's counter. */
void io_fault_arm(struct fr_io *io, enum io_fault_kind kind, uint64_t n, int e, bool sticky);
/* After `bytes` more bytes are written, writes fail with ENOSPC (UINT64_MAX disarms). */
void io_fault_set_space(struct fr_io *io, uint64_t bytes);
/* Disarms everything. */
void io_fault_clear(struct fr_io *io);
/* Operations of `kind` seen since the wrapper was made (or io_fault_reset_counts). */
uint64_t io_fault_count(struct fr_io *io, enum io_fault_kind kind);
void io_fault_reset_counts(struct fr_io *io);
/* How many faults have been injected so far. */
uint64_t io_fault_injected(struct fr_io *io);

#endif
