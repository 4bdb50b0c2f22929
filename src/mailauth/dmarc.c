/* DMARC evaluation (RFC 9989). See dmarc.h for the contract.
 *
 * The evaluator is written as a pure function over a memo of DNS answers:
 * every call of dmarc_step() stores the answer it was given, then runs the
 * whole evaluation again from the start; the first name whose answer is not
 * in the memo becomes the next question. The evaluation is a few dozen
 * string comparisons, so running it again is cheaper than keeping an
 * explicit state for every nested walk, and the DNS budget is simply the
 * size of the memo (DMARC_QUERY_MAX). */
#include "mailauth/dmarc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define DMARC_PREFIX "_dmarc."

enum entry_state {
	ENTRY_NONE,		/* no single DMARC record there (RFC 9989 4.10 step 2) */
	ENTRY_RECORD,		/* exactly one */
	ENTRY_TEMPFAIL,
	ENTRY_NXDOMAIN,		/* A question: the name does not exist */
	ENTRY_EXISTS,		/* A question: it does (or we could not tell) */
};

struct entry {
	enum ma_dns_type type;
	char name[MA_NAME_MAX + 1];	/* the name asked */
	enum entry_state state;
	struct dmarc_record rec;
};

/* What looking a name up in the memo gives. */
enum look {
	LOOK_OK,
	LOOK_NEED,		/* not asked yet: it is now the pending question */
	LOOK_LIMIT,		/* DMARC_QUERY_MAX reached */
};

/* The outcome of one Tree Walk. */
struct walk {
	const struct entry *recs[DMARC_WALK_MAX];	/* records found, longest name first */
	const char *rec_names[DMARC_WALK_MAX];		/* their domains (suffixes of the start) */
	size_t n;
	const char *org;		/* the Organizational Domain (a suffix of the start) */
	const struct entry *psd_rec;	/* a psd=y record met, or NULL */
	const char *psd_name;
};

enum walk_status {
	WALK_OK,
	WALK_NEED,
	WALK_TEMPFAIL,		/* a temporary DNS error, or the budget spent */
};

struct dmarc {
	char author[MA_NAME_MAX + 1];
	char spf[MA_NAME_MAX + 1];	/* "" when SPF did not pass */
	char dkim[DMARC_IDS_MAX][MA_NAME_MAX + 1];
	size_t ndkim;

	struct entry memo[DMARC_QUERY_MAX];
	size_t nmemo;
	bool pending;			/* memo[nmemo] is the question asked */

	bool done;
	enum dmarc_result result;
	enum dmarc_policy policy, policy_published;
	const struct entry *applied;	/* the record applied */
	const char *policy_domain;	/* points into author */
	const char *org;		/* the author's Organizational Domain */
	bool spf_aligned, dkim_aligned;
	const char *problem;
};

/* ------------------------------------------------------------------ */
/* The record parser (RFC 9989 4.7, 4.8) */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A slice [p, p + n). */
struct slice {
	const char *p;
	size_t n;
};

static bool slice_ieq(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && str_nieq(s.p, lit, n);
}

/* dmarc-request = "none" / "quarantine" / "reject" (ABNF literals are
 * case-insensitive, RFC 5234 2.3). Returns 0 or -1. */
