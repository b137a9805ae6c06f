/* SPDX-License-Identifier: MIT */
/*
 * main.c - the fractiofs daemon: parses the command line, opens (or creates) the store, mounts
 * with the FUSE low-level API and runs the multithreaded session loop until unmount or a
 * signal, then reclaims what is left of unlinked files, flushes and closes the store.
 *
 *   fractiofs [options] STORE_DIR MOUNTPOINT      (fractiofs(8))
 */
#include "ops.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdi.h"
#include "errmap.h"
#include "session.h"

#define FRACTIOFS_VERSION "0.1.0"

enum { KEY_HELP, KEY_VERSION, KEY_RO };

#define FS_OPT(t, field, v) {t, offsetof(struct fs_opts, field), v}
static const struct fuse_opt fs_opt_spec[] = {
	FS_OPT("sync", sync, 1),
	FS_OPT("no_writeback", no_writeback, 1),
	FS_OPT("chunk_size=%u", chunk_size, 0),
	FS_OPT("inline_max=%u", inline_max, 0),
	FS_OPT("entry_timeout=%lf", entry_timeout, 0),
	FS_OPT("attr_timeout=%lf", attr_timeout, 0),
	FS_OPT("read_ahead=%u", read_ahead_kb, 0),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END,
};

static void usage(const char *prog)
{
	printf("usage: %s [options] STORE_DIR MOUNTPOINT\n\n", prog);
	printf("fractiofs options (-o):\n"
	       "    -o sync                every change durable (fdatasync) before it returns\n"
	       "    -o chunk_size=N        bytes per data chunk for a new store (default 65536)\n"
	       "    -o inline_max=N        files up to N bytes live in the inode (default 4096)\n"
	       "    -o entry_timeout=S     kernel name cache timeout, seconds (default 3600)\n"
	       "    -o attr_timeout=S      kernel attribute cache timeout, seconds (default 3600)\n"
	       "    -o no_writeback        turn the kernel writeback cache off\n"
	       "    -o read_ahead=KB       kernel read-ahead window, KiB (default 1024; 0: the\n"
	       "                           kernel's own, 128; needs root)\n"
	       "    -o ro                  mount read-only (the store is opened read-only)\n\n");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct fs_opts *o = data;

	(void)outargs;
	if (key == KEY_RO) {
		o->read_only = 1;
		return 1; /* FUSE mounts read-only too */
	}
	if (key == FUSE_OPT_KEY_NONOPT && !o->store) {
		o->store = strdup(arg);
		return 0;
	}
	return 1;
}

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	static const char *names[] = {"error", "warning", "info", "debug"};

	(void)ctx;
	fprintf(stderr, "fractiofs: store %s: %s\n", names[level & 3], line);
}

/* ---- opening the store ---- */

/* Opens (creating at mkfs) one keyspace of SCHEMA.md §1. blob_threshold applies at creation
 * only: the engine keeps a tree's options from then on. */
static int open_ks(struct fs *fs, const char *name, const char *tree, uint32_t blob_threshold,
		   fr_keyspace **out)
{
	fr_keyspace_options o;
	fr_error e;
	fr_status st;

	fr_keyspace_options_init(&o);
	o.tree = tree;
	o.blob_threshold = blob_threshold;
	st = fr_keyspace_open(fs->db, name, &o, out, &e);
	if (st != FR_OK) {
		fprintf(stderr, "fractiofs: open keyspace %s: %s\n", name, e.msg);
		return -1;
	}
	return 0;
}

/* A new filesystem: the superblock and the root directory, one batch. */
static int mkfs(struct fs *fs)
{
	uint8_t sb[FSS_SUPER_LEN];
	char ks_name[FSS_DIR_KS_NAME_MAX];
	fr_keyspace_options o;
	struct fs_inode root;
	fr_batch *b = fs_batch(fs);
	fr_error e;
	int64_t now = fss_now_ns();
	int rc = -ENOMEM;

	if (!b)
		return -1;
	fss_inode_init(&root);
	fs->sb.version = FSS_FORMAT_VERSION;
	fs->sb.chunk_size = fs->opts.chunk_size;
	fs->sb.inline_max = fs->opts.inline_max;
	fs->sb.created_ns = now;
	fs->sb.mount_cnt = 1;
	fss_super_encode(&fs->sb, sb);
	root.ino = FSS_ROOT_INO;
	root.mode = S_IFDIR | 0755;
	root.uid = getuid();
	root.gid = getgid();
	root.nlink = 2;
	root.parent = FSS_ROOT_INO;
	root.generation = 1;
	root.atime_ns = root.mtime_ns = root.ctime_ns = root.btime_ns = now;
	fr_keyspace_options_init(&o);
	o.tree = FSS_TREE_DIRS;
	fss_dir_ks_name(FSS_ROOT_INO, ks_name);
	if (fr_batch_put(b, fs->super, FSS_SUPER_KEY, strlen(FSS_SUPER_KEY), sb, sizeof(sb)) ||
	    fr_batch_create_keyspace(b, ks_name, &o))
		goto out;
	rc = fs_inode_put(fs, b, &root);
	if (rc == 0 && fr_batch_commit(b, FR_PERSIST_SYNC_DATA, NULL, &e) != FR_OK) {
		fprintf(stderr, "fractiofs: creating the filesystem: %s\n", e.msg);
		rc = -EIO;
	}
out:
	fss_inode_fini(&root);
	fr_batch_free(b);
	return rc ? -1 : 0;
}

