/* SPF evaluation, RFC 7208, as a resumable state machine (see ma_dns.h).
 *
 * check_host() (RFC 7208 4) is recursive through "include"; here the
 * recursion is an explicit stack of frames, one per record being
 * evaluated, whose depth the DNS budget bounds (every include costs one of
 * the 10 DNS terms, 4.6.4). A record is parsed whole before any of its
 * terms is evaluated, since a syntax error anywhere in it is a permerror
 * whatever the terms before it would have matched (4.6).
 *
 * Only one question is outstanding at a time; s->pend says what it was
 * asked for, and the answer's handler moves the evaluation on. The IP's
 * validated names (5.5, for "ptr" and the %{p} macro) depend on the IP
 * only, so they are looked up once and kept. */
#include "mailauth/spf.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPF_DEPTH_MAX (SPF_DNS_MECH_MAX + 2)	/* frames: the budget bounds includes */
#define SPF_EXPAND_MAX 8192			/* one macro-string expanded */
#define SPF_TERMS_MAX 512			/* terms in one record (4096 bytes / 2 + ...) */
#define SPF_NAME_LIMIT 253			/* 4.8 / 7.3: truncate from the left */

enum mech {
	MECH_ALL,
	MECH_INCLUDE,
	MECH_A,
	MECH_MX,
	MECH_PTR,
	MECH_IP4,
	MECH_IP6,
	MECH_EXISTS,
};

struct term {
	enum spf_result qual;	/* what a match gives */
	enum mech mech;
	char *spec;		/* domain-spec, NULL: the current domain */
	int cidr4, cidr6;	/* prefix lengths, 32 / 128 when not given */
	struct ma_ip net;	/* ip4, ip6 */
};

struct record {
	struct term *terms;
	size_t count;
	char *redirect;		/* domain-spec of redirect=, or NULL */
	char *exp;		/* domain-spec of exp=, or NULL */
};

enum frame_kind {
	FRAME_TOP,		/* the domain of the identity */
	FRAME_INCLUDE,		/* none -> permerror (5.2) */
	FRAME_REDIRECT,		/* none -> permerror (6.1) */
};

struct frame {
	enum frame_kind kind;
	char *domain;		/* <domain> of check_host() */
	bool have_record;
	struct record rec;
	size_t next;		/* the term to evaluate */
	enum spf_result include_qual;	/* of the include that made this frame */
};

/* What the outstanding question is for. */
enum pend {
	PEND_NONE,
	PEND_RECORD,		/* TXT of the top frame's domain */
	PEND_A,			/* a: A/AAAA of target */
	PEND_MX,		/* mx: MX of target */
	PEND_MX_ADDR,		/* mx: A/AAAA of mx_names[mx_i] */
	PEND_EXISTS,		/* exists: A */
	PEND_PTR,		/* validation: PTR of the IP */
	PEND_PTR_ADDR,		/* validation: A/AAAA of ptr_names[ptr_i] */
	PEND_EXP,		/* TXT of the exp= domain */
};

enum phase {
	PHASE_EVAL,
	PHASE_EXP,		/* fail: fetching and expanding the explanation */
	PHASE_DONE,
};

struct spf {
	struct ma_ip ip;
	char *sender;		/* l@o */
	char *local;		/* l */
	char *sender_domain;	/* o */
	char *helo;		/* h */
	char *receiver;		/* r */
	char *identity;
	char *domain;		/* the domain checked */

	enum phase phase;
	enum spf_result result;
	char *problem;
	char *explanation;

	struct frame frames[SPF_DEPTH_MAX];
	size_t depth;

	enum pend pend;
	unsigned dns_terms;	/* 4.6.4: at most SPF_DNS_MECH_MAX */
	unsigned voids;		/* 4.6.4: at most SPF_VOID_MAX */
	unsigned queries;
	char target[MA_NAME_MAX + 1];	/* of the term being evaluated */

	char *mx_names[SPF_NAMES_MAX];
	size_t mx_count, mx_i;
	bool mx_over;		/* the MX answer had more than SPF_NAMES_MAX */

	/* 5.5: the IP's validated names, looked up once */
	bool ptr_done;
	bool ptr_for_mech;	/* the PTR query counts as the ptr term's void */
	char *ptr_names[SPF_NAMES_MAX];
	size_t ptr_count, ptr_i;
	char *valid[SPF_NAMES_MAX];
	size_t valid_count;

	/* exp phase */
	char *exp_domain;	/* the <domain> of the frame whose exp= is used */
	char *exp_spec;		/* its exp= domain-spec */
	char *exp_text;		/* the TXT found there, to expand */
};

const char *spf_result_name(enum spf_result r)
{
	static const char *const names[] = { "none", "neutral", "pass", "fail", "softfail",
					     "temperror", "permerror" };
	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

/* ---- small helpers ---- */

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void finish(struct spf *s, enum spf_result r, const char *fmt, ...) PRINTF(3, 4);

/* The evaluation ends with r; for errors, fmt says why. */
static void finish(struct spf *s, enum spf_result r, const char *fmt, ...)
{
	s->result = r;
	s->phase = PHASE_DONE;
	if (fmt != NULL && s->problem == NULL) {
		va_list ap;
		va_start(ap, fmt);
		s->problem = xvasprintf(fmt, ap);
		va_end(ap);
	}
}

/* RFC 7208 4.3: a domain fit to be checked at all: labels of 1 to 63,
 * 253 in all (a final dot aside), at least two labels, and a top label
 * that is not all digits (which also excludes address literals). */
static bool domain_ok(const char *d)
{
	size_t len = strlen(d);
	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_NAME_LIMIT)
		return false;
	size_t label = 0, labels = 1, top = 0;
	for (size_t i = 0; i < len; i++) {
		char c = d[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			top = i + 1;
			continue;
		}
		if ((unsigned char)c <= ' ' || (unsigned char)c >= 0x7f)
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0 || labels < 2)
		return false;
	bool alpha = false;
	for (size_t i = top; i < len; i++) {
		if (is_alpha(d[i]))
			alpha = true;
		else if (!is_digit(d[i]) && d[i] != '-')
			return false;
	}
	return alpha;
}

