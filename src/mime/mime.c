/* The MIME parser (RFC 2045, 2046, 2231, 5322) and its part tree.
 *
 * How a message is cut into parts follows Dovecot's lib-mail message parser
 * closely, because its BODYSTRUCTURE is what IMAP clients have met for
 * twenty years and what our tests compare with (tests/data/mime/):
 *
 * - A part is a header, ended by an empty line (CRLF or LF), and a body.
 *   The top-level part starts at offset 0.
 * - A part is MIME (its Content-* fields count) when it is inside a
 *   multipart, or has a MIME-Version or a Content-Type field (RFC 2045 4
 *   asks for MIME-Version, but mailers forget it).
 * - A multipart with a boundary parameter (RFC 2046 5.1.1) pushes its
 *   boundary when its header ends with an empty line. A line is a delimiter
 *   when it starts with "--" and the rest starts with an open boundary: the
 *   longest one, the newest first. RFC 2046 says a boundary must not be a
 *   prefix of another one and the line may carry trailing white space, so
 *   prefix matching is both tolerant and safe. "--" right after the
 *   boundary closes the multipart.
 * - The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1),
 *   not to the part before it.
 * - A delimiter closes every part opened after its multipart, and a
 *   delimiter line in a part header ends that header (the part then has an
 *   empty body): a part that forgot its empty line does not swallow the
 *   rest of the message.
 * - message/rfc822 (and a part without Content-Type inside
 *   multipart/digest, RFC 2046 5.1.5) contains one child, the message.
 * - Everything else is a leaf: text, or a multipart without a boundary
 *   (then it has no children, and BODYSTRUCTURE shows one empty text part).
 *
 * The input is read line by line. Only the first bytes of a line that may
 * be a delimiter (at most WIN_MAX) and the header of the current part are
 * kept; body bytes are looked at once, with memchr() for the line ends, and
 * never copied. All work per byte is bounded, so the parse is linear. */
#include "mime/mime.h"
#include "mime/mime_private.h"
#include "mime/header.h"
#include "mime/decode.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

/* "--", a boundary, "--" and CR: all a delimiter line decision needs. */
#define WIN_MAX (2 + MIME_BOUNDARY_MAX + 4)
/* Dovecot looks at this much of a long line after the "--". */
#define BOUNDARY_END_MAX (MIME_BOUNDARY_MAX + 4)

/* ---------------------------------------------------------------------- */
/* Small helpers */

static void *vec_grow(void *p, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	uint32_t c = *cap ? *cap : 8;
	while (c < need) {
		if (c > UINT32_MAX / 2)
			log_panic("mime: vector of %u elements", need);
		c *= 2;
	}
	*cap = c;
	return xrealloc(p, (size_t)c * elem);
}

static struct mstr mstr_nil(void)
{
	struct mstr s = { MSTR_NIL, 0 };
	return s;
}

/* Copies s into the arena. NUL bytes become U+FFFD, as Dovecot's
 * message_header_strdup() does, so that every arena string is a C string. */
static struct mstr arena_add(struct mime_message *msg, const char *s, size_t len)
{
	size_t nuls = 0;
	for (size_t i = 0; i < len; i++)
		nuls += s[i] == '\0';
	size_t out = len + nuls * 2;
	if (out >= UINT32_MAX / 2 || msg->arena.len + out + 1 >= UINT32_MAX - 1)
		return mstr_nil();
	struct mstr r = { (uint32_t)msg->arena.len, (uint32_t)out };
	if (nuls == 0) {
		buf_append(&msg->arena, s, len);
	} else {
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '\0')
				buf_append(&msg->arena, "\xef\xbf\xbd", 3);
			else
				buf_append_c(&msg->arena, s[i]);
		}
	}
	buf_append_c(&msg->arena, '\0');
	return r;
}

static struct mstr arena_add_str(struct mime_message *msg, const char *s)
{
	return s == NULL ? mstr_nil() : arena_add(msg, s, strlen(s));
}

