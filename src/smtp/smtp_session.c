/* An SMTP server session: RFC 5321 with PIPELINING (RFC 2920), SIZE
 * (RFC 1870), 8BITMIME (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034/3463),
 * SMTPUTF8 (RFC 6531), CHUNKING (RFC 3030) and STARTTLS (RFC 3207).
 *
 * Commands are read as complete lines from the connection's input and run
 * in order; replies are queued on the output, which is what PIPELINING
 * needs. A command that waits for the store (the end of DATA) pauses input
 * until its answer is written, so pipelined commands after it run after. */
#include "smtp/smtp.h"
#include "auth/auth.h"
#include "auth/sasl.h"
#include "mime/addrlist.h"
#include "smtp/address.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_line.h"
#include "smtp/smtp_spf.h"
#include "smtp/smtp_mailauth.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/header.h"
#include "net/net.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

enum smtp_state {
	SMTP_INIT = 1 << 0,	/* before HELO/EHLO */
	SMTP_READY = 1 << 1,	/* no transaction */
	SMTP_MAIL = 1 << 2,	/* after MAIL */
	SMTP_RCPT = 1 << 3,	/* after a good RCPT */
	SMTP_DATA = 1 << 4,	/* reading DATA */
	SMTP_BDAT = 1 << 5,	/* between BDAT chunks */
	SMTP_CHUNK = 1 << 6,	/* reading a BDAT chunk */
};
#define SMTP_ANY (SMTP_INIT | SMTP_READY | SMTP_MAIL | SMTP_RCPT | SMTP_BDAT)

struct smtp_rcpt {
	char *address;		/* as given, for logs and "for <...>" */
	struct store_targets targets;
};

struct smtp_session {
	struct conn *conn;	/* NULL once the connection is gone */
	enum smtp_state state;
	char *helo;
	bool esmtp;
	unsigned errors;
	bool discarding;	/* in the middle of an overlong line */
	bool busy;		/* waiting for the store or a password check */
	bool submission;	/* [submission] or [submissions]: AUTH, relay for users */
	/* port 25: SPF of the transaction's MAIL FROM (or HELO for <>), run
	 * from MAIL FROM on; smtp_spf_result(s->spf) and its siblings are
	 * what Authentication-Results and DMARC take at the end of DATA */
	struct smtp_spf *spf;
	bool spf_waiting;	/* busy only for the SPF result: a close may free */
	bool mailauth_waiting;	/* busy only for DKIM/DMARC lookups: the same */

	/* authentication (RFC 4954) */
	int64_t account_id;	/* > 0 once authenticated */
	char *account;		/* its address */
	struct sasl *sasl;	/* an AUTH exchange in progress */
	char *sasl_final;	/* SCRAM server-final sent; waiting for the empty answer */

	/* the transaction */
	char *sender;		/* "" for <> */
	bool sender_utf8;
	bool smtputf8;
	bool body_8bit;
	uint64_t declared_size;	/* MAIL SIZE= (RFC 1870), 0: none */
	struct smtp_rcpt *rcpts;
	size_t rcpt_count;
	unsigned rcpt_failures;
	struct store_delivery *delivery;
	struct smtp_data_parser data;
	struct buf data_out;
	bool too_big;
	bool write_failed;
	uint64_t chunk_left;
	bool chunk_last;
	bool chunk_discard;	/* read and drop the chunk (a refused BDAT) */
	bool chunk_cr;		/* the last chunk byte written was a CR */
	const char *chunk_reply; /* what to answer once it is dropped */
	enum smtp_state chunk_prev; /* the state to go back to after that */
	/* submission: the header is held until it is complete, to check
	 * From: and add Message-ID:/Date: (RFC 6409 8) */
	bool header_pending;
	struct buf header;
	const char *header_refuse;	/* why the message will be refused */
	/* port 25: SPF/DKIM/DMARC and Authentication-Results (the header
	 * is held too, to remove forged Authentication-Results) */
	struct smtp_mailauth *mailauth;
};

/* The most of a submitted message's header held back for checking. */
#define SUBMIT_HEADER_MAX (256 * 1024)

static const struct config *cfg;
static struct store *store;
static _Thread_local struct store_reader *tl_reader;

void smtp_init(const struct config *config, struct store *s)
{
	cfg = config;
	store = s;
}

void smtp_thread_deinit(void)
{
	store_reader_free(&tl_reader);
}

static struct store_reader *reader(void)
{
	if (tl_reader == NULL)
		tl_reader = store_reader_new(store);
	return tl_reader;
}

/* ---- replies ---- */

static void reply(struct smtp_session *s, const char *fmt, ...) PRINTF(2, 3);

/* Writes one reply line. Replies 5xx count as errors: past max_errors the
 * client is told so and disconnected (RFC 5321 4.3.2 allows 421 at any time). */
static void reply(struct smtp_session *s, const char *fmt, ...)
{
	if (s->conn == NULL || conn_closing(s->conn))
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	log_debug("event=reply session=%s text=\"%.*s\"", conn_id(s->conn), n, line);
	memcpy(line + n, "\r\n", 2);
	conn_write(s->conn, line, (size_t)n + 2);
	if (line[0] == '5' && ++s->errors >= cfg->max_errors) {
		log_info("event=too_many_errors session=%s ip=%s errors=%u", conn_id(s->conn),
			 conn_peer_ip(s->conn), s->errors);
		conn_printf(s->conn, "421 4.7.0 %s Error: too many errors\r\n", cfg->hostname);
		conn_close(s->conn);
	}
}

/* ---- transaction ---- */

static void transaction_reset(struct smtp_session *s)
{
	xfree(&s->sender);
	smtp_spf_free(&s->spf);
	for (size_t i = 0; i < s->rcpt_count; i++) {
		free(s->rcpts[i].address);
		store_targets_deinit(&s->rcpts[i].targets);
	}
	xfree(&s->rcpts);
	s->rcpt_count = 0;
	s->rcpt_failures = 0;
	s->sender_utf8 = s->smtputf8 = s->body_8bit = false;
	s->declared_size = 0;
	store_delivery_abort(&s->delivery);
	buf_deinit(&s->data_out);
	buf_deinit(&s->header);
	s->header_pending = false;
	s->header_refuse = NULL;
	smtp_mailauth_free(&s->mailauth);
	s->too_big = s->write_failed = false;
	s->chunk_left = 0;
	s->chunk_last = false;
	s->state = s->helo ? SMTP_READY : SMTP_INIT;
}

