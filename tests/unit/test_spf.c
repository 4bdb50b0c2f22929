/* mailauth/spf: the evaluator against an in-process fake DNS.
 *
 * Without arguments: table-driven cases named after the RFC 7208 sections
 * they check (the macro examples of 7.4, the limits of 4.6.4, record
 * selection of 4.5, the HELO identity of 2.3, resumption with answers
 * that vanish after each call).
 *
 * With --suite: the community test suites, converted by spf_suite.py into
 * lines on stdin (see there): each scenario's zone data becomes the fake
 * DNS, each test case is evaluated and its result must be one of those
 * the suite allows, its explanation the one the suite gives. */
#include "test.h"
#include "core/util.h"
#include "mailauth/spf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the fake DNS ---- */

enum ztype { Z_A, Z_AAAA, Z_MX, Z_PTR, Z_TXT, Z_SPF, Z_CNAME, Z_TIMEOUT, Z_TXTNONE };

struct zrec {
	char *name;
	enum ztype type;
	char *value;
	size_t len;
};

static struct zrec *zone;
static size_t zone_count;
static unsigned max_queries;	/* the most any one evaluation asked */

static void zone_add(const char *name, enum ztype type, const char *value, size_t len)
{
	zone = xrealloc(zone, (zone_count + 1) * sizeof(*zone));
	struct zrec *z = &zone[zone_count++];
	z->name = xstrdup(name);
	size_t n = strlen(z->name);
	if (n > 0 && z->name[n - 1] == '.')
		z->name[n - 1] = '\0';
	z->type = type;
	z->value = xmalloc(len + 1);
	memcpy(z->value, value, len);
	z->value[len] = '\0';
	z->len = len;
}

static void zone_clear(void)
{
	for (size_t i = 0; i < zone_count; i++) {
		free(zone[i].name);
		free(zone[i].value);
	}
	xfree(&zone);
	zone_count = 0;
}

/* Answers as the suites' drivers do: SPF-type records stand for TXT
 * where a name has no TXT entry at all; TIMEOUT is a temporary failure
 * unless a record of the type came before it; a CNAME is followed. The
 * answer is built in heap memory freed right after the step, so ASan
 * sees an evaluator that keeps a pointer into it. */
static struct ma_answer *fake_lookup(const struct ma_query *q)
{
	struct ma_answer *a = xcalloc(1, sizeof(*a));
	struct ma_record *recs = xcalloc(MA_ANSWER_MAX, sizeof(*recs));
	a->records = recs;
	char name[MA_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", q->name);
	for (int hop = 0; hop < 10; hop++) {
		bool exists = false, has_txt = false, moved = false;
		for (size_t i = 0; i < zone_count; i++) {
			if (strcasecmp(zone[i].name, name) != 0)
				continue;
			exists = true;
			has_txt |= zone[i].type == Z_TXT || zone[i].type == Z_TXTNONE;
			if (zone[i].type == Z_CNAME && !moved && zone[i].value[0] != '\0') {
				snprintf(name, sizeof(name), "%s", zone[i].value);
				size_t nl = strlen(name);
				if (nl > 0 && name[nl - 1] == '.')
					name[nl - 1] = '\0';
				moved = true;
			}
		}
		if (moved)
			continue;
		if (!exists) {
			a->status = MA_DNS_NXDOMAIN;
			return a;
		}
		size_t n = 0;
		for (size_t i = 0; i < zone_count; i++) {
			struct zrec *z = &zone[i];
			if (strcasecmp(z->name, name) != 0)
				continue;
			if (z->type == Z_TIMEOUT) {
				if (n == 0) {
					a->status = MA_DNS_TEMPFAIL;
					return a;
				}
				continue;
			}
			bool take = false;
			switch (q->type) {
			case MA_DNS_A:
				take = z->type == Z_A;
				break;
			case MA_DNS_AAAA:
				take = z->type == Z_AAAA;
				break;
			case MA_DNS_MX:
				take = z->type == Z_MX;
				break;
			case MA_DNS_PTR:
				take = z->type == Z_PTR;
				break;
			case MA_DNS_TXT:
				take = z->type == Z_TXT || (z->type == Z_SPF && !has_txt);
				break;
			}
			if (!take || n >= MA_ANSWER_MAX)
				continue;
			struct ma_record *r = &recs[n];
			if (z->type == Z_A || z->type == Z_AAAA) {
				r->ip.family = z->type == Z_A ? AF_INET : AF_INET6;
				if (inet_pton(r->ip.family, z->value, &r->ip.u) != 1)
					continue;
			} else {
				r->text = z->value;
				r->len = z->len;
			}
			n++;
		}
		a->count = n;
		a->status = n > 0 ? MA_DNS_OK : MA_DNS_NODATA;
		return a;
	}
	a->status = MA_DNS_TEMPFAIL;
	return a;
}

static void answer_free(struct ma_answer *a)
{
	if (a == NULL)
		return;
	free((void *)a->records);
	free(a);
}

static bool parse_ip(const char *text, struct ma_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, &ip->u.v4) == 1) {
		ip->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &ip->u.v6) == 1) {
		ip->family = AF_INET6;
		return true;
	}
	return false;
}

