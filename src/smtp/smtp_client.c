/* The SMTP client: see smtp_client.h. */
#include "smtp/smtp_client.h"
#include "auth/sasl.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mailauth/dkim.h"
#include "mime/addrlist.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "net/net.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>

/* RFC 5321 4.5.3.2 timeouts, in seconds. */
#define T_GREETING 300
#define T_MAIL 300
#define T_RCPT 300
#define T_DATA 120
#define T_BLOCK 180
#define T_DOT 600
/* A reply line longer than this, or more lines than that, ends the talk. */
#define REPLY_LINE_MAX 4096
#define REPLY_LINES_MAX 200
/* Body output waiting in memory before we wait for the peer to read. */
#define BODY_HIGH (256 * 1024)

enum client_state {
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_TLS_HANDSHAKE,
	C_AUTH,
	C_TRANSACTION,		/* MAIL, RCPT..., DATA: see struct txn */
	C_BODY,
	C_DOT,
	C_RSET,
	C_QUIT,
	C_DONE,
};

enum cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct smtp_client {
	struct loop *loop;
	struct store *store;
	struct smtp_client_params p;
	char *peer_name, *helo_name, *auth_user, *auth_password;
	struct smtp_client_msg *msgs;
	size_t count, cur;
	smtp_client_done_fn *done;
	void *arg;
	struct conn *conn;
	enum client_state state;
	bool ehlo_done_tls;	/* EHLO after STARTTLS done */

	/* What EHLO offered. */
	bool pipelining, starttls, eightbitmime, smtputf8, auth_plain;
	uint64_t size_max;

	/* The reply being read. */
	struct buf reply;
	unsigned reply_lines;

	/* The transaction of msgs[cur]. */
	size_t ncmds, sent, replied;
	unsigned accepted;	/* RCPTs answered 2xx */
	bool mail_ok;
	bool eightbit, utf8;
	int fd;
	uint64_t off;
	bool at_line_start;	/* for dot-stuffing */
	/* 8-bit body to a server without 8BITMIME: sent quoted-printable. */
	bool convert;
	struct buf conv_header;	/* the header, CTE replaced, sent first */
	struct qp_encoder qpe;
	bool last_cr;		/* the body ended on CR LF? */
	char last_char;
	struct buf dkim;	/* DKIM-Signature fields, sent before the message */

	char *host_error;
};

static const struct conn_handler client_handler;