/* Reads (or creates) the superblock and bumps the mount count. */
static int load_super(struct fs *fs)
{
	uint8_t sb[FSS_SUPER_LEN];
	void *val;
	size_t len;
	fr_error e;
	fr_status st;
	int rc;

	st = fr_get(fs->super, FSS_SUPER_KEY, strlen(FSS_SUPER_KEY), &val, &len, &e);
	if (st == FR_NOT_FOUND) {
		if (fs->opts.read_only) {
			fprintf(stderr, "fractiofs: %s holds no filesystem\n", fs->opts.store);
			return -1;
		}
		return mkfs(fs);
	}
	if (st != FR_OK) {
		fprintf(stderr, "fractiofs: read superblock: %s\n", e.msg);
		return -1;
	}
	rc = fss_super_decode(val, len, &fs->sb);
	fr_free(val);
	if (rc) {
		fprintf(stderr, "fractiofs: %s: bad superblock (not a fractiofs store, or a newer "
				"format)\n", fs->opts.store);
		return -1;
	}
	if (fs->opts.read_only)
		return 0;
	fs->sb.mount_cnt++;
	fss_super_encode(&fs->sb, sb);
	st = fr_put(fs->super, FSS_SUPER_KEY, strlen(FSS_SUPER_KEY), sb, sizeof(sb), &e);
	if (st != FR_OK) {
		fprintf(stderr, "fractiofs: write superblock: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* next_ino from the largest inode number in use; inode_cnt by counting. */
static int load_counters(struct fs *fs)
{
	void *key;
	size_t klen;
	uint64_t last = FSS_ROOT_INO, cnt = 0;
	fr_error e;
	fr_status st;

	st = fr_last(fs->inodes, &key, &klen, NULL, NULL, &e);
	if (st == FR_OK) {
		if (fss_ino_key_decode(key, klen, &last) != 0)
			last = FSS_ROOT_INO;
		fr_free(key);
	} else if (st != FR_NOT_FOUND) {
		fprintf(stderr, "fractiofs: read inodes: %s\n", e.msg);
		return -1;
	}
	st = fr_len(fs->inodes, &cnt, &e);
	if (st != FR_OK) {
		fprintf(stderr, "fractiofs: count inodes: %s\n", e.msg);
		return -1;
	}
	atomic_store(&fs->next_ino, last + 1);
	atomic_store(&fs->inode_cnt, cnt);
	return 0;
}

static void store_close(struct fs *fs)
{
	fr_error e;

	itab_drop_handles(&fs->itab);
	fr_keyspace_close(fs->super);
	fr_keyspace_close(fs->inodes);
	fr_keyspace_close(fs->xattr);
	fr_keyspace_close(fs->orphans);
	fr_keyspace_close(fs->data.data);
	fs->super = fs->inodes = fs->xattr = fs->orphans = fs->data.data = NULL;
	if (fs->db && fr_db_close(fs->db, &e) != FR_OK)
		fprintf(stderr, "fractiofs: close store: %s\n", e.msg);
	fs->db = NULL;
}

static int store_open(struct fs *fs)
{
	fr_db_options o;
	fr_error e;
	fr_status st;

	fr_db_options_init(&o);
	o.read_only = fs->opts.read_only;
	/* File data arrives in large sequential runs: bigger memtables mean fewer, larger
	 * tables and fewer compactions of the data tree per byte written. */
	o.memtable_max = 64u << 20;
	o.write_buffer_max = 256u << 20;
	/* Each journal segment change waits for a sync of the old segment and the creation of a
	 * new one (two more syncs), while commits queue: 64 MiB segments pay that a quarter as
	 * often as the default 16 MiB under a stream of large writes. */
	o.journal_segment_max = 64u << 20;
	st = fr_db_open(fs->opts.store, &o, &fs->db, &e);
	if (st != FR_OK) {
		fprintf(stderr, "fractiofs: open store %s: %s\n", fs->opts.store, e.msg);
		return -1;
	}
	if (open_ks(fs, FSS_KS_SUPER, FSS_TREE_META, 0, &fs->super) ||
	    open_ks(fs, FSS_KS_INODES, FSS_TREE_META, 0, &fs->inodes) ||
	    open_ks(fs, FSS_KS_XATTR, FSS_TREE_META, 0, &fs->xattr) ||
	    open_ks(fs, FSS_KS_ORPHANS, FSS_TREE_META, 0, &fs->orphans) ||
	    open_ks(fs, FSS_KS_DATA, NULL, FSS_DATA_BLOB_THRESHOLD, &fs->data.data) ||
	    load_super(fs) ||
	    load_counters(fs))
		goto fail;
	fs->data.chunk_size = fs->sb.chunk_size;
	fs->data.inline_max = fs->opts.inline_max;
	if (fs->data.inline_max > fs->data.chunk_size)
		fs->data.inline_max = fs->data.chunk_size;
	if (!fs->opts.read_only && fs_reclaim_all(fs) != 0)
		goto fail;
	return 0;
fail:
	store_close(fs);
	return -1;
}

/* ---- session ---- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	if (!fs->opts.sync && !fs->opts.no_writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* the kernel clears set-user-ID and set-group-ID on write and chown itself, by setattr */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
#ifdef FUSE_CAP_HANDLE_KILLPRIV_V2
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV_V2;
#endif
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_write = 1u << 20;
	conn->time_gran = 1;
}

static void reclaim_cb(void *ctx, uint64_t ino)
{
	fs_reclaim(ctx, ino);
}

static void fs_destroy(void *userdata)
{
	struct fs *fs = userdata;
	fr_error e;

	if (fs->opts.read_only)
		return;
	/* nothing can reach an unlinked file once unmounted */
	itab_each_orphan(&fs->itab, reclaim_cb, fs);
	if (fr_db_flush(fs->db, &e) != FR_OK)
		fprintf(stderr, "fractiofs: flush at unmount: %s\n", e.msg);
}

static const struct fuse_lowlevel_ops fs_ops = {
	.init = fs_init,
	.destroy = fs_destroy,
	.lookup = fsop_lookup,
	.forget = fsop_forget,
	.forget_multi = fsop_forget_multi,
	.getattr = fsop_getattr,
	.setattr = fsop_setattr,
	.readlink = fsop_readlink,
	.mknod = fsop_mknod,
	.mkdir = fsop_mkdir,
	.unlink = fsop_unlink,
	.rmdir = fsop_rmdir,
	.symlink = fsop_symlink,
	.rename = fsop_rename,
	.link = fsop_link,
	.open = fsop_open,
	.read = fsop_read,
	.write = fsop_write,
	.flush = fsop_flush,
	.release = fsop_release,
	.fsync = fsop_fsync,
	.opendir = fsop_opendir,
	.readdir = fsop_readdir,
	.readdirplus = fsop_readdirplus,
	.releasedir = fsop_releasedir,
	.fsyncdir = fsop_fsyncdir,
	.statfs = fsop_statfs,
	.setxattr = fsop_setxattr,
	.getxattr = fsop_getxattr,
	.listxattr = fsop_listxattr,
	.removexattr = fsop_removexattr,
	.access = fsop_access,
	.create = fsop_create,
	.fallocate = fsop_fallocate,
	.lseek = fsop_lseek,
	.copy_file_range = fsop_copy_file_range,
};

/* -o fsname=<store path>, with commas escaped as FUSE's option parser wants. */
static int add_fsname(struct fuse_args *args, const char *store)
{
	char opt[PATH_MAX * 2 + 16];
	size_t n = 0;
	const char *p;
	int rc;

	n = (size_t)snprintf(opt, sizeof(opt), "-ofsname=");
	for (p = store; *p && n + 3 < sizeof(opt); p++) {
		if (*p == ',' || *p == '\\')
			opt[n++] = '\\';
		opt[n++] = *p;
	}
	opt[n] = 0;
	rc = fuse_opt_add_arg(args, opt);
	return rc;
}

static int has_opt(const struct fuse_args *args, const char *name)
{
	int i;

	for (i = 0; i < args->argc; i++)
		if (strstr(args->argv[i], name))
			return 1;
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts copts;
	struct fuse_session *se = NULL;
	struct fs fs;
	char store[PATH_MAX];
	int ret = 1;

	memset(&fs, 0, sizeof(fs));
	memset(&copts, 0, sizeof(copts));
	fs.opts.chunk_size = 65536;
	fs.opts.inline_max = 4096;
	/* Only this daemon changes the filesystem, and every change reaches it through the
	 * kernel that caches, which drops what a change makes stale: long timeouts are safe. */
	fs.opts.entry_timeout = 3600.0;
	fs.opts.attr_timeout = 3600.0;
	fs.opts.read_ahead_kb = 1024;
	if (fuse_opt_parse(&args, &fs.opts, fs_opt_spec, opt_proc) == -1)
		goto out_args;
	if (fuse_parse_cmdline(&args, &copts) != 0)
		goto out_args;
	if (copts.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out_args;
	}
	if (copts.show_version) {
		printf("fractiofs %s (libfractio %d.%d.%d)\n", FRACTIOFS_VERSION, FR_VERSION_MAJOR,
		       FR_VERSION_MINOR, FR_VERSION_PATCH);
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (!fs.opts.store || !copts.mountpoint) {
		fprintf(stderr, "usage: %s [options] STORE_DIR MOUNTPOINT (see %s -h)\n", argv[0],
			argv[0]);
		ret = 2;
		goto out_args;
	}
	if (fs.opts.chunk_size < 4096 || fs.opts.chunk_size > (1u << 20) ||
	    (fs.opts.chunk_size & (fs.opts.chunk_size - 1))) {
		fprintf(stderr, "fractiofs: chunk_size must be a power of two from 4096 to 1048576\n");
		ret = 2;
		goto out_args;
	}
	if (fs.opts.entry_timeout < 0 || fs.opts.attr_timeout < 0) {
		fprintf(stderr, "fractiofs: timeouts must not be negative\n");
		ret = 2;
		goto out_args;
	}
	if (mkdir(fs.opts.store, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "fractiofs: create %s: %s\n", fs.opts.store, strerror(errno));
		goto out_args;
	}
	if (!realpath(fs.opts.store, store)) {
		fprintf(stderr, "fractiofs: %s: %s\n", fs.opts.store, strerror(errno));
		goto out_args;
	}
	free(fs.opts.store);
	fs.opts.store = strdup(store);
	fs.opts.mountpoint = copts.mountpoint;
	fs.opts.debug = copts.debug;
	fs.persist = fs.opts.sync ? FR_PERSIST_SYNC_DATA : FR_PERSIST_BUFFER;
	fr_log_set(log_sink, NULL, copts.debug ? FR_LOG_INFO : FR_LOG_WARN);
	if (fuse_opt_add_arg(&args, "-odefault_permissions") ||
	    (!has_opt(&args, "fsname=") && add_fsname(&args, store)))
		goto out_args;
	if (pthread_mutex_init(&fs.ns_mu, NULL) || itab_init(&fs.itab))
		goto out_args;

	/* Open once before going to the background, so errors reach the terminal; the
	 * background child opens again (threads do not survive fork). */
	if (store_open(&fs) != 0)
		goto out_itab;
	if (!copts.foreground)
		store_close(&fs);

	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se)
		goto out_store;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, copts.mountpoint) != 0)
		goto out_signals;
	if (fuse_daemonize(copts.foreground) != 0)
		goto out_unmount;
	if (!copts.foreground && store_open(&fs) != 0)
		goto out_unmount;
	/* as root, sequential reads then reach the daemon in 1 MiB requests instead of 128 KiB */
	if (fs.opts.read_ahead_kb &&
	    fs_read_ahead_after_init(copts.mountpoint, fs.opts.read_ahead_kb, copts.debug) != 0)
		fprintf(stderr, "fractiofs: read_ahead not set: no thread\n");
	if (copts.singlethread)
		ret = fuse_session_loop(se);
	else
		/* libfuse 3.14 leaves an unset max_threads at UINT_MAX */
		ret = fs_session_loop(se,
				      copts.max_threads > 0 && copts.max_threads <= 100000
					      ? (unsigned)copts.max_threads
					      : 10,
				      fs.opts.sync != 0, fs.opts.debug != 0);
	ret = ret != 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_store:
	store_close(&fs);
out_itab:
	itab_fini(&fs.itab);
	pthread_mutex_destroy(&fs.ns_mu);
out_args:
	free(fs.opts.store);
	free(copts.mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
