/* SPDX-License-Identifier: MIT */
/*
 * blob_direct.c - direct blob files (blob.h): a blob writer that appends at every commit and a
 * read descriptor that outlives the writer, refcounted for the memtable that owns the file and
 * the commit leader's list of files to sync before the journal.
 */
#include "blob/blob.h"

#include <limits.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "base/sync.h"
#include "io/io.h"

struct blob_direct {
	uint32_t refs;          /* atomic */
	uint64_t id;
	char *path;
	struct fr_io *io;
	struct io_file *rf;     /* reads; open until the last unref */
	struct blob_writer *w;  /* NULL once finished, or read-only */
	bool appendable;        /* false for a recovered file */
	bool dirty;             /* written since the last sync */
	bool named;             /* its directory entry is durable (synced once, with the data) */
	uint64_t size;          /* bytes in the file (writer side) */
};

static fr_status sync_name(struct blob_direct *d, fr_error *err);

static fr_status direct_new(struct fr_io *io, const char *path, uint64_t id,
			    struct blob_direct **out, fr_error *err)
{
	struct blob_direct *d = fr_calloc(1, sizeof(*d));
	*out = NULL;
	if (!d)
		return FR_ERR(err, FR_NOMEM, "blob file %s", path);
	d->path = fr_strdup(path);
	if (!d->path) {
		fr_free(d);
		return FR_ERR(err, FR_NOMEM, "blob file %s", path);
	}
	d->refs = 1;
	d->id = id;
	d->io = io;
	*out = d;
	return FR_OK;
}

fr_status blob_direct_create(struct fr_io *io, const char *path, uint64_t id, bool compress,
			     struct blob_direct **out, fr_error *err)
{
	struct blob_direct *d;
	fr_status rc = direct_new(io, path, id, &d, err);
	*out = NULL;
	if (rc)
		return rc;
	rc = blob_writer_open(io, path, id, compress, &d->w, err);
	if (!rc) {
		/* the file's records are referenced from the journal as soon as they exist */
		blob_writer_set_keep(d->w);
		rc = io_open(io, path, IO_RDONLY, &d->rf, err);
	}
	if (rc) {
		if (d->w)
			blob_writer_abort(d->w); /* nothing of it is referenced yet */
		d->w = NULL;
		blob_direct_unref(d);
		return rc;
	}
	d->appendable = true;
	d->size = blob_writer_size(d->w);
	*out = d;
	return FR_OK;
}

fr_status blob_direct_recover(struct fr_io *io, const char *path, uint64_t id, bool writable,
			      struct blob_direct **out, fr_error *err)
{
	struct blob_direct *d;
	struct blob_meta pre;
	fr_status rc = direct_new(io, path, id, &d, err);
	*out = NULL;
	if (rc)
		return rc;
	rc = io_open(io, path, IO_RDONLY, &d->rf, err);
	if (rc == FR_NOT_FOUND && writable) {
		pre = (struct blob_meta){ .id = id };
		rc = blob_writer_resume(io, path, id, false, &pre, &d->w, err);
		if (!rc)
			rc = io_open(io, path, IO_RDONLY, &d->rf, err);
		if (!rc)
			rc = sync_name(d, err);
	} else if (!rc) {
		rc = blob_valid_prefix(d->rf, path, id, &pre, err);
		if (!rc && writable)
			rc = blob_writer_resume(io, path, id, false, &pre, &d->w, err);
	}
	if (rc) {
		blob_direct_unref(d);
		return rc;
	}
	d->size = d->w ? blob_writer_size(d->w) : pre.file_size;
	d->named = true;
	*out = d;
	return FR_OK;
}

void blob_direct_ref(struct blob_direct *d)
{
	atomic_add_u32(&d->refs, 1);
}

void blob_direct_unref(struct blob_direct *d)
{
	if (!d || atomic_sub_u32(&d->refs, 1) != 0)
		return;
	blob_writer_close(d->w);
	io_close(d->rf);
	fr_free(d->path);
	fr_free(d);
}

uint64_t blob_direct_id(const struct blob_direct *d)
{
	return d->id;
}

uint64_t blob_direct_size(const struct blob_direct *d)
{
	return d->size;
}

fr_status blob_direct_add(struct blob_direct *d, const void *key, size_t klen, const void *val,
			  size_t vlen, struct blob_handle *h, fr_error *err)
{
	if (!d->appendable || !d->w)
		return FR_ERR(err, FR_INVALID, "blob file %s takes no more values", d->path);
	fr_status rc = blob_writer_add(d->w, key, klen, val, vlen, h, err);
	if (!rc) {
		d->size = blob_writer_size(d->w);
		d->dirty = true;
	}
	return rc;
}

fr_status blob_direct_write(struct blob_direct *d, uint64_t wb_min, fr_error *err)
{
	if (!d->w)
		return FR_OK;
	fr_status rc = blob_writer_flush(d->w, err);
	if (!rc)
		blob_writer_writeback(d->w, wb_min);
	return rc;
}

/* Syncs the directory holding d: a journal record naming the file must not outlive its name. */
static fr_status sync_name(struct blob_direct *d, fr_error *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(d->path, '/');
	size_t n = slash ? (size_t)(slash - d->path) : 0;
	if (!slash || n >= sizeof(dir))
		return FR_OK;
	memcpy(dir, d->path, n);
	dir[n] = '\0';
	fr_status rc = io_sync_dir(d->io, dir, err);
	if (!rc)
		d->named = true;
	return rc;
}

fr_status blob_direct_sync(struct blob_direct *d, fr_error *err)
{
	if (!d->w || !d->dirty)
		return FR_OK;
	fr_status rc = blob_writer_sync(d->w, err);
	if (!rc && !d->named)
		rc = sync_name(d, err);
	if (!rc)
		d->dirty = false;
	return rc;
}

fr_status blob_direct_finish(struct blob_direct *d, struct blob_meta *m, fr_error *err)
{
	if (!d->w)
		return FR_ERR(err, FR_INVALID, "blob file %s cannot be finished here", d->path);
	struct blob_writer *w = d->w;
	d->w = NULL;
	d->appendable = false;
	fr_status rc = blob_writer_finish(w, m, err);
	if (!rc) {
		d->size = m->file_size;
		d->dirty = false;
	}
	return rc;
}

fr_status blob_direct_read(struct blob_direct *d, const struct blob_handle *h, void **val,
			   size_t *vlen, fr_error *err)
{
	return blob_read_file(d->rf, d->path, h, val, vlen, err);
}
