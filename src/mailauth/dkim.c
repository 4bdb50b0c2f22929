/* DKIM verification (RFC 6376 6, RFC 8463, RFC 8301), resumable.
 *
 * The message is fed as it arrives. The header block is kept (up to
 * DKIM_MAX_HEADER); when it ends, every DKIM-Signature field (the first
 * DKIM_MAX_SIGS) is parsed, its header hash computed at once, and a body
 * hash started for it; the body then streams through the canonicalisers
 * and is never kept. After dkim_verify_end() each signature still in the
 * running asks for its key record, one DNS question at a time. */
#include "mailauth/dkim_private.h"
#include "core/log.h"
#include "core/util.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DKIM_MAX_SIG_BYTES 1024		/* b=: RSA up to 8192 bits */
#define DKIM_MAX_KEY_BYTES 2048		/* p= decoded */
#define DKIM_B_PREFIX 12		/* characters of b= in header.b */

enum hdr_state {
	HDR_LINE,	/* inside a line */
	HDR_BOL,	/* at the start of a line */
	HDR_BOL_CR,	/* a CR at the start of a line */
	HDR_DONE,	/* in the body */
};

struct dkim_sig {
	struct dkim_sig_result *r;	/* in dkim_verify.results */
	bool done;		/* r.result is final */
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	char *d;		/* d=, lower case */
	char *i_domain;		/* the domain of i=, lower case, or NULL */
	unsigned char sig[DKIM_MAX_SIG_BYTES];
	size_t sig_len;
	unsigned char bh[32];
	unsigned char hhash[32];
	EVP_MD_CTX *bmd;
	struct dkim_body body;
	bool unsigned_tail;	/* l= shorter than the body */
	const char *body_error;	/* the body hash did not match: why */
	char qname[MA_NAME_MAX + 1];
};

struct dkim_verify {
	int64_t now;
	struct buf header;
	size_t header_len;	/* of the fields, without the empty line */
	bool header_too_big;
	bool ended;
	enum hdr_state hstate;
	struct dkim_sig *sigs;
	size_t nsigs;
	size_t next;		/* the signature whose key is asked */
	struct dkim_sig_result *results;
};

const char *dkim_result_name(enum dkim_result result)
{
	switch (result) {
	case DKIM_NONE: return "none";
	case DKIM_PASS: return "pass";
	case DKIM_FAIL: return "fail";
	case DKIM_NEUTRAL: return "neutral";
	case DKIM_POLICY: return "policy";
	case DKIM_TEMPERROR: return "temperror";
	case DKIM_PERMERROR: return "permerror";
	}
	return "none";
}

struct dkim_verify *dkim_verify_new(void)
{
	struct dkim_verify *v = xcalloc(1, sizeof(*v));

	v->now = time(NULL);
	buf_init(&v->header, DKIM_MAX_HEADER);
	v->hstate = HDR_BOL;
	return v;
}

void dkim_verify_set_now(struct dkim_verify *v, int64_t now)
{
	v->now = now;
}

static void sig_finish(struct dkim_sig *s, enum dkim_result result, const char *reason)
{
	if (s->done)
		return;
	s->done = true;
	s->r->result = result;
	s->r->reason = reason != NULL ? xstrdup(reason) : NULL;
}

static char *tag_dup(const struct dkim_tag *t)
{
	return t != NULL ? xstrndup(t->value, t->value_len) : NULL;
}

static bool tag_is(const struct dkim_tag *t, const char *s)
{
	return t->value_len == strlen(s) && memcmp(t->value, s, t->value_len) == 0;
}

/* Is the colon-separated list (FWS allowed) holding item (ASCII case-insensitive)? */
static bool list_has(const char *list, size_t len, const char *item)
{
	size_t i = 0, n = strlen(item);

	while (i <= len) {
		while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == '\r' ||
				   list[i] == '\n'))
			i++;
		size_t start = i;
		while (i < len && list[i] != ':')
			i++;
		size_t end = i;
		while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t' ||
				       list[end - 1] == '\r' || list[end - 1] == '\n'))
			end--;
		if (end - start == n && str_nieq(list + start, item, n))
			return true;
		i++;
	}
	return false;
}

/* sub-domain labels: letters, digits, "-", "_" (selectors and d= in the
 * wild use "_"), dot-separated, none empty. */