static bool name_is(const struct header_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

/* ---------------------------------------------------------------------- */
/* RFC 822 tokens, as Dovecot's rfc822-parser.c reads them: the grammar of
 * Content-Type parameters and of addresses, with its tolerance. */

/* atext (RFC 5322 3.2.3) is 1 or 2, 8-bit bytes included; 4 marks atext
 * that is a MIME tspecial ('/', '=', '?', RFC 2045 5.1). */
static const unsigned char atext_tab[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 0, 4,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 4, 0, 4,
	0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 1, 1,
	1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define IS_ATEXT(c) (atext_tab[(unsigned char)(c)] != 0)
#define IS_TOKEN(c) ((atext_tab[(unsigned char)(c)] & 3) != 0 || (c) == '.')

struct rp {
	const unsigned char *data, *end;
	struct buf *last_comment;	/* NULL: not kept */
};

static void rp_init(struct rp *rp, const char *s, size_t len, struct buf *last_comment)
{
	rp->data = (const unsigned char *)s;
	rp->end = rp->data + len;
	rp->last_comment = last_comment;
}

/* Each returns 1 when more input follows, 0 at its end, -1 on an error. */
static int rp_skip_comment(struct rp *rp)
{
	int level = 1;
	if (rp->last_comment != NULL)
		buf_reset(rp->last_comment);
	const unsigned char *start = ++rp->data;
	for (; rp->data < rp->end; rp->data++) {
		switch (*rp->data) {
		case '(':
			level++;
			break;
		case ')':
			if (--level == 0) {
				if (rp->last_comment != NULL)
					buf_append(rp->last_comment, start, (size_t)(rp->data - start));
				rp->data++;
				return rp->data < rp->end ? 1 : 0;
			}
			break;
		case '\\':
			if (rp->last_comment != NULL)
				buf_append(rp->last_comment, start, (size_t)(rp->data - start));
			start = rp->data + 1;
			rp->data++;
			if (rp->data >= rp->end)
				return -1;
			break;
		}
	}
	return -1;
}

static int rp_skip_lwsp(struct rp *rp)
{
	while (rp->data < rp->end) {
		unsigned char c = *rp->data;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			rp->data++;
			continue;
		}
		if (c != '(')
			break;
		if (rp_skip_comment(rp) < 0)
			return -1;
	}
	return rp->data < rp->end ? 1 : 0;
}

static int rp_atom(struct rp *rp, struct buf *str)
{
	if (rp->data >= rp->end || !IS_ATEXT(*rp->data))
		return -1;
	const unsigned char *start = rp->data++;
	while (rp->data < rp->end && IS_ATEXT(*rp->data))
		rp->data++;
	buf_append(str, start, (size_t)(rp->data - start));
	return rp->data < rp->end ? rp_skip_lwsp(rp) : 0;
}

/* dot-atom, with white space allowed around the dots (RFC 822). */
static int rp_dot_atom(struct rp *rp, struct buf *str)
{
	if (rp->data >= rp->end || !IS_ATEXT(*rp->data))
		return -1;
	const unsigned char *start = rp->data++;
	while (rp->data < rp->end) {
		if (IS_ATEXT(*rp->data)) {
			rp->data++;
			continue;
		}
		buf_append(str, start, (size_t)(rp->data - start));
		int ret = rp_skip_lwsp(rp);
		if (ret <= 0)
			return ret;
		if (*rp->data != '.')
			return 1;
		rp->data++;
		buf_append_c(str, '.');
		if ((ret = rp_skip_lwsp(rp)) <= 0)
			return ret;
		start = rp->data;
	}
	buf_append(str, start, (size_t)(rp->data - start));
	return 0;
}

/* RFC 2045 5.1 token (may be empty). */
static int rp_token(struct rp *rp, struct buf *str)
{
	const unsigned char *start = rp->data;
	while (rp->data < rp->end && IS_TOKEN(*rp->data))
		rp->data++;
	buf_append(str, start, (size_t)(rp->data - start));
	return rp->data < rp->end ? rp_skip_lwsp(rp) : 0;
}

/* Unquotes; a folded line break inside is dropped. */
static int rp_quoted(struct rp *rp, struct buf *str)
{
	rp->data++;
	const unsigned char *start = rp->data;
	for (; rp->data < rp->end; rp->data++) {
		switch (*rp->data) {
		case '"':
			buf_append(str, start, (size_t)(rp->data - start));
			rp->data++;
			return rp_skip_lwsp(rp);
		case '\n': {
			size_t len = (size_t)(rp->data - start);
			if (len > 0 && start[len - 1] == '\r')
				len--;
			buf_append(str, start, len);
			start = rp->data + 1;
			break;
		}
		case '\\':
			rp->data++;
			if (rp->data >= rp->end)
				return -1;
			buf_append(str, start, (size_t)(rp->data - start - 1));
			start = rp->data;
			break;
		}
	}
	return -1;
}

static int rp_atom_or_dot(struct rp *rp, struct buf *str)
{
	const unsigned char *start = rp->data;
	while (rp->data < rp->end && (IS_ATEXT(*rp->data) || *rp->data == '.'))
		rp->data++;
	buf_append(str, start, (size_t)(rp->data - start));
	return rp->data < rp->end ? rp_skip_lwsp(rp) : 0;
}

/* phrase (RFC 5322 3.2.5) and obs-phrase: words joined by one space. */
static int rp_phrase(struct rp *rp, struct buf *str)
{
	if (rp->data >= rp->end)
		return 0;
	if (*rp->data == '.')
		return -1;
	for (;;) {
		int ret = *rp->data == '"' ? rp_quoted(rp, str) : rp_atom_or_dot(rp, str);
		if (ret <= 0)
			return ret;
		if (!IS_ATEXT(*rp->data) && *rp->data != '"' && *rp->data != '.')
			break;
		buf_append_c(str, ' ');
	}
	return rp_skip_lwsp(rp);
}

static int rp_domain(struct rp *rp, struct buf *str)
{
	rp->data++;	/* '@' */
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	if (*rp->data != '[')
		return rp_dot_atom(rp, str);
	/* domain-literal, kept as written */
	const unsigned char *start = rp->data;
	for (; rp->data < rp->end; rp->data++) {
		if (*rp->data == '\\') {
			rp->data++;
			if (rp->data >= rp->end)
				break;
		} else if (*rp->data == ']') {
			rp->data++;
			buf_append(str, start, (size_t)(rp->data - start));
			return rp_skip_lwsp(rp);
		}
	}
	return -1;
}

/* type "/" subtype (RFC 2045 5.1) into str, as Dovecot 2.3 reads it:
 * anything but a ";" after the subtype, an empty type or subtype make the
 * whole value invalid and str empty; a lone type at the end stays (and is
 * a text part when it is "text"). Returns 1 or 0 (end) when valid. */
static int rp_content_type(struct rp *rp, struct buf *str)
{
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	int ret = rp_token(rp, str);
	if (ret <= 0)
		return -1;
	if (str->len == 0 || *rp->data != '/')
		goto invalid;
	rp->data++;
	if (rp_skip_lwsp(rp) <= 0)
		goto invalid;
	buf_append_c(str, '/');
	size_t type_len = str->len;
	ret = rp_token(rp, str);
	if (ret < 0 || str->len == type_len || (ret > 0 && *rp->data != ';'))
		goto invalid;
	return ret;
invalid:
	buf_reset(str);
	return -1;
}

/* ";" attribute "=" value. Returns 1 with key and value, 0 at the end,
 * -1 when broken. */
static int rp_param(struct rp *rp, struct buf *key, struct buf *value)
{
	buf_reset(key);
	buf_reset(value);
	if (rp->data >= rp->end)
		return 0;
	if (*rp->data != ';')
		return -1;
	rp->data++;
	if (rp_skip_lwsp(rp) <= 0)
		return -1;
	if (rp_token(rp, key) <= 0)
		return -1;
	if (*rp->data != '=')
		return -1;
	rp->data++;
	int ret = rp_skip_lwsp(rp);
	if (ret <= 0) {
		/* no value */
	} else if (*rp->data == '"') {
		ret = rp_quoted(rp, value);
	} else if (*rp->data == '=') {
		/* an unquoted encoded-word: name==?utf-8?b?...?= */
		while (rp->data < rp->end && *rp->data != ';' && *rp->data != ' ' &&
		       *rp->data != '\t' && *rp->data != '\r' && *rp->data != '\n')
			buf_append_c(value, (char)*rp->data++);
	} else {
		ret = rp_token(rp, value);
	}
	return ret < 0 ? -1 : 1;
}

/* ---------------------------------------------------------------------- */
/* RFC 2231 parameters */

struct kv {
	char *key, *value;
};

struct kv_list {
	struct kv *v;
	uint32_t count, cap;
};

static void kv_add(struct kv_list *l, char *key, char *value)
{
	l->v = vec_grow(l->v, &l->cap, l->count + 1, sizeof(*l->v));
	l->v[l->count].key = key;
	l->v[l->count].value = value;
	l->count++;
}

static void kv_free(struct kv_list *l)
{
	for (uint32_t i = 0; i < l->count; i++) {
		free(l->v[i].key);
		free(l->v[i].value);
	}
	free(l->v);
	l->v = NULL;
	l->count = l->cap = 0;
}

struct rfc2231_piece {
	char *key;		/* without "*n*" */
	char *value;
	uint32_t idx;
	uint32_t order;		/* position in the field: keeps the sort stable */
	bool extended;
};

static int piece_cmp(const void *a, const void *b)
{
	const struct rfc2231_piece *x = a, *y = b;
	int r = strcmp(x->key, y->key);
	if (r != 0)
		return r;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Reads the parameters after a Content-Type or Content-Disposition value.
 * RFC 2231 3 continuations (name*0, name*1*, ...) are joined into one value,
 * in index order; an extended value stays percent-encoded under "name*",
 * with "''" in front when its first piece was not extended, as Dovecot's
 * BODYSTRUCTURE has it. When an index is missing the pieces stay apart.
 * Plain parameters come first, in field order. Returns -1 when something
 * could not be parsed (what could be is in out). */
static int params_parse(struct rp *rp, struct kv_list *out)
{
	struct buf key, value;
	buf_init(&key, 0);
	buf_init(&value, 0);
	struct rfc2231_piece *pieces = NULL;
	uint32_t npieces = 0, cap = 0;
	/* Dovecot keeps the index of the previous piece for "name*"; so do
	 * we, or our BODYSTRUCTURE would differ on such junk. */
	uint32_t idx = 0;
	bool broken = false;
	int ret;

	while ((ret = rp_param(rp, &key, &value)) != 0) {
		if (ret < 0) {
			broken = true;
			if (rp->data >= rp->end)
				break;
			rp->data++;
			continue;
		}
		const char *k = key.data ? key.data : "";
		const char *star = strchr(k, '*');
		bool plain = true;
		if (star != NULL) {
			const char *q = star;
			if (q[1] != '\0') {
				q++;
				idx = 0;
				for (; *q >= '0' && *q <= '9'; q++)
					idx = idx * 10 + (uint32_t)(*q - '0');
			}
			bool extended = *q == '*';
			if (extended)
				q++;
			if (*q == '\0') {
				plain = false;
				pieces = vec_grow(pieces, &cap, npieces + 1, sizeof(*pieces));
				pieces[npieces].key = xstrndup(k, (size_t)(star - k));
				pieces[npieces].value = xstrdup(value.data ? value.data : "");
				pieces[npieces].idx = idx;
				pieces[npieces].order = npieces;
				pieces[npieces].extended = extended;
				npieces++;
			}
		}
		if (plain)
			kv_add(out, xstrdup(k), xstrdup(value.data ? value.data : ""));
	}

	if (npieces > 0)
		qsort(pieces, npieces, sizeof(*pieces), piece_cmp);
	uint32_t next;
	for (uint32_t i = 0; i < npieces; i = next) {
		bool ok = true, have_ext = false;
		uint32_t want = 0, j;
		for (j = i; j < npieces; j++) {
			if (!str_ieq(pieces[i].key, pieces[j].key))
				break;
			if (pieces[j].idx != want)
				ok = false;
			if (pieces[j].extended)
				have_ext = true;
			want++;
		}
		next = j;
		if (!ok) {
			for (j = i; j < next; j++) {
				kv_add(out, xasprintf(pieces[j].extended ? "%s*%u*" : "%s*%u",
						      pieces[j].key, pieces[j].idx),
				       xstrdup(pieces[j].value));
			}
			continue;
		}
		buf_reset(&value);
		if (!pieces[i].extended && have_ext)
			buf_append_str(&value, "''");
		for (j = i; j < next; j++) {
			if (!pieces[j].extended && have_ext) {
				for (const char *s = pieces[j].value; *s != '\0'; s++) {
					if (*s == '%')
						buf_append_str(&value, "%25");
					else
						buf_append_c(&value, *s);
				}
			} else {
				buf_append_str(&value, pieces[j].value);
			}
		}
		kv_add(out, have_ext ? xasprintf("%s*", pieces[i].key) : xstrdup(pieces[i].key),
		       xstrdup(value.data ? value.data : ""));
	}
	for (uint32_t i = 0; i < npieces; i++) {
		free(pieces[i].key);
		free(pieces[i].value);
	}
	free(pieces);
	buf_deinit(&key);
	buf_deinit(&value);
	return broken ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Addresses (RFC 5322 3.4), as Dovecot's message_address_parse() with
 * "fill missing": what cannot be read still gives an address, with
 * MISSING_MAILBOX, MISSING_DOMAIN or SYNTAX_ERROR in it, so that a client
 * sees that something was there. */

struct taddr {
	char *name, *route, *mailbox, *domain;
	bool invalid;
};

struct aparser {
	struct rp rp;
	struct buf str, comment;
	struct taddr cur;
	struct taddr *list;
	uint32_t count, cap;
};

static void taddr_clear(struct taddr *a)
{
	free(a->name);
	free(a->route);
	free(a->mailbox);
	free(a->domain);
	memset(a, 0, sizeof(*a));
}

static void set_field(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? xstrdup(value) : NULL;
}

static const char *bstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

static void add_address(struct aparser *ap)
{
	ap->list = vec_grow(ap->list, &ap->cap, ap->count + 1, sizeof(*ap->list));
	ap->list[ap->count++] = ap->cur;
	memset(&ap->cur, 0, sizeof(ap->cur));
}

static int parse_local_part(struct aparser *ap)
{
	buf_reset(&ap->str);
	int ret = *ap->rp.data == '"' ? rp_quoted(&ap->rp, &ap->str) : rp_dot_atom(&ap->rp, &ap->str);
	if (ret < 0)
		return -1;
	set_field(&ap->cur.mailbox, bstr(&ap->str));
	return ret;
}

static int parse_domain(struct aparser *ap)
{
	buf_reset(&ap->str);
	int ret = rp_domain(&ap->rp, &ap->str);
	if (ret < 0)
		return -1;
	set_field(&ap->cur.domain, bstr(&ap->str));
	return ret;
}

/* obs-domain-list: "@" domain *("," "@" domain) */
static int parse_domain_list(struct aparser *ap)
{
	buf_reset(&ap->str);
	for (;;) {
		if (ap->rp.data >= ap->rp.end)
			return 0;
		if (*ap->rp.data != '@')
			break;
		if (ap->str.len > 0)
			buf_append_c(&ap->str, ',');
		buf_append_c(&ap->str, '@');
		int ret = rp_domain(&ap->rp, &ap->str);
		if (ret <= 0)
			return ret;
		while (rp_skip_lwsp(&ap->rp) > 0 && *ap->rp.data == ',')
			ap->rp.data++;
	}
	set_field(&ap->cur.route, bstr(&ap->str));
	return 1;
}

static int parse_angle_addr(struct aparser *ap)
{
	ap->rp.data++;	/* '<' */
	if (rp_skip_lwsp(&ap->rp) <= 0)
		return -1;
	if (*ap->rp.data == '@') {
		if (parse_domain_list(ap) > 0 && *ap->rp.data == ':') {
			ap->rp.data++;
		} else {
			set_field(&ap->cur.route, "INVALID_ROUTE");
			if (ap->rp.data >= ap->rp.end)
				return -1;
		}
		if (rp_skip_lwsp(&ap->rp) <= 0)
			return -1;
	}
	if (*ap->rp.data != '>') {
		if (parse_local_part(ap) <= 0)
			return -1;
		if (*ap->rp.data == '@' && parse_domain(ap) <= 0)
			return -1;
	}
	if (*ap->rp.data != '>')
		return -1;
	ap->rp.data++;
	return rp_skip_lwsp(&ap->rp);
}

/* name-addr = [display-name] angle-addr */
static int parse_name_addr(struct aparser *ap)
{
	buf_reset(&ap->str);
	if (rp_phrase(&ap->rp, &ap->str) <= 0 || *ap->rp.data != '<')
		return -1;
	set_field(&ap->cur.name, ap->str.len > 0 ? bstr(&ap->str) : NULL);
	if (parse_angle_addr(ap) < 0) {
		set_field(&ap->cur.domain, "SYNTAX_ERROR");
		ap->cur.invalid = true;
	}
	return ap->rp.data < ap->rp.end ? 1 : 0;
}

static int parse_addr_spec(struct aparser *ap)
{
	int ret, ret2 = -2;
	buf_reset(&ap->comment);
	bool quoted = *ap->rp.data == '"';
	ret = parse_local_part(ap);
	if (ret <= 0)
		ap->cur.invalid = true;
	if (ret != 0 && ap->rp.data < ap->rp.end && *ap->rp.data == '@') {
		ret2 = parse_domain(ap);
		if (ret2 <= 0)
			ret = ret2;
	}
	if (ap->comment.len > 0) {
		/* "user@host (Real Name)": the comment is the name */
		set_field(&ap->cur.name, bstr(&ap->comment));
	} else if (ret2 == -2) {
		/* A lone word is a mailbox; more words make a name. */
		buf_append_c(&ap->str, ' ');
		size_t orig = ap->str.len;
		(void)rp_phrase(&ap->rp, &ap->str);
		if (ap->str.len != orig) {
			set_field(&ap->cur.mailbox, NULL);
			set_field(&ap->cur.name, bstr(&ap->str));
		} else if (!quoted) {
			set_field(&ap->cur.domain, "");
		}
		ap->cur.invalid = true;
		ret = -1;
	}
	return ret;
}

static void add_fixed_address(struct aparser *ap)
{
	if (ap->cur.mailbox == NULL) {
		set_field(&ap->cur.mailbox, "MISSING_MAILBOX");
		ap->cur.invalid = true;
	}
	if (ap->cur.domain == NULL || ap->cur.domain[0] == '\0') {
		set_field(&ap->cur.domain, "MISSING_DOMAIN");
		ap->cur.invalid = true;
	}
	add_address(ap);
}

static int parse_mailbox(struct aparser *ap)
{
	const unsigned char *start = ap->rp.data;
	int ret = parse_name_addr(ap);
	if (ret < 0) {
		ap->rp.data = start;
		ret = parse_addr_spec(ap);
		if (ap->cur.invalid && ap->cur.name == NULL && ap->cur.mailbox != NULL &&
		    ap->cur.domain == NULL) {
			ap->cur.name = ap->cur.mailbox;
			ap->cur.mailbox = NULL;
		}
	}
	if (ret < 0)
		ap->cur.invalid = true;
	add_fixed_address(ap);
	return ret;
}

/* group = display-name ":" [mailbox-list] ";" */
static int parse_group(struct aparser *ap)
{
	buf_reset(&ap->str);
	if (rp_phrase(&ap->rp, &ap->str) <= 0 || *ap->rp.data != ':')
		return -1;
	ap->rp.data++;
	int ret = rp_skip_lwsp(&ap->rp);
	if (ret <= 0)
		ap->cur.invalid = true;
	set_field(&ap->cur.mailbox, bstr(&ap->str));
	add_address(ap);

	if (ret > 0 && *ap->rp.data != ';') {
		for (;;) {
			(void)parse_mailbox(ap);
			if (ap->rp.data >= ap->rp.end || *ap->rp.data != ',')
				break;
			ap->rp.data++;
			if (rp_skip_lwsp(&ap->rp) <= 0) {
				ret = -1;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (ap->rp.data >= ap->rp.end || *ap->rp.data != ';') {
			ret = -1;
		} else {
			ap->rp.data++;
			ret = rp_skip_lwsp(&ap->rp);
		}
	}
	taddr_clear(&ap->cur);
	add_address(ap);	/* end of group: all NIL */
	return ret == 0 ? 0 : 1;
}

static int parse_address(struct aparser *ap)
{
	const unsigned char *start = ap->rp.data;
	int ret = parse_group(ap);
	if (ret < 0) {
		ap->rp.data = start;
		taddr_clear(&ap->cur);
		ret = parse_mailbox(ap);
	}
	return ret;
}

/* Parses an address-list into msg->addrs. Returns the number added. */
static uint32_t addresses_parse(struct mime_message *msg, const char *value, size_t len,
				uint32_t *start_r)
{
	struct aparser ap;
	memset(&ap, 0, sizeof(ap));
	buf_init(&ap.str, 0);
	buf_init(&ap.comment, 0);
	rp_init(&ap.rp, value, len, &ap.comment);
	if (rp_skip_lwsp(&ap.rp) > 0) {
		for (;;) {
			if (parse_address(&ap) == 0)
				break;
			if (ap.rp.data >= ap.rp.end || *ap.rp.data != ',')
				break;
			ap.rp.data++;
			int ret = rp_skip_lwsp(&ap.rp);
			if (ret <= 0) {
				if (ret < 0)
					add_fixed_address(&ap);
				break;
			}
		}
	}
	*start_r = msg->addrs_count;
	for (uint32_t i = 0; i < ap.count; i++) {
		msg->addrs = vec_grow(msg->addrs, &msg->addrs_cap, msg->addrs_count + 1,
				      sizeof(*msg->addrs));
		struct mime_addr *a = &msg->addrs[msg->addrs_count++];
		a->name = arena_add_str(msg, ap.list[i].name);
		a->route = arena_add_str(msg, ap.list[i].route);
		a->mailbox = arena_add_str(msg, ap.list[i].mailbox);
		a->domain = arena_add_str(msg, ap.list[i].domain);
		taddr_clear(&ap.list[i]);
	}
	taddr_clear(&ap.cur);
	free(ap.list);
	buf_deinit(&ap.str);
	buf_deinit(&ap.comment);
	return ap.count;
}

/* ---------------------------------------------------------------------- */
/* The parser */

struct boundary {
	uint32_t part;
	uint32_t len;
	char s[MIME_BOUNDARY_MAX];
};

enum pmode {
	PMODE_HEADER,
	PMODE_BODY,
};

enum lstate {
	LS_START,	/* collecting the first bytes of a line into win */
	LS_REST,	/* the line is decided: on to its LF */
};

enum header_end {
	HEND_BLANK,	/* the empty line */
	HEND_CUT,	/* a delimiter line */
	HEND_EOF,
};

struct mime_parser {
	struct mime_limits lim;
	struct mime_message *msg;
	uint32_t cur;		/* the part being read */
	enum pmode mode;
	enum lstate ls;
	bool line_is_header;	/* LS_REST: the line goes to the header buffer */
	bool pending_child;	/* a delimiter line: a part starts after its LF */
	bool parts_exceeded;	/* max_parts made: no more parts */
	bool line_delim;	/* the current line is a delimiter */
	bool prev_line_delim;	/* the line before was one */

	struct cpos now;	/* pos: bytes fed so far */
	struct cpos eol;	/* where the last line break started */
	unsigned char prev;	/* the byte before now.pos */

	char win[WIN_MAX];
	size_t win_len;

	/* The current part's header, as far as it is read for fields. */
	struct buf hdr;
	size_t hdr_line;	/* hdr.len when the current line started */
	unsigned int hdr_fields;
	unsigned int hdr_lines;	/* lines of the header so far */
	bool hdr_full;

	struct boundary *bnd;
	uint32_t nbnd, bnd_cap;
};

void mime_limits_default(struct mime_limits *limits_r)
{
	limits_r->max_depth = MIME_DEFAULT_MAX_DEPTH;
	limits_r->max_parts = MIME_DEFAULT_MAX_PARTS;
	limits_r->max_header_size = MIME_DEFAULT_MAX_HEADER_SIZE;
	limits_r->max_header_fields = MIME_DEFAULT_MAX_HEADER_FIELDS;
}

static struct mime_part *P(struct mime_parser *p, uint32_t i)
{
	return &p->msg->parts[i];
}

static uint32_t part_new(struct mime_parser *p, uint32_t parent, struct cpos start)
{
	struct mime_message *msg = p->msg;
	msg->parts = vec_grow(msg->parts, &msg->cap, msg->count + 1, sizeof(*msg->parts));
	uint32_t i = msg->count++;
	struct mime_part *part = &msg->parts[i];
	memset(part, 0, sizeof(*part));
	part->msg = msg;
	part->index = i;
	part->parent = parent;
	part->first_child = part->last_child = part->next = NONE;
	part->envelope = NONE;
	part->header_start = start.pos;
	part->body_start = part->body_end = start.pos;
	part->lf_start = part->lf_end = start.lf;
	part->bare_start = part->bare_end = start.bare;
	part->type = part->subtype = part->id = part->description = mstr_nil();
	part->cte = part->md5 = part->disposition = part->location = mstr_nil();
	if (msg->count >= p->lim.max_parts) {
		/* The last part we make: the rest of the message is its
		 * body, and no delimiter means anything any more (as in
		 * Dovecot). */
		p->parts_exceeded = true;
		p->nbnd = 0;
		part->flags |= MIME_FLAG_PARTS_LIMIT;
	}
	if (parent != NONE) {
		struct mime_part *par = &msg->parts[parent];
		part->depth = par->depth + 1;
		if (par->last_child == NONE)
			par->first_child = i;
		else
			msg->parts[par->last_child].next = i;
		par->last_child = i;
	}
	return i;
}

static void start_header(struct mime_parser *p, uint32_t part)
{
	p->cur = part;
	p->mode = PMODE_HEADER;
	buf_reset(&p->hdr);
	p->hdr_line = 0;
	p->hdr_fields = 0;
	p->hdr_lines = 0;
	p->hdr_full = false;
}

static struct cpos cpos_max(struct cpos a, struct cpos b)
{
	return a.pos >= b.pos ? a : b;
}

static void set_body_end(struct mime_part *part, struct cpos end)
{
	part->body_end = end.pos;
	part->lf_end = end.lf;
	part->bare_end = end.bare;
}

static struct cpos body_start_cpos(const struct mime_part *part)
{
	struct cpos c = { part->body_start, part->lf_start, part->bare_start };
	return c;
}

/* ---- reading a finished header ---- */

struct hdr_ctx {
	struct mime_parser *p;
	struct mime_part *part;
	bool want_envelope;
	bool seen_ct;
	struct mime_envelope env;
	struct buf tmp;
};

/* Dovecot's full value of a field: the white space after the colon goes
 * (all but one if the first line is only white space), CR LF inside folds
 * becomes LF, the rest stays as written. */
static char *full_value(const struct header_field *f, size_t *len_r)
{
	const char *v = f->value;
	size_t n = f->value_len;
	size_t first = 0;
	while (first < n && v[first] != '\n')
		first++;
	size_t first_end = first;
	if (first_end > 0 && first < n && v[first_end - 1] == '\r')
		first_end--;
	size_t skip = 0;
	while (skip < first_end && (v[skip] == ' ' || v[skip] == '\t'))
		skip++;
	if (skip == first_end && first_end > 0)
		skip = 1;
	char *out = xmalloc(n - skip + 1);
	size_t o = 0;
	for (size_t i = skip; i < n; i++) {
		if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		out[o++] = v[i];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

static void store_params(struct mime_message *msg, struct kv_list *kv, uint32_t *start_r,
			 uint32_t *count_r)
{
	*start_r = msg->params_count;
	*count_r = kv->count;
	for (uint32_t i = 0; i < kv->count; i++) {
		msg->params = vec_grow(msg->params, &msg->params_cap, msg->params_count + 1,
				       sizeof(*msg->params));
		struct mime_param *pp = &msg->params[msg->params_count++];
		pp->name = arena_add_str(msg, kv->v[i].key);
		pp->value = arena_add_str(msg, kv->v[i].value);
	}
}

/* The first Content-Type decides the structure (type/subtype, boundary)
 * and gives the BODYSTRUCTURE type and parameters. */
static void hdr_content_type(struct hdr_ctx *h, const char *v, size_t len, struct buf *boundary)
{
	struct mime_message *msg = h->p->msg;
	struct mime_part *part = h->part;
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	rp_skip_lwsp(&rp);
	buf_reset(&h->tmp);
	int ret = rp_content_type(&rp, &h->tmp);
	const char *ct = bstr(&h->tmp);
	size_t ctlen = h->tmp.len;

	if (str_ieq(ct, "message/rfc822"))
		part->pflags |= MIME_PF_RFC822;
	else if (ctlen >= 4 && str_nieq(ct, "text", 4) && (ctlen == 4 || ct[4] == '/'))
		part->pflags |= MIME_PF_TEXT;
	else if (ctlen >= 10 && str_nieq(ct, "multipart/", 10)) {
		part->pflags |= MIME_PF_MULTIPART;
		if (str_ieq(ct + 10, "digest"))
			part->pflags |= MIME_PF_DIGEST;
	}

	const char *slash = memchr(ct, '/', ctlen);
	size_t tlen = slash ? (size_t)(slash - ct) : ctlen;
	part->type = arena_add(msg, ct, tlen);
	part->subtype = slash ? arena_add(msg, slash + 1, ctlen - tlen - 1) : arena_add(msg, "", 0);
	if (ret < 0) {
		part->flags |= MIME_FLAG_BAD_CONTENT_TYPE;
		return;
	}
	struct kv_list kv = { NULL, 0, 0 };
	if (params_parse(&rp, &kv) < 0)
		part->flags |= MIME_FLAG_BAD_CONTENT_TYPE;
	store_params(msg, &kv, &part->params_start, &part->params_count);
	if (part->pflags & MIME_PF_MULTIPART) {
		for (uint32_t i = 0; i < kv.count; i++) {
			if (str_ieq(kv.v[i].key, "boundary")) {
				size_t blen = strlen(kv.v[i].value);
				buf_append(boundary, kv.v[i].value,
					   blen > MIME_BOUNDARY_MAX ? MIME_BOUNDARY_MAX : blen);
				buf_append(boundary, "", 0);
				break;
			}
		}
	}
	kv_free(&kv);
}

static void hdr_disposition(struct hdr_ctx *h, const char *v, size_t len)
{
	struct mime_message *msg = h->p->msg;
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	rp_skip_lwsp(&rp);
	buf_reset(&h->tmp);
	if (rp_token(&rp, &h->tmp) < 0)
		return;
	h->part->disposition = arena_add(msg, bstr(&h->tmp), h->tmp.len);
	struct kv_list kv = { NULL, 0, 0 };
	(void)params_parse(&rp, &kv);
	store_params(msg, &kv, &h->part->dparams_start, &h->part->dparams_count);
	kv_free(&kv);
}

/* Content-Language: 1#Language-tag (RFC 3282). */
static void hdr_language(struct hdr_ctx *h, const char *v, size_t len)
{
	struct mime_message *msg = h->p->msg;
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	rp_skip_lwsp(&rp);
	uint32_t start = msg->langs_count, count = 0;
	for (;;) {
		buf_reset(&h->tmp);
		if (rp_atom(&rp, &h->tmp) < 0)
			break;
		msg->langs = vec_grow(msg->langs, &msg->langs_cap, msg->langs_count + 1,
				      sizeof(*msg->langs));
		msg->langs[msg->langs_count++] = arena_add(msg, bstr(&h->tmp), h->tmp.len);
		count++;
		if (rp.data >= rp.end || *rp.data != ',')
			break;
		rp.data++;
		rp_skip_lwsp(&rp);
	}
	if (count > 0) {
		h->part->lang_start = start;
		h->part->lang_count = count;
	}
}

/* Content-Transfer-Encoding: one token and nothing after it. */
static void hdr_cte(struct hdr_ctx *h, const char *v, size_t len)
{
	struct rp rp;
	rp_init(&rp, v, len, NULL);
	rp_skip_lwsp(&rp);
	buf_reset(&h->tmp);
	if (rp_token(&rp, &h->tmp) >= 0 && rp_skip_lwsp(&rp) == 0 && h->tmp.len > 0)
		h->part->cte = arena_add(h->p->msg, bstr(&h->tmp), h->tmp.len);
}

static void hdr_envelope(struct hdr_ctx *h, const struct header_field *f, const char *v,
			 size_t len)
{
	struct mime_message *msg = h->p->msg;
	struct mime_envelope *e = &h->env;
	static const struct {
		const char *name;
		int addr;	/* enum mime_env_addr, or -1..-4 for strings */
	} fields[] = {
		{ "Date", -1 }, { "Subject", -2 }, { "In-Reply-To", -3 }, { "Message-ID", -4 },
		{ "From", MIME_ENV_FROM }, { "Sender", MIME_ENV_SENDER },
		{ "Reply-To", MIME_ENV_REPLY_TO }, { "To", MIME_ENV_TO },
		{ "Cc", MIME_ENV_CC }, { "Bcc", MIME_ENV_BCC },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!name_is(f, fields[i].name))
			continue;
		/* The last field of a name wins, as in Dovecot. */
		switch (fields[i].addr) {
		case -1: e->date = arena_add(msg, v, len); break;
		case -2: e->subject = arena_add(msg, v, len); break;
		case -3: e->in_reply_to = arena_add(msg, v, len); break;
		case -4: e->message_id = arena_add(msg, v, len); break;
		default: {
			uint32_t start, n = addresses_parse(msg, v, len, &start);
			e->addr_start[fields[i].addr] = start;
			e->addr_count[fields[i].addr] = n;
			break;
		}
		}
		return;
	}
}

static void search_fields_take(struct mime_message *msg, const char *hdr, size_t len);

/* Reads the fields of the finished header of p->cur. Sets the structure
 * flags and, for a multipart, the boundary (into boundary). */
static void header_fields(struct mime_parser *p, struct buf *boundary)
{
	struct mime_message *msg = p->msg;
	struct hdr_ctx h;
	memset(&h, 0, sizeof(h));
	h.p = p;
	h.part = P(p, p->cur);
	buf_init(&h.tmp, 0);
	struct mime_part *part = h.part;
	h.want_envelope = part->parent == NONE ||
			  (P(p, part->parent)->pflags & MIME_PF_RFC822) != 0;
	h.env.date = h.env.subject = h.env.in_reply_to = h.env.message_id = mstr_nil();

	const char *hdr = p->hdr.data ? p->hdr.data : "";
	size_t len = p->hdr.len;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)hdr[i] >= 0x80) {
			part->flags |= MIME_FLAG_8BIT_HEADER;
			break;
		}
	}
	struct header_field f;
	size_t pos = 0;
	int r;
	while ((r = header_next(hdr, len, &pos, &f)) != 0) {
		if (r < 0) {
			part->flags |= MIME_FLAG_BAD_HEADER_LINE;
			continue;
		}
		bool content = f.name_len > 8 && str_nieq(f.name, "Content-", 8);
		if (!content && !h.want_envelope && !name_is(&f, "MIME-Version"))
			continue;
		size_t vlen;
		char *v = full_value(&f, &vlen);
		if (name_is(&f, "MIME-Version")) {
			part->pflags |= MIME_PF_IS_MIME;
		} else if (content) {
			const char *n = f.name + 8;
			size_t nl = f.name_len - 8;
#define IS(s) (nl == sizeof(s) - 1 && str_nieq(n, s, nl))
			if (IS("Type")) {
				part->pflags |= MIME_PF_IS_MIME;
				if (!h.seen_ct) {
					h.seen_ct = true;
					hdr_content_type(&h, v, vlen, boundary);
				}
			} else if (IS("Transfer-Encoding")) {
				if (mstr_is_nil(part->cte))
					hdr_cte(&h, v, vlen);
			} else if (IS("ID")) {
				if (mstr_is_nil(part->id))
					part->id = arena_add(msg, v, vlen);
			} else if (IS("MD5")) {
				if (mstr_is_nil(part->md5))
					part->md5 = arena_add(msg, v, vlen);
			} else if (IS("Description")) {
				if (mstr_is_nil(part->description))
					part->description = arena_add(msg, v, vlen);
			} else if (IS("Location")) {
				if (mstr_is_nil(part->location))
					part->location = arena_add(msg, v, vlen);
			} else if (IS("Language")) {
				if (part->lang_count == 0)
					hdr_language(&h, v, vlen);
			} else if (IS("Disposition")) {
				/* Dovecot reads a later Content-Disposition
				 * while the one before had no parameters. */
				if (part->dparams_count == 0)
					hdr_disposition(&h, v, vlen);
			}
#undef IS
		}
		if (h.want_envelope)
			hdr_envelope(&h, &f, v, vlen);
		free(v);
	}
	if (h.want_envelope) {
		msg->envelopes = vec_grow(msg->envelopes, &msg->envelopes_cap,
					  msg->envelopes_count + 1, sizeof(*msg->envelopes));
		part->envelope = msg->envelopes_count;
		msg->envelopes[msg->envelopes_count++] = h.env;
	}
	if (part->parent == NONE)
		search_fields_take(msg, hdr, len);
	/* Without MIME-Version or Content-Type (and outside a multipart)
	 * the Content-* fields mean nothing (RFC 2045 4). */
	if (!(part->pflags & MIME_PF_IS_MIME)) {
		part->type = part->subtype = part->id = part->description = mstr_nil();
		part->cte = part->md5 = part->disposition = part->location = mstr_nil();
		part->params_count = part->dparams_count = part->lang_count = 0;
		part->pflags = 0;
		buf_reset(boundary);
	}
	if (!h.seen_ct || !(part->pflags & MIME_PF_IS_MIME)) {
		if (part->parent != NONE && (P(p, part->parent)->pflags & MIME_PF_DIGEST))
			part->pflags |= MIME_PF_RFC822;
		else
			part->pflags |= MIME_PF_TEXT;
	}
	buf_deinit(&h.tmp);
}

static void part_close(struct mime_parser *p, struct cpos end);

/* The header of p->cur ended; decides how its body is read. */
static void end_header(struct mime_parser *p, enum header_end how)
{
	struct mime_part *part = P(p, p->cur);
	struct cpos start;
	if (how == HEND_CUT) {
		struct cpos hs = { part->header_start, part->lf_start, part->bare_start };
		start = cpos_max(p->eol, hs);
		/* The line break before the delimiter is not this header's;
		 * Dovecot gives it to the parent's body, which matters when
		 * the parent is a message/rfc822 that ends here. */
		if (p->hdr_lines > 0 && part->parent != NONE)
			P(p, part->parent)->min_end = p->now;
	} else {
		start = p->now;
	}
	if (how != HEND_BLANK)
		part->flags |= MIME_FLAG_NO_HEADER_END;
	part->body_start = start.pos;
	part->lf_start = start.lf;
	part->bare_start = start.bare;
	set_body_end(part, start);

	struct buf boundary;
	buf_init(&boundary, 0);
	header_fields(p, &boundary);
	buf_reset(&p->hdr);
	part = P(p, p->cur);	/* header_fields() may not move parts, but be safe */

	p->mode = PMODE_BODY;
	if (part->pflags & MIME_PF_MULTIPART) {
		if (boundary.len == 0 || how != HEND_BLANK) {
			part->flags |= MIME_FLAG_NO_BOUNDARY;
		} else if (part->depth + 2 > p->lim.max_depth || p->parts_exceeded) {
			/* Its parts would be too deep, or too many: it stays
			 * one part. */
			part->pflags &= ~(uint32_t)MIME_PF_MULTIPART;
			part->pflags |= MIME_PF_OVERFLOW;
			part->flags |= p->parts_exceeded ? MIME_FLAG_PARTS_LIMIT : MIME_FLAG_DEPTH_LIMIT;
		} else {
			p->bnd = vec_grow(p->bnd, &p->bnd_cap, p->nbnd + 1, sizeof(*p->bnd));
			struct boundary *b = &p->bnd[p->nbnd++];
			b->part = p->cur;
			b->len = (uint32_t)boundary.len;
			memcpy(b->s, boundary.data, boundary.len);
			part->flags |= MIME_FLAG_NO_END_BOUNDARY;	/* until seen */
		}
	} else if (part->pflags & MIME_PF_RFC822) {
		if (part->depth + 2 > p->lim.max_depth || p->parts_exceeded) {
			part->pflags &= ~(uint32_t)MIME_PF_RFC822;
			part->pflags |= MIME_PF_OVERFLOW;
			part->flags |= part->depth + 2 > p->lim.max_depth ?
				MIME_FLAG_DEPTH_LIMIT : MIME_FLAG_PARTS_LIMIT;
		} else {
			uint32_t child = part_new(p, p->cur, start);
			start_header(p, child);
		}
	}
	buf_deinit(&boundary);
}

/* Ends the body of p->cur at end and makes its parent current. */
static void part_close(struct mime_parser *p, struct cpos end)
{
	struct mime_part *part = P(p, p->cur);
	struct cpos e = cpos_max(cpos_max(end, body_start_cpos(part)), part->min_end);
	set_body_end(part, e);
	p->cur = part->parent;
	/* A parent holds its children whole. */
	if (p->cur != NONE)
		P(p, p->cur)->min_end = cpos_max(P(p, p->cur)->min_end, e);
}

/* Dovecot's boundary_line_find(): is the line in win a delimiter of an open
 * boundary? The longest matching boundary wins, the newest first; "--" at
 * the end of the line may be part of a boundary ("--foo--" is "foo" closed,
 * or "foo--" opening a part). Returns its index in p->bnd, or -1. */
static int boundary_find(struct mime_parser *p, bool *close_r)
{
	if (p->nbnd == 0 || p->win_len < 2 || p->win[0] != '-' || p->win[1] != '-')
		return -1;
	const char *s = p->win + 2;
	size_t avail = p->win_len - 2;
	const char *lf = memchr(s, '\n', avail);
	size_t find;
	bool trailing_dash = false;
	if (lf != NULL) {
		find = (size_t)(lf - s);
		if (find > 0 && s[find - 1] == '\r')
			find--;
		if (find > 2 && s[find - 1] == '-' && s[find - 2] == '-')
			trailing_dash = true;
	} else {
		find = avail > BOUNDARY_END_MAX ? BOUNDARY_END_MAX : avail;
	}
	int best = -1;
	for (uint32_t i = p->nbnd; i-- > 0;) {
		const struct boundary *b = &p->bnd[i];
		if (b->len <= find && memcmp(b->s, s, b->len) == 0 &&
		    (best < 0 || p->bnd[best].len < b->len)) {
			best = (int)i;
			if (b->len == find || (trailing_dash && b->len + 2 == find))
				break;
		}
	}
	if (best >= 0) {
		const struct boundary *b = &p->bnd[best];
		*close_r = avail >= b->len + 2 && s[b->len] == '-' && s[b->len + 1] == '-';
	}
	return best;
}

/* A delimiter line of p->bnd[bi] starts at now: closes the parts inside its
 * multipart. */
static void boundary_line(struct mime_parser *p, int bi, bool close)
{
	uint32_t owner = p->bnd[bi].part;
	/* The line break before a delimiter is the delimiter's (RFC 2046
	 * 5.1.1), but not when it ended the delimiter line before: that one
	 * is already in the body of the multipart it continued. */
	struct cpos end = p->prev_line_delim ? p->now : p->eol;
	p->line_delim = true;
	while (p->cur != owner)
		part_close(p, end);
	if (close) {
		P(p, owner)->flags &= ~(uint32_t)MIME_FLAG_NO_END_BOUNDARY;
		p->nbnd = (uint32_t)bi;
	} else {
		p->nbnd = (uint32_t)bi + 1;
	}
	p->mode = PMODE_BODY;
	/* After the line: the next part, or the epilogue. */
	p->pending_child = p->nbnd > 0 && p->bnd[p->nbnd - 1].part == p->cur;
}

/* Appends header line bytes, within the limits. */
static void hdr_append(struct mime_parser *p, const void *data, size_t len)
{
	if (p->hdr_full || len == 0)
		return;
	if (p->hdr.len + len > p->lim.max_header_size) {
		/* Drop the partial line: a field is read whole or not. */
		p->hdr.len = p->hdr_line;
		p->hdr_full = true;
		P(p, p->cur)->flags |= MIME_FLAG_HEADER_TRUNCATED;
		return;
	}
	buf_append(&p->hdr, data, len);
}

static void hdr_line_start(struct mime_parser *p, char first)
{
	p->hdr_line = p->hdr.len;
	if (p->hdr_full || first == ' ' || first == '\t')
		return;
	if (++p->hdr_fields > p->lim.max_header_fields) {
		p->hdr_full = true;
		P(p, p->cur)->flags |= MIME_FLAG_HEADER_TRUNCATED;
	}
}

/* Counts a LF at now.pos (which the caller then passes). */
static void on_lf(struct mime_parser *p)
{
	p->eol = p->now;
	if (p->prev == '\r')
		p->eol.pos--;
	p->now.lf++;
	if (p->prev != '\r') {
		p->now.bare++;
		p->msg->flags |= MIME_FLAG_BARE_LF;
	}
}

/* Passes n bytes of data that hold no LF but maybe a last one at the end. */
static void advance(struct mime_parser *p, const char *data, size_t n)
{
	if (n == 0)
		return;
	if (data[n - 1] == '\n') {
		p->now.pos += n - 1;
		p->prev = n >= 2 ? (unsigned char)data[n - 2] : p->prev;
		on_lf(p);
		p->now.pos++;
	} else {
		p->now.pos += n;
	}
	p->prev = (unsigned char)data[n - 1];
}

/* Called after a LF that ended a line. */
static void line_done(struct mime_parser *p)
{
	p->ls = LS_START;
	p->win_len = 0;
	p->prev_line_delim = p->line_delim;
	p->line_delim = false;
	if (p->pending_child) {
		p->pending_child = false;
		uint32_t child = part_new(p, p->cur, p->now);
		P(p, child)->pflags |= MIME_PF_IS_MIME;
		start_header(p, child);
	}
}

/* Has win seen enough of the line to decide what it is? */
static bool win_decided(const struct mime_parser *p)
{
	size_t n = p->win_len;
	if (n == 0)
		return false;
	if (p->win[n - 1] == '\n' || n == WIN_MAX)
		return true;
	if (p->mode == PMODE_HEADER && p->win[0] == '\r')
		return n >= 2;
	if (p->win[0] != '-' || p->nbnd == 0)
		return true;
	return n >= 2 && p->win[1] != '-';
}

/* The line start in win is known (or the input ended): acts on it. */
static void line_decide(struct mime_parser *p)
{
	bool close = false;
	int bi;
	for (;;) {
		/* Again after every header end: the part it opened may have
		 * been the last one allowed, which closes all boundaries. */
		bi = boundary_find(p, &close);
		if (p->mode == PMODE_HEADER) {
			if (p->win[0] == '\n' || (p->win_len >= 2 && p->win[0] == '\r' && p->win[1] == '\n')) {
				/* the empty line ends the header */
				advance(p, p->win, p->win_len);
				end_header(p, HEND_BLANK);
				line_done(p);
				return;
			}
			if (bi >= 0) {
				end_header(p, HEND_CUT);
				continue;
			}
			p->hdr_lines++;
			hdr_line_start(p, p->win[0]);
			hdr_append(p, p->win, p->win_len);
			p->line_is_header = true;
		} else {
			p->line_is_header = false;
			if (bi >= 0)
				boundary_line(p, bi, close);
		}
		break;
	}
	bool complete = p->win[p->win_len - 1] == '\n';
	advance(p, p->win, p->win_len);
	if (complete)
		line_done(p);
	else
		p->ls = LS_REST;
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const char *d = data;
	if (len == 0)
		return;
	if (memchr(d, '\0', len) != NULL)
		p->msg->flags |= MIME_FLAG_NUL;
	size_t i = 0;
	while (i < len) {
		if (p->ls == LS_START) {
			while (i < len && !win_decided(p))
				p->win[p->win_len++] = d[i++];
			if (win_decided(p))
				line_decide(p);
			continue;
		}
		/* LS_REST: on to the LF */
		const char *lf = memchr(d + i, '\n', len - i);
		size_t n = lf ? (size_t)(lf - (d + i)) + 1 : len - i;
		if (p->line_is_header && p->mode == PMODE_HEADER)
			hdr_append(p, d + i, n);
		advance(p, d + i, n);
		i += n;
		if (lf != NULL)
			line_done(p);
	}
}

struct mime_parser *mime_parser_new(const struct mime_limits *limits)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	mime_limits_default(&p->lim);
	if (limits != NULL) {
		if (limits->max_depth)
			p->lim.max_depth = limits->max_depth;
		if (limits->max_parts)
			p->lim.max_parts = limits->max_parts;
		if (limits->max_header_size)
			p->lim.max_header_size = limits->max_header_size;
		if (limits->max_header_fields)
			p->lim.max_header_fields = limits->max_header_fields;
	}
	if (p->lim.max_depth < 1)
		p->lim.max_depth = 1;
	p->msg = xcalloc(1, sizeof(*p->msg));
	buf_init(&p->msg->arena, 0);
	buf_init(&p->hdr, 0);
	p->prev = '\n';
	p->ls = LS_START;
	uint32_t root = part_new(p, NONE, p->now);
	start_header(p, root);
	return p;
}

void mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p == NULL)
		return;
	mime_message_free(&p->msg);
	buf_deinit(&p->hdr);
	free(p->bnd);
	free(p);
	*pp = NULL;
}

