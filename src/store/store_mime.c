/* The MIME results stored with each message (struct store_mime): computed
 * once from the parse made while the body was written, read back by FETCH
 * with one primary-key lookup. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/util.h"
#include "mime/mime.h"
#include "mime/mime_imap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each value is bounded: the part limit of the parser bounds them in
 * practice (a 10,000-part message writes a BODYSTRUCTURE of about a
 * megabyte), these catch the rest. */
#define STORE_MIME_VALUE_MAX (16 * 1024 * 1024)

static int compute_one(const struct mime_message *msg,
		       int (*fn)(const struct mime_message *, struct buf *),
		       char **out_r, size_t *len_r)
{
	struct buf b;
	buf_init(&b, STORE_MIME_VALUE_MAX);
	if (fn(msg, &b) < 0) {
		buf_deinit(&b);
		return -1;
	}
	*out_r = buf_steal(&b, len_r);
	return 0;
}

static int parts_serialize(const struct mime_message *msg, struct buf *out)
{
	return mime_parts_serialize(msg, out);
}

int store_mime_compute(const struct mime_message *msg, struct store_mime *m)
{
	memset(m, 0, sizeof(*m));
	char *parts = NULL;
	if (compute_one(msg, mime_envelope, &m->envelope, &m->envelope_len) < 0 ||
	    compute_one(msg, mime_body, &m->body, &m->body_len) < 0 ||
	    compute_one(msg, mime_bodystructure, &m->bodystructure, &m->bodystructure_len) < 0 ||
	    compute_one(msg, parts_serialize, &parts, &m->parts_len) < 0) {
		store_mime_deinit(m);
		return -1;
	}
	m->parts = (unsigned char *)parts;
	return 0;
}

void store_mime_deinit(struct store_mime *m)
{
	free(m->envelope);
	free(m->body);
	free(m->bodystructure);
	free(m->parts);
	memset(m, 0, sizeof(*m));
}

static char *column_copy(sqlite3_stmt *st, int i, size_t *len_r)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);
	*len_r = len;
	if (p == NULL)
		return NULL;
	char *v = xmalloc(len + 1);
	memcpy(v, p, len);
	v[len] = '\0';
	return v;
}

int store_message_mime(struct store_reader *r, int64_t message_id, struct store_mime *m)
{
	memset(m, 0, sizeof(*m));
	sqlite3_stmt *st = r->st_mime;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st), result = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 3) != SQLITE_NULL) {
		m->envelope = column_copy(st, 0, &m->envelope_len);
		m->body = column_copy(st, 1, &m->body_len);
		m->bodystructure = column_copy(st, 2, &m->bodystructure_len);
		m->parts = (unsigned char *)column_copy(st, 3, &m->parts_len);
		result = m->envelope && m->body && m->bodystructure && m->parts ? 1 : 0;
		if (result == 0)
			store_mime_deinit(m);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		result = -1;
	}
	sqlite3_reset(st);
	return result;
}

int store_msg_mime_parse(struct store *s, const struct store_msg *msg, struct store_mime *m)
{
	int fd = store_msg_open(s, msg);
	if (fd < 0)
		return -1;
	struct mime_parser *p = mime_parser_new(NULL);
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		mime_parser_feed(p, chunk, (size_t)n);
	int err = errno;
	close(fd);
	if (n < 0) {
		mime_parser_free(&p);
		errno = err;
		return -1;
	}
	struct mime_message *mm;
	mime_parser_finish(&p, &mm);
	int r = store_mime_compute(mm, m);
	mime_message_free(&mm);
	if (r < 0)
		errno = EFBIG;
	return r;
}
