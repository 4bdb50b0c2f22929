/* Mail addresses and SMTP paths.
 *
 * The grammar is RFC 5321 section 4.1.2, extended for SMTPUTF8 by RFC 6531
 * section 3.3 (UTF8-non-ascii in atext, qtextSMTP, esmtp-value, and U-labels
 * as sub-domains). The input is checked once up front for NUL, control
 * characters and (without ADDRESS_ALLOW_UTF8) any 8-bit byte, or (with it)
 * malformed UTF-8; after that the grammar functions may treat any byte >= 0x80
 * as part of a valid UTF8-non-ascii sequence.
 *
 * Every loop moves forward over the input and nothing recurses, so the work is
 * linear in the length the caller passes; the RFC 5321 4.5.3.1 size limits
 * are checked while scanning, before anything is copied. */
#include "smtp/address.h"
#include "core/buf.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESS_LABEL_MAX 63	/* RFC 1035 2.3.4, RFC 5321 4.5.3.1.2 */
/* Longest thing between "[IPv6:" and "]" that can be an IPv6 address:
 * eight groups of four and seven colons, or six groups and a dotted quad. */
#define ADDRESS_IPV6_TEXT_MAX 45

struct cursor {
	const unsigned char *p, *end;
	unsigned flags;
};

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_let_dig(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* atext of RFC 5322 3.2.3, plus UTF8-non-ascii under RFC 6531. */
static bool is_atext(unsigned char c, unsigned flags)
{
	if (c >= 0x80)
		return (flags & ADDRESS_ALLOW_UTF8) != 0;
	return is_let_dig(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii. */
static bool is_qtext(unsigned char c, unsigned flags)
{
	if (c >= 0x80)
		return (flags & ADDRESS_ALLOW_UTF8) != 0;
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* dcontent = %d33-90 / %d94-126 (printable ASCII except "[", "\", "]"). */
static bool is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii (RFC 6531 3.3). */
static bool is_esmtp_value(unsigned char c, unsigned flags)
{
	if (c >= 0x80)
		return (flags & ADDRESS_ALLOW_UTF8) != 0;
	return c >= 33 && c <= 126 && c != '=';
}

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	/* RFC 3629 section 4: the second byte's range depends on the first,
	 * which is what rules out overlong forms (C0, C1, E0 80-9F, F0 80-8F),
	 * the surrogates (ED A0-BF) and code points above U+10FFFF (F4 90-BF,
	 * F5-FF). */
	while (p < end) {
		unsigned char c = *p;
		size_t n;
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			if (c == 0xE0)
				lo = 0xA0;
			else if (c == 0xED)
				hi = 0x9F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			if (c == 0xF0)
				lo = 0x90;
			else if (c == 0xF4)
				hi = 0x8F;
		} else {
			return false;
		}
		if ((size_t)(end - p) <= n)
			return false;
		if (p[1] < lo || p[1] > hi)
			return false;
		for (size_t i = 2; i <= n; i++) {
			if (p[i] < 0x80 || p[i] > 0xBF)
				return false;
		}
		p += n + 1;
	}
	return true;
}

/* The policy for bytes no production of the grammar may hold, decided once
 * for the whole argument: NUL and other control characters are never valid;
 * 8-bit bytes are valid only as well-formed UTF-8 under ADDRESS_ALLOW_UTF8.
 * Returns 0 or -1 with *error_r. */
static int check_bytes(const unsigned char *s, size_t len, unsigned flags,
		       const char **error_r)
{
	bool eight_bit = false;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0') {
			*error_r = "NUL character in address";
			return -1;
		}
		if (s[i] < 32 || s[i] == 127) {
			*error_r = "control character in address";
			return -1;
		}
		if (s[i] >= 0x80)
			eight_bit = true;
	}
	if (!eight_bit)
		return 0;
	if ((flags & ADDRESS_ALLOW_UTF8) == 0) {
		*error_r = "non-ASCII character in address";
		return -1;
	}
	if (!utf8_valid((const char *)s, len)) {
		*error_r = "invalid UTF-8 in address";
		return -1;
	}
	return 0;
}

/* Dot-string = Atom *("." Atom). Returns true when s is exactly one. */
static bool is_dot_string(const unsigned char *s, size_t len, unsigned flags)
{
	size_t atom = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (atom == 0)
				return false;
			atom = 0;
		} else if (is_atext(s[i], flags)) {
			atom++;
		} else {
			return false;
		}
	}
	return atom > 0;
}

