/* The admin subcommands: domains, users, aliases, a look into mailboxes and
 * the queue. Each is a thin layer over one store_*() call; this file owns
 * what is about the terminal: reading passwords, and printing rows so that
 * text from the outside (a Subject, a remote server's reply) can neither
 * break the one-row-per-line format nor send escape codes to the terminal. */
#include "cli/cli.h"
#include "auth/password.h"
#include "auth/sasl.h"
#include "core/util.h"
#include "mime/header.h"
#include "smtp/address.h"
#include "store/store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Longest password or hash line read from standard input, in bytes. */
#define CLI_SECRET_MAX 1024

static int fail(char *error)
{
	fprintf(stderr, "yubin: %s\n", error);
	free(error);
	return CLI_EXIT_FAIL;
}

/* Standard output is checked once at the end: a full disk or a closed pipe
 * makes a listing fail instead of looking complete. */
static int finish_output(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail(xasprintf("writing to standard output: %s", strerror(errno)));
	return CLI_EXIT_OK;
}

static int print_strv(char **v)
{
	for (size_t i = 0; v[i] != NULL; i++)
		printf("%s\n", v[i]);
	return finish_output();
}

/* ---- passwords ---- */

static struct termios saved_tio;
static volatile sig_atomic_t tio_changed;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void restore_tty(int sig)
{
	if (tio_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line from standard input into buf (NUL-terminated, without its
 * line end). read(2) byte by byte rather than stdio, so no copy of the
 * secret stays behind in a stdio buffer. Returns 0 or -1 with *error_r. */
static int read_line(char *buf, size_t size, size_t *len_r, char **error_r)
{
	size_t n = 0;
	bool got = false;
	for (;;) {
		char ch;
		ssize_t r = read(STDIN_FILENO, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = xasprintf("reading standard input: %s", strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		got = true;
		if (ch == '\n')
			break;
		if (ch == '\0') {
			*error_r = xstrdup("a NUL byte on standard input");
			return -1;
		}
		if (n + 1 >= size) {
			*error_r = xasprintf("line on standard input longer than %zu bytes",
					     size - 2);
			return -1;
		}
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (!got) {
		/* Nothing at all (not even a newline) is most likely a
		 * forgotten pipe; say so rather than "empty password". */
		*error_r = xstrdup("nothing on standard input");
		return -1;
	}
	*len_r = n;
	return 0;
}

/* Prompts on standard error and reads a line with echo off. */
static int read_tty_line(const char *prompt, char *buf, size_t size, size_t *len_r,
			 char **error_r)
{
	struct termios tio;
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0) {
		*error_r = xasprintf("terminal: %s", strerror(errno));
		return -1;
	}
	tio = saved_tio;
	tio.c_lflag &= ~(tcflag_t)ECHO;
	tio.c_lflag |= ECHONL;
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	signal(SIGQUIT, restore_tty);
	signal(SIGTSTP, SIG_IGN);
	fputs(prompt, stderr);
	fflush(stderr);
	tio_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) < 0) {
		tio_changed = 0;
		*error_r = xasprintf("terminal: %s", strerror(errno));
		return -1;
	}
	int r = read_line(buf, size, len_r, error_r);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_changed = 0;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTSTP, SIG_DFL);
	return r;
}

/* A new password from standard input, hashed: asked twice on a terminal,
 * else one line. The clear text is wiped before returning. */
static int read_password_hash(char **hash_r, char **scram_r, char **error_r)
{
	char pw[CLI_SECRET_MAX], again[CLI_SECRET_MAX];
	size_t len = 0, len2 = 0;
	int r = -1;

	if (isatty(STDIN_FILENO)) {
		if (read_tty_line("Password: ", pw, sizeof(pw), &len, error_r) < 0)
			goto out;
		if (read_tty_line("Password: ", again, sizeof(again), &len2, error_r) < 0)
			goto out;
		if (len != len2 || memcmp(pw, again, len) != 0) {
			*error_r = xstrdup("the passwords do not match");
			goto out;
		}
	} else if (read_line(pw, sizeof(pw), &len, error_r) < 0) {
		goto out;
	}
	if (len == 0) {
		*error_r = xstrdup("empty password");
		goto out;
	}
	if (password_hash(pw, len, hash_r) < 0) {
		*error_r = xstrdup("could not hash the password (out of memory)");
		goto out;
	}
	*scram_r = scram_make_record(pw, len);
	r = 0;
out:
	mem_wipe(pw, sizeof(pw));
	mem_wipe(again, sizeof(again));
	return r;
}

/* An existing hash from standard input (--hash), in the form to store. */
static int read_imported_hash(char **hash_r, char **error_r)
{
	char line[CLI_SECRET_MAX];
	size_t len = 0;
	const char *err = NULL;
	int r = -1;
	if (read_line(line, sizeof(line), &len, error_r) < 0)
		goto out;
	if (len == 0) {
		*error_r = xstrdup("empty password hash");
		goto out;
	}
	if (password_import(line, hash_r, &err) < 0) {
		*error_r = xasprintf("password hash: %s", err ? err : "not a known kind");
		goto out;
	}
	r = 0;
out:
	mem_wipe(line, sizeof(line));
	return r;
}

/* The hash to store and, for a typed password, its SCRAM record (else
 * *scram_r stays NULL). */
static int read_hash(struct cli *c, char **hash_r, char **scram_r, char **error_r)
{
	*scram_r = NULL;
	return c->hash ? read_imported_hash(hash_r, error_r) :
		read_password_hash(hash_r, scram_r, error_r);
}

static void free_secret(char **p)
{
	if (*p != NULL) {
		mem_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

/* ---- display ---- */

/* Makes text from a message or a peer printable on one line: RFC 2047
 * words decoded when asked, C0 and C1 controls and DEL turned into spaces
 * (tabs and line ends would break the columns; the others could drive the
 * terminal). A new string. */
static char *display(const char *s, bool decode)
{
	char *out = decode ? header_decode_2047(s) : xstrdup(s);
	unsigned char *r = (unsigned char *)out, *w = r;
	while (*r) {
		if (*r < 0x20 || *r == 0x7f) {
			*w++ = ' ';
			r++;
		} else if (r[0] == 0xc2 && r[1] >= 0x80 && r[1] <= 0x9f) {
			*w++ = ' ';	/* U+0080..U+009F in UTF-8 */
			r += 2;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return out;
}

static void utc_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, 32, "%lld", (long long)t);
}

/* ---- domains ---- */

int cli_domain_add(struct cli *c)
{
	char *error = NULL;
	if (store_domain_add(c->store, c->argv[0], &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_domain_del(struct cli *c)
{
	char *error = NULL;
	if (store_domain_del(c->store, c->argv[0], &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_domain_list(struct cli *c)
{
	char **names = NULL, *error = NULL;
	if (store_domain_list(c->store, &names, &error) < 0)
		return fail(error);
	int status = print_strv(names);
	store_strv_free(&names);
	return status;
}

/* ---- users ---- */

/* Before asking for a password, the checks that would refuse it anyway:
 * a valid address in one of our domains, not taken yet. store_user_add()
 * checks all of it again in its transaction. */
static int user_add_precheck(struct cli *c, const char *address, char **error_r)
{
	struct address a;
	const char *err = NULL;
	char **domains = NULL, *hash = NULL, *error = NULL;
	if (address_parse(address, 0, &a, &err) < 0) {
		*error_r = xasprintf("not a valid address: %s (%s)", address,
				     err ? err : "bad syntax");
		return -1;
	}
	int r = store_domain_list(c->store, &domains, error_r);
	if (r == 0) {
		bool ours = false;
		for (size_t i = 0; domains[i] != NULL; i++)
			ours = ours || strcmp(domains[i], a.domain) == 0;
		if (!ours) {
			*error_r = xasprintf("no such domain: %s", a.domain);
			r = -1;
		}
	}
	if (r == 0 && store_user_hash(c->store, address, &hash, &error) == 0) {
		*error_r = xasprintf("user already exists: %s", address);
		r = -1;
	}
	free(hash);
	free(error);
	store_strv_free(&domains);
	address_deinit(&a);
	return r;
}

int cli_user_add(struct cli *c)
{
	char *hash = NULL, *scram = NULL, *error = NULL;
	if (user_add_precheck(c, c->argv[0], &error) < 0 ||
	    read_hash(c, &hash, &scram, &error) < 0)
		return fail(error);
	int r = store_user_add(c->store, c->argv[0], hash, scram, &error);
	free_secret(&hash);
	free_secret(&scram);
	return r < 0 ? fail(error) : CLI_EXIT_OK;
}

int cli_user_del(struct cli *c)
{
	char *error = NULL;
	if (store_user_del(c->store, c->argv[0], &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_user_list(struct cli *c)
{
	char **v = NULL, *error = NULL;
	if (store_user_list(c->store, c->argc > 0 ? c->argv[0] : NULL, &v, &error) < 0)
		return fail(error);
	int status = print_strv(v);
	store_strv_free(&v);
	return status;
}

int cli_user_passwd(struct cli *c)
{
	char *hash = NULL, *error = NULL;
	/* "No such user" before the password is typed, not after. */
	if (store_user_hash(c->store, c->argv[0], &hash, &error) < 0)
		return fail(error);
	free(hash);
	hash = NULL;
	char *scram = NULL;
	if (read_hash(c, &hash, &scram, &error) < 0)
		return fail(error);
	int r = store_user_passwd(c->store, c->argv[0], hash, scram, &error);
	free_secret(&hash);
	free_secret(&scram);
	return r < 0 ? fail(error) : CLI_EXIT_OK;
}

/* ---- quotas ---- */

/* "500M", "2G", "100K", "1048576" (bytes; K, M, G, T are powers of 1024,
 * a final B is allowed), "0" or "none": no limit. Returns 0 or -1. */
static int parse_quota_size(const char *arg, bool bytes, uint64_t *v_r)
{
	if (str_ieq(arg, "none") || str_ieq(arg, "unlimited")) {
		*v_r = 0;
		return 0;
	}
	char *end = NULL;
	if (*arg < '0' || *arg > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno != 0)
		return -1;
	uint64_t mult = 1;
	if (bytes && *end) {
		switch (*end == 0 ? 0 : (*end | 0x20)) {
		case 'k': mult = 1ULL << 10; break;
		case 'm': mult = 1ULL << 20; break;
		case 'g': mult = 1ULL << 30; break;
		case 't': mult = 1ULL << 40; break;
		case 'b': mult = 1; end--; break;
		default: return -1;
		}
		end++;
		if ((*end | 0x20) == 'b')
			end++;
	}
	if (*end != '\0' || (v != 0 && mult > INT64_MAX / v))
		return -1;
	*v_r = (uint64_t)v * mult;
	return 0;
}

static void print_limit(uint64_t v)
{
	if (v)
		printf("\t%llu", (unsigned long long)v);
	else
		printf("\tnone");
}

/* user quota ADDRESS: shows limits and usage; with SIZE [MESSAGES], sets
 * them (MESSAGES left out: no message limit). */
int cli_user_quota(struct cli *c)
{
	char *error = NULL;
	if (c->argc > 1) {
		uint64_t storage, messages = 0;
		if (parse_quota_size(c->argv[1], true, &storage) < 0)
			return fail(xasprintf("not a size: %s (like 500M, 2G, or none)", c->argv[1]));
		if (c->argc > 2 && parse_quota_size(c->argv[2], false, &messages) < 0)
			return fail(xasprintf("not a number of messages: %s", c->argv[2]));
		if (store_user_quota_set(c->store, c->argv[0], storage, messages, &error) < 0)
			return fail(error);
		return CLI_EXIT_OK;
	}
	struct store_quota q;
	if (store_user_quota_show(c->store, c->argv[0], &q, &error) < 0)
		return fail(error);
	printf("ADDRESS\tSTORAGE\tSTORAGE_LIMIT\tMESSAGES\tMESSAGE_LIMIT\n");
	printf("%s\t%llu", c->argv[0], (unsigned long long)q.storage_used);
	print_limit(q.storage_limit);
	printf("\t%llu", (unsigned long long)q.messages_used);
	print_limit(q.message_limit);
	printf("\n");
	return finish_output();
}

/* ---- send-as addresses ---- */

int cli_sendas_add(struct cli *c)
{
	char *error = NULL;
	if (store_sendas_add(c->store, c->argv[0], c->argv[1], &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_sendas_del(struct cli *c)
{
	char *error = NULL;
	if (store_sendas_del(c->store, c->argv[0], c->argv[1], &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_sendas_list(struct cli *c)
{
	char **v = NULL, *error = NULL;
	if (store_sendas_list(c->store, c->argv[0], &v, &error) < 0)
		return fail(error);
	int status = print_strv(v);
	store_strv_free(&v);
	return status;
}

/* ---- aliases ---- */

int cli_alias_add(struct cli *c)
{
	char *error = NULL;
	/* The store adds one target per transaction. When one fails, the
	 * ones added before it are taken out again, so a failed command
	 * leaves the aliases as they were. */
	for (int i = 1; i < c->argc; i++) {
		if (store_alias_add(c->store, c->argv[0], c->argv[i], &error) < 0) {
			for (int j = 1; j < i; j++) {
				char *undo_error = NULL;
				if (store_alias_del(c->store, c->argv[0], c->argv[j],
						    &undo_error) < 0) {
					fprintf(stderr, "yubin: undoing %s %s: %s\n", c->argv[0],
						c->argv[j], undo_error);
					free(undo_error);
				}
			}
			return fail(error);
		}
	}
	return CLI_EXIT_OK;
}

int cli_alias_del(struct cli *c)
{
	char *error = NULL;
	if (store_alias_del(c->store, c->argv[0], c->argc > 1 ? c->argv[1] : NULL, &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_alias_list(struct cli *c)
{
	char **v = NULL, *error = NULL;
	if (store_alias_list(c->store, c->argc > 0 ? c->argv[0] : NULL, &v, &error) < 0)
		return fail(error);
	int status = print_strv(v);
	store_strv_free(&v);
	return status;
}

/* ---- mail and queue ---- */

int cli_mail_list(struct cli *c)
{
	struct store_mail_row *rows = NULL;
	size_t count = 0;
	char *error = NULL;
	if (store_mail_list(c->store, c->argv[0], c->argc > 1 ? c->argv[1] : NULL,
			    &rows, &count, &error) < 0)
		return fail(error);
	printf("UID\tDATE\tSIZE\tFROM\tSUBJECT\n");
	for (size_t i = 0; i < count; i++) {
		char date[32];
		utc_time(rows[i].internaldate, date);
		char *from = display(rows[i].from, true);
		char *subject = display(rows[i].subject, true);
		printf("%u\t%s\t%llu\t%s\t%s\n", rows[i].uid, date,
		       (unsigned long long)rows[i].size, from, subject);
		free(from);
		free(subject);
	}
	store_mail_rows_free(&rows, count);
	return finish_output();
}

int cli_mail_show(struct cli *c)
{
	uint64_t uid;
	char *error = NULL;
	if (str_to_u64(c->argv[2], &uid) < 0 || uid == 0 || uid > UINT32_MAX)
		return fail(xasprintf("not a valid UID: %s", c->argv[2]));
	if (store_mail_show(c->store, c->argv[0], c->argv[1], (uint32_t)uid,
			    STDOUT_FILENO, &error) < 0)
		return fail(error);
	return CLI_EXIT_OK;
}

int cli_queue_list(struct cli *c)
{
	struct store_queue_row *rows = NULL;
	size_t count = 0;
	char *error = NULL;
	if (store_queue_list(c->store, &rows, &count, &error) < 0)
		return fail(error);
	printf("QUEUE-ID\tCREATED\tATTEMPTS\tSENDER\tRECIPIENT\tLAST-ERROR\n");
	for (size_t i = 0; i < count; i++) {
		char date[32];
		utc_time(rows[i].created, date);
		char *sender = display(*rows[i].sender ? rows[i].sender : "<>", false);
		char *rcpt = display(rows[i].recipient, false);
		char *last = display(rows[i].last_error ? rows[i].last_error : "", false);
		printf("%s\t%s\t%u\t%s\t%s\t%s\n", rows[i].queue_id, date, rows[i].attempts,
		       sender, rcpt, last);
		free(sender);
		free(rcpt);
		free(last);
	}
	store_queue_rows_free(&rows, count);
	return finish_output();
}

static bool is_queue_id(const char *s)
{
	size_t n = strspn(s, "0123456789ABCDEFabcdef");
	return n == 16 && s[n] == '\0';
}

int cli_queue_show(struct cli *c)
{
	const char *id = c->argv[0];
	struct store_queue_row *rows = NULL;
	size_t count = 0, shown = 0;
	char *error = NULL;
	if (store_queue_list(c->store, &rows, &count, &error) < 0)
		return fail(error);
	const char *body = NULL;
	for (size_t i = 0; i < count; i++) {
		struct store_queue_row *q = &rows[i];
		if (!str_ieq(q->queue_id, id))
			continue;
		char created[32], next[32];
		utc_time(q->created, created);
		utc_time(q->next_attempt, next);
		if (shown++ == 0) {
			char *sender = display(*q->sender ? q->sender : "<>", false);
			printf("Queue-ID: %s\nSender: %s\nQueued: %s\nSize: %llu\n", q->queue_id,
			       sender, created, (unsigned long long)q->size);
			free(sender);
			body = q->body;
		}
		char *rcpt = display(q->recipient, false);
		char *last = display(q->last_error ? q->last_error : "", false);
		printf("Recipient: %s attempts=%u next=%s%s%s\n", rcpt, q->attempts, next,
		       *last ? " last-error=" : "", last);
		free(rcpt);
		free(last);
	}
	if (shown == 0) {
		store_queue_rows_free(&rows, count);
		return fail(xasprintf("%s: no such message in the queue", id));
	}
	printf("\n");
	fflush(stdout);
	int fd = store_body_open(c->store, body);
	int r = 0;
	if (fd < 0) {
		r = -1;
		error = xasprintf("%s: %s", body, strerror(errno));
	} else {
		char buf[65536];
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			if (write_full(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		close(fd);
	}
	store_queue_rows_free(&rows, count);
	return r < 0 ? fail(error) : finish_output();
}

int cli_queue_flush(struct cli *c)
{
	int n = 0;
	char *error = NULL;
	if (store_queue_flush(c->store, &n, &error) < 0)
		return fail(error);
	printf("%d recipient%s due now\n", n, n == 1 ? "" : "s");
	return finish_output();
}

/* queue delete|bounce ID [RECIPIENT] */
static int queue_change(struct cli *c, bool bounce)
{
	const char *id = c->argv[0], *rcpt = c->argc > 1 ? c->argv[1] : NULL;
	if (!is_queue_id(id))
		return fail(xasprintf("%s: not a queue id (16 hexadecimal digits, see yubin queue list)", id));
	int n = 0;
	char *error = NULL;
	if ((bounce ? store_queue_bounce : store_queue_delete)(c->store, id, rcpt, &n, &error) < 0)
		return fail(error);
	if (n == 0)
		return fail(xasprintf("%s%s%s: no such message in the queue", id,
				      rcpt ? " " : "", rcpt ? rcpt : ""));
	printf("%d recipient%s %s\n", n, n == 1 ? "" : "s",
	       bounce ? "to be bounced by the server" : "deleted");
	return finish_output();
}

int cli_queue_delete(struct cli *c)
{
	return queue_change(c, false);
}

int cli_queue_bounce(struct cli *c)
{
	return queue_change(c, true);
}