void mime_parser_finish(struct mime_parser **pp, struct mime_message **msg_r)
{
	struct mime_parser *p = *pp;
	/* A last line without LF: decide it as it is. */
	if (p->ls == LS_START && p->win_len > 0)
		line_decide(p);
	if (p->mode == PMODE_HEADER)
		end_header(p, HEND_EOF);
	/* end_header() may have opened a message/rfc822 child: its header is
	 * empty. */
	while (p->mode == PMODE_HEADER)
		end_header(p, HEND_EOF);
	while (p->cur != NONE)
		part_close(p, p->now);
	struct mime_message *msg = p->msg;
	msg->size = p->now.pos;
	msg->bare_lf = p->now.bare;
	for (uint32_t i = 0; i < msg->count; i++)
		msg->flags |= msg->parts[i].flags;
	p->msg = NULL;
	mime_parser_free(pp);
	*msg_r = msg;
}

struct mime_message *mime_parse(const void *data, size_t len, const struct mime_limits *limits)
{
	struct mime_parser *p = mime_parser_new(limits);
	mime_parser_feed(p, data, len);
	struct mime_message *msg;
	mime_parser_finish(&p, &msg);
	return msg;
}

static void search_fields_free(struct mime_search_fields *s);

void mime_message_free(struct mime_message **pmsg)
{
	struct mime_message *msg = *pmsg;
	if (msg == NULL)
		return;
	free(msg->parts);
	buf_deinit(&msg->arena);
	free(msg->params);
	free(msg->langs);
	free(msg->addrs);
	free(msg->envelopes);
	search_fields_free(&msg->search);
	free(msg);
	*pmsg = NULL;
}

