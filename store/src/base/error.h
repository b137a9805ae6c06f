/* SPDX-License-Identifier: MIT */
/*
 * error.h - building fr_error values. Middle layers pass rc and err through untouched; the
 * place that detects a failure fills err once with FR_ERR/FR_ERR_SYS/FR_CORRUPT.
 */
#ifndef FRACTIO_BASE_ERROR_H
#define FRACTIO_BASE_ERROR_H

#include <stdint.h>

#include "fractio.h"

/* Fills err (if not NULL) and returns code. Never allocates. */
fr_status fr_err_set(fr_error *err, fr_status code, int sys_errno, uint64_t off, const char *src,
		     int line, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Maps an errno to a status: ENOSPC/EDQUOT -> FR_NO_SPACE, ENOMEM -> FR_NOMEM, else FR_IO. */
fr_status fr_status_from_errno(int e);

#define FR_ERR(err, code, ...) fr_err_set((err), (code), 0, 0, __FILE__, __LINE__, __VA_ARGS__)
/* For a failed system call: the status follows from the saved errno e. */
#define FR_ERR_SYS(err, e, ...)                                                                    \
	fr_err_set((err), fr_status_from_errno(e), (e), 0, __FILE__, __LINE__, __VA_ARGS__)
/* Bad bytes in file `path` at byte offset `off`: the message names both. */
#define FR_CORRUPT(err, path, off, what)                                                           \
	fr_err_set((err), FR_CORRUPTION, 0, (off), __FILE__, __LINE__, "%s at offset %llu: %s",    \
		   (path), (unsigned long long)(off), (what))

#endif