static void auth_reset(struct smtp_session *s)
{
	sasl_free(&s->sasl);
	xfree(&s->sasl_final);
}

static void session_free(struct smtp_session *s)
{
	transaction_reset(s);
	auth_reset(s);
	free(s->account);
	free(s->helo);
	free(s);
}

/* ---- submission policy ---- */

/* RFC 8314 and [server] plaintext_auth: no AUTH at all on a connection
 * that is neither TLS nor allowed to be plain (loopback), so a password
 * never crosses a network in clear. */
static bool auth_allowed(struct smtp_session *s)
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

/* Messages per hour per account: a token bucket refilled continuously. */
struct rate {
	struct rate *next;
	int64_t account_id;
	double tokens;
	int64_t last_ms;
};
#define RATE_BUCKETS 256
static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rate *rates[RATE_BUCKETS];

/* Whether the account may send one more message now; consume takes it. */
static bool rate_ok(int64_t account_id, bool consume)
{
	uint32_t limit = cfg->submission_messages_per_hour;
	if (limit == 0)
		return true;
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&rate_lock);
	struct rate **pr = &rates[(uint64_t)account_id % RATE_BUCKETS], *r;
	for (r = *pr; r && r->account_id != account_id; r = r->next)
		;
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->account_id = account_id;
		r->tokens = limit;
		r->last_ms = now;
		r->next = *pr;
		*pr = r;
	}
	r->tokens += (double)(now - r->last_ms) * limit / 3600000.0;
	if (r->tokens > limit)
		r->tokens = limit;
	r->last_ms = now;
	bool ok = r->tokens >= 1.0;
	if (ok && consume)
		r->tokens -= 1.0;
	pthread_mutex_unlock(&rate_lock);
	return ok;
}

static bool may_send_as(struct smtp_session *s, const char *address)
{
	return store_may_send_as(reader(), s->account_id, s->account, address,
				 cfg->recipient_delimiter);
}

/* ---- commands ---- */

static void cmd_helo(struct smtp_session *s, char *arg, bool ehlo)
{
	if (*arg == '\0' || strpbrk(arg, " \t") != NULL) {
		reply(s, "501 5.5.4 Syntax: %s hostname", ehlo ? "EHLO" : "HELO");
		return;
	}
	/* The name goes into our Received field (RFC 5321 4.4). Its syntax
	 * is not checked (clients send all sorts), but control characters
	 * and invalid UTF-8 (RFC 6531 3.7.1 allows U-labels only) are
	 * refused: they would reach the stored header as they are. */
	for (const unsigned char *p = (const unsigned char *)arg; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			reply(s, "501 5.5.4 Control characters in the %s name",
			      ehlo ? "EHLO" : "HELO");
			return;
		}
	}
	if (!utf8_valid(arg, strlen(arg))) {
		reply(s, "501 5.5.4 Invalid UTF-8 in the %s name", ehlo ? "EHLO" : "HELO");
		return;
	}
	transaction_reset(s);
	free(s->helo);
	s->helo = xstrdup(arg);
	s->esmtp = ehlo;
	s->state = SMTP_READY;
	if (!ehlo) {
		reply(s, "250 %s", cfg->hostname);
		return;
	}
	struct conn *c = s->conn;
	conn_printf(c, "250-%s\r\n", cfg->hostname);
	conn_printf(c, "250-PIPELINING\r\n");
	conn_printf(c, "250-SIZE %llu\r\n", (unsigned long long)cfg->max_message_size);
	if (!conn_is_tls(c) && conn_tls_available())
		conn_printf(c, "250-STARTTLS\r\n");
	if (s->submission && auth_allowed(s))
		conn_printf(c, "250-AUTH %s\r\n", sasl_mechanisms(true));
	conn_printf(c, "250-ENHANCEDSTATUSCODES\r\n");
	conn_printf(c, "250-8BITMIME\r\n");
	conn_printf(c, "250-SMTPUTF8\r\n");
	reply(s, "250 CHUNKING");
}

/* Text after "FROM:" / "TO:", or NULL. */
static char *path_arg(char *arg, const char *prefix)
{
	if (!str_istarts(arg, prefix))
		return NULL;
	return arg + strlen(prefix);
}

