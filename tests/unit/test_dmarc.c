/* DMARC (RFC 9989): the record parser, the DNS Tree Walk, alignment and
 * policy selection, driven by a fake in-process DNS.
 *
 * Two sets of cases: hand-written ones below (named after the RFC section
 * they check), and the vectors in ../shared/testdata (postalsys/mailauth's
 * DMARC cases with their DNS data, OpenDMARC's record-parse table),
 * converted from YAML by dmarc_cases.py (argv[1]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "mailauth/dmarc.h"
#include "test.h"

/* ------------------------------------------------------------------ */
/* The fake DNS: a table of (name, type) -> status + TXT records. A name
 * not in the table is NXDOMAIN. */

#define ZONE_MAX 64
#define TXT_MAX 4

struct zrec {
	char name[MA_NAME_MAX + 1];
	enum ma_dns_type type;
	enum ma_dns_status status;
	size_t ntxt;
	char txt[TXT_MAX][DMARC_RECORD_MAX + 16];
};

struct zone {
	struct zrec r[ZONE_MAX];
	size_t n;
	/* the questions asked, in order */
	char asked[DMARC_QUERY_MAX + 4][MA_NAME_MAX + 8];
	size_t nasked;
};

static void zone_add(struct zone *z, const char *name, enum ma_dns_type type,
		     enum ma_dns_status status, const char *txt)
{
	struct zrec *r = NULL;

	for (size_t i = 0; i < z->n; i++) {
		if (strcmp(z->r[i].name, name) == 0 && z->r[i].type == type)
			r = &z->r[i];
	}
	if (r == NULL) {
		if (z->n >= ZONE_MAX)
			abort();
		r = &z->r[z->n++];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->type = type;
	}
	r->status = status;
	if (txt != NULL && r->ntxt < TXT_MAX)
		snprintf(r->txt[r->ntxt++], sizeof(r->txt[0]), "%s", txt);
}

/* Runs the evaluator to the end against z. */
static void run(struct dmarc *d, struct zone *z)
{
	struct ma_query q;
	const struct ma_answer *a = NULL;
	struct ma_answer ans;
	struct ma_record recs[TXT_MAX];
	int guard = 0;

	z->nasked = 0;
	while (dmarc_step(d, a, &q) == MA_STEP_QUERY) {
		const struct zrec *r = NULL;
		bool name_exists = false;

		CHECK(++guard <= DMARC_QUERY_MAX);
		if (guard > DMARC_QUERY_MAX + 2)
			break;
		if (z->nasked < ARRAY_SIZE(z->asked))
			snprintf(z->asked[z->nasked++], sizeof(z->asked[0]), "%s%s",
				 q.type == MA_DNS_TXT ? "" : "A:", q.name);
		for (size_t i = 0; i < z->n; i++) {
			if (strcmp(z->r[i].name, q.name) == 0) {
				name_exists = true;
				if (z->r[i].type == q.type)
					r = &z->r[i];
			}
		}
		memset(&ans, 0, sizeof(ans));
		if (r == NULL) {
			ans.status = name_exists ? MA_DNS_NODATA : MA_DNS_NXDOMAIN;
		} else {
			ans.status = r->status;
			if (r->status == MA_DNS_OK) {
				for (size_t i = 0; i < r->ntxt; i++) {
					recs[i].text = r->txt[i];
					recs[i].len = strlen(r->txt[i]);
				}
				ans.count = r->ntxt;
				ans.records = recs;
				if (q.type == MA_DNS_A) {
					memset(recs, 0, sizeof(recs[0]));
					recs[0].ip.family = AF_INET;
					ans.count = 1;
				}
			}
		}
		a = &ans;
	}
}

/* One evaluation with a zone given as "name=TXT record" pairs. */
static struct dmarc *eval(struct zone *z, const char *from, const char *spf,
			  const char *dkim1, const char *dkim2)
{
	const char *dk[2] = { NULL, NULL };
	size_t n = 0;
	struct dmarc *d;

	if (dkim1 != NULL)
		dk[n++] = dkim1;
	if (dkim2 != NULL)
		dk[n++] = dkim2;
	d = dmarc_new_ids(from, spf, dk, n);
	run(d, z);
	return d;
}

static void txt(struct zone *z, const char *name, const char *record)
{
	zone_add(z, name, MA_DNS_TXT, MA_DNS_OK, record);
}

