/* The store against real SQLite in a temporary folder: schema, the admin
 * functions the CLI uses, and recipient resolution (aliases, catch-all,
 * plus-addressing, postmaster; RFC 5321 4.5.1). */
#include "test.h"
#include "store/store_private.h"
#include "core/util.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/yubin-test-store-XXXXXX";
static char *data_dir;

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *open_store(void)
{
	struct store *s = NULL;
	char *error = NULL;
	if (store_open(data_dir, &s, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		free(error);
		exit(1);
	}
	return s;
}

static int64_t q_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(s->db));
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void q_exec(struct store *s, const char *sql)
{
	char *error = NULL;
	if (store_exec(s->db, sql, &error) < 0) {
		fprintf(stderr, "%s: %s\n", sql, error);
		free(error);
		CHECK(0);
	}
}

/* Runs f and checks that it failed with an error containing want. */
#define CHECK_FAILS(call, want) do { \
	char *error = NULL; \
	test_checks++; \
	if ((call) != -1 || error == NULL || strstr(error, (want)) == NULL) { \
		test_failures++; \
		fprintf(stderr, "%s:%d: %s: want failure \"%s\", got \"%s\"\n", __FILE__, \
			__LINE__, #call, (want), error ? error : "(success)"); \
	} \
	free(error); \
} while (0)

#define CHECK_OK(call) do { \
	char *error = NULL; \
	test_checks++; \
	if ((call) != 0) { \
		test_failures++; \
		fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, \
			error ? error : "(no error text)"); \
	} \
	free(error); \
} while (0)

/* The joined entries of a list, "a,b,c". */
static char *joined(char **v)
{
	char *out = xstrdup("");
	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		char *n = xasprintf("%s%s%s", out, i ? "," : "", v[i]);
		free(out);
		out = n;
	}
	return out;
}

static char *domains(struct store *s)
{
	char **v = NULL;
	CHECK_OK(store_domain_list(s, &v, &error));
	char *j = joined(v);
	store_strv_free(&v);
	return j;
}

static char *users(struct store *s, const char *domain)
{
	char **v = NULL;
	CHECK_OK(store_user_list(s, domain, &v, &error));
	char *j = joined(v);
	store_strv_free(&v);
	return j;
}

static char *aliases(struct store *s, const char *domain)
{
	char **v = NULL;
	CHECK_OK(store_alias_list(s, domain, &v, &error));
	char *j = joined(v);
	store_strv_free(&v);
	return j;
}

#define CHECK_LIST(expr, want) do { \
	char *got_ = (expr); \
	CHECK_STR(got_, want); \
	free(got_); \
} while (0)

static void write_file(const char *rel, const char *content)
{
	char *path = xasprintf("%s/%s", data_dir, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(write_full(fd, content, strlen(content)) == 0);
		close(fd);
	}
	free(path);
}

static bool file_exists(const char *rel)
{
	char *path = xasprintf("%s/%s", data_dir, rel);
	bool r = access(path, F_OK) == 0;
	free(path);
	return r;
}

/* ---- schema ---- */