static bool domain_ok(const char *s)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > MA_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* 1*n DIGIT, saturating at UINT64_MAX. */
static int parse_digits(const struct dkim_tag *t, size_t max_digits, uint64_t *value_r)
{
	uint64_t v = 0;

	if (t->value_len == 0 || t->value_len > max_digits)
		return -1;
	for (size_t i = 0; i < t->value_len; i++) {
		char c = t->value[i];
		if (c < '0' || c > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + (uint64_t)(c - '0');
	}
	*value_r = v;
	return 0;
}

/* dkim-quoted-printable (2.11): =XX hex; white space has no meaning. */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static char *qp_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
			i += 2;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return out;
}

/* Parses one DKIM-Signature field (RFC 6376 3.5, 6.1.1) and starts its
 * hashes. On any error the signature is finished with its result. */
static void sig_setup(struct dkim_verify *v, struct dkim_sig *s, const struct dkim_field *f,
		      const struct dkim_field *fields, size_t nfields)
{
	struct dkim_tags tags;
	const char *error;
	const char *value = f->raw + f->name_len;
	size_t value_len = f->raw_len - f->name_len;

	/* past the colon (white space may stand before it) */
	const char *colon = memchr(value, ':', value_len);
	value_len -= (size_t)(colon + 1 - value);
	value = colon + 1;

	if (dkim_tags_parse(value, value_len, &tags, &error) < 0) {
		sig_finish(s, DKIM_PERMERROR, error);
		return;
	}
	const struct dkim_tag *tv = dkim_tags_get(&tags, "v");
	const struct dkim_tag *ta = dkim_tags_get(&tags, "a");
	const struct dkim_tag *tb = dkim_tags_get(&tags, "b");
	const struct dkim_tag *tbh = dkim_tags_get(&tags, "bh");
	const struct dkim_tag *tc = dkim_tags_get(&tags, "c");
	const struct dkim_tag *td = dkim_tags_get(&tags, "d");
	const struct dkim_tag *th = dkim_tags_get(&tags, "h");
	const struct dkim_tag *ti = dkim_tags_get(&tags, "i");
	const struct dkim_tag *tl = dkim_tags_get(&tags, "l");
	const struct dkim_tag *tq = dkim_tags_get(&tags, "q");
	const struct dkim_tag *ts = dkim_tags_get(&tags, "s");
	const struct dkim_tag *tt = dkim_tags_get(&tags, "t");
	const struct dkim_tag *tx = dkim_tags_get(&tags, "x");

	s->r->domain = tag_dup(td);
	s->r->selector = tag_dup(ts);
	s->r->algorithm = tag_dup(ta);
	if (tb != NULL) {
		char prefix[DKIM_B_PREFIX + 1];
		size_t n = 0;
		for (size_t i = 0; i < tb->value_len && n < DKIM_B_PREFIX; i++) {
			char c = tb->value[i];
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				prefix[n++] = c;
		}
		prefix[n] = '\0';
		s->r->b_prefix = xstrdup(prefix);
	}
	/* 6.1.1: the required tags */
	if (tv == NULL || ta == NULL || tb == NULL || tbh == NULL || td == NULL ||
	    th == NULL || ts == NULL) {
		sig_finish(s, DKIM_PERMERROR, "a required tag is missing");
		return;
	}
	if (!tag_is(tv, "1")) {
		sig_finish(s, DKIM_PERMERROR, "v= is not 1");
		return;
	}
	if (tag_is(ta, "rsa-sha256")) {
		s->alg = DKIM_ALG_RSA_SHA256;
	} else if (tag_is(ta, "ed25519-sha256")) {
		s->alg = DKIM_ALG_ED25519_SHA256;
	} else if (tag_is(ta, "rsa-sha1")) {
		sig_finish(s, DKIM_PERMERROR, "rsa-sha1 is not accepted (RFC 8301 3.1)");
		return;
	} else {
		sig_finish(s, DKIM_PERMERROR, "unknown algorithm");
		return;
	}
	s->hcanon = s->bcanon = DKIM_CANON_SIMPLE;
	if (tc != NULL) {
		const char *slash = memchr(tc->value, '/', tc->value_len);
		size_t hlen = slash != NULL ? (size_t)(slash - tc->value) : tc->value_len;
		const char *bpart = slash != NULL ? slash + 1 : NULL;
		size_t blen = slash != NULL ? tc->value_len - hlen - 1 : 0;
		if (hlen == 7 && memcmp(tc->value, "relaxed", 7) == 0)
			s->hcanon = DKIM_CANON_RELAXED;
		else if (!(hlen == 6 && memcmp(tc->value, "simple", 6) == 0))
			goto bad_c;
		if (bpart != NULL) {
			if (blen == 7 && memcmp(bpart, "relaxed", 7) == 0)
				s->bcanon = DKIM_CANON_RELAXED;
			else if (!(blen == 6 && memcmp(bpart, "simple", 6) == 0))
				goto bad_c;
		}
	}
	int n = dkim_b64_decode(tb->value, tb->value_len, s->sig, sizeof(s->sig));
	if (n <= 0) {
		sig_finish(s, DKIM_PERMERROR, "b= is not base64");
		return;
	}
	s->sig_len = (size_t)n;
	n = dkim_b64_decode(tbh->value, tbh->value_len, s->bh, sizeof(s->bh));
	if (n != (int)sizeof(s->bh)) {
		sig_finish(s, DKIM_PERMERROR, "bh= is not a SHA-256 hash");
		return;
	}
	s->d = xstrndup(td->value, td->value_len);
	str_lower(s->d);
	if (!domain_ok(s->d)) {
		sig_finish(s, DKIM_PERMERROR, "bad d=");
		return;
	}
	char *sel = xstrndup(ts->value, ts->value_len);
	str_lower(sel);
	bool sel_ok = domain_ok(sel) &&
		strlen(sel) + strlen("._domainkey.") + strlen(s->d) <= MA_NAME_MAX;
	if (sel_ok)
		snprintf(s->qname, sizeof(s->qname), "%s._domainkey.%s", sel, s->d);
	free(sel);
	if (!sel_ok) {
		sig_finish(s, DKIM_PERMERROR, "bad s=");
		return;
	}
	/* "If the "h=" tag does not include the From header field, the
	 * Verifier MUST ignore the DKIM-Signature header field and return
	 * PERMFAIL (From field not signed)." (6.1.1) */
	if (!list_has(th->value, th->value_len, "from")) {
		sig_finish(s, DKIM_PERMERROR, "From is not signed");
		return;
	}
	if (ti != NULL) {
		char *auid = qp_decode(ti->value, ti->value_len);
		s->r->auid = auid;
		const char *at = strrchr(auid, '@');
		if (at == NULL) {
			sig_finish(s, DKIM_PERMERROR, "i= has no @");
			return;
		}
		s->i_domain = xstrdup(at + 1);
		str_lower(s->i_domain);
		/* "the domain part of the address MUST be the same as, or a
		 * subdomain of, the value of the "d=" tag" (3.5) */
		size_t il = strlen(s->i_domain), dl = strlen(s->d);
		if (!(il == dl ? strcmp(s->i_domain, s->d) == 0 :
		      il > dl && s->i_domain[il - dl - 1] == '.' &&
		      strcmp(s->i_domain + il - dl, s->d) == 0)) {
			sig_finish(s, DKIM_PERMERROR, "i= is not within d=");
			return;
		}
	} else {
		s->r->auid = xasprintf("@%s", s->r->domain);
	}
	uint64_t l = 0;
	if (tl != NULL && parse_digits(tl, 76, &l) < 0) {
		sig_finish(s, DKIM_PERMERROR, "bad l=");
		return;
	}
	if (tq != NULL && !list_has(tq->value, tq->value_len, "dns/txt")) {
		sig_finish(s, DKIM_PERMERROR, "q= has no dns/txt");
		return;
	}
	uint64_t t = 0, x = 0;
	if (tt != NULL && parse_digits(tt, 12, &t) < 0) {
		sig_finish(s, DKIM_PERMERROR, "bad t=");
		return;
	}
	if (tx != NULL) {
		if (parse_digits(tx, 12, &x) < 0) {
			sig_finish(s, DKIM_PERMERROR, "bad x=");
			return;
		}
		/* "the value of the "x=" tag MUST be greater than the value
		 * of the "t=" tag if both are present" (3.5) */
		if (tt != NULL && x < t) {
			sig_finish(s, DKIM_PERMERROR, "x= is before t=");
			return;
		}
		if (v->now >= 0 && x < (uint64_t)v->now) {
			sig_finish(s, DKIM_PERMERROR, "signature expired");
			return;
		}
	}

	/* the header hash, now that the whole header is here (3.7) */
	struct buf data;
	buf_init(&data, 2 * DKIM_MAX_HEADER);
	if (dkim_header_data(s->hcanon, fields, nfields, th->value, th->value_len,
			     f->raw, f->raw_len, &data) < 0) {
		buf_deinit(&data);
		sig_finish(s, DKIM_PERMERROR, "header too large");
		return;
	}
	EVP_Digest(data.data, data.len, s->hhash, NULL, EVP_sha256(), NULL);
	buf_deinit(&data);

	s->bmd = EVP_MD_CTX_new();
	if (s->bmd == NULL || EVP_DigestInit_ex(s->bmd, EVP_sha256(), NULL) != 1)
		log_fatal("dkim: cannot start SHA-256");
	dkim_body_init(&s->body, s->bcanon, s->bmd, tl != NULL, l);
	return;
bad_c:
	sig_finish(s, DKIM_PERMERROR, "bad c=");
}

