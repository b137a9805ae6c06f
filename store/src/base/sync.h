/* SPDX-License-Identifier: MIT */
/*
 * sync.h - mutexes, condition variables and the atomics the engine uses, with explicit memory
 * orders. Every use of an atomic names its pairing in a comment.
 */
#ifndef FRACTIO_BASE_SYNC_H
#define FRACTIO_BASE_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct fr_mutex {
	pthread_mutex_t m;
#ifndef NDEBUG
	pthread_t owner;
	bool held;
#endif
};

void fr_mutex_init(struct fr_mutex *mu);
void fr_mutex_fini(struct fr_mutex *mu);
void fr_mutex_lock(struct fr_mutex *mu);
void fr_mutex_unlock(struct fr_mutex *mu);
#ifndef NDEBUG
void fr_mutex_assert_held(struct fr_mutex *mu);
#else
static inline void fr_mutex_assert_held(struct fr_mutex *mu)
{
	(void)mu;
}
#endif

struct fr_cond {
	pthread_cond_t c;
};
void fr_cond_init(struct fr_cond *c);
void fr_cond_fini(struct fr_cond *c);
void fr_cond_wait(struct fr_cond *c, struct fr_mutex *mu);
/* Waits at most ns nanoseconds; returns false on timeout. */
bool fr_cond_timedwait(struct fr_cond *c, struct fr_mutex *mu, uint64_t ns);
void fr_cond_signal(struct fr_cond *c);
void fr_cond_broadcast(struct fr_cond *c);

static inline uint64_t atomic_load_acq_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_rel_u64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t atomic_load_rlx_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void atomic_store_rlx_u64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint64_t atomic_add_u64(uint64_t *p, uint64_t v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
static inline uint64_t atomic_sub_u64(uint64_t *p, uint64_t v)
{
	return __atomic_sub_fetch(p, v, __ATOMIC_ACQ_REL);
}
/* Sequentially consistent operations, for the few Dekker-style handshakes where each side
 * stores one flag and then loads the other's (the optimistic transactions' oracle). */
static inline void atomic_store_sc_u64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline uint64_t atomic_load_sc_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline uint32_t atomic_add_sc_u32(uint32_t *p, uint32_t v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}
static inline uint32_t atomic_load_sc_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline uint32_t atomic_load_acq_u32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_rel_u32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint32_t atomic_add_u32(uint32_t *p, uint32_t v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}
static inline uint32_t atomic_sub_u32(uint32_t *p, uint32_t v)
{
	return __atomic_sub_fetch(p, v, __ATOMIC_ACQ_REL);
}
static inline void *atomic_load_acq_ptr(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_rel_ptr(void **p, void *v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void *atomic_load_rlx_ptr(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void atomic_store_rlx_ptr(void **p, void *v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline bool atomic_load_acq_bool(const bool *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void atomic_store_rel_bool(bool *p, bool v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Monotonic clock in nanoseconds. */
uint64_t fr_now_ns(void);

#endif
