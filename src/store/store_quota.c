/* Quotas (RFC 9208): a STORAGE and a MESSAGE limit per account, and the
 * account's usage. The usage lives on the accounts row (used_storage,
 * used_messages) and SQLite triggers on `mail` keep it, in the same
 * transaction as every insert and delete of a mailbox entry, whichever
 * code path makes it (delivery, APPEND, COPY/MOVE, EXPUNGE, POP3, mailbox
 * delete): reading it is one primary-key lookup. */
#include "store/store_private.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

#define QUOTA_SELECT "SELECT quota_storage, quota_messages, used_storage, used_messages" \
	" FROM accounts"

static void read_row(sqlite3_stmt *st, struct store_quota *q)
{
	q->storage_limit = (uint64_t)sqlite3_column_int64(st, 0);
	q->message_limit = (uint64_t)sqlite3_column_int64(st, 1);
	int64_t used = sqlite3_column_int64(st, 2), n = sqlite3_column_int64(st, 3);
	q->storage_used = used > 0 ? (uint64_t)used : 0;
	q->messages_used = n > 0 ? (uint64_t)n : 0;
}

int store_quota_get(struct store_reader *r, int64_t account_id, struct store_quota *q_r)
{
	sqlite3_stmt *st = NULL;
	memset(q_r, 0, sizeof(*q_r));
	if (sqlite3_prepare_v2(r->db, QUOTA_SELECT " WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st), result = -1;
	if (rc == SQLITE_ROW) {
		read_row(st, q_r);
		result = 1;
	} else if (rc == SQLITE_DONE) {
		result = 0;
	}
	sqlite3_finalize(st);
	return result;
}

bool store_quota_exceeded(const struct store_quota *q, uint64_t add_bytes,
			  uint64_t add_messages)
{
	if (q->storage_limit && q->storage_used + add_bytes > q->storage_limit)
		return true;
	if (q->message_limit && q->messages_used + add_messages > q->message_limit)
		return true;
	return false;
}

bool store_quota_full(const struct store_quota *q)
{
	return (q->storage_limit && q->storage_used >= q->storage_limit) ||
	       (q->message_limit && q->messages_used >= q->message_limit);
}

/* ---- admin (CLI) ---- */

/* Finds the account of address: 1, 0 (none), -1 (*error_r set). */
static int find(struct store *s, const char *address, int64_t *id_r, char **error_r)
{
	char *local = NULL, *domain = NULL;
	if (store_split_address(address, &local, &domain, error_r) < 0)
		return -1;
	str_lower(local);
	sqlite3_stmt *st = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(s->db, "SELECT a.id FROM accounts a JOIN domains d"
			       " ON d.id = a.domain_id WHERE d.name = ? AND a.localpart = ?",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s->db, "database");
	} else {
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*id_r = sqlite3_column_int64(st, 0);
			r = 1;
		} else if (rc == SQLITE_DONE) {
			*error_r = xasprintf("no such user: %s@%s", local, domain);
			r = 0;
		} else {
			*error_r = store_db_error(s->db, "database");
		}
	}
	sqlite3_finalize(st);
	free(local);
	free(domain);
	return r;
}

int store_user_quota_set(struct store *s, const char *address, uint64_t storage,
			 uint64_t messages, char **error_r)
{
	if (store_exec(s->db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	int64_t id;
	int r = find(s, address, &id, error_r) > 0 ? 0 : -1;
	if (r == 0) {
		sqlite3_stmt *st = NULL;
		r = -1;
		if (sqlite3_prepare_v2(s->db, "UPDATE accounts SET quota_storage = ?,"
				       " quota_messages = ? WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)storage);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)messages);
			sqlite3_bind_int64(st, 3, id);
			if (sqlite3_step(st) == SQLITE_DONE)
				r = 0;
		}
		if (r < 0)
			*error_r = store_db_error(s->db, "database");
		sqlite3_finalize(st);
	}
	if (r == 0 && store_exec(s->db, "COMMIT", error_r) == 0)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int store_user_quota_show(struct store *s, const char *address, struct store_quota *q_r,
			  char **error_r)
{
	int64_t id;
	memset(q_r, 0, sizeof(*q_r));
	if (find(s, address, &id, error_r) <= 0)
		return -1;
	sqlite3_stmt *st = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(s->db, QUOTA_SELECT " WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			read_row(st, q_r);
			r = 0;
		}
	}
	if (r < 0)
		*error_r = store_db_error(s->db, "database");
	sqlite3_finalize(st);
	return r;
}
