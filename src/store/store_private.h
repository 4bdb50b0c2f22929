/* Internals shared by the store's files. Nothing outside store/ includes this. */
#ifndef YUBIN_STORE_PRIVATE_H
#define YUBIN_STORE_PRIVATE_H

#include "store/store.h"
#include "core/buf.h"

#include <pthread.h>
#include <sqlite3.h>

struct store_job;

struct store {
	char *data_dir;
	int data_dir_fd;
	sqlite3 *db;		/* admin (CLI) connection; the writer has its own */
	pthread_mutex_t id_lock;
	uint64_t id_counter;

	/* writer thread (store_writer.c) */
	bool writer_running;
	bool writer_stopping;
	pthread_t writer_thread;
	pthread_mutex_t writer_lock;
	pthread_cond_t writer_cond;
	struct store_job *jobs_head, **jobs_tail;
	sqlite3 *writer_db;

	/* jobs waiting for their prepare on a sync thread (store_writer.c),
	 * under writer_lock; sync_cond wakes the sync threads */
	struct store_job *sync_head, **sync_tail;
	pthread_cond_t sync_cond;
	pthread_t sync_threads[8];
	unsigned sync_count;
	bool sync_stopping;

	/* committed messages whose text waits for the index
	 * (store_index_later); the writer thread's only */
	struct store_index_item *index_head, **index_tail;
	size_t index_count, index_bytes;
	bool text_gc_maybe;	/* text_gc may have rows (writer thread) */

	/* body files to remove, for the remover thread (store_writer.c),
	 * under writer_lock; remover_cond wakes it */
	bool remover_running;
	pthread_t remover_thread;
	pthread_cond_t remover_cond;
	char **removals;
	size_t removal_count, removal_cap;

	/* store_set_queue_hook() */
	void (*queue_hook)(void *);
	void *queue_hook_arg;
};

struct store_reader {
	struct store *store;
	sqlite3 *db;
	sqlite3_stmt *st_domain;
	sqlite3_stmt *st_alias;
	sqlite3_stmt *st_account;
	sqlite3_stmt *st_first_account;
	sqlite3_stmt *st_auth;
	sqlite3_stmt *st_sendas;
	sqlite3_stmt *st_mime;
	sqlite3_stmt *st_prefix;
};

/* A unit of work for the writer thread. prepare runs outside the shared
 * transaction (fsync of body files), on one of the store's sync threads
 * before the job reaches the writer (so many jobs' fsyncs overlap, and
 * with the writer's commit), or in the writer when they are not running;
 * apply runs inside the shared transaction, in its own savepoint, so one
 * failing job does not undo the others; done is posted to loop with the
 * result. */
struct store_job {
	struct store_job *next;
	int (*prepare)(struct store_job *job);
	bool prepared;		/* prepare ran already, giving prepare_result */
	int prepare_result;
	int (*apply)(struct store_job *job, sqlite3 *db);
	void (*finish)(struct store_job *job, int result);	/* frees the job */
	int result;
	/* Set by prepare: a folder under data_dir whose new entries must be
	 * synced before the commit (once per batch), and whether the folder
	 * itself is new (then its parent is synced too). */
	char sync_dir[32];
	bool sync_parent;
};

/* store_mime.c */
struct mime_message;
/* Parses the body file of a message (without its prefix): for rows stored
 * before a cached value existed. NULL with errno when it cannot be read. */
struct mime_message *store_msg_parse(struct store *s, const struct store_msg *msg);
/* Fills m from a parsed message. Returns 0, or -1 when a value outgrew
 * its limit (a hostile message: the row then keeps NULL, and FETCH parses
 * again and fails the same way). */
int store_mime_compute(const struct mime_message *msg, struct store_mime *m);

/* The text of a message for the full-text index (SQLite FTS5, table
 * message_text): the top-level header fields as "Name: value" lines,
 * RFC 2047 decoded, and the body text: every text part transfer-decoded,
 * in UTF-8, HTML without its tags, and the header of attached messages.
 * Each at most max bytes (STORE_TEXT_MAX for the index); complete says
 * nothing was cut (else SEARCH decodes the message again, whole: text
 * past the limit is still found). fd is the body file, readable.
 * The limit keeps the index's cost per message bounded: trigram-indexing
 * a 1 MB text took the writer thread about 60 ms, and deliveries of big
 * messages waited behind it; few messages hold more text than this. */
#define STORE_TEXT_MAX (256 * 1024)
/* The same text made for a SEARCH of a message the index holds only in
 * part (store_msg_text): whole, up to this, one message at a time. */
