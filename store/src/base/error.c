/* SPDX-License-Identifier: MIT */
/* error.c - status texts and fr_error filling. */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

const char *fr_status_str(fr_status st)
{
	switch (st) {
	case FR_OK: return "ok";
	case FR_NOT_FOUND: return "not found";
	case FR_INVALID: return "invalid argument";
	case FR_CORRUPTION: return "corruption";
	case FR_IO: return "I/O error";
	case FR_NO_SPACE: return "no space left on device";
	case FR_NOMEM: return "out of memory";
	case FR_BUSY: return "database is locked by another opener";
	case FR_CONFLICT: return "transaction conflict";
	case FR_POISONED: return "database poisoned by a failed background write; reopen it";
	case FR_CLOSED: return "database closed";
	}
	return "unknown status";
}

fr_status fr_status_from_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT: return FR_NO_SPACE;
	case ENOMEM: return FR_NOMEM;
	default: return FR_IO;
	}
}

fr_status fr_err_set(fr_error *err, fr_status code, int sys_errno, uint64_t off, const char *src,
		     int line, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->sys_errno = sys_errno;
	err->offset = off;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(err->msg) && sys_errno) {
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(sys_errno));
	}
#ifndef NDEBUG
	FR_LOG(FR_LOG_DEBUG, "error %s (%s:%d)", err->msg, src, line);
#else
	(void)src;
	(void)line;
#endif
	return code;
}
