/* Changing mailboxes (create, delete, rename, subscribe) and copying or
 * moving messages between them: writes for the writer thread. */
#include "store/store_private.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum manage_op { OP_CREATE, OP_DELETE, OP_RENAME, OP_SUBSCRIBE, OP_COPY };

struct manage_job {
	struct store_job job;
	struct store *store;
	enum manage_op op;
	int64_t account_id;
	char *name, *new_name;
	bool flag;		/* subscribe / move */
	int64_t src, dst;	/* copy */
	uint32_t *uids;
	size_t count;
	uint32_t *dst_uids;	/* copy results */
	uint32_t *src_done;
	size_t done_count;
	uint32_t uidvalidity;
	int status;		/* STORE_* decided inside apply */
	struct store_unlinks unlinks;
	int64_t touched[2];
	struct loop *loop;
	store_done_fn *done;
	store_copy_done_fn *copy_done;
	void *arg;
	int result;
};

/* A statement run to completion, or a row read: small helpers to keep the
 * operations below readable. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* The mailbox id of name: > 0, 0 if none, -1 on error. */
static int64_t mailbox_id(sqlite3 *db, int64_t account, const char *name)
{
	sqlite3_stmt *st = prep(db, "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : rc == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return id;
}

static int exec_bind2(sqlite3 *db, const char *sql, int64_t a, int64_t b)
{
	sqlite3_stmt *st = prep(db, sql);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int exec_bind1(sqlite3 *db, const char *sql, int64_t a)
{
	sqlite3_stmt *st = prep(db, sql);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, a);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* A new UIDVALIDITY above every one of the account (RFC 9051 2.3.1.1: a
 * name used again must not reuse a UIDVALIDITY with different UIDs). */
static int64_t next_uidvalidity(sqlite3 *db, int64_t account)
{
	sqlite3_stmt *st = prep(db, "SELECT max(uidvalidity) FROM mailboxes WHERE account_id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account);
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	int64_t now = time_now_ms() / 1000;
	if (v < 0)
		return -1;
	return (v >= now ? v + 1 : now) & 0xffffffff;
}

static int create_mailbox(sqlite3 *db, int64_t account, const char *name, int64_t *id_r)
{
	int64_t uv = next_uidvalidity(db, account);
	sqlite3_stmt *st = prep(db, "INSERT INTO mailboxes (account_id, name, uidvalidity)"
			       " VALUES (?, ?, ?)");
	if (uv < 0 || st == NULL) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uv);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (id_r)
		*id_r = sqlite3_last_insert_rowid(db);
	return 0;
}

static int op_delete(sqlite3 *db, struct manage_job *j)
{
	if (strcmp(j->name, "INBOX") == 0) {
		j->status = STORE_REFUSED;
		return 0;
	}
	int64_t id = mailbox_id(db, j->account_id, j->name);
	if (id <= 0) {
		j->status = id == 0 ? STORE_NOT_FOUND : STORE_FAILED;
		return id == 0 ? 0 : -1;
	}
	j->touched[0] = id;
	sqlite3_stmt *st = prep(db, "SELECT DISTINCT message_id FROM mail WHERE mailbox_id = ?");
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int64_t *mids = NULL;
	size_t n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		mids = xrealloc(mids, (n + 1) * sizeof(*mids));
		mids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	int r = exec_bind1(db, "DELETE FROM mail WHERE mailbox_id = ?", id);
	if (r == 0)
		r = exec_bind1(db, "DELETE FROM mailboxes WHERE id = ?", id);
	if (r == 0)
		r = store_release_messages(db, mids, n, &j->unlinks);
	free(mids);
	return r;
}

static int op_rename(sqlite3 *db, struct manage_job *j)
{
	int64_t id = mailbox_id(db, j->account_id, j->name);
	int64_t taken = mailbox_id(db, j->account_id, j->new_name);
	if (id < 0 || taken < 0)
		return -1;
	if (id == 0) {
		j->status = STORE_NOT_FOUND;
		return 0;
	}
	if (taken > 0) {
		j->status = STORE_EXISTS;
		return 0;
	}
	if (strcmp(j->name, "INBOX") == 0) {
		/* RFC 9051 6.3.6: INBOX's messages move to the new name;
		 * INBOX stays, empty. The UIDs are new ones. */
		int64_t dst;
		if (create_mailbox(db, j->account_id, j->new_name, &dst) < 0)
			return -1;
		j->src = id;
		j->dst = dst;
		sqlite3_stmt *st = prep(db, "SELECT uid FROM mail WHERE mailbox_id = ? ORDER BY uid");
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			j->uids = xrealloc(j->uids, (j->count + 1) * sizeof(*j->uids));
			j->uids[j->count++] = (uint32_t)sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		j->flag = true;	/* move */
		return -2;	/* go on as a copy */
	}
	/* The mailbox and everything under it. */
	sqlite3_stmt *st = prep(db, "UPDATE mailboxes SET name = ? || substr(name, ?)"
			       " WHERE account_id = ? AND (name = ? OR substr(name, 1, ?) = ?)");
	if (st == NULL)
		return -1;
	char *prefix = xasprintf("%s/", j->name);
	sqlite3_bind_text(st, 1, j->new_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)strlen(j->name) + 1);
	sqlite3_bind_int64(st, 3, j->account_id);
	sqlite3_bind_text(st, 4, j->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)strlen(prefix));
	sqlite3_bind_text(st, 6, prefix, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(prefix);
	j->touched[0] = id;
	return rc == SQLITE_DONE ? 0 : -1;
}

static int op_copy(sqlite3 *db, struct manage_job *j)
{
	sqlite3_stmt *dst = prep(db, "SELECT uidnext, highestmodseq + 1, uidvalidity FROM mailboxes WHERE id = ?");
	sqlite3_stmt *sel = prep(db, "SELECT message_id, prefix, flags, keywords, internaldate"
				 " FROM mail WHERE mailbox_id = ? AND uid = ?");
	sqlite3_stmt *ins = prep(db, "INSERT INTO mail (mailbox_id, uid, message_id, prefix, flags,"
				 " keywords, modseq, internaldate, savedate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
	sqlite3_stmt *del = prep(db, "DELETE FROM mail WHERE mailbox_id = ? AND uid = ?");
	sqlite3_stmt *tomb = prep(db, "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?, ?, ?)");
	int r = -1;
	if (!dst || !sel || !ins || !del || !tomb)
		goto out;
	sqlite3_bind_int64(dst, 1, j->dst);
	if (sqlite3_step(dst) != SQLITE_ROW)
		goto out;
	int64_t uid = sqlite3_column_int64(dst, 0), modseq = sqlite3_column_int64(dst, 1);
	j->uidvalidity = (uint32_t)sqlite3_column_int64(dst, 2);
	int64_t src_modseq = 0;
	if (j->flag) {
		sqlite3_stmt *b = prep(db, "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
				       " WHERE id = ? RETURNING highestmodseq");
		if (b == NULL)
			goto out;
		sqlite3_bind_int64(b, 1, j->src);
		if (sqlite3_step(b) == SQLITE_ROW)
			src_modseq = sqlite3_column_int64(b, 0);
		sqlite3_finalize(b);
		if (src_modseq == 0)
			goto out;
	}
	j->dst_uids = xmalloc((j->count ? j->count : 1) * sizeof(*j->dst_uids));
	j->src_done = xmalloc((j->count ? j->count : 1) * sizeof(*j->src_done));
	int64_t now = time_now_ms() / 1000;
	for (size_t i = 0; i < j->count; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, j->src);
		sqlite3_bind_int64(sel, 2, j->uids[i]);
		int rc = sqlite3_step(sel);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			goto out;
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, j->dst);
		sqlite3_bind_int64(ins, 2, uid);
		sqlite3_bind_int64(ins, 3, sqlite3_column_int64(sel, 0));
		sqlite3_bind_value(ins, 4, sqlite3_column_value(sel, 1));
		sqlite3_bind_int64(ins, 5, sqlite3_column_int64(sel, 2));
		sqlite3_bind_value(ins, 6, sqlite3_column_value(sel, 3));
		sqlite3_bind_int64(ins, 7, modseq);
		sqlite3_bind_int64(ins, 8, sqlite3_column_int64(sel, 4));
		sqlite3_bind_int64(ins, 9, now);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto out;
		j->src_done[j->done_count] = j->uids[i];
		j->dst_uids[j->done_count++] = (uint32_t)uid;
		uid++;
		if (j->flag) {
			sqlite3_reset(del);
			sqlite3_bind_int64(del, 1, j->src);
			sqlite3_bind_int64(del, 2, j->uids[i]);
			sqlite3_reset(tomb);
			sqlite3_bind_int64(tomb, 1, j->src);
			sqlite3_bind_int64(tomb, 2, j->uids[i]);
			sqlite3_bind_int64(tomb, 3, src_modseq);
			if (sqlite3_step(del) != SQLITE_DONE || sqlite3_step(tomb) != SQLITE_DONE)
				goto out;
		}
	}
	sqlite3_stmt *upd = prep(db, "UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?");
	if (upd == NULL)
		goto out;
	sqlite3_bind_int64(upd, 1, uid);
	sqlite3_bind_int64(upd, 2, modseq);
	sqlite3_bind_int64(upd, 3, j->dst);
	r = sqlite3_step(upd) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(upd);
	j->touched[0] = j->src;
	j->touched[1] = j->dst;
out:
	sqlite3_finalize(dst);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(del);
	sqlite3_finalize(tomb);
	return r;
}

