/* SPDX-License-Identifier: MIT */
/*
 * fractio.c - the fractio command-line tool: put, get, delete and scan keys, list keyspaces,
 * print statistics, flush, compact and checkpoint a libfractio database from the shell.
 *
 * Every subcommand opens the database, does one thing and closes it again. Commands that only
 * read (get, scan, keyspaces, stats) open the database read-only and never create it or any
 * keyspace; commands that write (put, del, flush, compact, checkpoint) open it for writing (a
 * checkpoint flushes the memtables first), and only put
 * creates a missing database or keyspace. The tool uses nothing but the public API in
 * fractio.h. Exit status: 0 on success, 1 on failure or when get finds no value, EX_USAGE (64)
 * for a bad command line. fractio.1 is the manual; usage() below mirrors its synopsis.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <err.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "fractio.h"

#define DEFAULT_KEYSPACE "default"

/* Which options a subcommand accepts. */
enum {
	OPT_KEYSPACE = 1 << 0,
	OPT_SCAN = 1 << 1, /* --prefix, --from, --to, --reverse */
	OPT_SYNC = 1 << 2,
};

/* The parsed command line. */
struct cli {
	const char *cmd;
	const char *db_path;
	char **args;		/* operands after DB */
	const char *keyspace;	/* DEFAULT_KEYSPACE unless --keyspace */
	bool keyspace_given;
	const char *prefix;
	const char *from;
	const char *to;
	bool reverse;
	bool sync;
	int verbose;
};

struct command {
	const char *name;
	int nargs;		/* operands after DB */
	unsigned opts;		/* OPT_* accepted */
	bool writes;		/* opens the database for writing */
	int (*run)(fr_db *db, const struct cli *c);
};

static const char usage_text[] =
	"usage: fractio [-v] put DB KEY VALUE [--keyspace NAME] [--sync]\n"
	"       fractio [-v] get DB KEY [--keyspace NAME]\n"
	"       fractio [-v] del DB KEY [--keyspace NAME] [--sync]\n"
	"       fractio [-v] scan DB [--keyspace NAME] [--prefix P | --from A --to B] [--reverse]\n"
	"       fractio [-v] keyspaces DB\n"
	"       fractio [-v] stats DB [--keyspace NAME]\n"
	"       fractio [-v] flush DB [--sync]\n"
	"       fractio [-v] compact DB [--keyspace NAME] [--sync]\n"
	"       fractio [-v] checkpoint DB DIR\n"
	"       fractio --help | --version\n";

static const char help_text[] =
	"\n"
	"commands:\n"
	"  put DB KEY VALUE   store VALUE under KEY (creates DB and keyspace if missing)\n"
	"  get DB KEY         write the value of KEY to stdout as is; exit 1 if absent\n"
	"  del DB KEY         delete KEY\n"
	"  scan DB            print one KEY<TAB>VALUE line per entry, in key order\n"
	"  keyspaces DB       print the name of every keyspace, one per line\n"
	"  stats DB           print database statistics (and the keyspace's with --keyspace)\n"
	"  flush DB           write every in-memory table to disk and wait for it\n"
	"  compact DB         merge all tables of the keyspace's tree into the last level\n"
	"  checkpoint DB DIR  write a consistent copy of DB to DIR (new or empty), hard-linking\n"
	"                     table files (copying them on another file system)\n"
	"\n"
	"options:\n"
	"  -k, --keyspace NAME   keyspace to use (default \"default\")\n"
	"  -p, --prefix P        scan: only keys that start with P\n"
	"  -f, --from A          scan: only keys >= A\n"
	"  -t, --to B            scan: only keys < B\n"
	"  -r, --reverse         scan: largest key first\n"
	"  -s, --sync            put, del, flush, compact: fsync before returning\n"
	"  -v, --verbose         print engine log lines (twice: debug lines too)\n"
	"  -h, --help            print this help\n"
	"  -V, --version         print the version\n"
	"\n"
	"Put -- before operands that start with '-'. See fractio(1).\n";

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(EX_USAGE);
}

/* The engine's message for a failure, or the status text when it left none. */
static const char *errtext(fr_status st, const fr_error *e)
{
	if (e->code == st && e->msg[0] != '\0')
		return e->msg;
	return fr_status_str(st);
}

