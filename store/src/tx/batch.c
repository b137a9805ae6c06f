/* SPDX-License-Identifier: MIT */
/*
 * batch.c - encoding and decoding of batch records (FORMAT.md §3.3):
 *   u64 seqno, varint op count, then per op: u8 op, varint tree id, lenbytes key,
 *   and for BOP_PUT lenbytes value, for BOP_RANGE_DEL lenbytes end, for BOP_PUT_HANDLE
 *   lenbytes blob handle.
 */
#include "tx/batch.h"

#include "base/buf.h"
#include "base/coding.h"
#include "base/error.h"

fr_status batch_encode(uint64_t seqno, const struct batch_op *ops, size_t cnt,
		       struct fr_buf *out)
{
	fr_status rc = buf_put_u64(out, seqno);
	rc = rc ? rc : buf_put_varint(out, cnt);
	for (size_t i = 0; i < cnt && !rc; i++) {
		const struct batch_op *o = &ops[i];
		rc = buf_put_u8(out, o->op);
		rc = rc ? rc : buf_put_varint(out, o->tree_id);
		rc = rc ? rc : buf_put_lenbytes(out, o->key, o->key_len);
		if (!rc && (o->op == BOP_PUT || o->op == BOP_RANGE_DEL || o->op == BOP_PUT_HANDLE))
			rc = buf_put_lenbytes(out, o->val, o->val_len);
	}
	return rc;
}

fr_status batch_decode(const uint8_t *rec, size_t len, batch_op_fn fn, void *ctx,
		       uint64_t *seqno, const char *path, fr_error *err)
{
	const uint8_t *p = rec, *end = rec + len;
	uint64_t cnt, tree;
	if (len < 8)
		return FR_CORRUPT(err, path, 0, "batch record shorter than its header");
	*seqno = dec_u64(p);
	p += 8;
	if (!dec_varint(&p, end, &cnt))
		return FR_CORRUPT(err, path, 8, "bad batch op count");
	for (uint64_t i = 0; i < cnt; i++) {
		struct batch_op o = {0};
		if (p >= end)
			return FR_CORRUPT(err, path, (uint64_t)(p - rec), "batch ends early");
		o.op = *p++;
		if (o.op < BOP_PUT || o.op > BOP_PUT_HANDLE)
			return FR_CORRUPT(err, path, (uint64_t)(p - rec), "unknown batch op");
		if (!dec_varint(&p, end, &tree) || tree > UINT32_MAX ||
		    !dec_lenbytes(&p, end, &o.key, &o.key_len))
			return FR_CORRUPT(err, path, (uint64_t)(p - rec), "bad batch op");
		o.tree_id = (uint32_t)tree;
		if ((o.op == BOP_PUT || o.op == BOP_RANGE_DEL || o.op == BOP_PUT_HANDLE) &&
		    !dec_lenbytes(&p, end, &o.val, &o.val_len))
			return FR_CORRUPT(err, path, (uint64_t)(p - rec), "bad batch value");
		fr_status rc = fn(ctx, *seqno, &o, err);
		if (rc)
			return rc;
	}
	if (p != end)
		return FR_CORRUPT(err, path, (uint64_t)(p - rec), "trailing bytes in batch");
	return FR_OK;
}
