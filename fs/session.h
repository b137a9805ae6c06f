/* SPDX-License-Identifier: MIT */
/*
 * session.h - runs a libfuse low-level session on the daemon's request loop (loop.h): one
 * thread reads the FUSE device and answers what it reads, handing the device to another
 * thread before a sync, a transfer of 64 KiB or more, or a release (before any change with
 * sync set), and
 * when a request runs a whole 10 ms tick or runs while others wait. Shared by fractiofs and
 * the benchmark's in-memory reference (tools/memfs.c), so that both talk to the kernel alike.
 */
#ifndef FRACTIO_FS_SESSION_H
#define FRACTIO_FS_SESSION_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <stdbool.h>

/* Serves se with up to max_threads threads until it ends (unmount, signal), then resets its
 * exit flag as libfuse's loops do. With debug, prints the loop's counts to stderr. 0, or -1
 * when a read of the device failed. */
int fs_session_loop(struct fuse_session *se, unsigned max_threads, bool sync, bool debug);

#endif
