/* Reading mailboxes and expunging messages, for POP3 and IMAP. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int store_mailbox_get(struct store_reader *r, int64_t account_id, const char *name,
		      struct store_mailbox_info *info_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, uidvalidity, uidnext, highestmodseq,"
			       " objectid FROM mailboxes WHERE account_id = ? AND name = ?",
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
		const char *oid = (const char *)sqlite3_column_text(st, 4);
		snprintf(info_r->objectid, sizeof(info_r->objectid), "%s", oid ? oid : "");
		res = 1;
	} else if (rc != SQLITE_DONE) {
		res = -1;
	}
	sqlite3_finalize(st);
	return res;
}

/* PREFIX: l.prefix, or its length in a listing without prefixes. */
#define MSG_COLUMNS(PREFIX) \
	"SELECT l.uid, l.flags, l.modseq, l.internaldate, m.size, m.id, m.body," \
	" " PREFIX ", l.keywords, l.savedate, m.queue_id, m.threadid" \
	" FROM mail l JOIN messages m ON m.id = l.message_id"
#define WITH_PREFIX "l.prefix"
#define PREFIX_LEN "length(CAST(l.prefix AS BLOB))"

static int read_msgs(sqlite3_stmt *st, bool with_prefix, struct store_msg **msgs_r,
		     size_t *count_r);

static int list_msgs(struct store_reader *r, int64_t mailbox_id, bool with_prefix,
		     struct store_msg **msgs_r, size_t *count_r)
{
	sqlite3_stmt *st;
	const char *sql = with_prefix ?
		MSG_COLUMNS(WITH_PREFIX) " WHERE l.mailbox_id = ? ORDER BY l.uid" :
		MSG_COLUMNS(PREFIX_LEN) " WHERE l.mailbox_id = ? ORDER BY l.uid";
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return read_msgs(st, with_prefix, msgs_r, count_r);
}

int store_mailbox_messages(struct store_reader *r, int64_t mailbox_id,
			   struct store_msg **msgs_r, size_t *count_r)
{
	return list_msgs(r, mailbox_id, true, msgs_r, count_r);
}

int store_mailbox_listing(struct store_reader *r, int64_t mailbox_id,
			  struct store_msg **msgs_r, size_t *count_r)
{
	return list_msgs(r, mailbox_id, false, msgs_r, count_r);
}

int store_msg_prefix(struct store_reader *r, int64_t mailbox_id, uint32_t uid,
		     struct buf *out)
{
	sqlite3_stmt *st = r->st_prefix;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st), res = -1;
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);
		if (n > 0)
			buf_append(out, sqlite3_column_blob(st, 0), (size_t)n);
		res = 1;
	} else if (rc == SQLITE_DONE) {
		res = 0;
	}
	sqlite3_reset(st);
	return res;
}

/* A queue id (store_new_id: 16 hex digits) as a number; 0 for anything
 * else, which no row written by this server holds. */
static uint64_t msgid_parse(const char *qid)
{
	if (qid == NULL || strlen(qid) != 16 || strspn(qid, "0123456789ABCDEF") != 16)
		return 0;
	return strtoull(qid, NULL, 16);
}

void store_msgid_format(char kind, uint64_t id, char out[STORE_MSGID_MAX])
{
	snprintf(out, STORE_MSGID_MAX, "%c%016llX", kind, (unsigned long long)id);
}

