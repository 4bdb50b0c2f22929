/* Authentication-Results (RFC 8601). See authres.h. */
#include "mailauth/authres.h"

#include <string.h>

#include "core/buf.h"
#include "core/util.h"

/* RFC 2045 5.1 token: any CHAR except SPACE, CTLs and tspecials. */
static bool is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!is_token_char((unsigned char)*s))
			return false;
	}
	return true;
}

/* A DKIM-style domain-name (RFC 6376 3.5): what pvalue allows unquoted. */
static bool is_domain(const char *s)
{
	size_t label = 0, n = 0;

	for (; *s != '\0'; s++, n++) {
		char c = *s;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return n > 0 && n <= 253 && label > 0;
}

/* Appends a value (RFC 2045 5.1): a token, else a quoted-string of the
 * printable ASCII characters (anything else is dropped). */
static void add_value(struct buf *b, const char *value)
{
	if (is_token(value)) {
		buf_append_str(b, value);
		return;
	}
	buf_append_str(b, "\"");
	for (const char *p = value; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < ' ' || c >= 0x7f)
			continue;
		if (c == '"' || c == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_append_str(b, "\"");
}

/* Appends " ptype.property=value". */
static void add_prop(struct buf *b, const char *prop, const char *value)
{
	if (value == NULL || *value == '\0' || strlen(value) > 256)
		return;
	buf_printf(b, " %s=", prop);
	add_value(b, value);
}

static void add_domain_prop(struct buf *b, const char *prop, const char *domain)
{
	if (domain != NULL && is_domain(domain))
		add_prop(b, prop, domain);
}

char *authres_build(const struct authres *a)
{
	struct buf b;
	bool any = false;

	buf_init(&b, 64 * 1024);
	buf_append_str(&b, "Authentication-Results: ");
	add_value(&b, a->authserv_id != NULL && *a->authserv_id != '\0' ? a->authserv_id : "localhost");
	if (a->spf_done) {
		buf_printf(&b, ";\r\n\tspf=%s", spf_result_name(a->spf));
		add_domain_prop(&b, a->spf_helo ? "smtp.helo" : "smtp.mailfrom", a->spf_domain);
		any = true;
	}
	if (a->dkim_done) {
		if (a->ndkim == 0)
			buf_append_str(&b, ";\r\n\tdkim=none");
		for (size_t i = 0; i < a->ndkim && i < AUTHRES_DKIM_MAX; i++) {
			const struct dkim_sig_result *r = &a->dkim[i];

			buf_printf(&b, ";\r\n\tdkim=%s", dkim_result_name(r->result));
			add_domain_prop(&b, "header.d", r->domain);
			add_domain_prop(&b, "header.s", r->selector);
			if (r->algorithm != NULL && is_token(r->algorithm))
				add_prop(&b, "header.a", r->algorithm);
			/* RFC 6008: header.b tells signatures of one domain apart */
			add_prop(&b, "header.b", r->b_prefix);
		}
		any = true;
	}
	if (a->dmarc_done) {
		buf_printf(&b, ";\r\n\tdmarc=%s", dmarc_result_name(a->dmarc));
		if (a->dmarc == DMARC_PASS || a->dmarc == DMARC_FAIL)
			buf_printf(&b, " policy.dmarc=%s", dmarc_policy_name(a->dmarc_policy));
		add_domain_prop(&b, "header.from", a->dmarc_from);
		any = true;
	}
	if (!any)
		buf_append_str(&b, "; none");
	buf_append_str(&b, "\r\n");
	return buf_steal(&b, NULL);
}

/* ------------------------------------------------------------------ */
/* Reading a received field's authserv-id */

/* Skips CFWS (RFC 5322 3.2.2): blanks, CRLF folds and comments (nested,
 * with quoted-pairs). Returns false on an unterminated comment. */
static bool skip_cfws(const char *s, size_t len, size_t *i)
{
	while (*i < len) {
		char c = s[*i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			(*i)++;
		} else if (c == '(') {
			size_t depth = 0;

			do {
				c = s[*i];
				if (c == '\\' && *i + 1 < len)
					(*i)++;
				else if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
				(*i)++;
			} while (depth > 0 && *i < len);
			if (depth > 0)
				return false;
		} else {
			break;
		}
	}
	return true;
}

bool authres_remove(const char *value, size_t len, const char *authserv_id)
{
	char id[256];
	size_t i = 0, n = 0;

	if (len > AUTHRES_HEADER_MAX)
		return true;
	if (!skip_cfws(value, len, &i) || i >= len)
		return true;
	if (value[i] == '"') {
		/* quoted-string */
		for (i++; i < len && value[i] != '"'; i++) {
			if (value[i] == '\\' && i + 1 < len)
				i++;
			if (n + 1 >= sizeof(id))
				return true;
			id[n++] = value[i];
		}
		if (i >= len)
			return true;
		i++;
	} else {
		while (i < len && is_token_char((unsigned char)value[i])) {
			if (n + 1 >= sizeof(id))
				return true;
			id[n++] = value[i++];
		}
	}
	id[n] = '\0';
	if (n == 0)
		return true;
	if (str_ieq(id, authserv_id))
		return true;
	/* [ CFWS authres-version ]: a version other than 1 is one we do not
	 * support (RFC 8601 5: MUST remove when the client is not trusted,
	 * and no client is on port 25) */
	if (!skip_cfws(value, len, &i))
		return true;
	if (i < len && value[i] >= '0' && value[i] <= '9') {
		size_t start = i;
		while (i < len && value[i] >= '0' && value[i] <= '9')
			i++;
		if (i - start != 1 || value[start] != '1')
			return true;
	}
	return false;
}
