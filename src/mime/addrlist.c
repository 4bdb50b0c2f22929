#include "mime/addrlist.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* A small tokenizer: the structure that matters here is only where each
 * mailbox's addr-spec is, so quoted strings and comments are skipped as
 * units and everything else is looked at character by character. */

static const char *skip_comment(const char *p)
{
	/* p at "(": comments nest (RFC 5322 3.2.2); depth is bounded. */
	int depth = 0;
	for (; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (*p == '(') {
			if (++depth > 50)
				return NULL;
		} else if (*p == ')') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

static const char *skip_quoted(const char *p, struct buf *out)
{
	/* p at '"' */
	for (p++; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			if (out)
				buf_append_c(out, *p);
		} else if (*p == '"') {
			return p + 1;
		} else if (out) {
			buf_append_c(out, *p);
		}
	}
	return NULL;
}

/* Normalises "local@domain": domain lower-cased; NULL if no "@". */
static char *finish_addr(struct buf *b)
{
	char *s = buf_steal(b, NULL);
	char *at = strrchr(s, '@');
	if (at == NULL || at == s || at[1] == '\0') {
		free(s);
		return NULL;
	}
	str_lower(at + 1);
	return s;
}

static int push(char ***v, size_t *n, char *addr)
{
	if (*n >= ADDRLIST_MAX) {
		free(addr);
		return -1;
	}
	*v = xrealloc(*v, (*n + 2) * sizeof(**v));
	(*v)[(*n)++] = addr;
	(*v)[*n] = NULL;
	return 0;
}

int addrlist_parse(const char *value, char ***addrs_r)
{
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	struct buf cur;		/* the current mailbox's addr-spec candidate */
	buf_init(&cur, 1024);
	bool in_angle = false, have_angle = false, bad = false, space = false;
	const char *p = value;

	while (!bad) {
		char c = *p;
		if (c == '\0' || (!in_angle && (c == ',' || c == ';'))) {
			/* end of one mailbox */
			if (cur.len > 0) {
				char *a = finish_addr(&cur);
				if (a == NULL || push(&v, &n, a) < 0)
					bad = true;
			} else if (have_angle) {
				bad = true;	/* "<>" */
			}
			buf_reset(&cur);
			have_angle = false;
			space = false;
			if (c == '\0')
				break;
			p++;
			continue;
		}
		if (c == '(') {
			p = skip_comment(p);
			if (p == NULL)
				bad = true;
			continue;
		}
		if (c == '"') {
			/* In a display name it is dropped; in a local part kept. */
			struct buf q;
			buf_init(&q, 1024);
			p = skip_quoted(p, &q);
			if (p == NULL) {
				bad = true;
			} else if (in_angle || *p == '@') {
				bool simple = q.len > 0 && strpbrk(q.data, " \"\\(),:;<>@[]") == NULL;
				if (!simple)
					buf_append_c(&cur, '"');
				buf_append(&cur, q.data ? q.data : "", q.len);
				if (!simple)
					buf_append_c(&cur, '"');
			} else {
				buf_reset(&cur);
			}
			buf_deinit(&q);
			continue;
		}
		if (c == '<') {
			if (in_angle || have_angle) {
				bad = true;
				continue;
			}
			in_angle = have_angle = true;
			buf_reset(&cur);	/* what came before was a display name */
			p++;
			continue;
		}
		if (c == '>') {
			if (!in_angle)
				bad = true;
			in_angle = false;
			p++;
			continue;
		}
		if (c == ':' && !in_angle) {
			/* "group:" — the name before it is not an address */
			buf_reset(&cur);
			p++;
			continue;
		}
		if (c == ':' && in_angle) {
			/* obs-route "@a,@b:" before the addr-spec */
			buf_reset(&cur);
			p++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = true;
			p++;
			continue;
		}
		if (have_angle && !in_angle) {
			p++;	/* junk after "<...>" before the comma */
			continue;
		}
		/* Words of a display name: only the last word before a
		 * separator can be the addr-spec when there are no brackets. */
		if (space && !in_angle && c != '@' && c != '.' && cur.len > 0 &&
		    cur.data[cur.len - 1] != '@' && cur.data[cur.len - 1] != '.')
			buf_reset(&cur);
		space = false;
		if (buf_append_c(&cur, c) < 0)
			bad = true;
		p++;
	}
	buf_deinit(&cur);
	if (bad || in_angle) {
		addrlist_free(&v);
		return -1;
	}
	*addrs_r = v;
	return (int)n;
}

void addrlist_free(char ***addrs)
{
	char **v = *addrs;
	if (v == NULL)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
	*addrs = NULL;
}
