/* SPDX-License-Identifier: MIT */
/*
 * errmap.c - the one place an engine status becomes an errno for a FUSE reply (STYLE.md 3.4).
 * Failures that mean the store itself is in trouble (corruption, I/O errors, a poisoned
 * database) are logged here, once, where they are handled; the others are ordinary answers
 * (ENOENT, ENOSPC, ...) that the caller passes on silently.
 *
 * Thread-safety: thread-safe (one fprintf per logged failure; stdio locks the stream).
 */
#include "errmap.h"

#include <errno.h>
#include <stdio.h>

static void fs_log_failure(fr_status st, const fr_error *err, const char *what)
{
	fprintf(stderr, "fractiofs: %s: %s\n", what ? what : "operation",
		err && err->msg[0] ? err->msg : fr_status_str(st));
}

int fs_errno(fr_status st, const fr_error *err, const char *what)
{
	int e;

	switch (st) {
	case FR_OK:
		return 0;
	case FR_NOT_FOUND:
		return ENOENT;
	case FR_INVALID:
		return EINVAL;
	case FR_NO_SPACE:
		return ENOSPC;
	case FR_NOMEM:
		return ENOMEM;
	case FR_BUSY:
		return EBUSY;
	case FR_CONFLICT:
		return EAGAIN;
	case FR_CLOSED:
		/* The store is shutting down. ESHUTDOWN would be more precise, but tools print it
		 * as a socket error; EIO is what they understand. */
		return EIO;
	case FR_IO:
		e = err && err->sys_errno > 0 ? err->sys_errno : EIO;
		break;
	case FR_CORRUPTION:
	case FR_POISONED:
	default:
		e = EIO;
		break;
	}
	fs_log_failure(st, err, what);
	return e;
}