/* Local-part = Dot-string / Quoted-string. Writes the canonical form
 * described in address.h to out. Returns 0 or -1 with *error_r. */
static int parse_local(struct cursor *c, struct buf *out, const char **error_r)
{
	const unsigned char *start = c->p;

	if (c->p < c->end && *c->p == '"') {
		/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; the content is
		 * decoded into out first and re-encoded below. */
		c->p++;
		for (;;) {
			if (c->p >= c->end) {
				*error_r = "unterminated quoted string";
				return -1;
			}
			if (c->p - start > ADDRESS_LOCAL_MAX) {
				*error_r = "local part too long";
				return -1;
			}
			unsigned char ch = *c->p;
			if (ch == '"') {
				c->p++;
				break;
			}
			if (ch == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 */
				if (c->end - c->p < 2 || c->p[1] < 32 || c->p[1] > 126) {
					*error_r = "invalid quoted pair in local part";
					return -1;
				}
				ch = c->p[1];
				c->p += 2;
			} else if (is_qtext(ch, c->flags)) {
				c->p++;
			} else {
				*error_r = "invalid character in quoted string";
				return -1;
			}
			if (buf_append_c(out, (char)ch) < 0) {
				*error_r = "local part too long";
				return -1;
			}
		}
		if (c->p - start > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return -1;
		}
		if (is_dot_string((const unsigned char *)out->data, out->len, c->flags))
			return 0;

		/* Not expressible as a Dot-string: quote again, escaping only
		 * what qtextSMTP cannot hold, so that equal local parts compare
		 * equal however the client escaped them. */
		struct buf q;
		buf_init(&q, 2 * ADDRESS_LOCAL_MAX + 2);
		buf_append_c(&q, '"');
		for (size_t i = 0; i < out->len; i++) {
			if (out->data[i] == '"' || out->data[i] == '\\')
				buf_append_c(&q, '\\');
			buf_append_c(&q, out->data[i]);
		}
		buf_append_c(&q, '"');
		buf_reset(out);
		buf_append(out, q.data, q.len);
		buf_deinit(&q);
		return 0;
	}

	for (;;) {
		const unsigned char *atom = c->p;
		while (c->p < c->end && is_atext(*c->p, c->flags) &&
		       c->p - start <= ADDRESS_LOCAL_MAX)
			c->p++;
		if (c->p - start > ADDRESS_LOCAL_MAX) {
			*error_r = "local part too long";
			return -1;
		}
		if (c->p == atom) {
			if (c->p > start || (c->p < c->end && *c->p == '.'))
				*error_r = "misplaced dot in local part";
			else if (c->p >= c->end || *c->p == '@' || *c->p == '>')
				*error_r = "empty local part";
			else
				*error_r = "invalid character in local part";
			return -1;
		}
		if (c->p < c->end && *c->p == '.') {
			c->p++;
			continue;
		}
		break;
	}
	buf_append(out, start, (size_t)(c->p - start));
	return 0;
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str],
 * or a U-label under ADDRESS_ALLOW_UTF8 (RFC 6531 3.3). The U-label is
 * checked only as far as this grammar goes: LDH or non-ASCII characters, no
 * hyphen at either end; IDNA2008 validity is the DNS's business. Labels and
 * the whole domain are limited in octets. On success c->p is right after the
 * domain. Returns 0 or -1 with *error_r. */
static int parse_domain(struct cursor *c, const char **error_r)
{
	const unsigned char *start = c->p;

	for (;;) {
		const unsigned char *label = c->p;
		while (c->p < c->end && c->p - label <= ADDRESS_LABEL_MAX &&
		       (is_let_dig(*c->p) || *c->p == '-' ||
			(*c->p >= 0x80 && (c->flags & ADDRESS_ALLOW_UTF8) != 0)))
			c->p++;
		size_t n = (size_t)(c->p - label);
		if (n == 0) {
			if (c->p == start && (c->p >= c->end || *c->p != '.'))
				*error_r = "missing domain";
			else
				*error_r = "empty label in domain";
			return -1;
		}
		if (n > ADDRESS_LABEL_MAX) {
			*error_r = "domain label too long";
			return -1;
		}
		if (label[0] == '-' || c->p[-1] == '-') {
			*error_r = "domain label starts or ends with '-'";
			return -1;
		}
		if (c->p - start > ADDRESS_DOMAIN_MAX) {
			*error_r = "domain too long";
			return -1;
		}
		if (c->p < c->end && *c->p == '.') {
			c->p++;
			continue;
		}
		return 0;
	}
}

