/* SPDX-License-Identifier: MIT */
/*
 * data.h - file contents over the engine (fs/SCHEMA.md §4). A regular file is either inline
 * (FSI_INLINE: the bytes are the inode's payload) or chunked: chunk n holds bytes
 * [n*chunk_size, (n+1)*chunk_size) under key (ino, n) in the data keyspace. A missing chunk,
 * and the missing tail of a short chunk, read as zeros, so holes cost nothing.
 *
 * Invariant kept by every writer here: no chunk holds a byte at or beyond the file size, so
 * growing a file (truncate up, a write past a hole) never exposes old bytes.
 *
 * Writers add their operations to the caller's batch and update the caller's struct fs_inode
 * (size, flags, payload); the caller writes the inode into the same batch and commits, so data
 * and size change together. Callers serialise writers of one inode (fs.h: inode locks); reads
 * of chunks made here see the live database.
 *
 * Thread-safety: struct fsd is immutable once set up; the functions are thread-safe for
 * different inodes.
 */
#ifndef FRACTIO_FS_DATA_H
#define FRACTIO_FS_DATA_H

#include <stdint.h>
#include <sys/types.h>

#include <fractio.h>

struct fs_inode;

struct fsd {
	fr_keyspace *data;   /* the data keyspace */
	uint32_t chunk_size; /* power of two */
	uint32_t inline_max; /* a file grows out of inline storage past this size */
};

/* Reads up to len bytes at off into buf. Returns the count (short only at end of file; 0 at
 * or past it) or -errno (-EIO for a corrupt chunk, naming it in the log). */
ssize_t fsd_read(const struct fsd *d, const struct fs_inode *in, uint64_t off, void *buf,
		 size_t len);
/* Writes buf[0..len) at off: adds chunk puts to b (read-modify-write of partial chunks),
 * converts an inline file to chunks when it grows past inline_max, and sets in->size to
 * max(size, off+len). Does not touch times or mode. 0 or -errno (-EFBIG past the largest
 * file); on failure *in is unchanged and b may hold partial operations (discard it). */
int fsd_write(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
	      const void *buf, size_t len);
/* The chunks [first, end) of a write that fsd_write_whole put ahead of time (none when
 * first == end). */
struct fsd_whole {
	uint64_t first, end;
};
/* Adds to b the puts of the chunks that the write [off, off + len) covers whole, when the write
 * cannot leave the file inline (it ends past inline_max): they depend on the bytes alone, so
 * the caller builds them before it takes the inode lock and then calls fsd_write_rest. Sets *w
 * to the chunks put (perhaps none). 0 or -errno (discard b). */
int fsd_write_whole(const struct fsd *d, uint64_t ino, fr_batch *b, uint64_t off,
		    const void *buf, size_t len, struct fsd_whole *w);
/* fsd_write for a batch that already holds the chunks w of the same write. */
int fsd_write_rest(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
		   const void *buf, size_t len, const struct fsd_whole *w);
/* Sets the size: shrinking removes whole chunks past the end and trims the last one;
 * growing adds nothing (a hole). Truncating to 0 makes the file inline again. */
int fsd_truncate(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t size);
/* Zeroes [off, off+len) clipped to the size, without changing the size: whole chunks are
 * removed, partial ones rewritten. */
int fsd_punch(const struct fsd *d, struct fs_inode *in, fr_batch *b, uint64_t off,
	      uint64_t len);
/* SEEK_DATA / SEEK_HOLE from off (off < size, else -ENXIO). Data is any stored chunk (or an
 * inline file's bytes); the end of file is a hole. Sets *out. */
int fsd_seek(const struct fsd *d, const struct fs_inode *in, uint64_t off, int whence,
	     uint64_t *out);
/* Adds to b the removal of every chunk of the file (for reclaiming an inode). Uses point
 * deletes for small files and one range delete for large ones. */
int fsd_drop(const struct fsd *d, const struct fs_inode *in, fr_batch *b);

#endif