static void log_sink(void *ctx, fr_log_level level, const char *line)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	const char *name = (unsigned)level < 4 ? names[level] : "log";

	(void)ctx;
	fprintf(stderr, "fractio: engine %s: %s\n", name, line);
}

/*
 * Opens keyspace c->keyspace. Unless `create` is set, a missing keyspace is reported and
 * not created. Returns 0 or 1 (already reported).
 */
static int open_keyspace(fr_db *db, const struct cli *c, bool create, fr_keyspace **out)
{
	fr_error e = { 0 };
	fr_status st;
	bool exists = false;

	*out = NULL;
	if (!create) {
		st = fr_keyspace_exists(db, c->keyspace, &exists, &e);
		if (st != FR_OK) {
			warnx("keyspace %s: %s", c->keyspace, errtext(st, &e));
			return 1;
		}
		if (!exists) {
			warnx("keyspace %s does not exist in %s", c->keyspace, c->db_path);
			return 1;
		}
	}
	st = fr_keyspace_open(db, c->keyspace, NULL, out, &e);
	if (st != FR_OK) {
		warnx("keyspace %s: %s", c->keyspace, errtext(st, &e));
		return 1;
	}
	return 0;
}

/* Makes everything committed so far durable with fsync, when --sync was given. */
static int sync_if_asked(fr_db *db, const struct cli *c)
{
	fr_error e = { 0 };
	fr_status st;

	if (!c->sync)
		return 0;
	st = fr_db_persist(db, FR_PERSIST_SYNC_ALL, &e);
	if (st != FR_OK) {
		warnx("sync %s: %s", c->db_path, errtext(st, &e));
		return 1;
	}
	return 0;
}

/* put and del: one batch with one operation, committed with the chosen persist mode. */
static int write_one(fr_db *db, const struct cli *c, bool put)
{
	const char *key = c->args[0];
	fr_persist mode = c->sync ? FR_PERSIST_SYNC_ALL : FR_PERSIST_BUFFER;
	fr_keyspace *ks = NULL;
	fr_batch *b = NULL;
	fr_error e = { 0 };
	fr_status st;
	int rc = 1;

	if (open_keyspace(db, c, put, &ks) != 0)
		return 1;
	st = fr_batch_new(db, &b);
	if (st != FR_OK) {
		warnx("batch: %s", fr_status_str(st));
		goto out_close_ks;
	}
	if (put)
		st = fr_batch_put(b, ks, key, strlen(key), c->args[1], strlen(c->args[1]));
	else
		st = fr_batch_remove(b, ks, key, strlen(key));
	if (st != FR_OK) {
		warnx("%s %s: %s", put ? "put" : "del", key, fr_status_str(st));
		goto out_free_batch;
	}
	st = fr_batch_commit(b, mode, NULL, &e);
	if (st != FR_OK) {
		warnx("%s %s: %s", put ? "put" : "del", key, errtext(st, &e));
		goto out_free_batch;
	}
	rc = 0;
out_free_batch:
	fr_batch_free(b);
out_close_ks:
	fr_keyspace_close(ks);
	return rc;
}

static int cmd_put(fr_db *db, const struct cli *c)
{
	return write_one(db, c, true);
}

static int cmd_del(fr_db *db, const struct cli *c)
{
	return write_one(db, c, false);
}

static int cmd_get(fr_db *db, const struct cli *c)
{
	const char *key = c->args[0];
	fr_keyspace *ks = NULL;
	void *val = NULL;
	size_t val_len = 0;
	fr_error e = { 0 };
	fr_status st;
	int rc = 1;

	if (open_keyspace(db, c, false, &ks) != 0)
		return 1;
	st = fr_get(ks, key, strlen(key), &val, &val_len, &e);
	if (st == FR_NOT_FOUND) {
		warnx("%s: not found", key);
		goto out_close_ks;
	}
	if (st != FR_OK) {
		warnx("get %s: %s", key, errtext(st, &e));
		goto out_close_ks;
	}
	if (val_len > 0 && fwrite(val, 1, val_len, stdout) != val_len) {
		warn("stdout");
		goto out_free_val;
	}
	if (fflush(stdout) != 0) {
		warn("stdout");
		goto out_free_val;
	}
	rc = 0;
out_free_val:
	fr_free(val);
out_close_ks:
	fr_keyspace_close(ks);
	return rc;
}

