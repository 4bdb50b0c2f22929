/* DKIM tag lists (RFC 6376 3.2), canonicalisation (3.4) and the data the
 * header hash covers (3.7), shared by the verifier and the signer. */
#include "mailauth/dkim_private.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct buf *dkim_body_trace;

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* FWS in the tag grammar: WSP, and the CR LF of a fold. */
static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnumpunc(char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

/* VALCHAR = %x21-3A / %x3C-7E */
static bool is_valchar(char c)
{
	unsigned char u = (unsigned char)c;
	return u >= 0x21 && u <= 0x7e && u != ';';
}

/* tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
 * tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 * tag-name  =  ALPHA *ALNUMPUNC
 * tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
 * White space after the optional final ";" is accepted too (records as
 * published often end with "; "). */
int dkim_tags_parse(const char *text, size_t len, struct dkim_tags *tags_r,
		    const char **error_r)
{
	size_t i = 0;

	tags_r->count = 0;
	for (;;) {
		while (i < len && is_fws(text[i]))
			i++;
		if (i == len) {
			if (tags_r->count == 0) {
				*error_r = "empty tag list";
				return -1;
			}
			return 0;	/* after a final ";" */
		}
		if (!is_alpha(text[i])) {
			*error_r = "bad tag name";
			return -1;
		}
		size_t name = i;
		while (i < len && is_alnumpunc(text[i]))
			i++;
		size_t name_len = i - name;
		while (i < len && is_fws(text[i]))
			i++;
		if (i == len || text[i] != '=') {
			*error_r = "tag without =";
			return -1;
		}
		i++;
		while (i < len && is_fws(text[i]))
			i++;
		size_t value = i;
		size_t value_end = i;
		while (i < len && text[i] != ';') {
			if (is_valchar(text[i]))
				value_end = i + 1;
			else if (!is_fws(text[i])) {
				*error_r = "bad character in a tag value";
				return -1;
			}
			i++;
		}
		if (tags_r->count == DKIM_MAX_TAGS) {
			*error_r = "too many tags";
			return -1;
		}
		struct dkim_tag *t = &tags_r->tag[tags_r->count];
		size_t n = name_len < sizeof(t->name) - 1 ? name_len : sizeof(t->name) - 1;
		memcpy(t->name, text + name, n);
		t->name[n] = '\0';
		t->value = text + value;
		t->value_len = value_end - value;
		/* "Tags with duplicate names MUST NOT occur within a single
		 * tag-list; if a tag name does occur more than once, the entire
		 * tag-list is invalid." (3.2) Names are case-sensitive. */
		if (name_len < sizeof(t->name) - 1 && dkim_tags_get(tags_r, t->name) != NULL) {
			*error_r = "duplicate tag";
			return -1;
		}
		tags_r->count++;
		if (i == len)
			return 0;
		i++;	/* ";" */
	}
}

const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags, const char *name)
{
	for (size_t i = 0; i < tags->count; i++) {
		if (strcmp(tags->tag[i].name, name) == 0)
			return &tags->tag[i];
	}
	return NULL;
}

/* ---- the body (3.4.3, 3.4.4) ---- */

void dkim_body_init(struct dkim_body *b, enum dkim_canon canon, EVP_MD_CTX *md,
		    bool limited, uint64_t limit)
{
	memset(b, 0, sizeof(*b));
	b->canon = canon;
	b->md = md;
	b->limited = limited;
	b->limit = limit;
}

static void body_out(struct dkim_body *b, const char *p, size_t n)
{
	size_t take = n;

	if (b->limited) {
		uint64_t room = b->canon_len < b->limit ? b->limit - b->canon_len : 0;
		if (take > room)
			take = (size_t)room;
	}
	if (take > 0) {
		if (b->md != NULL)
			EVP_DigestUpdate(b->md, p, take);
		if (dkim_body_trace != NULL)
			(void)buf_append(dkim_body_trace, p, take);
	}
	b->canon_len += n;
	b->any = true;
}