/* ------------------------------------------------------------------ */
/* Hand-written cases */

/* RFC 9989 4.7, 4.8: the record grammar. */
static void test_rfc9989_4_8_record_grammar(void)
{
	struct dmarc_record r;
	static const char *const not_dmarc[] = {
		"", "v=DMARC2; p=none", "v=dmarc1; p=none", "v=Dmarc1; p=none",
		" v=DMARC1; p=none", "p=none; v=DMARC1", "v=DMARC1x; p=reject",
		"v=DMARC1 p=reject", "v:DMARC1", "spf1 v=DMARC1",
	};

	for (size_t i = 0; i < ARRAY_SIZE(not_dmarc); i++)
		CHECK_INT(dmarc_record_parse(not_dmarc[i], strlen(not_dmarc[i]), &r), 0);

	CHECK_INT(dmarc_record_parse("V=DMARC1;p=none", 15, &r), 1);
	CHECK_INT(dmarc_record_parse("v=DMARC1", 8, &r), 1);
	CHECK(r.policy_invalid);	/* no p */
	CHECK_INT(dmarc_record_parse("v = DMARC1 ;p = Quarantine ; sp=REJECT;np=none;"
				     "adkim=s; aspf=S; t=y; psd=n; fo=1; rua=mailto:a@b.example,"
				     " mailto:c@d.example!10m ; ruf=mailto:f@b.example ; x-new=1;",
				     strlen("v = DMARC1 ;p = Quarantine ; sp=REJECT;np=none;"
					    "adkim=s; aspf=S; t=y; psd=n; fo=1; rua=mailto:a@b.example,"
					    " mailto:c@d.example!10m ; ruf=mailto:f@b.example ; x-new=1;"), &r), 1);
	CHECK(!r.policy_invalid);
	CHECK_INT(r.p, DMARC_POLICY_QUARANTINE);
	CHECK_INT(r.sp, DMARC_POLICY_REJECT);
	CHECK_INT(r.np, DMARC_POLICY_NONE);
	CHECK(r.np_set);
	CHECK(r.adkim_strict);
	CHECK(r.aspf_strict);
	CHECK(r.testing);
	CHECK_INT(r.psd, DMARC_PSD_N);
	CHECK(r.rua_valid);
	CHECK_STR(r.rua, "mailto:a@b.example, mailto:c@d.example!10m");
	CHECK_STR(r.ruf, "mailto:f@b.example");

	/* a bad value falls back to the default (4.8), a bad p marks the
	 * record for the 4.10.1 rule */
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=bob; adkim=x; t=maybe", 33, &r), 1);
	CHECK(r.policy_invalid);
	CHECK(!r.adkim_strict);
	CHECK(!r.testing);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=none; sp=bob", 24, &r), 1);
	CHECK(r.policy_invalid);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; rua=nonsense", 32, &r), 1);
	CHECK(!r.rua_valid);
	/* the first occurrence of a tag counts */
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; p=none", 26, &r), 1);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
	/* a NUL inside, or an oversized record, is not a record */
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=no\0ne", 18, &r), 0);
	{
		char big[DMARC_RECORD_MAX + 20];
		memset(big, ' ', sizeof(big));
		memcpy(big, "v=DMARC1; p=none;", 17);
		CHECK_INT(dmarc_record_parse(big, sizeof(big), &r), 0);
		CHECK_INT(dmarc_record_parse(big, DMARC_RECORD_MAX, &r), 1);
	}
	/* pct (RFC 7489 6.3): pct=0 without t reads as t=y; with t, t wins */
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=0", 25, &r), 1);
	CHECK(r.testing);
	CHECK_INT(r.pct, 0);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=0; t=n", 30, &r), 1);
	CHECK(!r.testing);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=50", 26, &r), 1);
	CHECK(!r.testing);
	CHECK_INT(r.pct, 50);
	CHECK_INT(dmarc_record_parse("v=DMARC1; p=reject; pct=500", 27, &r), 1);
	CHECK_INT(r.pct, -1);
}