/*
 * Writes bytes so that one entry stays one line: backslash, tab, newline, carriage return and
 * the other ASCII control bytes are escaped (\\ \t \n \r \xHH); everything else, UTF-8
 * included, is written as is.
 */
static void put_escaped(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = p[i];

		if (ch == '\\')
			fputs("\\\\", stdout);
		else if (ch == '\t')
			fputs("\\t", stdout);
		else if (ch == '\n')
			fputs("\\n", stdout);
		else if (ch == '\r')
			fputs("\\r", stdout);
		else if (ch < 0x20 || ch == 0x7f)
			printf("\\x%02x", ch);
		else
			putchar(ch);
	}
}

static int cmd_scan(fr_db *db, const struct cli *c)
{
	fr_iter_options o;
	fr_keyspace *ks = NULL;
	fr_iter *it = NULL;
	fr_error e = { 0 };
	fr_status st;
	int rc = 1;

	if (open_keyspace(db, c, false, &ks) != 0)
		return 1;
	memset(&o, 0, sizeof(o));
	if (c->prefix != NULL && c->prefix[0] != '\0') {
		o.prefix = c->prefix;
		o.prefix_len = strlen(c->prefix);
	}
	if (c->from != NULL) {
		o.lower = c->from;
		o.lower_len = strlen(c->from);
	}
	if (c->to != NULL) {
		o.upper = c->to;
		o.upper_len = strlen(c->to);
	}
	o.reverse = c->reverse;
	st = fr_iter_open(ks, &o, &it, &e);
	if (st != FR_OK) {
		warnx("scan %s: %s", c->keyspace, errtext(st, &e));
		goto out_close_ks;
	}
	while (fr_iter_valid(it)) {
		size_t klen = 0, vlen = 0;
		const void *k = fr_iter_key(it, &klen);
		const void *v = fr_iter_value(it, &vlen);

		put_escaped(k, klen);
		putchar('\t');
		put_escaped(v, vlen);
		putchar('\n');
		if (ferror(stdout)) {
			warn("stdout");
			goto out_close_iter;
		}
		st = fr_iter_next(it, &e);
		if (st != FR_OK) {
			warnx("scan %s: %s", c->keyspace, errtext(st, &e));
			goto out_close_iter;
		}
	}
	if (fflush(stdout) != 0) {
		warn("stdout");
		goto out_close_iter;
	}
	rc = 0;
out_close_iter:
	fr_iter_close(it);
out_close_ks:
	fr_keyspace_close(ks);
	return rc;
}

static int print_keyspace(void *ctx, const char *name)
{
	(void)ctx;
	if (puts(name) == EOF)
		return 1; /* stop the walk; the caller reports the write error */
	return 0;
}

static int cmd_keyspaces(fr_db *db, const struct cli *c)
{
	fr_error e = { 0 };
	fr_status st;

	st = fr_keyspace_list(db, print_keyspace, NULL, &e);
	if (st != FR_OK) {
		warnx("keyspaces %s: %s", c->db_path, errtext(st, &e));
		return 1;
	}
	if (ferror(stdout) || fflush(stdout) != 0) {
		warn("stdout");
		return 1;
	}
	return 0;
}

#define PRINT_STAT(name, value) printf("%s: %" PRIu64 "\n", name, (uint64_t)(value))