static void header_end(struct dkim_verify *v)
{
	if (v->header_too_big)
		return;
	struct dkim_field *fields = xcalloc(DKIM_MAX_FIELDS, sizeof(*fields));
	int n = dkim_fields_split(v->header.data, v->header_len, fields, DKIM_MAX_FIELDS);
	if (n < 0) {
		v->header_too_big = true;
		free(fields);
		return;
	}
	size_t nsig = 0;
	for (int i = 0; i < n; i++) {
		if (fields[i].name_len == 14 && str_nieq(fields[i].raw, "DKIM-Signature", 14))
			nsig++;
	}
	if (nsig > DKIM_MAX_SIGS)
		nsig = DKIM_MAX_SIGS;
	v->sigs = xcalloc(nsig + 1, sizeof(*v->sigs));
	v->results = xcalloc(nsig + 1, sizeof(*v->results));
	for (size_t i = 0; i < nsig; i++)
		v->sigs[i].r = &v->results[i];
	for (int i = 0; i < n && v->nsigs < nsig; i++) {
		if (fields[i].name_len == 14 && str_nieq(fields[i].raw, "DKIM-Signature", 14))
			sig_setup(v, &v->sigs[v->nsigs++], &fields[i], fields, (size_t)n);
	}
	free(fields);
}

