/* SPF, RFC 7208: is this client allowed to send mail for that domain?
 *
 * A resumable evaluator with no I/O of its own (see ma_dns.h): spf_step()
 * either finishes or stops with one DNS question; the caller asks it and
 * calls spf_step() again with the answer. The first call passes answer
 * NULL. After MA_STEP_DONE, spf_step() must not be called again.
 *
 *   struct spf *spf = spf_new(&ip, helo, sender, hostname);
 *   struct ma_query q;
 *   const struct ma_answer *a = NULL;
 *   while (spf_step(spf, a, &q) == MA_STEP_QUERY)
 *           a = look_up(&q);
 *   ... spf_result(spf), spf_domain(spf), spf_explanation(spf) ...
 *   spf_free(&spf);
 *
 * Bounds (RFC 7208 4.6.4): at most 10 mechanisms and modifiers that ask
 * DNS (include, a, mx, ptr, exists, redirect), at most 2 "void" lookups
 * (NXDOMAIN or no answer), at most 10 names per mx/ptr; records longer
 * than SPF_RECORD_MAX are a permerror; the explanation text is cut at
 * SPF_EXPLANATION_MAX bytes. Altogether an evaluation asks at most some
 * hundreds of questions (one per name of each of 10 mx, 10 ptr...), and
 * spf_step() bounds them itself. */
#ifndef YUBIN_SPF_H
#define YUBIN_SPF_H

#include "mailauth/ma_dns.h"

#define SPF_RECORD_MAX 4096		/* one TXT record's text, concatenated */
#define SPF_EXPLANATION_MAX 1024	/* the expanded exp= text */
#define SPF_DNS_MECH_MAX 10		/* RFC 7208 4.6.4 */
#define SPF_VOID_MAX 2			/* RFC 7208 4.6.4 */
#define SPF_NAMES_MAX 10		/* per mx / ptr, RFC 7208 4.6.4 */

/* RFC 7208 2.6; the values' names are those of RFC 8601 2.7.2. */
enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror". */
const char *spf_result_name(enum spf_result result);

struct spf;

/* ip: the SMTP client's address; helo: the EHLO/HELO argument (may be NULL
 * or ""); sender: the MAIL FROM address without brackets, "" for the null
 * path <>: then the HELO identity is checked, as postmaster@helo (RFC 7208
 * 2.4); a sender without '@' or with an empty local part is postmaster@
 * the domain (4.3). receiver: our host name, for the %{r} macro of exp=.
 * Everything is copied. */
struct spf *spf_new(const struct ma_ip *ip, const char *helo, const char *sender,
		    const char *receiver);
/* The same, checking the HELO identity itself (RFC 7208 2.3), whatever
 * MAIL FROM is. */
struct spf *spf_new_helo(const struct ma_ip *ip, const char *helo, const char *receiver);

/* Runs until the result is known (MA_STEP_DONE) or a DNS answer is needed
 * (MA_STEP_QUERY, *q_r filled). answer: NULL on the first call, then the
 * answer to the last *q_r; it need live during the call only. */
enum ma_step spf_step(struct spf *spf, const struct ma_answer *answer, struct ma_query *q_r);

/* Valid after MA_STEP_DONE (SPF_NONE before). */
enum spf_result spf_result(const struct spf *spf);
/* The domain checked: MAIL FROM's, or the HELO name's. "" when there was
 * none to check (a HELO that is an address literal). */
const char *spf_domain(const struct spf *spf);
/* The identity checked: "user@domain" or "postmaster@helo". */
const char *spf_identity(const struct spf *spf);
/* Fail only: the domain's explanation (exp=, RFC 7208 6.2) expanded, or
 * NULL when it gave none or it could not be had. */
const char *spf_explanation(const struct spf *spf);
/* Permerror/temperror: why, for logs; NULL otherwise. */
const char *spf_problem(const struct spf *spf);
/* The number of DNS questions asked so far. */
unsigned spf_queries(const struct spf *spf);

/* Sets *spf to NULL; NULL is fine. */
void spf_free(struct spf **spf);

#endif