static int cmd_stats(fr_db *db, const struct cli *c)
{
	fr_db_stats s;
	fr_keyspace_stats ks_stats;
	fr_keyspace *ks = NULL;
	fr_error e = { 0 };
	fr_status st;
	char name[64];
	int i, rc = 1;

	st = fr_db_stats_get(db, &s, &e);
	if (st != FR_OK) {
		warnx("stats %s: %s", c->db_path, errtext(st, &e));
		return 1;
	}
	PRINT_STAT("seqno", s.seqno);
	PRINT_STAT("visible_seqno", s.visible_seqno);
	PRINT_STAT("keyspace_cnt", s.keyspace_cnt);
	PRINT_STAT("tree_cnt", s.tree_cnt);
	PRINT_STAT("table_cnt", s.table_cnt);
	PRINT_STAT("table_bytes", s.table_bytes);
	PRINT_STAT("blob_file_cnt", s.blob_file_cnt);
	PRINT_STAT("blob_bytes", s.blob_bytes);
	PRINT_STAT("blob_stale_bytes", s.blob_stale_bytes);
	PRINT_STAT("journal_bytes", s.journal_bytes);
	PRINT_STAT("journal_segment_cnt", s.journal_segment_cnt);
	PRINT_STAT("memtable_bytes", s.memtable_bytes);
	PRINT_STAT("sealed_memtable_cnt", s.sealed_memtable_cnt);
	PRINT_STAT("flushes_done", s.flushes_done);
	PRINT_STAT("compactions_done", s.compactions_done);
	PRINT_STAT("compaction_read_bytes", s.compaction_read_bytes);
	PRINT_STAT("compaction_write_bytes", s.compaction_write_bytes);
	PRINT_STAT("flush_write_bytes", s.flush_write_bytes);
	PRINT_STAT("user_write_bytes", s.user_write_bytes);
	PRINT_STAT("journal_write_bytes", s.journal_write_bytes);
	if (s.user_write_bytes)
		printf("write_amplification: %.2f\n",
		       (double)(s.journal_write_bytes + s.flush_write_bytes +
				s.compaction_write_bytes) / (double)s.user_write_bytes);
	PRINT_STAT("flushes_pending", s.flushes_pending);
	PRINT_STAT("compactions_active", s.compactions_active);
	PRINT_STAT("compaction_time_us", s.compaction_time_us);
	PRINT_STAT("cache_capacity", s.cache_capacity);
	PRINT_STAT("cache_bytes", s.cache_bytes);
	PRINT_STAT("cache_hits", s.cache_hits);
	PRINT_STAT("cache_misses", s.cache_misses);
	PRINT_STAT("open_files", s.open_files);
	PRINT_STAT("write_stalls", s.write_stalls);
	PRINT_STAT("write_stall_us", s.write_stall_us);
	PRINT_STAT("disk_total_bytes", s.disk_total_bytes);
	PRINT_STAT("disk_avail_bytes", s.disk_avail_bytes);
	printf("poisoned: %s\n", s.poisoned ? "yes" : "no");

	if (c->keyspace_given) {
		if (open_keyspace(db, c, false, &ks) != 0)
			return 1;
		st = fr_keyspace_stats_get(ks, &ks_stats, &e);
		if (st != FR_OK) {
			warnx("stats %s: %s", c->keyspace, errtext(st, &e));
			goto out_close_ks;
		}
		printf("keyspace: %s\n", c->keyspace);
		PRINT_STAT("keyspace.table_cnt", ks_stats.table_cnt);
		PRINT_STAT("keyspace.table_bytes", ks_stats.table_bytes);
		PRINT_STAT("keyspace.blob_file_cnt", ks_stats.blob_file_cnt);
		PRINT_STAT("keyspace.blob_bytes", ks_stats.blob_bytes);
		PRINT_STAT("keyspace.blob_stale_bytes", ks_stats.blob_stale_bytes);
		PRINT_STAT("keyspace.blob_gc_done", ks_stats.blob_gc_done);
		for (i = 0; i < FR_LEVEL_CNT; i++) {
			snprintf(name, sizeof(name), "keyspace.level%d_table_cnt", i);
			PRINT_STAT(name, ks_stats.level_table_cnt[i]);
			snprintf(name, sizeof(name), "keyspace.level%d_bytes", i);
			PRINT_STAT(name, ks_stats.level_bytes[i]);
		}
		PRINT_STAT("keyspace.memtable_bytes", ks_stats.memtable_bytes);
		PRINT_STAT("keyspace.sealed_memtable_cnt", ks_stats.sealed_memtable_cnt);
		PRINT_STAT("keyspace.compactions_done", ks_stats.compactions_done);
		PRINT_STAT("keyspace.compaction_read_bytes", ks_stats.compaction_read_bytes);
		PRINT_STAT("keyspace.compaction_write_bytes", ks_stats.compaction_write_bytes);
		PRINT_STAT("keyspace.flush_write_bytes", ks_stats.flush_write_bytes);
		printf("keyspace.compacting: %s\n", ks_stats.compacting ? "yes" : "no");
		PRINT_STAT("keyspace.approximate_len", ks_stats.approximate_len);
	}
	if (ferror(stdout) || fflush(stdout) != 0) {
		warn("stdout");
		goto out_close_ks;
	}
	rc = 0;
out_close_ks:
	fr_keyspace_close(ks);
	return rc;
}

