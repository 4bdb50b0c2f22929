/* Bounces: delivery status notifications (RFC 3464, in a multipart/report
 * of RFC 6522) to the sender of a message some recipients of which failed.
 *
 * Never for the null sender (a bounce of a bounce: RFC 5321 6.1), which is
 * also the envelope sender of every DSN we send; so two servers cannot
 * bounce each other's bounces forever. */
#include "queue/queue_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/header.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Of the original message, the header goes back to the sender (RFC 3462
 * text/rfc822-headers), up to this much. */
#define BOUNCE_HEADER_MAX (64 * 1024)

struct bounce_batch {
	unsigned pending;
	int result;
	struct loop *loop;
	bounce_done_fn *done;
	void *arg;
};

static void batch_unref(struct bounce_batch *b)
{
	if (--b->pending > 0)
		return;
	b->done(b->arg, b->result);
	free(b);
}

static void dsn_committed(void *arg, int result)
{
	struct bounce_batch *b = arg;
	if (result < 0)
		b->result = -1;
	batch_unref(b);
}

/* "5.1.1" from "550 5.1.1 No such user"; else from the reply code's class
 * (RFC 3463: X.0.0), or cls when the reply is not an SMTP reply. */
static void status_of(const char *reply, char cls, char out[16])
{
	const char *p = reply;
	if (strlen(p) > 4 && (p[4] == '4' || p[4] == '5' || p[4] == '2') && p[5] == '.') {
		size_t n = strspn(p + 4, "0123456789.");
		if (n >= 5 && n < 12) {
			snprintf(out, 16, "%.*s", (int)n, p + 4);
			return;
		}
	}
	snprintf(out, 16, "%c.0.0", reply[0] == '4' || reply[0] == '5' ? reply[0] : cls);
}

/* Printable ASCII only, for the report's fields (RFC 3464 2.1.1). */
static void append_ascii(struct buf *b, const char *s)
{
	for (; *s; s++)
		buf_append_c(b, *s >= 0x20 && *s < 0x7f ? *s : '?');
}

/* The DSN text of message items[idx[0]] for the recipients idx[]. */
static void build_dsn(const struct config *cfg, struct store *store,
		      const struct store_queue_item *items, const size_t *idx, size_t n,
		      bool delayed, const char *const *reply, const char *remote_mta,
		      struct buf *out)
{
	const struct store_queue_item *m = &items[idx[0]];
	char now[64], arrival[64];
	int64_t t = time_now_ms() / 1000;
	time_rfc5322(t, now);
	time_rfc5322(m->received, arrival);
	unsigned char rnd[6];
	random_bytes(rnd, sizeof(rnd));
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", m->queue_id, (long long)t, cfg->hostname);

	buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", cfg->hostname);
	buf_printf(out, "To: <%s>\r\n", m->sender);
	buf_append_str(out, delayed ? "Subject: Delayed Mail (still being retried)\r\n" :
		       "Subject: Undelivered Mail Returned to Sender\r\n");
	buf_printf(out, "Date: %s\r\n", now);
	buf_printf(out, "Message-ID: <%s.%02x%02x%02x%02x%02x%02x.bounce@%s>\r\n", m->queue_id,
		   rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], cfg->hostname);
	/* RFC 3834 5: not to be answered by autoresponders. */
	buf_append_str(out, "Auto-Submitted: auto-replied\r\n");
	buf_append_str(out, "MIME-Version: 1.0\r\n");
	buf_printf(out, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
		   "\tboundary=\"%s\"\r\n\r\n", boundary);
	buf_append_str(out, "This is a MIME-encapsulated message.\r\n\r\n");

	buf_printf(out, "--%s\r\nContent-Description: Notification\r\n"
		   "Content-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	if (delayed)
		buf_printf(out, "This is the mail system at host %s.\r\n\r\n"
			   "Your message could not be delivered yet to one or more\r\n"
			   "recipients. It is still being tried, until %u days after it\r\n"
			   "was sent; you will be told if it cannot be delivered then.\r\n"
			   "There is nothing you need to do.\r\n\r\n", cfg->hostname,
			   (unsigned)(cfg->queue_max_age / 86400));
	else
		buf_printf(out, "This is the mail system at host %s.\r\n\r\n"
			   "I'm sorry to have to inform you that your message could not\r\n"
			   "be delivered to one or more recipients.\r\n\r\n", cfg->hostname);
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "<%s>: ", items[idx[i]].recipient);
		append_ascii(out, reply[idx[i]] ? reply[idx[i]] : "failed");
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "\r\n");

	buf_printf(out, "--%s\r\nContent-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n\r\n", boundary);
	buf_printf(out, "Reporting-MTA: dns; %s\r\n", cfg->hostname);
	buf_printf(out, "X-Yubin-Queue-ID: %s\r\n", m->queue_id);
	buf_printf(out, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < n; i++) {
		const char *r = reply[idx[i]] ? reply[idx[i]] : "554 5.0.0 failed";
		char status[16];
		status_of(r, delayed ? '4' : '5', status);
		buf_printf(out, "\r\nFinal-Recipient: rfc822; %s\r\n", items[idx[i]].recipient);
		buf_printf(out, "Action: %s\r\n", delayed ? "delayed" : "failed");
		buf_printf(out, "Status: %s\r\n", status);
		if (remote_mta != NULL && r[0] >= '2' && r[0] <= '5' && r[3] == ' ' &&
		    items[idx[i]].bounce_reason == NULL)
			buf_printf(out, "Remote-MTA: dns; %s\r\n", remote_mta);
		buf_append_str(out, "Diagnostic-Code: smtp; ");
		append_ascii(out, r);
		buf_printf(out, "\r\nLast-Attempt-Date: %s\r\n", now);
		if (delayed) {
			char until[64];
			time_rfc5322(items[idx[i]].created + cfg->queue_max_age, until);
			buf_printf(out, "Will-Retry-Until: %s\r\n", until);
		}
	}
	buf_append_str(out, "\r\n");

	buf_printf(out, "--%s\r\nContent-Description: Undelivered Message Headers\r\n"
		   "Content-Type: text/rfc822-headers\r\n\r\n", boundary);
	int fd = store_body_open(store, m->body);
	if (fd >= 0) {
		char *h = xmalloc(BOUNCE_HEADER_MAX);
		ssize_t got = pread(fd, h, BOUNCE_HEADER_MAX, 0);
		close(fd);
		if (got > 0) {
			size_t hlen = header_block_len(h, (size_t)got);
			buf_append(out, h, hlen);
			if (hlen < 2 || h[hlen - 1] != '\n')
				buf_append_str(out, "\r\n");
		}
		free(h);
	}
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}

