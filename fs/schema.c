/* SPDX-License-Identifier: MIT */
/*
 * schema.c - the key builders and value codecs of fractiofs (fs/SCHEMA.md). Keys are big-endian
 * so that the engine's bytewise order is numeric order; values are little-endian fixed-width
 * fields, encoded and decoded field by field (never by overlaying a struct). Every decoder
 * checks the length before it reads a byte and reports bad bytes as -EIO; nothing here calls
 * the engine.
 *
 * Thread-safety: all functions are pure (apart from fss_now_ns reading the clock) and
 * thread-safe.
 */
#include "schema.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- byte order helpers ---- */

static inline void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Two's complement round trip without implementation-defined conversions. */
static inline uint64_t i64_to_u64(int64_t v)
{
	return (uint64_t)v;
}

static inline int64_t u64_to_i64(uint64_t v)
{
	if (v <= (uint64_t)INT64_MAX)
		return (int64_t)v;
	return -(int64_t)(~v) - 1;
}

/* ---- keys (SCHEMA.md §1) ---- */

void fss_ino_key(uint64_t ino, uint8_t out[FSS_INO_KEY_LEN])
{
	put_be64(out, ino);
}

int fss_ino_key_decode(const void *key, size_t len, uint64_t *ino)
{
	if (len != FSS_INO_KEY_LEN)
		return -EIO;
	*ino = get_be64(key);
	return 0;
}

void fss_chunk_key(uint64_t ino, uint64_t chunk, uint8_t out[FSS_CHUNK_KEY_LEN])
{
	put_be64(out, ino);
	put_be64(out + 8, chunk);
}

int fss_chunk_key_decode(const void *key, size_t len, uint64_t *ino, uint64_t *chunk)
{
	const uint8_t *p = key;

	if (len != FSS_CHUNK_KEY_LEN)
		return -EIO;
	*ino = get_be64(p);
	*chunk = get_be64(p + 8);
	return 0;
}

/* A name longer than FSS_NAME_MAX breaks the precondition; it gets length 0, which no caller
 * can mistake for a key (every xattr key is at least 9 bytes). */
size_t fss_xattr_key(uint64_t ino, const char *name, size_t name_len,
		     uint8_t out[FSS_XATTR_KEY_MAX])
{
	if (name_len > FSS_NAME_MAX)
		return 0;
	put_be64(out, ino);
	if (name_len)
		memcpy(out + 8, name, name_len);
	return 8 + name_len;
}

void fss_dir_ks_name(uint64_t ino, char out[FSS_DIR_KS_NAME_MAX])
{
	snprintf(out, FSS_DIR_KS_NAME_MAX, "dir.%llu", (unsigned long long)ino);
}

/* ---- directory entries (SCHEMA.md §5) ---- */

/* SCHEMA.md §5: offset 0 u64 ino, offset 8 u8 dtype. */
void fss_dirent_encode(uint64_t ino, uint8_t dtype, uint8_t out[FSS_DIRENT_LEN])
{
	put_le64(out, ino);
	out[8] = dtype;
}

static bool dtype_is_valid(uint8_t t)
{
	switch (t) {
	case DT_UNKNOWN:
	case DT_FIFO:
	case DT_CHR:
	case DT_DIR:
	case DT_BLK:
	case DT_REG:
	case DT_LNK:
	case DT_SOCK:
		return true;
	default:
		return false;
	}
}

int fss_dirent_decode(const void *val, size_t len, uint64_t *ino, uint8_t *dtype)
{
	const uint8_t *p = val;
	uint64_t i;

	if (len != FSS_DIRENT_LEN)
		return -EIO;
	i = get_le64(p);
	if (i == 0 || !dtype_is_valid(p[8]))
		return -EIO;
	*ino = i;
	*dtype = p[8];
	return 0;
}

uint8_t fss_mode_dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return DT_REG;
	case S_IFDIR:
		return DT_DIR;
	case S_IFLNK:
		return DT_LNK;
	case S_IFCHR:
		return DT_CHR;
	case S_IFBLK:
		return DT_BLK;
	case S_IFIFO:
		return DT_FIFO;
	case S_IFSOCK:
		return DT_SOCK;
	default:
		return DT_UNKNOWN;
	}
}

