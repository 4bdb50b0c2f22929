/* Mail authentication on port 25. See smtp_mailauth.h.
 *
 * The order is fixed by what each check needs: SPF ran at MAIL FROM (the
 * session hands its result over); DKIM hashes the message as it streams
 * in, and asks its keys once the data ended; DMARC needs the From: domain
 * (from the held header) and both results. Every DNS question goes
 * through ma_resolve() one at a time; the evaluators bound how many. */
#include "smtp/smtp_mailauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "mailauth/authres.h"
#include "mailauth/dkim.h"
#include "mailauth/dmarc.h"
#include "mailauth/ma_resolve.h"
#include "mime/addrlist.h"
#include "mime/header.h"

enum phase {
	PHASE_DATA,		/* feeding */
	PHASE_DKIM,		/* asking DKIM keys */
	PHASE_DMARC,
	PHASE_DONE,
};

struct smtp_mailauth {
	const struct config *cfg;
	char *session_id;
	enum phase phase;
	struct dkim_verify *dkim;	/* NULL: DKIM off */
	struct dmarc *dmarc;
	bool dmarc_on;

	/* the From: domain: NULL when there is none, or several (RFC 9989
	 * 5.3.1), or the header was not seen */
	char *from_domain;

	bool spf_done;
	enum spf_result spf;
	char *spf_domain;
	bool spf_helo;

	struct ma_lookup *lookup;
	int64_t deadline_ms;		/* monotonic */
	smtp_mailauth_done_fn *done;
	void *done_arg;

	enum smtp_mailauth_action action;
	char *field;
	char summary[160];
};

struct smtp_mailauth *smtp_mailauth_new(const struct config *cfg, const char *session_id)
{
	if (!cfg->mailauth_spf && !cfg->mailauth_dkim && !cfg->mailauth_dmarc)
		return NULL;
	struct smtp_mailauth *m = xcalloc(1, sizeof(*m));
	m->cfg = cfg;
	m->session_id = xstrdup(session_id ? session_id : "-");
	if (cfg->mailauth_dkim)
		m->dkim = dkim_verify_new();
	m->dmarc_on = cfg->mailauth_dmarc;
	return m;
}

void smtp_mailauth_feed(struct smtp_mailauth *m, const char *p, size_t n)
{
	if (m->dkim != NULL && m->phase == PHASE_DATA && n > 0)
		dkim_verify_feed(m->dkim, p, n);
}

void smtp_mailauth_set_spf(struct smtp_mailauth *m, bool done, enum spf_result r,
			   const char *domain, bool helo)
{
	m->spf_done = done && m->cfg->mailauth_spf;
	m->spf = r;
	free(m->spf_domain);
	m->spf_domain = domain ? xstrdup(domain) : NULL;
	m->spf_helo = helo;
}

/* The Author Domain (RFC 9989 5.3.1): one From: field whose addresses all
 * have the same domain. */
static void note_from(struct smtp_mailauth *m, const char *h, size_t hlen)
{
	char *from, **addrs = NULL;
	int n;

	if (header_count(h, hlen, "From") != 1)
		return;
	from = header_get(h, hlen, "From");
	n = from ? addrlist_parse(from, &addrs) : -1;
	for (int i = 0; i < n; i++) {
		const char *at = strrchr(addrs[i], '@');
		const char *dom = at ? at + 1 : "";
		if (*dom == '\0' || (m->from_domain != NULL && !str_ieq(m->from_domain, dom))) {
			xfree(&m->from_domain);
			break;
		}
		if (m->from_domain == NULL)
			m->from_domain = xstrdup(dom);
	}
	addrlist_free(&addrs);
	free(from);
}

static const char *authserv_id(const struct smtp_mailauth *m)
{
	return m->cfg->authserv_id ? m->cfg->authserv_id : m->cfg->hostname;
}

int smtp_mailauth_header(struct smtp_mailauth *m, const char *h, size_t len, struct buf *out)
{
	size_t hlen = header_block_len(h, len), pos = 0, start = 0;
	struct header_field f;
	int r;

	note_from(m, h, hlen);
	/* RFC 8601 5: remove the fields that claim to be ours */
	while (start = pos, (r = header_next(h, hlen, &pos, &f)) != 0) {
		if (r > 0 && f.name_len == strlen("Authentication-Results") &&
		    str_nieq(f.name, "Authentication-Results", f.name_len) &&
		    authres_remove(f.value, f.value_len, authserv_id(m))) {
			log_info("event=authres_removed session=%s", m->session_id);
			continue;
		}
		if (buf_append(out, h + start, pos - start) < 0)
			return -1;
	}
	return buf_append(out, h + start, len - start);
}

/* ---- the DNS driver ---- */

static void advance(struct smtp_mailauth *m, const struct ma_answer *a);

static void on_answer(const struct ma_answer *answer, void *ctx)
{
	struct smtp_mailauth *m = ctx;
	m->lookup = NULL;
	advance(m, answer);
	if (m->phase == PHASE_DONE && m->done != NULL)
		m->done(m->done_arg);
}

