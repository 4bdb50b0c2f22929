/* A POP3 server session: RFC 1939 with CAPA and response codes (RFC 2449,
 * RFC 3206), SASL AUTH (RFC 5034), STLS (RFC 2595) and UTF8 (RFC 6856).
 *
 * Commands are read as complete lines and run in order; replies are queued
 * on the output, which is all PIPELINING needs. A command that waits (a
 * password check, the expunge at QUIT, a message being sent) pauses input,
 * so pipelined commands run after it in order.
 *
 * RETR and TOP stream the message: one chunk of the body file is read and
 * written each time the output has drained (on_drain), so a large message
 * never sits in memory whole. */
#include "pop3/pop3.h"
#include "pop3/pop3_private.h"
#include "auth/auth.h"
#include "auth/sasl.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/header.h"
#include "net/net.h"
#include "smtp/address.h"
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>

enum pop3_state {
	POP3_AUTHORIZATION = 1 << 0,
	POP3_TRANSACTION = 1 << 1,
	POP3_UPDATE = 1 << 2,	/* QUIT is applying the deletions */
};

/* Body bytes read per chunk of a RETR or TOP. */
#define POP3_CHUNK (64 * 1024)
/* The most of a header read to decide whether it needs UTF-8 mode. */
#define POP3_HEADER_SCAN_MAX (256 * 1024)

/* A RETR or TOP being sent. */
struct pop3_send {
	bool active;
	int fd;
	const struct store_msg *msg;
	size_t prefix_pos;	/* bytes of msg->prefix already fed */
	struct pop3_filter filter;
	struct buf out;
	char *chunk;		/* POP3_CHUNK bytes read from the file */
};

struct pop3_session {
	struct conn *conn;	/* NULL once the connection is gone */
	char *id;		/* conn_id(), for logs after the connection */
	enum pop3_state state;
	unsigned errors;
	bool discarding;	/* in the middle of an overlong line */
	bool busy;		/* waiting for a password check or the store */
	bool utf8;		/* RFC 6856 UTF8 mode */

	/* AUTHORIZATION */
	char *user;		/* USER, waiting for PASS */
	struct sasl *sasl;	/* an AUTH exchange in progress */
	char *sasl_final;	/* SCRAM server-final sent; waiting for the empty answer */
	const char *mech;	/* for the log: "USER", "PLAIN", ... */

	/* TRANSACTION: the maildrop, fixed at login */
	int64_t account_id;
	char *account;
	bool locked;		/* holds the maildrop lock of account_id */
	bool counted;		/* holds one of account_id's session slots (auth.h) */
	bool cmd_clock;		/* command_timeout runs: a line has begun */
	int64_t mailbox_id;
	uint32_t uidvalidity;
	struct store_msg *msgs;
	size_t count;
	bool *deleted;
	size_t deleted_count;
	uint64_t total_size;
	uint64_t deleted_size;

	struct pop3_send send;
};

static const struct config *cfg;
static struct store *store;
static _Thread_local struct store_reader *tl_reader;

void pop3_init(const struct config *config, struct store *s)
{
	cfg = config;
	store = s;
}

void pop3_thread_deinit(void)
{
	store_reader_free(&tl_reader);
}

static struct store_reader *reader(void)
{
	if (tl_reader == NULL)
		tl_reader = store_reader_new(store);
	return tl_reader;
}

/* ---- the maildrop lock ---- */

/* Accounts with an open POP3 maildrop, over all I/O threads. RFC 1939 8
 * wants exclusive access: a second session of the same account would see
 * a message list that the first one's QUIT is about to change. The lock
 * lives in this process (see docs/pop3.md). */
static pthread_mutex_t drop_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t *drop_ids;
static size_t drop_count, drop_cap;

/* Returns 0 when the lock was taken, -1 when another session holds it. */
static int maildrop_lock(int64_t account_id)
{
	int r = 0;
	pthread_mutex_lock(&drop_lock);
	for (size_t i = 0; i < drop_count; i++) {
		if (drop_ids[i] == account_id) {
			r = -1;
			goto out;
		}
	}
	if (drop_count == drop_cap) {
		drop_cap = drop_cap ? drop_cap * 2 : 64;
		drop_ids = xrealloc(drop_ids, drop_cap * sizeof(*drop_ids));
	}
	drop_ids[drop_count++] = account_id;
out:
	pthread_mutex_unlock(&drop_lock);
	return r;
}

static void maildrop_unlock(int64_t account_id)
{
	pthread_mutex_lock(&drop_lock);
	for (size_t i = 0; i < drop_count; i++) {
		if (drop_ids[i] == account_id) {
			drop_ids[i] = drop_ids[--drop_count];
			break;
		}
	}
	if (drop_count == 0) {
		xfree(&drop_ids);
		drop_cap = 0;
	}
	pthread_mutex_unlock(&drop_lock);
}

/* ---- replies ---- */

static void ok(struct pop3_session *s, const char *fmt, ...) PRINTF(2, 3);
static void err(struct pop3_session *s, const char *fmt, ...) PRINTF(2, 3);