/* RFC 9989 4.4.1, 4.4.2, 3.2.10: aligned and unaligned identifiers. */
static void test_rfc9989_4_4_alignment(void)
{
	struct zone z = { 0 };
	struct dmarc *d;

	txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
	/* DKIM aligned, exact */
	d = eval(&z, "example.com", NULL, "example.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);
	CHECK(dmarc_dkim_aligned(d));
	CHECK(!dmarc_spf_aligned(d));
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	CHECK_STR(dmarc_policy_domain(d), "example.com");
	dmarc_free(&d);
	CHECK(d == NULL);
	/* SPF aligned, relaxed: a subdomain of the same Organizational Domain */
	d = eval(&z, "example.com", "bounces.example.com", NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);
	CHECK(dmarc_spf_aligned(d));
	dmarc_free(&d);
	/* unaligned: other domains pass, From: is example.com */
	d = eval(&z, "Example.COM.", "evil.example", "evil.example", "example.com.evil.example");
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	CHECK_STR(dmarc_from_domain(d), "example.com");
	dmarc_free(&d);
	/* a suffix that is not at a label boundary does not align */
	d = eval(&z, "example.com", "notexample.com", "xample.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	dmarc_free(&d);
	/* no identifier at all */
	d = eval(&z, "example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	dmarc_free(&d);
}

/* RFC 9989 3.2.10.2: strict alignment is identity; relaxed is the same
 * Organizational Domain. */
static void test_rfc9989_3_2_10_strict_relaxed(void)
{
	struct zone z = { 0 };
	struct dmarc *d;

	txt(&z, "_dmarc.example.com", "v=DMARC1; p=quarantine; adkim=s; aspf=r");
	d = eval(&z, "mail.example.com", NULL, "example.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);	/* adkim=s */
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_QUARANTINE);
	dmarc_free(&d);
	d = eval(&z, "mail.example.com", "example.com", NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);		/* aspf=r */
	CHECK_STR(dmarc_org_domain(d), "example.com");
	dmarc_free(&d);
	d = eval(&z, "mail.example.com", NULL, "mail.example.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);		/* identical */
	dmarc_free(&d);
}

/* RFC 9989 4.10.1: a subdomain without its own record gets the
 * Organizational Domain's sp; an existing one sp, a non-existent one np
 * (3.2.13). */
static void test_rfc9989_4_10_1_sp_np(void)
{
	struct zone z = { 0 };
	struct dmarc *d;

	txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; np=reject");
	zone_add(&z, "www.example.com", MA_DNS_A, MA_DNS_OK, NULL);
	/* the author's own domain: p */
	d = eval(&z, "example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	dmarc_free(&d);
	/* an existing subdomain: sp */
	d = eval(&z, "www.example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_QUARANTINE);
	CHECK_STR(dmarc_policy_domain(d), "example.com");
	CHECK(z.nasked >= 1 && strcmp(z.asked[z.nasked - 1], "A:www.example.com") == 0);
	dmarc_free(&d);
	/* a non-existent one (NXDOMAIN): np */
	d = eval(&z, "nowhere.example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	dmarc_free(&d);
	/* a temporary error on the existence test keeps sp */
	zone_add(&z, "flaky.example.com", MA_DNS_A, MA_DNS_TEMPFAIL, NULL);
	d = eval(&z, "flaky.example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_QUARANTINE);
	dmarc_free(&d);
	/* a pass asks no existence question */
	d = eval(&z, "nowhere.example.com", NULL, "example.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);
	for (size_t i = 0; i < z.nasked; i++)
		CHECK(strncmp(z.asked[i], "A:", 2) != 0);
	dmarc_free(&d);
	/* the subdomain's own record beats the parent's */
	txt(&z, "_dmarc.own.example.com", "v=DMARC1; p=none");
	d = eval(&z, "own.example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_NONE);
	CHECK_STR(dmarc_policy_domain(d), "own.example.com");
	dmarc_free(&d);
}

/* RFC 9989 4.7 "t": t=y applies one step lower. */
static void test_rfc9989_4_7_t(void)
{
	struct zone z = { 0 };
	struct dmarc *d;

	txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject; t=y");
	txt(&z, "_dmarc.example.net", "v=DMARC1; p=quarantine; t=y");
	txt(&z, "_dmarc.example.org", "v=DMARC1; p=reject; pct=0");
	d = eval(&z, "example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_QUARANTINE);
	CHECK_INT(dmarc_policy_published(d), DMARC_POLICY_REJECT);
	dmarc_free(&d);
	d = eval(&z, "example.net", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_NONE);
	dmarc_free(&d);
	d = eval(&z, "example.org", NULL, NULL, NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_QUARANTINE);
	dmarc_free(&d);
}

/* RFC 9989 4.10: the walk's questions, its 8-query cap, psd=y/psd=n. */
static void test_rfc9989_4_10_tree_walk(void)
{
	struct zone z = { 0 };
	struct dmarc *d;
	static const char *const want[] = {
		"_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
		"_dmarc.g.h.i.j.mail.example.com",
		"_dmarc.h.i.j.mail.example.com",
		"_dmarc.i.j.mail.example.com",
		"_dmarc.j.mail.example.com",
		"_dmarc.mail.example.com",
		"_dmarc.example.com",
		"_dmarc.com",
	};

	/* the RFC's own example */
	d = eval(&z, "a.b.c.d.e.f.g.h.i.j.mail.example.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_NONE);
	CHECK_INT(z.nasked, ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < z.nasked; i++)
		CHECK_STR(z.asked[i], want[i]);
	dmarc_free(&d);

	/* psd=y: the Organizational Domain is one label below the PSD, whose
	 * record applies when the Organizational Domain has none (B.4.3) */
	txt(&z, "_dmarc.bank.example", "v=DMARC1; p=reject; psd=y");
	d = eval(&z, "mail.giant.bank.example", "giant.bank.example", NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);
	CHECK_STR(dmarc_org_domain(d), "giant.bank.example");
	CHECK_STR(dmarc_policy_domain(d), "bank.example");
	dmarc_free(&d);
	/* ... so two names under the PSD do not align */
	d = eval(&z, "giant.bank.example", "mega.bank.example", NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	dmarc_free(&d);

	/* psd=n stops the walk: that domain is the Organizational Domain */
	txt(&z, "_dmarc.example.net", "v=DMARC1; p=none");
	txt(&z, "_dmarc.corp.example.net", "v=DMARC1; p=reject; psd=n");
	d = eval(&z, "x.corp.example.net", NULL, "example.net", NULL);
	CHECK_INT(dmarc_result(d), DMARC_FAIL);
	CHECK_STR(dmarc_policy_domain(d), "corp.example.net");
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_REJECT);
	dmarc_free(&d);
	d = eval(&z, "x.corp.example.net", NULL, "y.corp.example.net", NULL);
	CHECK_INT(dmarc_result(d), DMARC_PASS);
	dmarc_free(&d);
}

/* RFC 9989 4.10.1, 5.3.6: DNS errors and the budget. */
static void test_rfc9989_5_3_6_errors(void)
{
	struct zone z = { 0 };
	struct dmarc *d;

	zone_add(&z, "_dmarc.example.com", MA_DNS_TXT, MA_DNS_TEMPFAIL, NULL);
	d = eval(&z, "example.com", NULL, "example.com", NULL);
	CHECK_INT(dmarc_result(d), DMARC_TEMPERROR);
	CHECK(dmarc_problem(d) != NULL);
	CHECK_INT(dmarc_policy(d), DMARC_POLICY_NONE);
	dmarc_free(&d);
	/* tempfail above the author during the walk */
	zone_add(&z, "_dmarc.org", MA_DNS_TXT, MA_DNS_TEMPFAIL, NULL);
	d = eval(&z, "example.org", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_TEMPERROR);
	dmarc_free(&d);
	/* a lookup that never came back (resume with NULL) is temporary */
	{
		struct ma_query q;
		d = dmarc_new_ids("example.com", NULL, NULL, 0);
		CHECK_INT(dmarc_step(d, NULL, &q), MA_STEP_QUERY);
		CHECK_STR(q.name, "_dmarc.example.com");
		CHECK_INT(q.type, MA_DNS_TXT);
		CHECK_INT(dmarc_step(d, NULL, &q), MA_STEP_DONE);
		CHECK_INT(dmarc_result(d), DMARC_TEMPERROR);
		dmarc_free(&d);
	}
	/* no usable From: domain */
	d = eval(&z, NULL, NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PERMERROR);
	dmarc_free(&d);
	d = eval(&z, "exa mple.com", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PERMERROR);
	dmarc_free(&d);
	d = eval(&z, "b\xc3\xa4r.example", NULL, NULL, NULL);
	CHECK_INT(dmarc_result(d), DMARC_PERMERROR);
	dmarc_free(&d);
	/* many identifiers with deep names stay within DMARC_QUERY_MAX */
	{
		struct zone z2 = { 0 };
		const char *dk[] = {
			"a.b.c.d.e.f.g.h.i.example.com", "b.c.d.e.f.g.h.i.j.example.com",
			"c.d.e.f.g.h.i.j.k.example.com", "d.e.f.g.h.i.j.k.l.example.com",
			"e.f.g.h.i.j.k.l.m.example.com", "f.g.h.i.j.k.l.m.n.example.com",
			"g.h.i.j.k.l.m.n.o.example.com", "h.i.j.k.l.m.n.o.p.example.com",
			"i.j.k.l.m.n.o.p.q.example.com", "j.k.l.m.n.o.p.q.r.example.com",
		};
		txt(&z2, "_dmarc.example.com", "v=DMARC1; p=reject");
		d = dmarc_new_ids("z.y.x.example.com", NULL, dk, ARRAY_SIZE(dk));
		run(d, &z2);
		CHECK(z2.nasked <= DMARC_QUERY_MAX);
		CHECK(dmarc_result(d) == DMARC_PASS || dmarc_result(d) == DMARC_TEMPERROR);
		dmarc_free(&d);
	}
}

/* ------------------------------------------------------------------ */
/* The converted vectors */

static enum dmarc_policy policy_of(const char *s)
{
	return strcmp(s, "reject") == 0 ? DMARC_POLICY_REJECT :
	       strcmp(s, "quarantine") == 0 ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

static int split(char *line, char **f, int max)
{
	int n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, "\t", &save); t != NULL && n < max;
	     t = strtok_r(NULL, "\t", &save))
		f[n++] = t;
	return n;
}

static int vector_cases, vector_checks_before;

static void check_case(const char *name, const char *from, const char *spf,
		       const char **dkim, size_t ndkim, struct zone *z,
		       char (*keys)[2][600], size_t nkeys, char **queries, int nqueries)
{
	struct dmarc *d = dmarc_new_ids(from, spf, dkim, ndkim);
	int before = test_failures;
	const struct dmarc_record *rec;

	run(d, z);
	rec = dmarc_record(d);
	for (size_t i = 0; i < nkeys; i++) {
		const char *k = keys[i][0], *v = keys[i][1];

		if (strcmp(k, "result") == 0) {
			CHECK_STR(dmarc_result_name(dmarc_result(d)), v);
		} else if (strcmp(k, "policy") == 0) {
			CHECK(dmarc_result(d) == DMARC_PASS || dmarc_result(d) == DMARC_FAIL);
			CHECK_STR(dmarc_policy_name(dmarc_policy(d)), v);
		} else if (strcmp(k, "nopolicy") == 0) {
			CHECK(rec == NULL);
		} else if (strcmp(k, "domain") == 0) {
			CHECK_STR(dmarc_policy_domain(d), v);
		} else if (strcmp(k, "from") == 0) {
			CHECK_STR(dmarc_from_domain(d), v);
		} else if (strcmp(k, "norecord") == 0) {
			CHECK_INT(rec == NULL, strcmp(v, "1") == 0);
		} else if (strcmp(k, "org_record") == 0) {
			CHECK(rec != NULL);
			CHECK_INT(dmarc_policy_domain(d) != NULL &&
				  strcmp(dmarc_policy_domain(d), dmarc_from_domain(d)) != 0,
				  strcmp(v, "1") == 0);
		} else if (strcmp(k, "spf_aligned") == 0) {
			CHECK_INT(dmarc_spf_aligned(d), strcmp(v, "1") == 0);
		} else if (strcmp(k, "dkim_aligned") == 0) {
			CHECK_INT(dmarc_dkim_aligned(d), strcmp(v, "1") == 0);
		} else if (strncmp(k, "rec_", 4) == 0) {
			CHECK(rec != NULL);
			if (rec == NULL)
				continue;
			if (strcmp(k, "rec_v") == 0)
				CHECK_STR(v, "DMARC1");
			else if (strcmp(k, "rec_p") == 0)
				CHECK_INT(rec->p, policy_of(v));
			else if (strcmp(k, "rec_sp") == 0)
				CHECK_INT(rec->sp_set ? rec->sp : rec->p, policy_of(v));
			else if (strcmp(k, "rec_np") == 0)
				CHECK_INT(rec->np, policy_of(v));
			else if (strcmp(k, "rec_adkim") == 0)
				CHECK_INT(rec->adkim_strict, strcmp(v, "s") == 0);
			else if (strcmp(k, "rec_aspf") == 0)
				CHECK_INT(rec->aspf_strict, strcmp(v, "s") == 0);
			else if (strcmp(k, "rec_pct") == 0)
				CHECK_INT(rec->pct, atoi(v));
			else if (strcmp(k, "rec_rua") == 0)
				CHECK_STR(rec->rua, v);
			else if (strcmp(k, "rec_ruf") == 0)
				CHECK_STR(rec->ruf, v);
			else if (strcmp(k, "rec_uri") == 0)
				CHECK(strstr(rec->rua, v) != NULL || strstr(rec->ruf, v) != NULL);
			else
				CHECK(!"unknown record key");
		} else {
			fprintf(stderr, "unknown key %s\n", k);
			CHECK(!"unknown key");
		}
	}
	if (nqueries > 0) {
		size_t t = 0;
		for (size_t i = 0; i < z->nasked; i++) {
			if (strncmp(z->asked[i], "_dmarc.", 7) != 0)
				continue;
			CHECK((int)t < nqueries);
			if ((int)t < nqueries)
				CHECK_STR(z->asked[i], queries[t]);
			t++;
		}
		CHECK_INT(t, nqueries);
	}
	if (test_failures != before)
		fprintf(stderr, "  in vector: %s\n", name);
	vector_cases++;
	dmarc_free(&d);
}

static void check_parse_case(const char *record, const char *status, const char *opendmarc)
{
	struct dmarc_record r;
	int got = dmarc_record_parse(record, strlen(record), &r);
	int before = test_failures;

	CHECK_INT(got, strcmp(status, "dmarc") == 0);
	if (got == 1) {
		/* OpenDMARC refuses p=bob, sp=bob and a missing p: here such
		 * records are kept with policy_invalid (RFC 9989 4.10.1) */
		if (strstr(record, "=bob") != NULL &&
		    (strstr(record, " p=bob") != NULL || strstr(record, "sp=bob") != NULL))
			CHECK(r.policy_invalid);
		if (strcmp(opendmarc, "DMARC_PARSE_ERROR_NO_REQUIRED_P") == 0)
			CHECK(r.policy_invalid);
		if (strcmp(opendmarc, "DMARC_PARSE_OKAY") == 0 && strstr(record, "p=n;") == NULL)
			CHECK(!r.policy_invalid);
		/* p=n is not "none" (dmarc-request): OpenDMARC is lenient */
		if (strstr(record, "p=n;") != NULL)
			CHECK(r.policy_invalid);
		if (strstr(record, "adkim=bob") != NULL)
			CHECK(!r.adkim_strict);
		if (strstr(record, "pct=500") != NULL)
			CHECK_INT(r.pct, -1);
	}
	if (test_failures != before)
		fprintf(stderr, "  in record vector: \"%s\"\n", record);
	vector_cases++;
}

static const char *script_path;

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_vectors(void)
{
	static const char *const tries[] = {
		"../../shared/testdata", "../shared/testdata", "/work/shared/testdata",
	};
	const char *dir = getenv("YUBIN_TESTDATA");
	char cmd[1024], line[8192];
	FILE *f;
	/* one case being read */
	char from[MA_NAME_MAX + 8] = "", spf[MA_NAME_MAX + 8] = "", name[600] = "";
	char dkim_buf[DMARC_IDS_MAX][MA_NAME_MAX + 8];
	const char *dkim[DMARC_IDS_MAX];
	size_t ndkim = 0, nkeys = 0;
	static char keys[16][2][600];
	static char qbuf[4096];
	char *queries[16];
	int nqueries = 0;
	static struct zone z;
	bool have_spf = false;

	for (size_t i = 0; dir == NULL && i < ARRAY_SIZE(tries); i++) {
		if (is_dir(tries[i]))
			dir = tries[i];
	}
	CHECK(dir != NULL && script_path != NULL);
	if (dir == NULL || script_path == NULL)
		return;
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' '%s'", script_path, dir);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	memset(&z, 0, sizeof(z));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *fl[TXT_MAX + 8];
		int n;

		line[strcspn(line, "\n")] = '\0';
		n = split(line, fl, (int)ARRAY_SIZE(fl));
		if (n == 0)
			continue;
		if (strcmp(fl[0], "C") == 0 && n >= 2) {
			snprintf(name, sizeof(name), "%s", fl[1]);
			memset(&z, 0, sizeof(z));
			ndkim = nkeys = 0;
			nqueries = 0;
			have_spf = false;
		} else if (strcmp(fl[0], "F") == 0 && n >= 2) {
			snprintf(from, sizeof(from), "%s", fl[1]);
		} else if (strcmp(fl[0], "S") == 0 && n >= 2) {
			snprintf(spf, sizeof(spf), "%s", fl[1]);
			have_spf = true;
		} else if (strcmp(fl[0], "K") == 0 && n >= 2 && ndkim < DMARC_IDS_MAX) {
			snprintf(dkim_buf[ndkim], sizeof(dkim_buf[0]), "%s", fl[1]);
			dkim[ndkim] = dkim_buf[ndkim];
			ndkim++;
		} else if (strcmp(fl[0], "D") == 0 && n >= 4) {
			enum ma_dns_type t = strcmp(fl[2], "A") == 0 ? MA_DNS_A : MA_DNS_TXT;
			enum ma_dns_status st =
				strcmp(fl[3], "ok") == 0 ? MA_DNS_OK :
				strcmp(fl[3], "nodata") == 0 ? MA_DNS_NODATA :
				strcmp(fl[3], "nxdomain") == 0 ? MA_DNS_NXDOMAIN :
				strcmp(fl[3], "tempfail") == 0 ? MA_DNS_TEMPFAIL : MA_DNS_PERMFAIL;
			if (n == 4 || t == MA_DNS_A)
				zone_add(&z, fl[1], t, st, NULL);
			for (int i = 4; i < n && t == MA_DNS_TXT; i++)
				zone_add(&z, fl[1], t, st, fl[i]);
		} else if (strcmp(fl[0], "E") == 0 && n >= 3 && nkeys < ARRAY_SIZE(keys)) {
			snprintf(keys[nkeys][0], sizeof(keys[0][0]), "%s", fl[1]);
			snprintf(keys[nkeys][1], sizeof(keys[0][1]), "%s", fl[2]);
			nkeys++;
		} else if (strcmp(fl[0], "Q") == 0) {
			size_t off = 0;
			for (int i = 1; i < n && nqueries < (int)ARRAY_SIZE(queries); i++) {
				size_t len = strlen(fl[i]) + 1;
				if (off + len > sizeof(qbuf))
					break;
				memcpy(qbuf + off, fl[i], len);
				queries[nqueries++] = qbuf + off;
				off += len;
			}
		} else if (strcmp(fl[0], ".") == 0) {
			CHECK(nkeys > 0 || nqueries > 0);
			check_case(name, strcmp(from, "-") == 0 ? NULL : from,
				   have_spf ? spf : NULL, dkim, ndkim, &z, keys, nkeys,
				   queries, nqueries);
		} else if (strcmp(fl[0], "R") == 0) {
			/* an empty record is an empty field: split drops it */
			if (n == 3)
				check_parse_case("", fl[1], fl[2]);
			else if (n >= 4)
				check_parse_case(fl[1], fl[2], fl[3]);
		}
	}
	CHECK_INT(pclose(f), 0);
	/* the vector files hold about a hundred cases: a converter that
	 * emits nothing must not pass */
	CHECK(vector_cases >= 90);
	printf("%d DMARC vectors\n", vector_cases);
	(void)vector_checks_before;
}

int main(int argc, char **argv)
{
	script_path = argc > 1 ? argv[1] : NULL;
	RUN(test_rfc9989_4_8_record_grammar);
	RUN(test_rfc9989_4_4_alignment);
	RUN(test_rfc9989_3_2_10_strict_relaxed);
	RUN(test_rfc9989_4_10_1_sp_np);
	RUN(test_rfc9989_4_7_t);
	RUN(test_rfc9989_4_10_tree_walk);
	RUN(test_rfc9989_5_3_6_errors);
	RUN(test_vectors);
	return test_done();
}
