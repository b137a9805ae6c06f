/* SPDX-License-Identifier: MIT */
/* sync.c - thin pthread wrappers with held-lock checks in debug builds. */
#include "sync.h"

#include <errno.h>

#include "fr_assert.h"

void fr_mutex_init(struct fr_mutex *mu)
{
	pthread_mutex_init(&mu->m, NULL);
#ifndef NDEBUG
	mu->held = false;
#endif
}

void fr_mutex_fini(struct fr_mutex *mu)
{
	pthread_mutex_destroy(&mu->m);
}

void fr_mutex_lock(struct fr_mutex *mu)
{
	pthread_mutex_lock(&mu->m);
#ifndef NDEBUG
	mu->owner = pthread_self();
	mu->held = true;
#endif
}

void fr_mutex_unlock(struct fr_mutex *mu)
{
#ifndef NDEBUG
	mu->held = false;
#endif
	pthread_mutex_unlock(&mu->m);
}

#ifndef NDEBUG
void fr_mutex_assert_held(struct fr_mutex *mu)
{
	fr_assert(mu->held && pthread_equal(mu->owner, pthread_self()));
}
#endif

void fr_cond_init(struct fr_cond *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&c->c, &a);
	pthread_condattr_destroy(&a);
}

void fr_cond_fini(struct fr_cond *c)
{
	pthread_cond_destroy(&c->c);
}

void fr_cond_wait(struct fr_cond *c, struct fr_mutex *mu)
{
#ifndef NDEBUG
	mu->held = false;
#endif
	pthread_cond_wait(&c->c, &mu->m);
#ifndef NDEBUG
	mu->owner = pthread_self();
	mu->held = true;
#endif
}

bool fr_cond_timedwait(struct fr_cond *c, struct fr_mutex *mu, uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec = (time_t)(t / 1000000000ull);
	ts.tv_nsec = (long)(t % 1000000000ull);
#ifndef NDEBUG
	mu->held = false;
#endif
	int rc = pthread_cond_timedwait(&c->c, &mu->m, &ts);
#ifndef NDEBUG
	mu->owner = pthread_self();
	mu->held = true;
#endif
	return rc != ETIMEDOUT;
}

void fr_cond_signal(struct fr_cond *c)
{
	pthread_cond_signal(&c->c);
}

void fr_cond_broadcast(struct fr_cond *c)
{
	pthread_cond_broadcast(&c->c);
}

uint64_t fr_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