/* Runs one evaluation to the end against the zone. */
static struct spf *run(const char *ip_text, const char *helo, const char *sender,
		       const char *receiver)
{
	struct ma_ip ip;
	if (!parse_ip(ip_text, &ip)) {
		fprintf(stderr, "bad ip %s\n", ip_text);
		abort();
	}
	struct spf *spf = spf_new(&ip, helo, sender, receiver);
	struct ma_answer *a = NULL;
	struct ma_query q;
	unsigned steps = 0;
	while (spf_step(spf, a, &q) == MA_STEP_QUERY) {
		answer_free(a);
		/* Every question is well formed. */
		CHECK(q.name[0] != '\0' && strlen(q.name) <= MA_NAME_MAX);
		a = fake_lookup(&q);
		if (++steps > 1000) {
			CHECK(!"more than 1000 questions");
			break;
		}
	}
	answer_free(a);
	if (spf_queries(spf) > max_queries)
		max_queries = spf_queries(spf);
	return spf;
}

/* ---- the table-driven cases ---- */

static void zone_txt(const char *name, const char *text)
{
	zone_add(name, Z_TXT, text, strlen(text));
}

static void zone_rr(const char *name, enum ztype t, const char *v)
{
	zone_add(name, t, v, strlen(v));
}

static void expect(const char *ip, const char *helo, const char *sender,
		   enum spf_result want, const char *exp)
{
	struct spf *spf = run(ip, helo, sender, "mx.receiver.example");
	if (spf_result(spf) != want)
		fprintf(stderr, "  %s %s: %s (%s), want %s\n", ip, sender,
			spf_result_name(spf_result(spf)),
			spf_problem(spf) ? spf_problem(spf) : "", spf_result_name(want));
	CHECK_INT(spf_result(spf), want);
	if (exp != NULL)
		CHECK_STR(spf_explanation(spf), exp);
	spf_free(&spf);
	CHECK(spf == NULL);
}

