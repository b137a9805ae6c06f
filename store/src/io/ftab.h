/* SPDX-License-Identifier: MIT */
/*
 * ftab.h - a bounded table of open read-only files, keyed by a file id (a table id), so that a
 * database with many tables holds at most max_open descriptors however many readers it has.
 *
 * A file is opened on demand by the first read of its id and stays open while idle; when a
 * read needs a slot and all max_open are taken, the least recently used idle file is closed.
 * A file is "in use" only for the length of one ftab_pread or ftab_size call. The bound is
 * strict: a call that finds every slot in use (or being opened or closed) waits for one, so the
 * number of descriptors the table holds never exceeds max_open, even with more concurrent
 * callers than slots. A call holds at most one slot and never waits while holding one, so the
 * waiting cannot deadlock.
 *
 * An id names one path for as long as the table knows the id (the path given on first use is
 * the one opened); ftab_forget ends that, and must come before the file is deleted so that no
 * descriptor keeps a deleted file's space.
 *
 * Thread-safety: thread-safe. One mutex (a leaf lock) guards the table; it is never held across
 * an open, a read or a close.
 */
#ifndef FRACTIO_IO_FTAB_H
#define FRACTIO_IO_FTAB_H

#include <stddef.h>
#include <stdint.h>

#include "fractio.h"

struct fr_io;
struct ftab;

/* A table over io (borrowed: it must outlive the table) holding at most max_open files
 * (>= 1, else FR_INVALID). FR_NOMEM. */
fr_status ftab_new(struct fr_io *io, size_t max_open, struct ftab **out, fr_error *err);
/* Closes every file. No call may be in progress. NULL allowed. */
void ftab_free(struct ftab *t);

/* Reads up to len bytes at off of file id (opened read-only from path if it is not open);
 * *got < len only at end of file. Errors are those of io_open (FR_NOT_FOUND for a missing
 * file) and io_pread, naming the path. */
fr_status ftab_pread(struct ftab *t, uint64_t id, const char *path, void *buf, size_t len,
		     uint64_t off, size_t *got, fr_error *err);
/* The size of file id, opening it like ftab_pread. */
fr_status ftab_size(struct ftab *t, uint64_t id, const char *path, uint64_t *out, fr_error *err);
/* Closes file id (once no call is using it) and forgets its path. Unknown ids are ignored. */
void ftab_forget(struct ftab *t, uint64_t id);
/* Files open now, counting those being opened or closed. */
size_t ftab_open_cnt(struct ftab *t);

#endif