/* ---------------------------------------------------------------------- */
/* Accessors */

uint64_t mime_message_size(const struct mime_message *msg)
{
	return msg->size;
}

uint64_t mime_message_crlf_size(const struct mime_message *msg)
{
	return msg->size + msg->bare_lf;
}

unsigned int mime_message_flags(const struct mime_message *msg)
{
	return msg->flags;
}

size_t mime_message_part_count(const struct mime_message *msg)
{
	return msg->count;
}

const struct mime_part *mime_message_root(const struct mime_message *msg)
{
	return &msg->parts[0];
}

static const struct mime_part *part_at(const struct mime_part *part, uint32_t i)
{
	return i == NONE ? NULL : &part->msg->parts[i];
}

const struct mime_part *mime_part_first_child(const struct mime_part *part)
{
	return part_at(part, part->first_child);
}

const struct mime_part *mime_part_next(const struct mime_part *part)
{
	return part_at(part, part->next);
}

const struct mime_part *mime_part_parent(const struct mime_part *part)
{
	return part_at(part, part->parent);
}

enum mime_kind mime_part_kind(const struct mime_part *part)
{
	if (part->pflags & MIME_PF_MULTIPART)
		return MIME_KIND_MULTIPART;
	if (part->pflags & MIME_PF_RFC822)
		return MIME_KIND_MESSAGE;
	if (part->pflags & MIME_PF_OVERFLOW)
		return MIME_KIND_LEAF;
	if (mstr_is_nil(part->type) || str_ieq(mstr_ptr(part->msg, part->type), "text"))
		return MIME_KIND_TEXT;
	return MIME_KIND_LEAF;
}

