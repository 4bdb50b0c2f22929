/* SPF (RFC 7208) of a transaction received on port 25, run in the
 * background from MAIL FROM on: the evaluator (mailauth/spf.h) driven by
 * ma_resolve() on the session's loop, while the client goes on with RCPT
 * and DATA. At the end of the data the session waits for the result if
 * it is not there yet; the whole evaluation is bounded in time (RFC 7208
 * 4.6.4: past the limit the result is temperror).
 *
 * The result is for Authentication-Results (RFC 8601 2.7.2, smtp.mailfrom
 * or smtp.helo) and DMARC (RFC 7489 4.1, the SPF-authenticated domain); a
 * fail does not refuse the mail by itself.
 *
 * Call everything on the session's thread (which ran dns_thread_init). */
#ifndef YUBIN_SMTP_SPF_H
#define YUBIN_SMTP_SPF_H

#include <stdbool.h>

#include "mailauth/spf.h"

#define SMTP_SPF_TIMEOUT_MS 20000	/* RFC 7208 4.6.4: "at least 20 seconds" */

struct smtp_spf;

/* Starts checking sender ("" for <>: then the HELO identity, RFC 7208
 * 2.4) for the client at peer_ip ("192.0.2.1", "2001:db8::1"); receiver
 * is our host name (%{r}); session_id for the log. timeout_ms: 0 is
 * SMTP_SPF_TIMEOUT_MS. Never NULL. */
struct smtp_spf *smtp_spf_start(const char *session_id, const char *peer_ip, const char *helo,
				const char *sender, const char *receiver, unsigned timeout_ms);

/* True once the result is known (or the time ran out). */
bool smtp_spf_done(const struct smtp_spf *spf);

typedef void smtp_spf_ready_fn(void *arg);
/* Not done yet: ready(arg) will run once, from the loop, when it is.
 * Replaces an earlier wait. */
void smtp_spf_wait(struct smtp_spf *spf, smtp_spf_ready_fn *ready, void *arg);

/* The outcome, valid once done; on NULL: SPF_NONE, NULL, false. */
enum spf_result smtp_spf_result(const struct smtp_spf *spf);
/* The domain checked (MAIL FROM's, or the HELO name). */
const char *smtp_spf_domain(const struct smtp_spf *spf);
/* True when the HELO identity was checked (MAIL FROM was <>): the result
 * is then smtp.helo in Authentication-Results, and DMARC does not use it
 * (RFC 7489 4.1 ... the MAIL FROM identity only). */
bool smtp_spf_helo(const struct smtp_spf *spf);
/* "user@domain" or "postmaster@helo", as checked. */
const char *smtp_spf_identity(const struct smtp_spf *spf);
/* fail: the domain's explanation (exp=), or NULL. */
const char *smtp_spf_explanation(const struct smtp_spf *spf);
/* permerror/temperror: why, or NULL. */
const char *smtp_spf_problem(const struct smtp_spf *spf);

/* Cancels what is in flight (ready will not run). Sets *spf to NULL; NULL
 * is fine. */
void smtp_spf_free(struct smtp_spf **spf);

#endif