static void body_feed(struct dkim_verify *v, const char *data, size_t len)
{
	for (size_t i = 0; i < v->nsigs; i++) {
		if (!v->sigs[i].done)
			dkim_body_feed(&v->sigs[i].body, data, len);
	}
}

void dkim_verify_feed(struct dkim_verify *v, const char *data, size_t len)
{
	size_t i = 0;

	if (v->ended)
		return;
	while (v->hstate != HDR_DONE && i < len) {
		char c = data[i++];
		if (!v->header_too_big && buf_append_c(&v->header, c) < 0)
			v->header_too_big = true;
		switch (v->hstate) {
		case HDR_BOL:
			v->header_len = v->header.len - 1;
			if (c == '\r')
				v->hstate = HDR_BOL_CR;
			else if (c == '\n')
				v->hstate = HDR_DONE;
			else
				v->hstate = HDR_LINE;
			break;
		case HDR_BOL_CR:
			v->hstate = c == '\n' ? HDR_DONE : c == '\r' ? HDR_LINE : HDR_LINE;
			break;
		case HDR_LINE:
			if (c == '\n')
				v->hstate = HDR_BOL;
			break;
		case HDR_DONE:
			break;
		}
		if (v->hstate == HDR_DONE)
			header_end(v);
	}
	if (i < len)
		body_feed(v, data + i, len - i);
}

void dkim_verify_end(struct dkim_verify *v)
{
	if (v->ended)
		return;
	if (v->hstate != HDR_DONE) {
		/* a message that is all header: the body is empty (a CR
		 * alone on the last line is not part of any field) */
		v->header_len = v->header.len;
		if (v->hstate == HDR_BOL_CR && v->header_len > 0)
			v->header_len--;
		v->hstate = HDR_DONE;
		header_end(v);
	}
	v->ended = true;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct dkim_sig *s = &v->sigs[i];
		if (s->done)
			continue;
		unsigned char bh[EVP_MAX_MD_SIZE];
		unsigned int bh_len = 0;
		dkim_body_end(&s->body);
		EVP_DigestFinal_ex(s->bmd, bh, &bh_len);
		/* The verdict waits for the key: a bad or missing key is a
		 * permerror even when the body changed (6.1.2 before 6.1.3). */
		if (s->body.limited && s->body.canon_len < s->body.limit)
			s->body_error = "l= is longer than the body";
		else if (bh_len != sizeof(s->bh) || CRYPTO_memcmp(bh, s->bh, sizeof(s->bh)) != 0)
			s->body_error = "body hash did not verify";
		s->unsigned_tail = s->body.limited && s->body.canon_len > s->body.limit;
	}
	buf_deinit(&v->header);
}