/* Snum 3("." Snum) with Snum = 1*3DIGIT of value 0-255. The ABNF allows
 * leading zeros, so does this; inet_pton would not. */
static bool ipv4_literal_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		unsigned v = 0, digits = 0;
		while (i < len && is_digit(s[i]) && digits < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == len;
}

/* The text after "IPv6:". The four ABNF forms of RFC 5321 4.1.3 are what
 * inet_pton(AF_INET6) accepts; we check the character set first so nothing
 * it might tolerate beyond the ABNF (it does not take zone ids, but be
 * explicit) gets through. */
static bool ipv6_literal_valid(const unsigned char *s, size_t len)
{
	char text[ADDRESS_IPV6_TEXT_MAX + 1];
	struct in6_addr a;

	if (len == 0 || len > ADDRESS_IPV6_TEXT_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return false;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, &a) == 1;
}

/* address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]". Appends the canonical form (brackets kept,
 * the "IPv6:" tag spelt so and hex digits in lower case) to out.
 * Returns 0 or -1 with *error_r. */
static int parse_literal(struct cursor *c, struct buf *out, const char **error_r)
{
	const unsigned char *start = c->p;

	c->p++;
	const unsigned char *text = c->p;
	while (c->p < c->end && is_dcontent(*c->p) && c->p - start <= ADDRESS_DOMAIN_MAX)
		c->p++;
	if (c->p - start > ADDRESS_DOMAIN_MAX - 1) {
		*error_r = "domain too long";
		return -1;
	}
	if (c->p >= c->end || *c->p != ']') {
		*error_r = "invalid address literal";
		return -1;
	}
	size_t n = (size_t)(c->p - text);
	c->p++;

	const unsigned char *colon = memchr(text, ':', n);
	if (colon == NULL) {
		if (!ipv4_literal_valid(text, n)) {
			*error_r = "invalid IPv4 address literal";
			return -1;
		}
		buf_append(out, start, (size_t)(c->p - start));
		return 0;
	}
	size_t tag = (size_t)(colon - text);
	if (tag == 4 && str_nieq((const char *)text, "IPv6", 4)) {
		if (!ipv6_literal_valid(colon + 1, n - tag - 1)) {
			*error_r = "invalid IPv6 address literal";
			return -1;
		}
		buf_append_str(out, "[IPv6:");
		for (const unsigned char *q = colon + 1; q < text + n; q++)
			buf_append_c(out, (char)((*q >= 'A' && *q <= 'F') ? *q + 32 : *q));
		buf_append_c(out, ']');
		return 0;
	}
	/* General-address-literal = Standardized-tag ":" 1*dcontent, the tag
	 * an Ldh-str. No other tag is registered with IANA yet; accept the
	 * syntax and let the caller, which never delivers to literals it does
	 * not know, decide. */
	bool tag_ok = tag > 0 && is_let_dig(text[tag - 1]);
	for (size_t i = 0; i < tag && tag_ok; i++) {
		if (!is_let_dig(text[i]) && text[i] != '-')
			tag_ok = false;
	}
	if (!tag_ok || tag + 1 == n) {
		*error_r = "invalid address literal";
		return -1;
	}
	buf_append(out, start, (size_t)(c->p - start));
	return 0;
}

static bool has_8bit(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80)
			return true;
	}
	return false;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ). Fills addr (which
 * the caller has zeroed) and leaves c->p after the mailbox. On error addr
 * holds nothing allocated. Returns 0 or -1 with *error_r. */
static int parse_mailbox(struct cursor *c, struct address *addr, const char **error_r)
{
	struct buf local;

	buf_init(&local, 2 * ADDRESS_LOCAL_MAX + 2);
	if (parse_local(c, &local, error_r) < 0) {
		buf_deinit(&local);
		return -1;
	}
	if (c->p >= c->end || *c->p != '@') {
		if (c->p >= c->end || *c->p == '>')
			*error_r = "missing @domain";
		else if (*c->p == ' ')
			*error_r = "space in address";
		else
			*error_r = "invalid character in local part";
		buf_deinit(&local);
		return -1;
	}
	c->p++;

	struct buf domain;
	buf_init(&domain, ADDRESS_DOMAIN_MAX);
	if (c->p < c->end && *c->p == '[') {
		if (parse_literal(c, &domain, error_r) < 0)
			goto fail;
		addr->domain_literal = true;
	} else {
		const unsigned char *d = c->p;
		if (parse_domain(c, error_r) < 0)
			goto fail;
		buf_append(&domain, d, (size_t)(c->p - d));
		str_lower(domain.data);
	}
	addr->local = buf_steal(&local, NULL);
	addr->domain = buf_steal(&domain, NULL);
	addr->utf8 = has_8bit(addr->local) || has_8bit(addr->domain);
	return 0;
fail:
	buf_deinit(&local);
	buf_deinit(&domain);
	return -1;
}

