/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the one-reader request loop (loop.h).
 *
 * State, all under mu: at most one thread holds the device (reader_taken, its slot in
 * reader); it is receiving, or processing what it received (reader_busy). A hand-off clears
 * both and bumps gen, the reader's claim: the thread that held it sees a new gen when its
 * request is done and goes back to wait on follow; another thread takes the device. The watch
 * (the thread that called fsl_run) looks at the reader every tick while requests come, and
 * dozes on a semaphore once they stop: a request that begins after a doze wakes it, and so do
 * signals (sem_timedwait returns on them) and the end.
 *
 * Cancellation is enabled only around receive, so a thread is never cancelled holding mu or
 * while processing a request; at the end the watch cancels the thread left waiting in
 * receive, as libfuse's own loop does.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Ticks without a request before the watch dozes, and how long it dozes. */
#define DOZE_AFTER_TICKS 64
#define DOZE_NS 500000000L

struct loop;

struct worker {
	struct loop *lp;
	pthread_t tid;
	void *buf;
};

struct loop {
	const struct fsl_source *src;
	unsigned max_threads;
	long tick_ns;
	pthread_mutex_t mu;
	pthread_cond_t follow; /* threads waiting to take the device */
	sem_t watch;
	struct worker *w;      /* max_threads slots, nthreads started */
	unsigned nthreads, idle;
	bool reader_taken, reader_busy;
	unsigned reader;
	uint64_t gen, seq;     /* hand-offs; requests the reader began */
	bool dozing, end;
	int err;
	struct fsl_stats st;
};

static void *worker_main(void *arg);

/* Starts one more thread, with every signal blocked. Requires: mu held. */
static int start_thread(struct loop *lp)
{
	struct worker *w = &lp->w[lp->nthreads];
	sigset_t all, old;
	int rc;

	w->lp = lp;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->tid, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	lp->nthreads++;
	return 0;
}

/* The device goes to an idle thread, or a new one; with neither, to the first thread that
 * finishes its request. Requires: mu held. */
static void hand_off(struct loop *lp)
{
	lp->gen++;
	lp->reader_taken = false;
	lp->reader_busy = false;
	if (lp->idle)
		pthread_cond_signal(&lp->follow);
	else if (lp->nthreads < lp->max_threads && !lp->end) /* none joins after the end */
		(void)start_thread(lp); /* failing that, the first thread done reads */
}

/* Requires: mu held. */
static void finish(struct loop *lp, int err)
{
	if (err && !lp->err)
		lp->err = err;
	if (!lp->end) {
		lp->end = true;
		pthread_cond_broadcast(&lp->follow);
		sem_post(&lp->watch);
	}
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	struct loop *lp = me->lp;
	const struct fsl_source *src = lp->src;
	unsigned slot = (unsigned)(me - lp->w);
	uint64_t claim = 0;
	bool reader = false;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_mutex_lock(&lp->mu);
	if (!me->buf)
		me->buf = src->buf_new(src->ctx);
	if (!me->buf)
		finish(lp, -ENOMEM);
	while (!lp->end) {
		if (!reader) {
			if (lp->reader_taken) {
				lp->idle++;
				pthread_cond_wait(&lp->follow, &lp->mu);
				lp->idle--;
				continue;
			}
			lp->reader_taken = true;
			lp->reader = slot;
			claim = lp->gen;
			reader = true;
		}
		pthread_mutex_unlock(&lp->mu);
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		int n = src->receive(src->ctx, me->buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		pthread_mutex_lock(&lp->mu);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n <= 0) {
			finish(lp, n);
			break;
		}
		/* a request taken is answered, even at the end: the kernel waits for the reply */
		lp->st.requests++;
		if (src->may_block && src->may_block(src->ctx, me->buf)) {
			lp->st.handoff_kind++;
			hand_off(lp);
			reader = false;
		} else {
			lp->reader_busy = true;
			lp->seq++;
			if (lp->dozing) {
				lp->dozing = false;
				sem_post(&lp->watch);
			}
		}
		pthread_mutex_unlock(&lp->mu);
		src->process(src->ctx, me->buf);
		pthread_mutex_lock(&lp->mu);
		if (reader && lp->gen == claim)
			lp->reader_busy = false; /* still the reader: read on, warm */
		else
			reader = false;
		if (src->exited(src->ctx))
			finish(lp, 0);
	}
	if (reader && lp->gen == claim) {
		lp->reader_taken = false;
		lp->reader_busy = false;
	}
	pthread_mutex_unlock(&lp->mu);
	return NULL;
}

static void deadline_in(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ns;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

int fsl_run(const struct fsl_source *src, const struct fsl_config *cfg, struct fsl_stats *stats)
{
	struct loop lp = {.src = src,
			  .max_threads = cfg->max_threads ? cfg->max_threads : 1,
			  .tick_ns = (long)(cfg->tick_us ? cfg->tick_us : 1) * 1000};
	uint64_t last_seq = 0;
	unsigned quiet = 0;
	int rc;

	lp.w = calloc(lp.max_threads, sizeof(*lp.w));
	if (!lp.w)
		return -ENOMEM;
	pthread_mutex_init(&lp.mu, NULL);
	pthread_cond_init(&lp.follow, NULL);
	sem_init(&lp.watch, 0, 0);

	pthread_mutex_lock(&lp.mu);
	rc = start_thread(&lp);
	if (rc)
		finish(&lp, rc);
	while (!lp.end) {
		if (src->exited(src->ctx)) {
			finish(&lp, 0);
			break;
		}
		if (lp.reader_busy || lp.seq != last_seq)
			quiet = 0;
		else if (++quiet > DOZE_AFTER_TICKS)
			lp.dozing = true;
		if (lp.reader_busy) {
			if (lp.seq == last_seq) {
				lp.st.handoff_tick++; /* the same request for a whole tick */
				hand_off(&lp);
			} else if (src->pending && src->pending(src->ctx)) {
				lp.st.handoff_pending++;
				hand_off(&lp);
			}
		}
		last_seq = lp.seq;
		long wait = lp.dozing ? DOZE_NS : lp.tick_ns;
		pthread_mutex_unlock(&lp.mu);
		struct timespec ts;
		deadline_in(&ts, wait);
		if (sem_timedwait(&lp.watch, &ts) == 0)
			while (sem_trywait(&lp.watch) == 0)
				; /* wake-ups that piled up count once */
		pthread_mutex_lock(&lp.mu);
	}
	/* the reader may be blocked in receive: only cancellation gets it out */
	if (lp.reader_taken && !lp.reader_busy)
		pthread_cancel(lp.w[lp.reader].tid);
	unsigned n = lp.nthreads;
	pthread_mutex_unlock(&lp.mu);

	for (unsigned i = 0; i < n; i++)
		pthread_join(lp.w[i].tid, NULL);
	for (unsigned i = 0; i < n; i++)
		if (lp.w[i].buf)
			src->buf_free(src->ctx, lp.w[i].buf);
	lp.st.threads = n;
	if (stats)
		*stats = lp.st;
	sem_destroy(&lp.watch);
	pthread_cond_destroy(&lp.follow);
	pthread_mutex_destroy(&lp.mu);
	free(lp.w);
	return lp.err;
}