/* ---- keys (3.6.1, 6.1.2) ---- */

struct key_info {
	EVP_PKEY *pkey;
	bool testing;
	bool strict;
	enum dkim_result result;	/* when pkey is NULL */
	const char *reason;
};

static void key_parse(const struct dkim_sig *s, const char *text, size_t len,
		      struct key_info *k)
{
	struct dkim_tags tags;
	const char *error;

	memset(k, 0, sizeof(*k));
	k->result = DKIM_PERMERROR;
	if (memchr(text, '\0', len) != NULL) {
		k->reason = "NUL in the key record";
		return;
	}
	if (dkim_tags_parse(text, len, &tags, &error) < 0) {
		k->reason = "key record syntax";
		return;
	}
	const struct dkim_tag *tv = dkim_tags_get(&tags, "v");
	const struct dkim_tag *th = dkim_tags_get(&tags, "h");
	const struct dkim_tag *tk = dkim_tags_get(&tags, "k");
	const struct dkim_tag *tp = dkim_tags_get(&tags, "p");
	const struct dkim_tag *ts = dkim_tags_get(&tags, "s");
	const struct dkim_tag *tt = dkim_tags_get(&tags, "t");

	/* "If specified, this tag MUST be set to "DKIM1" ... this tag MUST be
	 * the first tag in the record." */
	if (tv != NULL && (tv != &tags.tag[0] || !tag_is(tv, "DKIM1"))) {
		k->reason = "key record v= is not DKIM1";
		return;
	}
	if (th != NULL && !list_has(th->value, th->value_len, "sha256")) {
		k->reason = "key h= does not allow sha256";
		return;
	}
	/* 6.1.2 step 6: "If the public-key data (the "p=" tag) is empty,
	 * then this key has been revoked", before the key type (step 7) */
	if (tp == NULL) {
		k->reason = "key record has no p=";
		return;
	}
	if (tp->value_len == 0) {
		k->reason = "key revoked";
		return;
	}
	enum dkim_alg kalg = DKIM_ALG_RSA_SHA256;
	if (tk != NULL) {
		if (tag_is(tk, "rsa"))
			kalg = DKIM_ALG_RSA_SHA256;
		else if (tag_is(tk, "ed25519"))
			kalg = DKIM_ALG_ED25519_SHA256;
		else {
			k->reason = "unknown key type k=";
			return;
		}
	}
	if (kalg != s->alg) {
		k->reason = "key type does not match a=";
		return;
	}
	if (ts != NULL && !list_has(ts->value, ts->value_len, "*") &&
	    !list_has(ts->value, ts->value_len, "email")) {
		k->reason = "key is not for email (s=)";
		return;
	}
	if (tt != NULL) {
		k->testing = list_has(tt->value, tt->value_len, "y");
		k->strict = list_has(tt->value, tt->value_len, "s");
	}
	unsigned char der[DKIM_MAX_KEY_BYTES];
	int n = dkim_b64_decode(tp->value, tp->value_len, der, sizeof(der));
	if (n <= 0) {
		k->reason = "key p= is not base64";
		return;
	}
	if (kalg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463 4.2: the raw 32-byte public key */
		if (n != 32) {
			k->reason = "Ed25519 key is not 32 bytes";
			return;
		}
		k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32);
		if (k->pkey == NULL)
			k->reason = "bad Ed25519 key";
		return;
	}
	/* rsa: SubjectPublicKeyInfo as deployed, or a bare RSAPublicKey */
	const unsigned char *p = der;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, n);
	if (pkey == NULL) {
		p = der;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, n);
	}
	if (pkey == NULL || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pkey);
		k->reason = "bad RSA key";
		return;
	}
	if (EVP_PKEY_get_bits(pkey) < 1024) {
		EVP_PKEY_free(pkey);
		k->result = DKIM_POLICY;
		k->reason = "RSA key under 1024 bits (RFC 8301 3.2)";
		return;
	}
	k->pkey = pkey;
}

