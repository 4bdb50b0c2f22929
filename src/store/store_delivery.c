/* Delivering one received message: its body file, its rows in the
 * recipients' mailboxes and in the queue, all made durable together. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "mime/header.h"
#include "mime/mime.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* What we keep of the start of a message to read its header fields. */
#define DELIVERY_HEAD_MAX (64 * 1024)
/* Body bytes are gathered and written in chunks of this size. */
#define DELIVERY_WBUF 65536

struct local_rcpt {
	int64_t account_id;
	char *rcpt;
};

struct store_delivery {
	struct store_job job;	/* first: the writer sees only this */
	struct store *store;
	char queue_id[17];
	char bucket[16];
	char *tmp_path;		/* relative to data_dir */
	char *body_path;
	int fd;
	bool write_failed;
	uint64_t size;
	int64_t received;
	struct buf wbuf;
	struct buf head;
	struct mime_parser *mime;	/* parses as the body is written */
	struct store_mime mime_result;
	bool mime_ok;
	struct store_text text;	/* for the full-text index */
	int64_t message_id;	/* the messages row, once applied */
	struct store_sort_fields sort;	/* for IMAP SORT and THREAD */
	bool sort_ok;
	char *preview;		/* RFC 8970, or NULL */
	char *sender;
	struct local_rcpt *locals;
	size_t local_count;
	char *local_header;	/* Authentication-Results..., or NULL */
	bool junk;		/* locals: into \\Junk, not the INBOX */
	char **remotes;
	size_t remote_count;
	char *hdr_from, *hdr_subject, *hdr_date, *hdr_message_id;
	/* APPEND */
	int64_t append_mailbox;
	uint32_t append_flags;
	char *append_keywords;
	int64_t append_date;
	uint32_t *append_uidvalidity_r, *append_uid_r;
	int64_t *touched;	/* mailboxes written, to wake their readers */
	size_t touched_count;

	struct loop *loop;
	store_done_fn *done;
	void *done_arg;
	int result;
};