/* Content on the current line: the line ends held back were not trailing. */
static void body_content(struct dkim_body *b, const char *p, size_t n)
{
	while (b->pending_crlf > 0) {
		body_out(b, "\r\n", 2);
		b->pending_crlf--;
	}
	body_out(b, p, n);
	b->line_content = true;
}

static void body_eol(struct dkim_body *b)
{
	/* relaxed: "Ignore all whitespace at the end of lines" (3.4.4 a) */
	b->wsp = false;
	b->pending_crlf++;
	b->line_content = false;
}

void dkim_body_feed(struct dkim_body *b, const char *data, size_t len)
{
	size_t run = 0;		/* start of a run of plain content bytes */

	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		bool plain = c != '\r' && !b->cr &&
			(b->canon == DKIM_CANON_SIMPLE || (!is_wsp(c) && !b->wsp));
		if (plain)
			continue;
		if (i > run)
			body_content(b, data + run, i - run);
		run = i + 1;
		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				body_eol(b);
				continue;
			}
			/* a CR alone is content */
			if (b->canon == DKIM_CANON_RELAXED && b->wsp) {
				body_content(b, " ", 1);
				b->wsp = false;
			}
			body_content(b, "\r", 1);
		}
		if (c == '\r') {
			b->cr = true;
		} else if (b->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
			/* "Reduce all sequences of WSP within a line to a
			 * single SP character" (3.4.4 b) */
			b->wsp = true;
		} else {
			if (b->wsp) {
				body_content(b, " ", 1);
				b->wsp = false;
			}
			body_content(b, &c, 1);
		}
	}
	if (len > run)
		body_content(b, data + run, len - run);
}

void dkim_body_end(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		if (b->canon == DKIM_CANON_RELAXED && b->wsp) {
			body_content(b, " ", 1);
			b->wsp = false;
		}
		body_content(b, "\r", 1);
	}
	if (b->line_content) {
		/* a last line without its CRLF gets one (3.4.3, 3.4.4) */
		body_out(b, "\r\n", 2);
		b->line_content = false;
	} else if (b->any && b->pending_crlf > 0) {
		/* "Ignores all empty lines at the end of the message body":
		 * the last line with content keeps its own CRLF. */
		body_out(b, "\r\n", 2);
	} else if (!b->any && b->canon == DKIM_CANON_SIMPLE) {
		/* "If there is no body or no trailing CRLF on the message
		 * body, a CRLF is added" (3.4.3); relaxed leaves an empty body
		 * empty (3.4.4, errata 1384). */
		body_out(b, "\r\n", 2);
	}
	b->pending_crlf = 0;
}

/* ---- header fields ---- */

int dkim_fields_split(const char *hdr, size_t len, struct dkim_field *fields, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		size_t start = i;
		const char *nl = memchr(hdr + i, '\n', len - i);
		i = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		if (is_wsp(hdr[start]))
			continue;	/* a continuation line without a field */
		/* continuation lines */
		while (i < len && is_wsp(hdr[i])) {
			nl = memchr(hdr + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		}
		size_t name_len = 0;
		while (start + name_len < i && hdr[start + name_len] != ':' &&
		       hdr[start + name_len] != '\r' && hdr[start + name_len] != '\n')
			name_len++;
		if (start + name_len == i || hdr[start + name_len] != ':')
			continue;	/* not a field */
		while (name_len > 0 && is_wsp(hdr[start + name_len - 1]))
			name_len--;
		if (name_len == 0)
			continue;
		if (n == max)
			return -1;
		fields[n].raw = hdr + start;
		fields[n].raw_len = i - start;
		fields[n].name_len = name_len;
		n++;
	}
	return (int)n;
}

