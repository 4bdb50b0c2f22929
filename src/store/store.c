/* Opening the store, its schema and migrations, per-thread readers and
 * recipient resolution. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Each entry moves the schema from version i to i + 1, in one transaction.
 * Never edit a released step: add a new one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE accounts ("
	"  id INTEGER PRIMARY KEY,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id),"
	"  localpart TEXT NOT NULL,"
	"  password TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (domain_id, localpart));"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id),"
	"  localpart TEXT NOT NULL,"	/* '' is the catch-all */
	"  target TEXT NOT NULL,"
	"  UNIQUE (domain_id, localpart, target));"
	"CREATE TABLE mailboxes ("
	"  id INTEGER PRIMARY KEY,"
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL,"
	"  special_use TEXT,"
	"  subscribed INTEGER NOT NULL DEFAULT 1,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL DEFAULT 1,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,"
	"  UNIQUE (account_id, name));"
	/* One row per body file; shared by every mailbox entry and queue row
	 * that holds the message, so several recipients cost one file. */
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  queue_id TEXT NOT NULL UNIQUE,"
	"  body TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  received INTEGER NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  hdr_from TEXT NOT NULL DEFAULT '',"
	"  hdr_subject TEXT NOT NULL DEFAULT '',"
	"  hdr_date TEXT,"
	"  hdr_message_id TEXT,"
	"  envelope TEXT,"
	"  bodystructure TEXT);"
	/* A message in a mailbox. prefix holds the per-recipient header lines
	 * (Return-Path, Delivered-To) served before the shared body file. */
	"CREATE TABLE mail ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id),"
	"  prefix BLOB NOT NULL DEFAULT '',"
	"  flags INTEGER NOT NULL DEFAULT 0,"
	"  keywords TEXT,"
	"  modseq INTEGER NOT NULL,"
	"  internaldate INTEGER NOT NULL,"
	"  savedate INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX mail_message ON mail(message_id);"
	"CREATE INDEX mail_modseq ON mail(mailbox_id, modseq);"
	"CREATE TABLE expunged ("
	"  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE TABLE queue ("
	"  id INTEGER PRIMARY KEY,"
	"  message_id INTEGER NOT NULL REFERENCES messages(id),"
	"  recipient TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  next_attempt INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT);"
	"CREATE INDEX queue_next ON queue(next_attempt);"
	"CREATE INDEX queue_message ON queue(message_id);",
	/* 1 -> 2: SCRAM-SHA-256 keys beside the password hash (RFC 7677),
	 * and the extra addresses a user may send as. */
	"ALTER TABLE accounts ADD COLUMN scram TEXT;"
	"CREATE TABLE sendas ("
	"  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
	"  address TEXT NOT NULL,"
	"  PRIMARY KEY (account_id, address)) WITHOUT ROWID;",
	/* 2 -> 3: what the MIME parser computes at delivery, for IMAP FETCH
	 * (envelope and bodystructure were reserved in version 1): BODY
	 * without extension data, and the byte ranges of the parts
	 * (mime_parts_serialize). Rows from before have NULL and are parsed
	 * when fetched. */
	("ALTER TABLE messages ADD COLUMN body_simple BLOB;"
	 "ALTER TABLE messages ADD COLUMN parts BLOB;"),
	/* 3 -> 4: full-text index for IMAP SEARCH TEXT/BODY (RFC 9051
	 * 6.4.4: case-insensitive substring match). The trigram tokenizer
	 * finds any substring of three characters or more; shorter needles
	 * scan the stored text with LIKE. rowid is messages.id; the trigger
	 * keeps the index to the messages that exist. text_indexed: NULL for
	 * rows from before (searched by reading the message), 0 when the
	 * text was cut at STORE_TEXT_MAX (searched both ways), 1 when whole. */
	"CREATE VIRTUAL TABLE message_text USING fts5(header, body, tokenize = 'trigram');"
	"CREATE TRIGGER message_text_gc AFTER DELETE ON messages BEGIN"
	"  DELETE FROM message_text WHERE rowid = old.id;"
	" END;"
	"ALTER TABLE messages ADD COLUMN text_indexed INTEGER;",
	/* 4 -> 5: `yubin queue bounce` marks rows for the server to bounce
	 * (the CLI only writes the database; the server makes the DSN). */
	"ALTER TABLE queue ADD COLUMN bounce_reason TEXT;",
	/* 5 -> 6: the delay notice ([queue] delay_notice) is sent once. */
	"ALTER TABLE queue ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;",
	/* 6 -> 7: quotas (RFC 9208) and the usage they are checked against,
	 * kept by triggers in the transaction of every insert or delete of a
	 * mailbox entry (a mailbox deleted with its account needs no update):
	 * a message counts its prefix and its body file, once per mailbox
	 * entry, as clients see it. */
	"ALTER TABLE accounts ADD COLUMN quota_storage INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN used_storage INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE accounts ADD COLUMN used_messages INTEGER NOT NULL DEFAULT 0;"
	"UPDATE accounts SET"
	"  used_storage = (SELECT COALESCE(SUM(length(CAST(l.prefix AS BLOB)) + m.size), 0)"
	"    FROM mail l JOIN mailboxes b ON b.id = l.mailbox_id"
	"    JOIN messages m ON m.id = l.message_id WHERE b.account_id = accounts.id),"
	"  used_messages = (SELECT COUNT(*) FROM mail l JOIN mailboxes b ON b.id = l.mailbox_id"
	"    WHERE b.account_id = accounts.id);"
	"CREATE TRIGGER mail_usage_add AFTER INSERT ON mail BEGIN"
	"  UPDATE accounts SET used_storage = used_storage + length(CAST(new.prefix AS BLOB))"
	"    + (SELECT size FROM messages WHERE id = new.message_id),"
	"    used_messages = used_messages + 1"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = new.mailbox_id);"
	" END;"
	"CREATE TRIGGER mail_usage_del AFTER DELETE ON mail BEGIN"
	"  UPDATE accounts SET used_storage = used_storage - length(CAST(old.prefix AS BLOB))"
	"    - (SELECT size FROM messages WHERE id = old.message_id),"
	"    used_messages = used_messages - 1"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = old.mailbox_id);"
	" END;"
	"CREATE TRIGGER mail_usage_move AFTER UPDATE OF mailbox_id, prefix, message_id ON mail BEGIN"
	"  UPDATE accounts SET used_storage = used_storage - length(CAST(old.prefix AS BLOB))"
	"    - (SELECT size FROM messages WHERE id = old.message_id),"
	"    used_messages = used_messages - 1"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = old.mailbox_id);"
	"  UPDATE accounts SET used_storage = used_storage + length(CAST(new.prefix AS BLOB))"
	"    + (SELECT size FROM messages WHERE id = new.message_id),"
	"    used_messages = used_messages + 1"
	"  WHERE id = (SELECT account_id FROM mailboxes WHERE id = new.mailbox_id);"
	" END;",
	/* 7 -> 8: what IMAP SORT and THREAD use (RFC 5256, RFC 5957), taken
	 * from the parse at delivery (store_sort.c): the base subject, a
	 * reply/forward mark, the sent date in UTC (NULL: the internal date
	 * stands in), the first addresses, the normalised Message-ID and the
	 * references. Messages from before have no row and are parsed when
	 * sorted. */
	"CREATE TABLE message_sort ("
	"  id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,"
	"  base_subject TEXT NOT NULL,"
	"  reply INTEGER NOT NULL,"
	"  sent_date INTEGER,"
	"  sort_from TEXT NOT NULL,"
	"  sort_to TEXT NOT NULL,"
	"  sort_cc TEXT NOT NULL,"
	"  display_from TEXT NOT NULL,"
	"  display_to TEXT NOT NULL,"
	"  message_id TEXT,"
	"  refs TEXT NOT NULL);",
	/* 8 -> 9: IMAP OBJECTID (RFC 8474) and PREVIEW (RFC 8970).
	 * mailboxes.objectid: the MAILBOXID, 96 random bits made when the
	 * row is (a trigger, whatever code inserts it), so a mailbox deleted
	 * and made again under its name gets a new one while a rename keeps
	 * it; rowids may be reused, these are not. messages.threadid: the
	 * THREADID chosen at delivery from a referenced message already
	 * stored (store_delivery.c); NULL for rows from before, which stand
	 * alone ("T" and their queue id, as the EMAILID is "M" and it).
	 * message_sort_msgid finds the referenced message. messages.preview:
	 * the RFC 8970 preview made at delivery; NULL for rows from before,
	 * made when first fetched. */
	"ALTER TABLE mailboxes ADD COLUMN objectid TEXT;"
	"UPDATE mailboxes SET objectid = 'F' || lower(hex(randomblob(12)));"
	"CREATE TRIGGER mailbox_objectid AFTER INSERT ON mailboxes WHEN new.objectid IS NULL BEGIN"
	"  UPDATE mailboxes SET objectid = 'F' || lower(hex(randomblob(12))) WHERE id = new.id;"
	" END;"
	"ALTER TABLE messages ADD COLUMN threadid TEXT;"
	"ALTER TABLE messages ADD COLUMN preview TEXT;"
	"CREATE INDEX message_sort_msgid ON message_sort(message_id);",
	/* 9 -> 10: an expunged message's text leaves the full-text index
	 * later, with others' (store_writer.c text_gc_run): an FTS5 delete
	 * costs about what indexing the text did, and a POP3 QUIT or an
	 * EXPUNGE of 1,000 messages waited seconds for it. text_gc holds the
	 * rowids still to delete; SEARCH ignores index rows named there (a
	 * messages id may be reused meanwhile). messages.text_indexed gains
	 * 2: stored, its text not in the index yet (store_index_later). */
	"DROP TRIGGER message_text_gc;"
	"CREATE TABLE text_gc (id INTEGER PRIMARY KEY);"
	"CREATE TRIGGER message_text_gc AFTER DELETE ON messages BEGIN"
	"  INSERT OR IGNORE INTO text_gc (id) VALUES (old.id);"
	" END;",
};