static void decide(struct smtp_mailauth *m)
{
	const struct dkim_sig_result *sigs = NULL;
	size_t nsigs = m->dkim ? dkim_verify_results(m->dkim, &sigs) : 0;
	struct authres a = {
		.authserv_id = authserv_id(m),
		.spf_done = m->spf_done, .spf = m->spf, .spf_helo = m->spf_helo,
		.spf_domain = m->spf_domain,
		.dkim_done = m->dkim != NULL, .dkim = sigs, .ndkim = nsigs,
	};
	enum dmarc_policy policy = DMARC_POLICY_NONE;
	enum dmarc_result dr = DMARC_NONE;

	if (m->dmarc != NULL) {
		dr = dmarc_result(m->dmarc);
		policy = dmarc_policy(m->dmarc);
		a.dmarc_done = true;
		a.dmarc = dr;
		a.dmarc_from = dmarc_from_domain(m->dmarc);
		a.dmarc_policy = policy;
	}
	m->action = SMTP_MAILAUTH_ACCEPT;
	/* RFC 9989 5.3.6: only a fail applies the policy; temperror and
	 * permerror deliver (the mail flows while DNS is broken). */
	if (dr == DMARC_FAIL && policy == DMARC_POLICY_REJECT)
		m->action = m->cfg->dmarc_reject ? SMTP_MAILAUTH_REJECT : SMTP_MAILAUTH_JUNK;
	else if (dr == DMARC_FAIL && policy == DMARC_POLICY_QUARANTINE)
		m->action = SMTP_MAILAUTH_JUNK;
	m->field = authres_build(&a);
	snprintf(m->summary, sizeof(m->summary), "spf=%s dkim=%s dmarc=%s policy=%s",
		 m->spf_done ? spf_result_name(m->spf) : "-",
		 m->dkim == NULL ? "-" : nsigs == 0 ? "none" : dkim_result_name(sigs[0].result),
		 m->dmarc ? dmarc_result_name(dr) : "-", dmarc_policy_name(policy));
	if (m->dmarc != NULL && dmarc_problem(m->dmarc) != NULL)
		log_info("event=dmarc_error session=%s from_domain=%s problem=\"%s\"", m->session_id,
			 m->from_domain ? m->from_domain : "-", dmarc_problem(m->dmarc));
	m->phase = PHASE_DONE;
}

/* Runs the current evaluator until it needs DNS (a lookup is then in
 * flight) or everything is done. Past the deadline, questions are
 * answered "temporary failure" without being asked. */
static void advance(struct smtp_mailauth *m, const struct ma_answer *a)
{
	static const struct ma_answer late = { .status = MA_DNS_TEMPFAIL };
	struct ma_query q;

	for (;;) {
		enum ma_step st;

		if (m->phase == PHASE_DKIM) {
			st = dkim_verify_step(m->dkim, a, &q);
			if (st == MA_STEP_DONE) {
				m->phase = PHASE_DMARC;
				a = NULL;
				if (!m->dmarc_on) {
					decide(m);
					return;
				}
				continue;
			}
		} else if (m->phase == PHASE_DMARC) {
			if (m->dmarc == NULL) {
				const struct dkim_sig_result *sigs = NULL;
				size_t n = m->dkim ? dkim_verify_results(m->dkim, &sigs) : 0;
				m->dmarc = dmarc_new(m->from_domain,
						     m->spf_done ? m->spf : SPF_NONE,
						     m->spf_helo ? NULL : m->spf_domain, sigs, n);
				a = NULL;
			}
			st = dmarc_step(m->dmarc, a, &q);
			if (st == MA_STEP_DONE) {
				decide(m);
				return;
			}
		} else {
			return;
		}
		if (time_mono_ms() >= m->deadline_ms) {
			a = &late;
			continue;
		}
		m->lookup = ma_resolve(&q, on_answer, m);
		return;
	}
}

bool smtp_mailauth_run(struct smtp_mailauth *m, smtp_mailauth_done_fn *done, void *arg)
{
	m->done = done;
	m->done_arg = arg;
	m->deadline_ms = time_mono_ms() + (int64_t)m->cfg->mailauth_timeout * 1000;
	if (m->dkim != NULL) {
		dkim_verify_end(m->dkim);
		m->phase = PHASE_DKIM;
	} else {
		m->phase = m->dmarc_on ? PHASE_DMARC : PHASE_DONE;
		if (m->phase == PHASE_DONE)
			decide(m);
	}
	advance(m, NULL);
	return m->phase == PHASE_DONE;
}

enum smtp_mailauth_action smtp_mailauth_action(const struct smtp_mailauth *m)
{
	return m->action;
}

const char *smtp_mailauth_field(const struct smtp_mailauth *m)
{
	return m->field;
}

const char *smtp_mailauth_summary(const struct smtp_mailauth *m)
{
	return m->summary;
}

void smtp_mailauth_free(struct smtp_mailauth **mp)
{
	struct smtp_mailauth *m = *mp;
	if (m == NULL)
		return;
	ma_resolve_cancel(&m->lookup);
	dkim_verify_free(&m->dkim);
	dmarc_free(&m->dmarc);
	free(m->from_domain);
	free(m->spf_domain);
	free(m->field);
	free(m->session_id);
	free(m);
	*mp = NULL;
}
