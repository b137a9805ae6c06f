/* SPDX-License-Identifier: MIT */
/*
 * test_loop.c - the daemon's request loop (fs/loop.h) against a fake request source:
 *   a request that runs for a whole tick is handed off, so the next one is answered while it
 *   still runs (it waits for that next one: without the hand-off it would time out); with
 *   requests waiting, at the first tick already;
 *   a request whose kind may block is handed off before it runs, even with a tick too long to
 *   matter;
 *   a client that sends one request at a time is answered by one thread (libfuse's own loop
 *   rotates through all of them);
 *   many slow requests at once: served in parallel, never by more threads than the bound;
 *   the end: receive reporting the end, a failing receive, and the session told to exit while
 *   a thread is blocked in receive (it is cancelled, and fsl_run returns).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define NREQ 4096
#define WAIT_S 10 /* a request waiting for another gives up after this */

enum kind { FAST, WAIT_NEXT, SLOW_KIND_WAIT_NEXT, SLEEP_1MS };

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int queue[NREQ];
	int head, tail;
	enum kind kind[NREQ];
	bool done[NREQ];
	pthread_t who[NREQ];
	bool end;         /* receive reports the end once the queue is empty */
	int fail_receive; /* a -errno receive returns instead */
	bool exited;
	bool timed_out;
	int active, max_active;
};

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	return f;
}

static void fake_free(struct fake *f)
{
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void push(struct fake *f, enum kind k)
{
	pthread_mutex_lock(&f->mu);
	assert_true(f->tail < NREQ);
	f->kind[f->tail] = k;
	f->queue[f->tail] = f->tail;
	f->tail++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void *f_buf_new(void *ctx)
{
	(void)ctx;
	return calloc(1, sizeof(int));
}

static void f_buf_free(void *ctx, void *buf)
{
	(void)ctx;
	free(buf);
}

static void unlock_mu(void *mu)
{
	pthread_mutex_unlock(mu);
}

static int f_receive(void *ctx, void *buf)
{
	struct fake *f = ctx;
	int n;

	pthread_mutex_lock(&f->mu);
	pthread_cleanup_push(unlock_mu, &f->mu);
	while (f->head == f->tail && !f->end && !f->fail_receive)
		pthread_cond_wait(&f->cv, &f->mu); /* a cancellation point, as read() is */
	if (f->head < f->tail) {
		*(int *)buf = f->queue[f->head++];
		n = (int)sizeof(int);
	} else {
		n = f->fail_receive ? f->fail_receive : 0;
	}
	pthread_cleanup_pop(1);
	return n;
}

static void wait_done(struct fake *f, int id)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	while (!f->done[id] && !f->timed_out)
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT)
			f->timed_out = true;
}