static void reply_line(struct pop3_session *s, const char *status, const char *fmt,
		       va_list ap, const char *tail) PRINTF(3, 0);

static void reply_line(struct pop3_session *s, const char *status, const char *fmt,
		       va_list ap, const char *tail)
{
	/* RFC 2449 4: a response line is at most 512 octets with CRLF. */
	char line[512];
	size_t max = sizeof(line) - strlen(status) - 1 - strlen(tail) - 2;
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > max)
		n = (int)max;
	log_debug("event=reply session=%s text=\"%s%s%.*s\"", conn_id(s->conn), status,
		  n ? " " : "", n, line);
	conn_printf(s->conn, "%s%s%.*s%s\r\n", status, n ? " " : "", n, line, tail);
}

static void ok(struct pop3_session *s, const char *fmt, ...)
{
	if (s->conn == NULL || conn_closing(s->conn))
		return;
	va_list ap;
	va_start(ap, fmt);
	reply_line(s, "+OK", fmt, ap, "");
	va_end(ap);
}

/* An -ERR reply. Each counts as an error: at max_errors the client is
 * told so in the same line and the connection is closed. */
static void err(struct pop3_session *s, const char *fmt, ...)
{
	if (s->conn == NULL || conn_closing(s->conn))
		return;
	bool last = ++s->errors >= cfg->max_errors;
	va_list ap;
	va_start(ap, fmt);
	reply_line(s, "-ERR", fmt, ap, last ? " (too many errors, closing)" : "");
	va_end(ap);
	if (last) {
		log_info("event=too_many_errors session=%s ip=%s errors=%u", conn_id(s->conn),
			 conn_peer_ip(s->conn), s->errors);
		conn_close(s->conn);
	}
}

/* ---- session state ---- */

static void auth_reset(struct pop3_session *s)
{
	sasl_free(&s->sasl);
	xfree(&s->sasl_final);
}

static void send_end(struct pop3_session *s)
{
	if (s->send.fd >= 0)
		close(s->send.fd);
	s->send.fd = -1;
	s->send.active = false;
	s->send.msg = NULL;
	buf_deinit(&s->send.out);
	xfree(&s->send.chunk);
}

static void maildrop_close(struct pop3_session *s)
{
	store_msgs_free(&s->msgs, s->count);
	xfree(&s->deleted);
	s->count = s->deleted_count = 0;
	s->total_size = s->deleted_size = 0;
	if (s->locked)
		maildrop_unlock(s->account_id);
	s->locked = false;
}

/* Gives the account's session slot back: on QUIT, autologout, a dropped
 * connection or shutdown, whichever comes first. */
static void session_release(struct pop3_session *s)
{
	if (s->counted)
		auth_session_release(s->account_id);
	s->counted = false;
}

static void session_free(struct pop3_session *s)
{
	session_release(s);
	send_end(s);
	auth_reset(s);
	maildrop_close(s);
	if (s->user)
		mem_wipe(s->user, strlen(s->user));
	free(s->user);
	free(s->account);
	free(s->id);
	free(s);
}

/* RFC 8314 and [server] plaintext_auth, as for SMTP submission: no
 * authentication at all on a connection that is neither TLS nor allowed
 * to be plain, so neither a password nor the mail after it crosses a
 * network in clear. */
static bool auth_allowed(struct pop3_session *s)
{
	if (conn_is_tls(s->conn))
		return true;
	switch (cfg->plaintext_auth) {
	case PLAINTEXT_AUTH_ALWAYS:
		return true;
	case PLAINTEXT_AUTH_LOOPBACK:
		return conn_peer_is_loopback(s->conn);
	case PLAINTEXT_AUTH_TLS:
		break;
	}
	return false;
}

static bool refuse_cleartext(struct pop3_session *s)
{
	if (auth_allowed(s))
		return false;
	/* RFC 3206 4: [AUTH] is about the credentials; the cure is TLS. */
	if (conn_tls_available())
		err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections, use STLS first");
	else
		err(s, "[AUTH] Plaintext authentication disallowed on non-secure connections");
	return true;
}

/* ---- arguments ---- */

/* A message number (RFC 1939 3: msg) of a message not marked as deleted.
 * Returns its index, or -1 after replying. */
static long msg_index(struct pop3_session *s, const char *arg)
{
	uint64_t n;
	if (pop3_msg_number(arg, &n) < 0) {
		err(s, "Invalid message number");
		return -1;
	}
	if (n == 0 || n > s->count) {
		err(s, "No such message");
		return -1;
	}
	if (s->deleted[n - 1]) {
		err(s, "Message %llu already deleted", (unsigned long long)n);
		return -1;
	}
	return (long)(n - 1);
}

/* The unique-id of RFC 1939 7: "UIDVALIDITY.UID", 0x21-0x7E, at most 21
 * octets. A UID is never given twice within one UIDVALIDITY, and a new
 * UIDVALIDITY is never an old one, so the pair is unique and stable for
 * as long as the message stays in the INBOX. */