/* RFC 7208 7.4: the examples, through exists: and exp=. */
static void test_rfc7208_7_4_macro_examples(void)
{
	static const struct {
		const char *macro, *want;
	} cases[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		  "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
		{ "%{c}", "192.0.2.3" },
		{ "%{r}", "mx.receiver.example" },
		{ "%{h}", "mx.example.org" },
		{ "%{S}", "strong-bad%40email.example.com" },
		{ "%%%_%-", "% %20" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zone_txt("email.example.com", "v=spf1 -all exp=exp.example.com");
		zone_txt("exp.example.com", cases[i].macro);
		expect("192.0.2.3", "mx.example.org", "strong-bad@email.example.com", SPF_FAIL,
		       cases[i].want);
		zone_clear();
	}
	/* IPv6: %{ir} is nibbles (7.4), and a domain-spec ending in a macro. */
	zone_txt("email.example.com", "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all");
	zone_rr("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
		Z_A, "127.0.0.2");
	expect("2001:db8::cb01", "h.example", "strong-bad@email.example.com", SPF_PASS, NULL);
	expect("2001:db8::cb02", "h.example", "strong-bad@email.example.com", SPF_FAIL, NULL);
	zone_clear();
}

/* RFC 7208 4.6.4: ten DNS terms, two void lookups, ten MX names. */
static void test_rfc7208_4_6_4_limits(void)
{
	char rec[512] = "v=spf1";
	for (int i = 0; i < 10; i++)
		snprintf(rec + strlen(rec), sizeof(rec) - strlen(rec), " a:h%d.example.com", i);
	zone_txt("ten.example.com", strcat(rec, " -all"));
	for (int i = 0; i < 10; i++) {
		char n[64];
		snprintf(n, sizeof(n), "h%d.example.com", i);
		zone_rr(n, Z_A, "192.0.2.200");
	}
	expect("192.0.2.1", "h", "u@ten.example.com", SPF_FAIL, NULL);
	zone_txt("eleven.example.com",
		 "v=spf1 include:ten.example.com ip4:192.0.2.1 -all");
	/* the 11th DNS term is inside the include */
	expect("192.0.2.1", "h", "u@eleven.example.com", SPF_PERMERROR, NULL);
	zone_txt("voids.example.com", "v=spf1 a:n1.example.com a:n2.example.com "
		 "ip4:192.0.2.1 -all");
	expect("192.0.2.1", "h", "u@voids.example.com", SPF_PASS, NULL);
	zone_txt("voids3.example.com", "v=spf1 a:n1.example.com a:n2.example.com "
		 "a:n3.example.com ip4:192.0.2.1 -all");
	expect("192.0.2.1", "h", "u@voids3.example.com", SPF_PERMERROR, NULL);
	/* 11 MX records: the 11th would be an 11th address lookup, a
	 * permerror; a match among the first 10 comes before it. */
	zone_txt("mx11.example.com", "v=spf1 mx -all");
	zone_txt("mx10.example.com", "v=spf1 mx -all");
	for (int i = 0; i < 11; i++) {
		char n[64];
		snprintf(n, sizeof(n), "h%d.example.com", i);
		zone_rr("mx11.example.com", Z_MX, n);
		if (i < 10)
			zone_rr("mx10.example.com", Z_MX, n);
	}
	zone_rr("h10.example.com", Z_A, "192.0.2.210");
	expect("192.0.2.200", "h", "u@mx11.example.com", SPF_PASS, NULL);
	expect("192.0.2.210", "h", "u@mx11.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.201", "h", "u@mx11.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.200", "h", "u@mx10.example.com", SPF_PASS, NULL);
	expect("192.0.2.201", "h", "u@mx10.example.com", SPF_FAIL, NULL);
	zone_clear();
}

/* RFC 7208 2.3, 2.4: <> checks postmaster@helo; spf_new_helo checks HELO. */
static void test_rfc7208_2_4_null_sender(void)
{
	zone_txt("mx.example.org", "v=spf1 ip4:192.0.2.9 -all");
	struct ma_ip ip;
	parse_ip("192.0.2.9", &ip);
	struct spf *spf = run("192.0.2.9", "mx.example.org", "", "r");
	CHECK_INT(spf_result(spf), SPF_PASS);
	CHECK_STR(spf_domain(spf), "mx.example.org");
	CHECK_STR(spf_identity(spf), "postmaster@mx.example.org");
	spf_free(&spf);
	spf = spf_new_helo(&ip, "mx.example.org", "r");
	struct ma_query q;
	CHECK_INT(spf_step(spf, NULL, &q), MA_STEP_QUERY);
	CHECK_INT(q.type, MA_DNS_TXT);
	CHECK_STR(q.name, "mx.example.org");
	struct ma_answer *a = fake_lookup(&q);
	CHECK_INT(spf_step(spf, a, &q), MA_STEP_DONE);
	answer_free(a);
	CHECK_INT(spf_result(spf), SPF_PASS);
	spf_free(&spf);
	/* an address literal is no domain: none (4.3) */
	spf = run("192.0.2.9", "[192.0.2.9]", "", "r");
	CHECK_INT(spf_result(spf), SPF_NONE);
	CHECK_INT(spf_queries(spf), 0);
	spf_free(&spf);
	zone_clear();
}

/* RFC 7208 4.5, 4.6: record selection and syntax. */
static void test_rfc7208_4_5_selection(void)
{
	zone_txt("two.example.com", "v=spf1 +all");
	zone_txt("two.example.com", "v=spf1 -all");
	zone_txt("other.example.com", "v=spf10 +all");
	zone_txt("other.example.com", "google-site-verification=x");
	zone_txt("bad.example.com", "v=spf1 ip4:192.0.2.1 foo:bar -all");
	zone_txt("cidr.example.com", "v=spf1 ip4:192.0.2.0/33 -all");
	zone_txt("dup.example.com", "v=spf1 redirect=a.example.com redirect=b.example.com");
	zone_txt("unk.example.com", "v=spf1 foo=%{d} ip4:192.0.2.1 -all");
	zone_txt("temp.example.com", "v=spf1 a:t.example.com -all");
	zone_rr("t.example.com", Z_TIMEOUT, "");
	expect("192.0.2.1", "h", "u@two.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.1", "h", "u@other.example.com", SPF_NONE, NULL);
	expect("192.0.2.1", "h", "u@nowhere.example.com", SPF_NONE, NULL);
	expect("192.0.2.1", "h", "u@bad.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.1", "h", "u@cidr.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.1", "h", "u@dup.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.1", "h", "u@unk.example.com", SPF_PASS, NULL);
	expect("192.0.2.1", "h", "u@temp.example.com", SPF_TEMPERROR, NULL);
	zone_clear();

	/* RFC 7208 4.6.1, 5.6, 7.1: syntax, term by term (the last one, so a
	 * match before it shows the whole record is parsed first). */
	static const struct {
		const char *term;
		enum spf_result want;	/* with ip4:192.0.2.1 before it */
	} terms[] = {
		{ "a:%{c}.example.com", SPF_PERMERROR },	/* c only in exp text */
		{ "a:%{d0}.example.com", SPF_PERMERROR },	/* 7.3: a digit is >= 1 */
		{ "a:%{x}.example.com", SPF_PERMERROR },
		{ "exists:%", SPF_PERMERROR },
		{ "exists:a%b.example.com", SPF_PERMERROR },
		{ "a:example", SPF_PERMERROR },			/* no "." toplabel */
		{ "a:example.123", SPF_PERMERROR },		/* numeric toplabel */
		{ "a:example.com.", SPF_PASS },
		{ "a:%{d}", SPF_PASS },				/* ends with a macro */
		{ "ip4:01.2.3.4", SPF_PERMERROR },
		{ "ip4:192.0.2.0/033", SPF_PERMERROR },
		{ "ip6:2001:db8::/129", SPF_PERMERROR },
		{ "a//129", SPF_PERMERROR },
		{ "a/32//128", SPF_PASS },
		{ "a/", SPF_PERMERROR },
		{ "mx:example.com/24//64", SPF_PASS },
		{ "ptr/24", SPF_PERMERROR },
		{ "all:x", SPF_PERMERROR },
		{ "include", SPF_PERMERROR },
		{ "+-all", SPF_PERMERROR },
		{ "exp=", SPF_PERMERROR },
		{ "x-y.z=anything%%", SPF_PASS },		/* unknown modifier */
		{ "1x=y", SPF_PERMERROR },
		{ "=y", SPF_PERMERROR },
	};
	for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++) {
		char rec[256];
		snprintf(rec, sizeof(rec), "v=spf1 ip4:192.0.2.1 %s", terms[i].term);
		zone_txt("syn.example.com", rec);
		struct spf *spf = run("192.0.2.1", "h", "u@syn.example.com", "r");
		if (spf_result(spf) != terms[i].want)
			fprintf(stderr, "  \"%s\": %s, want %s\n", rec,
				spf_result_name(spf_result(spf)), spf_result_name(terms[i].want));
		CHECK_INT(spf_result(spf), terms[i].want);
		CHECK_INT(spf_queries(spf), 1);	/* the record only */
		spf_free(&spf);
		zone_clear();
	}
}