static void set_host_error(struct smtp_client *c, const char *fmt, ...) PRINTF(2, 3);
static void set_host_error(struct smtp_client *c, const char *fmt, ...)
{
	if (c->host_error != NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	struct buf b;
	buf_init(&b, 0);
	char tmp[512];
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	buf_append_str(&b, tmp);
	c->host_error = buf_steal(&b, NULL);
}

static void send_line(struct smtp_client *c, const char *fmt, ...) PRINTF(2, 3);
static void send_line(struct smtp_client *c, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 3;
	log_debug("event=smtp_out session=%s line=\"%.*s\"", conn_id(c->conn),
		  str_istarts(line, "AUTH ") ? 10 : n, line);
	memcpy(line + n, "\r\n", 2);
	conn_write(c->conn, line, (size_t)n + 2);
}

static bool is_ascii(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

static void quit(struct smtp_client *c)
{
	c->state = C_QUIT;
	conn_set_timeout(c->conn, T_MAIL);
	send_line(c, "QUIT");
}

/* Every recipient of message i not decided yet gets state and why. */
static void decide_rest(struct smtp_client_msg *m, enum smtp_rcpt_state state, const char *why)
{
	for (size_t k = 0; k < m->rcpt_count; k++) {
		struct smtp_client_rcpt *r = &m->rcpts[k];
		if (r->state == SMTP_RCPT_PENDING) {
			r->state = state;
			free(r->reply);
			r->reply = xstrdup(why);
		}
	}
}

/* Whether the body file has 8-bit bytes (then BODY=8BITMIME). */
static int scan_8bit(int fd, bool *eightbit_r)
{
	char chunk[65536];
	ssize_t n;
	off_t off = 0;
	*eightbit_r = false;
	while ((n = pread(fd, chunk, sizeof(chunk), off)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if ((unsigned char)chunk[i] >= 0x80) {
				*eightbit_r = true;
				return 0;
			}
		}
		off += n;
	}
	return n < 0 ? -1 : 0;
}

static void next_message(struct smtp_client *c);
static void send_commands(struct smtp_client *c);

/* Was the message submitted by an authenticated user? Our own Received
 * field is always the first line of the file (smtp_session.c writes it
 * before anything of the client's), and its "with" keyword ends in "A"
 * after AUTH (RFC 3848: ESMTPA, ESMTPSA; RFC 6531: UTF8SMTPA, UTF8SMTPSA).
 * Only such a message had its From: checked against the user's addresses;
 * mail from elsewhere (say an alias forwarding a message that claims to be
 * from one of our domains) must not get our signature. */
static bool submitted_by_user(const char *h, size_t hlen)
{
	size_t pos = 0;
	struct header_field f;
	if (header_next(h, hlen, &pos, &f) != 1 || f.name_len != 8 ||
	    !str_nieq(f.name, "Received", 8))
		return false;
	char *v = header_unfold(f.value, f.value_len);
	const char *by = strstr(v, " (yubin) with ");
	bool ok = false;
	if (by != NULL) {
		const char *w = by + 14;
		size_t n = strcspn(w, " ;");
		ok = (n == 6 && strncmp(w, "ESMTPA", 6) == 0) ||
			(n == 7 && strncmp(w, "ESMTPSA", 7) == 0) ||
			(n == 9 && strncmp(w, "UTF8SMTPA", 9) == 0) ||
			(n == 10 && strncmp(w, "UTF8SMTPSA", 10) == 0);
	}
	free(v);
	return ok;
}

/* DKIM (RFC 6376 5): a message our user submitted, whose From: domain has
 * keys (<data_dir>/dkim/<domain>/), is signed with them as it leaves,
 * over the bytes that go out (after an 8BITMIME downgrade, the converted
 * ones). The body is read once more for its hash; each attempt signs
 * again (the same fields, a new t=). Fills c->dkim; nothing on failure
 * (the message goes unsigned, logged). */
static void dkim_prepare(struct smtp_client *c, struct smtp_client_msg *m)
{
	buf_reset(&c->dkim);
	char *h = xmalloc(256 * 1024);
	ssize_t got = pread(c->fd, h, 256 * 1024, 0);
	char *from = NULL, **addrs = NULL;
	struct dkim_key *keys[2];
	size_t nkeys = 0;
	if (got <= 0)
		goto out;
	size_t hlen = header_block_len(h, (size_t)got);
	if (hlen == (size_t)got && hlen == 256 * 1024)
		goto out;
	if (!submitted_by_user(h, hlen))
		goto out;
	from = header_get(h, hlen, "From");
	if (from == NULL || addrlist_parse(from, &addrs) < 1)
		goto out;
	const char *at = strrchr(addrs[0], '@');
	if (at == NULL)
		goto out;
	nkeys = dkim_keys_for_domain(store_data_dir(c->store), at + 1, keys, 2);
	if (nkeys == 0)
		goto out;
	struct dkim_signer *signer = dkim_signer_new();
	char in[65536];
	uint64_t off = hlen;
	struct qp_encoder qpe;
	qp_encoder_init(&qpe);
	for (;;) {
		ssize_t n = pread(c->fd, in, sizeof(in), (off_t)off);
		if (n < 0) {
			char *none = dkim_signer_finish(&signer, keys, 0, "", 0, 0);
			free(none);
			log_error("event=dkim_unsigned queue_id=%s error=\"%s\"", m->queue_id,
				  strerror(errno));
			goto out;
		}
		if (c->convert) {
			struct buf qp;
			buf_init(&qp, 0);
			if (n > 0)
				(void)qp_encode_more(&qpe, in, (size_t)n, &qp);
			else
				(void)qp_encode_finish(&qpe, &qp);
			dkim_signer_body(signer, qp.data, qp.len);
			buf_deinit(&qp);
		} else {
			dkim_signer_body(signer, in, (size_t)n);
		}
		if (n == 0)
			break;
		off += (uint64_t)n;
	}
	char *sig = c->convert ?
		dkim_signer_finish(&signer, keys, nkeys, c->conv_header.data, c->conv_header.len, 0) :
		dkim_signer_finish(&signer, keys, nkeys, h, hlen, 0);
	if (sig == NULL) {
		log_error("event=dkim_unsigned queue_id=%s domain=%s", m->queue_id, at + 1);
		goto out;
	}
	buf_append_str(&c->dkim, sig);
	free(sig);
	log_info("event=dkim_signed queue_id=%s domain=%s keys=%zu", m->queue_id, at + 1, nkeys);
out:
	for (size_t i = 0; i < nkeys; i++)
		dkim_key_free(&keys[i]);
	addrlist_free(&addrs);
	free(from);
	free(h);
}

/* RFC 6152 3: 8-bit data must not go to a server without 8BITMIME; a
 * single-part message with a 7-bit header is converted to quoted-printable
 * (its Content-Transfer-Encoding replaced), as Postfix does. Multiparts,
 * message/rfc822 and 8-bit headers are not converted (the caller bounces).
 * Returns true with c->conv_header ready and c->off at the body. */
static bool prepare_conversion(struct smtp_client *c)
{
	char *h = xmalloc(256 * 1024);
	ssize_t got = pread(c->fd, h, 256 * 1024, 0);
	bool ok = false;
	if (got <= 0)
		goto out;
	size_t hlen = header_block_len(h, (size_t)got);
	if (hlen == (size_t)got && hlen == 256 * 1024)
		goto out;	/* a header this long is not ours to rewrite */
	for (size_t i = 0; i < hlen; i++) {
		if ((unsigned char)h[i] >= 0x80)
			goto out;
	}
	char *ct = header_get(h, hlen, "Content-Type");
	bool composite = ct != NULL && (str_istarts(ct, "multipart/") || str_istarts(ct, "message/"));
	free(ct);
	if (composite)
		goto out;
	/* Every field but Content-Transfer-Encoding, then ours. */
	buf_reset(&c->conv_header);
	size_t pos = 0, body_sep = hlen;
	struct header_field f;
	int r;
	bool mime_version = false;
	while ((r = header_next(h, hlen, &pos, &f)) != 0) {
		if (r < 0)
			continue;
		if (f.name_len == 25 && str_nieq(f.name, "Content-Transfer-Encoding", 25))
			continue;
		mime_version |= f.name_len == 12 && str_nieq(f.name, "MIME-Version", 12);
		buf_append(&c->conv_header, f.name, (size_t)(f.value + f.value_len - f.name));
		buf_append_str(&c->conv_header, "\r\n");
	}
	if (!mime_version)
		buf_append_str(&c->conv_header, "MIME-Version: 1.0\r\n");
	buf_append_str(&c->conv_header, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	c->off = body_sep;
	qp_encoder_init(&c->qpe);
	ok = true;
out:
	free(h);
	return ok;
}

/* Starts the transaction of msgs[cur], or decides it without one. */
static void start_message(struct smtp_client *c)
{
	struct smtp_client_msg *m = &c->msgs[c->cur];
	if (c->size_max > 0 && m->size > c->size_max) {
		char why[160];
		snprintf(why, sizeof(why), "552 5.3.4 The message (%llu bytes) is larger than %s accepts (%llu)",
			 (unsigned long long)m->size, c->peer_name, (unsigned long long)c->size_max);
		decide_rest(m, SMTP_RCPT_FAILED, why);
		next_message(c);
		return;
	}
	c->fd = store_body_open(c->store, m->body);
	if (c->fd < 0 || scan_8bit(c->fd, &c->eightbit) < 0) {
		log_error("event=queue_body_unreadable queue_id=%s body=%s error=\"%s\"", m->queue_id,
			  m->body, strerror(errno));
		decide_rest(m, SMTP_RCPT_DEFERRED, "451 4.3.0 The message could not be read here");
		next_message(c);
		return;
	}
	c->utf8 = !is_ascii(m->sender);
	for (size_t k = 0; k < m->rcpt_count; k++)
		c->utf8 |= !is_ascii(m->rcpts[k].address);
	if (c->utf8 && !c->smtputf8) {
		/* RFC 6531 3.2: no way to send it to this peer. */
		decide_rest(m, SMTP_RCPT_FAILED, "553 5.6.7 Non-ASCII addresses and the destination "
			    "does not support SMTPUTF8");
		next_message(c);
		return;
	}
	c->convert = false;
	if (c->eightbit && !c->eightbitmime) {
		if (!prepare_conversion(c)) {
			decide_rest(m, SMTP_RCPT_FAILED, "554 5.6.3 The message has 8-bit content that "
				    "cannot be converted, and the destination does not support 8BITMIME");
			next_message(c);
			return;
		}
		c->convert = true;
		c->eightbit = false;	/* it goes as 7-bit now */
		log_info("event=relay_8bit_converted queue_id=%s peer=%s", m->queue_id, c->peer_name);
	}
	dkim_prepare(c, m);
	c->state = C_TRANSACTION;
	c->ncmds = 2 + m->rcpt_count;
	c->sent = c->replied = 0;
	c->accepted = 0;
	c->mail_ok = false;
	conn_set_timeout(c->conn, T_MAIL);
	send_commands(c);
}

static enum cmd_kind cmd_kind(const struct smtp_client *c, size_t i)
{
	return i == 0 ? CMD_MAIL : i == c->ncmds - 1 ? CMD_DATA : CMD_RCPT;
}

/* Sends what may go now: everything with PIPELINING (RFC 2920 3.1: MAIL,
 * RCPTs and DATA in one group), else the next command once the last one
 * is answered. */
static void send_commands(struct smtp_client *c)
{
	struct smtp_client_msg *m = &c->msgs[c->cur];
	while (c->sent < c->ncmds && (c->pipelining || c->sent == c->replied)) {
		size_t i = c->sent++;
		switch (cmd_kind(c, i)) {
		case CMD_MAIL:
			send_line(c, "MAIL FROM:<%s>%s%s SIZE=%llu", m->sender,
				  c->eightbit ? " BODY=8BITMIME" : "",
				  c->utf8 ? " SMTPUTF8" : "",
				  (unsigned long long)(m->size + c->dkim.len));
			break;
		case CMD_RCPT:
			send_line(c, "RCPT TO:<%s>", m->rcpts[i - 1].address);
			break;
		case CMD_DATA:
			send_line(c, "DATA");
			break;
		}
	}
}

static void next_message(struct smtp_client *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->cur++;
	if (c->cur >= c->count) {
		quit(c);
		return;
	}
	start_message(c);
}

/* Writes data dot-stuffed (RFC 5321 4.5.2). */
static void write_stuffed(struct smtp_client *c, const char *data, size_t n)
{
	if (n == 0)
		return;
	struct buf out;
	buf_init(&out, 0);
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->at_line_start && data[i] == '.') {
			buf_append(&out, data + start, i - start);
			buf_append_c(&out, '.');
			start = i;
		}
		c->at_line_start = data[i] == '\n';
	}
	buf_append(&out, data + start, n - start);
	c->last_char = data[n - 1];
	conn_write(c->conn, out.data, out.len);
	buf_deinit(&out);
}

/* Writes the next piece of the body (converted first when it must be). */
static void send_body(struct smtp_client *c)
{
	struct smtp_client_msg *m = &c->msgs[c->cur];
	char in[65536];
	if (c->dkim.len > 0) {
		write_stuffed(c, c->dkim.data, c->dkim.len);
		buf_reset(&c->dkim);
	}
	if (c->convert && c->conv_header.len > 0) {
		write_stuffed(c, c->conv_header.data, c->conv_header.len);
		buf_reset(&c->conv_header);
	}
	while (conn_output_pending(c->conn) < BODY_HIGH) {
		ssize_t n = pread(c->fd, in, sizeof(in), (off_t)c->off);
		if (n < 0) {
			log_error("event=queue_body_unreadable queue_id=%s error=\"%s\"", m->queue_id,
				  strerror(errno));
			/* The peer must not take a cut message: close without
			 * the final dot, the recipients are tried again. */
			decide_rest(m, SMTP_RCPT_DEFERRED, "451 4.3.0 The message could not be read here");
			set_host_error(c, "reading the message failed");
			conn_close(c->conn);
			c->state = C_DONE;
			return;
		}
		struct buf qp;
		buf_init(&qp, 0);
		if (c->convert) {
			if (n > 0)
				(void)qp_encode_more(&c->qpe, in, (size_t)n, &qp);
			else
				(void)qp_encode_finish(&c->qpe, &qp);
			write_stuffed(c, qp.data, qp.len);
		} else {
			write_stuffed(c, in, (size_t)n);
		}
		buf_deinit(&qp);
		if (n == 0) {
			/* End: a line end if the body lacks one, then the dot. */
			if (c->last_char != '\n')
				conn_write(c->conn, "\r\n", 2);
			conn_write(c->conn, ".\r\n", 3);
			c->state = C_DOT;
			conn_set_timeout(c->conn, T_DOT);
			return;
		}
		c->off += (uint64_t)n;
	}
}

static char *reply_copy(const struct smtp_client *c)
{
	/* The last line's text, which holds the code and the reason. */
	const char *d = c->reply.data;
	const char *last = d;
	for (const char *p = d; *p; p++) {
		if (*p == '\n' && p[1] != '\0')
			last = p + 1;
	}
	size_t len = strcspn(last, "\r\n");
	return xstrndup(last, len);
}

/* After EHLO or HELO: STARTTLS, AUTH, or the first message. */
static void after_hello(struct smtp_client *c)
{
	if (!conn_is_tls(c->conn) && c->starttls) {
		c->state = C_STARTTLS;
		send_line(c, "STARTTLS");
		return;
	}
	if (!conn_is_tls(c->conn) && c->p.tls == SMTP_TLS_REQUIRED) {
		set_host_error(c, "%s does not offer STARTTLS, and TLS is required", c->peer_name);
		quit(c);
		return;
	}
	if (c->auth_user != NULL) {
		if (!c->auth_plain) {
			set_host_error(c, "%s does not offer AUTH PLAIN", c->peer_name);
			quit(c);
			return;
		}
		struct buf raw, b64;
		buf_init(&raw, 0);
		buf_init(&b64, 0);
		buf_append_c(&raw, '\0');
		buf_append_str(&raw, c->auth_user);
		buf_append_c(&raw, '\0');
		buf_append_str(&raw, c->auth_password);
		base64_encode(raw.data, raw.len, &b64);
		c->state = C_AUTH;
		send_line(c, "AUTH PLAIN %s", b64.data);
		memset(raw.data, 0, raw.len);
		buf_deinit(&raw);
		buf_deinit(&b64);
		return;
	}
	start_message(c);
}

/* Handles one complete reply of code in c->reply. */
static void on_reply(struct smtp_client *c, int code)
{
	struct smtp_client_msg *m = c->cur < c->count ? &c->msgs[c->cur] : NULL;
	int cls = code / 100;
	switch (c->state) {
	case C_GREETING:
		if (cls != 2) {
			char *r = reply_copy(c);
			set_host_error(c, "greeting: %s", r);
			free(r);
			quit(c);
			return;
		}
		c->state = C_EHLO;
		conn_set_timeout(c->conn, T_MAIL);
		send_line(c, "EHLO %s", c->helo_name);
		return;
	case C_EHLO:
		if (cls != 2) {
			/* RFC 5321 3.2: an old server; HELO it is. */
			c->state = C_HELO;
			send_line(c, "HELO %s", c->helo_name);
			return;
		}
		c->pipelining = c->starttls = c->eightbitmime = c->smtputf8 = c->auth_plain = false;
		c->size_max = 0;
		for (const char *l = c->reply.data; l && *l; ) {
			const char *e = strchr(l, '\n');
			size_t len = e ? (size_t)(e - l) : strlen(l);
			if (len > 4) {
				char kw[64];
				size_t k = strcspn(l + 4, " \r\n");
				snprintf(kw, sizeof(kw), "%.*s", (int)(k < 63 ? k : 63), l + 4);
				if (str_ieq(kw, "PIPELINING"))
					c->pipelining = true;
				else if (str_ieq(kw, "STARTTLS"))
					c->starttls = true;
				else if (str_ieq(kw, "8BITMIME"))
					c->eightbitmime = true;
				else if (str_ieq(kw, "SMTPUTF8"))
					c->smtputf8 = true;
				else if (str_ieq(kw, "SIZE"))
					c->size_max = strtoull(l + 4 + k, NULL, 10);
				else if (str_ieq(kw, "AUTH"))
					c->auth_plain = strstr(l, " PLAIN") != NULL;
			}
			l = e ? e + 1 : NULL;
		}
		__attribute__((fallthrough));
	case C_HELO:
		if (c->state == C_HELO && cls != 2) {
			char *r = reply_copy(c);
			set_host_error(c, "HELO: %s", r);
			free(r);
			quit(c);
			return;
		}
		after_hello(c);
		return;
	case C_STARTTLS:
		if (cls != 2) {
			if (c->p.tls == SMTP_TLS_REQUIRED) {
				char *r = reply_copy(c);
				set_host_error(c, "STARTTLS: %s", r);
				free(r);
				quit(c);
				return;
			}
			/* Opportunistic: go on in clear (RFC 3207 4.1). */
			c->starttls = false;
			after_hello(c);
			return;
		}
		if (conn_starttls_client(c->conn, c->peer_name, c->p.tls_verify) < 0) {
			set_host_error(c, "TLS could not be started");
			conn_close(c->conn);
			c->state = C_DONE;
			return;
		}
		c->state = C_TLS_HANDSHAKE;
		return;
	case C_AUTH:
		if (cls != 2) {
			char *r = reply_copy(c);
			set_host_error(c, "AUTH: %s", r);
			free(r);
			quit(c);
			return;
		}
		start_message(c);
		return;
	case C_TRANSACTION: {
		size_t i = c->replied++;
		char *r = reply_copy(c);
		switch (cmd_kind(c, i)) {
		case CMD_MAIL:
			c->mail_ok = cls == 2;
			if (!c->mail_ok)
				decide_rest(m, cls == 5 ? SMTP_RCPT_FAILED : SMTP_RCPT_DEFERRED, r);
			break;
		case CMD_RCPT: {
			struct smtp_client_rcpt *rc = &m->rcpts[i - 1];
			if (c->mail_ok && cls == 2) {
				c->accepted++;
			} else if (rc->state == SMTP_RCPT_PENDING) {
				rc->state = cls == 5 ? SMTP_RCPT_FAILED : SMTP_RCPT_DEFERRED;
				free(rc->reply);
				rc->reply = xstrdup(r);
			}
			break;
		}
		case CMD_DATA:
			if (code == 354 && c->accepted > 0) {
				free(r);
				c->state = C_BODY;
				if (!c->convert)
					c->off = 0;	/* else: at the body, after the header */
				c->at_line_start = true;
				c->last_char = '\n';
				conn_set_timeout(c->conn, T_BLOCK);
				send_body(c);
				return;
			}
			if (code == 354) {
				/* Nobody to send to after all: an empty end. */
				conn_write(c->conn, ".\r\n", 3);
				c->state = C_DOT;
				free(r);
				return;
			}
			decide_rest(m, cls == 5 ? SMTP_RCPT_FAILED : SMTP_RCPT_DEFERRED, r);
			free(r);
			c->state = C_RSET;
			send_line(c, "RSET");
			return;
		}
		free(r);
		if (!c->pipelining)
			send_commands(c);
		return;
	}
	case C_DOT: {
		char *r = reply_copy(c);
		if (c->accepted > 0) {
			for (size_t k = 0; k < m->rcpt_count; k++) {
				struct smtp_client_rcpt *rc = &m->rcpts[k];
				if (rc->state != SMTP_RCPT_PENDING)
					continue;
				rc->state = cls == 2 ? SMTP_RCPT_DELIVERED :
					    cls == 5 ? SMTP_RCPT_FAILED : SMTP_RCPT_DEFERRED;
				free(rc->reply);
				rc->reply = xstrdup(r);
			}
		}
		log_info("event=relay_reply queue_id=%s peer=%s ip=%s reply=\"%s\"", m->queue_id,
			 c->peer_name, conn_peer_ip(c->conn), r);
		free(r);
		next_message(c);
		return;
	}
	case C_RSET:
		next_message(c);
		return;
	case C_QUIT:
		c->state = C_DONE;
		conn_close(c->conn);
		return;
	case C_BODY:
	case C_TLS_HANDSHAKE:
	case C_DONE:
		/* A reply nobody asked for. */
		set_host_error(c, "unexpected reply from %s", c->peer_name);
		conn_close(c->conn);
		c->state = C_DONE;
		return;
	}
}

static void on_read(struct conn *conn)
{
	struct smtp_client *c = conn_data(conn);
	struct evbuffer *in = conn_input(conn);
	for (;;) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX) {
				set_host_error(c, "reply line too long from %s", c->peer_name);
				conn_close(conn);
				c->state = C_DONE;
			}
			return;
		}
		if (len < 3 || len > REPLY_LINE_MAX || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (len > 3 && line[3] != ' ' && line[3] != '-') ||
		    ++c->reply_lines > REPLY_LINES_MAX) {
			set_host_error(c, "malformed reply from %s: %.80s", c->peer_name, line);
			free(line);
			conn_close(conn);
			c->state = C_DONE;
			return;
		}
		log_debug("event=smtp_in session=%s line=\"%s\"", conn_id(conn), line);
		buf_append(&c->reply, line, len);
		buf_append_c(&c->reply, '\n');
		bool last = len == 3 || line[3] == ' ';
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		free(line);
		if (!last)
			continue;
		on_reply(c, code);
		buf_reset(&c->reply);
		c->reply_lines = 0;
		if (c->state == C_DONE || c->state == C_TLS_HANDSHAKE)
			return;
	}
}