/* Routes the DSN to the original sender: local mailboxes or the queue.
 * Returns 1 when it has somewhere to go, 0 when not, -1 on a store error. */
static int add_sender(const struct config *cfg, struct store_reader *reader,
		      struct store_delivery *d, const char *sender)
{
	const char *at = strrchr(sender, '@');
	if (at == NULL)
		return 0;
	char *local = xstrndup(sender, (size_t)(at - sender));
	char *domain = xstrdup(at + 1);
	for (char *p = domain; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	struct store_targets t = { 0 };
	enum store_resolve_result res = store_resolve(reader, local, domain,
						      cfg->recipient_delimiter, &t);
	int r = 0;
	switch (res) {
	case STORE_RESOLVE_OK:
		for (size_t i = 0; i < t.count; i++) {
			if (t.v[i].account_id > 0)
				store_delivery_add_local(d, t.v[i].account_id, sender);
			else
				store_delivery_add_remote(d, t.v[i].address);
		}
		r = t.count > 0;
		store_targets_deinit(&t);
		break;
	case STORE_RESOLVE_NOT_LOCAL:
		store_delivery_add_remote(d, sender);
		r = 1;
		break;
	case STORE_RESOLVE_NO_SUCH_USER:
		r = 0;
		break;
	case STORE_RESOLVE_ERROR:
		r = -1;
		break;
	}
	free(local);
	free(domain);
	return r;
}

void bounce_send(const struct config *cfg, struct store *store, struct store_reader *reader,
		 struct loop *loop, const struct store_queue_item *items, size_t count,
		 const enum dsn_action *action, const char *const *reply,
		 const char *remote_mta, bounce_done_fn *done, void *arg)
{
	struct bounce_batch *b = xcalloc(1, sizeof(*b));
	b->loop = loop;
	b->done = done;
	b->arg = arg;
	b->pending = 1;	/* ours, dropped at the end */
	bool *handled = xcalloc(count ? count : 1, sizeof(bool));
	size_t *idx = xcalloc(count ? count : 1, sizeof(size_t));
	for (size_t i = 0; i < count; i++) {
		if (handled[i] || action[i] == DSN_NONE)
			continue;
		bool delayed = action[i] == DSN_DELAYED;
		size_t n = 0;
		for (size_t j = i; j < count; j++) {
			if (!handled[j] && action[j] == action[i] &&
			    items[j].message_id == items[i].message_id) {
				idx[n++] = j;
				handled[j] = true;
			}
		}
		const struct store_queue_item *m = &items[i];
		if (m->sender[0] == '\0') {
			log_info("event=bounce_skipped queue_id=%s reason=\"null sender\"", m->queue_id);
			continue;
		}
		char *error = NULL;
		struct store_delivery *d = store_delivery_new(store, &error);
		if (d == NULL) {
			log_error("event=bounce_failed queue_id=%s error=\"%s\"", m->queue_id, error);
			free(error);
			b->result = -1;
			continue;
		}
		struct buf text;
		buf_init(&text, 0);
		build_dsn(cfg, store, items, idx, n, delayed, reply, remote_mta, &text);
		int routed = add_sender(cfg, reader, d, m->sender);
		if (routed <= 0 || store_delivery_write(d, text.data, text.len) < 0) {
			if (routed == 0)
				log_warn("event=bounce_undeliverable queue_id=%s sender=%s",
					 m->queue_id, m->sender);
			else
				b->result = -1;
			store_delivery_abort(&d);
			buf_deinit(&text);
			continue;
		}
		buf_deinit(&text);
		store_delivery_set_sender(d, "");
		log_info("event=%s queue_id=%s bounce_id=%s sender=%s recipients=%zu",
			 delayed ? "delay_notice" : "bounce", m->queue_id,
			 store_delivery_queue_id(d), m->sender, n);
		b->pending++;
		store_delivery_commit(d, loop, dsn_committed, b);
	}
	free(handled);
	free(idx);
	batch_unref(b);
}