static void cmd_mail(struct smtp_session *s, char *arg)
{
	char *p = path_arg(arg, "FROM:");
	if (p == NULL) {
		reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	struct smtp_path_args pa;
	const char *error;
	if (smtp_path_parse(p, strlen(p), ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8, &pa, &error) < 0) {
		reply(s, "501 5.1.7 Bad sender address syntax: %s", error);
		return;
	}
	bool smtputf8 = false, body_8bit = false;
	s->declared_size = 0;
	for (size_t i = 0; i < pa.param_count; i++) {
		struct smtp_param *prm = &pa.params[i];
		uint64_t size;
		if (str_ieq(prm->keyword, "SIZE")) {
			/* RFC 1870 6: refuse what cannot fit, now. */
			if (prm->value == NULL || str_to_u64(prm->value, &size) < 0) {
				reply(s, "501 5.5.4 Bad SIZE parameter");
				goto out;
			}
			if (size > cfg->max_message_size) {
				reply(s, "552 5.3.4 Message size exceeds fixed limit");
				goto out;
			}
			s->declared_size = size;
		} else if (str_ieq(prm->keyword, "BODY")) {
			if (prm->value && str_ieq(prm->value, "8BITMIME")) {
				body_8bit = true;
			} else if (prm->value == NULL || !str_ieq(prm->value, "7BIT")) {
				reply(s, "501 5.5.4 Unsupported BODY parameter");
				goto out;
			}
		} else if (str_ieq(prm->keyword, "SMTPUTF8") && prm->value == NULL) {
			smtputf8 = true;
		} else if (str_ieq(prm->keyword, "AUTH") && s->submission && prm->value) {
			/* RFC 4954 5: noted, not trusted. */
		} else {
			reply(s, "555 5.5.4 Unsupported option: %s", prm->keyword);
			goto out;
		}
	}
	if (pa.addr.utf8 && !smtputf8) {
		/* RFC 6531 3.4 */
		reply(s, "553 5.6.7 UTF-8 address needs the SMTPUTF8 parameter");
		goto out;
	}
	char *sender = address_to_string(&pa.addr);
	if (s->submission && *sender && !may_send_as(s, sender)) {
		log_warn("event=sender_refused session=%s user=%s from=<%s>", conn_id(s->conn),
			 s->account, sender);
		reply(s, "553 5.7.1 <%s>: Sender address not owned by user %s", sender, s->account);
		free(sender);
		goto out;
	}
	if (s->submission && !rate_ok(s->account_id, false)) {
		log_warn("event=rate_limited session=%s user=%s", conn_id(s->conn), s->account);
		reply(s, "451 4.7.1 Error: too many messages this hour, try again later");
		free(sender);
		goto out;
	}
	s->sender = sender;
	s->smtputf8 = smtputf8;
	s->body_8bit = body_8bit;
	s->state = SMTP_MAIL;
	/* RFC 7208 2.4: SPF of MAIL FROM (of HELO for <>) on port 25, in the
	 * background while RCPT and DATA go on; submission is authenticated.
	 * [mailauth] spf = no turns it off. */
	if (!s->submission && cfg->mailauth_spf)
		s->spf = smtp_spf_start(conn_id(s->conn), conn_peer_ip(s->conn), s->helo, s->sender,
					cfg->hostname, 0);
	log_info("event=mail session=%s from=<%s>%s", conn_id(s->conn), s->sender,
		 smtputf8 ? " smtputf8=yes" : "");
	reply(s, "250 2.1.0 Ok");
out:
	smtp_path_args_deinit(&pa);
}

/* "<postmaster>" without a domain (RFC 5321 4.1.1.3) goes to the local
 * domain that our hostname is in (mail.example.com -> example.com), else
 * to our first domain. */
static char *postmaster_domain(void)
{
	const char *d = cfg->hostname;
	while (d != NULL && *d) {
		if (store_domain_is_local(reader(), d))
			return xstrdup(d);
		d = strchr(d, '.');
		if (d)
			d++;
	}
	char *first = store_first_domain(reader());
	return first ? first : xstrdup(cfg->hostname);
}

/* Whether a local account the recipient leads to is full (RFC 9208
 * quota), or would be with the size MAIL declared. Checked here, from the
 * current usage: after DATA one reply covers every recipient. */
static bool rcpt_over_quota(struct smtp_session *s, const struct store_targets *t)
{
	for (size_t i = 0; i < t->count; i++) {
		struct store_quota q;
		if (t->v[i].account_id <= 0 ||
		    store_quota_get(reader(), t->v[i].account_id, &q) <= 0)
			continue;
		if (store_quota_full(&q) ||
		    (s->declared_size && store_quota_exceeded(&q, s->declared_size, 1)))
			return true;
	}
	return false;
}

static void cmd_rcpt(struct smtp_session *s, char *arg)
{
	char *p = path_arg(arg, "TO:");
	if (p == NULL) {
		reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (s->submission && cfg->submission_max_recipients &&
	    s->rcpt_count >= cfg->submission_max_recipients) {
		reply(s, "451 4.7.1 Error: too many recipients for one message, send the rest in another");
		return;
	}
	if (s->rcpt_count >= cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452 makes the client send the rest later. */
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	struct smtp_path_args pa;
	const char *error;
	if (smtp_path_parse(p, strlen(p), ADDRESS_ALLOW_UTF8, &pa, &error) < 0) {
		s->rcpt_failures++;
		reply(s, "501 5.1.3 Bad recipient address syntax: %s", error);
		return;
	}
	if (pa.param_count > 0) {
		s->rcpt_failures++;
		reply(s, "555 5.5.4 Unsupported option: %s", pa.params[0].keyword);
		goto out;
	}
	if (pa.addr.utf8 && !s->smtputf8) {
		s->rcpt_failures++;
		reply(s, "553 5.6.7 UTF-8 address needs the SMTPUTF8 parameter");
		goto out;
	}
	char *domain = *pa.addr.domain ? xstrdup(pa.addr.domain) : postmaster_domain();
	char *shown = xasprintf("%s@%s", pa.addr.local, domain);
	struct store_targets targets;
	enum store_resolve_result res = pa.addr.domain_literal ? STORE_RESOLVE_NOT_LOCAL :
		store_resolve(reader(), pa.addr.local, domain, cfg->recipient_delimiter, &targets);
	if (res == STORE_RESOLVE_NOT_LOCAL && s->account_id > 0) {
		/* Our user sends to the world: the queue takes it. */
		targets.count = 1;
		targets.catchall = false;
		targets.v = xcalloc(1, sizeof(*targets.v));
		targets.v[0].address = xstrdup(shown);
		res = STORE_RESOLVE_OK;
	}
	if (res == STORE_RESOLVE_OK && rcpt_over_quota(s, &targets)) {
		/* RFC 3463 4.2.2, temporary: the sender's server retries. */
		log_info("event=rcpt session=%s to=<%s> result=over_quota", conn_id(s->conn), shown);
		reply(s, "452 4.2.2 <%s>: Mailbox full, try again later", shown);
		store_targets_deinit(&targets);
		free(shown);
		free(domain);
		goto out;
	}
	switch (res) {
	case STORE_RESOLVE_OK:
		s->rcpts = xrealloc(s->rcpts, (s->rcpt_count + 1) * sizeof(*s->rcpts));
		s->rcpts[s->rcpt_count].address = shown;
		s->rcpts[s->rcpt_count].targets = targets;
		s->rcpt_count++;
		s->state = SMTP_RCPT;
		log_info("event=rcpt session=%s to=<%s> result=accepted targets=%zu",
			 conn_id(s->conn), shown, targets.count);
		reply(s, "250 2.1.5 Ok");
		shown = NULL;
		break;
	case STORE_RESOLVE_NOT_LOCAL:
		/* Never an open relay: only our own domains on this path. */
		s->rcpt_failures++;
		log_info("event=rcpt session=%s ip=%s to=<%s> result=relay_denied",
			 conn_id(s->conn), conn_peer_ip(s->conn), shown);
		reply(s, "554 5.7.1 <%s>: Relay access denied", shown);
		break;
	case STORE_RESOLVE_NO_SUCH_USER:
		s->rcpt_failures++;
		log_info("event=rcpt session=%s to=<%s> result=unknown_user", conn_id(s->conn), shown);
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", shown);
		break;
	case STORE_RESOLVE_ERROR:
		s->rcpt_failures++;
		log_error("event=rcpt session=%s to=<%s> result=lookup_error", conn_id(s->conn), shown);
		reply(s, "451 4.3.0 <%s>: Temporary lookup failure", shown);
		break;
	}
	free(shown);
	free(domain);
out:
	smtp_path_args_deinit(&pa);
}

/* Starts the message file with our Received: field (RFC 5321 4.4). */
static int start_message(struct smtp_session *s)
{
	char *error = NULL;
	s->delivery = store_delivery_new(store, &error);
	if (s->delivery == NULL) {
		log_error("event=delivery_start_failed session=%s error=\"%s\"", conn_id(s->conn), error);
		free(error);
		return -1;
	}
	struct conn *c = s->conn;
	bool tls = conn_is_tls(c);
	/* RFC 3848 and RFC 6531 7.2 "with" keywords. */
	bool a = s->account_id > 0;
	const char *with = s->smtputf8 ? (tls ? (a ? "UTF8SMTPSA" : "UTF8SMTPS") : (a ? "UTF8SMTPA" : "UTF8SMTP")) :
			   s->esmtp ? (tls ? (a ? "ESMTPSA" : "ESMTPS") : (a ? "ESMTPA" : "ESMTP")) : "SMTP";
	char date[64];
	time_rfc5322(time_now_ms() / 1000, date);
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "Received: from %s (%s%s%s)\r\n\tby %s (yubin) with %s id %s",
		   s->helo, strchr(conn_peer_ip(c), ':') ? "[IPv6:" : "[",
		   conn_peer_ip(c), "]", cfg->hostname, with,
		   store_delivery_queue_id(s->delivery));
	if (tls)
		buf_printf(&b, "\r\n\t(using %s with cipher %s (%d bits))",
			   conn_tls_version(c), conn_tls_cipher(c), conn_tls_bits(c));
	if (s->rcpt_count == 1)
		buf_printf(&b, "\r\n\tfor <%s>", s->rcpts[0].address);
	buf_printf(&b, ";\r\n\t%s\r\n", date);
	int r = store_delivery_write(s->delivery, b.data, b.len);
	buf_deinit(&b);
	buf_init(&s->data_out, 0);
	if (s->submission) {
		s->header_pending = true;
		buf_init(&s->header, SUBMIT_HEADER_MAX);
	} else if ((s->mailauth = smtp_mailauth_new(cfg, conn_id(c))) != NULL) {
		s->header_pending = true;
		buf_init(&s->header, SUBMIT_HEADER_MAX);
	}
	return r;
}

static bool need_rcpt(struct smtp_session *s)
{
	if (s->state == SMTP_RCPT || s->state == SMTP_BDAT)
		return true;
	if (s->state == SMTP_MAIL && s->rcpt_failures > 0)
		reply(s, "554 5.5.1 Error: no valid recipients");
	else if (s->state == SMTP_MAIL)
		reply(s, "503 5.5.1 Error: need RCPT command");
	else if (s->state == SMTP_INIT)
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else
		reply(s, "503 5.5.1 Error: need MAIL command");
	return false;
}

static void cmd_data(struct smtp_session *s, char *arg)
{
	if (*arg) {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == SMTP_BDAT) {
		/* RFC 3030 3: DATA and BDAT do not mix. */
		reply(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	if (!need_rcpt(s))
		return;
	if (start_message(s) < 0) {
		reply(s, "451 4.3.0 Error: local storage failure, try again later");
		return;
	}
	smtp_data_init(&s->data, cfg->listeners[conn_listener_kind(s->conn)].bare_lf ==
				 BARE_LF_NORMALIZE);
	s->state = SMTP_DATA;
	conn_set_deadline(s->conn, cfg->smtp_data_timeout);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void message_done(void *arg, int result);
static void header_end(struct smtp_session *s);
static void write_body(struct smtp_session *s, const char *p, size_t n);
static void commit_message(struct smtp_session *s);
static void finish_message(struct smtp_session *s);

/* The SPF result came while the end of the data waited for it. */
static void spf_ready(void *arg)
{
	struct smtp_session *s = arg;
	s->busy = false;
	s->spf_waiting = false;
	conn_resume_read(s->conn);
	finish_message(s);
}

/* The SPF result of MAIL FROM (smtp_spf.h, done by now: finish_message
 * waited for it) for DMARC and Authentication-Results; not done when SPF
 * is off. */
static void mailauth_spf(struct smtp_session *s)
{
	smtp_mailauth_set_spf(s->mailauth, s->spf != NULL && smtp_spf_done(s->spf),
			      smtp_spf_result(s->spf), smtp_spf_domain(s->spf),
			      smtp_spf_helo(s->spf));
}

/* Port 25: DKIM and DMARC are done; act on DMARC (RFC 9989 5.3.6) and
 * add Authentication-Results (RFC 8601) for the local recipients. */
static void mailauth_done(void *arg)
{
	struct smtp_session *s = arg;
	s->busy = false;
	s->mailauth_waiting = false;
	if (s->conn == NULL) {
		session_free(s);
		return;
	}
	enum smtp_mailauth_action act = smtp_mailauth_action(s->mailauth);
	log_info("event=mailauth session=%s queue_id=%s %s action=%s", conn_id(s->conn),
		 store_delivery_queue_id(s->delivery), smtp_mailauth_summary(s->mailauth),
		 act == SMTP_MAILAUTH_REJECT ? "reject" : act == SMTP_MAILAUTH_JUNK ? "junk" : "accept");
	if (act == SMTP_MAILAUTH_REJECT) {
		/* RFC 9989 7.2: refused in the SMTP transaction, 5.7.1 */
		reply(s, "550 5.7.1 Error: rejected by the sender domain's DMARC policy");
		transaction_reset(s);
		conn_resume_read(s->conn);
		return;
	}
	store_delivery_set_local_header(s->delivery, smtp_mailauth_field(s->mailauth));
	store_delivery_set_junk(s->delivery, act == SMTP_MAILAUTH_JUNK);
	conn_resume_read(s->conn);
	commit_message(s);
}

/* The message is complete: check it, then hand it to the store. */
static void finish_message(struct smtp_session *s)
{
	const char *refuse = NULL;
	conn_set_deadline(s->conn, 0);
	if (s->chunk_cr) {
		s->chunk_cr = false;
		s->data.bare_cr++;
		if (s->data.normalize)
			write_body(s, "\r\n", 2);
	}
	if (s->header_pending && s->delivery != NULL)
		header_end(s);
	size_t hlen;
	const char *head = s->delivery ? store_delivery_head(s->delivery, &hlen) : "";
	if (s->delivery == NULL || s->write_failed)
		refuse = "451 4.3.0 Error: local storage failure, try again later";
	else if ((s->data.bare_cr || s->data.bare_lf) && !s->data.normalize)
		/* RFC 5321 2.3.8: CR and LF only as CRLF. */
		refuse = "550 5.6.0 Error: message contains bare CR or LF characters";
	else if (s->data.nul)
		refuse = "550 5.6.0 Error: message contains NUL characters";
	else if (s->too_big)
		refuse = "552 5.3.4 Error: message too big";
	else if (s->header_refuse)
		refuse = s->header_refuse;
	else if (header_count(head, header_block_len(head, hlen), "Received") >
		 cfg->max_received_headers)
		/* RFC 5321 6.3 */
		refuse = "554 5.4.6 Error: too many hops, mail loop?";
	if (refuse != NULL) {
		log_info("event=message_refused session=%s reason=\"%s\"", conn_id(s->conn), refuse + 10);
		reply(s, "%s", refuse);
		transaction_reset(s);
		return;
	}
	/* Port 25: the SPF result is needed now (Authentication-Results,
	 * DMARC). Usually the data took longer than the DNS; if not, wait,
	 * within the evaluation's time limit, and come back here. */
	if (s->spf != NULL && !smtp_spf_done(s->spf)) {
		s->busy = true;
		s->spf_waiting = true;
		conn_pause_read(s->conn);
		smtp_spf_wait(s->spf, spf_ready, s);
		return;
	}
	if (s->mailauth != NULL) {
		mailauth_spf(s);
		s->busy = true;
		conn_pause_read(s->conn);
		s->mailauth_waiting = true;
		if (smtp_mailauth_run(s->mailauth, mailauth_done, s))
			mailauth_done(s);
		return;
	}
	commit_message(s);
}

/* Hands the checked message to the store. */
static void commit_message(struct smtp_session *s)
{
	struct store_delivery *d = s->delivery;
	store_delivery_set_sender(d, s->sender);
	for (size_t i = 0; i < s->rcpt_count; i++) {
		struct store_targets *t = &s->rcpts[i].targets;
		for (size_t j = 0; j < t->count; j++) {
			if (t->v[j].account_id > 0)
				store_delivery_add_local(d, t->v[j].account_id, t->v[j].address);
			else
				store_delivery_add_remote(d, t->v[j].address);
		}
	}
	log_info("event=message session=%s queue_id=%s from=<%s> rcpts=%zu size=%llu",
		 conn_id(s->conn), store_delivery_queue_id(d), s->sender, s->rcpt_count,
		 (unsigned long long)store_delivery_size(d));
	s->delivery = NULL;
	s->busy = true;
	conn_pause_read(s->conn);
	char *qid = xstrdup(store_delivery_queue_id(d));
	/* The queue id is remembered in sender's place until the answer. */
	free(s->sender);
	s->sender = qid;
	store_delivery_commit(d, conn_loop(s->conn), message_done, s);
}

static void message_done(void *arg, int result)
{
	struct smtp_session *s = arg;
	s->busy = false;
	if (s->conn == NULL) {
		/* The client left while we were writing: the message is stored
		 * (or not) all the same; nobody to tell. */
		session_free(s);
		return;
	}
	if (result == 0 && s->submission)
		(void)rate_ok(s->account_id, true);
	if (result == 0)
		reply(s, "250 2.0.0 Ok: queued as %s", s->sender);
	else
		reply(s, "451 4.3.0 Error: could not store the message, try again later");
	transaction_reset(s);
	conn_resume_read(s->conn);
}

/* Keeps the body size within limits as it is written. */
static void write_raw(struct smtp_session *s, const char *p, size_t n)
{
	if (s->too_big || s->write_failed || s->delivery == NULL || n == 0)
		return;
	if (store_delivery_size(s->delivery) + n > cfg->max_message_size) {
		s->too_big = true;
		return;
	}
	if (store_delivery_write(s->delivery, p, n) < 0)
		s->write_failed = true;
}

/* Submission: the held header is complete. Check that every From:
 * address is the user's (no spoofing), add Message-ID: and Date: when
 * missing (RFC 6409 8.2, 8.3), and write it all out. */
static void header_end(struct smtp_session *s)
{
	s->header_pending = false;
	if (!s->submission) {
		/* port 25: the held header, without the Authentication-Results
		 * that claim to be ours (RFC 8601 5) */
		struct buf out;
		buf_init(&out, 0);
		if (smtp_mailauth_header(s->mailauth, s->header.data ? s->header.data : "",
					 s->header.len, &out) < 0)
			s->write_failed = true;
		write_raw(s, out.data, out.len);
		buf_deinit(&out);
		buf_deinit(&s->header);
		return;
	}
	const char *h = s->header.data ? s->header.data : "";
	size_t hlen = header_block_len(h, s->header.len);
	char *from = header_get(h, hlen, "From");
	char **addrs = NULL;
	int n = from ? addrlist_parse(from, &addrs) : -1;
	if (from == NULL) {
		s->header_refuse = "550 5.6.0 Error: the message has no From: field";
	} else if (header_count(h, hlen, "From") > 1) {
		/* RFC 5322 3.6: exactly one; a second could name anyone. */
		s->header_refuse = "550 5.6.0 Error: more than one From: field";
	} else if (n <= 0) {
		s->header_refuse = "550 5.6.0 Error: unreadable From: field";
	} else {
		for (int i = 0; i < n; i++) {
			if (!may_send_as(s, addrs[i])) {
				log_warn("event=from_refused session=%s user=%s from=\"%s\"",
					 conn_id(s->conn), s->account, addrs[i]);
				s->header_refuse = "553 5.7.1 Error: From: address not owned by the authenticated user";
				break;
			}
		}
	}
	addrlist_free(&addrs);
	free(from);

	struct buf add;
	buf_init(&add, 0);
	if (header_count(h, hlen, "Message-ID") == 0) {
		unsigned char rnd[6];
		random_bytes(rnd, sizeof(rnd));
		buf_printf(&add, "Message-ID: <%s.%02x%02x%02x%02x%02x%02x@%s>\r\n",
			   store_delivery_queue_id(s->delivery), rnd[0], rnd[1], rnd[2],
			   rnd[3], rnd[4], rnd[5], cfg->hostname);
	}
	if (header_count(h, hlen, "Date") == 0) {
		char date[64];
		time_rfc5322(time_now_ms() / 1000, date);
		buf_printf(&add, "Date: %s\r\n", date);
	}
	write_raw(s, add.data, add.len);
	buf_deinit(&add);
	write_raw(s, h, s->header.len);
	buf_deinit(&s->header);
}

static void write_body(struct smtp_session *s, const char *p, size_t n)
{
	if (s->mailauth != NULL)
		smtp_mailauth_feed(s->mailauth, p, n);
	if (!s->header_pending) {
		write_raw(s, p, n);
		return;
	}
	size_t old = s->header.len;
	if (buf_append(&s->header, p, n) < 0) {
		/* A header this large: check what we have, then stream. */
		if (!s->submission)
			/* port 25: a From: past this could not be seen by DMARC */
			s->header_refuse = "552 5.3.4 Error: message header too big";
		header_end(s);
		write_raw(s, p, n);
		return;
	}
	const char *h = s->header.data;
	size_t from = old > 3 ? old - 3 : 0;
	if ((s->header.len >= 2 && h[0] == '\r' && h[1] == '\n') ||
	    memmem(h + from, s->header.len - from, "\r\n\r\n", 4) != NULL)
		header_end(s);
}

/* Reads DATA. Returns true when the end was reached. */
static bool read_data(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[8];
	while (evbuffer_get_length(in) > 0) {
		int n = evbuffer_peek(in, -1, NULL, v, 8);
		size_t used_total = 0;
		for (int i = 0; i < n && i < 8 && !smtp_data_done(&s->data); i++) {
			size_t used = smtp_data_feed(&s->data, v[i].iov_base, v[i].iov_len, &s->data_out);
			used_total += used;
			write_body(s, s->data_out.data, s->data_out.len);
			buf_reset(&s->data_out);
		}
		evbuffer_drain(in, used_total);
		if (smtp_data_done(&s->data))
			return true;
	}
	return false;
}

/* BDAT data has no dot-stuffing (RFC 3030), but without BINARYMIME it is
 * still text with CR LF line ends: bare CR and LF get the listener's
 * bare_lf policy and NUL is refused, as in DATA. A CR at the end of one
 * chunk may pair with an LF at the start of the next. */
static void write_chunk(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_data_parser *d = &s->data;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (s->chunk_cr) {
			s->chunk_cr = false;
			if (c == '\n') {
				write_body(s, "\r\n", 2);
				start = i + 1;
				continue;
			}
			d->bare_cr++;
			if (d->normalize)
				write_body(s, "\r\n", 2);
		}
		if (c == '\r' || c == '\n' || c == '\0') {
			write_body(s, p + start, i - start);
			start = i + 1;
			if (c == '\r') {
				s->chunk_cr = true;
			} else if (c == '\n') {
				d->bare_lf++;
				if (d->normalize)
					write_body(s, "\r\n", 2);
			} else {
				d->nul++;
			}
		}
	}
	write_body(s, p + start, n - start);
}

/* Reads a BDAT chunk. Returns true when the chunk is complete. */
static bool read_chunk(struct smtp_session *s, struct evbuffer *in)
{
	while (s->chunk_left > 0 && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t n = v.iov_len < s->chunk_left ? v.iov_len : (size_t)s->chunk_left;
		if (!s->chunk_discard)
			write_chunk(s, v.iov_base, n);
		evbuffer_drain(in, n);
		s->chunk_left -= n;
	}
	return s->chunk_left == 0;
}

static void chunk_done(struct smtp_session *s)
{
	if (s->chunk_discard) {
		s->chunk_discard = false;
		s->state = s->chunk_prev;
		if (s->chunk_reply[0] == '4')
			transaction_reset(s);
		reply(s, "%s", s->chunk_reply);
		return;
	}
	if (s->chunk_last) {
		finish_message(s);
		return;
	}
	s->state = SMTP_BDAT;
	reply(s, "250 2.0.0 Ok: %llu octets received",
	      (unsigned long long)(s->delivery ? store_delivery_size(s->delivery) : 0));
}

static void cmd_bdat(struct smtp_session *s, char *arg)
{
	/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF */
	char *sp = strchr(arg, ' ');
	bool last = false;
	if (sp != NULL) {
		*sp = '\0';
		if (!str_ieq(sp + 1, "LAST")) {
			reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
			return;
		}
		last = true;
	}
	uint64_t size;
	if (str_to_u64(arg, &size) < 0 || strlen(arg) > 19) {
		/* Without a size the chunk cannot be skipped: what follows is
		 * not commands. RFC 5321 3.8: 421 and close. */
		conn_printf(s->conn, "421 4.5.0 %s Error: BDAT without a valid size, closing\r\n",
			    cfg->hostname);
		conn_close(s->conn);
		return;
	}
	s->chunk_left = size;
	s->chunk_last = last;
	s->chunk_prev = s->state;
	if (s->state != SMTP_RCPT && s->state != SMTP_BDAT) {
		/* The chunk must still be read and dropped (RFC 3030 2). */
		s->chunk_discard = true;
		s->chunk_reply = s->state == SMTP_INIT ? "503 5.5.1 Error: send HELO/EHLO first" :
				 s->state == SMTP_MAIL ? "503 5.5.1 Error: need RCPT command" :
				 "503 5.5.1 Error: need MAIL command";
	} else if (s->state == SMTP_RCPT) {
		smtp_data_init(&s->data, cfg->listeners[conn_listener_kind(s->conn)].bare_lf ==
					 BARE_LF_NORMALIZE);
		s->chunk_cr = false;
		if (start_message(s) < 0) {
			s->chunk_discard = true;
			s->chunk_reply = "451 4.3.0 Error: local storage failure, try again later";
		}
		conn_set_deadline(s->conn, cfg->smtp_data_timeout);
	}
	s->state = SMTP_CHUNK;
}

static void cmd_rset(struct smtp_session *s, char *arg)
{
	transaction_reset(s);
	reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtp_session *s, char *arg)
{
	reply(s, "250 2.0.0 Ok");
}

static void cmd_vrfy(struct smtp_session *s, char *arg)
{
	/* RFC 5321 3.5.3: 252 when we will not say; never a user list. */
	reply(s, "252 2.0.0 Send some mail, and we will try our best");
}

static void cmd_help(struct smtp_session *s, char *arg)
{
	reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT%s%s",
	      conn_tls_available() ? " STARTTLS" : "", s->submission ? " AUTH" : "");
}

static void cmd_quit(struct smtp_session *s, char *arg)
{
	reply(s, "221 2.0.0 Bye");
	conn_close(s->conn);
}

static void cmd_starttls(struct smtp_session *s, char *arg)
{
	if (*arg) {
		reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (conn_is_tls(s->conn)) {
		reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!conn_tls_available()) {
		reply(s, "454 4.7.0 TLS not available");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	if (conn_starttls(s->conn) < 0) {
		conn_close(s->conn);
		return;
	}
	/* RFC 3207 4.2: forget everything learnt before TLS. */
	xfree(&s->helo);
	transaction_reset(s);
	auth_reset(s);
	s->account_id = 0;
	xfree(&s->account);
}

/* ---- AUTH (RFC 4954) ---- */

static void auth_done(void *arg, enum auth_result result, int64_t account_id,
		      const char *address)
{
	struct smtp_session *s = arg;
	s->busy = false;
	auth_reset(s);
	if (s->conn == NULL) {
		session_free(s);
		return;
	}
	switch (result) {
	case AUTH_OK:
		s->account_id = account_id;
		s->account = xstrdup(address);
		reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAIL:
		reply(s, "535 5.7.8 Authentication credentials invalid");
		break;
	case AUTH_TEMPFAIL:
		reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	conn_resume_read(s->conn);
}

/* The outcome of a mechanism step that is not a plain challenge goes
 * through auth/ for logging, throttling and the failure delay. */
static void auth_finish(struct smtp_session *s, bool ok)
{
	const char *user = s->sasl && sasl_authcid(s->sasl) ? sasl_authcid(s->sasl) : "";
	s->busy = true;
	conn_pause_read(s->conn);
	auth_finish_external(conn_loop(s->conn), "smtp", conn_peer_ip(s->conn), user, ok,
			     auth_done, s);
}

static void sasl_next(struct smtp_session *s, const unsigned char *in, size_t len)
{
	struct buf ch;
	const char *error = NULL;
	buf_init(&ch, 0);
	enum sasl_status st = sasl_step(s->sasl, in, len, &ch, &error);
	struct buf enc;
	buf_init(&enc, 0);
	switch (st) {
	case SASL_CONTINUE:
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		reply(s, "334 %s", enc.data ? enc.data : "");
		break;
	case SASL_CHECK_PASSWORD:
		s->busy = true;
		conn_pause_read(s->conn);
		auth_check_password(conn_loop(s->conn), "smtp", conn_peer_ip(s->conn),
				    sasl_authcid(s->sasl), sasl_password(s->sasl), auth_done, s);
		break;
	case SASL_OK:
		/* SCRAM: the server's proof goes in a last challenge; the
		 * client answers it with an empty line (RFC 4954 4). */
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		s->sasl_final = buf_steal(&enc, NULL);
		reply(s, "334 %s", s->sasl_final);
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

/* A line answering a 334 challenge. */
static void sasl_response(struct smtp_session *s, char *line)
{
	if (strcmp(line, "*") == 0) {
		auth_reset(s);
		reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if (s->sasl_final != NULL) {
		if (*line == '\0') {
			auth_finish(s, true);
		} else {
			auth_reset(s);
			reply(s, "501 5.5.2 Error: expected an empty line");
		}
		return;
	}
	struct buf dec;
	buf_init(&dec, SASL_RESPONSE_MAX);
	if (base64_decode(line, strlen(line), &dec) < 0) {
		auth_reset(s);
		reply(s, "501 5.5.2 Error: cannot decode response");
	} else {
		sasl_next(s, (const unsigned char *)(dec.data ? dec.data : ""), dec.len);
	}
	mem_wipe(dec.data ? dec.data : (char *)"", dec.data ? dec.len : 0);
	buf_deinit(&dec);
}

static void cmd_auth(struct smtp_session *s, char *arg)
{
	if (!s->submission) {
		reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (s->state == SMTP_INIT || !s->esmtp) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->account_id > 0) {
		reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->state != SMTP_READY) {
		reply(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	if (!auth_allowed(s)) {
		reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	char *initial = strchr(arg, ' ');
	if (initial)
		*initial++ = '\0';
	if (*arg == '\0') {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	static const struct sasl_lookup lookup = { auth_scram_record, NULL };
	s->sasl = sasl_new(arg, &lookup);
	if (s->sasl == NULL) {
		reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	if (initial == NULL) {
		sasl_next(s, NULL, 0);
		return;
	}
	/* RFC 4954 4: "=" is an empty initial response. */
	if (strcmp(initial, "=") == 0) {
		sasl_next(s, (const unsigned char *)"", 0);
		return;
	}
	sasl_response(s, initial);
}

static void cmd_helo_plain(struct smtp_session *s, char *arg)
{
	cmd_helo(s, arg, false);
}

static void cmd_ehlo(struct smtp_session *s, char *arg)
{
	cmd_helo(s, arg, true);
}

static void cmd_mail_checked(struct smtp_session *s, char *arg)
{
	if (s->state == SMTP_INIT)
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (s->submission && s->account_id == 0)
		/* RFC 6409 4.3, RFC 4954 6 */
		reply(s, "530 5.7.0 Authentication required");
	else if (s->state != SMTP_READY)
		reply(s, "503 5.5.1 Error: nested MAIL command");
	else
		cmd_mail(s, arg);
}

static void cmd_rcpt_checked(struct smtp_session *s, char *arg)
{
	if (s->state == SMTP_INIT)
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (s->state == SMTP_BDAT)
		reply(s, "503 5.5.1 Error: RCPT after BDAT");
	else if (s->state != SMTP_MAIL && s->state != SMTP_RCPT)
		reply(s, "503 5.5.1 Error: need MAIL command");
	else
		cmd_rcpt(s, arg);
}

struct smtp_command {
	const char *verb;
	void (*fn)(struct smtp_session *s, char *arg);
};

static const struct smtp_command commands[] = {
	{ "EHLO", cmd_ehlo },
	{ "HELO", cmd_helo_plain },
	{ "MAIL", cmd_mail_checked },
	{ "RCPT", cmd_rcpt_checked },
	{ "DATA", cmd_data },
	{ "BDAT", cmd_bdat },
	{ "RSET", cmd_rset },
	{ "NOOP", cmd_noop },
	{ "VRFY", cmd_vrfy },
	{ "HELP", cmd_help },
	{ "QUIT", cmd_quit },
	{ "STARTTLS", cmd_starttls },
	{ "AUTH", cmd_auth },
};

static void run_command(struct smtp_session *s, char *line)
{
	char *arg = line + strcspn(line, " ");
	size_t verb_len = (size_t)(arg - line);
	if (*arg == ' ')
		*arg++ = '\0';
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_debug("event=command session=%s verb=%.*s", conn_id(s->conn),
			  (int)(verb_len > 16 ? 16 : verb_len), line);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (str_ieq(line, commands[i].verb)) {
			commands[i].fn(s, arg);
			return;
		}
	}
	reply(s, "500 5.5.2 Error: command not recognized");
}

/* Takes the next command line from in (smtp_line.h). Returns 1 with
 * *line_r (a new string without CRLF), 0 when more input is needed, -1
 * after replying to a bad line (it is consumed). */
static int read_line(struct smtp_session *s, struct evbuffer *in, char **line_r)
{
	/* RFC 4954 4: AUTH lines may be up to 12288 octets. */
	size_t max = cfg->max_line_length;
	if (s->submission && max < 12288)
		max = 12288;
	switch (smtp_line_read(in, max, &s->discarding, line_r)) {
	case SMTP_LINE_OK:
		return 1;
	case SMTP_LINE_MORE:
		return 0;
	case SMTP_LINE_TOO_LONG:
		reply(s, "500 5.5.2 Error: line too long");
		return -1;
	case SMTP_LINE_BAD:
		break;
	}
	reply(s, "500 5.5.2 Error: bad characters in command");
	return -1;
}

static void on_read(struct conn *c)
{
	struct smtp_session *s = conn_data(c);
	struct evbuffer *in = conn_input(c);
	while (!s->busy && !conn_closing(c) && evbuffer_get_length(in) > 0) {
		if (s->state == SMTP_DATA) {
			if (!read_data(s, in))
				return;
			finish_message(s);
			continue;
		}
		if (s->state == SMTP_CHUNK) {
			if (!read_chunk(s, in))
				return;
			chunk_done(s);
			continue;
		}
		char *line = NULL;
		int r = read_line(s, in, &line);
		if (r == 0)
			return;
		if (r > 0) {
			if (s->sasl != NULL)
				sasl_response(s, line);
			else
				run_command(s, line);
			mem_wipe(line, strlen(line));
			free(line);
		}
		/* STARTTLS replaced the input buffer. */
		in = conn_input(c);
	}
	/* A BDAT 0 needs no input to complete. */
	if (s->state == SMTP_CHUNK && s->chunk_left == 0 && !s->busy && !conn_closing(c))
		chunk_done(s);
}

static void on_open(struct conn *c)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	s->conn = c;
	s->state = SMTP_INIT;
	s->submission = conn_listener_kind(c) != LISTENER_SMTP;
	conn_set_data(c, s);
	conn_set_timeout(c, cfg->smtp_timeout);
	conn_printf(c, "220 %s ESMTP yubin\r\n", cfg->hostname);
}

static void on_timeout(struct conn *c)
{
	conn_printf(c, "421 4.4.2 %s Error: timeout exceeded\r\n", cfg->hostname);
	conn_close(c);
}

static void on_close(struct conn *c, enum conn_close_reason reason)
{
	struct smtp_session *s = conn_data(c);
	if (s == NULL)
		return;
	if (s->state == SMTP_DATA || s->state == SMTP_CHUNK)
		log_info("event=transaction_aborted session=%s reason=%s", conn_id(c),
			 reason == CONN_CLOSE_SHUTDOWN ? "shutdown" : "disconnect");
	s->conn = NULL;
	/* Waiting for SPF or the DKIM/DMARC lookups only: nothing to finish
	 * (no reply was given: the client will send again), and freeing
	 * cancels the lookup (the loop may be ending: its answer might never
	 * come). */
	if (!s->busy || s->spf_waiting || s->mailauth_waiting)
		session_free(s);
}

const struct conn_handler smtp_conn_handler = {
	.on_open = on_open,
	.on_read = on_read,
	.on_timeout = on_timeout,
	.on_close = on_close,
	.busy_reply = "421 4.7.0 Too many connections, try again later\r\n",
};