/* RFC 7208 5.2, 6.1: include and redirect, their "none" is permerror. */
static void test_rfc7208_5_2_include(void)
{
	zone_txt("a.example.com", "v=spf1 include:b.example.com ~all");
	zone_txt("b.example.com", "v=spf1 ip4:192.0.2.0/24 -all");
	zone_txt("c.example.com", "v=spf1 include:none.example.com ~all");
	zone_txt("d.example.com", "v=spf1 redirect=b.example.com");
	zone_txt("e.example.com", "v=spf1 -include:b.example.com +all");
	expect("192.0.2.7", "h", "u@a.example.com", SPF_PASS, NULL);
	expect("198.51.100.7", "h", "u@a.example.com", SPF_SOFTFAIL, NULL);
	expect("192.0.2.7", "h", "u@c.example.com", SPF_PERMERROR, NULL);
	expect("192.0.2.7", "h", "u@d.example.com", SPF_PASS, NULL);
	expect("198.51.100.7", "h", "u@d.example.com", SPF_FAIL, NULL);
	expect("192.0.2.7", "h", "u@e.example.com", SPF_FAIL, NULL);
	expect("198.51.100.7", "h", "u@e.example.com", SPF_PASS, NULL);
	zone_clear();
}

/* Every answer status at every step: the evaluation ends, with a result
 * among those RFC 7208 allows, within bounds. */
