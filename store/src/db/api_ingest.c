/* SPDX-License-Identifier: MIT */
/*
 * api_ingest.c - the public bulk ingestion functions of fractio.h (fr_ingest_*): argument
 * checks, then ingest.c.
 */
#include "db/db.h"

#include "base/error.h"
#include "base/ikey.h"

#define KEY_MAX (1u << 20) /* as api.c */
#define VAL_MAX (1u << 30)

fr_status fr_ingest_start(fr_keyspace *ks, fr_ingest **out, fr_error *err)
{
	if (!ks || !out)
		return FR_ERR(err, FR_INVALID, "fr_ingest_start: bad arguments");
	*out = NULL;
	if (atomic_load_acq_bool(&ks->dropped))
		return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted", ks->name);
	return ingest_start(ks, out, err);
}

static fr_status check_key(const void *k, size_t n, fr_error *err)
{
	if (!k && n)
		return FR_ERR(err, FR_INVALID, "key is NULL");
	if (n > KEY_MAX)
		return FR_ERR(err, FR_INVALID, "key of %zu bytes exceeds %u", n, KEY_MAX);
	return FR_OK;
}

fr_status fr_ingest_put(fr_ingest *in, const void *key, size_t key_len, const void *val,
			size_t val_len, fr_error *err)
{
	if (!in)
		return FR_ERR(err, FR_INVALID, "ingestion is NULL");
	fr_status rc = check_key(key, key_len, err);
	if (rc)
		return rc;
	if ((!val && val_len) || val_len > VAL_MAX)
		return FR_ERR(err, FR_INVALID, "bad value");
	return ingest_add(in, VT_PUT, key, key_len, val, val_len, err);
}

fr_status fr_ingest_remove(fr_ingest *in, const void *key, size_t key_len, fr_error *err)
{
	if (!in)
		return FR_ERR(err, FR_INVALID, "ingestion is NULL");
	fr_status rc = check_key(key, key_len, err);
	if (rc)
		return rc;
	return ingest_add(in, VT_DEL, key, key_len, NULL, 0, err);
}

fr_status fr_ingest_finish(fr_ingest *in, fr_seqno *seqno, fr_error *err)
{
	if (!in)
		return FR_ERR(err, FR_INVALID, "ingestion is NULL");
	return ingest_finish(in, seqno, err);
}

void fr_ingest_abort(fr_ingest *in)
{
	ingest_abort(in);
}