unsigned int mime_part_flags(const struct mime_part *part)
{
	return part->flags;
}

struct mime_range mime_part_header(const struct mime_part *part)
{
	struct mime_range r = { part->header_start, part->body_start - part->header_start };
	return r;
}

struct mime_range mime_part_body(const struct mime_part *part)
{
	struct mime_range r = { part->body_start, part->body_end - part->body_start };
	return r;
}

uint64_t mime_part_lines(const struct mime_part *part)
{
	return part->lf_end - part->lf_start;
}

const char *mime_part_type(const struct mime_part *part)
{
	if (part->pflags & MIME_PF_OVERFLOW)
		return "application";
	if (part->pflags & MIME_PF_RFC822)
		return "message";
	return mstr_is_nil(part->type) ? "text" : mstr_ptr(part->msg, part->type);
}

const char *mime_part_subtype(const struct mime_part *part)
{
	if (part->pflags & MIME_PF_OVERFLOW)
		return "octet-stream";
	if (part->pflags & MIME_PF_RFC822)
		return "rfc822";
	return mstr_is_nil(part->type) ? "plain" : mstr_ptr(part->msg, part->subtype);
}

static const char *param_find(const struct mime_part *part, uint32_t start, uint32_t count,
			      const char *name)
{
	const struct mime_message *msg = part->msg;
	for (uint32_t i = 0; i < count; i++) {
		const struct mime_param *pp = &msg->params[start + i];
		if (str_ieq(mstr_ptr(msg, pp->name), name))
			return mstr_ptr(msg, pp->value);
	}
	return NULL;
}