static void on_open(struct conn *conn)
{
	struct smtp_client *c = conn_data(conn);
	if (c->state == C_TLS_HANDSHAKE) {
		/* RFC 3207 4.2: forget what EHLO said; ask again. */
		c->state = C_EHLO;
		send_line(c, "EHLO %s", c->helo_name);
		return;
	}
	c->state = C_GREETING;
	conn_set_timeout(conn, T_GREETING);
}

static void on_drain(struct conn *conn)
{
	struct smtp_client *c = conn_data(conn);
	if (c->state == C_BODY)
		send_body(c);
}

static void on_timeout(struct conn *conn)
{
	struct smtp_client *c = conn_data(conn);
	set_host_error(c, "timed out talking to %s", c->peer_name);
	conn_close(conn);
}

static void on_close(struct conn *conn, enum conn_close_reason reason UNUSED)
{
	struct smtp_client *c = conn_data(conn);
	if (c->state != C_DONE && c->state != C_QUIT) {
		const char *e = conn_error(conn);
		set_host_error(c, "%s (%s)", e ? e : "connection lost", c->peer_name);
	}
	/* One line per connection: with whom, and how safely. */
	log_info("event=relay_session session=%s peer=%s ip=%s tls=%s verified=%s error=\"%s\"",
		 conn_id(conn), c->peer_name, conn_peer_ip(conn),
		 conn_is_tls(conn) ? conn_tls_version(conn) : "none",
		 !conn_is_tls(conn) ? "-" : conn_tls_verified(conn) ? "yes" : "no",
		 c->host_error ? c->host_error : "");
	if (c->fd >= 0)
		close(c->fd);
	c->done(c->arg, c->host_error);
	free(c->host_error);
	buf_deinit(&c->reply);
	buf_deinit(&c->conv_header);
	buf_deinit(&c->dkim);
	free(c->peer_name);
	free(c->helo_name);
	free(c->auth_user);
	if (c->auth_password) {
		memset(c->auth_password, 0, strlen(c->auth_password));
		free(c->auth_password);
	}
	free(c);
}