static void test_open(void)
{
	struct store *s = open_store();
	CHECK_INT(q_int(s, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	CHECK_INT(q_int(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
			" AND name IN ('domains', 'accounts', 'aliases', 'mailboxes',"
			" 'messages', 'mail', 'expunged', 'queue')"), 8);
	CHECK_STR(store_data_dir(s), data_dir);
	CHECK_OK(store_domain_add(s, "reopen.example", &error));
	store_close(&s);
	CHECK(s == NULL);

	/* Opening again migrates nothing and keeps the data. */
	s = open_store();
	CHECK_INT(q_int(s, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	CHECK_LIST(domains(s), "reopen.example");
	CHECK_OK(store_domain_del(s, "reopen.example", &error));
	store_close(&s);
}

/* ---- domains ---- */

static void test_domains(void)
{
	struct store *s = open_store();
	CHECK_OK(store_domain_add(s, "Example.COM", &error));
	CHECK_OK(store_domain_add(s, "b.example", &error));
	CHECK_LIST(domains(s), "b.example,example.com");
	CHECK_FAILS(store_domain_add(s, "example.com", &error), "domain already exists: example.com");
	CHECK_FAILS(store_domain_add(s, "EXAMPLE.com", &error), "domain already exists");
	CHECK_FAILS(store_domain_add(s, "bad domain", &error), "not a valid domain");
	CHECK_FAILS(store_domain_add(s, "", &error), "not a valid domain");
	CHECK_FAILS(store_domain_del(s, "nowhere.example", &error), "no such domain: nowhere.example");

	/* Refused while accounts or aliases remain; nothing changes. */
	CHECK_OK(store_user_add(s, "a@example.com", "h", NULL, &error));
	CHECK_OK(store_user_add(s, "b@example.com", "h", NULL, &error));
	CHECK_FAILS(store_domain_del(s, "example.com", &error),
		    "domain example.com still has 2 accounts; delete them first");
	CHECK_OK(store_alias_add(s, "x@example.com", "a@example.com", &error));
	CHECK_FAILS(store_domain_del(s, "example.com", &error),
		    "domain example.com still has 2 accounts and 1 alias; delete them first");
	CHECK_OK(store_user_del(s, "a@example.com", &error));
	CHECK_OK(store_user_del(s, "b@example.com", &error));
	CHECK_FAILS(store_domain_del(s, "example.com", &error),
		    "domain example.com still has 1 alias; delete it first");
	CHECK_LIST(domains(s), "b.example,example.com");
	CHECK_OK(store_alias_del(s, "x@example.com", NULL, &error));
	CHECK_OK(store_domain_del(s, "EXAMPLE.COM", &error));
	CHECK_OK(store_domain_del(s, "b.example", &error));
	CHECK_LIST(domains(s), "");
	store_close(&s);
}

/* ---- accounts ---- */

static void test_users(void)
{
	struct store *s = open_store();
	CHECK_OK(store_domain_add(s, "example.com", &error));
	CHECK_OK(store_domain_add(s, "other.example", &error));
	CHECK_OK(store_user_add(s, "Alice@Example.COM", "hash1", NULL, &error));
	CHECK_OK(store_user_add(s, "zed@other.example", "hash1", NULL, &error));
	CHECK_OK(store_user_add(s, "bob@example.com", "hash1", NULL, &error));
	CHECK_LIST(users(s, NULL), "alice@example.com,bob@example.com,zed@other.example");
	CHECK_LIST(users(s, "Example.com"), "alice@example.com,bob@example.com");
	{
		char **v = NULL;
		CHECK_FAILS(store_user_list(s, "nowhere.example", &v, &error), "no such domain");
		CHECK(v == NULL);
	}

	/* The five special-use mailboxes (RFC 6154), fresh counters, and
	 * UIDVALIDITY values that differ from every other mailbox's. */
	sqlite3_stmt *st;
	static const char *const names[] = { "INBOX", "Sent", "Drafts", "Trash", "Junk" };
	static const char *const uses[] = { NULL, "\\Sent", "\\Drafts", "\\Trash", "\\Junk" };
	CHECK(sqlite3_prepare_v2(s->db,
		"SELECT m.name, m.special_use, m.uidvalidity, m.uidnext, m.highestmodseq,"
		" m.subscribed FROM mailboxes m JOIN accounts a ON a.id = m.account_id"
		" WHERE a.localpart = 'alice' ORDER BY m.id", -1, &st, NULL) == SQLITE_OK);
	size_t n = 0;
	int64_t prev = 0;
	while (sqlite3_step(st) == SQLITE_ROW && n < 5) {
		CHECK_STR((const char *)sqlite3_column_text(st, 0), names[n]);
		CHECK_STR((const char *)sqlite3_column_text(st, 1), uses[n]);
		CHECK(sqlite3_column_int64(st, 2) > prev);
		prev = sqlite3_column_int64(st, 2);
		CHECK_INT(sqlite3_column_int64(st, 3), 1);
		CHECK_INT(sqlite3_column_int64(st, 4), 1);
		CHECK_INT(sqlite3_column_int64(st, 5), 1);
		n++;
	}
	sqlite3_finalize(st);
	CHECK_INT(n, 5);
	CHECK_INT(q_int(s, "SELECT count(DISTINCT uidvalidity) FROM mailboxes"), 15);

	CHECK_FAILS(store_user_add(s, "alice@example.com", "h", NULL, &error),
		    "user already exists: alice@example.com");
	CHECK_FAILS(store_user_add(s, "ALICE@example.com", "h", NULL, &error), "user already exists");
	CHECK_FAILS(store_user_add(s, "carol@nowhere.example", "h", NULL, &error),
		    "no such domain: nowhere.example");
	CHECK_FAILS(store_user_add(s, "no-at-sign", "h", NULL, &error), "not a valid address");
	CHECK_FAILS(store_user_add(s, "carol@example.com", "", NULL, &error), "empty password hash");
	CHECK_LIST(users(s, NULL), "alice@example.com,bob@example.com,zed@other.example");

	/* Passwords. */
	char *hash = NULL;
	q_exec(s, "UPDATE accounts SET scram = 'old record'");
	CHECK_OK(store_user_passwd(s, "alice@EXAMPLE.com", "hash2", NULL, &error));
	/* A SCRAM record of the old password must not outlive it. */
	CHECK_INT(q_int(s, "SELECT count(*) FROM accounts WHERE localpart = 'alice'"
			" AND scram IS NULL"), 1);
	CHECK_INT(q_int(s, "SELECT count(*) FROM accounts WHERE scram IS NOT NULL"), 2);
	CHECK_OK(store_user_hash(s, "alice@example.com", &hash, &error));
	CHECK_STR(hash, "hash2");
	free(hash);
	hash = NULL;
	CHECK_FAILS(store_user_hash(s, "carol@example.com", &hash, &error),
		    "no such user: carol@example.com");
	CHECK(hash == NULL);
	CHECK_FAILS(store_user_passwd(s, "carol@example.com", "h", NULL, &error), "no such user");

	/* Deleted and added again: new UIDVALIDITY values (RFC 9051 2.3.1.1). */
	int64_t old_max = q_int(s, "SELECT max(uidvalidity) FROM mailboxes");
	CHECK_OK(store_user_del(s, "alice@example.com", &error));
	CHECK_INT(q_int(s, "SELECT count(*) FROM mailboxes"), 10);
	CHECK_OK(store_user_add(s, "alice@example.com", "h", NULL, &error));
	CHECK(q_int(s, "SELECT min(m.uidvalidity) FROM mailboxes m JOIN accounts a"
		    " ON a.id = m.account_id WHERE a.localpart = 'alice'") > old_max);

	CHECK_OK(store_user_del(s, "alice@example.com", &error));
	CHECK_OK(store_user_del(s, "bob@example.com", &error));
	CHECK_OK(store_user_del(s, "zed@other.example", &error));
	CHECK_FAILS(store_user_del(s, "zed@other.example", &error), "no such user");
	CHECK_FAILS(store_user_del(s, "zed@nowhere.example", &error), "no such domain");
	CHECK_INT(q_int(s, "SELECT count(*) FROM mailboxes"), 0);
	CHECK_OK(store_domain_del(s, "example.com", &error));
	CHECK_OK(store_domain_del(s, "other.example", &error));
	store_close(&s);
}

/* ---- mail, queue, and what deleting a user takes with it ---- */

static void test_mail(void)
{
	static const char prefix[] = "Return-Path: <s@remote.example>\r\n";
	static const char body[] = "From: S <s@remote.example>\r\nSubject: hi\r\n\r\nbody\r\n";
	struct store *s = open_store();
	CHECK_OK(store_domain_add(s, "example.com", &error));
	CHECK_OK(store_user_add(s, "alice@example.com", "h", NULL, &error));

	char *dir = xasprintf("%s/msg/2026010100", data_dir);
	CHECK(mkdir(dir, 0750) == 0);
	free(dir);
	write_file("msg/2026010100/M1", body);
	write_file("msg/2026010100/M2", body);
	char *sql = xasprintf(
		"INSERT INTO messages (id, queue_id, body, size, received, sender, hdr_from, hdr_subject)"
		" VALUES (1, 'M1', 'msg/2026010100/M1', %zu, 1000, 's@remote.example',"
		" 'S <s@remote.example>', 'hi'),"
		" (2, 'M2', 'msg/2026010100/M2', %zu, 1000, '', '', '');"
		"INSERT INTO mail (mailbox_id, uid, message_id, prefix, modseq, internaldate, savedate)"
		" SELECT id, 7, 1, CAST('%s' AS BLOB), 2, 1795248000, 1795248000 FROM mailboxes"
		" WHERE name = 'INBOX';"
		"INSERT INTO mail (mailbox_id, uid, message_id, prefix, modseq, internaldate, savedate)"
		" SELECT id, 9, 2, X'', 3, 1795248001, 1795248001 FROM mailboxes"
		" WHERE name = 'INBOX';"
		"INSERT INTO queue (id, message_id, recipient, created, next_attempt, attempts, last_error)"
		" VALUES (5, 2, 'r@remote.example', 1000, 2000, 1, '451 later');",
		strlen(body), strlen(body), prefix);
	q_exec(s, sql);
	free(sql);

	struct store_mail_row *rows = NULL;
	size_t count = 0;
	CHECK_OK(store_mail_list(s, "Alice@example.com", NULL, &rows, &count, &error));
	CHECK_INT(count, 2);
	if (count == 2) {
		CHECK_INT(rows[0].uid, 7);
		CHECK_INT(rows[0].internaldate, 1795248000);
		CHECK_INT(rows[0].size, strlen(prefix) + strlen(body));
		CHECK_STR(rows[0].from, "S <s@remote.example>");
		CHECK_STR(rows[0].subject, "hi");
		CHECK_INT(rows[1].uid, 9);
		CHECK_INT(rows[1].size, strlen(body));
		CHECK_STR(rows[1].subject, "");
	}
	store_mail_rows_free(&rows, count);
	CHECK(rows == NULL);
	CHECK_OK(store_mail_list(s, "alice@example.com", "inbox", &rows, &count, &error));
	CHECK_INT(count, 2);
	store_mail_rows_free(&rows, count);
	CHECK_OK(store_mail_list(s, "alice@example.com", "Sent", &rows, &count, &error));
	CHECK_INT(count, 0);
	store_mail_rows_free(&rows, count);
	CHECK_FAILS(store_mail_list(s, "alice@example.com", "sent", &rows, &count, &error),
		    "no such mailbox");
	CHECK_FAILS(store_mail_list(s, "bob@example.com", NULL, &rows, &count, &error),
		    "no such user");

	/* mail show: the prefix, then the body file, byte for byte. */
	char *out_path = xasprintf("%s/shown", tmpdir);
	int fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK_OK(store_mail_show(s, "alice@example.com", "INBOX", 7, fd, &error));
	CHECK_FAILS(store_mail_show(s, "alice@example.com", "INBOX", 8, fd, &error),
		    "no such message");
	char got[512] = "";
	ssize_t n = pread(fd, got, sizeof(got) - 1, 0);
	CHECK(n >= 0);
	got[n < 0 ? 0 : n] = '\0';
	char *want = xasprintf("%s%s", prefix, body);
	CHECK_STR(got, want);
	free(want);
	close(fd);
	unlink(out_path);
	free(out_path);

	/* The queue. */
	struct store_queue_row *q = NULL;
	CHECK_OK(store_queue_list(s, &q, &count, &error));
	CHECK_INT(count, 1);
	if (count == 1) {
		CHECK_INT(q[0].id, 5);
		CHECK_STR(q[0].queue_id, "M2");
		CHECK_STR(q[0].sender, "");
		CHECK_STR(q[0].recipient, "r@remote.example");
		CHECK_INT(q[0].created, 1000);
		CHECK_INT(q[0].next_attempt, 2000);
		CHECK_INT(q[0].attempts, 1);
		CHECK_STR(q[0].last_error, "451 later");
	}
	store_queue_rows_free(&q, count);
	CHECK(q == NULL);

	/* Deleting the user takes its mail; a body still queued stays. */
	CHECK_OK(store_user_del(s, "alice@example.com", &error));
	CHECK_INT(q_int(s, "SELECT count(*) FROM mail"), 0);
	CHECK_INT(q_int(s, "SELECT count(*) FROM messages"), 1);
	CHECK(!file_exists("msg/2026010100/M1"));
	CHECK(file_exists("msg/2026010100/M2"));
	q_exec(s, "DELETE FROM queue; DELETE FROM messages;");
	CHECK_OK(store_domain_del(s, "example.com", &error));
	store_close(&s);
}

/* ---- start-up sweep of msg/ ---- */

static void make_dir_rel(const char *rel)
{
	char *path = xasprintf("%s/%s", data_dir, rel);
	CHECK(mkdir(path, 0750) == 0);
	free(path);
}

static bool dir_exists(const char *rel)
{
	char *path = xasprintf("%s/%s", data_dir, rel);
	struct stat st;
	bool r = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
	free(path);
	return r;
}

/* A kill between a body's rename into msg/ and its commit leaves a file no
 * row names; the server's start-up (store_writer_start -> store_clean_tmp)
 * removes it and the empty buckets of past hours, keeps every named body,
 * and store_open (all the CLI does) removes nothing. */
static void test_orphan_sweep(void)
{
	struct store *s = open_store();
	char hour[16];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(hour, sizeof(hour), "%Y%m%d%H", &tm);
	char *this_hour = xasprintf("msg/%s", hour);

	make_dir_rel("msg/2000010100");		/* named body + orphan */
	make_dir_rel("msg/2000010101");		/* orphan only */
	make_dir_rel("msg/2000010102");		/* empty, past */
	make_dir_rel("msg/2999123123");		/* empty, future */
	make_dir_rel("msg/2000010103");		/* holds a folder: not ours */
	make_dir_rel("msg/2000010103/sub");
	make_dir_rel("msg/other");		/* not a bucket name */
	if (!dir_exists(this_hour))
		make_dir_rel(this_hour);
	write_file("msg/2000010100/00000000000000A1", "named\r\n");
	write_file("msg/2000010100/00000000000000B2", "orphan\r\n");
	write_file("msg/2000010101/00000000000000C3", "orphan\r\n");
	/* A row with this queue id names a file elsewhere: this one is no
	 * row's body, but the sweep goes by queue id and errs on keeping. */
	write_file("msg/2000010101/00000000000000A1", "copy\r\n");
	write_file("msg/stray", "x");
	write_file("tmp/00000000000000D4", "partial");
	q_exec(s, "INSERT INTO messages (id, queue_id, body, size, received, sender)"
		  " VALUES (1, '00000000000000A1', 'msg/2000010100/00000000000000A1', 7, 1000, '')");
	store_close(&s);

	/* The CLI's way in: nothing removed. */
	s = open_store();
	CHECK(file_exists("msg/2000010100/00000000000000B2"));
	CHECK(file_exists("msg/2000010101/00000000000000C3"));
	CHECK(file_exists("msg/stray"));
	CHECK(file_exists("tmp/00000000000000D4"));

	store_clean_tmp(s);
	CHECK(file_exists("msg/2000010100/00000000000000A1"));
	CHECK(!file_exists("msg/2000010100/00000000000000B2"));
	CHECK(!file_exists("msg/2000010101/00000000000000C3"));
	CHECK(file_exists("msg/2000010101/00000000000000A1"));
	CHECK(!file_exists("msg/stray"));
	CHECK(!file_exists("tmp/00000000000000D4"));
	CHECK(dir_exists("msg/2000010100"));
	CHECK(dir_exists("msg/2000010101"));
	CHECK(!dir_exists("msg/2000010102"));
	CHECK(dir_exists("msg/2999123123"));
	CHECK(dir_exists("msg/2000010103/sub"));
	CHECK(dir_exists("msg/other"));
	/* Only when the hour did not turn meanwhile. */
	gmtime_r(&(time_t){ time(NULL) }, &tm);
	char hour2[16];
	strftime(hour2, sizeof(hour2), "%Y%m%d%H", &tm);
	if (strcmp(hour, hour2) == 0)
		CHECK(dir_exists(this_hour));
	CHECK_INT(q_int(s, "SELECT count(*) FROM messages"), 1);

	/* Emptied of its last body, a past bucket goes at the next start. */
	q_exec(s, "DELETE FROM messages");
	store_clean_tmp(s);
	CHECK(!dir_exists("msg/2000010100"));
	CHECK(!dir_exists("msg/2000010101"));
	store_close(&s);

	char *path = xasprintf("%s/msg/2000010103/sub", data_dir);
	rmdir(path);
	free(path);
	path = xasprintf("%s/msg/2000010103", data_dir);
	rmdir(path);
	free(path);
	free(this_hour);
}

/* ---- aliases ---- */

static void test_aliases(void)
{
	struct store *s = open_store();
	CHECK_OK(store_domain_add(s, "example.com", &error));
	CHECK_OK(store_domain_add(s, "other.example", &error));
	CHECK_OK(store_alias_add(s, "Info@Example.com", "Alice@EXAMPLE.com", &error));
	CHECK_OK(store_alias_add(s, "info@example.com", "Bob@Remote.Example", &error));
	CHECK_OK(store_alias_add(s, "@other.example", "alice@example.com", &error));
	CHECK_LIST(aliases(s, NULL), "info@example.com alice@example.com,"
		   "info@example.com Bob@remote.example,@other.example alice@example.com");
	CHECK_LIST(aliases(s, "other.example"), "@other.example alice@example.com");
	CHECK_FAILS(store_alias_add(s, "info@example.com", "alice@example.com", &error),
		    "alias already exists: info@example.com alice@example.com");
	CHECK_FAILS(store_alias_add(s, "INFO@example.com", "ALICE@example.com", &error),
		    "alias already exists");
	CHECK_FAILS(store_alias_add(s, "x@nowhere.example", "alice@example.com", &error),
		    "no such domain: nowhere.example");
	CHECK_FAILS(store_alias_add(s, "@nowhere.example", "alice@example.com", &error),
		    "no such domain");
	CHECK_FAILS(store_alias_add(s, "x@example.com", "not an address", &error),
		    "not a valid address");
	CHECK_FAILS(store_alias_add(s, "@", "alice@example.com", &error), "not a valid domain");
	{
		char **v = NULL;
		CHECK_FAILS(store_alias_list(s, "nowhere.example", &v, &error), "no such domain");
	}

	/* Deleting one target, then every target of a source. */
	CHECK_OK(store_alias_del(s, "info@example.com", "bob@remote.example", &error));
	CHECK_FAILS(store_alias_del(s, "info@example.com", "bob@remote.example", &error),
		    "no such alias: info@example.com bob@remote.example");
	CHECK_OK(store_alias_add(s, "info@example.com", "carol@example.com", &error));
	CHECK_OK(store_alias_del(s, "INFO@example.com", NULL, &error));
	CHECK_FAILS(store_alias_del(s, "info@example.com", NULL, &error),
		    "no such alias: info@example.com");
	CHECK_OK(store_alias_del(s, "@Other.Example", NULL, &error));
	CHECK_LIST(aliases(s, NULL), "");
	CHECK_OK(store_domain_del(s, "example.com", &error));
	CHECK_OK(store_domain_del(s, "other.example", &error));
	store_close(&s);
}

/* ---- resolution ---- */

struct resolve_case {
	const char *local;
	const char *domain;
	const char *delimiter;
	enum store_resolve_result result;
	/* "address#account,..." sorted; account: its local part, or "-" */
	const char *targets;
};

static const struct resolve_case resolve_cases[] = {
	{ "alice", "example.com", "+", STORE_RESOLVE_OK, "alice@example.com#alice" },
	{ "ALICE", "example.com", "+", STORE_RESOLVE_OK, "alice@example.com#alice" },
	{ "nobody", "example.com", "+", STORE_RESOLVE_NO_SUCH_USER, "" },
	{ "alice", "remote.example", "+", STORE_RESOLVE_NOT_LOCAL, "" },
	/* an alias to two users */
	{ "team", "example.com", "+", STORE_RESOLVE_OK,
	  "alice@example.com#alice,bob@example.com#bob" },
	/* to a remote address: a target without an account */
	{ "fwd", "example.com", "+", STORE_RESOLVE_OK, "x@remote.example#-" },
	/* a -> b -> c */
	{ "chain1", "example.com", "+", STORE_RESOLVE_OK, "carol@example.com#carol" },
	/* a -> b -> a ends, and leads nowhere */
	{ "loop1", "example.com", "+", STORE_RESOLVE_NO_SUCH_USER, "" },
	/* "dave -> dave, bob": dave's own box and bob's */
	{ "dave", "example.com", "+", STORE_RESOLVE_OK,
	  "bob@example.com#bob,dave@example.com#dave" },
	/* plus-addressing, only with a delimiter */
	{ "alice+tag", "example.com", "+", STORE_RESOLVE_OK, "alice@example.com#alice" },
	{ "alice+tag", "example.com", "", STORE_RESOLVE_NO_SUCH_USER, "" },
	{ "alice+tag", "example.com", NULL, STORE_RESOLVE_NO_SUCH_USER, "" },
	/* the catch-all, which never hides an account */
	{ "random", "other.example", "+", STORE_RESOLVE_OK, "owner@other.example#owner" },
	{ "zed", "other.example", "+", STORE_RESOLVE_OK, "zed@other.example#zed" },
	/* RFC 5321 4.5.1: postmaster without account or alias */
	{ "postmaster", "example.com", "+", STORE_RESOLVE_OK, "postmaster@example.com#alice" },
	{ "PostMaster", "example.com", "+", STORE_RESOLVE_OK, "postmaster@example.com#alice" },
	/* alice twice (directly and through team): once */
	{ "dup", "example.com", "+", STORE_RESOLVE_OK,
	  "alice@example.com#alice,bob@example.com#bob" },
};

static int64_t account_of(struct store *s, const char *local)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM accounts WHERE localpart = ?", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, local, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The targets as "address#account", sorted: their order is not part of
 * the contract. */
static char *describe(struct store *s, const struct store_targets *t)
{
	char **v = xcalloc(t->count + 1, sizeof(*v));
	for (size_t i = 0; i < t->count; i++) {
		const char *who = "-";
		static const char *const locals[] = { "alice", "bob", "carol", "dave",
						      "owner", "zed" };
		for (size_t j = 0; j < ARRAY_SIZE(locals); j++) {
			if (t->v[i].account_id == account_of(s, locals[j]))
				who = locals[j];
		}
		if (t->v[i].account_id == 0)
			who = "-";
		v[i] = xasprintf("%s#%s", t->v[i].address, who);
	}
	qsort(v, t->count, sizeof(*v), cmp_str);
	char *out = joined(v);
	store_strv_free(&v);
	return out;
}

static void test_resolve(void)
{
	struct store *s = open_store();
	/* Account ids in order: alice is the domain's first account. */
	CHECK_OK(store_domain_add(s, "example.com", &error));
	CHECK_OK(store_domain_add(s, "other.example", &error));
	static const char *const accounts[] = { "alice@example.com", "bob@example.com",
		"carol@example.com", "dave@example.com", "owner@other.example",
		"zed@other.example" };
	for (size_t i = 0; i < ARRAY_SIZE(accounts); i++)
		CHECK_OK(store_user_add(s, accounts[i], "h", NULL, &error));
	static const char *const alias_pairs[][2] = {
		{ "team@example.com", "alice@example.com" },
		{ "team@example.com", "bob@example.com" },
		{ "fwd@example.com", "x@remote.example" },
		{ "chain1@example.com", "chain2@example.com" },
		{ "chain2@example.com", "carol@example.com" },
		{ "loop1@example.com", "loop2@example.com" },
		{ "loop2@example.com", "loop1@example.com" },
		{ "dave@example.com", "dave@example.com" },
		{ "dave@example.com", "bob@example.com" },
		{ "@other.example", "owner@other.example" },
		{ "dup@example.com", "alice@example.com" },
		{ "dup@example.com", "team@example.com" },
		{ "dup@example.com", "alice+x@example.com" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(alias_pairs); i++)
		CHECK_OK(store_alias_add(s, alias_pairs[i][0], alias_pairs[i][1], &error));

	struct store_reader *r = store_reader_new(s);
	CHECK(store_domain_is_local(r, "example.com"));
	CHECK(!store_domain_is_local(r, "remote.example"));
	for (size_t i = 0; i < ARRAY_SIZE(resolve_cases); i++) {
		const struct resolve_case *c = &resolve_cases[i];
		struct store_targets t;
		enum store_resolve_result res = store_resolve(r, c->local, c->domain,
							       c->delimiter, &t);
		char *got = describe(s, &t);
		if (res != c->result || strcmp(got, c->targets) != 0)
			fprintf(stderr, "resolve %s@%s (delimiter %s): result %d, want %d\n",
				c->local, c->domain, c->delimiter ? c->delimiter : "NULL",
				(int)res, (int)c->result);
		CHECK_INT(res, c->result);
		CHECK_STR(got, c->targets);
		free(got);
		store_targets_deinit(&t);
		CHECK(t.count == 0 && t.v == NULL);
	}
	store_reader_free(&r);
	CHECK(r == NULL);
	store_close(&s);
}

int main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	data_dir = xasprintf("%s/data", tmpdir);
	RUN(test_open);
	RUN(test_domains);
	RUN(test_users);
	RUN(test_mail);
	RUN(test_orphan_sweep);
	RUN(test_aliases);
	RUN(test_resolve);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(data_dir);
	return test_done();
}