const char *mime_part_param(const struct mime_part *part, const char *name)
{
	return param_find(part, part->params_start, part->params_count, name);
}

const char *mime_part_disposition(const struct mime_part *part)
{
	return mstr_ptr(part->msg, part->disposition);
}

const char *mime_part_disposition_param(const struct mime_part *part, const char *name)
{
	return param_find(part, part->dparams_start, part->dparams_count, name);
}

enum mime_cte mime_part_cte(const struct mime_part *part)
{
	const char *c = mstr_ptr(part->msg, part->cte);
	if (c == NULL || str_ieq(c, "7bit"))
		return MIME_CTE_7BIT;
	if (str_ieq(c, "8bit"))
		return MIME_CTE_8BIT;
	if (str_ieq(c, "binary"))
		return MIME_CTE_BINARY;
	if (str_ieq(c, "base64"))
		return MIME_CTE_BASE64;
	if (str_ieq(c, "quoted-printable"))
		return MIME_CTE_QP;
	return MIME_CTE_UNKNOWN;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* charset'language'%XX... (RFC 2231 4) to UTF-8. */
static char *rfc2231_decode(const char *v)
{
	const char *q1 = strchr(v, '\'');
	const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	if (q2 == NULL)
		return NULL;
	struct buf raw;
	buf_init(&raw, 0);
	for (const char *s = q2 + 1; *s != '\0'; s++) {
		int hi, lo;
		if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			buf_append_c(&raw, (char)(hi << 4 | lo));
			s += 2;
		} else {
			buf_append_c(&raw, *s);
		}
	}
	char *charset = xstrndup(v, (size_t)(q1 - v));
	struct buf utf8;
	buf_init(&utf8, 0);
	char *out = NULL;
	/* No charset: RFC 2231 leaves it to the reader; UTF-8 is the best
	 * guess today, and invalid bytes become U+FFFD either way. */
	if (charset_to_utf8(charset[0] != '\0' ? charset : "utf-8", raw.data ? raw.data : "",
			    raw.len, &utf8) == 0)
		out = buf_steal(&utf8, NULL);
	buf_deinit(&utf8);
	free(charset);
	buf_deinit(&raw);
	return out;
}

