/* SPDX-License-Identifier: MIT */
/*
 * assert.h - fr_assert checks internal invariants only and vanishes with NDEBUG. Never assert on
 * input: bad arguments are FR_INVALID and bad disk bytes FR_CORRUPTION. FR_ALWAYS/FR_NEVER mark
 * defensive checks that are still handled in release builds.
 */
#ifndef FRACTIO_BASE_ASSERT_H
#define FRACTIO_BASE_ASSERT_H

#include <assert.h>
#include <stdbool.h>

#define fr_assert(x) assert(x)
#ifndef NDEBUG
#define FR_ALWAYS(x) (assert(x), true)
#define FR_NEVER(x) (assert(!(x)), false)
#else
#define FR_ALWAYS(x) (x)
#define FR_NEVER(x) (x)
#endif

#endif