static int cmd_flush(fr_db *db, const struct cli *c)
{
	fr_error e = { 0 };
	fr_status st;

	st = fr_db_flush(db, &e);
	if (st != FR_OK) {
		warnx("flush %s: %s", c->db_path, errtext(st, &e));
		return 1;
	}
	return sync_if_asked(db, c);
}

static int cmd_compact(fr_db *db, const struct cli *c)
{
	fr_keyspace *ks = NULL;
	fr_error e = { 0 };
	fr_status st;
	int rc = 1;

	if (open_keyspace(db, c, false, &ks) != 0)
		return 1;
	st = fr_major_compact(ks, &e);
	if (st != FR_OK) {
		warnx("compact %s: %s", c->keyspace, errtext(st, &e));
		goto out_close_ks;
	}
	rc = sync_if_asked(db, c);
out_close_ks:
	fr_keyspace_close(ks);
	return rc;
}

/* What a checkpoint directory holds, counted by walking it (nftw has no context pointer). */
static struct {
	uint64_t data_files, linked_files, linked_bytes, copied_bytes;
	uint64_t meta_files, meta_bytes;
} ckpt_count;

static int ckpt_count_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	if (type != FTW_F)
		return 0;
	if (ftw->level <= 1) { /* FORMAT, CURRENT, MANIFEST-1 */
		ckpt_count.meta_files++;
		ckpt_count.meta_bytes += (uint64_t)st->st_size;
	} else if (st->st_nlink > 1) { /* still shared with the database */
		ckpt_count.data_files++;
		ckpt_count.linked_files++;
		ckpt_count.linked_bytes += (uint64_t)st->st_size;
	} else {
		ckpt_count.data_files++;
		ckpt_count.copied_bytes += (uint64_t)st->st_size;
	}
	return 0;
}

static int cmd_checkpoint(fr_db *db, const struct cli *c)
{
	const char *dir = c->args[0];
	fr_db_options o;
	fr_db *ck = NULL;
	fr_error e = { 0 };
	fr_status st;

	st = fr_db_checkpoint(db, dir, &e);
	if (st != FR_OK) {
		warnx("checkpoint %s to %s: %s", c->db_path, dir, errtext(st, &e));
		return 1;
	}
	/* the copy must open on its own; its seqno is the commit it was cut at */
	fr_db_options_init(&o);
	o.read_only = true;
	o.create_if_missing = false;
	st = fr_db_open(dir, &o, &ck, &e);
	if (st != FR_OK) {
		warnx("open checkpoint %s: %s", dir, errtext(st, &e));
		return 1;
	}
	fr_seqno seqno = fr_db_seqno(ck);
	fr_db_close(ck, NULL);
	memset(&ckpt_count, 0, sizeof(ckpt_count));
	if (nftw(dir, ckpt_count_one, 16, FTW_PHYS) != 0) {
		warn("%s", dir);
		return 1;
	}
	printf("checkpoint: %s\n", dir);
	PRINT_STAT("seqno", seqno);
	PRINT_STAT("data_files", ckpt_count.data_files);
	PRINT_STAT("linked_files", ckpt_count.linked_files);
	PRINT_STAT("linked_bytes", ckpt_count.linked_bytes);
	PRINT_STAT("copied_files", ckpt_count.data_files - ckpt_count.linked_files);
	PRINT_STAT("copied_bytes", ckpt_count.copied_bytes);
	PRINT_STAT("metadata_files", ckpt_count.meta_files);
	PRINT_STAT("metadata_bytes", ckpt_count.meta_bytes);
	if (ferror(stdout) || fflush(stdout) != 0) {
		warn("stdout");
		return 1;
	}
	return 0;
}