static int manage_apply(struct store_job *job, sqlite3 *db)
{
	struct manage_job *j = (struct manage_job *)job;
	int r = -1;
	int64_t id;
	j->status = STORE_OK;
	switch (j->op) {
	case OP_CREATE:
		id = mailbox_id(db, j->account_id, j->name);
		if (id < 0)
			break;
		if (id > 0) {
			j->status = STORE_EXISTS;
			r = 0;
			break;
		}
		/* RFC 9051 6.3.4: the superior levels are made too. */
		r = 0;
		for (char *slash = strchr(j->name, '/'); r == 0 && slash; slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			id = mailbox_id(db, j->account_id, j->name);
			if (id < 0)
				r = -1;
			else if (id == 0)
				r = create_mailbox(db, j->account_id, j->name, NULL);
			*slash = '/';
		}
		if (r == 0)
			r = create_mailbox(db, j->account_id, j->name, NULL);
		break;
	case OP_DELETE:
		r = op_delete(db, j);
		break;
	case OP_RENAME:
		r = op_rename(db, j);
		if (r == -2)
			r = op_copy(db, j);
		break;
	case OP_SUBSCRIBE:
		id = mailbox_id(db, j->account_id, j->name);
		if (id <= 0) {
			/* RFC 9051 6.3.7 allows subscribing to names that do not
			 * exist; we keep subscriptions on mailboxes only. */
			j->status = id == 0 ? STORE_NOT_FOUND : STORE_FAILED;
			r = id == 0 ? 0 : -1;
			break;
		}
		r = exec_bind2(db, "UPDATE mailboxes SET subscribed = ? WHERE id = ?", j->flag, id);
		break;
	case OP_COPY:
		r = op_copy(db, j);
		break;
	}
	if (r < 0) {
		log_error("event=mailbox_change_failed op=%d error=\"%s\"", (int)j->op, sqlite3_errmsg(db));
		j->done_count = 0;
	}
	return r;
}