static void f_process(void *ctx, void *buf)
{
	struct fake *f = ctx;
	int id = *(int *)buf;

	pthread_mutex_lock(&f->mu);
	f->who[id] = pthread_self();
	if (++f->active > f->max_active)
		f->max_active = f->active;
	switch (f->kind[id]) {
	case WAIT_NEXT:
	case SLOW_KIND_WAIT_NEXT:
		wait_done(f, id + 1);
		break;
	case SLEEP_1MS:
		pthread_mutex_unlock(&f->mu);
		usleep(1000);
		pthread_mutex_lock(&f->mu);
		break;
	case FAST:
		break;
	}
	f->active--;
	f->done[id] = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static bool f_exited(void *ctx)
{
	struct fake *f = ctx;
	bool e;

	pthread_mutex_lock(&f->mu);
	e = f->exited;
	pthread_mutex_unlock(&f->mu);
	return e;
}

static bool f_may_block(void *ctx, const void *buf)
{
	struct fake *f = ctx;
	bool b;

	pthread_mutex_lock(&f->mu);
	b = f->kind[*(const int *)buf] == SLOW_KIND_WAIT_NEXT;
	pthread_mutex_unlock(&f->mu);
	return b;
}

static bool f_pending(void *ctx)
{
	struct fake *f = ctx;
	bool p;

	pthread_mutex_lock(&f->mu);
	p = f->head < f->tail;
	pthread_mutex_unlock(&f->mu);
	return p;
}

static struct fsl_source source(struct fake *f)
{
	return (struct fsl_source){.ctx = f,
				   .buf_new = f_buf_new,
				   .buf_free = f_buf_free,
				   .receive = f_receive,
				   .process = f_process,
				   .exited = f_exited,
				   .may_block = f_may_block,
				   .pending = f_pending};
}

/* Request 0 runs until request 1 is done; the source can tell that requests wait, or not. */
static void run_wait_next(bool with_pending, struct fsl_stats *st)
{
	struct fake *f = fake_new();
	struct fsl_source src = source(f);
	struct fsl_config cfg = {.max_threads = 4, .tick_us = 2000};

	if (!with_pending)
		src.pending = NULL;
	push(f, WAIT_NEXT);
	push(f, FAST);
	f->end = true;
	assert_int_equal(fsl_run(&src, &cfg, st), 0);
	assert_false(f->timed_out);
	assert_true(f->done[0] && f->done[1]);
	assert_int_equal(st->handoff_kind, 0);
	assert_int_equal(st->requests, 2);
	assert_false(pthread_equal(f->who[0], f->who[1]));
	fake_free(f);
}

static void test_loop_tick_hands_off(void **state)
{
	struct fsl_stats st;

	(void)state;
	run_wait_next(false, &st);
	assert_true(st.handoff_tick >= 1);
	assert_int_equal(st.handoff_pending, 0);
}

static void test_loop_pending_hands_off(void **state)
{
	struct fsl_stats st;

	(void)state;
	run_wait_next(true, &st);
	assert_true(st.handoff_pending >= 1); /* at the first tick, before a whole one passed */
}

static void test_loop_kind_hands_off_at_once(void **state)
{
	struct fake *f = fake_new();
	struct fsl_source src = source(f);
	/* a tick far longer than the wait: only the kind can hand the device off in time */
	struct fsl_config cfg = {.max_threads = 4, .tick_us = 30u * 1000 * 1000};
	struct fsl_stats st;

	(void)state;
	push(f, SLOW_KIND_WAIT_NEXT);
	push(f, FAST);
	f->end = true;
	assert_int_equal(fsl_run(&src, &cfg, &st), 0);
	assert_false(f->timed_out);
	assert_true(f->done[0] && f->done[1]);
	assert_int_equal(st.handoff_kind, 1);
	assert_int_equal(st.handoff_tick, 0);
	fake_free(f);
}

struct client {
	struct fake *f;
	int n;
};

/* Sends n FAST requests one at a time, each after the previous one is done, then the end. */
static void *client_main(void *arg)
{
	struct client *c = arg;
	struct fake *f = c->f;

	for (int i = 0; i < c->n; i++) {
		push(f, FAST);
		pthread_mutex_lock(&f->mu);
		wait_done(f, i);
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_lock(&f->mu);
	f->end = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void test_loop_one_at_a_time_stays_on_one_thread(void **state)
{
	struct fake *f = fake_new();
	struct fsl_source src = source(f);
	struct fsl_config cfg = {.max_threads = 10, .tick_us = 10000};
	struct client c = {f, 3000};
	struct fsl_stats st;
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, client_main, &c), 0);
	assert_int_equal(fsl_run(&src, &cfg, &st), 0);
	pthread_join(t, NULL);
	assert_false(f->timed_out);
	assert_int_equal(st.requests, (unsigned long long)c.n);
	/* the thread that answered a request answers the next: the reader changes only at a
	 * hand-off (a watch tick may land between a reply and the next request); a pool that
	 * rotates changes thread at nearly every request */
	int switches = 0;
	for (int i = 1; i < c.n; i++)
		switches += !pthread_equal(f->who[i - 1], f->who[i]);
	unsigned long long handoffs = st.handoff_kind + st.handoff_tick + st.handoff_pending;
	if (switches > 2 * (int)handoffs || switches * 100 > c.n)
		fail_msg("%d thread switches in %d requests (%u threads, hand-offs: %llu kind, "
			 "%llu tick, %llu pending)",
			 switches, c.n, st.threads, st.handoff_kind, st.handoff_tick,
			 st.handoff_pending);
	fake_free(f);
}

static void test_loop_parallel_within_bound(void **state)
{
	struct fake *f = fake_new();
	struct fsl_source src = source(f);
	struct fsl_config cfg = {.max_threads = 3, .tick_us = 1000};
	struct fsl_stats st;

	(void)state;
	for (int i = 0; i < 300; i++)
		push(f, SLEEP_1MS);
	f->end = true;
	assert_int_equal(fsl_run(&src, &cfg, &st), 0);
	for (int i = 0; i < 300; i++)
		assert_true(f->done[i]);
	assert_int_equal(st.requests, 300);
	assert_true(st.threads <= 3);
	assert_true(f->max_active <= 3);
	assert_true(f->max_active >= 2); /* the waiting requests were handed to another thread */
	assert_true(st.handoff_pending + st.handoff_tick >= 1);
	fake_free(f);
}

static void *exit_later(void *arg)
{
	struct fake *f = arg;

	usleep(50 * 1000);
	pthread_mutex_lock(&f->mu);
	f->exited = true;
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static void test_loop_ends(void **state)
{
	struct fsl_config cfg = {.max_threads = 4, .tick_us = 2000};
	struct fsl_stats st;
	pthread_t t;

	(void)state;
	/* the end of the session, with nothing asked */
	struct fake *f = fake_new();
	struct fsl_source src = source(f);
	f->end = true;
	assert_int_equal(fsl_run(&src, &cfg, &st), 0);
	assert_int_equal(st.requests, 0);
	fake_free(f);

	/* a failing receive ends the loop with its error */
	f = fake_new();
	src = source(f);
	push(f, FAST);
	f->fail_receive = -EIO;
	assert_int_equal(fsl_run(&src, &cfg, &st), -EIO);
	assert_true(f->done[0]);
	fake_free(f);

	/* told to exit while a thread waits in receive: that thread is cancelled */
	f = fake_new();
	src = source(f);
	push(f, FAST);
	assert_int_equal(pthread_create(&t, NULL, exit_later, f), 0);
	assert_int_equal(fsl_run(&src, &cfg, &st), 0);
	pthread_join(t, NULL);
	assert_true(f->done[0]);
	assert_true(f->exited);
	fake_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_tick_hands_off),
		cmocka_unit_test(test_loop_pending_hands_off),
		cmocka_unit_test(test_loop_kind_hands_off_at_once),
		cmocka_unit_test(test_loop_one_at_a_time_stays_on_one_thread),
		cmocka_unit_test(test_loop_parallel_within_bound),
		cmocka_unit_test(test_loop_ends),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
