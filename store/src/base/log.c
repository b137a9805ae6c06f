/* SPDX-License-Identifier: MIT */
/* log.c - the process-wide log sink. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

int fr_log_level_cur = -1;
static fr_log_fn log_fn;    /* under log_mu */
static void *log_ctx;       /* under log_mu */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void fr_log_set(fr_log_fn fn, void *ctx, fr_log_level level)
{
	pthread_mutex_lock(&log_mu);
	log_fn = fn;
	log_ctx = ctx;
	__atomic_store_n(&fr_log_level_cur, fn ? (int)level : -1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_mu);
}

void fr_log_emit(fr_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_mu);
	if (log_fn && (int)level <= fr_log_level_cur)
		log_fn(log_ctx, level, line);
	pthread_mutex_unlock(&log_mu);
}