/* Reads rows of MSG_COLUMNS; finalizes st. */
static int read_msgs(sqlite3_stmt *st, bool with_prefix, struct store_msg **msgs_r,
		     size_t *count_r)
{
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
		if (with_prefix) {
			m->prefix_len = (size_t)sqlite3_column_bytes(st, 7);
			m->prefix = xstrndup(m->prefix_len ? sqlite3_column_blob(st, 7) : "",
					     m->prefix_len);
		} else {
			m->prefix_len = (size_t)sqlite3_column_int64(st, 7);
			m->prefix = NULL;
		}
		m->size = (uint64_t)sqlite3_column_int64(st, 4) + m->prefix_len;
		m->message_id = sqlite3_column_int64(st, 5);
		m->body = xstrdup((const char *)sqlite3_column_text(st, 6));
		const char *kw = (const char *)sqlite3_column_text(st, 8);
		m->keywords = kw && *kw ? xstrdup(kw) : NULL;
		m->savedate = sqlite3_column_int64(st, 9);
		/* RFC 8474: the ids of the shared messages row, so a copy or
		 * a move keeps them; a row from before threads stand alone. */
		const char *qid = (const char *)sqlite3_column_text(st, 10);
		const char *tid = (const char *)sqlite3_column_text(st, 11);
		m->emailid = msgid_parse(qid);
		m->threadid = tid != NULL && tid[0] == 'T' ? msgid_parse(tid + 1) : m->emailid;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_msgs_free(&v, n);
		return -1;
	}
	/* Held for as long as the mailbox is selected: no spare room. */
	if (n > 0 && n < cap)
		v = xrealloc(v, n * sizeof(*v));
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
		free(v[i].keywords);
	}
	free(v);
	*msgs = NULL;
}

#define VERSION_SLOTS 4096
static _Atomic uint64_t versions[VERSION_SLOTS];

void store_mailbox_touch(int64_t mailbox_id)
{
	versions[(uint64_t)mailbox_id % VERSION_SLOTS]++;
}

uint64_t store_mailbox_version(int64_t mailbox_id)
{
	return versions[(uint64_t)mailbox_id % VERSION_SLOTS];
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
	struct store_unlinks unlinks;
	struct loop *loop;
	store_done_fn *done;
	void *arg;
	int result;
};

static int expunge_apply(struct store_job *job, sqlite3 *db)
{
	struct expunge_job *e = (struct expunge_job *)job;
	sqlite3_stmt *sel = NULL, *del = NULL, *tomb = NULL, *bump = NULL;
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
			       " VALUES (?, ?, ?)", -1, &tomb, NULL) != SQLITE_OK)
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
	r = store_release_messages(db, mids, nmids, &e->unlinks);
out:
	if (r < 0)
		log_error("event=expunge_failed mailbox_id=%lld error=\"%s\"",
			  (long long)e->mailbox_id, sqlite3_errmsg(db));
	free(mids);
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	sqlite3_finalize(tomb);
	sqlite3_finalize(bump);
	return r;
}

static void expunge_done(void *arg)
{
	struct expunge_job *e = arg;
	if (e->done)
		e->done(e->arg, e->result);
	free(e->uids);
	free(e);
}