/* A name to put in a question: lower case, no final dot, labels of 1 to
 * 63 bytes of printable ASCII; spaces are fine (macros make them: "%_",
 * RFC 7208 7.1, and DNS labels may hold any byte), a backslash is not
 * (resolver libraries read it as an escape). Returns false when it
 * cannot be asked. */
static bool query_name(const char *name, char out[MA_NAME_MAX + 1])
{
	size_t len = strlen(name), label = 0;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > MA_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((unsigned char)c < ' ' || (unsigned char)c >= 0x7f || c == '\\' ||
			   ++label > 63) {
			return false;
		}
		out[i] = lower(c);
	}
	if (label == 0)
		return false;
	out[len] = '\0';
	return true;
}

static bool ip_in_net(const struct ma_ip *ip, const struct ma_ip *net, int prefix)
{
	if (ip->family != net->family)
		return false;
	const unsigned char *a, *b;
	if (ip->family == AF_INET) {
		a = (const unsigned char *)&ip->u.v4;
		b = (const unsigned char *)&net->u.v4;
	} else {
		a = (const unsigned char *)&ip->u.v6;
		b = (const unsigned char *)&net->u.v6;
	}
	int full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* The reverse name of the IP (RFC 1035 3.5, RFC 3596 2.5). */
static void reverse_name(const struct ma_ip *ip, char out[MA_NAME_MAX + 1])
{
	if (ip->family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&ip->u.v4;
		snprintf(out, MA_NAME_MAX + 1, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
		return;
	}
	const unsigned char *b = (const unsigned char *)&ip->u.v6;
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	for (int i = 15; i >= 0; i--) {
		out[n++] = hex[b[i] & 0xf];
		out[n++] = '.';
		out[n++] = hex[b[i] >> 4];
		out[n++] = '.';
	}
	memcpy(out + n, "ip6.arpa", 9);
}

/* ---- record parsing (RFC 7208 4.5, 4.6, 5, 6, 7.1) ---- */

/* A macro-string (7.1) from p to end: returns true if it is well formed.
 * exp_text: the explain-string of an exp= TXT record, where spaces and
 * the letters c, r, t are allowed too. */
static bool macro_string_ok(const char *p, const char *end, bool exp_text)
{
	while (p < end) {
		char c = *p;
		if (c == '%') {
			if (p + 1 >= end)
				return false;
			char n = p[1];
			if (n == '%' || n == '_' || n == '-') {
				p += 2;
				continue;
			}
			if (n != '{')
				return false;
			p += 2;
			if (p >= end)
				return false;
			char l = lower(*p++);
			if (strchr("slodiphv", l) == NULL && !(exp_text && strchr("crt", l) != NULL))
				return false;
			/* transformers: *DIGIT ["r"], a number at least 1 (7.3) */
			const char *digits = p;
			while (p < end && is_digit(*p))
				p++;
			if (p > digits) {
				bool nonzero = false;
				for (const char *d = digits; d < p; d++)
					nonzero |= *d != '0';
				if (!nonzero)
					return false;
			}
			if (p < end && lower(*p) == 'r')
				p++;
			while (p < end && strchr(".-+,/_=", *p) != NULL)
				p++;
			if (p >= end || *p != '}')
				return false;
			p++;
			continue;
		}
		if (c == ' ' && exp_text) {
			p++;
			continue;
		}
		if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e)
			return false;
		p++;
	}
	return true;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *p, const char *end)
{
	if (p >= end)
		return false;
	bool alpha = false, dash = false;
	for (const char *q = p; q < end; q++) {
		if (is_alpha(*q))
			alpha = true;
		else if (*q == '-')
			dash = true;
		else if (!is_digit(*q))
			return false;
	}
	if (dash)
		return *p != '-' && end[-1] != '-';
	return alpha;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool domain_spec_ok(const char *p, const char *end)
{
	if (p >= end || !macro_string_ok(p, end, false))
		return false;
	/* Ends with a macro-expand? */
	if (end[-1] == '}') {
		const char *open = end - 1;
		while (open > p && *open != '{')
			open--;
		if (open > p && open[-1] == '%')
			return true;
	}
	if (end - p >= 2 && end[-2] == '%' && strchr("%_-", end[-1]) != NULL) {
		/* "%%" at the end may be the second half of "%%%"... count. */
		size_t pct = 0;
		for (const char *q = end - 2; q >= p && *q == '%'; q--)
			pct++;
		if (end[-1] != '%' || pct % 2 == 1)
			return true;
	}
	const char *e = end;
	if (e[-1] == '.')
		e--;
	const char *dot = e;
	while (dot > p && dot[-1] != '.')
		dot--;
	if (dot == p)
		return false;	/* no "." before the top label */
	return toplabel_ok(dot, e);
}

static bool parse_cidr(const char *p, const char *end, int max, int *out)
{
	if (p >= end || end - p > 3)
		return false;
	if (*p == '0' && end - p > 1)
		return false;
	int v = 0;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return false;
		v = v * 10 + (*p - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Strips a dual-cidr-length (5.6) from the end of [p, *end):
 * [ "/" ip4-cidr ] [ "//" ip6-cidr ]. Returns false on a malformed one. */
static bool strip_dual_cidr(const char *p, const char **end, int *c4, int *c6)
{
	const char *e = *end;
	/* the ip6 part: "//" digits at the very end */
	const char *q = e;
	while (q > p && is_digit(q[-1]))
		q--;
	if (q - p >= 2 && q[-1] == '/' && q[-2] == '/' && q < e) {
		if (!parse_cidr(q, e, 128, c6))
			return false;
		e = q - 2;
		q = e;
		while (q > p && is_digit(q[-1]))
			q--;
	}
	if (q > p && q[-1] == '/' && q < e && !(q - p >= 2 && q[-2] == '/')) {
		if (!parse_cidr(q, e, 32, c4))
			return false;
		e = q - 1;
	} else if (e > p && e[-1] == '/') {
		return false;	/* a slash with no number */
	}
	*end = e;
	return true;
}

static void record_free(struct record *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->terms[i].spec);
	free(r->terms);
	free(r->redirect);
	free(r->exp);
	memset(r, 0, sizeof(*r));
}

/* One term of [p, end); returns false on a syntax error (*why_r set). */
static bool parse_term(struct record *rec, const char *p, const char *end, const char **why_r)
{
	/* A modifier: name "=" macro-string (6, 4.6.1). */
	const char *n = p;
	if (n < end && is_alpha(*n)) {
		while (n < end && (is_alpha(*n) || is_digit(*n) || strchr("-_.", *n) != NULL))
			n++;
		if (n < end && *n == '=') {
			size_t nlen = (size_t)(n - p);
			const char *v = n + 1;
			bool known_redirect = nlen == 8 && strncasecmp(p, "redirect", 8) == 0;
			bool known_exp = nlen == 3 && strncasecmp(p, "exp", 3) == 0;
			if (known_redirect || known_exp) {
				char **slot = known_redirect ? &rec->redirect : &rec->exp;
				if (*slot != NULL) {
					*why_r = known_redirect ? "two redirect= modifiers" :
						"two exp= modifiers";
					return false;
				}
				if (!domain_spec_ok(v, end)) {
					*why_r = "bad domain-spec in a modifier";
					return false;
				}
				*slot = xstrndup(v, (size_t)(end - v));
				return true;
			}
			/* Unknown modifiers are ignored (6), once well formed. */
			if (!macro_string_ok(v, end, false)) {
				*why_r = "bad macro-string in a modifier";
				return false;
			}
			return true;
		}
	}

	struct term t = { .qual = SPF_PASS, .cidr4 = 32, .cidr6 = 128 };
	switch (*p) {
	case '+':
		t.qual = SPF_PASS;
		p++;
		break;
	case '-':
		t.qual = SPF_FAIL;
		p++;
		break;
	case '~':
		t.qual = SPF_SOFTFAIL;
		p++;
		break;
	case '?':
		t.qual = SPF_NEUTRAL;
		p++;
		break;
	}
	n = p;
	while (n < end && is_alpha(*n))
		n++;
	size_t nlen = (size_t)(n - p);
	static const struct {
		const char *name;
		enum mech mech;
	} mechs[] = {
		{ "all", MECH_ALL }, { "include", MECH_INCLUDE }, { "a", MECH_A },
		{ "mx", MECH_MX }, { "ptr", MECH_PTR }, { "ip4", MECH_IP4 },
		{ "ip6", MECH_IP6 }, { "exists", MECH_EXISTS },
	};
	/* ip4/ip6 have a digit in the name */
	if (n < end && is_digit(*n) && nlen == 2)
		n++, nlen++;
	bool found = false;
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		if (strlen(mechs[i].name) == nlen && strncasecmp(p, mechs[i].name, nlen) == 0) {
			t.mech = mechs[i].mech;
			found = true;
			break;
		}
	}
	if (!found || (n < end && *n != ':' && *n != '/')) {
		*why_r = "unknown mechanism";
		return false;
	}
	const char *arg = n < end && *n == ':' ? n + 1 : NULL;
	const char *aend = end;
	switch (t.mech) {
	case MECH_ALL:
		if (n != end) {
			*why_r = "all takes no argument";
			return false;
		}
		break;
	case MECH_INCLUDE:
	case MECH_EXISTS:
		if (arg == NULL || !domain_spec_ok(arg, end)) {
			*why_r = "include/exists needs a domain-spec";
			return false;
		}
		t.spec = xstrndup(arg, (size_t)(end - arg));
		break;
	case MECH_PTR:
		if (arg == NULL && n != end) {
			*why_r = "ptr takes no cidr";
			return false;
		}
		if (arg != NULL) {
			if (!domain_spec_ok(arg, end)) {
				*why_r = "bad domain-spec";
				return false;
			}
			t.spec = xstrndup(arg, (size_t)(end - arg));
		}
		break;
	case MECH_A:
	case MECH_MX: {
		const char *from = arg != NULL ? arg : n;
		if (!strip_dual_cidr(from, &aend, &t.cidr4, &t.cidr6)) {
			*why_r = "bad cidr length";
			return false;
		}
		if (arg != NULL) {
			if (!domain_spec_ok(arg, aend)) {
				*why_r = "bad domain-spec";
				return false;
			}
			t.spec = xstrndup(arg, (size_t)(aend - arg));
		} else if (aend != n) {
			*why_r = "junk after a mechanism";
			return false;
		}
		break;
	}
	case MECH_IP4:
	case MECH_IP6: {
		bool v6 = t.mech == MECH_IP6;
		if (arg == NULL) {
			*why_r = "ip4/ip6 needs an address";
			return false;
		}
		const char *slash = memchr(arg, '/', (size_t)(end - arg));
		const char *aend2 = slash != NULL ? slash : end;
		if (slash != NULL) {
			int *c = v6 ? &t.cidr6 : &t.cidr4;
			if (!parse_cidr(slash + 1, end, v6 ? 128 : 32, c)) {
				*why_r = "bad cidr length";
				return false;
			}
		}
		char addr[INET6_ADDRSTRLEN + 1];
		size_t alen = (size_t)(aend2 - arg);
		if (alen == 0 || alen >= sizeof(addr)) {
			*why_r = "bad address";
			return false;
		}
		memcpy(addr, arg, alen);
		addr[alen] = '\0';
		t.net.family = v6 ? AF_INET6 : AF_INET;
		if (inet_pton(t.net.family, addr, v6 ? (void *)&t.net.u.v6 : (void *)&t.net.u.v4) != 1) {
			*why_r = "bad address";
			return false;
		}
		break;
	}
	}
	if (rec->count >= SPF_TERMS_MAX) {
		free(t.spec);
		*why_r = "too many terms";
		return false;
	}
	rec->terms = xrealloc(rec->terms, (rec->count + 1) * sizeof(*rec->terms));
	rec->terms[rec->count++] = t;
	return true;
}

/* The record's text after "v=spf1" (4.5, 4.6). 0, or -1 with *why_r. */
static int record_parse(const char *text, size_t len, struct record *rec, const char **why_r)
{
	memset(rec, 0, sizeof(*rec));
	const char *p = text + 6, *end = text + len;
	while (p < end) {
		if (*p == ' ') {
			p++;
			continue;
		}
		const char *t = p;
		while (p < end && *p != ' ')
			p++;
		for (const char *q = t; q < p; q++) {
			if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e) {
				*why_r = "a byte that is not visible ASCII in the record";
				record_free(rec);
				return -1;
			}
		}
		if (!parse_term(rec, t, p, why_r)) {
			record_free(rec);
			return -1;
		}
	}
	return 0;
}

static bool is_spf_record(const struct ma_record *r)
{
	return r->text != NULL && r->len >= 6 && strncasecmp(r->text, "v=spf1", 6) == 0 &&
		(r->len == 6 || r->text[6] == ' ');
}

/* ---- macros (RFC 7208 7) ---- */

struct out {
	char *b;
	size_t len, max;
	bool over;
};

static void out_add(struct out *o, const char *p, size_t n)
{
	if (o->len + n > o->max) {
		o->over = true;
		n = o->max - o->len;
	}
	memcpy(o->b + o->len, p, n);
	o->len += n;
	o->b[o->len] = '\0';
}

/* The value of a macro letter (7.3); for %{p}, the validated names are
 * already known. */
static void macro_value(struct spf *s, const char *domain, char l, char *buf, size_t size)
{
	switch (l) {
	case 's':
		snprintf(buf, size, "%s", s->sender);
		break;
	case 'l':
		snprintf(buf, size, "%s", s->local);
		break;
	case 'o':
		snprintf(buf, size, "%s", s->sender_domain);
		break;
	case 'd':
		snprintf(buf, size, "%s", domain);
		break;
	case 'h':
		snprintf(buf, size, "%s", s->helo);
		break;
	case 'r':
		snprintf(buf, size, "%s", s->receiver[0] ? s->receiver : "unknown");
		break;
	case 't':
		snprintf(buf, size, "%lld", (long long)time(NULL));
		break;
	case 'v':
		snprintf(buf, size, "%s", s->ip.family == AF_INET ? "in-addr" : "ip6");
		break;
	case 'c':
		inet_ntop(s->ip.family, &s->ip.u, buf, (socklen_t)size);
		break;
	case 'i':
		if (s->ip.family == AF_INET) {
			inet_ntop(AF_INET, &s->ip.u.v4, buf, (socklen_t)size);
		} else {
			/* 7.3: dot-format, nibbles in order. Upper case, as
			 * pyspf writes them and the openspf suite expects in
			 * an explanation (v-macro-ip6); in questions the case
			 * does not matter, query_name() lowers it. */
			const unsigned char *b = (const unsigned char *)&s->ip.u.v6;
			static const char hex[] = "0123456789ABCDEF";
			size_t n = 0;
			for (int i = 0; i < 16; i++) {
				buf[n++] = hex[b[i] >> 4];
				buf[n++] = '.';
				buf[n++] = hex[b[i] & 0xf];
				buf[n++] = i == 15 ? '\0' : '.';
			}
		}
		break;
	case 'p': {
		/* 7.3: a validated name equal to the domain, else a subdomain
		 * of it, else any; "unknown" if none. */
		const char *pick = NULL;
		size_t dlen = strlen(domain);
		for (size_t i = 0; i < s->valid_count && pick == NULL; i++)
			if (strcasecmp(s->valid[i], domain) == 0)
				pick = s->valid[i];
		for (size_t i = 0; i < s->valid_count && pick == NULL; i++) {
			size_t vl = strlen(s->valid[i]);
			if (vl > dlen && s->valid[i][vl - dlen - 1] == '.' &&
			    strcasecmp(s->valid[i] + vl - dlen, domain) == 0)
				pick = s->valid[i];
		}
		if (pick == NULL && s->valid_count > 0)
			pick = s->valid[0];
		snprintf(buf, size, "%s", pick != NULL ? pick : "unknown");
		break;
	}
	default:
		buf[0] = '\0';
		break;
	}
}

static bool needs_p(const char *spec)
{
	for (const char *p = spec; p != NULL && *p; p++) {
		if (p[0] == '%' && p[1] == '%') {
			p++;
			continue;
		}
		if (p[0] == '%' && p[1] == '{' && lower(p[2]) == 'p')
			return true;
	}
	return false;
}

/* Expands a checked macro-string into o (7.3, 7.4). */
static void expand(struct spf *s, const char *domain, const char *m, struct out *o)
{
	char value[1024];
	for (const char *p = m; *p && !o->over;) {
		if (*p != '%') {
			const char *q = p;
			while (*q && *q != '%')
				q++;
			out_add(o, p, (size_t)(q - p));
			p = q;
			continue;
		}
		char n = p[1];
		if (n == '%' || n == '_' || n == '-') {
			out_add(o, n == '%' ? "%" : n == '_' ? " " : "%20", n == '-' ? 3 : 1);
			p += 2;
			continue;
		}
		/* "%{" letter digits ["r"] delimiters "}" */
		p += 2;
		char letter = *p++;
		bool upper = letter >= 'A' && letter <= 'Z';
		macro_value(s, domain, lower(letter), value, sizeof(value));
		unsigned long keep = 0;
		while (is_digit(*p)) {
			if (keep < 1000)
				keep = keep * 10 + (unsigned long)(*p - '0');
			p++;
		}
		bool reverse = false;
		if (lower(*p) == 'r') {
			reverse = true;
			p++;
		}
		char delims[8] = "";
		size_t nd = 0;
		while (*p != '}') {
			if (nd < sizeof(delims) - 1 && strchr(delims, *p) == NULL)
				delims[nd++] = *p;
			p++;
		}
		p++;
		if (nd == 0)
			delims[nd++] = '.';
		delims[nd] = '\0';

		/* Split into parts on the delimiters, then reverse and keep the
		 * rightmost ones, joined with "." (7.3). */
		char *parts[256];
		size_t np = 0;
		char *v = value;
		for (;;) {
			size_t k = strcspn(v, delims);
			if (np < sizeof(parts) / sizeof(parts[0]))
				parts[np++] = v;
			if (v[k] == '\0')
				break;
			v[k] = '\0';
			v += k + 1;
		}
		if (reverse) {
			for (size_t i = 0; i < np / 2; i++) {
				char *t = parts[i];
				parts[i] = parts[np - 1 - i];
				parts[np - 1 - i] = t;
			}
		}
		size_t first = keep > 0 && keep < np ? np - keep : 0;
		for (size_t i = first; i < np; i++) {
			if (i > first)
				out_add(o, ".", 1);
			if (!upper) {
				out_add(o, parts[i], strlen(parts[i]));
				continue;
			}
			/* 7.3: uppercase letters are URL-escaped (RFC 3986
			 * unreserved characters stay). */
			for (const char *c = parts[i]; *c; c++) {
				unsigned char u = (unsigned char)*c;
				if (is_alpha((char)u) || is_digit((char)u) || strchr("-._~", u) != NULL) {
					out_add(o, c, 1);
				} else {
					char hx[4];
					snprintf(hx, sizeof(hx), "%%%02X", u);
					out_add(o, hx, 3);
				}
			}
		}
	}
}

/* A domain-spec expanded into a name to ask (7.3: cut from the left to
 * 253). Returns false when nothing askable remains. */
static bool expand_target(struct spf *s, const char *domain, const char *spec,
			  char out[MA_NAME_MAX + 1])
{
	char buf[SPF_EXPAND_MAX + 1];
	struct out o = { .b = buf, .max = SPF_EXPAND_MAX };
	buf[0] = '\0';
	expand(s, domain, spec, &o);
	if (o.over)
		return false;
	char *p = buf;
	size_t len = o.len;
	if (len > 0 && p[len - 1] == '.')
		p[--len] = '\0';
	while (len > SPF_NAME_LIMIT) {
		char *dot = strchr(p, '.');
		if (dot == NULL)
			return false;
		len -= (size_t)(dot + 1 - p);
		p = dot + 1;
	}
	return query_name(p, out);
}

/* ---- evaluation ---- */

static struct frame *top(struct spf *s)
{
	return &s->frames[s->depth - 1];
}

static void frame_clear(struct frame *f)
{
	free(f->domain);
	record_free(&f->rec);
	memset(f, 0, sizeof(*f));
}

static enum ma_step ask(struct spf *s, enum pend pend, enum ma_dns_type type, const char *name,
			struct ma_query *q)
{
	s->pend = pend;
	q->type = type;
	snprintf(q->name, sizeof(q->name), "%s", name);
	s->queries++;
	return MA_STEP_QUERY;
}

static enum ma_dns_type addr_type(const struct spf *s)
{
	return s->ip.family == AF_INET6 ? MA_DNS_AAAA : MA_DNS_A;
}

/* 4.6.4: one more term that asks DNS. False (permerror set) past 10. */
static bool count_dns_term(struct spf *s)
{
	if (++s->dns_terms > SPF_DNS_MECH_MAX) {
		finish(s, SPF_PERMERROR, "more than %d DNS-querying terms (RFC 7208 4.6.4)",
		       SPF_DNS_MECH_MAX);
		return false;
	}
	return true;
}

/* 4.6.4: a lookup that found nothing. False (permerror set) past 2. */
static bool count_void(struct spf *s)
{
	if (++s->voids > SPF_VOID_MAX) {
		finish(s, SPF_PERMERROR, "more than %d void lookups (RFC 7208 4.6.4)",
		       SPF_VOID_MAX);
		return false;
	}
	return true;
}

static void push_frame(struct spf *s, enum frame_kind kind, const char *domain,
		       enum spf_result include_qual)
{
	struct frame *f = &s->frames[s->depth++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->domain = xstrdup(domain);
	f->include_qual = include_qual;
}

/* The top frame ended with r (not an error): back to the includer, or the
 * end. */
static void frame_result(struct spf *s, enum spf_result r)
{
	if (s->depth == 1) {
		if (r == SPF_FAIL && top(s)->rec.exp != NULL) {
			/* 6.2: the explanation of the record that gave the
			 * result (after redirects: the last one's). */
			s->result = r;
			s->phase = PHASE_EXP;
			s->exp_domain = xstrdup(top(s)->domain);
			s->exp_spec = xstrdup(top(s)->rec.exp);
			return;
		}
		finish(s, r, NULL);
		return;
	}
	enum spf_result qual = top(s)->include_qual;
	frame_clear(top(s));
	s->depth--;
	struct frame *f = top(s);
	/* 5.2: an include matches when its record passes. */
	if (r == SPF_PASS) {
		frame_result(s, qual);
		return;
	}
	f->next++;
}

static void ptr_validation_done(struct spf *s)
{
	s->ptr_done = true;
	for (size_t i = 0; i < s->ptr_count; i++)
		xfree(&s->ptr_names[i]);
	s->ptr_count = 0;
}

/* Evaluates the top frame's current term. Returns MA_STEP_QUERY with *q
 * set, or MA_STEP_DONE when it moved on (next term, result or error). */
static enum ma_step eval_term(struct spf *s, struct ma_query *q)
{
	struct frame *f = top(s);
	struct term *t = &f->rec.terms[f->next];

	bool asks_dns = t->mech != MECH_ALL && t->mech != MECH_IP4 && t->mech != MECH_IP6;
	/* Past the budget: stop before asking anything more. */
	if (asks_dns && s->dns_terms >= SPF_DNS_MECH_MAX) {
		count_dns_term(s);
		return MA_STEP_DONE;
	}
	/* 5.5 and %{p}: the validated names first, once. */
	if (!s->ptr_done && (t->mech == MECH_PTR || needs_p(t->spec))) {
		char rev[MA_NAME_MAX + 1];
		reverse_name(&s->ip, rev);
		s->ptr_for_mech = t->mech == MECH_PTR;
		return ask(s, PEND_PTR, MA_DNS_PTR, rev, q);
	}

	if (asks_dns) {
		if (!count_dns_term(s))
			return MA_STEP_DONE;
		if (t->spec != NULL) {
			if (!expand_target(s, f->domain, t->spec, s->target)) {
				/* Nothing that can be asked: as a lookup that
				 * found nothing. */
				if (t->mech == MECH_INCLUDE) {
					finish(s, SPF_PERMERROR, "include of a bad name");
					return MA_STEP_DONE;
				}
				if (count_void(s))
					f->next++;
				return MA_STEP_DONE;
			}
		} else {
			snprintf(s->target, sizeof(s->target), "%s", f->domain);
		}
	}

	switch (t->mech) {
	case MECH_ALL:
		frame_result(s, t->qual);
		return MA_STEP_DONE;
	case MECH_IP4:
	case MECH_IP6:
		if (ip_in_net(&s->ip, &t->net, t->mech == MECH_IP4 ? t->cidr4 : t->cidr6))
			frame_result(s, t->qual);
		else
			f->next++;
		return MA_STEP_DONE;
	case MECH_A:
		return ask(s, PEND_A, addr_type(s), s->target, q);
	case MECH_MX:
		return ask(s, PEND_MX, MA_DNS_MX, s->target, q);
	case MECH_EXISTS:
		/* 5.7: always an A query, whatever the client's family. */
		return ask(s, PEND_EXISTS, MA_DNS_A, s->target, q);
	case MECH_INCLUDE:
		if (s->depth >= SPF_DEPTH_MAX) {
			finish(s, SPF_PERMERROR, "includes nested too deep");
			return MA_STEP_DONE;
		}
		push_frame(s, FRAME_INCLUDE, s->target, t->qual);
		return MA_STEP_DONE;
	case MECH_PTR: {
		size_t tl = strlen(s->target);
		for (size_t i = 0; i < s->valid_count; i++) {
			size_t vl = strlen(s->valid[i]);
			if (strcasecmp(s->valid[i], s->target) == 0 ||
			    (vl > tl && s->valid[i][vl - tl - 1] == '.' &&
			     strcasecmp(s->valid[i] + vl - tl, s->target) == 0)) {
				frame_result(s, t->qual);
				return MA_STEP_DONE;
			}
		}
		f->next++;
		return MA_STEP_DONE;
	}
	}
	return MA_STEP_DONE;
}

static bool any_addr_match(const struct spf *s, const struct ma_answer *a, int c4, int c6)
{
	for (size_t i = 0; i < a->count; i++) {
		const struct ma_record *r = &a->records[i];
		if (r->text != NULL)
			continue;
		if (ip_in_net(&s->ip, &r->ip, r->ip.family == AF_INET ? c4 : c6))
			return true;
	}
	return false;
}

/* The record of the top frame's domain is in a. */
static void on_record(struct spf *s, const struct ma_answer *a)
{
	struct frame *f = top(s);
	if (a->status == MA_DNS_TEMPFAIL) {
		finish(s, SPF_TEMPERROR, "DNS error looking up the SPF record of %s", f->domain);
		return;
	}
	const struct ma_record *found = NULL;
	size_t n = 0;
	for (size_t i = 0; a->status == MA_DNS_OK && i < a->count; i++) {
		if (is_spf_record(&a->records[i])) {
			found = &a->records[i];
			n++;
		}
	}
	if (n > 1) {
		finish(s, SPF_PERMERROR, "%s has more than one SPF record (RFC 7208 4.5)",
		       f->domain);
		return;
	}
	if (n == 0) {
		/* 4.5: none; an include's or a redirect's target without a
		 * record is a permerror (5.2, 6.1). */
		if (f->kind == FRAME_TOP) {
			finish(s, SPF_NONE, NULL);
			return;
		}
		if (a->status != MA_DNS_OK && !count_void(s))
			return;
		finish(s, SPF_PERMERROR, "%s has no SPF record (%s)", f->domain,
		       f->kind == FRAME_INCLUDE ? "include" : "redirect");
		return;
	}
	if (found->len > SPF_RECORD_MAX || memchr(found->text, '\0', found->len) != NULL) {
		finish(s, SPF_PERMERROR, "%s: SPF record too long or with a NUL", f->domain);
		return;
	}
	const char *why = "syntax error";
	if (record_parse(found->text, found->len, &f->rec, &why) < 0) {
		finish(s, SPF_PERMERROR, "%s: %s", f->domain, why);
		return;
	}
	f->have_record = true;
	f->next = 0;
}

static void on_answer(struct spf *s, const struct ma_answer *a)
{
	enum pend pend = s->pend;
	s->pend = PEND_NONE;
	struct frame *f = s->depth > 0 ? top(s) : NULL;
	struct term *t = f != NULL && f->have_record && f->next < f->rec.count ?
		&f->rec.terms[f->next] : NULL;

	switch (pend) {
	case PEND_NONE:
		break;
	case PEND_RECORD:
		on_record(s, a);
		break;
	case PEND_A:
	case PEND_EXISTS:
		if (a->status == MA_DNS_TEMPFAIL) {
			finish(s, SPF_TEMPERROR, "DNS error looking up %s", s->target);
			return;
		}
		if (a->status != MA_DNS_OK || a->count == 0) {
			if (count_void(s))
				f->next++;
			return;
		}
		if (pend == PEND_EXISTS ? true : any_addr_match(s, a, t->cidr4, t->cidr6))
			frame_result(s, t->qual);
		else
			f->next++;
		break;
	case PEND_MX:
		if (a->status == MA_DNS_TEMPFAIL) {
			finish(s, SPF_TEMPERROR, "DNS error looking up the MX of %s", s->target);
			return;
		}
		if (a->status != MA_DNS_OK || a->count == 0) {
			if (count_void(s))
				f->next++;
			return;
		}
		/* 4.6.4: no more than 10 address lookups per mx; needing
		 * more is a permerror. Read as the limit on lookups it is:
		 * the first 10 are asked, and only if none matched does the
		 * 11th name make the permerror (the openspf mx-limit case
		 * and Stalwart's agree with this reading). */
		s->mx_over = a->count > SPF_NAMES_MAX;
		s->mx_count = 0;
		s->mx_i = 0;
		for (size_t i = 0; i < a->count && s->mx_count < SPF_NAMES_MAX; i++) {
			char name[MA_NAME_MAX + 1];
			if (a->records[i].text != NULL && query_name(a->records[i].text, name))
				s->mx_names[s->mx_count++] = xstrdup(name);
		}
		if (s->mx_count == 0 && s->mx_over)
			finish(s, SPF_PERMERROR, "%s has more than %d MX records", s->target,
			       SPF_NAMES_MAX);
		else if (s->mx_count == 0)
			f->next++;
		else
			s->pend = PEND_MX_ADDR;	/* asked from step() */
		break;
	case PEND_MX_ADDR: {
		bool match = false, temp = false;
		if (a->status == MA_DNS_OK)
			match = any_addr_match(s, a, t->cidr4, t->cidr6);
		else if (a->status == MA_DNS_TEMPFAIL)
			temp = true;
		s->mx_i++;
		if (match || temp || s->mx_i >= s->mx_count) {
			for (size_t i = 0; i < s->mx_count; i++)
				xfree(&s->mx_names[i]);
			s->mx_count = s->mx_i = 0;
			if (temp)
				finish(s, SPF_TEMPERROR, "DNS error looking up an MX host of %s",
				       s->target);
			else if (match)
				frame_result(s, t->qual);
			else if (s->mx_over)
				finish(s, SPF_PERMERROR, "%s has more than %d MX records",
				       s->target, SPF_NAMES_MAX);
			else
				f->next++;
		} else {
			s->pend = PEND_MX_ADDR;
		}
		break;
	}
	case PEND_PTR:
		if (a->status == MA_DNS_OK && a->count > 0) {
			/* 4.6.4: names past the first 10 are ignored. */
			for (size_t i = 0; i < a->count && s->ptr_count < SPF_NAMES_MAX; i++) {
				char name[MA_NAME_MAX + 1];
				if (a->records[i].text != NULL && query_name(a->records[i].text, name))
					s->ptr_names[s->ptr_count++] = xstrdup(name);
			}
		} else if (a->status != MA_DNS_TEMPFAIL && s->ptr_for_mech && !count_void(s)) {
			return;
		}
		/* 5.5: a DNS error on the PTR: no names, so no match. */
		s->ptr_i = 0;
		if (s->ptr_count == 0)
			ptr_validation_done(s);
		else
			s->pend = PEND_PTR_ADDR;
		break;
	case PEND_PTR_ADDR:
		/* 5.5: a DNS error on one name skips it. */
		if (a->status == MA_DNS_OK) {
			bool match = false;
			for (size_t i = 0; i < a->count && !match; i++)
				if (a->records[i].text == NULL &&
				    ip_in_net(&s->ip, &a->records[i].ip,
					      s->ip.family == AF_INET ? 32 : 128))
					match = true;
			if (match) {
				s->valid[s->valid_count++] = s->ptr_names[s->ptr_i];
				s->ptr_names[s->ptr_i] = NULL;
			}
		}
		if (++s->ptr_i >= s->ptr_count)
			ptr_validation_done(s);
		else
			s->pend = PEND_PTR_ADDR;
		break;
	case PEND_EXP: {
		/* 6.2: exactly one TXT record, else no explanation. */
		if (a->status != MA_DNS_OK || a->count != 1 || a->records[0].text == NULL) {
			finish(s, SPF_FAIL, NULL);
			return;
		}
		const struct ma_record *r = &a->records[0];
		if (r->len > SPF_RECORD_MAX || memchr(r->text, '\0', r->len) != NULL ||
		    !macro_string_ok(r->text, r->text + r->len, true)) {
			finish(s, SPF_FAIL, NULL);
			return;
		}
		s->exp_text = xstrndup(r->text, r->len);
		break;
	}
	}
}

/* 6.2: the explanation, once the result is fail. First the exp= domain
 * (after the validated names if it uses %{p}), then its TXT text. */
static enum ma_step exp_step(struct spf *s, struct ma_query *q)
{
	const char *m = s->exp_text != NULL ? s->exp_text : s->exp_spec;
	if (needs_p(m) && !s->ptr_done) {
		char rev[MA_NAME_MAX + 1];
		reverse_name(&s->ip, rev);
		s->ptr_for_mech = false;
		return ask(s, PEND_PTR, MA_DNS_PTR, rev, q);
	}
	if (s->exp_text != NULL) {
		char *buf = xmalloc(SPF_EXPLANATION_MAX + 1);
		struct out o = { .b = buf, .max = SPF_EXPLANATION_MAX };
		buf[0] = '\0';
		expand(s, s->exp_domain, s->exp_text, &o);
		s->explanation = buf;
		finish(s, SPF_FAIL, NULL);
		return MA_STEP_DONE;
	}
	char name[MA_NAME_MAX + 1];
	if (!expand_target(s, s->exp_domain, s->exp_spec, name)) {
		finish(s, SPF_FAIL, NULL);
		return MA_STEP_DONE;
	}
	return ask(s, PEND_EXP, MA_DNS_TXT, name, q);
}

enum ma_step spf_step(struct spf *s, const struct ma_answer *answer, struct ma_query *q)
{
	static const struct ma_answer tempfail = { .status = MA_DNS_TEMPFAIL };
	if (s->phase == PHASE_DONE)
		return MA_STEP_DONE;
	if (s->pend != PEND_NONE)
		on_answer(s, answer != NULL ? answer : &tempfail);
	for (;;) {
		if (s->phase == PHASE_DONE)
			return MA_STEP_DONE;
		if (s->pend == PEND_MX_ADDR)
			return ask(s, PEND_MX_ADDR, addr_type(s), s->mx_names[s->mx_i], q);
		if (s->pend == PEND_PTR_ADDR)
			return ask(s, PEND_PTR_ADDR, addr_type(s), s->ptr_names[s->ptr_i], q);
		if (s->phase == PHASE_EXP)
			return exp_step(s, q);
		struct frame *f = top(s);
		if (!f->have_record)
			return ask(s, PEND_RECORD, MA_DNS_TXT, f->domain, q);
		if (f->next < f->rec.count) {
			if (eval_term(s, q) == MA_STEP_QUERY)
				return MA_STEP_QUERY;
			continue;
		}
		/* No term matched: redirect= (6.1), else neutral (4.7). */
		if (f->rec.redirect != NULL) {
			if (!count_dns_term(s))
				continue;
			char name[MA_NAME_MAX + 1];
			if (!expand_target(s, f->domain, f->rec.redirect, name)) {
				finish(s, SPF_PERMERROR, "redirect to a bad name");
				continue;
			}
			enum spf_result qual = f->include_qual;
			frame_clear(f);
			f->kind = FRAME_REDIRECT;
			f->domain = xstrdup(name);
			f->include_qual = qual;
			continue;
		}
		frame_result(s, SPF_NEUTRAL);
	}
}

/* ---- life cycle ---- */

static struct spf *spf_alloc(const struct ma_ip *ip, const char *helo, const char *receiver)
{
	struct spf *s = xcalloc(1, sizeof(*s));
	s->ip = *ip;
	/* An IPv4-mapped IPv6 client is the IPv4 one (RFC 7208 5: the
	 * address as the connection gives it, which may be mapped). */
	if (ip->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&ip->u.v6)) {
		s->ip.family = AF_INET;
		memcpy(&s->ip.u.v4, (const unsigned char *)&ip->u.v6 + 12, 4);
	}
	s->helo = xstrdup(helo != NULL ? helo : "");
	s->receiver = xstrdup(receiver != NULL ? receiver : "");
	return s;
}

static void spf_start(struct spf *s, const char *local, const char *domain)
{
	/* 4.3: no local-part: "postmaster". */
	s->local = xstrdup(local[0] != '\0' ? local : "postmaster");
	s->sender_domain = xstrdup(domain);
	s->sender = xasprintf("%s@%s", s->local, domain);
	s->identity = xstrdup(s->sender);
	s->domain = xstrdup(domain);
	if (!domain_ok(domain)) {
		finish(s, SPF_NONE, NULL);
		return;
	}
	char name[MA_NAME_MAX + 1];
	if (!query_name(domain, name)) {
		finish(s, SPF_NONE, NULL);
		return;
	}
	push_frame(s, FRAME_TOP, name, SPF_PASS);
}

struct spf *spf_new(const struct ma_ip *ip, const char *helo, const char *sender,
		    const char *receiver)
{
	struct spf *s = spf_alloc(ip, helo, receiver);
	if (sender == NULL || sender[0] == '\0') {
		spf_start(s, "postmaster", s->helo);
		return s;
	}
	const char *at = strrchr(sender, '@');
	if (at == NULL) {
		spf_start(s, "postmaster", sender);
		return s;
	}
	char *local = xstrndup(sender, (size_t)(at - sender));
	spf_start(s, local, at + 1);
	free(local);
	return s;
}

struct spf *spf_new_helo(const struct ma_ip *ip, const char *helo, const char *receiver)
{
	return spf_new(ip, helo, "", receiver);
}

enum spf_result spf_result(const struct spf *s)
{
	return s->phase == PHASE_DONE ? s->result : SPF_NONE;
}

const char *spf_domain(const struct spf *s)
{
	return s->domain;
}

const char *spf_identity(const struct spf *s)
{
	return s->identity;
}

const char *spf_explanation(const struct spf *s)
{
	return s->phase == PHASE_DONE && s->result == SPF_FAIL ? s->explanation : NULL;
}

const char *spf_problem(const struct spf *s)
{
	return s->result == SPF_PERMERROR || s->result == SPF_TEMPERROR ? s->problem : NULL;
}

unsigned spf_queries(const struct spf *s)
{
	return s->queries;
}

void spf_free(struct spf **sp)
{
	struct spf *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	while (s->depth > 0)
		frame_clear(&s->frames[--s->depth]);
	for (size_t i = 0; i < SPF_NAMES_MAX; i++) {
		free(s->mx_names[i]);
		free(s->ptr_names[i]);
		free(s->valid[i]);
	}
	free(s->sender);
	free(s->local);
	free(s->sender_domain);
	free(s->helo);
	free(s->receiver);
	free(s->identity);
	free(s->domain);
	free(s->problem);
	free(s->explanation);
	free(s->exp_domain);
	free(s->exp_spec);
	free(s->exp_text);
	free(s);
}