#define STORE_SEARCH_TEXT_MAX (64 * 1024 * 1024)
struct store_text {
	struct buf header, body;
	bool complete;
};
void store_text_extract(const struct mime_message *msg, int fd, size_t max,
			struct store_text *t);
void store_text_deinit(struct store_text *t);
/* messages.text_indexed of a message whose text waits for the index
 * (store_index_later), beside NULL (stored before the index existed), 0
 * (the index holds its first STORE_TEXT_MAX bytes) and 1 (whole). */
#define STORE_TEXT_PENDING 2
#define STORE_TEXT_PENDING_SQL "2"
/* Writer thread, after the commit of a new message in a mailbox: its text
 * (taken from t, which is left empty) joins the full-text index later, in
 * one transaction with others' (store_writer.c). Until then its row says
 * text_indexed 2, and SEARCH matches its decoded text instead, so answers
 * are the same either way; only the cost moves. A crash before that
 * leaves the row so, which is still correct. */
void store_index_later(struct store *s, int64_t message_id, const char *queue_id,
		       struct store_text *t);
struct store_index_item {
	struct store_index_item *next;
	int64_t message_id;
	char queue_id[17];
	struct store_text text;
};
/* The RFC 8970 preview of a parsed message (store.h, STORE_PREVIEW_CHARS),
 * a new string, "" when it has no text to show. fd is the body file. */
void store_preview_compute(const struct mime_message *msg, int fd, char **preview_r);
/* The preview of a text part's content, already converted to UTF-8: HTML
 * made text if html, white space collapsed, malformed UTF-8 made U+FFFD,
 * cut after STORE_PREVIEW_CHARS characters. A new string. */
char *store_preview_text(bool html, const char *utf8, size_t len);

/* store_sort.c */
/* The SORT/THREAD fields of a parsed message, and their row (message_sort)
 * for messages.id message_id. */
void store_sort_compute(const struct mime_message *msg, struct store_sort_fields *f);
int store_sort_insert(sqlite3 *db, int64_t message_id, const struct store_sort_fields *f);

/* store.c */
int store_db_open(struct store *s, sqlite3 **db_r, bool readonly, char **error_r);
/* Runs SQL with no result rows; on error sets *error_r. */
int store_exec(sqlite3 *db, const char *sql, char **error_r);
char *store_db_error(sqlite3 *db, const char *what);
/* Splits "local@domain" into a domain-lowercased pair (new strings). */
int store_split_address(const char *address, char **local_r, char **domain_r,
			char **error_r);
/* Path of a body file relative to data_dir, as stored in messages.body. */
char *store_body_path(const char *bucket, const char *queue_id);
/* A new unique id (time + counter), 16 hex digits. */
void store_new_id(struct store *s, char out[17]);
/* Body files to remove once the transaction that dropped their rows is
 * committed (a failed commit must leave every file its rows name). */
struct store_unlinks {
	char **paths;
	size_t count;
};
/* Inside a writer transaction, after mail or queue rows went: of the
 * messages mids, those no mail or queue row holds any more lose their
 * messages row, and their body files are noted in u. Returns 0 or -1. */
int store_release_messages(sqlite3 *db, const int64_t *mids, size_t n,
			   struct store_unlinks *u);
/* In a job's finish: when result is 0, has the noted files removed (by
 * the server's remover thread after the answer, else at once), and frees
 * the list either way. */
void store_unlinks_finish(struct store *s, struct store_unlinks *u, int result);

/* Removes body files no longer referenced by any mailbox entry or queue
 * row. Call inside or after a transaction that dropped references. */
int store_gc_bodies(struct store *s, sqlite3 *db, char **error_r);

/* Removes bodies left in tmp/ by transactions that never committed. Only
 * when no other process writes to the store (server start-up). */
void store_clean_tmp(struct store *s);

/* Marks a mailbox changed (after a commit); see store_mailbox_version(). */
void store_mailbox_touch(int64_t mailbox_id);

/* store_writer.c */
/* fsync of a folder under data_dir (new entries in it). Returns 0 or -1. */
int store_sync_dir(struct store *s, const char *dir);
void store_writer_submit(struct store *s, struct store_job *job);
/* Hands body files whose rows are committed away to the remover thread
 * (takes the strings). Returns false when it is not running. */
bool store_remove_later(struct store *s, char **paths, size_t count);

#define STORE_SCHEMA_VERSION 10

#endif
