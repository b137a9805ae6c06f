/* SPDX-License-Identifier: MIT */
/*
 * session.c - the request loop (loop.h) on a libfuse session (session.h).
 */
#include "session.h"

#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* Requests at least this large are handed to another thread before they are processed. */
#define BIG_TRANSFER (64u << 10)

struct session_src {
	struct fuse_session *se;
	bool sync; /* -o sync: every change waits for the disk */
};

static void *ss_buf_new(void *ctx)
{
	(void)ctx;
	return calloc(1, sizeof(struct fuse_buf));
}

static void ss_buf_free(void *ctx, void *buf)
{
	struct fuse_buf *b = buf;

	(void)ctx;
	free(b->mem);
	free(b);
}

static int ss_receive(void *ctx, void *buf)
{
	return fuse_session_receive_buf(((struct session_src *)ctx)->se, buf);
}

static void ss_process(void *ctx, void *buf)
{
	fuse_session_process_buf(((struct session_src *)ctx)->se, buf);
}

static bool ss_exited(void *ctx)
{
	return fuse_session_exited(((struct session_src *)ctx)->se) != 0;
}

/* Syncs wait for the disk, and large reads and writes (the kernel sends several at once
 * during read-ahead and write-back) are worth a second thread; the rest take microseconds. */
static bool ss_may_block(void *ctx, const void *buf)
{
	const struct session_src *ss = ctx;
	const struct fuse_buf *b = buf;
	const struct fuse_in_header *h = b->mem;

	if (b->flags & FUSE_BUF_IS_FD)
		return true; /* spliced: a large write */
	if (b->size < sizeof(*h))
		return false;
	switch (h->opcode) {
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		/* sent after close() has returned: no program waits for it, so another thread
		 * reads what the program asks next meanwhile (a create runs 1.5 times as fast) */
		return true;
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_FALLOCATE:
	case FUSE_COPY_FILE_RANGE:
		return true;
	case FUSE_READ:
	case FUSE_WRITE: {
		/* fuse_read_in and fuse_write_in both have size at the same place; with sync a
		 * write waits for the disk, a read never does */
		bool big = b->size >= sizeof(*h) + sizeof(struct fuse_read_in) &&
			   ((const struct fuse_read_in *)(const void *)(h + 1))->size >= BIG_TRANSFER;
		return big || (ss->sync && h->opcode == FUSE_WRITE);
	}
	case FUSE_LOOKUP:
	case FUSE_GETATTR:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_READLINK:
	case FUSE_ACCESS:
	case FUSE_STATFS:
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return false;
	default:
		return ss->sync;
	}
}

static bool ss_pending(void *ctx)
{
	struct pollfd p = {.fd = fuse_session_fd(((struct session_src *)ctx)->se), .events = POLLIN};

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

int fs_session_loop(struct fuse_session *se, unsigned max_threads, bool sync, bool debug)
{
	struct session_src ss = {.se = se, .sync = sync};
	const struct fsl_source src = {.ctx = &ss,
				       .buf_new = ss_buf_new,
				       .buf_free = ss_buf_free,
				       .receive = ss_receive,
				       .process = ss_process,
				       .exited = ss_exited,
				       .may_block = ss_may_block,
				       .pending = ss_pending};
	const struct fsl_config cfg = {.max_threads = max_threads, .tick_us = 10000};
	struct fsl_stats st;
	int rc = fsl_run(&src, &cfg, &st);

	if (debug)
		fprintf(stderr,
			"fractiofs: loop: %llu requests, %u threads, handed off %llu by kind, "
			"%llu after a tick, %llu for waiting requests\n",
			st.requests, st.threads, st.handoff_kind, st.handoff_tick,
			st.handoff_pending);
	if (rc)
		fprintf(stderr, "fractiofs: request loop: %s\n", strerror(-rc));
	fuse_session_reset(se);
	return rc ? -1 : 0;
}