int dkim_canon_header(enum dkim_canon canon, const char *raw, size_t raw_len,
		      bool crlf, struct buf *out)
{
	if (canon == DKIM_CANON_SIMPLE) {
		size_t n = raw_len;
		if (n >= 2 && raw[n - 2] == '\r' && raw[n - 1] == '\n')
			n -= 2;
		else if (n >= 1 && raw[n - 1] == '\n')
			n -= 1;
		if (buf_append(out, raw, n) < 0)
			return -1;
		return crlf ? buf_append(out, "\r\n", 2) : 0;
	}
	/* relaxed (3.4.2) */
	const char *colon = memchr(raw, ':', raw_len);
	if (colon == NULL)
		return -1;
	size_t name_len = (size_t)(colon - raw);
	while (name_len > 0 && is_wsp(raw[name_len - 1]))
		name_len--;
	for (size_t i = 0; i < name_len; i++) {
		char c = raw[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (buf_append_c(out, c) < 0)
			return -1;
	}
	if (buf_append_c(out, ':') < 0)
		return -1;
	bool wsp = false, started = false;
	for (const char *p = colon + 1; p < raw + raw_len; p++) {
		char c = *p;
		if (c == '\r' || c == '\n')
			continue;	/* unfold */
		if (is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && started && buf_append_c(out, ' ') < 0)
			return -1;
		wsp = false;
		started = true;
		if (buf_append_c(out, c) < 0)
			return -1;
	}
	return crlf ? buf_append(out, "\r\n", 2) : 0;
}

int dkim_strip_b(const char *raw, size_t raw_len, struct buf *out)
{
	const char *colon = memchr(raw, ':', raw_len);
	if (colon == NULL)
		return -1;
	size_t i = (size_t)(colon - raw) + 1;
	while (i < raw_len) {
		while (i < raw_len && is_fws(raw[i]))
			i++;
		size_t name = i;
		while (i < raw_len && is_alnumpunc(raw[i]))
			i++;
		bool is_b = i - name == 1 && raw[name] == 'b';
		while (i < raw_len && is_fws(raw[i]))
			i++;
		if (i == raw_len || raw[i] != '=')
			return -1;
		size_t eq = i;
		while (i < raw_len && raw[i] != ';')
			i++;
		if (is_b) {
			if (buf_append(out, raw, eq + 1) < 0 ||
			    buf_append(out, raw + i, raw_len - i) < 0)
				return -1;
			return 0;
		}
		if (i < raw_len)
			i++;
	}
	return -1;
}

static bool field_named(const struct dkim_field *f, const char *name, size_t len)
{
	return f->name_len == len && str_nieq(f->raw, name, len);
}

int dkim_header_data(enum dkim_canon canon, const struct dkim_field *fields, size_t nfields,
		     const char *h, size_t h_len, const char *sig_raw, size_t sig_raw_len,
		     struct buf *out)
{
	bool *used = xcalloc(nfields + 1, sizeof(*used));
	int ret = -1;
	size_t i = 0;

	while (i < h_len) {
		while (i < h_len && is_fws(h[i]))
			i++;
		size_t name = i;
		while (i < h_len && h[i] != ':')
			i++;
		size_t end = i;
		while (end > name && is_fws(h[end - 1]))
			end--;
		if (i < h_len)
			i++;
		if (end == name)
			continue;
		/* "If there are multiple instances of a field name, use them
		 * from the bottom up; a name with no instance left is
		 * treated as the null string" (5.4.2) */
		for (size_t k = nfields; k-- > 0;) {
			if (!used[k] && field_named(&fields[k], h + name, end - name)) {
				used[k] = true;
				if (dkim_canon_header(canon, fields[k].raw, fields[k].raw_len,
						      true, out) < 0)
					goto out;
				break;
			}
		}
	}
	struct buf stripped;
	buf_init(&stripped, out->max);
	if (dkim_strip_b(sig_raw, sig_raw_len, &stripped) == 0 &&
	    dkim_canon_header(canon, stripped.data, stripped.len, false, out) == 0)
		ret = 0;
	buf_deinit(&stripped);
out:
	free(used);
	return ret;
}

int dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t max)
{
	size_t bin_len;
	const char *end;

	if (len == 0)
		return 0;
	if (sodium_base642bin(out, max, s, len, " \t\r\n", &bin_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	if (end != s + len)
		return -1;
	return (int)bin_len;
}