/* ---- inodes (SCHEMA.md §3) ---- */

#define INODE_VERSION 1u
#define INODE_FLAGS_KNOWN (FSI_INLINE | FSI_XATTR)
/* Field offsets of the inode value, SCHEMA.md §3.1. */
#define INO_OFF_VERSION 0
#define INO_OFF_MODE 1
#define INO_OFF_UID 5
#define INO_OFF_GID 9
#define INO_OFF_NLINK 13
#define INO_OFF_FLAGS 17
#define INO_OFF_SIZE 21
#define INO_OFF_RDEV 29
#define INO_OFF_GENERATION 37
#define INO_OFF_ATIME 45
#define INO_OFF_MTIME 53
#define INO_OFF_CTIME 61
#define INO_OFF_BTIME 69
#define INO_OFF_PARENT 77
#define INO_OFF_PAYLOAD_LEN 85
#define INO_HEADER_LEN 89
/* Sanity bound on payload_len: max(FSS_SYMLINK_MAX + 1, 1 MiB). */
#define INO_PAYLOAD_MAX ((FSS_SYMLINK_MAX + 1) > (1u << 20) ? (FSS_SYMLINK_MAX + 1) : (1u << 20))

void fss_inode_init(struct fs_inode *in)
{
	memset(in, 0, sizeof(*in));
	in->payload = NULL;
}

void fss_inode_fini(struct fs_inode *in)
{
	if (!in)
		return;
	free(in->payload);
	fss_inode_init(in);
}

int fss_inode_set_payload(struct fs_inode *in, const void *p, size_t n)
{
	void *copy = NULL;

	if (n) {
		copy = malloc(n);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, p, n);
	}
	free(in->payload);
	in->payload = copy;
	in->payload_len = n;
	return 0;
}

size_t fss_inode_encoded_len(const struct fs_inode *in)
{
	return INO_HEADER_LEN + in->payload_len;
}

void fss_inode_encode(const struct fs_inode *in, uint8_t *out)
{
	out[INO_OFF_VERSION] = INODE_VERSION;
	put_le32(out + INO_OFF_MODE, in->mode);
	put_le32(out + INO_OFF_UID, in->uid);
	put_le32(out + INO_OFF_GID, in->gid);
	put_le32(out + INO_OFF_NLINK, in->nlink);
	put_le32(out + INO_OFF_FLAGS, in->flags);
	put_le64(out + INO_OFF_SIZE, in->size);
	put_le64(out + INO_OFF_RDEV, in->rdev);
	put_le64(out + INO_OFF_GENERATION, in->generation);
	put_le64(out + INO_OFF_ATIME, i64_to_u64(in->atime_ns));
	put_le64(out + INO_OFF_MTIME, i64_to_u64(in->mtime_ns));
	put_le64(out + INO_OFF_CTIME, i64_to_u64(in->ctime_ns));
	put_le64(out + INO_OFF_BTIME, i64_to_u64(in->btime_ns));
	put_le64(out + INO_OFF_PARENT, in->parent);
	put_le32(out + INO_OFF_PAYLOAD_LEN, (uint32_t)in->payload_len);
	if (in->payload_len)
		memcpy(out + INO_HEADER_LEN, in->payload, in->payload_len);
}

