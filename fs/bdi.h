/* SPDX-License-Identifier: MIT */
/*
 * bdi.h - the kernel's per-mount I/O settings of a FUSE mount (its backing device info).
 *
 * The kernel gives every FUSE mount a read-ahead window of at most 128 KiB, whatever the
 * daemon asks for at INIT, so a sequential read arrives as 128 KiB READ requests. Root may
 * widen the window through /sys/class/bdi/MAJ:MIN/read_ahead_kb, where MAJ:MIN is the mount's
 * device number, read from /proc/self/mountinfo. It must be done after the kernel has taken
 * the daemon's INIT reply, which sets the window to the smaller of the two again: the kernel
 * holds every other request until then, so a stat of the mount point that has returned shows
 * that INIT is over.
 */
#ifndef FRACTIO_FS_BDI_H
#define FRACTIO_FS_BDI_H

#include <stdio.h>

/* Finds the newest mount at path mnt (absolute, as the kernel spells it) whose file system
 * type begins with "fuse", in a mountinfo listing. 0 with *maj and *min set, -ENOENT when
 * there is none, -EINVAL for a line that does not parse. */
int fs_mountinfo_dev(FILE *mountinfo, const char *mnt, unsigned *maj, unsigned *min);

/* Sets the read-ahead window of the FUSE mount at mnt to kb KiB. 0 or -errno (EACCES when
 * not root, ENOENT when the mount is not found). */
int fs_set_read_ahead(const char *mnt, unsigned kb);

/* Starts a detached thread that waits for INIT (by a stat of mnt, which the session loop
 * answers), then sets the window to kb KiB, printing why to stderr when it cannot (quietly
 * when it is only for want of root, unless verbose). 0 or -errno (the thread did not start). */
int fs_read_ahead_after_init(const char *mnt, unsigned kb, int verbose);

#endif
