/* Mail authentication of a message received on port 25 (the receive side
 * of mailauth/): DKIM verification fed from the data stream, DMARC once
 * the data ended, the Authentication-Results field (RFC 8601) to add, and
 * the action DMARC asks for. The SMTP session owns one per transaction. */
#ifndef YUBIN_SMTP_MAILAUTH_H
#define YUBIN_SMTP_MAILAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "mailauth/spf.h"

struct smtp_mailauth;

enum smtp_mailauth_action {
	SMTP_MAILAUTH_ACCEPT,
	SMTP_MAILAUTH_JUNK,	/* DMARC quarantine (or reject with dmarc_reject=no) */
	SMTP_MAILAUTH_REJECT,	/* DMARC reject: 550 5.7.1 */
};

/* NULL when [mailauth] turns every check off. */
struct smtp_mailauth *smtp_mailauth_new(const struct config *cfg, const char *session_id);

/* The message as received (dot-unstuffed, CRLF), in any chunks. */
void smtp_mailauth_feed(struct smtp_mailauth *m, const char *p, size_t n);

/* The header block h[0..len) is complete (it may be followed by body
 * bytes, which are copied as they are): writes it to out without the
 * Authentication-Results fields we must remove (RFC 8601 5), and notes the
 * RFC5322.From domain for DMARC. Returns 0, or -1 when out is full. */
int smtp_mailauth_header(struct smtp_mailauth *m, const char *h, size_t len, struct buf *out);

/* The SPF result the session got at MAIL FROM (SPF_NONE with done false
 * when it was not evaluated). helo: the HELO identity was checked. */
void smtp_mailauth_set_spf(struct smtp_mailauth *m, bool done, enum spf_result r,
			   const char *domain, bool helo);

typedef void smtp_mailauth_done_fn(void *arg);
/* The data ended: finishes DKIM, asks its keys, then DMARC, through
 * ma_resolve() (asynchronous, on the calling thread's loop; at most
 * [mailauth] mailauth_timeout for all of it: what is still unanswered then
 * is a temporary error). done(arg) runs later, from the loop, once. */
/* Returns true when everything finished at once (done will not run). */
bool smtp_mailauth_run(struct smtp_mailauth *m, smtp_mailauth_done_fn *done, void *arg);

enum smtp_mailauth_action smtp_mailauth_action(const struct smtp_mailauth *m);
/* "Authentication-Results: ...\r\n" once done. */
const char *smtp_mailauth_field(const struct smtp_mailauth *m);
/* For the log line: "spf=pass dkim=pass dmarc=pass". */
const char *smtp_mailauth_summary(const struct smtp_mailauth *m);

/* Cancels what is in flight (done will not run) and frees. */
void smtp_mailauth_free(struct smtp_mailauth **m);

#endif