static bool sig_crypto_ok(const struct dkim_sig *s, EVP_PKEY *pkey)
{
	bool ok = false;

	if (s->alg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463 3: PureEdDSA over the SHA-256 header hash */
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
			ok = EVP_DigestVerify(ctx, s->sig, s->sig_len, s->hhash,
					      sizeof(s->hhash)) == 1;
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
		if (ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1)
			ok = EVP_PKEY_verify(ctx, s->sig, s->sig_len, s->hhash,
					     sizeof(s->hhash)) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok;
}

static void sig_answer(struct dkim_sig *s, const struct ma_answer *a)
{
	struct key_info k = { .result = DKIM_PERMERROR, .reason = "no key record" };

	switch (a->status) {
	case MA_DNS_TEMPFAIL:
		sig_finish(s, DKIM_TEMPERROR, "key lookup failed");
		return;
	case MA_DNS_PERMFAIL:
		sig_finish(s, DKIM_PERMERROR, "key lookup failed");
		return;
	case MA_DNS_NXDOMAIN:
	case MA_DNS_NODATA:
		sig_finish(s, DKIM_PERMERROR, "no key record");
		return;
	case MA_DNS_OK:
		break;
	}
	/* "If the query for the public key returns multiple key records, the
	 * Verifier can choose one of the key records or may cycle through the
	 * key records" (6.1.2): the first that parses; else the first error. */
	struct key_info first = { .result = DKIM_PERMERROR, .reason = "no key record" };
	for (size_t i = 0; i < a->count && i < MA_ANSWER_MAX; i++) {
		if (a->records[i].text == NULL)
			continue;
		key_parse(s, a->records[i].text, a->records[i].len, &k);
		if (k.pkey != NULL)
			break;
		if (i == 0)
			first = k;
	}
	if (k.pkey == NULL) {
		if (first.reason != NULL && a->count > 0)
			k = first;
		sig_finish(s, k.result, k.reason);
		return;
	}
	s->r->testing = k.testing;
	/* t=s: "the "i=" domain MUST NOT be a subdomain of "d="" (3.6.1) */
	if (k.strict && s->i_domain != NULL && strcmp(s->i_domain, s->d) != 0) {
		EVP_PKEY_free(k.pkey);
		sig_finish(s, DKIM_PERMERROR, "key t=s and i= is a subdomain of d=");
		return;
	}
	if (s->body_error != NULL) {
		EVP_PKEY_free(k.pkey);
		sig_finish(s, DKIM_FAIL, s->body_error);
		return;
	}
	bool ok = sig_crypto_ok(s, k.pkey);
	EVP_PKEY_free(k.pkey);
	if (!ok)
		sig_finish(s, DKIM_FAIL, "signature did not verify");
	else if (s->unsigned_tail)
		sig_finish(s, DKIM_POLICY, "l= leaves part of the body unsigned");
	else
		sig_finish(s, DKIM_PASS, NULL);
}

enum ma_step dkim_verify_step(struct dkim_verify *v, const struct ma_answer *answer,
			      struct ma_query *q_r)
{
	if (!v->ended)
		dkim_verify_end(v);
	if (answer != NULL && v->next < v->nsigs && !v->sigs[v->next].done)
		sig_answer(&v->sigs[v->next], answer);
	while (v->next < v->nsigs && v->sigs[v->next].done)
		v->next++;
	if (v->next == v->nsigs)
		return MA_STEP_DONE;
	q_r->type = MA_DNS_TXT;
	snprintf(q_r->name, sizeof(q_r->name), "%s", v->sigs[v->next].qname);
	return MA_STEP_QUERY;
}

size_t dkim_verify_results(const struct dkim_verify *v, const struct dkim_sig_result **r)
{
	*r = v->results;
	return v->nsigs;
}

void dkim_verify_free(struct dkim_verify **vp)
{
	struct dkim_verify *v = *vp;

	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nsigs; i++) {
		struct dkim_sig *s = &v->sigs[i];
		free((char *)s->r->domain);
		free((char *)s->r->selector);
		free((char *)s->r->algorithm);
		free((char *)s->r->b_prefix);
		free((char *)s->r->auid);
		free((char *)s->r->reason);
		free(s->d);
		free(s->i_domain);
		EVP_MD_CTX_free(s->bmd);
	}
	free(v->sigs);
	free(v->results);
	buf_deinit(&v->header);
	free(v);
	*vp = NULL;
}