/* The error for what follows a complete mailbox or domain when it should
 * not be there. */
static const char *junk_error(const struct cursor *c)
{
	if (c->p >= c->end)
		return "missing '>'";
	if (*c->p == ' ')
		return "space in address";
	return "invalid character in domain";
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value];
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"). */
static int parse_param(const unsigned char *s, size_t len, unsigned flags,
		       struct smtp_param *param_r, const char **error_r)
{
	size_t k = 0;

	while (k < len && s[k] != '=') {
		if (!is_let_dig(s[k]) && (k == 0 || s[k] != '-')) {
			*error_r = "invalid parameter keyword";
			return -1;
		}
		k++;
	}
	if (k == 0) {
		*error_r = "invalid parameter keyword";
		return -1;
	}
	if (k < len) {
		if (k + 1 == len) {
			*error_r = "empty parameter value";
			return -1;
		}
		for (size_t i = k + 1; i < len; i++) {
			if (!is_esmtp_value(s[i], flags)) {
				*error_r = "invalid parameter value";
				return -1;
			}
		}
		param_r->value = xstrndup((const char *)s + k + 1, len - k - 1);
	} else {
		param_r->value = NULL;
	}
	param_r->keyword = xstrndup((const char *)s, k);
	return 0;
}

/* Reverse-path = Path / "<>"; Forward-path = Path;
 * Path = "<" [ A-d-l ":" ] Mailbox ">"; A-d-l = At-domain *( "," At-domain );
 * At-domain = "@" Domain. And for RCPT, "<Postmaster>" (RFC 5321 4.1.1.3).
 * On success c->p is after the closing ">". */
static int parse_path(struct cursor *c, struct address *addr, const char **error_r)
{
	const unsigned char *start = c->p;

	if (c->p >= c->end) {
		*error_r = "missing address";
		return -1;
	}
	if (*c->p != '<') {
		*error_r = "address must be enclosed in <>";
		return -1;
	}
	if (c->end - c->p >= 2 && c->p[1] == '>') {
		if ((c->flags & ADDRESS_ALLOW_NULL) == 0) {
			*error_r = "null address not allowed here";
			return -1;
		}
		c->p += 2;
		addr->is_null = true;
		addr->local = xstrdup("");
		addr->domain = xstrdup("");
		return 0;
	}
	if ((c->flags & ADDRESS_ALLOW_NULL) == 0 && c->end - c->p >= 12 &&
	    str_nieq((const char *)c->p, "<postmaster>", 12)) {
		c->p += 12;
		addr->local = xstrdup("postmaster");
		addr->domain = xstrdup("");
		return 0;
	}
	c->p++;

	if (c->p < c->end && *c->p == '@') {
		/* A source route: obsolete, to be accepted and ignored
		 * (RFC 5321 4.1.1.3 and appendix C), but still well-formed. */
		for (;;) {
			if (c->p >= c->end || *c->p != '@') {
				*error_r = "invalid source route";
				return -1;
			}
			c->p++;
			if (c->p < c->end && *c->p == '[') {
				/* At-domain takes a Domain only, no literal. */
				*error_r = "invalid source route";
				return -1;
			}
			if (parse_domain(c, error_r) < 0)
				return -1;
			if (c->p - start > ADDRESS_PATH_MAX) {
				*error_r = "path too long";
				return -1;
			}
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			if (c->p < c->end && *c->p == ':') {
				c->p++;
				break;
			}
			*error_r = "invalid source route";
			return -1;
		}
	}
	if (parse_mailbox(c, addr, error_r) < 0)
		return -1;
	if (c->p >= c->end || *c->p != '>') {
		*error_r = junk_error(c);
		address_deinit(addr);
		return -1;
	}
	c->p++;
	if (c->p - start > ADDRESS_PATH_MAX) {
		*error_r = "path too long";
		address_deinit(addr);
		return -1;
	}
	return 0;
}

