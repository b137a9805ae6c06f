/* SPDX-License-Identifier: MIT */
/*
 * io_mem.h - an in-memory file system for tests. Each file has its current contents and a
 * durable image; sync(file) makes the contents durable, sync_dir(dir) makes the names in that
 * directory (creations, renames, unlinks) durable. io_mem_power_cut() throws away everything not
 * durable, as a machine losing power would, and leaves the io usable for a reopen.
 * Locks are released by io_close of the lock handle or by a power cut.
 */
#ifndef FRACTIO_IO_IO_MEM_H
#define FRACTIO_IO_IO_MEM_H

#include <stdint.h>

struct fr_io;

struct fr_io *io_mem_new(void);
void io_mem_power_cut(struct fr_io *io);
/* total bytes of current file contents (for tests) */
uint64_t io_mem_bytes(struct fr_io *io);

#endif