static const struct command commands[] = {
	{ "put", 2, OPT_KEYSPACE | OPT_SYNC, true, cmd_put },
	{ "get", 1, OPT_KEYSPACE, false, cmd_get },
	{ "del", 1, OPT_KEYSPACE | OPT_SYNC, true, cmd_del },
	{ "scan", 0, OPT_KEYSPACE | OPT_SCAN, false, cmd_scan },
	{ "keyspaces", 0, 0, false, cmd_keyspaces },
	{ "stats", 0, OPT_KEYSPACE, false, cmd_stats },
	{ "flush", 0, OPT_SYNC, true, cmd_flush },
	{ "compact", 0, OPT_KEYSPACE | OPT_SYNC, true, cmd_compact },
	{ "checkpoint", 1, 0, true, cmd_checkpoint },
};

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

/* Rejects options the command does not take, so that a typo never passes silently. */
static void check_options(const struct command *cmd, const struct cli *c)
{
	if (c->keyspace_given && !(cmd->opts & OPT_KEYSPACE)) {
		warnx("%s does not take --keyspace", cmd->name);
		usage();
	}
	if ((c->prefix != NULL || c->from != NULL || c->to != NULL || c->reverse) &&
	    !(cmd->opts & OPT_SCAN)) {
		warnx("--prefix, --from, --to and --reverse apply to scan only");
		usage();
	}
	if (c->prefix != NULL && (c->from != NULL || c->to != NULL)) {
		warnx("--prefix cannot be combined with --from or --to");
		usage();
	}
	if (c->sync && !(cmd->opts & OPT_SYNC)) {
		warnx("%s does not take --sync", cmd->name);
		usage();
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keyspace", required_argument, NULL, 'k' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "reverse", no_argument, NULL, 'r' },
		{ "sync", no_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *cmd;
	struct cli c;
	fr_db_options o;
	fr_db *db = NULL;
	fr_error e = { 0 };
	fr_status st;
	int ch, nops, rc;

	memset(&c, 0, sizeof(c));
	c.keyspace = DEFAULT_KEYSPACE;
	while ((ch = getopt_long(argc, argv, "k:p:f:t:rsvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			c.keyspace = optarg;
			c.keyspace_given = true;
			break;
		case 'p':
			c.prefix = optarg;
			break;
		case 'f':
			c.from = optarg;
			break;
		case 't':
			c.to = optarg;
			break;
		case 'r':
			c.reverse = true;
			break;
		case 's':
			c.sync = true;
			break;
		case 'v':
			c.verbose++;
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return 0;
		case 'V':
			printf("fractio %d.%d.%d\n", FR_VERSION_MAJOR, FR_VERSION_MINOR,
			       FR_VERSION_PATCH);
			return 0;
		default:
			usage();
		}
	}
	nops = argc - optind;
	if (nops < 1) {
		warnx("no command given");
		usage();
	}
	c.cmd = argv[optind];
	cmd = find_command(c.cmd);
	if (cmd == NULL) {
		warnx("unknown command: %s", c.cmd);
		usage();
	}
	if (nops != 2 + cmd->nargs) {
		warnx("%s: wrong number of operands", cmd->name);
		usage();
	}
	c.db_path = argv[optind + 1];
	c.args = &argv[optind + 2];
	check_options(cmd, &c);

	/* Engine warnings (a truncated journal tail, say) are worth seeing; -v shows more. */
	fr_log_set(log_sink, NULL,
		   c.verbose >= 2 ? FR_LOG_DEBUG : c.verbose == 1 ? FR_LOG_INFO : FR_LOG_WARN);

	fr_db_options_init(&o);
	if (!cmd->writes) {
		o.read_only = true;
		o.create_if_missing = false;
	} else if (strcmp(cmd->name, "put") != 0) {
		o.create_if_missing = false; /* del, flush, compact, checkpoint: nothing to do on
					      * no database */
		/* no compaction may drop a linked table's first name before the links are counted */
		if (strcmp(cmd->name, "checkpoint") == 0)
			o.background = false;
	}
	st = fr_db_open(c.db_path, &o, &db, &e);
	if (st != FR_OK)
		errx(1, "%s: %s", c.db_path, errtext(st, &e));

	rc = cmd->run(db, &c);

	memset(&e, 0, sizeof(e));
	st = fr_db_close(db, &e);
	if (st != FR_OK) {
		warnx("close %s: %s", c.db_path, errtext(st, &e));
		rc = 1;
	}
	fr_log_set(NULL, NULL, FR_LOG_ERR);
	return rc;
}