_Static_assert(ARRAY_SIZE(migrations) == STORE_SCHEMA_VERSION,
	       "STORE_SCHEMA_VERSION is the number of migrations");

char *store_db_error(sqlite3 *db, const char *what)
{
	return xasprintf("%s: %s", what, sqlite3_errmsg(db));
}

int store_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*error_r = xasprintf("database: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_db_open(struct store *s, sqlite3 **db_r, bool readonly, char **error_r)
{
	char *path = xasprintf("%s/yubin.db", s->data_dir);
	sqlite3 *db = NULL;
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
		    SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		*error_r = xasprintf("%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		free(path);
		return -1;
	}
	free(path);
	sqlite3_busy_timeout(db, 10000);
	/* WAL: readers never block the writer. synchronous=FULL: a commit is on
	 * stable storage when it returns, which is what our 250 promises. */
	const char *pragmas = readonly ?
		"PRAGMA foreign_keys = ON;" :
		"PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
		"PRAGMA foreign_keys = ON;";
	if (store_exec(db, pragmas, error_r) < 0) {
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

static int migrate(struct store *s, char **error_r)
{
	sqlite3_stmt *st;
	int version = 0;
	if (store_exec(s->db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > (int)ARRAY_SIZE(migrations)) {
		*error_r = xasprintf("database schema version %d is newer than this "
				     "yubin (%d): upgrade yubin", version,
				     (int)ARRAY_SIZE(migrations));
		goto fail;
	}
	for (; version < (int)ARRAY_SIZE(migrations); version++) {
		if (store_exec(s->db, migrations[version], error_r) < 0)
			goto fail;
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if (store_exec(s->db, sql, error_r) < 0)
			goto fail;
		log_info("event=schema_migrated version=%d", version + 1);
	}
	return store_exec(s->db, "COMMIT", error_r);
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int make_dir(const char *path, char **error_r)
{
	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static bool is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Whether the entry name of folder fd is a folder (not following links). */
static bool entry_is_dir(int fd, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	struct stat st;
	return fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* A bucket folder is named after the hour its bodies were written,
 * YYYYMMDDHH in UTC (store_delivery_new). */
static bool is_bucket(const char *name)
{
	size_t i = 0;
	while (name[i] >= '0' && name[i] <= '9')
		i++;
	return i == 10 && name[i] == '\0';
}

struct sweep {
	struct store *s;
	sqlite3_stmt *probe;
	size_t removed;
	bool failed;		/* the database failed: delete nothing more */
};

/* 1 when a messages row is named name, 0 when none is, -1 on error. */
static int sweep_probe(struct sweep *w, const char *name)
{
	sqlite3_reset(w->probe);
	sqlite3_bind_text(w->probe, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(w->probe);
	sqlite3_reset(w->probe);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	log_error("event=orphan_sweep_failed error=\"%s\" note=\"nothing more removed\"",
		  sqlite3_errmsg(w->s->db));
	w->failed = true;
	return -1;
}

/* Sweeps msg/DIR: removes each file no row names. Returns how many entries
 * are left in it. */
static size_t sweep_bucket(struct sweep *w, int msg_fd, const char *dir)
{
	int fd = openat(msg_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		log_warn("event=orphan_sweep_skipped dir=msg/%s error=\"%s\"", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	size_t left = 0;
	struct dirent *de;
	while (!w->failed && (de = readdir(d)) != NULL) {
		if (is_dot(de->d_name))
			continue;
		/* Bodies are files; a folder in a bucket is not ours to judge. */
		if (entry_is_dir(fd, de) || sweep_probe(w, de->d_name) != 0) {
			left++;
			continue;
		}
		if (unlinkat(fd, de->d_name, 0) == 0) {
			w->removed++;
			log_debug("event=orphan_body_removed file=msg/%s/%s", dir, de->d_name);
		} else if (errno != ENOENT) {
			left++;
			log_warn("event=orphan_unlink_failed file=msg/%s/%s error=\"%s\"", dir,
				 de->d_name, strerror(errno));
		}
	}
	closedir(d);
	return w->failed ? 1 : left;
}

/* A kill between the writer's rename of a body into msg/BUCKET/ and the
 * COMMIT of its rows (store_writer.c: prepare, then the transaction) leaves
 * a body file no messages row names: its sender never got an answer, and
 * nothing else would ever remove it. This removes every file under msg/
 * that no row names, and the empty buckets of past hours.
 *
 * Only with no writer anywhere on the store: a body is renamed in place
 * before its row commits, so while a writer runs, a file without a row may
 * be one about to be committed. Hence the server calls it at start-up
 * (through store_writer_start, before the writer thread and the listeners
 * start, with data_dir locked against a second server: serve.c), and the
 * CLI never does (store_open does not). The CLI may run meanwhile, but it
 * never adds a body or a messages row; it only deletes rows and then their
 * files (store_gc_bodies), so a row it deletes during the sweep can only
 * make us keep a file it removes itself.
 *
 * Cost: one walk of msg/, and per file one lookup in the UNIQUE index on
 * messages.queue_id, which the query covers (SELECT 1: no table row is
 * read), all in one read transaction. messages.body has no index and the
 * rows carry the envelope and bodystructure, so building a set from one
 * SELECT of every body would read the whole table and hold a string per
 * message in memory; the probes read only the small index, with constant
 * memory. (300,000 bodies in a 1.2 GB database, warm cache: the sweep
 * takes 0.2 s, the bare SELECT of every body 0.8 s; one read transaction
 * per probe instead of one for all took 2.7 s.) The probes rely on what
 * store_body_path() makes: a body is msg/BUCKET/QUEUE_ID of its row. So no
 * row with the file's name means no row names the file, and the file
 * goes; a row with that name in another bucket keeps the file (never the
 * case; erring that way only wastes space). A failing probe stops the
 * sweep: nothing is removed on a guess. */
static void sweep_orphan_bodies(struct store *s)
{
	struct sweep w = { .s = s };
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM messages WHERE queue_id = ?", -1,
			       &w.probe, NULL) != SQLITE_OK) {
		log_error("event=orphan_sweep_failed error=\"%s\"", sqlite3_errmsg(s->db));
		return;
	}
	int msg_fd = openat(s->data_dir_fd, "msg", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = msg_fd >= 0 ? fdopendir(msg_fd) : NULL;
	if (d == NULL) {
		log_error("event=orphan_sweep_failed dir=msg error=\"%s\"", strerror(errno));
		if (msg_fd >= 0)
			close(msg_fd);
		sqlite3_finalize(w.probe);
		return;
	}
	/* The bucket of this hour stays even when empty: the first delivery
	 * of the hour makes it, and it would only be made again. */
	char now[16];
	time_t t = (time_t)(time_now_ms() / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y%m%d%H", &tm);
	size_t buckets_removed = 0;
	struct dirent *de;
	/* One snapshot for every probe (without it, each is a transaction). */
	(void)sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
	while (!w.failed && (de = readdir(d)) != NULL) {
		if (is_dot(de->d_name))
			continue;
		if (!entry_is_dir(msg_fd, de)) {
			/* Bodies are only ever msg/BUCKET/ID: no row names this. */
			if (unlinkat(msg_fd, de->d_name, 0) == 0) {
				w.removed++;
				log_debug("event=orphan_body_removed file=msg/%s", de->d_name);
			}
			continue;
		}
		size_t left = sweep_bucket(&w, msg_fd, de->d_name);
		if (left == 0 && is_bucket(de->d_name) && strcmp(de->d_name, now) < 0 &&
		    unlinkat(msg_fd, de->d_name, AT_REMOVEDIR) == 0) {
			buckets_removed++;
			log_debug("event=bucket_removed dir=msg/%s", de->d_name);
		}
	}
	closedir(d);
	sqlite3_finalize(w.probe);
	(void)sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (w.removed > 0)
		log_info("event=orphan_bodies_removed count=%zu", w.removed);
	if (buckets_removed > 0)
		log_info("event=empty_buckets_removed count=%zu", buckets_removed);
}

/* Server start-up, before the writer thread (store_writer_start): bodies
 * left in tmp/ and bodies in msg/ that no row names both belong to
 * transactions that never committed. */
void store_clean_tmp(struct store *s)
{
	char *tmp = xasprintf("%s/tmp", s->data_dir);
	DIR *d = opendir(tmp);
	if (d != NULL) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == 0)
				log_info("event=tmp_removed file=%s", de->d_name);
		}
		closedir(d);
	}
	free(tmp);
	sweep_orphan_bodies(s);
}

int store_open(const char *data_dir, struct store **store_r, char **error_r)
{
	struct store *s = xcalloc(1, sizeof(*s));
	s->data_dir = xstrdup(data_dir);
	s->data_dir_fd = -1;
	pthread_mutex_init(&s->id_lock, NULL);
	pthread_mutex_init(&s->writer_lock, NULL);
	pthread_cond_init(&s->writer_cond, NULL);
	pthread_cond_init(&s->remover_cond, NULL);
	pthread_cond_init(&s->sync_cond, NULL);
	s->jobs_tail = &s->jobs_head;
	s->sync_tail = &s->sync_head;
	s->index_tail = &s->index_head;

	char *msg = xasprintf("%s/msg", data_dir), *tmp = xasprintf("%s/tmp", data_dir);
	int r = make_dir(data_dir, error_r);
	if (r == 0)
		r = make_dir(msg, error_r);
	if (r == 0)
		r = make_dir(tmp, error_r);
	free(msg);
	free(tmp);
	if (r < 0)
		goto fail;
	s->data_dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->data_dir_fd < 0) {
		*error_r = xasprintf("%s: %s", data_dir, strerror(errno));
		goto fail;
	}
	if (store_db_open(s, &s->db, false, error_r) < 0 || migrate(s, error_r) < 0)
		goto fail;
	*store_r = s;
	return 0;
fail:
	store_close(&s);
	return -1;
}

void store_close(struct store **sp)
{
	struct store *s = *sp;
	if (s == NULL)
		return;
	if (s->writer_running)
		store_writer_stop(s);
	sqlite3_close(s->db);
	if (s->data_dir_fd >= 0)
		close(s->data_dir_fd);
	pthread_mutex_destroy(&s->id_lock);
	pthread_mutex_destroy(&s->writer_lock);
	pthread_cond_destroy(&s->writer_cond);
	pthread_cond_destroy(&s->remover_cond);
	pthread_cond_destroy(&s->sync_cond);
	free(s->data_dir);
	free(s);
	*sp = NULL;
}

const char *store_data_dir(struct store *s)
{
	return s->data_dir;
}


void store_new_id(struct store *s, char out[17])
{
	/* 40 bits of seconds and 24 bits of a counter seeded at random: unique
	 * within a process for 16 million messages a second, and across
	 * restarts because the seconds move on. */
	pthread_mutex_lock(&s->id_lock);
	if (s->id_counter == 0)
		random_bytes(&s->id_counter, sizeof(s->id_counter));
	uint64_t c = ++s->id_counter;
	pthread_mutex_unlock(&s->id_lock);
	uint64_t t = (uint64_t)(time_now_ms() / 1000);
	snprintf(out, 17, "%010llX%06llX", (unsigned long long)(t & 0xFFFFFFFFFFULL),
		 (unsigned long long)(c & 0xFFFFFF));
}

char *store_body_path(const char *bucket, const char *queue_id)
{
	return xasprintf("msg/%s/%s", bucket, queue_id);
}

int store_split_address(const char *address, char **local_r, char **domain_r,
			char **error_r)
{
	const char *at = strrchr(address, '@');
	if (at == NULL || at == address || at[1] == '\0') {
		*error_r = xasprintf("%s: not an address of the form local@domain", address);
		return -1;
	}
	*local_r = xstrndup(address, (size_t)(at - address));
	*domain_r = xstrdup(at + 1);
	str_lower(*local_r);
	str_lower(*domain_r);
	return 0;
}

int store_release_messages(sqlite3 *db, const int64_t *mids, size_t n,
			   struct store_unlinks *u)
{
	sqlite3_stmt *refs = NULL, *del = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(db, "SELECT body FROM messages m WHERE id = ? AND"
			       " NOT EXISTS (SELECT 1 FROM mail WHERE message_id = m.id) AND"
			       " NOT EXISTS (SELECT 1 FROM queue WHERE message_id = m.id)",
			       -1, &refs, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM messages WHERE id = ?", -1, &del, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(refs);
		sqlite3_bind_int64(refs, 1, mids[i]);
		int rc = sqlite3_step(refs);
		if (rc == SQLITE_DONE)
			continue;	/* still held, or gone already */
		if (rc != SQLITE_ROW)
			goto out;
		u->paths = xrealloc(u->paths, (u->count + 1) * sizeof(*u->paths));
		u->paths[u->count++] = xstrdup((const char *)sqlite3_column_text(refs, 0));
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, mids[i]);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto out;
	}
	r = 0;
out:
	sqlite3_finalize(refs);
	sqlite3_finalize(del);
	return r;
}

void store_unlinks_finish(struct store *s, struct store_unlinks *u, int result)
{
	if (result == 0 && u->count > 0 && store_remove_later(s, u->paths, u->count)) {
		free(u->paths);
		u->paths = NULL;
		u->count = 0;
		return;
	}
	for (size_t i = 0; i < u->count; i++) {
		if (result == 0 && unlinkat(s->data_dir_fd, u->paths[i], 0) < 0 && errno != ENOENT)
			log_warn("event=body_unlink_failed file=%s error=\"%s\"", u->paths[i],
				 strerror(errno));
		free(u->paths[i]);
	}
	free(u->paths);
	u->paths = NULL;
	u->count = 0;
}

int store_gc_bodies(struct store *s, sqlite3 *db, char **error_r)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	int r = -1;
	if (sqlite3_prepare_v2(db,
			"SELECT id, body FROM messages m WHERE"
			" NOT EXISTS (SELECT 1 FROM mail WHERE message_id = m.id) AND"
			" NOT EXISTS (SELECT 1 FROM queue WHERE message_id = m.id)",
			-1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "DELETE FROM messages WHERE id = ?", -1, &del, NULL) != SQLITE_OK) {
		*error_r = store_db_error(db, "collecting unused bodies");
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(sel, 1);
		/* The row goes first; a file left behind by a crash right here
		 * is only wasted space, never a dangling reference. */
		sqlite3_bind_int64(del, 1, sqlite3_column_int64(sel, 0));
		if (sqlite3_step(del) != SQLITE_DONE) {
			*error_r = store_db_error(db, "deleting message");
			goto out;
		}
		sqlite3_reset(del);
		if (unlinkat(s->data_dir_fd, body, 0) < 0 && errno != ENOENT)
			log_warn("event=body_unlink_failed file=%s error=\"%s\"", body, strerror(errno));
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(db, "collecting unused bodies");
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	return r;
}

void store_strv_free(char ***strvp)
{
	char **v = *strvp;
	if (v == NULL)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
	*strvp = NULL;
}

/* ---- readers ---- */

struct store_reader *store_reader_new(struct store *s)
{
	struct store_reader *r = xcalloc(1, sizeof(*r));
	char *error = NULL;
	r->store = s;
	if (store_db_open(s, &r->db, true, &error) < 0)
		log_fatal("event=store_reader_open error=\"%s\"", error);
	if (sqlite3_prepare_v2(r->db, "SELECT id FROM domains WHERE name = ?", -1,
			       &r->st_domain, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT target FROM aliases WHERE domain_id = ? AND localpart = ?",
			       -1, &r->st_alias, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT id FROM accounts WHERE domain_id = ? AND localpart = ?",
			       -1, &r->st_account, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT id, localpart FROM accounts WHERE domain_id = ? ORDER BY id LIMIT 1",
			       -1, &r->st_first_account, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT 1 FROM sendas WHERE account_id = ? AND address = ?",
			       -1, &r->st_sendas, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT a.id, a.password, a.scram FROM accounts a"
			       " JOIN domains d ON d.id = a.domain_id"
			       " WHERE d.name = ? AND a.localpart = ?",
			       -1, &r->st_auth, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT envelope, body_simple, bodystructure, parts"
			       " FROM messages WHERE id = ?", -1, &r->st_mime, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT prefix FROM mail WHERE mailbox_id = ? AND uid = ?",
			       -1, &r->st_prefix, NULL) != SQLITE_OK)
		log_fatal("event=store_reader_prepare error=\"%s\"", sqlite3_errmsg(r->db));
	return r;
}

void store_reader_free(struct store_reader **rp)
{
	struct store_reader *r = *rp;
	if (r == NULL)
		return;
	sqlite3_finalize(r->st_domain);
	sqlite3_finalize(r->st_alias);
	sqlite3_finalize(r->st_account);
	sqlite3_finalize(r->st_first_account);
	sqlite3_finalize(r->st_auth);
	sqlite3_finalize(r->st_sendas);
	sqlite3_finalize(r->st_mime);
	sqlite3_finalize(r->st_prefix);
	sqlite3_close(r->db);
	free(r);
	*rp = NULL;
}

/* Returns the domain's id, 0 when it is not ours, -1 on error. */
static int64_t domain_id(struct store_reader *r, const char *domain)
{
	int64_t id = 0;
	sqlite3_bind_text(r->st_domain, 1, domain, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->st_domain);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(r->st_domain, 0);
	else if (rc != SQLITE_DONE)
		id = -1;
	sqlite3_reset(r->st_domain);
	sqlite3_clear_bindings(r->st_domain);
	return id;
}

bool store_domain_is_local(struct store_reader *r, const char *domain)
{
	return domain_id(r, domain) > 0;
}

static int64_t account_id(struct store_reader *r, int64_t dom, const char *local)
{
	int64_t id = 0;
	sqlite3_bind_int64(r->st_account, 1, dom);
	sqlite3_bind_text(r->st_account, 2, local, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->st_account);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(r->st_account, 0);
	else if (rc != SQLITE_DONE)
		id = -1;
	sqlite3_reset(r->st_account);
	return id;
}

/* Alias targets of local@dom: returns the count (0: none), -1 on error.
 * *targets_r is a NULL-terminated vector. */
static int alias_targets(struct store_reader *r, int64_t dom, const char *local,
			 char ***targets_r)
{
	size_t n = 0;
	char **v = NULL;
	int rc;
	sqlite3_bind_int64(r->st_alias, 1, dom);
	sqlite3_bind_text(r->st_alias, 2, local, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(r->st_alias)) == SQLITE_ROW) {
		v = xrealloc(v, (n + 2) * sizeof(*v));
		v[n++] = xstrdup((const char *)sqlite3_column_text(r->st_alias, 0));
		v[n] = NULL;
	}
	sqlite3_reset(r->st_alias);
	if (rc != SQLITE_DONE) {
		store_strv_free(&v);
		return -1;
	}
	*targets_r = v;
	return (int)n;
}

#define RESOLVE_MAX_DEPTH 8
#define RESOLVE_MAX_TARGETS 1000

struct resolve_ctx {
	struct store_reader *r;
	const char *delimiter;
	struct store_targets *out;
	char *visited[RESOLVE_MAX_DEPTH + 1];
	size_t depth;
	bool error;
};

static void add_target(struct resolve_ctx *c, int64_t account, const char *address)
{
	struct store_targets *t = c->out;
	for (size_t i = 0; i < t->count; i++) {
		if (account > 0 ? t->v[i].account_id == account :
		    (t->v[i].account_id == 0 && str_ieq(t->v[i].address, address)))
			return;
	}
	if (t->count >= RESOLVE_MAX_TARGETS) {
		log_warn("event=alias_fanout_limit address=%s", address);
		return;
	}
	t->v = xrealloc(t->v, (t->count + 1) * sizeof(*t->v));
	t->v[t->count].account_id = account;
	t->v[t->count].address = xstrdup(address);
	t->count++;
}

static enum store_resolve_result resolve(struct resolve_ctx *c, const char *local,
					 const char *domain);

/* Expands a list of alias targets; true when at least one led somewhere. */
static bool expand(struct resolve_ctx *c, char **targets)
{
	bool any = false;
	for (size_t i = 0; targets[i]; i++) {
		char *tl, *td, *err = NULL;
		if (store_split_address(targets[i], &tl, &td, &err) < 0) {
			log_warn("event=alias_target_invalid target=%s", targets[i]);
			free(err);
			continue;
		}
		enum store_resolve_result res = resolve(c, tl, td);
		if (res == STORE_RESOLVE_NOT_LOCAL) {
			add_target(c, 0, targets[i]);
			res = STORE_RESOLVE_OK;
		}
		if (res == STORE_RESOLVE_OK)
			any = true;
		else if (res == STORE_RESOLVE_ERROR)
			c->error = true;
		free(tl);
		free(td);
	}
	return any;
}

static enum store_resolve_result resolve(struct resolve_ctx *c, const char *local,
					 const char *domain)
{
	struct store_reader *r = c->r;
	int64_t dom = domain_id(r, domain);
	if (dom < 0)
		return STORE_RESOLVE_ERROR;
	if (dom == 0)
		return STORE_RESOLVE_NOT_LOCAL;

	char *address = xasprintf("%s@%s", local, domain);
	str_lower(address);
	bool looped = false;
	for (size_t i = 0; i < c->depth; i++) {
		if (strcmp(c->visited[i], address) == 0)
			looped = true;
	}
	if (c->depth >= RESOLVE_MAX_DEPTH) {
		log_warn("event=alias_depth_limit address=%s", address);
		free(address);
		return STORE_RESOLVE_NO_SUCH_USER;
	}
	c->visited[c->depth++] = address;

	enum store_resolve_result res = STORE_RESOLVE_NO_SUCH_USER;
	char *lc = xstrdup(local);
	str_lower(lc);
	char **targets = NULL;
	int64_t acc;
	int n;

	/* An alias seen again on the way ("a -> a, b") means "a's own box too". */
	if (!looped && (n = alias_targets(r, dom, lc, &targets)) != 0) {
		if (n < 0)
			res = STORE_RESOLVE_ERROR;
		else if (expand(c, targets))
			res = STORE_RESOLVE_OK;
		goto out;
	}
	if ((acc = account_id(r, dom, lc)) != 0) {
		if (acc < 0) {
			res = STORE_RESOLVE_ERROR;
		} else {
			add_target(c, acc, address);
			res = STORE_RESOLVE_OK;
		}
		goto out;
	}
	if (c->delimiter && *c->delimiter) {
		char *d = strpbrk(lc, c->delimiter);
		if (d != NULL && d != lc) {
			*d = '\0';
			res = resolve(c, lc, domain);
			if (res != STORE_RESOLVE_NO_SUCH_USER)
				goto out;
			*d = c->delimiter[0];
		}
	}
	if (!looped && (n = alias_targets(r, dom, "", &targets)) != 0) {
		if (c->depth == 1)
			c->out->catchall = true;
		if (n < 0)
			res = STORE_RESOLVE_ERROR;
		else if (expand(c, targets))
			res = STORE_RESOLVE_OK;
		goto out;
	}
	/* RFC 5321 4.5.1: postmaster must be accepted. With no account or
	 * alias for it, the domain's first account receives it. */
	if (strcmp(lc, "postmaster") == 0) {
		sqlite3_bind_int64(r->st_first_account, 1, dom);
		int rc = sqlite3_step(r->st_first_account);
		if (rc == SQLITE_ROW) {
			add_target(c, sqlite3_column_int64(r->st_first_account, 0), address);
			if (c->depth == 1)
				c->out->catchall = true;
			res = STORE_RESOLVE_OK;
		} else if (rc != SQLITE_DONE) {
			res = STORE_RESOLVE_ERROR;
		}
		sqlite3_reset(r->st_first_account);
	}
out:
	store_strv_free(&targets);
	free(lc);
	c->depth--;
	free(c->visited[c->depth]);
	return res;
}

enum store_resolve_result
store_resolve(struct store_reader *r, const char *local, const char *domain,
	      const char *recipient_delimiter, struct store_targets *targets_r)
{
	struct resolve_ctx c = { .r = r, .delimiter = recipient_delimiter, .out = targets_r };
	targets_r->count = 0;
	targets_r->v = NULL;
	targets_r->catchall = false;
	enum store_resolve_result res = resolve(&c, local, domain);
	if (c.error && res != STORE_RESOLVE_OK)
		res = STORE_RESOLVE_ERROR;
	if (res != STORE_RESOLVE_OK)
		store_targets_deinit(targets_r);
	return res;
}

void store_targets_deinit(struct store_targets *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->v[i].address);
	free(t->v);
	t->v = NULL;
	t->count = 0;
}

int store_account_lookup(struct store_reader *r, const char *address,
			 struct store_account *account_r)
{
	char *local, *domain, *error = NULL;
	memset(account_r, 0, sizeof(*account_r));
	if (store_split_address(address, &local, &domain, &error) < 0) {
		free(error);
		return 0;
	}
	sqlite3_stmt *st = r->st_auth;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), res = 0;
	if (rc == SQLITE_ROW) {
		const char *scram = (const char *)sqlite3_column_text(st, 2);
		account_r->id = sqlite3_column_int64(st, 0);
		account_r->address = xasprintf("%s@%s", local, domain);
		account_r->hash = xstrdup((const char *)sqlite3_column_text(st, 1));
		account_r->scram = scram ? xstrdup(scram) : NULL;
		res = 1;
	} else if (rc != SQLITE_DONE) {
		res = -1;
	}
	sqlite3_reset(st);
	free(local);
	free(domain);
	return res;
}

void store_account_deinit(struct store_account *a)
{
	free(a->address);
	if (a->hash)
		mem_wipe(a->hash, strlen(a->hash));
	free(a->hash);
	if (a->scram)
		mem_wipe(a->scram, strlen(a->scram));
	free(a->scram);
	memset(a, 0, sizeof(*a));
}

bool store_may_send_as(struct store_reader *r, int64_t account_id,
		       const char *account_address, const char *address,
		       const char *recipient_delimiter)
{
	if (str_ieq(address, account_address))
		return true;
	char *local, *domain, *error = NULL;
	if (store_split_address(address, &local, &domain, &error) < 0) {
		free(error);
		return false;
	}
	bool ok = false;
	struct store_targets t;
	if (store_resolve(r, local, domain, recipient_delimiter, &t) == STORE_RESOLVE_OK) {
		for (size_t i = 0; i < t.count && !t.catchall; i++) {
			if (t.v[i].account_id == account_id)
				ok = true;
		}
		store_targets_deinit(&t);
	}
	if (!ok) {
		char *lower = xasprintf("%s@%s", local, domain);
		sqlite3_bind_int64(r->st_sendas, 1, account_id);
		sqlite3_bind_text(r->st_sendas, 2, lower, -1, SQLITE_STATIC);
		ok = sqlite3_step(r->st_sendas) == SQLITE_ROW;
		sqlite3_reset(r->st_sendas);
		free(lower);
	}
	free(local);
	free(domain);
	return ok;
}

char *store_first_domain(struct store_reader *r)
{
	sqlite3_stmt *st;
	char *name = NULL;
	if (sqlite3_prepare_v2(r->db, "SELECT name FROM domains ORDER BY id LIMIT 1", -1,
			       &st, NULL) != SQLITE_OK)
		return NULL;
	if (sqlite3_step(st) == SQLITE_ROW)
		name = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return name;
}