int smtp_path_parse(const char *arg, size_t len, unsigned flags,
		    struct smtp_path_args *args_r, const char **error_r)
{
	struct cursor c = {
		.p = (const unsigned char *)arg,
		.end = (const unsigned char *)arg + len,
		.flags = flags,
	};

	memset(args_r, 0, sizeof(*args_r));
	if (check_bytes(c.p, len, flags, error_r) < 0)
		return -1;
	/* "MAIL FROM: <a@b>": not in the ABNF, but sent by deployed clients
	 * and harmless; one space only. */
	if (c.p < c.end && *c.p == ' ')
		c.p++;
	if (parse_path(&c, &args_r->addr, error_r) < 0)
		return -1;

	/* Mail-parameters = esmtp-param *(SP esmtp-param). Runs of spaces and
	 * trailing spaces are tolerated: no ambiguity comes from them. */
	if (c.p < c.end && *c.p != ' ') {
		*error_r = "junk after address";
		goto fail;
	}
	for (;;) {
		while (c.p < c.end && *c.p == ' ')
			c.p++;
		if (c.p >= c.end)
			break;
		const unsigned char *tok = c.p;
		while (c.p < c.end && *c.p != ' ')
			c.p++;
		if (args_r->param_count == SMTP_PARAMS_MAX) {
			*error_r = "too many parameters";
			goto fail;
		}
		if (parse_param(tok, (size_t)(c.p - tok), flags,
				&args_r->params[args_r->param_count], error_r) < 0)
			goto fail;
		args_r->param_count++;
	}
	return 0;
fail:
	smtp_path_args_deinit(args_r);
	return -1;
}

void smtp_path_args_deinit(struct smtp_path_args *args)
{
	address_deinit(&args->addr);
	for (size_t i = 0; i < args->param_count; i++) {
		xfree(&args->params[i].keyword);
		xfree(&args->params[i].value);
	}
	args->param_count = 0;
}

int address_parse(const char *s, unsigned flags, struct address *addr_r,
		  const char **error_r)
{
	size_t len = strlen(s);
	struct cursor c = {
		.p = (const unsigned char *)s,
		.end = (const unsigned char *)s + len,
		.flags = flags,
	};

	memset(addr_r, 0, sizeof(*addr_r));
	if (check_bytes(c.p, len, flags, error_r) < 0)
		return -1;
	if (len == 0 && (flags & ADDRESS_ALLOW_NULL) != 0) {
		addr_r->is_null = true;
		addr_r->local = xstrdup("");
		addr_r->domain = xstrdup("");
		return 0;
	}
	if (parse_mailbox(&c, addr_r, error_r) < 0)
		return -1;
	if (c.p != c.end) {
		*error_r = c.p < c.end && *c.p == ' ' ? "space in address" :
			"invalid character in domain";
		address_deinit(addr_r);
		return -1;
	}
	/* It must fit in a path, brackets included. */
	if (len + 2 > ADDRESS_PATH_MAX) {
		*error_r = "address too long";
		address_deinit(addr_r);
		return -1;
	}
	return 0;
}

int address_parse_domain(const char *s, unsigned flags, char **domain_r,
			 const char **error_r)
{
	size_t len = strlen(s);
	struct cursor c = {
		.p = (const unsigned char *)s,
		.end = (const unsigned char *)s + len,
		.flags = flags,
	};

	*domain_r = NULL;
	if (check_bytes(c.p, len, flags, error_r) < 0)
		return -1;
	if (parse_domain(&c, error_r) < 0)
		return -1;
	if (c.p != c.end) {
		*error_r = *c.p == ' ' ? "space in domain" : "invalid character in domain";
		return -1;
	}
	*domain_r = xstrndup(s, len);
	str_lower(*domain_r);
	return 0;
}

void address_deinit(struct address *addr)
{
	xfree(&addr->local);
	xfree(&addr->domain);
	addr->is_null = false;
	addr->domain_literal = false;
	addr->utf8 = false;
}

void address_copy(struct address *dst, const struct address *src)
{
	*dst = *src;
	dst->local = src->local != NULL ? xstrdup(src->local) : NULL;
	dst->domain = src->domain != NULL ? xstrdup(src->domain) : NULL;
}

char *address_to_string(const struct address *addr)
{
	if (addr->is_null)
		return xstrdup("");
	if (addr->domain == NULL || addr->domain[0] == '\0')
		return xstrdup(addr->local);	/* "<postmaster>" */
	return xasprintf("%s@%s", addr->local, addr->domain);
}