static const struct conn_handler client_handler = {
	.on_open = on_open,
	.on_read = on_read,
	.on_timeout = on_timeout,
	.on_drain = on_drain,
	.on_close = on_close,
};

struct smtp_client *smtp_client_start(struct loop *loop, struct store *store,
				      const struct smtp_client_params *params,
				      struct smtp_client_msg *msgs, size_t count,
				      smtp_client_done_fn *done, void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->store = store;
	c->p = *params;
	c->peer_name = xstrdup(params->peer_name);
	c->helo_name = xstrdup(params->helo_name);
	c->auth_user = params->auth_user ? xstrdup(params->auth_user) : NULL;
	c->auth_password = params->auth_password ? xstrdup(params->auth_password) : NULL;
	c->p.peer_name = c->peer_name;
	c->p.helo_name = c->helo_name;
	c->msgs = msgs;
	c->count = count;
	c->done = done;
	c->arg = arg;
	c->fd = -1;
	buf_init(&c->reply, 64 * 1024);
	buf_init(&c->conv_header, 0);
	buf_init(&c->dkim, 0);
	c->state = C_GREETING;
	c->conn = conn_connect(loop, (const struct sockaddr *)&params->addr, params->addrlen,
			       params->connect_timeout ? params->connect_timeout : 30,
			       &client_handler, c);
	return c;
}