static void test_rfc7208_2_6_every_status(void)
{
	static const enum ma_dns_status st[] = { MA_DNS_OK, MA_DNS_NODATA, MA_DNS_NXDOMAIN,
						 MA_DNS_TEMPFAIL, MA_DNS_PERMFAIL };
	for (size_t k = 0; k < sizeof(st) / sizeof(st[0]); k++) {
		struct ma_ip ip;
		parse_ip("192.0.2.1", &ip);
		struct spf *spf = spf_new(&ip, "h.example", "u@example.com", "r");
		struct ma_query q;
		struct ma_record rec = { .text = "v=spf1 a mx ptr exists:%{i}.x.example "
						 "include:i.example -all", .len = 0 };
		rec.len = strlen(rec.text);
		struct ma_answer a = { .status = MA_DNS_OK, .count = 1, .records = &rec };
		unsigned n = 0;
		enum ma_step r = spf_step(spf, NULL, &q);
		while (r == MA_STEP_QUERY && n++ < 100) {
			struct ma_answer b = { .status = st[k] };
			r = spf_step(spf, q.type == MA_DNS_TXT && n == 1 ? &a : &b, &q);
		}
		CHECK_INT(r, MA_STEP_DONE);
		if (st[k] == MA_DNS_TEMPFAIL)
			CHECK_INT(spf_result(spf), SPF_TEMPERROR);
		spf_free(&spf);
	}
}

/* ---- the suites ---- */

