/* SPDX-License-Identifier: MIT */
/*
 * api_ingest.c - the public bulk ingestion functions of fractio.h (fr_ingest_*): argument
 * checks, then ingest.c.
 */
#include "db/db.h"

#include "base/error.h"
#include "base/ikey.h"

fr_status fr_ingest_start(fr_keyspace *ks, fr_ingest **out, fr_error *err)
{
	if (!ks || !out)
		return FR_ERR(err, FR_INVALID, "fr_ingest_start: bad arguments");
	*out = NULL;
	if (atomic_load_acq_bool(&ks->dropped))
		return FR_ERR(err, FR_NOT_FOUND, "keyspace %s was deleted", ks->name);
	return ingest_start(ks, out, err);
}

fr_status fr_ingest_put(fr_ingest *in, const void *key, size_t key_len, const void *val,
			size_t val_len, fr_error *err)
{
	if (!in)
		return FR_ERR(err, FR_INVALID, "ingestion is NULL");
	fr_status rc = api_check_key(key, key_len, err);
	if (rc)
		return rc;
	rc = api_check_val(val, val_len, err);
	if (rc)
		return rc;
	return ingest_add(in, VT_PUT, key, key_len, val, val_len, err);
}

fr_status fr_ingest_remove(fr_ingest *in, const void *key, size_t key_len, fr_error *err)
{
	if (!in)
		return FR_ERR(err, FR_INVALID, "ingestion is NULL");
	fr_status rc = api_check_key(key, key_len, err);
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