char *mime_param_decode(const struct mime_part *part, bool disposition, const char *name)
{
	uint32_t start = disposition ? part->dparams_start : part->params_start;
	uint32_t count = disposition ? part->dparams_count : part->params_count;
	char *ext = xasprintf("%s*", name);
	const char *v = param_find(part, start, count, ext);
	free(ext);
	if (v != NULL) {
		char *d = rfc2231_decode(v);
		if (d != NULL)
			return d;
	}
	v = param_find(part, start, count, name);
	return v != NULL ? header_decode_2047(v) : NULL;
}

/* ---------------------------------------------------------------------- */
/* SEARCH and SORT fields */

static char *decoded(const char *hdr, size_t len, const char *name)
{
	char *v = header_get(hdr, len, name);
	if (v == NULL)
		return NULL;
	char *d = header_decode_2047(v);
	free(v);
	return d;
}

/* The first real address (not a group marker) of an address field. */
static void first_address(struct mime_message *msg, const char *hdr, size_t len,
			  const char *name, char **mailbox_r, char **display_r)
{
	*mailbox_r = NULL;
	if (display_r != NULL)
		*display_r = NULL;
	char *v = header_get(hdr, len, name);
	if (v == NULL)
		return;
	uint32_t start, n = addresses_parse(msg, v, strlen(v), &start);
	for (uint32_t i = 0; i < n; i++) {
		const struct mime_addr *a = &msg->addrs[start + i];
		if (mstr_is_nil(a->domain))
			continue;	/* group start or end */
		*mailbox_r = xstrdup(mstr_ptr(msg, a->mailbox));
		if (display_r == NULL)
			break;
		if (!mstr_is_nil(a->name) && a->name.len > 0)
			*display_r = header_decode_2047(mstr_ptr(msg, a->name));
		else
			*display_r = xasprintf("%s@%s", mstr_ptr(msg, a->mailbox),
					       mstr_ptr(msg, a->domain));
		break;
	}
	/* These addresses are not part of any envelope. */
	msg->addrs_count = start;
	free(v);
}

static void search_fields_take(struct mime_message *msg, const char *hdr, size_t len)
{
	struct mime_search_fields *s = &msg->search;
	s->subject = decoded(hdr, len, "Subject");
	s->from = decoded(hdr, len, "From");
	s->to = decoded(hdr, len, "To");
	s->cc = decoded(hdr, len, "Cc");
	s->bcc = decoded(hdr, len, "Bcc");
	s->message_id = header_get(hdr, len, "Message-ID");
	s->in_reply_to = header_get(hdr, len, "In-Reply-To");
	s->references = header_get(hdr, len, "References");
	char *date = header_get(hdr, len, "Date");
	s->date_valid = date != NULL && mime_date_parse(date, &s->date, &s->date_tz) == 0;
	free(date);
	first_address(msg, hdr, len, "From", &s->sort_from, &s->display_from);
	first_address(msg, hdr, len, "To", &s->sort_to, &s->display_to);
	first_address(msg, hdr, len, "Cc", &s->sort_cc, NULL);
}

static void search_fields_free(struct mime_search_fields *s)
{
	free(s->subject);
	free(s->from);
	free(s->to);
	free(s->cc);
	free(s->bcc);
	free(s->message_id);
	free(s->in_reply_to);
	free(s->references);
	free(s->sort_from);
	free(s->sort_to);
	free(s->sort_cc);
	free(s->display_from);
	free(s->display_to);
	memset(s, 0, sizeof(*s));
}

const struct mime_search_fields *mime_message_search_fields(const struct mime_message *msg)
{
	return &msg->search;
}

/* RFC 5322 3.3 and 4.3 (obs-zone: UT, GMT, the US zones, military letters
 * count as -0000 since their sign was ambiguous). */
