#include "imap/imap_mutf7.h"
#include "core/buf.h"
#include "core/util.h"
#include "smtp/address.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

/* Decodes one UTF-8 sequence at s; returns its length, 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
	if (n == 0 || !utf8_valid((const char *)s, n))
		return 0;
	uint32_t v = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++)
		v = (v << 6) | (s[i] & 0x3f);
	*cp = v;
	return n;
}

static void put_utf8(struct buf *b, uint32_t cp)
{
	char o[4];
	if (cp < 0x80) {
		buf_append_c(b, (char)cp);
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, o, 2);
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, o, 3);
	} else {
		o[0] = (char)(0xf0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(b, o, 4);
	}
}

char *mutf7_encode(const char *s)
{
	if (!utf8_valid(s, strlen(s)))
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p >= 0x20 && *p < 0x7f) {
			if (*p == '&')
				buf_append_str(&b, "&-");
			else
				buf_append_c(&b, (char)*p);
			p++;
			continue;
		}
		/* A run of other characters as base64 of UTF-16BE. */
		buf_append_c(&b, '&');
		uint32_t bits = 0;
		int nbits = 0;
		while (*p && !(*p >= 0x20 && *p < 0x7f)) {
			uint32_t cp = 0;
			size_t n = utf8_decode(p, &cp);
			p += n;
			uint16_t units[2];
			int nu = 1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 | (cp >> 10));
				units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < nu; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_append_c(&b, b64[(bits >> nbits) & 0x3f]);
				}
			}
		}
		if (nbits > 0)
			buf_append_c(&b, b64[(bits << (6 - nbits)) & 0x3f]);
		buf_append_c(&b, '-');
	}
	return buf_steal(&b, NULL);
}

char *mutf7_decode(const char *s)
{
	struct buf b;
	buf_init(&b, 0);
	const char *p = s;
	while (*p) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			goto bad;
		if (c != '&') {
			buf_append_c(&b, (char)c);
			p++;
			continue;
		}
		p++;
		if (*p == '-') {
			buf_append_c(&b, '&');
			p++;
			continue;
		}
		uint32_t bits = 0, high = 0;
		int nbits = 0;
		bool any = false;
		while (*p && *p != '-') {
			int v = b64val(*p++);
			if (v < 0)
				goto bad;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits >= 16) {
				nbits -= 16;
				uint32_t unit = (bits >> nbits) & 0xffff;
				any = true;
				if (high) {
					if (unit < 0xdc00 || unit > 0xdfff)
						goto bad;
					put_utf8(&b, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
					high = 0;
				} else if (unit >= 0xd800 && unit <= 0xdbff) {
					high = unit;
				} else if (unit >= 0xdc00 && unit <= 0xdfff) {
					goto bad;
				} else if (unit >= 0x20 && unit < 0x7f) {
					/* printable ASCII must not be encoded */
					goto bad;
				} else {
					put_utf8(&b, unit);
				}
			}
		}
		/* "-" ends it; leftover bits must be zero padding. */
		if (*p != '-' || !any || high || nbits >= 6 || (bits & ((1u << nbits) - 1)))
			goto bad;
		p++;
	}
	return buf_steal(&b, NULL);
bad:
	buf_deinit(&b);
	return NULL;
}