static char *unescape(const char *s, size_t *len_r)
{
	char *out = xmalloc(strlen(s) + 1);
	size_t n = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '%' && p[1] && p[2]) {
			char hx[3] = { p[1], p[2], 0 };
			out[n++] = (char)strtol(hx, NULL, 16);
			p += 2;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

static int run_suite(void)
{
	char line[65536];
	unsigned tests = 0, failed = 0;
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char *f[8];
		size_t nf = 0;
		for (char *p = line, *tab; nf < 8; p = tab + 1) {
			f[nf++] = p;
			tab = strchr(p, '\t');
			if (tab == NULL)
				break;
			*tab = '\0';
		}
		if (strcmp(f[0], "E") == 0) {
			zone_clear();
			continue;
		}
		if (strcmp(f[0], "R") == 0 && nf >= 3) {
			size_t nlen;
			char *name = unescape(f[1], &nlen);
			enum ztype t = strcmp(f[2], "SPF") == 0 ? Z_SPF : Z_TXT;
			for (size_t i = 0; i < zone_count;) {
				if (strcasecmp(zone[i].name, name) == 0 && zone[i].type == t) {
					free(zone[i].name);
					free(zone[i].value);
					zone[i] = zone[--zone_count];
				} else {
					i++;
				}
			}
			free(name);
			continue;
		}
		if (strcmp(f[0], "Z") == 0 && nf == 4) {
			static const char *const types[] = { "A", "AAAA", "MX", "PTR", "TXT", "SPF",
							     "CNAME", "TIMEOUT", "TXTNONE" };
			size_t len, nlen;
			char *v = unescape(f[3], &len), *name = unescape(f[1], &nlen);
			for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
				if (strcmp(f[2], types[t]) == 0)
					zone_add(name, (enum ztype)t, v, len);
			free(v);
			free(name);
			continue;
		}
		bool helo_first = strcmp(f[0], "H") == 0;
		if ((strcmp(f[0], "T") != 0 && !helo_first) || nf != 7) {
			fprintf(stderr, "bad line: %s\n", f[0]);
			return 2;
		}
		size_t l;
		char *helo = unescape(f[2], &l), *from = unescape(f[4], &l);
		char *exp = f[6][0] == '=' ? unescape(f[6] + 1, &l) : NULL;
		struct spf *spf = NULL;
		if (helo_first) {
			spf = run(f[3], helo, "", "receiver.example");
			if (spf_result(spf) != SPF_FAIL)
				spf_free(&spf);
		}
		if (spf == NULL)
			spf = run(f[3], helo, from, "receiver.example");
		const char *got = spf_result_name(spf_result(spf));
		bool ok = false;
		char results[256];
		snprintf(results, sizeof(results), "%s", f[5]);
		for (char *tok = strtok(results, ","); tok != NULL; tok = strtok(NULL, ","))
			ok |= strcmp(tok, got) == 0;
		const char *e = spf_explanation(spf);
		if (ok && exp != NULL && spf_result(spf) == SPF_FAIL) {
			if (strcmp(exp, "DEFAULT") == 0)
				ok = e == NULL;
			else
				ok = e != NULL && strcmp(e, exp) == 0;
		}
		tests++;
		if (!ok) {
			failed++;
			fprintf(stderr, "FAIL %s: got %s (%s) exp \"%s\", want %s exp \"%s\"\n", f[1],
				got, spf_problem(spf) ? spf_problem(spf) : "", e ? e : "(none)",
				f[5], exp ? exp : "-");
		}
		spf_free(&spf);
		free(helo);
		free(from);
		free(exp);
	}
	zone_clear();
	printf("%u cases, %u failed; at most %u DNS questions in one evaluation\n", tests, failed,
	       max_queries);
	return failed == 0 && tests > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--suite") == 0)
		return run_suite();
	RUN(test_rfc7208_7_4_macro_examples);
	RUN(test_rfc7208_4_6_4_limits);
	RUN(test_rfc7208_2_4_null_sender);
	RUN(test_rfc7208_4_5_selection);
	RUN(test_rfc7208_5_2_include);
	RUN(test_rfc7208_2_6_every_status);
	return test_done();
}
