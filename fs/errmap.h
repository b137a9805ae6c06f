/* SPDX-License-Identifier: MIT */
/*
 * errmap.h - the one place an engine status becomes an errno for a FUSE reply (STYLE.md 3.4).
 */
#ifndef FRACTIO_FS_ERRMAP_H
#define FRACTIO_FS_ERRMAP_H

#include <fractio.h>

/* A positive errno for st (FR_OK gives 0). Uses err->sys_errno for FR_IO when set. Logs
 * corruption and I/O failures once, with the engine's message and `what` (an operation name,
 * may be NULL). */
int fs_errno(fr_status st, const fr_error *err, const char *what);

#endif
