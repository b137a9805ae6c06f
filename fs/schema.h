/* SPDX-License-Identifier: MIT */
/*
 * schema.h - how fractiofs lays a POSIX tree out in the engine (fs/SCHEMA.md): key builders and
 * the value codecs for inodes, directory entries and the superblock. Pure functions, no engine
 * calls: every decoder checks lengths before it reads and reports bad bytes as -EIO.
 *
 * Keys are big-endian so that iteration order is numeric; values are little-endian fixed-width
 * fields (as in store/FORMAT.md).
 */
#ifndef FRACTIO_FS_SCHEMA_H
#define FRACTIO_FS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FSS_ROOT_INO 1ULL          /* FUSE_ROOT_ID */
#define FSS_NAME_MAX 255           /* longest entry or xattr name, bytes */
#define FSS_SYMLINK_MAX 4095       /* longest symlink target, bytes */
#define FSS_XATTR_VALUE_MAX 65536  /* longest xattr value, bytes (XATTR_SIZE_MAX) */
#define FSS_INO_KEY_LEN 8
#define FSS_CHUNK_KEY_LEN 16
#define FSS_XATTR_KEY_MAX (8 + FSS_NAME_MAX)
#define FSS_DIRENT_LEN 9           /* value of a directory entry */
#define FSS_DIR_KS_NAME_MAX 32     /* "dir." + decimal u64 + NUL fits */

/* Keyspace and tree names (SCHEMA.md §1). */
#define FSS_KS_SUPER "super"
#define FSS_KS_INODES "inodes"
#define FSS_KS_XATTR "xattr"
#define FSS_KS_ORPHANS "orphans"
#define FSS_KS_DATA "data"
#define FSS_TREE_META "meta"
#define FSS_TREE_DIRS "dirs"
#define FSS_TREE_DATA "data"
/* Chunks of at least this many bytes live in the data tree's blob files (SCHEMA.md §4), so
 * compactions of the data tree move handles, not file contents. Set when the tree is created. */
#define FSS_DATA_BLOB_THRESHOLD 16384u
/* The one key of the super keyspace. */
#define FSS_SUPER_KEY "super"

/* Inode flags (SCHEMA.md §3), explicit values, never reused. */
#define FSI_INLINE 0x1u /* regular file whose contents are the inode's payload */
#define FSI_XATTR 0x2u  /* the inode may have entries in the xattr keyspace */

/* A decoded inode record. `payload` is owned (malloc) by the struct: the symlink target for
 * symlinks, the file contents for FSI_INLINE regular files, otherwise NULL. */
struct fs_inode {
	uint64_t ino;        /* not stored in the value: the key */
	uint32_t mode;       /* S_IFMT type bits and permission bits */
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint32_t flags;      /* FSI_* */
	uint64_t size;       /* bytes; for symlinks the target length */
	uint64_t rdev;
	uint64_t generation;
	int64_t atime_ns;    /* nanoseconds since the epoch */
	int64_t mtime_ns;
	int64_t ctime_ns;
	int64_t btime_ns;    /* creation time */
	uint64_t parent;     /* directories: the ino of the directory holding it (root: itself);
			      * 0 for other types */
	void *payload;
	size_t payload_len;
};

/* Superblock: written at mkfs, mount_cnt bumped at every read-write mount. */
#define FSS_FORMAT_VERSION 1u
struct fs_super {
	uint32_t version;     /* FSS_FORMAT_VERSION */
	uint32_t chunk_size;  /* bytes per data chunk, power of two, 4 KiB..1 MiB */
	uint32_t inline_max;  /* largest file kept inline at creation time (informational) */
	int64_t created_ns;
	uint64_t mount_cnt;   /* generation source: inodes made in mount n carry generation n */
};

/* ---- keys ---- */
void fss_ino_key(uint64_t ino, uint8_t out[FSS_INO_KEY_LEN]);
/* -EIO unless len == 8. */
int fss_ino_key_decode(const void *key, size_t len, uint64_t *ino);
void fss_chunk_key(uint64_t ino, uint64_t chunk, uint8_t out[FSS_CHUNK_KEY_LEN]);
int fss_chunk_key_decode(const void *key, size_t len, uint64_t *ino, uint64_t *chunk);
/* be64 ino then the name bytes; returns the key length. name_len <= FSS_NAME_MAX. */
size_t fss_xattr_key(uint64_t ino, const char *name, size_t name_len,
		     uint8_t out[FSS_XATTR_KEY_MAX]);
/* "dir.<ino in decimal>": the keyspace of directory ino. */
void fss_dir_ks_name(uint64_t ino, char out[FSS_DIR_KS_NAME_MAX]);

/* ---- directory entries: key = name bytes, value = child ino + DT_* type ---- */
void fss_dirent_encode(uint64_t ino, uint8_t dtype, uint8_t out[FSS_DIRENT_LEN]);
int fss_dirent_decode(const void *val, size_t len, uint64_t *ino, uint8_t *dtype);
/* DT_* type for an S_IFMT mode. */
uint8_t fss_mode_dtype(uint32_t mode);

/* ---- inodes ---- */
/* Zeroes the struct (payload NULL). */
void fss_inode_init(struct fs_inode *in);
/* Frees the payload. Accepts a zeroed struct. */
void fss_inode_fini(struct fs_inode *in);
/* Replaces the payload with a copy of p[0..n) (n may be 0: payload NULL). -ENOMEM on failure,
 * and the old payload is kept. */
int fss_inode_set_payload(struct fs_inode *in, const void *p, size_t n);
size_t fss_inode_encoded_len(const struct fs_inode *in);
/* Writes fss_inode_encoded_len(in) bytes to out. */
void fss_inode_encode(const struct fs_inode *in, uint8_t *out);
/* Decodes a value into *out (which the caller has fss_inode_init'ed or fini'ed); out->ino is
 * set to ino. -EIO on bad bytes (wrong version, short, lengths that disagree), -ENOMEM. On
 * failure *out is left initialised and empty. */
int fss_inode_decode(uint64_t ino, const void *val, size_t len, struct fs_inode *out);

/* ---- superblock ---- */
#define FSS_SUPER_LEN 32
void fss_super_encode(const struct fs_super *s, uint8_t out[FSS_SUPER_LEN]);
int fss_super_decode(const void *val, size_t len, struct fs_super *out);

/* ---- names ---- */
/* 0, -ENAMETOOLONG (> 255 bytes), or -EINVAL (empty, "." or "..", or holds '/'). */
int fss_name_check(const char *name);

/* ---- time ---- */
int64_t fss_now_ns(void);

#endif
