/* SPDX-License-Identifier: MIT */
/* log.h - level-gated logging to the sink installed with fr_log_set; silent by default. */
#ifndef FRACTIO_BASE_LOG_H
#define FRACTIO_BASE_LOG_H

#include "fractio.h"

/* atomic: read without a lock on every FR_LOG; relaxed is enough, a late sink is harmless. */
extern int fr_log_level_cur;

void fr_log_emit(fr_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define FR_LOG(level, ...)                                                                         \
	do {                                                                                       \
		if ((int)(level) <= __atomic_load_n(&fr_log_level_cur, __ATOMIC_RELAXED))          \
			fr_log_emit((level), __VA_ARGS__);                                         \
	} while (0)

#endif
