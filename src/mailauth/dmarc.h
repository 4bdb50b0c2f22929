/* DMARC (RFC 9989, "DMARCbis", which obsoletes RFC 7489): is the domain in
 * a message's From: (the Author Domain) backed by an aligned SPF or DKIM
 * pass, and what does its owner ask us to do when it is not?
 *
 * A resumable evaluator like the others in mailauth/ (see ma_dns.h): it does
 * no I/O; dmarc_step() returns MA_STEP_QUERY with a DNS question, and the
 * caller resumes it with the answer, until MA_STEP_DONE.
 *
 * Policy discovery and Organizational Domains use the DNS Tree Walk of RFC
 * 9989 4.10 (no Public Suffix List): at most 8 TXT queries per walk, every
 * answer kept for the walks of the authenticated identifiers, which share
 * their upper names. The whole evaluation asks at most DMARC_QUERY_MAX
 * questions; past that it ends in temperror.
 *
 * Records published for RFC 7489 are accepted as deployed: their tags are
 * the same; "pct" is historic (RFC 9989 A.6): pct=0 in a record without a
 * "t" tag is read as t=y (the use RFC 9989 A.6 says t=y replaces), any other
 * pct value is ignored. */
#ifndef YUBIN_MAILAUTH_DMARC_H
#define YUBIN_MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "mailauth/dkim.h"
#include "mailauth/ma_dns.h"
#include "mailauth/spf.h"

#define DMARC_RECORD_MAX 2048	/* longer TXT records are not DMARC records */
#define DMARC_WALK_MAX 8	/* queries per Tree Walk (RFC 9989 4.10) */
#define DMARC_QUERY_MAX 32	/* questions per message, every walk together */
#define DMARC_IDS_MAX 8		/* DKIM-authenticated identifiers checked */

enum dmarc_result {
	DMARC_NONE,		/* no policy record: DMARC does not apply */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,	/* no single usable Author Domain */
};

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_psd {
	DMARC_PSD_U,		/* default: the Tree Walk decides */
	DMARC_PSD_N,
	DMARC_PSD_Y,
};

/* One parsed DMARC Policy Record (RFC 9989 4.7, 4.8). Tags that are absent
 * or have a syntax error hold their defaults; *_set says whether a valid
 * value was given. */
struct dmarc_record {
	enum dmarc_policy p, sp, np;
	bool p_set, sp_set, np_set;
	/* p missing or invalid, or sp/np invalid (RFC 9989 4.10.1): such a
	 * record counts as p=none only when it has a valid rua. */
	bool policy_invalid;
	bool adkim_strict, aspf_strict;
	bool testing;		/* t=y, or the RFC 7489 pct=0 without t */
	enum dmarc_psd psd;
	int pct;		/* RFC 7489 pct= 0..100, -1 when absent */
	bool rua_valid;		/* rua holds at least one well-formed URI */
	char rua[256];		/* the rua and ruf values as published, cut */
	char ruf[256];		/* to fit: parsed, not used (no reports yet) */
};

/* Parses one TXT record. Returns 1 for a DMARC record (it starts with
 * "v=DMARC1", RFC 9989 4.7: case-sensitive value, WSP around "="), with
 * *r filled; 0 for a record that is not a DMARC record (to be discarded).
 * Errors in later tags fall back to the tag's default (RFC 9989 4.8). */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r);

struct dmarc;

/* from_domain: the RFC5322.From domain (NULL or "" when the message has
 * none or several: the result is then permerror, RFC 9989 5.3.1).
 * spf_pass_domain: the MAIL FROM domain when SPF passed for it, else NULL
 * (RFC 9989 4.4.2: only a MAIL FROM pass counts, never the HELO identity).
 * dkim_pass_domains: the d= of the signatures that verified (DKIM pass);
 * at most DMARC_IDS_MAX distinct ones are used. Strings are copied. */
struct dmarc *dmarc_new_ids(const char *from_domain, const char *spf_pass_domain,
			    const char *const *dkim_pass_domains, size_t ndkim);

/* The shape the other evaluators' results come in: spf and spf_domain as
 * spf_result() and spf_domain() gave them for the MAIL FROM identity
 * (spf_domain NULL when SPF checked the HELO identity, which DMARC does
 * not use, RFC 9989 4.4.2); dkim: dkim_verify_results(), whose passes
 * count. */
struct dmarc *dmarc_new(const char *from_domain, enum spf_result spf, const char *spf_domain,
			const struct dkim_sig_result *dkim, size_t ndkim);

/* Call first with answer NULL; on MA_STEP_QUERY ask *q_r and call again
 * with its answer. */
enum ma_step dmarc_step(struct dmarc *d, const struct ma_answer *answer, struct ma_query *q_r);

enum dmarc_result dmarc_result(const struct dmarc *d);
/* The policy to apply: p for the Author Domain's own record, else sp or np
 * (non-existent Author Domain, RFC 9989 3.2.13) with p as the fallback, one
 * step lower under t=y (RFC 9989 4.7). Meaningful for pass and fail (for a
 * pass, the policy that would have applied; the existence test is only
 * made for a fail). DMARC_POLICY_NONE otherwise. */
enum dmarc_policy dmarc_policy(const struct dmarc *d);
/* The policy as published before t=y lowered it, for logs. */
enum dmarc_policy dmarc_policy_published(const struct dmarc *d);
/* The domain whose record applies (the DMARC Policy Domain), or NULL. */
const char *dmarc_policy_domain(const struct dmarc *d);
/* The applied record, or NULL when none was found. */
const struct dmarc_record *dmarc_record(const struct dmarc *d);
/* The Author Domain as evaluated (lower case), or NULL. */
const char *dmarc_from_domain(const struct dmarc *d);
/* Which identifiers aligned (valid once done). */
bool dmarc_spf_aligned(const struct dmarc *d);
bool dmarc_dkim_aligned(const struct dmarc *d);
/* Why temperror or permerror, for logs; NULL otherwise. */
const char *dmarc_problem(const struct dmarc *d);

const char *dmarc_result_name(enum dmarc_result r);	/* "pass", ... (RFC 9989 9.2) */
const char *dmarc_policy_name(enum dmarc_policy p);	/* "none", "quarantine", "reject" */

/* Organizational Domain of the last walk that found one, for the tests. */
const char *dmarc_org_domain(const struct dmarc *d);

/* Frees *d and sets it to NULL. */
void dmarc_free(struct dmarc **d);

#endif