static void expunge_finish(struct store_job *job, int result)
{
	struct expunge_job *e = (struct expunge_job *)job;
	e->result = result;
	store_mailbox_touch(e->mailbox_id);
	store_unlinks_finish(e->store, &e->unlinks, result);
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

/* ---- changes, lists, status ---- */

int store_mailbox_changes(struct store_reader *r, int64_t mailbox_id, uint64_t since,
			  struct store_changes *c)
{
	memset(c, 0, sizeof(*c));
	struct store_mailbox_info info;
	sqlite3_stmt *st;
	/* One read transaction: the three answers agree with each other. */
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	int res = -1;
	if (sqlite3_prepare_v2(r->db, "SELECT uidnext, highestmodseq FROM mailboxes WHERE id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		goto out;
	}
	info.uidnext = (uint32_t)sqlite3_column_int64(st, 0);
	info.highestmodseq = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	c->uidnext = info.uidnext;
	c->highestmodseq = info.highestmodseq;
	if (sqlite3_prepare_v2(r->db, MSG_COLUMNS(PREFIX_LEN) " WHERE l.mailbox_id = ?"
			       " AND l.modseq > ? ORDER BY l.uid", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	if (read_msgs(st, false, &c->msgs, &c->msg_count) < 0)
		goto out;
	if (sqlite3_prepare_v2(r->db, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?"
			       " ORDER BY uid", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	int rc;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->expunged_count == cap) {
			cap = cap ? cap * 2 : 16;
			c->expunged = xrealloc(c->expunged, cap * sizeof(*c->expunged));
		}
		c->expunged[c->expunged_count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		res = 0;
out:
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	if (res < 0)
		store_changes_deinit(c);
	return res;
}

int store_mailbox_expunged(struct store_reader *r, int64_t mailbox_id, uint64_t since,
			   uint32_t **uids_r, size_t *count_r)
{
	sqlite3_stmt *st;
	*uids_r = NULL;
	*count_r = 0;
	if (sqlite3_prepare_v2(r->db, "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ?"
			       " ORDER BY uid", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	uint32_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*uids_r = v;
	*count_r = n;
	return 0;
}

void store_changes_deinit(struct store_changes *c)
{
	store_msgs_free(&c->msgs, c->msg_count);
	free(c->expunged);
	memset(c, 0, sizeof(*c));
}

int store_mailbox_list(struct store_reader *r, int64_t account_id,
		       struct store_mailbox_entry **list_r, size_t *count_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT id, name, special_use, subscribed FROM mailboxes"
			       " WHERE account_id = ? ORDER BY name = 'INBOX' DESC, name",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	struct store_mailbox_entry *v = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n].id = sqlite3_column_int64(st, 0);
		v[n].name = xstrdup((const char *)sqlite3_column_text(st, 1));
		const char *su = (const char *)sqlite3_column_text(st, 2);
		v[n].special_use = su ? xstrdup(su) : NULL;
		v[n].subscribed = sqlite3_column_int(st, 3) != 0;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_mailbox_list_free(&v, n);
		return -1;
	}
	*list_r = v;
	*count_r = n;
	return 0;
}

void store_mailbox_list_free(struct store_mailbox_entry **list, size_t count)
{
	struct store_mailbox_entry *v = *list;
	if (v == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(v[i].name);
		free(v[i].special_use);
	}
	free(v);
	*list = NULL;
}

/* One row of STATUS_COLUMNS into *st_r. */
static void status_row(sqlite3_stmt *st, struct store_status *st_r)
{
	memset(st_r, 0, sizeof(*st_r));
	st_r->mailbox_id = sqlite3_column_int64(st, 0);
	st_r->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
	st_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	st_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
	const char *oid = (const char *)sqlite3_column_text(st, 4);
	snprintf(st_r->objectid, sizeof(st_r->objectid), "%s", oid ? oid : "");
	st_r->messages = (uint32_t)sqlite3_column_int64(st, 5);
	st_r->unseen = (uint32_t)sqlite3_column_int64(st, 6);
	st_r->deleted = (uint32_t)sqlite3_column_int64(st, 7);
	st_r->size = (uint64_t)sqlite3_column_int64(st, 8);
}

#define STATUS_COLUMNS \
	"SELECT b.id, b.uidnext, b.uidvalidity, b.highestmodseq, b.objectid,"

int store_mailbox_status(struct store_reader *reader, int64_t mailbox_id,
			 struct store_status *st_r)
{
	struct store_reader *rd = reader;
	sqlite3_stmt *st;
	memset(st_r, 0, sizeof(*st_r));
	if (sqlite3_prepare_v2(rd->db,
			STATUS_COLUMNS
			" (SELECT count(*) FROM mail WHERE mailbox_id = b.id),"
			" (SELECT count(*) FROM mail WHERE mailbox_id = b.id AND (flags & 1) = 0),"
			" (SELECT count(*) FROM mail WHERE mailbox_id = b.id AND (flags & 8) != 0),"
			" (SELECT coalesce(sum(m.size + length(l.prefix)), 0) FROM mail l"
			"  JOIN messages m ON m.id = l.message_id WHERE l.mailbox_id = b.id)"
			" FROM mailboxes b WHERE b.id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		status_row(st, st_r);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

/* One pass over the account's mail rows, grouped by mailbox (the primary
 * key of mail starts with mailbox_id); mailboxes without mail come from
 * the outer join with a count of 0. The size variant adds a lookup of each
 * message's row by its key. */
int store_account_status(struct store_reader *r, int64_t account_id, bool size,
			 struct store_status **v_r, size_t *count_r)
{
	sqlite3_stmt *st;
	const char *sql = size ?
		STATUS_COLUMNS
		" count(l.uid), coalesce(sum((l.flags & 1) = 0), 0),"
		" coalesce(sum((l.flags & 8) != 0), 0),"
		" coalesce(sum(m.size + length(l.prefix)), 0)"
		" FROM mailboxes b LEFT JOIN mail l ON l.mailbox_id = b.id"
		" LEFT JOIN messages m ON m.id = l.message_id"
		" WHERE b.account_id = ? GROUP BY b.id ORDER BY b.id" :
		STATUS_COLUMNS
		" count(l.uid), coalesce(sum((l.flags & 1) = 0), 0),"
		" coalesce(sum((l.flags & 8) != 0), 0), 0"
		" FROM mailboxes b LEFT JOIN mail l ON l.mailbox_id = b.id"
		" WHERE b.account_id = ? GROUP BY b.id ORDER BY b.id";
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	struct store_status *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof(*v));
		}
		status_row(st, &v[n++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return -1;
	}
	*v_r = v;
	*count_r = n;
	return 0;
}

/* ---- flags ---- */

struct flags_job {
	struct store_job job;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t count;
	enum store_flags_mode mode;
	uint32_t flags;
	char *keywords;
	uint64_t unchangedsince;
	struct store_flags_result *res;	/* the caller's, or NULL */
	struct loop *loop;
	store_done_fn *done;
	void *arg;
	int result;
};

/* Keyword sets as space-separated strings; comparisons ignore case
 * (RFC 9051 2.3.2: flag names are case-insensitive). */
static bool kw_has(const char *set, const char *kw, size_t len)
{
	for (const char *p = set; p && *p;) {
		const char *e = strchr(p, ' ');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == len && str_nieq(p, kw, len))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static char *kw_apply(const char *old, const char *change, enum store_flags_mode mode)
{
	struct buf out;
	buf_init(&out, 0);
	if (mode != STORE_FLAGS_SET) {
		for (const char *p = old; p && *p;) {
			const char *e = strchr(p, ' ');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			if (!(mode == STORE_FLAGS_REMOVE && kw_has(change, p, n))) {
				if (out.len)
					buf_append_c(&out, ' ');
				buf_append(&out, p, n);
			}
			p = e ? e + 1 : NULL;
		}
	}
	if (mode != STORE_FLAGS_REMOVE) {
		for (const char *p = change; p && *p;) {
			const char *e = strchr(p, ' ');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			if (!kw_has(out.data, p, n)) {
				if (out.len)
					buf_append_c(&out, ' ');
				buf_append(&out, p, n);
			}
			p = e ? e + 1 : NULL;
		}
	}
	return buf_steal(&out, NULL);
}

static int flags_apply(struct store_job *job, sqlite3 *db)
{
	struct flags_job *f = (struct flags_job *)job;
	sqlite3_stmt *sel = NULL, *upd = NULL, *bump = NULL;
	int64_t modseq = -1;
	int r = -1;
	struct store_flags_result *res = f->res;
	if (res != NULL) {
		/* apply may run again after a failed attempt: start afresh. */
		store_flags_result_deinit(res);
	}
	if (sqlite3_prepare_v2(db, "SELECT flags, keywords, modseq FROM mail"
			       " WHERE mailbox_id = ? AND uid = ?",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE mail SET flags = ?, keywords = ?, modseq = ?"
			       " WHERE mailbox_id = ? AND uid = ?", -1, &upd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
			       " WHERE id = ? RETURNING highestmodseq", -1, &bump, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < f->count; i++) {
		sqlite3_reset(sel);
		sqlite3_bind_int64(sel, 1, f->mailbox_id);
		sqlite3_bind_int64(sel, 2, f->uids[i]);
		int rc = sqlite3_step(sel);
		if (rc == SQLITE_DONE)
			continue;
		if (rc != SQLITE_ROW)
			goto out;
		uint32_t old = (uint32_t)sqlite3_column_int64(sel, 0), nf;
		const char *oldkw = (const char *)sqlite3_column_text(sel, 1);
		uint64_t oldmodseq = (uint64_t)sqlite3_column_int64(sel, 2);
		/* RFC 7162 3.1.3: checked here, in the writer's transaction, so
		 * that no other session's change slips in between. */
		if (oldmodseq > f->unchangedsince) {
			if (res != NULL) {
				res->modified = xrealloc(res->modified, (res->modified_count + 1) *
							 sizeof(*res->modified));
				res->modified[res->modified_count++] = f->uids[i];
			}
			continue;
		}
		switch (f->mode) {
		case STORE_FLAGS_ADD: nf = old | f->flags; break;
		case STORE_FLAGS_REMOVE: nf = old & ~f->flags; break;
		default: nf = f->flags; break;
		}
		char *kw = kw_apply(oldkw, f->keywords, f->mode);
		bool same = nf == old && strcmp(kw, oldkw ? oldkw : "") == 0;
		if (same) {
			free(kw);
			continue;
		}
		if (modseq < 0) {
			/* RFC 7162 3.2: one new mod-sequence for this STORE. */
			sqlite3_bind_int64(bump, 1, f->mailbox_id);
			if (sqlite3_step(bump) != SQLITE_ROW) {
				free(kw);
				goto out;
			}
			modseq = sqlite3_column_int64(bump, 0);
			sqlite3_reset(bump);
		}
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, nf);
		if (*kw)
			sqlite3_bind_text(upd, 2, kw, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(upd, 2);
		sqlite3_bind_int64(upd, 3, modseq);
		sqlite3_bind_int64(upd, 4, f->mailbox_id);
		sqlite3_bind_int64(upd, 5, f->uids[i]);
		free(kw);
		if (sqlite3_step(upd) != SQLITE_DONE)
			goto out;
		if (res != NULL) {
			size_t k = res->updated_count++;
			res->updated = xrealloc(res->updated, res->updated_count * sizeof(*res->updated));
			res->prior = xrealloc(res->prior, res->updated_count * sizeof(*res->prior));
			res->updated[k] = f->uids[i];
			res->prior[k] = oldmodseq;
		}
	}
	if (res != NULL)
		res->modseq = modseq > 0 ? (uint64_t)modseq : 0;
	r = 0;
out:
	if (r < 0)
		log_error("event=flags_failed mailbox_id=%lld error=\"%s\"",
			  (long long)f->mailbox_id, sqlite3_errmsg(db));
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_finalize(bump);
	return r;
}

static void flags_done(void *arg)
{
	struct flags_job *f = arg;
	if (f->done)
		f->done(f->arg, f->result);
	free(f->uids);
	free(f->keywords);
	free(f);
}

static void flags_finish(struct store_job *job, int result)
{
	struct flags_job *f = (struct flags_job *)job;
	f->result = result;
	store_mailbox_touch(f->mailbox_id);
	loop_post(f->loop, flags_done, f);
}

void store_flags_result_deinit(struct store_flags_result *res)
{
	free(res->modified);
	free(res->updated);
	free(res->prior);
	memset(res, 0, sizeof(*res));
}

void store_flags_update(struct store *s, int64_t mailbox_id, const uint32_t *uids,
			size_t count, enum store_flags_mode mode, uint32_t flags,
			const char *keywords, uint64_t unchangedsince,
			struct store_flags_result *res, struct loop *loop, store_done_fn *done,
			void *arg)
{
	struct flags_job *f = xcalloc(1, sizeof(*f));
	f->job.apply = flags_apply;
	f->job.finish = flags_finish;
	f->mailbox_id = mailbox_id;
	f->uids = xmalloc((count ? count : 1) * sizeof(*uids));
	memcpy(f->uids, uids, count * sizeof(*uids));
	f->count = count;
	f->mode = mode;
	f->flags = flags;
	f->keywords = keywords ? xstrdup(keywords) : NULL;
	f->unchangedsince = unchangedsince;
	f->res = res;
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	f->loop = loop;
	f->done = done;
	f->arg = arg;
	store_writer_submit(s, &f->job);
}
