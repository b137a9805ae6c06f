/* SPDX-License-Identifier: MIT */
/*
 * loop.h - the daemon's multithreaded request loop.
 *
 * libfuse's own multithreaded loop keeps a pool of threads all blocked reading the FUSE
 * device, and the kernel wakes them in turn, the one that has waited longest first. A process
 * that makes one request at a time (cp, tar, a shell loop: most of them) therefore has every
 * request answered by another thread, woken cold on whichever CPU; measured on this machine
 * that made `cp -a /usr/include` take 1.8 times as long as with one thread.
 *
 * This loop keeps one reader: the thread that has taken a request answers it itself and then
 * reads the next one, so a one-at-a-time client keeps talking to the same warm thread. The
 * reader hands the device to another thread (waking an idle one, or starting one up to
 * max_threads) when a request:
 *   - may block by its kind (may_block: a sync, a large transfer), before processing it;
 *   - has been processing for a whole tick (the watch, on the calling thread);
 *   - is being processed while more requests wait (pending, checked by the watch each tick).
 * A thread that handed the device off and finishes its request waits to be needed again.
 *
 * The request source is abstract so that the loop can be tested without a kernel; fs/main.c
 * binds it to a libfuse session.
 */
#ifndef FRACTIO_FS_LOOP_H
#define FRACTIO_FS_LOOP_H

#include <stdbool.h>

/* A request buffer is the source's own type: each thread has one, made by buf_new (NULL: no
 * memory) and given back to buf_free when the thread is done. */
struct fsl_source {
	void *ctx;
	void *(*buf_new)(void *ctx);
	void (*buf_free)(void *ctx, void *buf);
	/* Reads the next request into buf. The size, 0 at the end of the session, -errno (-EINTR,
	 * -EAGAIN: try again). One thread at a time; may be cancelled (pthread_cancel) while
	 * blocked in it. */
	int (*receive)(void *ctx, void *buf);
	void (*process)(void *ctx, void *buf);
	/* Whether the session was told to end (a signal, an unmount). */
	bool (*exited)(void *ctx);
	/* Whether the request in buf may take long: it is handed off before it is processed. */
	bool (*may_block)(void *ctx, const void *buf);
	/* Whether requests wait to be read (may be NULL: never). */
	bool (*pending)(void *ctx);
};

struct fsl_config {
	unsigned max_threads; /* at least 1 */
	unsigned tick_us;     /* the watch's period while requests come, at least 1 */
};

/* What a run saw: threads started, requests, and hand-offs by their cause. */
struct fsl_stats {
	unsigned threads;
	unsigned long long requests, handoff_kind, handoff_tick, handoff_pending;
};

/* Runs the loop until the session ends (receive returns 0 or fails, or exited() holds), then
 * joins every thread. 0, or the -errno a receive or a thread start failed with. Signals are
 * blocked in the loop's threads, so that they reach the calling thread, which watches. Fills
 * *stats (may be NULL) at the end. */
int fsl_run(const struct fsl_source *src, const struct fsl_config *cfg, struct fsl_stats *stats);

#endif