int fss_inode_decode(uint64_t ino, const void *val, size_t len, struct fs_inode *out)
{
	const uint8_t *p = val;
	uint32_t plen, flags;
	void *payload = NULL;

	int rc = -EIO;

	/* Everything is checked and copied before *out is touched, so val may even alias
	 * out->payload. */
	if (len < INO_HEADER_LEN || p[INO_OFF_VERSION] != INODE_VERSION)
		goto out_fail;
	plen = get_le32(p + INO_OFF_PAYLOAD_LEN);
	if (plen > INO_PAYLOAD_MAX || len - INO_HEADER_LEN != plen)
		goto out_fail;
	flags = get_le32(p + INO_OFF_FLAGS);
	if (flags & ~INODE_FLAGS_KNOWN)
		goto out_fail;
	if (plen) {
		payload = malloc(plen);
		if (!payload) {
			rc = -ENOMEM;
			goto out_fail;
		}
		memcpy(payload, p + INO_HEADER_LEN, plen);
	}

	fss_inode_fini(out);
	out->ino = ino;
	out->mode = get_le32(p + INO_OFF_MODE);
	out->uid = get_le32(p + INO_OFF_UID);
	out->gid = get_le32(p + INO_OFF_GID);
	out->nlink = get_le32(p + INO_OFF_NLINK);
	out->flags = flags;
	out->size = get_le64(p + INO_OFF_SIZE);
	out->rdev = get_le64(p + INO_OFF_RDEV);
	out->generation = get_le64(p + INO_OFF_GENERATION);
	out->atime_ns = u64_to_i64(get_le64(p + INO_OFF_ATIME));
	out->mtime_ns = u64_to_i64(get_le64(p + INO_OFF_MTIME));
	out->ctime_ns = u64_to_i64(get_le64(p + INO_OFF_CTIME));
	out->btime_ns = u64_to_i64(get_le64(p + INO_OFF_BTIME));
	out->parent = get_le64(p + INO_OFF_PARENT);
	out->payload = payload;
	out->payload_len = plen;
	return 0;

out_fail:
	fss_inode_fini(out);
	return rc;
}

/* ---- superblock (SCHEMA.md §2) ---- */

#define SUP_OFF_VERSION 0
#define SUP_OFF_CHUNK_SIZE 4
#define SUP_OFF_INLINE_MAX 8
#define SUP_OFF_RESERVED 12
#define SUP_OFF_CREATED 16
#define SUP_OFF_MOUNT_CNT 24
#define SUP_CHUNK_MIN 4096u
#define SUP_CHUNK_MAX (1u << 20)

void fss_super_encode(const struct fs_super *s, uint8_t out[FSS_SUPER_LEN])
{
	put_le32(out + SUP_OFF_VERSION, s->version);
	put_le32(out + SUP_OFF_CHUNK_SIZE, s->chunk_size);
	put_le32(out + SUP_OFF_INLINE_MAX, s->inline_max);
	put_le32(out + SUP_OFF_RESERVED, 0);
	put_le64(out + SUP_OFF_CREATED, i64_to_u64(s->created_ns));
	put_le64(out + SUP_OFF_MOUNT_CNT, s->mount_cnt);
}

int fss_super_decode(const void *val, size_t len, struct fs_super *out)
{
	const uint8_t *p = val;
	uint32_t version, cs, imax;

	if (len != FSS_SUPER_LEN)
		return -EIO;
	version = get_le32(p + SUP_OFF_VERSION);
	cs = get_le32(p + SUP_OFF_CHUNK_SIZE);
	imax = get_le32(p + SUP_OFF_INLINE_MAX);
	if (version != FSS_FORMAT_VERSION || get_le32(p + SUP_OFF_RESERVED) != 0)
		return -EIO;
	if (cs < SUP_CHUNK_MIN || cs > SUP_CHUNK_MAX || (cs & (cs - 1)) != 0 || imax > cs)
		return -EIO;
	out->version = version;
	out->chunk_size = cs;
	out->inline_max = imax;
	out->created_ns = u64_to_i64(get_le64(p + SUP_OFF_CREATED));
	out->mount_cnt = get_le64(p + SUP_OFF_MOUNT_CNT);
	return 0;
}

/* ---- names ---- */

int fss_name_check(const char *name)
{
	size_t len;

	if (!name || name[0] == '\0')
		return -EINVAL;
	len = strnlen(name, FSS_NAME_MAX + 1);
	if (len > FSS_NAME_MAX)
		return -ENAMETOOLONG;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || memchr(name, '/', len))
		return -EINVAL;
	return 0;
}

/* ---- time ---- */

int64_t fss_now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