static int parse_request(struct slice v, enum dmarc_policy *p_r)
{
	if (slice_ieq(v, "none"))
		*p_r = DMARC_POLICY_NONE;
	else if (slice_ieq(v, "quarantine"))
		*p_r = DMARC_POLICY_QUARANTINE;
	else if (slice_ieq(v, "reject"))
		*p_r = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

/* One URI of a dmarc-urilist: we only send no reports, so a URI is valid
 * when it has a scheme (RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" /
 * "." ) ":") and a non-empty rest without blanks. An obs-dmarc-report-size
 * suffix ("!10m") is part of the rest. */
static bool uri_valid(struct slice u)
{
	size_t i = 0;

	if (u.n == 0 || !is_alpha(u.p[0]))
		return false;
	while (i < u.n && (is_alpha(u.p[i]) || is_digit(u.p[i]) || u.p[i] == '+' ||
			   u.p[i] == '-' || u.p[i] == '.'))
		i++;
	if (i >= u.n || u.p[i] != ':' || i + 1 >= u.n)
		return false;
	for (i++; i < u.n; i++) {
		if (u.p[i] <= ' ' || u.p[i] > '~' || u.p[i] == ',')
			return false;
	}
	return true;
}

static bool urilist_valid(struct slice v)
{
	size_t i = 0;

	while (i < v.n) {
		size_t start, end;

		while (i < v.n && is_wsp(v.p[i]))
			i++;
		start = i;
		while (i < v.n && v.p[i] != ',')
			i++;
		end = i;
		while (end > start && is_wsp(v.p[end - 1]))
			end--;
		if (uri_valid((struct slice){ v.p + start, end - start }))
			return true;
		i++;	/* past the comma */
	}
	return false;
}

static void copy_cut(char *dst, size_t size, struct slice v)
{
	size_t n = v.n < size - 1 ? v.n : size - 1;
	memcpy(dst, v.p, n);
	dst[n] = '\0';
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
	size_t i = 0;
	bool seen_p = false, seen_sp = false, seen_np = false, seen_t = false;
	bool seen_adkim = false, seen_aspf = false, seen_psd = false, seen_pct = false;
	bool seen_rua = false, seen_ruf = false;
	bool p_bad = false, sp_bad = false, np_bad = false;

	memset(r, 0, sizeof(*r));
	r->pct = -1;
	r->psd = DMARC_PSD_U;
	if (len > DMARC_RECORD_MAX || memchr(txt, '\0', len) != NULL)
		return 0;

	/* dmarc-version = "v" equals %s"DMARC1": it must come first, with
	 * nothing before it (RFC 9989 4.7 "v"); "v" is an ABNF literal, so
	 * "V" is fine, while the value is case-sensitive (%s, RFC 7405). */
	if (len < 1 || (txt[0] != 'v' && txt[0] != 'V'))
		return 0;
	i = 1;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i >= len || txt[i] != '=')
		return 0;
	i++;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	/* After the version: the end, or a dmarc-sep. */
	{
		size_t j = i;
		while (j < len && is_wsp(txt[j]))
			j++;
		if (j < len && txt[j] != ';')
			return 0;
		i = j;
	}

	/* *(dmarc-sep dmarc-tag) [dmarc-sep]. A tag that does not parse is
	 * skipped: RFC 9989 4.8 discards syntax errors in favour of the
	 * defaults. The first occurrence of a tag counts. */
	while (i < len) {
		struct slice name, value;
		size_t start;

		if (txt[i] != ';')
			break;	/* cannot happen: every tag stops at ';' */
		i++;
		while (i < len && is_wsp(txt[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && txt[i] != ';')
			i++;
		/* One tag is [start, i). */
		{
			size_t k = start, e = i;
			bool ok = true;

			while (e > start && is_wsp(txt[e - 1]))
				e--;
			while (k < e && is_alpha(txt[k]))
				k++;
			name = (struct slice){ txt + start, k - start };
			while (k < e && is_wsp(txt[k]))
				k++;
			if (name.n == 0 || k >= e || txt[k] != '=')
				ok = false;
			else
				k++;
			while (k < e && is_wsp(txt[k]))
				k++;
			value = (struct slice){ txt + k, e > k ? e - k : 0 };
			if (ok && value.n == 0)
				ok = false;
			for (size_t m = 0; ok && m < value.n; m++) {
				unsigned char c = (unsigned char)value.p[m];
				/* dmarc-value = %x20-3A / %x3C-7E */
				if (c < 0x20 || c > 0x7e)
					ok = false;
			}
			if (!ok) {
				if (slice_ieq(name, "p") && !seen_p)
					p_bad = true;
				continue;
			}
		}

		if (slice_ieq(name, "p") && !seen_p) {
			seen_p = true;
			if (parse_request(value, &r->p) == 0)
				r->p_set = true;
			else
				p_bad = true;
		} else if (slice_ieq(name, "sp") && !seen_sp) {
			seen_sp = true;
			if (parse_request(value, &r->sp) == 0)
				r->sp_set = true;
			else
				sp_bad = true;
		} else if (slice_ieq(name, "np") && !seen_np) {
			seen_np = true;
			if (parse_request(value, &r->np) == 0)
				r->np_set = true;
			else
				np_bad = true;
		} else if (slice_ieq(name, "adkim") && !seen_adkim) {
			seen_adkim = true;
			r->adkim_strict = slice_ieq(value, "s");
		} else if (slice_ieq(name, "aspf") && !seen_aspf) {
			seen_aspf = true;
			r->aspf_strict = slice_ieq(value, "s");
		} else if (slice_ieq(name, "t") && !seen_t) {
			/* dmarc-yorn; anything else is the default, n */
			seen_t = true;
			r->testing = slice_ieq(value, "y");
		} else if (slice_ieq(name, "psd") && !seen_psd) {
			seen_psd = true;
			if (slice_ieq(value, "y"))
				r->psd = DMARC_PSD_Y;
			else if (slice_ieq(value, "n"))
				r->psd = DMARC_PSD_N;
		} else if (slice_ieq(name, "pct") && !seen_pct) {
			/* RFC 7489 6.3: 0..100; historic in RFC 9989 (A.6) */
			uint64_t v = 0;
			size_t m;

			seen_pct = true;
			for (m = 0; m < value.n && m < 4 && is_digit(value.p[m]); m++)
				v = v * 10 + (uint64_t)(value.p[m] - '0');
			if (m == value.n && v <= 100)
				r->pct = (int)v;
		} else if (slice_ieq(name, "rua") && !seen_rua) {
			seen_rua = true;
			copy_cut(r->rua, sizeof(r->rua), value);
			r->rua_valid = urilist_valid(value);
		} else if (slice_ieq(name, "ruf") && !seen_ruf) {
			seen_ruf = true;
			copy_cut(r->ruf, sizeof(r->ruf), value);
		}
		/* fo, rf, ri and unknown tags: ignored (RFC 9989 4.7) */
	}

	/* A missing p counts as p=none in an otherwise valid record (RFC 9989
	 * 4.7 "p"), but 4.10.1 only keeps such a record (and one with a bad
	 * p, sp or np) when it has a valid rua; dmarc_step() applies that. */
	if (!r->p_set || p_bad || sp_bad || np_bad)
		r->policy_invalid = true;
	if (!r->p_set)
		r->p = DMARC_POLICY_NONE;
	if (!seen_t && r->pct == 0)
		r->testing = true;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Names */

/* Lower-cases and checks a domain: LDH labels (and "_", seen in the wild
 * in DKIM d=), 1..63 octets each, no empty label, a final dot dropped.
 * Returns 0 or -1. */
static int domain_norm(const char *in, char out[MA_NAME_MAX + 1])
{
	size_t n = strlen(in), label = 0;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > MA_NAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = c;
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static size_t label_count(const char *name)
{
	size_t n = 1;
	for (const char *p = name; *p != '\0'; p++)
		n += *p == '.';
	return n;
}

/* The suffix of name that has its last k labels (k <= label_count). */
static const char *last_labels(const char *name, size_t k)
{
	size_t skip = label_count(name) - k;
	const char *p = name;

	while (skip-- > 0)
		p = strchr(p, '.') + 1;
	return p;
}

/* True when name is domain or a subdomain of it. */
static bool is_under(const char *name, const char *domain)
{
	size_t n = strlen(name), m = strlen(domain);

	if (n == m)
		return strcmp(name, domain) == 0;
	return n > m && name[n - m - 1] == '.' && strcmp(name + n - m, domain) == 0;
}

/* ------------------------------------------------------------------ */
/* The memo */

static enum look lookup(struct dmarc *d, enum ma_dns_type type, const char *name,
			const struct entry **e_r)
{
	for (size_t i = 0; i < d->nmemo; i++) {
		if (d->memo[i].type == type && strcmp(d->memo[i].name, name) == 0) {
			*e_r = &d->memo[i];
			return LOOK_OK;
		}
	}
	if (d->nmemo >= DMARC_QUERY_MAX)
		return LOOK_LIMIT;
	d->memo[d->nmemo].type = type;
	snprintf(d->memo[d->nmemo].name, sizeof(d->memo[d->nmemo].name), "%s", name);
	d->pending = true;
	return LOOK_NEED;
}

/* The DMARC record set at _dmarc.<domain>. A name too long to ask cannot
 * hold one. */
static enum look lookup_dmarc(struct dmarc *d, const char *domain, const struct entry **e_r)
{
	static const struct entry none = { .state = ENTRY_NONE };
	char q[MA_NAME_MAX + 1];

	if (strlen(domain) + strlen(DMARC_PREFIX) > MA_NAME_MAX) {
		*e_r = &none;
		return LOOK_OK;
	}
	snprintf(q, sizeof(q), DMARC_PREFIX "%s", domain);
	return lookup(d, MA_DNS_TXT, q, e_r);
}

static void store_answer(struct entry *e, const struct ma_answer *a)
{
	if (e->type == MA_DNS_A) {
		/* RFC 9989 3.2.13, RFC 8020: only NXDOMAIN says the name does
		 * not exist; a failure to tell keeps it existing (sp, not np). */
		e->state = a->status == MA_DNS_NXDOMAIN ? ENTRY_NXDOMAIN : ENTRY_EXISTS;
		return;
	}
	if (a->status == MA_DNS_TEMPFAIL) {
		e->state = ENTRY_TEMPFAIL;
		return;
	}
	e->state = ENTRY_NONE;
	if (a->status != MA_DNS_OK)
		return;
	/* RFC 9989 4.10 step 2: records that do not start with v=DMARC1 are
	 * discarded; when several DMARC records remain, all of them are. */
	{
		size_t found = 0;
		struct dmarc_record rec;

		for (size_t i = 0; i < a->count && i < MA_ANSWER_MAX; i++) {
			const struct ma_record *r = &a->records[i];

			if (r->text == NULL)
				continue;
			if (dmarc_record_parse(r->text, r->len, &rec) == 1) {
				if (found++ == 0)
					e->rec = rec;
			}
		}
		if (found == 1)
			e->state = ENTRY_RECORD;
	}
}

/* ------------------------------------------------------------------ */
/* The DNS Tree Walk (RFC 9989 4.10) and the Organizational Domain
 * (4.10.2) */

static enum walk_status walk(struct dmarc *d, const char *start, struct walk *w)
{
	size_t x = label_count(start);
	const char *name = start;

	memset(w, 0, sizeof(*w));
	for (size_t q = 0; q < DMARC_WALK_MAX; q++) {
		const struct entry *e;
		enum look l = lookup_dmarc(d, name, &e);

		if (l == LOOK_NEED)
			return WALK_NEED;
		if (l == LOOK_LIMIT) {
			d->problem = "DNS query limit reached";
			return WALK_TEMPFAIL;
		}
		if (e->state == ENTRY_TEMPFAIL) {
			d->problem = "temporary DNS error";
			return WALK_TEMPFAIL;
		}
		if (e->state == ENTRY_RECORD) {
			w->recs[w->n] = e;
			w->rec_names[w->n] = name;
			w->n++;
			/* steps 2 and 6: psd=n or psd=y stops the walk */
			if (e->rec.psd != DMARC_PSD_U)
				break;
		}
		/* steps 4 and 7: the next target */
		x = label_count(name);
		if (x <= 1)
			break;
		name = last_labels(name, x >= 8 && name == start ? 7 : x - 1);
	}

	/* 4.10.2: from the longest name to the shortest. */
	for (size_t i = 0; i < w->n; i++) {
		if (w->recs[i]->rec.psd == DMARC_PSD_N) {
			w->org = w->rec_names[i];
			return WALK_OK;
		}
		if (w->recs[i]->rec.psd == DMARC_PSD_Y && w->rec_names[i] != start) {
			w->psd_rec = w->recs[i];
			w->psd_name = w->rec_names[i];
			w->org = last_labels(start, label_count(w->rec_names[i]) + 1);
			return WALK_OK;
		}
	}
	w->org = w->n > 0 ? w->rec_names[w->n - 1] : start;
	return WALK_OK;
}

/* Relaxed alignment (RFC 9989 3.2.10.1): id and the Author Domain have the
 * same Organizational Domain. Only an id at or under the author's
 * Organizational Domain can have it (an Organizational Domain is a suffix
 * of its name), so no other id costs a question. */
enum align {
	ALIGN_NO,
	ALIGN_YES,
	ALIGN_NEED,
	ALIGN_ERROR,
};

static enum align aligned(struct dmarc *d, const char *id, bool strict)
{
	struct walk w;
	const char *org_author;
	enum walk_status ws;

	if (strcmp(id, d->author) == 0)
		return ALIGN_YES;
	if (strict)
		return ALIGN_NO;
	ws = walk(d, d->author, &w);
	if (ws == WALK_NEED)
		return ALIGN_NEED;
	if (ws == WALK_TEMPFAIL)
		return ALIGN_ERROR;
	org_author = w.org;
	d->org = org_author;
	if (!is_under(id, org_author))
		return ALIGN_NO;
	ws = walk(d, id, &w);
	if (ws == WALK_NEED)
		return ALIGN_NEED;
	if (ws == WALK_TEMPFAIL)
		return ALIGN_ERROR;
	return strcmp(w.org, org_author) == 0 ? ALIGN_YES : ALIGN_NO;
}

static enum dmarc_policy lower(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

static void finish(struct dmarc *d, enum dmarc_result r)
{
	d->done = true;
	d->result = r;
}

/* Runs the evaluation over the memo. Returns false when it stopped on a
 * question (d->pending). */
static bool evaluate(struct dmarc *d)
{
	const struct entry *own;
	const struct dmarc_record *rec;
	enum look l;
	bool error = false, any = false, need = false;

	/* 4.10.1: the Author Domain's own record first */
	l = lookup_dmarc(d, d->author, &own);
	if (l == LOOK_NEED)
		return false;
	if (l == LOOK_LIMIT || own->state == ENTRY_TEMPFAIL) {
		d->problem = "temporary DNS error";
		finish(d, DMARC_TEMPERROR);
		return true;
	}
	if (own->state == ENTRY_RECORD) {
		d->applied = own;
		d->policy_domain = d->author;
	} else {
		/* ... then the Organizational Domain's, then the PSD's */
		struct walk w;
		enum walk_status ws = walk(d, d->author, &w);

		if (ws == WALK_NEED)
			return false;
		if (ws == WALK_TEMPFAIL) {
			finish(d, DMARC_TEMPERROR);
			return true;
		}
		d->org = w.org;
		for (size_t i = 0; i < w.n; i++) {
			if (w.rec_names[i] == w.org) {
				d->applied = w.recs[i];
				d->policy_domain = w.org;
			}
		}
		if (d->applied == NULL && w.psd_rec != NULL) {
			d->applied = w.psd_rec;
			d->policy_domain = w.psd_name;
		}
		if (d->applied == NULL) {
			/* 4.10.1: no record, no DMARC */
			finish(d, DMARC_NONE);
			return true;
		}
	}
	rec = &d->applied->rec;
	if (rec->policy_invalid && !rec->rua_valid) {
		/* 4.10.1: no valid p (or a bad sp/np) and no valid rua: no
		 * DMARC processing for this message */
		d->applied = NULL;
		d->policy_domain = NULL;
		finish(d, DMARC_NONE);
		return true;
	}

	/* 5.3.4: alignment of every authenticated identifier; any one
	 * aligned is a pass (4.4.1, 4.4.2). */
	d->spf_aligned = d->dkim_aligned = false;
	for (size_t i = 0; i <= d->ndkim; i++) {
		bool is_spf = i == d->ndkim;
		const char *id = is_spf ? d->spf : d->dkim[i];
		enum align a;

		if (id[0] == '\0')
			continue;
		a = aligned(d, id, is_spf ? rec->aspf_strict : rec->adkim_strict);
		if (a == ALIGN_NEED) {
			need = true;
			break;
		}
		if (a == ALIGN_ERROR) {
			error = true;
		} else if (a == ALIGN_YES) {
			any = true;
			if (is_spf)
				d->spf_aligned = true;
			else
				d->dkim_aligned = true;
		}
	}
	if (need) {
		/* a later identifier needs a question; ask it unless one
		 * already aligned and the budget is tight: the memo bounds it */
		return false;
	}

	/* The policy (4.7 p/sp/np, 4.10.1). */
	{
		enum dmarc_policy p;

		if (rec->policy_invalid) {
			p = DMARC_POLICY_NONE;	/* acts as p=none (4.10.1) */
		} else if (d->policy_domain == d->author) {
			p = rec->p;
		} else {
			bool exists = true;

			if (rec->np_set && !any && !error) {
				const struct entry *e;

				l = lookup(d, MA_DNS_A, d->author, &e);
				if (l == LOOK_NEED)
					return false;
				exists = l == LOOK_LIMIT || e->state != ENTRY_NXDOMAIN;
			}
			if (!exists)
				p = rec->np;
			else if (rec->sp_set)
				p = rec->sp;
			else
				p = rec->p;
		}
		d->policy_published = p;
		d->policy = rec->testing ? lower(p) : p;
	}

	if (any)
		finish(d, DMARC_PASS);
	else if (error)
		finish(d, DMARC_TEMPERROR);
	else
		finish(d, DMARC_FAIL);
	return true;
}

/* ------------------------------------------------------------------ */

struct dmarc *dmarc_new_ids(const char *from_domain, const char *spf_pass_domain,
			    const char *const *dkim_pass_domains, size_t ndkim)
{
	struct dmarc *d = xcalloc(1, sizeof(*d));

	if (from_domain == NULL || domain_norm(from_domain, d->author) < 0) {
		d->author[0] = '\0';
		d->problem = "no single valid From: domain";
		finish(d, DMARC_PERMERROR);
		return d;
	}
	if (spf_pass_domain == NULL || domain_norm(spf_pass_domain, d->spf) < 0)
		d->spf[0] = '\0';
	for (size_t i = 0; i < ndkim && d->ndkim < DMARC_IDS_MAX; i++) {
		char name[MA_NAME_MAX + 1];
		bool dup = false;

		if (dkim_pass_domains[i] == NULL || domain_norm(dkim_pass_domains[i], name) < 0)
			continue;
		for (size_t j = 0; j < d->ndkim; j++)
			dup = dup || strcmp(d->dkim[j], name) == 0;
		if (!dup)
			memcpy(d->dkim[d->ndkim++], name, sizeof(name));
	}
	return d;
}

struct dmarc *dmarc_new(const char *from_domain, enum spf_result spf, const char *spf_domain,
			const struct dkim_sig_result *dkim, size_t ndkim)
{
	const char *ids[DMARC_IDS_MAX];
	size_t n = 0;

	for (size_t i = 0; i < ndkim && n < DMARC_IDS_MAX; i++) {
		if (dkim[i].result == DKIM_PASS && dkim[i].domain != NULL)
			ids[n++] = dkim[i].domain;
	}
	return dmarc_new_ids(from_domain, spf == SPF_PASS ? spf_domain : NULL, ids, n);
}

enum ma_step dmarc_step(struct dmarc *d, const struct ma_answer *answer, struct ma_query *q_r)
{
	if (d->done)
		return MA_STEP_DONE;
	if (d->pending) {
		static const struct ma_answer tempfail = { .status = MA_DNS_TEMPFAIL };

		/* a resume without an answer is a lookup that did not come back */
		store_answer(&d->memo[d->nmemo], answer != NULL ? answer : &tempfail);
		d->nmemo++;
		d->pending = false;
	}
	/* A fresh evaluation: pointers into the memo are set again. */
	d->applied = NULL;
	d->policy_domain = NULL;
	d->org = NULL;
	d->problem = NULL;
	if (evaluate(d))
		return MA_STEP_DONE;
	q_r->type = d->memo[d->nmemo].type;
	memcpy(q_r->name, d->memo[d->nmemo].name, sizeof(q_r->name));
	return MA_STEP_QUERY;
}

enum dmarc_result dmarc_result(const struct dmarc *d)
{
	return d->done ? d->result : DMARC_TEMPERROR;
}

enum dmarc_policy dmarc_policy(const struct dmarc *d)
{
	if (!d->done || (d->result != DMARC_PASS && d->result != DMARC_FAIL))
		return DMARC_POLICY_NONE;
	return d->policy;
}

enum dmarc_policy dmarc_policy_published(const struct dmarc *d)
{
	if (!d->done || (d->result != DMARC_PASS && d->result != DMARC_FAIL))
		return DMARC_POLICY_NONE;
	return d->policy_published;
}

const char *dmarc_policy_domain(const struct dmarc *d)
{
	return d->done ? d->policy_domain : NULL;
}

const struct dmarc_record *dmarc_record(const struct dmarc *d)
{
	return d->done && d->applied != NULL ? &d->applied->rec : NULL;
}

const char *dmarc_from_domain(const struct dmarc *d)
{
	return d->author[0] != '\0' ? d->author : NULL;
}

const char *dmarc_org_domain(const struct dmarc *d)
{
	return d->org;
}

bool dmarc_spf_aligned(const struct dmarc *d)
{
	return d->done && d->spf_aligned;
}

bool dmarc_dkim_aligned(const struct dmarc *d)
{
	return d->done && d->dkim_aligned;
}

const char *dmarc_problem(const struct dmarc *d)
{
	if (!d->done || (d->result != DMARC_TEMPERROR && d->result != DMARC_PERMERROR))
		return NULL;
	return d->problem;
}

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_NONE: return "none";
	case DMARC_PASS: return "pass";
	case DMARC_FAIL: return "fail";
	case DMARC_TEMPERROR: return "temperror";
	case DMARC_PERMERROR: return "permerror";
	}
	return "permerror";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "none";
}

void dmarc_free(struct dmarc **d)
{
	xfree(d);
}
