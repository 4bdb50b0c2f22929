/* Reading mailboxes and expunging messages, for POP3 and IMAP. */
#include "store/store_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int store_mailbox_get(struct store_reader *r, int64_t account_id, const char *name,
		      struct store_mailbox_info *info_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, uidvalidity, uidnext, highestmodseq"
			       " FROM mailboxes WHERE account_id = ? AND name = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), res = 0;
	if (rc == SQLITE_ROW) {
		info_r->id = sqlite3_column_int64(st, 0);
		info_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		info_r->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		info_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		res = 1;
	} else if (rc != SQLITE_DONE) {
		res = -1;
	}
	sqlite3_finalize(st);
	return res;
}

int store_mailbox_messages(struct store_reader *r, int64_t mailbox_id,
			   struct store_msg **msgs_r, size_t *count_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db,
			"SELECT l.uid, l.flags, l.modseq, l.internaldate, m.size, m.id, m.body,"
			" l.prefix FROM mail l JOIN messages m ON m.id = l.message_id"
			" WHERE l.mailbox_id = ? ORDER BY l.uid", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	struct store_msg *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		struct store_msg *m = &v[n++];
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->flags = (uint32_t)sqlite3_column_int64(st, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 2);
		m->internaldate = sqlite3_column_int64(st, 3);
		m->prefix_len = (size_t)sqlite3_column_bytes(st, 7);
		m->prefix = xstrndup(m->prefix_len ? sqlite3_column_blob(st, 7) : "", m->prefix_len);
		m->size = (uint64_t)sqlite3_column_int64(st, 4) + m->prefix_len;
		m->message_id = sqlite3_column_int64(st, 5);
		m->body = xstrdup((const char *)sqlite3_column_text(st, 6));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_msgs_free(&v, n);
		return -1;
	}
	*msgs_r = v;
	*count_r = n;
	return 0;
}

void store_msgs_free(struct store_msg **msgs, size_t count)
{
	struct store_msg *v = *msgs;
	if (v == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(v[i].body);
		free(v[i].prefix);
	}
	free(v);
	*msgs = NULL;
}

int store_msg_open(struct store *s, const struct store_msg *m)
{
	return openat(s->data_dir_fd, m->body, O_RDONLY | O_CLOEXEC);
}

/* ---- expunge ---- */

struct expunge_job {
	struct store_job job;
	struct store *store;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t count;
	char **unlink;		/* bodies to remove once committed */
	size_t unlink_count;
	struct loop *loop;
	store_done_fn *done;
	void *arg;
	int result;
};

static int expunge_apply(struct store_job *job, sqlite3 *db)
{
	struct expunge_job *e = (struct expunge_job *)job;
	sqlite3_stmt *sel = NULL, *del = NULL, *tomb = NULL, *refs = NULL, *msgdel = NULL,
		     *bump = NULL;
	int64_t *mids = NULL;
	size_t nmids = 0;
	int r = -1;
	if (sqlite3_prepare_v2(db, "SELECT message_id FROM mail WHERE mailbox_id = ? AND uid = ?",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM mail WHERE mailbox_id = ? AND uid = ?",
			       -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
			       " WHERE id = ? RETURNING highestmodseq", -1, &bump, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
			       " VALUES (?, ?, ?)", -1, &tomb, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT body FROM messages m WHERE id = ? AND"
			       " NOT EXISTS (SELECT 1 FROM mail WHERE message_id = m.id) AND"
			       " NOT EXISTS (SELECT 1 FROM queue WHERE message_id = m.id)",
			       -1, &refs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM messages WHERE id = ?", -1, &msgdel, NULL) != SQLITE_OK)
		goto out;

	/* RFC 7162 3.2.10: one new mod-sequence for this whole expunge. */
	sqlite3_bind_int64(bump, 1, e->mailbox_id);
	if (sqlite3_step(bump) != SQLITE_ROW)
		goto out;
	int64_t modseq = sqlite3_column_int64(bump, 0);
	sqlite3_reset(bump);

	for (size_t i = 0; i < e->count; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, e->mailbox_id);
		sqlite3_bind_int64(sel, 2, e->uids[i]);
		int rc = sqlite3_step(sel);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			goto out;
		mids = xrealloc(mids, (nmids + 1) * sizeof(*mids));
		mids[nmids++] = sqlite3_column_int64(sel, 0);
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, e->mailbox_id);
		sqlite3_bind_int64(del, 2, e->uids[i]);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto out;
		sqlite3_reset(tomb);
		sqlite3_bind_int64(tomb, 1, e->mailbox_id);
		sqlite3_bind_int64(tomb, 2, e->uids[i]);
		sqlite3_bind_int64(tomb, 3, modseq);
		if (sqlite3_step(tomb) != SQLITE_DONE)
			goto out;
	}
	/* Bodies nobody else holds go too (after the commit, in finish). */
	for (size_t i = 0; i < nmids; i++) {
		sqlite3_reset(refs);
		sqlite3_bind_int64(refs, 1, mids[i]);
		int rc = sqlite3_step(refs);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			goto out;
		e->unlink = xrealloc(e->unlink, (e->unlink_count + 1) * sizeof(*e->unlink));
		e->unlink[e->unlink_count++] = xstrdup((const char *)sqlite3_column_text(refs, 0));
		sqlite3_reset(msgdel);
		sqlite3_bind_int64(msgdel, 1, mids[i]);
		if (sqlite3_step(msgdel) != SQLITE_DONE)
			goto out;
	}
	r = 0;
out:
	if (r < 0) {
		log_error("event=expunge_failed mailbox_id=%lld error=\"%s\"",
			  (long long)e->mailbox_id, sqlite3_errmsg(db));
		for (size_t i = 0; i < e->unlink_count; i++)
			free(e->unlink[i]);
		e->unlink_count = 0;
	}
	free(mids);
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	sqlite3_finalize(tomb);
	sqlite3_finalize(refs);
	sqlite3_finalize(msgdel);
	sqlite3_finalize(bump);
	return r;
}

static void expunge_done(void *arg)
{
	struct expunge_job *e = arg;
	if (e->done)
		e->done(e->arg, e->result);
	for (size_t i = 0; i < e->unlink_count; i++)
		free(e->unlink[i]);
	free(e->unlink);
	free(e->uids);
	free(e);
}

static void expunge_finish(struct store_job *job, int result)
{
	struct expunge_job *e = (struct expunge_job *)job;
	e->result = result;
	for (size_t i = 0; result == 0 && i < e->unlink_count; i++) {
		if (unlinkat(e->store->data_dir_fd, e->unlink[i], 0) < 0 && errno != ENOENT)
			log_warn("event=body_unlink_failed file=%s error=\"%s\"", e->unlink[i],
				 strerror(errno));
	}
	loop_post(e->loop, expunge_done, e);
}

void store_expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		   size_t count, struct loop *loop, store_done_fn *done, void *arg)
{
	struct expunge_job *e = xcalloc(1, sizeof(*e));
	e->job.apply = expunge_apply;
	e->job.finish = expunge_finish;
	e->store = s;
	e->mailbox_id = mailbox_id;
	e->uids = xmalloc((count ? count : 1) * sizeof(*uids));
	memcpy(e->uids, uids, count * sizeof(*uids));
	e->count = count;
	e->loop = loop;
	e->done = done;
	e->arg = arg;
	store_writer_submit(s, &e->job);
}