static void unique_id(struct pop3_session *s, size_t i, char out[32])
{
	snprintf(out, 32, "%u.%u", s->uidvalidity, s->msgs[i].uid);
}

/* ---- AUTHORIZATION ---- */

static void cmd_capa(struct pop3_session *s, char *arg)
{
	if (*arg) {
		err(s, "Syntax: CAPA");
		return;
	}
	struct conn *c = s->conn;
	ok(s, "Capability list follows");
	conn_printf(c, "TOP\r\nUIDL\r\n");
	if (auth_allowed(s)) {
		conn_printf(c, "USER\r\n");
		conn_printf(c, "SASL %s\r\n", sasl_mechanisms(true));
	}
	conn_printf(c, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	/* RFC 2449 6.7: we never delete mail on our own. */
	conn_printf(c, "EXPIRE NEVER\r\n");
	conn_printf(c, "UTF8\r\n");
	if (s->state == POP3_AUTHORIZATION && !conn_is_tls(c) && conn_tls_available())
		conn_printf(c, "STLS\r\n");
	conn_printf(c, "IMPLEMENTATION yubin\r\n.\r\n");
}

/* Opens the maildrop after a successful authentication: lock, then read
 * the message list that stays fixed for the session (RFC 1939 4, 8). */
static void login(struct pop3_session *s, int64_t account_id, const char *address)
{
	if (maildrop_lock(account_id) < 0) {
		log_info("event=login_refused session=%s user=%s reason=in_use", conn_id(s->conn),
			 address);
		err(s, "[IN-USE] Mailbox is locked by another POP3 session");
		return;
	}
	s->account_id = account_id;
	s->locked = true;
	/* [limits] max_sessions_per_user, with IMAP. RFC 2449 8.1.2: IN-USE
	 * says the authentication succeeded and the maildrop is busy with
	 * other clients, which is the case: the account's own sessions fill
	 * it, and closing one cures it. Not SYS/TEMP (RFC 3206 4): that is a
	 * system failure the user can do nothing about. */
	uint32_t sessions;
	if (!auth_session_acquire(account_id, &sessions)) {
		log_info("event=login_refused session=%s protocol=pop3 user=%s "
			 "reason=max_sessions_per_user sessions=%u limit=%u", conn_id(s->conn),
			 address, sessions, auth_session_limit());
		maildrop_close(s);
		err(s, "[IN-USE] Too many sessions of this account (at most %u), close one first",
		    auth_session_limit());
		return;
	}
	s->counted = true;
	struct store_mailbox_info info;
	int r = store_mailbox_get(reader(), account_id, "INBOX", &info);
	if (r <= 0 || store_mailbox_messages(reader(), info.id, &s->msgs, &s->count) < 0) {
		log_error("event=maildrop_failed session=%s user=%s reason=%s", conn_id(s->conn),
			  address, r == 0 ? "no_inbox" : "store_error");
		session_release(s);
		maildrop_close(s);
		if (r == 0)
			err(s, "[SYS/PERM] The account has no INBOX");
		else
			err(s, "[SYS/TEMP] Cannot open the mailbox, try again later");
		return;
	}
	s->mailbox_id = info.id;
	s->uidvalidity = info.uidvalidity;
	s->deleted = xcalloc(s->count ? s->count : 1, sizeof(*s->deleted));
	for (size_t i = 0; i < s->count; i++)
		s->total_size += s->msgs[i].size;
	free(s->account);
	s->account = xstrdup(address);
	xfree(&s->user);
	s->state = POP3_TRANSACTION;
	/* Logged in: the login deadline ends; commands get their own. */
	conn_set_deadline(s->conn, 0);
	conn_set_timeout(s->conn, cfg->pop3_timeout);
	log_info("event=login session=%s user=%s mechanism=%s tls=%s messages=%zu size=%llu "
		 "sessions=%u", conn_id(s->conn), address, s->mech,
		 conn_is_tls(s->conn) ? "yes" : "no", s->count,
		 (unsigned long long)s->total_size, sessions);
	ok(s, "Logged in, %zu messages (%llu octets)", s->count,
	   (unsigned long long)s->total_size);
}

static void auth_done(void *arg, enum auth_result result, int64_t account_id,
		      const char *address)
{
	struct pop3_session *s = arg;
	s->busy = false;
	auth_reset(s);
	if (s->conn == NULL) {
		session_free(s);
		return;
	}
	switch (result) {
	case AUTH_OK:
		login(s, account_id, address);
		break;
	case AUTH_FAIL:
		xfree(&s->user);
		err(s, "[AUTH] Authentication failed");
		break;
	case AUTH_TEMPFAIL:
		xfree(&s->user);
		err(s, "[SYS/TEMP] Temporary authentication failure, try again later");
		break;
	}
	conn_resume_read(s->conn);
}

static void cmd_user(struct pop3_session *s, char *arg)
{
	if (refuse_cleartext(s))
		return;
	if (*arg == '\0') {
		err(s, "Syntax: USER name");
		return;
	}
	free(s->user);
	s->user = xstrdup(arg);
	/* Whether the user exists is not told (RFC 1939 13). */
	ok(s, "Send the password");
}

static void cmd_pass(struct pop3_session *s, char *arg)
{
	if (refuse_cleartext(s))
		return;
	if (s->user == NULL) {
		err(s, "Send USER first");
		return;
	}
	/* RFC 1939 7: the argument is the whole rest of the line, spaces
	 * included. */
	if (*arg == '\0') {
		err(s, "Syntax: PASS password");
		return;
	}
	s->mech = "USER";
	s->busy = true;
	conn_pause_read(s->conn);
	auth_check_password(conn_loop(s->conn), "pop3", conn_peer_ip(s->conn), s->user, arg,
			    auth_done, s);
}

/* The outcome of a mechanism step that is not a plain challenge goes
 * through auth/ for logging, throttling and the failure delay. */
static void auth_finish(struct pop3_session *s, bool success)
{
	const char *user = s->sasl && sasl_authcid(s->sasl) ? sasl_authcid(s->sasl) : "";
	s->busy = true;
	conn_pause_read(s->conn);
	auth_finish_external(conn_loop(s->conn), "pop3", conn_peer_ip(s->conn), user, success,
			     auth_done, s);
}

/* RFC 5034 4: a challenge is "+ " and base64, an empty one "+ ". */
static void challenge(struct pop3_session *s, const char *b64)
{
	log_debug("event=reply session=%s text=\"+ (challenge)\"", conn_id(s->conn));
	conn_printf(s->conn, "+ %s\r\n", b64);
}

static void sasl_next(struct pop3_session *s, const unsigned char *in, size_t len)
{
	struct buf ch, enc;
	const char *error = NULL;
	buf_init(&ch, 0);
	buf_init(&enc, 0);
	enum sasl_status st = sasl_step(s->sasl, in, len, &ch, &error);
	switch (st) {
	case SASL_CONTINUE:
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		challenge(s, enc.data ? enc.data : "");
		break;
	case SASL_CHECK_PASSWORD:
		s->busy = true;
		conn_pause_read(s->conn);
		auth_check_password(conn_loop(s->conn), "pop3", conn_peer_ip(s->conn),
				    sasl_authcid(s->sasl), sasl_password(s->sasl), auth_done, s);
		break;
	case SASL_OK:
		/* RFC 5034 4: +OK carries no data, so SCRAM's server-final
		 * goes in one more challenge, answered by an empty line. */
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		s->sasl_final = buf_steal(&enc, NULL);
		challenge(s, s->sasl_final ? s->sasl_final : "");
		break;
	case SASL_FAIL:
		log_info("event=sasl_failed session=%s reason=\"%s\"", conn_id(s->conn), error);
		auth_finish(s, false);
		break;
	}
	buf_deinit(&enc);
	mem_wipe(ch.data ? ch.data : (char *)"", ch.data ? ch.len : 0);
	buf_deinit(&ch);
}

/* A line answering a "+ " challenge. */
static void sasl_response(struct pop3_session *s, char *line)
{
	if (strcmp(line, "*") == 0) {
		auth_reset(s);
		err(s, "Authentication cancelled");
		return;
	}
	if (s->sasl_final != NULL) {
		if (*line == '\0') {
			auth_finish(s, true);
		} else {
			auth_reset(s);
			err(s, "Expected an empty line");
		}
		return;
	}
	struct buf dec;
	buf_init(&dec, SASL_RESPONSE_MAX);
	if (base64_decode(line, strlen(line), &dec) < 0) {
		/* RFC 5034 4: a response that is not base64 fails AUTH. */
		auth_reset(s);
		err(s, "Cannot decode the response");
	} else {
		sasl_next(s, (const unsigned char *)(dec.data ? dec.data : ""), dec.len);
	}
	mem_wipe(dec.data ? dec.data : (char *)"", dec.data ? dec.len : 0);
	buf_deinit(&dec);
}

static void cmd_auth(struct pop3_session *s, char *arg)
{
	if (refuse_cleartext(s))
		return;
	if (*arg == '\0') {
		/* Not in RFC 5034, but clients of the older draft ask for the
		 * mechanism list this way; it costs nothing to answer. */
		ok(s, "Supported mechanisms follow");
		const char *m = sasl_mechanisms(true);
		while (*m) {
			size_t n = strcspn(m, " ");
			conn_printf(s->conn, "%.*s\r\n", (int)n, m);
			m += n;
			while (*m == ' ')
				m++;
		}
		conn_printf(s->conn, ".\r\n");
		return;
	}
	char *initial = strchr(arg, ' ');
	if (initial)
		*initial++ = '\0';
	static const struct sasl_lookup lookup = { auth_scram_record, NULL };
	s->sasl = sasl_new(arg, &lookup);
	if (s->sasl == NULL) {
		err(s, "Unsupported authentication mechanism");
		return;
	}
	xfree(&s->user);
	s->mech = str_ieq(arg, "PLAIN") ? "PLAIN" : str_ieq(arg, "LOGIN") ? "LOGIN" :
		  "SCRAM-SHA-256";
	if (initial == NULL) {
		sasl_next(s, NULL, 0);
		return;
	}
	/* RFC 5034 4: "=" is an empty initial response. */
	if (strcmp(initial, "=") == 0) {
		sasl_next(s, (const unsigned char *)"", 0);
		return;
	}
	sasl_response(s, initial);
}

static void cmd_apop(struct pop3_session *s, char *arg)
{
	/* APOP needs the password in clear text on the server; we keep
	 * only hashes (docs/pop3.md). */
	err(s, "APOP is not supported, use USER/PASS or AUTH over TLS");
}

static void cmd_stls(struct pop3_session *s, char *arg)
{
	if (*arg) {
		err(s, "Syntax: STLS");
		return;
	}
	if (conn_is_tls(s->conn)) {
		err(s, "Command not permitted when TLS active");
		return;
	}
	if (!conn_tls_available()) {
		err(s, "TLS is not available");
		return;
	}
	if (s->utf8) {
		/* RFC 6856 2.1: STLS after UTF8 may be refused. */
		err(s, "STLS is not permitted after UTF8");
		return;
	}
	ok(s, "Begin TLS negotiation");
	/* RFC 2595 4: whatever the client sent after STLS in the clear is
	 * dropped (conn_starttls), and what it said before is forgotten. */
	if (conn_starttls(s->conn) < 0) {
		conn_close(s->conn);
		return;
	}
	xfree(&s->user);
	auth_reset(s);
}

static void cmd_utf8(struct pop3_session *s, char *arg)
{
	if (*arg) {
		err(s, "Syntax: UTF8");
		return;
	}
	s->utf8 = true;
	ok(s, "UTF-8 mode enabled");
}

/* ---- TRANSACTION ---- */

static void cmd_stat(struct pop3_session *s, char *arg)
{
	if (*arg) {
		err(s, "Syntax: STAT");
		return;
	}
	ok(s, "%zu %llu", s->count - s->deleted_count,
	   (unsigned long long)(s->total_size - s->deleted_size));
}

static void cmd_list(struct pop3_session *s, char *arg)
{
	char *argv[1];
	int argc = pop3_split_args(arg, argv, 1);
	if (argc < 0) {
		err(s, "Syntax: LIST [msg]");
		return;
	}
	if (argc == 1) {
		long i = msg_index(s, argv[0]);
		if (i >= 0)
			ok(s, "%ld %llu", i + 1, (unsigned long long)s->msgs[i].size);
		return;
	}
	ok(s, "%zu messages (%llu octets)", s->count - s->deleted_count,
	   (unsigned long long)(s->total_size - s->deleted_size));
	struct evbuffer *out = evbuffer_new();
	for (size_t i = 0; i < s->count; i++) {
		if (!s->deleted[i])
			evbuffer_add_printf(out, "%zu %llu\r\n", i + 1,
					    (unsigned long long)s->msgs[i].size);
	}
	evbuffer_add(out, ".\r\n", 3);
	size_t len = evbuffer_get_length(out);
	conn_write(s->conn, evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
}

static void cmd_uidl(struct pop3_session *s, char *arg)
{
	char *argv[1], id[32];
	int argc = pop3_split_args(arg, argv, 1);
	if (argc < 0) {
		err(s, "Syntax: UIDL [msg]");
		return;
	}
	if (argc == 1) {
		long i = msg_index(s, argv[0]);
		if (i >= 0) {
			unique_id(s, (size_t)i, id);
			ok(s, "%ld %s", i + 1, id);
		}
		return;
	}
	ok(s, "Unique-ID listing follows");
	struct evbuffer *out = evbuffer_new();
	for (size_t i = 0; i < s->count; i++) {
		if (s->deleted[i])
			continue;
		unique_id(s, i, id);
		evbuffer_add_printf(out, "%zu %s\r\n", i + 1, id);
	}
	evbuffer_add(out, ".\r\n", 3);
	size_t len = evbuffer_get_length(out);
	conn_write(s->conn, evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
}

static void cmd_dele(struct pop3_session *s, char *arg)
{
	char *argv[1];
	if (pop3_split_args(arg, argv, 1) != 1) {
		err(s, "Syntax: DELE msg");
		return;
	}
	long i = msg_index(s, argv[0]);
	if (i < 0)
		return;
	s->deleted[i] = true;
	s->deleted_count++;
	s->deleted_size += s->msgs[i].size;
	ok(s, "Message %ld deleted", i + 1);
}

static void cmd_rset(struct pop3_session *s, char *arg)
{
	if (*arg) {
		err(s, "Syntax: RSET");
		return;
	}
	memset(s->deleted, 0, (s->count ? s->count : 1) * sizeof(*s->deleted));
	s->deleted_count = 0;
	s->deleted_size = 0;
	ok(s, "Maildrop has %zu messages (%llu octets)", s->count,
	   (unsigned long long)s->total_size);
}

static void cmd_noop(struct pop3_session *s, char *arg)
{
	if (*arg)
		err(s, "Syntax: NOOP");
	else
		ok(s, "Still here");
}

/* Reads the next piece of the message into the filter's output. Returns
 * 1 when the message is complete, 0 for more, -1 on a read error. */
static int send_fill(struct pop3_session *s)
{
	struct pop3_send *o = &s->send;
	const struct store_msg *m = o->msg;
	while (o->out.len < POP3_CHUNK && !o->filter.done) {
		if (o->prefix_pos < m->prefix_len) {
			o->prefix_pos += pop3_filter_feed(&o->filter, m->prefix + o->prefix_pos,
							  m->prefix_len - o->prefix_pos, &o->out);
			continue;
		}
		ssize_t n = read(o->fd, o->chunk, POP3_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		pop3_filter_feed(&o->filter, o->chunk, (size_t)n, &o->out);
	}
	if (o->out.len < POP3_CHUNK || o->filter.done) {
		pop3_filter_finish(&o->filter, &o->out);
		return 1;
	}
	return 0;
}

/* Writes the next chunk of a RETR or TOP: on start, then on each drain. */
static void send_more(struct pop3_session *s)
{
	struct pop3_send *o = &s->send;
	buf_reset(&o->out);
	int r = send_fill(s);
	if (r < 0) {
		/* The +OK is out: the only honest end now is to close before
		 * the terminating dot, so the client keeps the message. */
		log_error("event=message_read_failed session=%s uid=%u file=%s error=\"%s\"",
			  conn_id(s->conn), o->msg->uid, o->msg->body, strerror(errno));
		send_end(s);
		conn_close(s->conn);
		return;
	}
	conn_write(s->conn, o->out.data, o->out.len);
	if (r == 0)
		return;
	send_end(s);
	conn_resume_read(s->conn);
}

/* Whether message i has a header that needs UTF-8 mode (RFC 6856 2.1):
 * non-ASCII that is well-formed UTF-8 (RFC 6532). Bytes that are not
 * UTF-8 are legacy 8-bit junk, not an internationalised message, and are
 * sent as they always were. Reads the header from fd (offset 0). Returns
 * 1, 0, or -1 on a read error. */
static int header_needs_utf8(const struct store_msg *m, int fd)
{
	struct buf h;
	buf_init(&h, 0);
	buf_append(&h, m->prefix, m->prefix_len);
	char tmp[8192];
	off_t off = 0;
	int r = 0;
	for (;;) {
		size_t hl = header_block_len(h.data, h.len);
		if (hl < h.len || h.len >= POP3_HEADER_SCAN_MAX)
			break;
		ssize_t n = pread(fd, tmp, sizeof(tmp), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -1;
			goto out;
		}
		if (n == 0)
			break;
		buf_append(&h, tmp, (size_t)n);
		off += n;
	}
	size_t hl = header_block_len(h.data, h.len);
	bool high = false;
	for (size_t i = 0; i < hl && !high; i++)
		high = (unsigned char)h.data[i] >= 0x80;
	r = high && utf8_valid(h.data, hl) ? 1 : 0;
out:
	buf_deinit(&h);
	return r;
}

static void send_message(struct pop3_session *s, long i, bool top, uint64_t lines)
{
	const struct store_msg *m = &s->msgs[i];
	int fd = store_msg_open(store, m);
	if (fd < 0) {
		int e = errno;
		log_error("event=message_open_failed session=%s uid=%u file=%s error=\"%s\"",
			  conn_id(s->conn), m->uid, m->body, strerror(e));
		if (e == ENOENT)
			/* Expunged meanwhile by IMAP, and nobody else held it. */
			err(s, "Message %ld was removed by another session", i + 1);
		else
			err(s, "[SYS/TEMP] Cannot read message %ld, try again later", i + 1);
		return;
	}
	if (!s->utf8) {
		int r = header_needs_utf8(m, fd);
		if (r != 0) {
			close(fd);
			if (r > 0)
				err(s, "[UTF8] Message %ld has a UTF-8 header, send UTF8 first", i + 1);
			else
				err(s, "[SYS/TEMP] Cannot read message %ld, try again later", i + 1);
			return;
		}
	}
	struct pop3_send *o = &s->send;
	o->active = true;
	o->fd = fd;
	o->msg = m;
	o->prefix_pos = 0;
	pop3_filter_init(&o->filter, top, lines);
	buf_init(&o->out, 0);
	o->chunk = xmalloc(POP3_CHUNK);
	if (top)
		ok(s, "Top of message %ld follows", i + 1);
	else
		ok(s, "%llu octets", (unsigned long long)m->size);
	log_debug("event=%s session=%s uid=%u size=%llu", top ? "top" : "retr", conn_id(s->conn),
		  m->uid, (unsigned long long)m->size);
	/* Nothing else is read until the message is out: a pipelined
	 * command's reply must come after it. */
	conn_pause_read(s->conn);
	send_more(s);
}

static void cmd_retr(struct pop3_session *s, char *arg)
{
	char *argv[1];
	if (pop3_split_args(arg, argv, 1) != 1) {
		err(s, "Syntax: RETR msg");
		return;
	}
	long i = msg_index(s, argv[0]);
	if (i >= 0)
		send_message(s, i, false, 0);
}

static void cmd_top(struct pop3_session *s, char *arg)
{
	char *argv[2];
	uint64_t lines;
	if (pop3_split_args(arg, argv, 2) != 2) {
		err(s, "Syntax: TOP msg n");
		return;
	}
	long i = msg_index(s, argv[0]);
	if (i < 0)
		return;
	if (str_to_u64(argv[1], &lines) < 0) {
		err(s, "Invalid number of lines");
		return;
	}
	send_message(s, i, true, lines);
}

/* ---- QUIT and UPDATE ---- */

static void bye(struct pop3_session *s, size_t removed)
{
	log_info("event=logout session=%s user=%s deleted=%zu left=%zu", conn_id(s->conn),
		 s->account, removed, s->count - removed);
	/* Free before the client hears +OK, so it can log in again at once. */
	session_release(s);
	ok(s, "Bye, %zu messages deleted, %zu left", removed, s->count - removed);
	conn_close(s->conn);
}

static void update_done(void *arg, int result)
{
	struct pop3_session *s = arg;
	s->busy = false;
	if (s->conn == NULL) {
		/* Gone while the store worked: the deletions happened (or
		 * not) all the same; nobody to tell. */
		log_info("event=update session=%s user=%s deleted=%zu result=%s", s->id,
			 s->account, s->deleted_count, result == 0 ? "ok" : "failed");
		session_free(s);
		return;
	}
	if (result == 0) {
		bye(s, s->deleted_count);
		return;
	}
	/* RFC 1939 6: the store kept every message (one transaction). */
	log_error("event=update_failed session=%s user=%s deleted=%zu", conn_id(s->conn),
		  s->account, s->deleted_count);
	conn_printf(s->conn, "-ERR [SYS/TEMP] Some deleted messages not removed, try again later\r\n");
	conn_close(s->conn);
}

static void cmd_quit(struct pop3_session *s, char *arg)
{
	if (s->state == POP3_AUTHORIZATION) {
		ok(s, "Bye");
		conn_close(s->conn);
		return;
	}
	/* RFC 1939 6: the UPDATE state; deletions happen here and only
	 * here, all in one transaction. */
	s->state = POP3_UPDATE;
	if (s->deleted_count == 0) {
		bye(s, 0);
		return;
	}
	uint32_t *uids = xmalloc(s->deleted_count * sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < s->count; i++) {
		if (s->deleted[i])
			uids[n++] = s->msgs[i].uid;
	}
	s->busy = true;
	conn_pause_read(s->conn);
	store_expunge(store, s->mailbox_id, uids, n, conn_loop(s->conn), update_done, s);
	free(uids);
}

/* ---- commands ---- */

struct pop3_command {
	const char *verb;
	unsigned states;	/* enum pop3_state bits it is valid in */
	void (*fn)(struct pop3_session *s, char *arg);
};

#define AUTHZ POP3_AUTHORIZATION
#define TRANS POP3_TRANSACTION

static const struct pop3_command commands[] = {
	{ "CAPA", AUTHZ | TRANS, cmd_capa },
	{ "QUIT", AUTHZ | TRANS, cmd_quit },
	{ "USER", AUTHZ, cmd_user },
	{ "PASS", AUTHZ, cmd_pass },
	{ "AUTH", AUTHZ, cmd_auth },
	{ "APOP", AUTHZ, cmd_apop },
	{ "STLS", AUTHZ, cmd_stls },
	{ "UTF8", AUTHZ, cmd_utf8 },
	{ "STAT", TRANS, cmd_stat },
	{ "LIST", TRANS, cmd_list },
	{ "RETR", TRANS, cmd_retr },
	{ "DELE", TRANS, cmd_dele },
	{ "NOOP", TRANS, cmd_noop },
	{ "RSET", TRANS, cmd_rset },
	{ "TOP", TRANS, cmd_top },
	{ "UIDL", TRANS, cmd_uidl },
};

static void run_command(struct pop3_session *s, char *line)
{
	size_t verb_len = strcspn(line, " ");
	char *arg = pop3_line_split(line);
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_debug("event=command session=%s verb=%.*s", conn_id(s->conn),
			  (int)(verb_len > 8 ? 8 : verb_len), line);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		const struct pop3_command *cmd = &commands[i];
		if (!str_ieq(line, cmd->verb))
			continue;
		if (!(cmd->states & s->state)) {
			err(s, "%s is not valid in the %s state", cmd->verb,
			    s->state == POP3_AUTHORIZATION ? "AUTHORIZATION" : "TRANSACTION");
			return;
		}
		/* Arguments are separated by single spaces (RFC 1939 3);
		 * trailing blanks are forgiven, except in PASS, whose
		 * argument is the rest of the line as it is. */
		if (cmd->fn != cmd_pass)
			pop3_trim_blanks(arg);
		cmd->fn(s, arg);
		return;
	}
	err(s, "Unknown command");
}

/* Takes the next line from in. Returns 1 with *line_r (a new string
 * without CRLF), 0 when more input is needed, -1 after replying to a bad
 * line (it is consumed). */
static int read_line(struct pop3_session *s, struct evbuffer *in, char **line_r)
{
	switch (pop3_line_read(in, s->sasl != NULL, &s->discarding, line_r)) {
	case POP3_LINE_OK:
		return 1;
	case POP3_LINE_MORE:
		return 0;
	case POP3_LINE_TOO_LONG:
		if (s->sasl != NULL) {
			auth_reset(s);
			err(s, "Authentication response too long");
		} else {
			err(s, "Line too long");
		}
		return -1;
	case POP3_LINE_BAD:
		break;
	}
	if (s->sasl != NULL)
		auth_reset(s);
	err(s, "Bad characters in command");
	return -1;
}

/* Once logged in, a line must arrive whole within command_timeout from
 * its first byte (before login, login_timeout bounds everything): the
 * idle timeout alone would let a client dribble a byte now and then and
 * hold the session for ever. */
static void command_clock(struct pop3_session *s, bool running)
{
	if (s->state != POP3_TRANSACTION || s->cmd_clock == running)
		return;
	s->cmd_clock = running;
	conn_set_deadline(s->conn, running ? cfg->command_timeout : 0);
}

static void on_read(struct conn *c)
{
	struct pop3_session *s = conn_data(c);
	struct evbuffer *in = conn_input(c);
	while (!s->busy && !s->send.active && s->state != POP3_UPDATE && !conn_closing(c) &&
	       evbuffer_get_length(in) > 0) {
		char *line = NULL;
		command_clock(s, true);
		int r = read_line(s, in, &line);
		if (r == 0)
			return;
		command_clock(s, false);
		if (r > 0) {
			if (s->sasl != NULL)
				sasl_response(s, line);
			else
				run_command(s, line);
			mem_wipe(line, strlen(line));
			free(line);
		}
		/* STLS replaced the input buffer. */
		in = conn_input(c);
	}
}

static void on_drain(struct conn *c)
{
	struct pop3_session *s = conn_data(c);
	if (s != NULL && s->send.active && !conn_closing(c))
		send_more(s);
}

static void on_open(struct conn *c)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	s->conn = c;
	s->id = xstrdup(conn_id(c));
	s->state = POP3_AUTHORIZATION;
	s->send.fd = -1;
	s->mech = "";
	conn_set_data(c, s);
	/* RFC 1939 3's 10 minutes are an autologout timer, for a session
	 * logged in; before that the client must log in within
	 * login_timeout, however it trickles its bytes. */
	conn_set_timeout(c, cfg->pop3_timeout < cfg->login_timeout ? cfg->pop3_timeout :
			 cfg->login_timeout);
	conn_set_deadline(c, cfg->login_timeout);
	/* No "<...>" timestamp: APOP is not offered (RFC 1939 7). */
	conn_printf(c, "+OK %s POP3 server ready (yubin)\r\n", cfg->hostname);
}

static void on_timeout(struct conn *c)
{
	struct pop3_session *s = conn_data(c);
	const char *why = "Autologout: idle for too long";
	if (s != NULL && s->state == POP3_AUTHORIZATION) {
		log_info("event=login_timeout session=%s ip=%s seconds=%u", conn_id(c),
			 conn_peer_ip(c), cfg->login_timeout);
		why = "Not logged in in time, closing";
	} else if (s != NULL && s->cmd_clock) {
		log_info("event=command_timeout session=%s user=%s seconds=%u", conn_id(c),
			 s->account, cfg->command_timeout);
		why = "Command not completed in time, closing";
	} else if (s != NULL && s->state == POP3_TRANSACTION) {
		/* RFC 1939 3: an autologout enters no UPDATE state; nothing
		 * is deleted. */
		log_info("event=autologout session=%s user=%s", conn_id(c), s->account);
	}
	if (s != NULL)
		session_release(s);
	/* In the middle of a message (the client stopped reading), a
	 * status line would only corrupt it: just close. */
	if (s == NULL || !s->send.active)
		conn_printf(c, "-ERR %s\r\n", why);
	conn_close(c);
}

static void on_close(struct conn *c, enum conn_close_reason reason)
{
	struct pop3_session *s = conn_data(c);
	if (s == NULL)
		return;
	if (s->state == POP3_TRANSACTION)
		log_info("event=session_dropped session=%s user=%s reason=%s deleted=0", conn_id(c),
			 s->account, reason == CONN_CLOSE_SHUTDOWN ? "shutdown" :
			 reason == CONN_CLOSE_LOCAL ? "closed" : "disconnect");
	session_release(s);
	s->conn = NULL;
	if (!s->busy)
		session_free(s);
}

const struct conn_handler pop3_conn_handler = {
	.on_open = on_open,
	.on_read = on_read,
	.on_timeout = on_timeout,
	.on_drain = on_drain,
	.on_close = on_close,
	.busy_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
};