static void manage_done(void *arg)
{
	struct manage_job *j = arg;
	int result = j->result < 0 ? STORE_FAILED : j->status;
	if (j->copy_done)
		j->copy_done(j->arg, result, j->uidvalidity, j->src_done, j->dst_uids,
			     result == STORE_OK ? j->done_count : 0);
	else if (j->done)
		j->done(j->arg, result);
	free(j->name);
	free(j->new_name);
	free(j->uids);
	free(j->dst_uids);
	free(j->src_done);
	free(j);
}

static void manage_finish(struct store_job *job, int result)
{
	struct manage_job *j = (struct manage_job *)job;
	j->result = result;
	store_unlinks_finish(j->store, &j->unlinks, result);
	if (result == 0) {
		for (int i = 0; i < 2; i++) {
			if (j->touched[i])
				store_mailbox_touch(j->touched[i]);
		}
	}
	loop_post(j->loop, manage_done, j);
}

static struct manage_job *job_new(struct store *s, enum manage_op op, int64_t account,
				  const char *name, struct loop *loop, void *arg)
{
	struct manage_job *j = xcalloc(1, sizeof(*j));
	j->job.apply = manage_apply;
	j->job.finish = manage_finish;
	j->store = s;
	j->op = op;
	j->account_id = account;
	j->name = name ? xstrdup(name) : NULL;
	j->loop = loop;
	j->arg = arg;
	return j;
}

void store_mailbox_create(struct store *s, int64_t account_id, const char *name,
			  struct loop *loop, store_done_fn *done, void *arg)
{
	struct manage_job *j = job_new(s, OP_CREATE, account_id, name, loop, arg);
	j->done = done;
	store_writer_submit(s, &j->job);
}

void store_mailbox_delete(struct store *s, int64_t account_id, const char *name,
			  struct loop *loop, store_done_fn *done, void *arg)
{
	struct manage_job *j = job_new(s, OP_DELETE, account_id, name, loop, arg);
	j->done = done;
	store_writer_submit(s, &j->job);
}

void store_mailbox_rename(struct store *s, int64_t account_id, const char *old,
			  const char *new_name, struct loop *loop, store_done_fn *done,
			  void *arg)
{
	struct manage_job *j = job_new(s, OP_RENAME, account_id, old, loop, arg);
	j->new_name = xstrdup(new_name);
	j->done = done;
	store_writer_submit(s, &j->job);
}

void store_mailbox_subscribe(struct store *s, int64_t account_id, const char *name,
			     bool subscribed, struct loop *loop, store_done_fn *done,
			     void *arg)
{
	struct manage_job *j = job_new(s, OP_SUBSCRIBE, account_id, name, loop, arg);
	j->flag = subscribed;
	j->done = done;
	store_writer_submit(s, &j->job);
}

void store_copy(struct store *s, int64_t src_mailbox, int64_t dst_mailbox,
		const uint32_t *uids, size_t count, bool move, struct loop *loop,
		store_copy_done_fn *done, void *arg)
{
	struct manage_job *j = job_new(s, OP_COPY, 0, NULL, loop, arg);
	j->src = src_mailbox;
	j->dst = dst_mailbox;
	j->flag = move;
	j->uids = xmalloc((count ? count : 1) * sizeof(*uids));
	memcpy(j->uids, uids, count * sizeof(*uids));
	j->count = count;
	j->copy_done = done;
	store_writer_submit(s, &j->job);
}