static const char *const months[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

static void skip_cfws(const char **s)
{
	for (;;) {
		while (**s == ' ' || **s == '\t' || **s == '\r' || **s == '\n' || **s == ',')
			(*s)++;
		if (**s != '(')
			return;
		int level = 0;
		for (; **s != '\0'; (*s)++) {
			if (**s == '\\' && (*s)[1] != '\0')
				(*s)++;
			else if (**s == '(')
				level++;
			else if (**s == ')' && --level == 0) {
				(*s)++;
				break;
			}
		}
	}
}

static int read_num(const char **s, int maxdigits, int *value_r)
{
	int v = 0, n = 0;
	while (**s >= '0' && **s <= '9' && n < maxdigits) {
		v = v * 10 + (**s - '0');
		(*s)++;
		n++;
	}
	if (n == 0)
		return -1;
	*value_r = v;
	return n;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no overflow for
 * the years accepted. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int mime_date_parse(const char *str, int64_t *time_r, int *tz_minutes_r)
{
	const char *s = str;
	skip_cfws(&s);
	/* optional day name */
	if (isalpha((unsigned char)s[0])) {
		while (isalpha((unsigned char)*s))
			s++;
		skip_cfws(&s);
	}
	int day, year, hour, min, sec = 0, month = -1;
	if (read_num(&s, 2, &day) < 0)
		return -1;
	skip_cfws(&s);
	for (int i = 0; i < 12; i++) {
		if (str_nieq(s, months[i], 3)) {
			month = i + 1;
			break;
		}
	}
	if (month < 0)
		return -1;
	while (isalpha((unsigned char)*s))
		s++;
	skip_cfws(&s);
	int ydigits = read_num(&s, 4, &year);
	if (ydigits < 0)
		return -1;
	/* RFC 5322 4.3: two digits are 19xx from 50 on, else 20xx; three
	 * digits add 1900. */
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	skip_cfws(&s);
	if (read_num(&s, 2, &hour) < 0 || *s != ':')
		return -1;
	s++;
	if (read_num(&s, 2, &min) < 0)
		return -1;
	if (*s == ':') {
		s++;
		if (read_num(&s, 2, &sec) < 0)
			return -1;
	}
	skip_cfws(&s);
	int tz = 0;
	if (*s == '+' || *s == '-') {
		int sign = *s == '-' ? -1 : 1, hhmm;
		s++;
		if (read_num(&s, 4, &hhmm) != 4)
			return -1;
		tz = sign * ((hhmm / 100) * 60 + hhmm % 100);
	} else if (isalpha((unsigned char)*s)) {
		static const struct {
			const char *name;
			int minutes;
		} zones[] = {
			{ "UT", 0 }, { "GMT", 0 }, { "UTC", 0 }, { "Z", 0 },
			{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
			{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
		};
		size_t n = 0;
		while (isalpha((unsigned char)s[n]))
			n++;
		for (size_t i = 0; i < ARRAY_SIZE(zones); i++) {
			if (strlen(zones[i].name) == n && str_nieq(s, zones[i].name, n)) {
				tz = zones[i].minutes;
				break;
			}
		}
	}
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (day < 1 || day > mdays[month - 1] || hour > 23 || min > 59 || sec > 60 ||
	    tz < -1439 || tz > 1439)
		return -1;
	int64_t t = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 +
		    (sec == 60 ? 59 : sec);
	*time_r = t - (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The part ranges blob.
 *
 * "YM1" then the message size, then every part in tree order:
 *   kind | cte << 2 | (has children) << 5     one byte
 *   header_start - previous part's header_start
 *   header length, body length, number of children
 * all as LEB128 varints. A part with children is followed by them. */

static int put_varint(struct buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	return buf_append(out, b, n);
}

int mime_parts_serialize(const struct mime_message *msg, struct buf *out)
{
	if (buf_append(out, "YM1", 3) < 0 || put_varint(out, msg->size) < 0)
		return -1;
	uint64_t prev = 0;
	/* Parts are created in tree (pre-)order, so index order is it. */
	for (uint32_t i = 0; i < msg->count; i++) {
		const struct mime_part *part = &msg->parts[i];
		uint32_t nchildren = 0;
		for (uint32_t c = part->first_child; c != NONE; c = msg->parts[c].next)
			nchildren++;
		unsigned char head = (unsigned char)(mime_part_kind(part) |
						     (unsigned)mime_part_cte(part) << 2);
		if (buf_append(out, &head, 1) < 0 ||
		    put_varint(out, part->header_start - prev) < 0 ||
		    put_varint(out, part->body_start - part->header_start) < 0 ||
		    put_varint(out, part->body_end - part->body_start) < 0 ||
		    put_varint(out, nchildren) < 0)
			return -1;
		prev = part->header_start;
	}
	return 0;
}

struct blob_reader {
	const unsigned char *p, *end;
	uint64_t prev;
	uint64_t size;
	bool bad;
};

struct blob_part {
	enum mime_kind kind;
	enum mime_cte cte;
	uint64_t header_start, header_len, body_len;
	uint64_t nchildren;
};

static uint64_t get_varint(struct blob_reader *r)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end) {
			r->bad = true;
			return 0;
		}
		unsigned char b = *r->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static bool read_part(struct blob_reader *r, struct blob_part *bp)
{
	if (r->p >= r->end)
		return false;
	unsigned char head = *r->p++;
	bp->kind = (enum mime_kind)(head & 3);
	bp->cte = (enum mime_cte)((head >> 2) & 7);
	bp->header_start = r->prev + get_varint(r);
	bp->header_len = get_varint(r);
	bp->body_len = get_varint(r);
	bp->nchildren = get_varint(r);
	r->prev = bp->header_start;
	if (r->bad || bp->cte > MIME_CTE_UNKNOWN || bp->header_start > r->size ||
	    bp->header_len > r->size - bp->header_start ||
	    bp->body_len > r->size - bp->header_start - bp->header_len)
		return false;
	return true;
}

/* Skips the subtree of a part whose record was read. Iterative: the blob
 * comes from our database, but a loop over a counter cannot be made to
 * recurse deeply. */
static bool skip_children(struct blob_reader *r, uint64_t n)
{
	while (n > 0) {
		struct blob_part bp;
		if (!read_part(r, &bp) || bp.nchildren > (uint64_t)(r->end - r->p))
			return false;
		n = n - 1 + bp.nchildren;
	}
	return true;
}

/* Moves to child number k (1-based) of a part with n children. */
static bool goto_child(struct blob_reader *r, uint64_t n, uint64_t k, struct blob_part *bp)
{
	if (k == 0 || k > n)
		return false;
	for (uint64_t i = 1; i < k; i++) {
		if (!read_part(r, bp) || !skip_children(r, bp->nchildren))
			return false;
	}
	return read_part(r, bp);
}

static void set_range(struct mime_section *s, uint64_t start, uint64_t len)
{
	s->range.start = start;
	s->range.len = len;
}

int mime_parts_lookup(const void *blob, size_t len, const char *section,
		      struct mime_section *section_r)
{
	struct blob_reader r = { blob, (const unsigned char *)blob + len, 0, 0, false };
	memset(section_r, 0, sizeof(*section_r));
	if (len < 3 || memcmp(blob, "YM1", 3) != 0)
		return -1;
	r.p += 3;
	r.size = get_varint(&r);
	struct blob_part bp;
	if (r.bad || !read_part(&r, &bp))
		return -1;

	/* cur is a message (its header and body), or a part of one. */
	bool at_message = true;
	const char *s = section;
	while (*s >= '0' && *s <= '9') {
		uint64_t k = 0;
		while (*s >= '0' && *s <= '9') {
			if (k > UINT32_MAX)
				return -1;
			k = k * 10 + (uint64_t)(*s++ - '0');
		}
		if (*s == '.') {
			if (*++s == '\0')
				return -1;
		} else if (*s != '\0') {
			return -1;
		}
		if (!at_message) {
			/* Numbers inside a part: a multipart's children, or
			 * the parts of the message inside message/rfc822. */
			if (bp.kind == MIME_KIND_MESSAGE) {
				if (!read_part(&r, &bp))
					return -1;
			} else if (bp.kind != MIME_KIND_MULTIPART) {
				return -1;
			}
		}
		if (bp.kind == MIME_KIND_MULTIPART) {
			if (!goto_child(&r, bp.nchildren, k, &bp))
				return -1;
		} else if (k != 1) {
			return -1;
		}
		at_message = false;
	}
	const char *suffix = s;

	if (*suffix == '\0') {
		if (at_message) {
			set_range(section_r, 0, r.size);
		} else {
			set_range(section_r, bp.header_start + bp.header_len, bp.body_len);
			section_r->cte = bp.cte;
			section_r->leaf_body = bp.kind != MIME_KIND_MULTIPART &&
					       bp.kind != MIME_KIND_MESSAGE;
		}
		return 0;
	}
	if (str_ieq(suffix, "MIME")) {
		if (at_message)
			return -1;
		set_range(section_r, bp.header_start, bp.header_len);
		return 0;
	}
	bool header = str_ieq(suffix, "HEADER");
	if (!header && !str_ieq(suffix, "TEXT"))
		return -1;
	if (!at_message) {
		/* HEADER and TEXT of a part: of the message inside it */
		if (bp.kind != MIME_KIND_MESSAGE || !read_part(&r, &bp))
			return -1;
	}
	if (header)
		set_range(section_r, bp.header_start, bp.header_len);
	else
		set_range(section_r, bp.header_start + bp.header_len, bp.body_len);
	return 0;
}