struct store_delivery *store_delivery_new(struct store *s, char **error_r)
{
	struct store_delivery *d = xcalloc(1, sizeof(*d));
	d->store = s;
	store_new_id(s, d->queue_id);
	d->received = time_now_ms() / 1000;
	time_t t = (time_t)d->received;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(d->bucket, sizeof(d->bucket), "%Y%m%d%H", &tm);
	d->tmp_path = xasprintf("tmp/%s", d->queue_id);
	d->fd = openat(s->data_dir_fd, d->tmp_path,
		       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (d->fd < 0) {
		*error_r = xasprintf("%s/%s: %s", s->data_dir, d->tmp_path, strerror(errno));
		free(d->tmp_path);
		free(d);
		return NULL;
	}
	buf_init(&d->wbuf, 0);
	buf_init(&d->head, DELIVERY_HEAD_MAX);
	d->mime = mime_parser_new(NULL);
	d->sender = xstrdup("");
	return d;
}

const char *store_delivery_queue_id(struct store_delivery *d)
{
	return d->queue_id;
}

static int flush_wbuf(struct store_delivery *d)
{
	if (d->wbuf.len == 0 || d->write_failed)
		return d->write_failed ? -1 : 0;
	if (write_full(d->fd, d->wbuf.data, d->wbuf.len) < 0) {
		log_error("event=body_write_failed queue_id=%s error=\"%s\"",
			  d->queue_id, strerror(errno));
		d->write_failed = true;
		return -1;
	}
	buf_reset(&d->wbuf);
	return 0;
}

int store_delivery_write(struct store_delivery *d, const void *data, size_t len)
{
	if (d->write_failed)
		return -1;
	if (d->head.len < DELIVERY_HEAD_MAX) {
		size_t room = DELIVERY_HEAD_MAX - d->head.len;
		(void)buf_append(&d->head, data, len < room ? len : room);
	}
	d->size += len;
	mime_parser_feed(d->mime, data, len);
	if (d->wbuf.len + len > DELIVERY_WBUF && flush_wbuf(d) < 0)
		return -1;
	if (len >= DELIVERY_WBUF) {
		if (write_full(d->fd, data, len) < 0) {
			d->write_failed = true;
			return -1;
		}
		return 0;
	}
	buf_append(&d->wbuf, data, len);
	return 0;
}

uint64_t store_delivery_size(struct store_delivery *d)
{
	return d->size;
}

const char *store_delivery_head(struct store_delivery *d, size_t *len_r)
{
	*len_r = d->head.len;
	return d->head.data ? d->head.data : "";
}

void store_delivery_set_sender(struct store_delivery *d, const char *sender)
{
	free(d->sender);
	d->sender = xstrdup(sender);
}

void store_delivery_add_local(struct store_delivery *d, int64_t account_id,
			      const char *rcpt)
{
	for (size_t i = 0; i < d->local_count; i++) {
		if (d->locals[i].account_id == account_id)
			return;
	}
	d->locals = xrealloc(d->locals, (d->local_count + 1) * sizeof(*d->locals));
	d->locals[d->local_count].account_id = account_id;
	d->locals[d->local_count].rcpt = xstrdup(rcpt);
	d->local_count++;
}

void store_delivery_set_local_header(struct store_delivery *d, const char *lines)
{
	free(d->local_header);
	d->local_header = xstrdup(lines);
}

void store_delivery_set_junk(struct store_delivery *d, bool junk)
{
	d->junk = junk;
}

/* Writer thread: the account's \Junk mailbox (RFC 6154), made when
 * missing (as IMAP CREATE makes one, with the special-use set). Returns
 * its id, or -1 on a database error. */
static int64_t junk_mailbox(sqlite3 *db, int64_t account_id)
{
	sqlite3_stmt *st = NULL;
	int64_t id = -1;
	if (sqlite3_prepare_v2(db, "SELECT id FROM mailboxes WHERE account_id = ?"
			       " AND special_use = '\\Junk' ORDER BY id LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW || rc != SQLITE_DONE)
		return id;
	/* A name not taken yet; UIDVALIDITY as store_manage.c chooses it:
	 * above every other of the account's, at least the time. */
	int64_t uv = -1;
	if (sqlite3_prepare_v2(db, "SELECT max(uidvalidity) FROM mailboxes WHERE account_id = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		uv = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (uv < 0)
		return -1;
	int64_t now = time_now_ms() / 1000;
	uv = (uv >= now ? uv + 1 : now) & 0xffffffff;
	for (int n = 0; n < 100 && id < 0; n++) {
		char name[32];
		if (n == 0)
			snprintf(name, sizeof(name), "Junk");
		else
			snprintf(name, sizeof(name), "Junk-%d", n);
		if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO mailboxes (account_id, name,"
				       " special_use, uidvalidity) VALUES (?, ?, '\\Junk', ?)",
				       -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, account_id);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, uv);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return -1;
		if (sqlite3_changes(db) == 1)
			id = sqlite3_last_insert_rowid(db);
	}
	return id;
}

void store_delivery_add_mailbox(struct store_delivery *d, int64_t mailbox_id,
				uint32_t flags, const char *keywords, int64_t internaldate,
				uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	d->append_mailbox = mailbox_id;
	d->append_flags = flags;
	free(d->append_keywords);
	d->append_keywords = keywords && *keywords ? xstrdup(keywords) : NULL;
	d->append_date = internaldate;
	d->append_uidvalidity_r = uidvalidity_r;
	d->append_uid_r = uid_r;
}

void store_delivery_add_remote(struct store_delivery *d, const char *rcpt)
{
	for (size_t i = 0; i < d->remote_count; i++) {
		if (str_ieq(d->remotes[i], rcpt))
			return;
	}
	d->remotes = xrealloc(d->remotes, (d->remote_count + 1) * sizeof(*d->remotes));
	d->remotes[d->remote_count++] = xstrdup(rcpt);
}

static void delivery_free(struct store_delivery *d)
{
	if (d->fd >= 0)
		close(d->fd);
	buf_deinit(&d->wbuf);
	buf_deinit(&d->head);
	mime_parser_free(&d->mime);
	store_mime_deinit(&d->mime_result);
	store_text_deinit(&d->text);
	store_sort_fields_deinit(&d->sort);
	free(d->preview);
	free(d->local_header);
	free(d->tmp_path);
	free(d->body_path);
	free(d->sender);
	for (size_t i = 0; i < d->local_count; i++)
		free(d->locals[i].rcpt);
	free(d->locals);
	for (size_t i = 0; i < d->remote_count; i++)
		free(d->remotes[i]);
	free(d->remotes);
	free(d->hdr_from);
	free(d->hdr_subject);
	free(d->hdr_date);
	free(d->hdr_message_id);
	free(d->touched);
	free(d->append_keywords);
	free(d);
}

void store_delivery_abort(struct store_delivery **dp)
{
	struct store_delivery *d = *dp;
	if (d == NULL)
		return;
	unlinkat(d->store->data_dir_fd, d->tmp_path, 0);
	delivery_free(d);
	*dp = NULL;
}

/* Writer thread, outside the transaction: the body reaches the disk and its
 * final name before any row points at it. */
static int delivery_prepare(struct store_job *job)
{
	struct store_delivery *d = (struct store_delivery *)job;
	struct store *s = d->store;
	if (fdatasync(d->fd) < 0) {
		log_error("event=body_sync_failed queue_id=%s error=\"%s\"", d->queue_id, strerror(errno));
		return -1;
	}
	close(d->fd);
	d->fd = -1;
	snprintf(job->sync_dir, sizeof(job->sync_dir), "msg/%s", d->bucket);
	if (mkdirat(s->data_dir_fd, job->sync_dir, 0750) == 0) {
		job->sync_parent = true;
	} else if (errno != EEXIST) {
		log_error("event=mkdir_failed dir=%s error=\"%s\"", job->sync_dir, strerror(errno));
		return -1;
	}
	d->body_path = store_body_path(d->bucket, d->queue_id);
	if (renameat(s->data_dir_fd, d->tmp_path, s->data_dir_fd, d->body_path) < 0) {
		log_error("event=body_rename_failed queue_id=%s error=\"%s\"", d->queue_id, strerror(errno));
		free(d->body_path);
		d->body_path = NULL;
		return -1;
	}
	return 0;
}

static int bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* The THREADID (RFC 8474 5.2) of a new message: that of the first message
 * it references (References, else In-Reply-To, root first) that is
 * stored, else that of a stored message with its own Message-ID (the copy
 * a client APPENDs to Sent and the one delivered share it), else its own,
 * "T" and its queue id. Looked up among all stored messages: a Message-ID
 * names one message wherever it is, and a THREADID shows only who shares
 * it among the messages one can read. Chosen once, never changed (5.2: it
 * must not change once reported): a reply stored before what it answers
 * starts a thread of its own. At most THREAD_LOOKUPS ids are looked up.
 * Returns a new string, or NULL on a database error. */
#define THREAD_LOOKUPS 32
static char *thread_of(sqlite3 *db, const struct store_delivery *d)
{
	char *found = NULL;
	sqlite3_stmt *st = NULL;
	if (d->sort_ok && (d->sort.refs[0] != '\0' || d->sort.message_id != NULL)) {
		if (sqlite3_prepare_v2(db,
				"SELECT coalesce(m.threadid, 'T' || m.queue_id) FROM message_sort s"
				" JOIN messages m ON m.id = s.id WHERE s.message_id = ? LIMIT 1",
				-1, &st, NULL) != SQLITE_OK)
			return NULL;
		char *refs = xstrdup(d->sort.refs);
		char *save = NULL;
		int n = 0;
		for (char *id = strtok_r(refs, " ", &save); id && !found && n < THREAD_LOOKUPS;
		     id = strtok_r(NULL, " ", &save), n++) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			int rc = sqlite3_step(st);
			if (rc == SQLITE_ROW)
				found = xstrdup((const char *)sqlite3_column_text(st, 0));
			else if (rc != SQLITE_DONE)
				n = -1;
			if (n < 0)
				break;
		}
		free(refs);
		if (n >= 0 && !found && d->sort.message_id != NULL) {
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, d->sort.message_id, -1, SQLITE_STATIC);
			int rc = sqlite3_step(st);
			if (rc == SQLITE_ROW)
				found = xstrdup((const char *)sqlite3_column_text(st, 0));
			else if (rc != SQLITE_DONE)
				n = -1;
		}
		sqlite3_finalize(st);
		if (n < 0)
			return NULL;
	}
	return found ? found : xasprintf("T%s", d->queue_id);
}

/* Writer thread, inside the shared transaction. */
static int delivery_apply(struct store_job *job, sqlite3 *db)
{
	struct store_delivery *d = (struct store_delivery *)job;
	sqlite3_stmt *msg = NULL, *mbox = NULL, *mail = NULL, *queue = NULL;
	int r = -1;
	char *threadid = NULL;
	if ((d->local_count > 0 || d->append_mailbox > 0) && (threadid = thread_of(db, d)) == NULL)
		goto out;

	if (sqlite3_prepare_v2(db,
			"INSERT INTO messages (queue_id, body, size, received, sender,"
			" hdr_from, hdr_subject, hdr_date, hdr_message_id,"
			" envelope, body_simple, bodystructure, parts, text_indexed,"
			" threadid, preview)"
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &msg, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			"UPDATE mailboxes SET uidnext = uidnext + 1,"
			" highestmodseq = highestmodseq + 1"
			" WHERE account_id = ? AND (CASE WHEN ? > 0 THEN id = ? ELSE name = 'INBOX' END)"
			" RETURNING id, uidnext - 1, highestmodseq", -1, &mbox, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			"INSERT INTO mail (mailbox_id, uid, message_id, prefix, modseq,"
			" internaldate, savedate) VALUES (?, ?, ?, ?, ?, ?, ?)",
			-1, &mail, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			"INSERT INTO queue (message_id, recipient, created, next_attempt)"
			" VALUES (?, ?, ?, ?)", -1, &queue, NULL) != SQLITE_OK)
		goto out;

	sqlite3_bind_text(msg, 1, d->queue_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(msg, 2, d->body_path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(msg, 3, (sqlite3_int64)d->size);
	sqlite3_bind_int64(msg, 4, d->received);
	sqlite3_bind_text(msg, 5, d->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(msg, 6, d->hdr_from ? d->hdr_from : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(msg, 7, d->hdr_subject ? d->hdr_subject : "", -1, SQLITE_STATIC);
	bind_text_or_null(msg, 8, d->hdr_date);
	bind_text_or_null(msg, 9, d->hdr_message_id);
	if (d->mime_ok) {
		const struct store_mime *m = &d->mime_result;
		sqlite3_bind_blob(msg, 10, m->envelope, (int)m->envelope_len, SQLITE_STATIC);
		sqlite3_bind_blob(msg, 11, m->body, (int)m->body_len, SQLITE_STATIC);
		sqlite3_bind_blob(msg, 12, m->bodystructure, (int)m->bodystructure_len, SQLITE_STATIC);
		sqlite3_bind_blob(msg, 13, m->parts, (int)m->parts_len, SQLITE_STATIC);
	}
	/* Not indexed yet: the text goes into the index after the commit
	 * (store_index_later); SEARCH looks at it meanwhile. */
	if (d->local_count > 0 || d->append_mailbox > 0)
		sqlite3_bind_int(msg, 14, STORE_TEXT_PENDING);
	else
		sqlite3_bind_null(msg, 14);
	bind_text_or_null(msg, 15, threadid);
	bind_text_or_null(msg, 16, d->preview);
	if (sqlite3_step(msg) != SQLITE_DONE)
		goto out;
	int64_t message_id = sqlite3_last_insert_rowid(db);
	d->message_id = message_id;
	if (d->sort_ok && store_sort_insert(db, message_id, &d->sort) < 0)
		goto out;

	for (size_t i = 0; i < d->local_count; i++) {
		sqlite3_reset(mbox);
		sqlite3_bind_int64(mbox, 1, d->locals[i].account_id);
		/* DMARC quarantine: the account's \\Junk instead of the INBOX */
		int64_t junk = d->junk ? junk_mailbox(db, d->locals[i].account_id) : 0;
		if (junk < 0)
			goto out;
		sqlite3_bind_int64(mbox, 2, junk);
		sqlite3_bind_int64(mbox, 3, junk);
		int rc = sqlite3_step(mbox);
		if (rc == SQLITE_DONE) {
			/* The account was deleted after RCPT was accepted. */
			log_warn("event=delivery_skipped queue_id=%s rcpt=%s reason=\"account gone\"",
				 d->queue_id, d->locals[i].rcpt);
			continue;
		}
		if (rc != SQLITE_ROW)
			goto out;
		int64_t mailbox_id = sqlite3_column_int64(mbox, 0);
		d->touched = xrealloc(d->touched, (d->touched_count + 1) * sizeof(*d->touched));
		d->touched[d->touched_count++] = mailbox_id;
		int64_t uid = sqlite3_column_int64(mbox, 1);
		int64_t modseq = sqlite3_column_int64(mbox, 2);
		while ((rc = sqlite3_step(mbox)) == SQLITE_ROW)
			;
		if (rc != SQLITE_DONE)
			goto out;
		/* RFC 5321 4.4: Return-Path at final delivery; Delivered-To as
		 * Postfix and Dovecot write it, for loop detection and filters. */
		char *prefix = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n%s",
					 d->sender, d->locals[i].rcpt,
					 d->local_header ? d->local_header : "");
		sqlite3_reset(mail);
		sqlite3_bind_int64(mail, 1, mailbox_id);
		sqlite3_bind_int64(mail, 2, uid);
		sqlite3_bind_int64(mail, 3, message_id);
		sqlite3_bind_blob(mail, 4, prefix, (int)strlen(prefix), SQLITE_TRANSIENT);
		sqlite3_bind_int64(mail, 5, modseq);
		sqlite3_bind_int64(mail, 6, d->received);
		sqlite3_bind_int64(mail, 7, d->received);
		rc = sqlite3_step(mail);
		free(prefix);
		if (rc != SQLITE_DONE)
			goto out;
		log_info("event=delivered queue_id=%s rcpt=%s mailbox=%s uid=%lld size=%llu",
			 d->queue_id, d->locals[i].rcpt, junk > 0 ? "Junk" : "INBOX", (long long)uid,
			 (unsigned long long)d->size);
	}
	if (d->append_mailbox > 0) {
		sqlite3_stmt *up = NULL, *ins = NULL;
		int ok = sqlite3_prepare_v2(db,
				"UPDATE mailboxes SET uidnext = uidnext + 1,"
				" highestmodseq = highestmodseq + 1 WHERE id = ?"
				" RETURNING uidnext - 1, highestmodseq, uidvalidity", -1, &up, NULL) == SQLITE_OK &&
			 sqlite3_prepare_v2(db,
				"INSERT INTO mail (mailbox_id, uid, message_id, flags, keywords,"
				" modseq, internaldate, savedate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				-1, &ins, NULL) == SQLITE_OK;
		if (ok) {
			sqlite3_bind_int64(up, 1, d->append_mailbox);
			ok = sqlite3_step(up) == SQLITE_ROW;
		}
		if (ok) {
			int64_t uid = sqlite3_column_int64(up, 0);
			*d->append_uid_r = (uint32_t)uid;
			*d->append_uidvalidity_r = (uint32_t)sqlite3_column_int64(up, 2);
			sqlite3_bind_int64(ins, 1, d->append_mailbox);
			sqlite3_bind_int64(ins, 2, uid);
			sqlite3_bind_int64(ins, 3, message_id);
			sqlite3_bind_int64(ins, 4, d->append_flags);
			bind_text_or_null(ins, 5, d->append_keywords);
			sqlite3_bind_int64(ins, 6, sqlite3_column_int64(up, 1));
			sqlite3_bind_int64(ins, 7, d->append_date);
			sqlite3_bind_int64(ins, 8, d->received);
			ok = sqlite3_step(ins) == SQLITE_DONE;
		}
		sqlite3_finalize(up);
		sqlite3_finalize(ins);
		if (!ok)
			goto out;
		d->touched = xrealloc(d->touched, (d->touched_count + 1) * sizeof(*d->touched));
		d->touched[d->touched_count++] = d->append_mailbox;
		log_info("event=appended queue_id=%s mailbox_id=%lld uid=%u size=%llu", d->queue_id,
			 (long long)d->append_mailbox, *d->append_uid_r, (unsigned long long)d->size);
	}
	for (size_t i = 0; i < d->remote_count; i++) {
		sqlite3_reset(queue);
		sqlite3_bind_int64(queue, 1, message_id);
		sqlite3_bind_text(queue, 2, d->remotes[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(queue, 3, d->received);
		sqlite3_bind_int64(queue, 4, d->received);
		if (sqlite3_step(queue) != SQLITE_DONE)
			goto out;
		log_info("event=queued queue_id=%s rcpt=%s", d->queue_id, d->remotes[i]);
	}
	r = 0;
out:
	if (r < 0)
		log_error("event=delivery_failed queue_id=%s error=\"%s\"", d->queue_id,
			  sqlite3_errmsg(db));
	sqlite3_finalize(msg);
	sqlite3_finalize(mbox);
	sqlite3_finalize(mail);
	sqlite3_finalize(queue);
	free(threadid);
	return r;
}

static void delivery_done(void *arg)
{
	struct store_delivery *d = arg;
	d->done(d->done_arg, d->result);
	delivery_free(d);
}

/* Writer thread, after the commit: a message in a mailbox has its text
 * indexed later, with others (store_index_later). */
static void delivery_index_later(struct store_delivery *d)
{
	if (d->message_id > 0 && (d->local_count > 0 || d->append_mailbox > 0))
		store_index_later(d->store, d->message_id, d->queue_id, &d->text);
}

/* Writer thread: the batch is committed (or not). */
static void delivery_finish(struct store_job *job, int result)
{
	struct store_delivery *d = (struct store_delivery *)job;
	if (result == 0)
		delivery_index_later(d);
	for (size_t i = 0; result == 0 && i < d->touched_count; i++)
		store_mailbox_touch(d->touched[i]);
	if (result == 0 && d->remote_count > 0 && d->store->queue_hook != NULL)
		d->store->queue_hook(d->store->queue_hook_arg);
	if (result < 0) {
		/* Nothing points at the file: remove it wherever it is. */
		unlinkat(d->store->data_dir_fd, d->body_path ? d->body_path : d->tmp_path, 0);
	}
	d->result = result;
	loop_post(d->loop, delivery_done, d);
}

/* The work before the writer: the last body bytes to the file, the header
 * fields, the MIME results and the text for the index. Returns 0 or -1 (the
 * file could not be written; it is removed). */
static int delivery_ready(struct store_delivery *d)
{
	d->job.prepare = delivery_prepare;
	d->job.apply = delivery_apply;
	d->job.finish = delivery_finish;
	size_t hlen = header_block_len(d->head.data ? d->head.data : "", d->head.len);
	if (d->head.len > 0) {
		d->hdr_from = header_get(d->head.data, hlen, "From");
		d->hdr_subject = header_get(d->head.data, hlen, "Subject");
		d->hdr_date = header_get(d->head.data, hlen, "Date");
		d->hdr_message_id = header_get(d->head.data, hlen, "Message-ID");
	}
	buf_deinit(&d->head);
	if (flush_wbuf(d) < 0) {
		unlinkat(d->store->data_dir_fd, d->tmp_path, 0);
		return -1;
	}
	buf_deinit(&d->wbuf);
	/* The parse went along with the writes; what is left is small. The
	 * text for the index is read back from the file just written (from
	 * the page cache). */
	struct mime_message *mm;
	mime_parser_finish(&d->mime, &mm);
	d->mime_ok = store_mime_compute(mm, &d->mime_result) == 0;
	if (!d->mime_ok)
		log_warn("event=mime_too_large queue_id=%s", d->queue_id);
	if (d->local_count > 0 || d->append_mailbox > 0) {
		store_text_extract(mm, d->fd, STORE_TEXT_MAX, &d->text);
		store_sort_compute(mm, &d->sort);
		d->sort_ok = true;
		store_preview_compute(mm, d->fd, &d->preview);
	}
	mime_message_free(&mm);
	return 0;
}

void store_delivery_commit(struct store_delivery *d, struct loop *loop,
			   store_done_fn *done, void *arg)
{
	d->loop = loop;
	d->done = done;
	d->done_arg = arg;
	if (delivery_ready(d) < 0) {
		d->result = -1;
		loop_post(loop, delivery_done, d);
		return;
	}
	store_writer_submit(d->store, &d->job);
}

/* ---- several deliveries in one transaction (IMAP MULTIAPPEND) ---- */

struct delivery_group {
	struct store_job job;	/* first: the writer sees only this */
	struct store *store;
	struct store_delivery **ds;
	size_t count;
	struct loop *loop;
	store_done_fn *done;
	void *arg;
	int result;
};

static int group_prepare(struct store_job *job)
{
	struct delivery_group *g = (struct delivery_group *)job;
	for (size_t i = 0; i < g->count; i++) {
		struct store_delivery *d = g->ds[i];
		if (delivery_prepare(&d->job) < 0)
			return -1;
		/* The writer syncs one folder per job: the group's first; a
		 * body in another (the hour changed meanwhile) is synced here. */
		if (i == 0) {
			memcpy(job->sync_dir, d->job.sync_dir, sizeof(job->sync_dir));
			job->sync_parent = d->job.sync_parent;
		} else if (strcmp(d->job.sync_dir, job->sync_dir) != 0 &&
			   (store_sync_dir(g->store, d->job.sync_dir) < 0 ||
			    (d->job.sync_parent && store_sync_dir(g->store, "msg") < 0))) {
			return -1;
		}
	}
	return 0;
}

static int group_apply(struct store_job *job, sqlite3 *db)
{
	struct delivery_group *g = (struct delivery_group *)job;
	for (size_t i = 0; i < g->count; i++) {
		if (delivery_apply(&g->ds[i]->job, db) < 0)
			return -1;
	}
	return 0;
}

static void group_done(void *arg)
{
	struct delivery_group *g = arg;
	g->done(g->arg, g->result);
	for (size_t i = 0; i < g->count; i++)
		delivery_free(g->ds[i]);
	free(g->ds);
	free(g);
}

static void group_finish(struct store_job *job, int result)
{
	struct delivery_group *g = (struct delivery_group *)job;
	for (size_t i = 0; i < g->count; i++) {
		struct store_delivery *d = g->ds[i];
		if (result == 0)
			delivery_index_later(d);
		for (size_t k = 0; result == 0 && k < d->touched_count; k++)
			store_mailbox_touch(d->touched[k]);
		if (result < 0)
			unlinkat(g->store->data_dir_fd, d->body_path ? d->body_path : d->tmp_path, 0);
	}
	g->result = result;
	loop_post(g->loop, group_done, g);
}

void store_delivery_commit_group(struct store_delivery **ds, size_t count, struct loop *loop,
				 store_done_fn *done, void *arg)
{
	struct delivery_group *g = xcalloc(1, sizeof(*g));
	g->store = ds[0]->store;
	g->ds = xmalloc(count * sizeof(*g->ds));
	memcpy(g->ds, ds, count * sizeof(*ds));
	g->count = count;
	g->loop = loop;
	g->done = done;
	g->arg = arg;
	g->job.prepare = group_prepare;
	g->job.apply = group_apply;
	g->job.finish = group_finish;
	for (size_t i = 0; i < count; i++) {
		if (delivery_ready(ds[i]) < 0) {
			for (size_t k = 0; k < count; k++) {
				if (k != i)
					unlinkat(g->store->data_dir_fd, ds[k]->tmp_path, 0);
			}
			g->result = -1;
			loop_post(loop, group_done, g);
			return;
		}
	}
	store_writer_submit(g->store, &g->job);
}

int store_body_open(struct store *s, const char *body)
{
	return openat(s->data_dir_fd, body, O_RDONLY | O_CLOEXEC);
}

void store_set_queue_hook(struct store *s, void (*fn)(void *), void *arg)
{
	s->queue_hook_arg = arg;
	s->queue_hook = fn;
}
