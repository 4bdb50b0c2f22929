/* The outbound queue's rows: what is due, and the outcome of each attempt.
 *
 * One row per (message, remote recipient). A row leaves the queue when its
 * recipient got the message or was bounced; until then it carries its
 * attempts, the time of the next one and the last error, so a restart
 * resumes exactly where the last run stopped. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

int store_queue_due(struct store_reader *r, int64_t now, size_t limit,
		    struct store_queue_item **items_r, size_t *count_r)
{
	*items_r = NULL;
	*count_r = 0;
	sqlite3_stmt *st = NULL;
	/* Ordered by destination so one connection takes a domain's mail. */
	if (sqlite3_prepare_v2(r->db,
			"SELECT q.id, q.message_id, g.queue_id, g.sender, q.recipient, g.body,"
			" g.size, q.created, q.attempts, q.bounce_reason, g.received, q.delay_notified"
			" FROM queue q JOIN messages g ON g.id = q.message_id"
			" WHERE q.next_attempt <= ? ORDER BY q.next_attempt, q.id LIMIT ?",
			-1, &st, NULL) != SQLITE_OK) {
		log_error("event=queue_read_failed error=\"%s\"", sqlite3_errmsg(r->db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	struct store_queue_item *v = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		struct store_queue_item *q = &v[n++];
		q->id = sqlite3_column_int64(st, 0);
		q->message_id = sqlite3_column_int64(st, 1);
		q->queue_id = col_dup(st, 2);
		q->sender = col_dup(st, 3);
		q->recipient = col_dup(st, 4);
		q->body = col_dup(st, 5);
		q->size = (uint64_t)sqlite3_column_int64(st, 6);
		q->created = sqlite3_column_int64(st, 7);
		q->attempts = (uint32_t)sqlite3_column_int64(st, 8);
		q->bounce_reason = col_dup(st, 9);
		q->received = sqlite3_column_int64(st, 10);
		q->delay_notified = sqlite3_column_int(st, 11) != 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("event=queue_read_failed error=\"%s\"", sqlite3_errmsg(r->db));
		store_queue_items_free(&v, n);
		return -1;
	}
	*items_r = v;
	*count_r = n;
	return 0;
}

int64_t store_queue_next_attempt(struct store_reader *r)
{
	sqlite3_stmt *st = NULL;
	int64_t t = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT min(next_attempt) FROM queue", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return t;
}

void store_queue_items_free(struct store_queue_item **itemsp, size_t count)
{
	struct store_queue_item *v = *itemsp;
	if (v == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(v[i].queue_id);
		free(v[i].sender);
		free(v[i].recipient);
		free(v[i].body);
		free(v[i].bounce_reason);
	}
	free(v);
	*itemsp = NULL;
}

/* ---- outcomes ---- */

struct queue_job {
	struct store_job job;
	struct store *store;
	struct store_queue_update *u;
	size_t count;
	struct store_unlinks unlinks;
	struct loop *loop;
	store_done_fn *done;
	void *arg;
	int result;
};

static int queue_apply(struct store_job *job, sqlite3 *db)
{
	struct queue_job *q = (struct queue_job *)job;
	sqlite3_stmt *del = NULL, *upd = NULL;
	int64_t *mids = NULL;
	size_t nmids = 0;
	int r = -1;
	if (sqlite3_prepare_v2(db, "DELETE FROM queue WHERE id = ? RETURNING message_id",
			       -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE queue SET attempts = attempts + 1, next_attempt = ?,"
			       " last_error = ?, delay_notified = max(delay_notified, ?)"
			       " WHERE id = ?", -1, &upd, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < q->count; i++) {
		const struct store_queue_update *u = &q->u[i];
		if (!u->remove) {
			sqlite3_reset(upd);
			sqlite3_bind_int64(upd, 1, u->next_attempt);
			sqlite3_bind_text(upd, 2, u->error ? u->error : "", -1, SQLITE_STATIC);
			sqlite3_bind_int(upd, 3, u->delay_notified);
			sqlite3_bind_int64(upd, 4, u->id);
			if (sqlite3_step(upd) != SQLITE_DONE)
				goto out;
			continue;
		}
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, u->id);
		int rc = sqlite3_step(del);
		if (rc == SQLITE_DONE)
			continue;	/* gone already (yubin queue delete) */
		if (rc != SQLITE_ROW)
			goto out;
		mids = xrealloc(mids, (nmids + 1) * sizeof(*mids));
		mids[nmids++] = sqlite3_column_int64(del, 0);
		while ((rc = sqlite3_step(del)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE)
			goto out;
	}
	r = store_release_messages(db, mids, nmids, &q->unlinks);
out:
	if (r < 0)
		log_error("event=queue_update_failed error=\"%s\"", sqlite3_errmsg(db));
	free(mids);
	sqlite3_finalize(del);
	sqlite3_finalize(upd);
	return r;
}

static void queue_done(void *arg)
{
	struct queue_job *q = arg;
	if (q->done)
		q->done(q->arg, q->result);
	for (size_t i = 0; i < q->count; i++)
		free(q->u[i].error);
	free(q->u);
	free(q);
}

static void queue_finish(struct store_job *job, int result)
{
	struct queue_job *q = (struct queue_job *)job;
	q->result = result;
	store_unlinks_finish(q->store, &q->unlinks, result);
	loop_post(q->loop, queue_done, q);
}

void store_queue_update(struct store *s, const struct store_queue_update *u, size_t count,
			struct loop *loop, store_done_fn *done, void *arg)
{
	struct queue_job *q = xcalloc(1, sizeof(*q));
	q->job.apply = queue_apply;
	q->job.finish = queue_finish;
	q->store = s;
	q->u = xcalloc(count ? count : 1, sizeof(*q->u));
	for (size_t i = 0; i < count; i++) {
		q->u[i] = u[i];
		q->u[i].error = u[i].error ? xstrdup(u[i].error) : NULL;
	}
	q->count = count;
	q->loop = loop;
	q->done = done;
	q->arg = arg;
	store_writer_submit(s, &q->job);
}
