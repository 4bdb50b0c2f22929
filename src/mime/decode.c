/* Base64 and quoted-printable decoding, and charsets to UTF-8.
 *
 * Both decoders are byte-at-a-time state machines with a few bytes of
 * state, so any split of the input gives the same output, and each input
 * byte costs O(1). They are lenient on purpose: a body is decoded for a
 * client that asked for BINARY or for SEARCH, and refusing a damaged
 * attachment helps nobody. */
#include "mime/decode.h"
#include "core/util.h"

#include <errno.h>
#include <iconv.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void base64_decoder_init(struct base64_decoder *d)
{
	memset(d, 0, sizeof(*d));
}

int base64_decode_more(struct base64_decoder *d, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	/* Written in runs, not byte by byte. */
	unsigned char chunk[256];
	size_t n = 0;
	int r = 0;
	if (d->done)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(p[i]);
		if (v < 0) {
			if (p[i] == '=') {
				/* padding: the quantum ends, its partial bits go */
				d->acc = 0;
				d->bits = 0;
				d->padded = true;
			} else if (p[i] == '\r' || p[i] == '\n') {
				/* line breaks are everywhere */
			} else if (d->padded) {
				/* Text after the padding (a list footer, a
				 * signature): the data has ended. */
				d->done = true;
				break;
			} else if (p[i] != ' ' && p[i] != '\t') {
				d->bad++;
			}
			continue;
		}
		d->padded = false;
		d->acc = (d->acc << 6) | (uint32_t)v;
		d->bits += 6;
		if (d->bits >= 8) {
			d->bits -= 8;
			chunk[n++] = (unsigned char)(d->acc >> d->bits);
			d->acc &= (1u << d->bits) - 1;
			if (n == sizeof(chunk)) {
				r |= buf_append(out, chunk, n);
				n = 0;
			}
		}
	}
	r |= buf_append(out, chunk, n);
	return r < 0 ? -1 : 0;
}

int base64_decode_finish(struct base64_decoder *d, struct buf *out)
{
	/* Whole bytes were written as they completed; fewer than 8 bits
	 * left are the padding bits of a truncated quantum. */
	d->acc = 0;
	d->bits = 0;
	(void)out;
	return 0;
}

int decode_base64(const void *in, size_t len, struct buf *out)
{
	struct base64_decoder d;
	base64_decoder_init(&d);
	int r = base64_decode_more(&d, in, len, out);
	return r | base64_decode_finish(&d, out);
}

/* ---- quoted-printable ---- */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void qp_decoder_init(struct qp_decoder *d)
{
	d->state = QP_TEXT;
	d->hex1 = 0;
	d->ws_len = d->eq_ws_len = 0;
	d->bad = 0;
}

static int flush_ws(struct qp_decoder *d, struct buf *out)
{
	int r = buf_append(out, d->ws, d->ws_len);
	d->ws_len = 0;
	return r;
}

/* One byte in QP_TEXT. */
static int qp_text(struct qp_decoder *d, unsigned char c, struct buf *out)
{
	int r = 0;
	switch (c) {
	case ' ':
	case '\t':
		if (d->ws_len == QP_WS_MAX)
			r |= flush_ws(d, out);
		d->ws[d->ws_len++] = (char)c;
		break;
	case '\r':
		d->state = QP_CR;
		break;
	case '\n':
		d->ws_len = 0;	/* trailing white space goes */
		r |= buf_append_c(out, '\n');
		break;
	case '=':
		r |= flush_ws(d, out);
		d->state = QP_EQ;
		break;
	default:
		r |= flush_ws(d, out);
		r |= buf_append_c(out, (char)c);
		break;
	}
	return r;
}

/* "=" turned out to start nothing: it is text, and so is the white space
 * that followed it. */
static int eq_is_text(struct qp_decoder *d, struct buf *out)
{
	int r = flush_ws(d, out);
	r |= buf_append_c(out, '=');
	memcpy(d->ws, d->eq_ws, d->eq_ws_len);
	d->ws_len = d->eq_ws_len;
	d->eq_ws_len = 0;
	d->bad++;
	return r;
}

int qp_decode_more(struct qp_decoder *d, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	int r = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		switch (d->state) {
		case QP_TEXT:
			r |= qp_text(d, c, out);
			break;
		case QP_CR:
			d->state = QP_TEXT;
			if (c == '\n') {
				d->ws_len = 0;
				r |= buf_append(out, "\r\n", 2);
			} else {
				/* a bare CR is text */
				r |= flush_ws(d, out);
				r |= buf_append_c(out, '\r');
				r |= qp_text(d, c, out);
			}
			break;
		case QP_EQ:
			if (hexval(c) >= 0) {
				d->hex1 = (char)c;
				d->state = QP_EQ_HEX;
			} else if (c == '\n') {
				d->state = QP_TEXT;	/* soft line break */
			} else if (c == '\r') {
				d->state = QP_EQ_CR;
			} else if (c == ' ' || c == '\t') {
				d->eq_ws[0] = (char)c;
				d->eq_ws_len = 1;
				d->state = QP_EQ_WS;
			} else {
				d->state = QP_TEXT;
				r |= eq_is_text(d, out);
				r |= qp_text(d, c, out);
			}
			break;
		case QP_EQ_HEX:
			d->state = QP_TEXT;
			if (hexval(c) >= 0) {
				r |= buf_append_c(out, (char)(hexval((unsigned char)d->hex1) << 4 | hexval(c)));
			} else {
				r |= eq_is_text(d, out);
				r |= buf_append_c(out, d->hex1);
				r |= qp_text(d, c, out);
			}
			break;
		case QP_EQ_CR:
			if (c == '\n') {
				d->state = QP_TEXT;
			} else {
				r |= eq_is_text(d, out);
				d->state = QP_CR;
				i--;	/* the byte again, after the CR */
			}
			break;
		case QP_EQ_WS:
			if (c == ' ' || c == '\t') {
				if (d->eq_ws_len == QP_WS_MAX) {
					d->state = QP_TEXT;
					r |= eq_is_text(d, out);
					r |= qp_text(d, c, out);
				} else {
					d->eq_ws[d->eq_ws_len++] = (char)c;
				}
			} else if (c == '\n') {
				d->eq_ws_len = 0;
				d->state = QP_TEXT;
			} else if (c == '\r') {
				d->state = QP_EQ_WS_CR;
			} else {
				d->state = QP_TEXT;
				r |= eq_is_text(d, out);
				r |= qp_text(d, c, out);
			}
			break;
		case QP_EQ_WS_CR:
			if (c == '\n') {
				d->eq_ws_len = 0;
				d->state = QP_TEXT;
			} else {
				r |= eq_is_text(d, out);
				d->state = QP_CR;
				i--;
			}
			break;
		}
	}
	return r < 0 ? -1 : 0;
}

int qp_decode_finish(struct qp_decoder *d, struct buf *out)
{
	int r = 0;
	switch (d->state) {
	case QP_TEXT:
	case QP_EQ:		/* "=" at the very end: a soft break */
	case QP_EQ_WS:
	case QP_EQ_CR:
	case QP_EQ_WS_CR:
		break;
	case QP_CR:
		r |= buf_append_c(out, '\r');
		break;
	case QP_EQ_HEX:
		r |= buf_append_c(out, '=');
		r |= buf_append_c(out, d->hex1);
		d->bad++;
		break;
	}
	/* White space at the end of the last line goes, as on any line. */
	d->ws_len = d->eq_ws_len = 0;
	d->state = QP_TEXT;
	return r < 0 ? -1 : 0;
}

int decode_qp(const void *in, size_t len, struct buf *out)
{
	struct qp_decoder d;
	qp_decoder_init(&d);
	int r = qp_decode_more(&d, in, len, out);
	return r | qp_decode_finish(&d, out);
}

/* ---- charsets ---- */

/* The longest multibyte sequence iconv may leave incomplete between calls
 * (ISO-2022 escapes and GB18030 are the longest, well under this). */
#define CONV_PENDING_MAX 16
#define CHARSET_NAME_MAX 64

struct charset_conv {
	iconv_t cd;
	char pending[CONV_PENDING_MAX];
	size_t pending_len;
	size_t bad;
};

static const char replacement[] = "\xef\xbf\xbd";

struct charset_conv *charset_conv_new(const char *charset)
{
	/* The name goes to iconv_open(): keep it to a MIME charset token, so
	 * that "//TRANSLIT"-style suffixes cannot sneak in. */
	size_t n = strlen(charset);
	if (n == 0 || n > CHARSET_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)charset[i];
		if (c <= ' ' || c >= 0x7f || c == '/' || c == ',')
			return NULL;
	}
	const char *from = charset;
	if (str_ieq(charset, "us-ascii") || str_ieq(charset, "ascii") ||
	    str_ieq(charset, "utf8"))
		from = "UTF-8";
	iconv_t cd = iconv_open("UTF-8", from);
	if (cd == (iconv_t)-1)
		return NULL;
	struct charset_conv *c = xcalloc(1, sizeof(*c));
	c->cd = cd;
	return c;
}

/* Runs iconv over in, with the replacement for bad bytes. Leaves an
 * incomplete tail in c->pending when !final. */
static int conv_run(struct charset_conv *c, const char *in, size_t len, bool final,
		    struct buf *out)
{
	char obuf[1024];
	char *ip = (char *)in;
	size_t il = len;
	int r = 0;
	while (il > 0) {
		char *op = obuf;
		size_t ol = sizeof(obuf);
		size_t ret = iconv(c->cd, &ip, &il, &op, &ol);
		r |= buf_append(out, obuf, (size_t)(op - obuf));
		if (ret != (size_t)-1)
			break;
		if (errno == E2BIG)
			continue;
		if (errno == EINVAL && !final && il <= CONV_PENDING_MAX) {
			memcpy(c->pending, ip, il);
			c->pending_len = il;
			return r;
		}
		/* EILSEQ, or an incomplete sequence at the very end */
		r |= buf_append(out, replacement, 3);
		c->bad++;
		ip++;
		il--;
		iconv(c->cd, NULL, NULL, NULL, NULL);
	}
	return r;
}

int charset_conv_more(struct charset_conv *c, const void *in, size_t len, struct buf *out)
{
	const char *p = in;
	int r = 0;
	/* First complete the sequence left over, one byte at a time. */
	while (c->pending_len > 0 && len > 0) {
		char tmp[CONV_PENDING_MAX + 1];
		size_t n = c->pending_len;
		memcpy(tmp, c->pending, n);
		tmp[n++] = *p++;
		len--;
		c->pending_len = 0;
		if (n > CONV_PENDING_MAX) {
			r |= conv_run(c, tmp, n, true, out);
		} else {
			r |= conv_run(c, tmp, n, false, out);
		}
	}
	if (len > 0)
		r |= conv_run(c, p, len, false, out);
	return r < 0 ? -1 : 0;
}

int charset_conv_finish(struct charset_conv *c, struct buf *out)
{
	int r = 0;
	if (c->pending_len > 0) {
		size_t n = c->pending_len;
		c->pending_len = 0;
		r |= conv_run(c, c->pending, n, true, out);
	}
	/* Shift states (ISO-2022) write their reset sequence. */
	char obuf[64];
	char *op = obuf;
	size_t ol = sizeof(obuf);
	iconv(c->cd, NULL, NULL, &op, &ol);
	r |= buf_append(out, obuf, (size_t)(op - obuf));
	return r < 0 ? -1 : 0;
}

size_t charset_conv_bad(const struct charset_conv *c)
{
	return c->bad;
}

void charset_conv_free(struct charset_conv **cp)
{
	struct charset_conv *c = *cp;
	if (c == NULL)
		return;
	iconv_close(c->cd);
	free(c);
	*cp = NULL;
}

static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp_r);

/* Valid UTF-8 throughout: what iconv from UTF-8 passes unchanged. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		size_t l = s[i] < 0x80 ? 1 : utf8_decode(s + i, n - i, &cp);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

int charset_to_utf8(const char *charset, const void *in, size_t len, struct buf *out)
{
	/* Text that is UTF-8 already (or ASCII, a part of it), the common
	 * case, is taken as it is rather than through iconv. */
	if ((str_ieq(charset, "utf-8") || str_ieq(charset, "utf8") ||
	     str_ieq(charset, "us-ascii") || str_ieq(charset, "ascii")) &&
	    utf8_valid(in, len))
		return buf_append(out, in, len) < 0 ? -1 : 0;
	struct charset_conv *c = charset_conv_new(charset);
	if (c == NULL)
		return -2;
	int r = charset_conv_more(c, in, len, out);
	r |= charset_conv_finish(c, out);
	charset_conv_free(&c);
	return r < 0 ? -1 : 0;
}

/* ---- case folding ---- */

static pthread_once_t fold_once = PTHREAD_ONCE_INIT;
static locale_t fold_locale;

static void fold_init(void)
{
	/* Built into glibc since 2.35: no locale package needed. */
	fold_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

/* One UTF-8 sequence at s (at most n bytes): its code point and length,
 * or length 0 when it is not valid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	unsigned char c = s[0];
	size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
		     (c & 0xf8) == 0xf0 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

static void utf8_put(struct buf *b, uint32_t cp)
{
	char o[4];
	size_t n;
	if (cp < 0x80) {
		o[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		o[0] = (char)(0xf0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(b, o, n);
}

char *text_fold(const char *s, size_t len, size_t *len_r)
{
	pthread_once(&fold_once, fold_init);
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, "", 0);
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len; ) {
		uint32_t cp;
		if (p[i] < 0x80) {
			buf_append_c(&b, (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]));
			i++;
			continue;
		}
		size_t n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			buf_append_c(&b, (char)p[i]);
			i++;
			continue;
		}
		if (fold_locale != (locale_t)0)
			cp = (uint32_t)towlower_l((wint_t)cp, fold_locale);
		utf8_put(&b, cp);
		i += n;
	}
	return buf_steal(&b, len_r);
}

bool text_contains_fold(const char *hay, size_t hay_len, const char *needle)
{
	if (*needle == '\0')
		return true;
	size_t hl, nl;
	char *h = text_fold(hay, hay_len, &hl);
	char *n = text_fold(needle, strlen(needle), &nl);
	bool found = memmem(h, hl, n, nl) != NULL;
	free(h);
	free(n);
	return found;
}

/* ---- quoted-printable encoding ---- */

#define QP_LINE_MAX 76

void qp_encoder_init(struct qp_encoder *e)
{
	memset(e, 0, sizeof(*e));
}

/* One output token of width w (1 or 3), with a soft break first if the
 * line would grow past 75 characters (76 with the "=" of the break). */
static int qp_token(struct qp_encoder *e, const char *tok, size_t w, struct buf *out)
{
	if (e->col + w > QP_LINE_MAX - 1) {
		if (buf_append(out, "=\r\n", 3) < 0)
			return -1;
		e->col = 0;
	}
	e->col += w;
	return buf_append(out, tok, w);
}

static int qp_byte(struct qp_encoder *e, unsigned char b, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	if (b >= 33 && b <= 126 && b != '=') {
		char c = (char)b;
		return qp_token(e, &c, 1, out);
	}
	char t[3] = { '=', hex[b >> 4], hex[b & 15] };
	return qp_token(e, t, 3, out);
}

/* The held white space: literal when more text follows on the line,
 * encoded when the line ends (rule 3). */
static int qp_flush_ws(struct qp_encoder *e, bool line_end, struct buf *out)
{
	if (!e->has_ws)
		return 0;
	e->has_ws = false;
	return line_end ? qp_byte(e, (unsigned char)e->ws, out) : qp_token(e, &e->ws, 1, out);
}

static int qp_line_end(struct qp_encoder *e, struct buf *out)
{
	if (qp_flush_ws(e, true, out) < 0)
		return -1;
	e->col = 0;
	return buf_append(out, "\r\n", 2);
}

int qp_encode_more(struct qp_encoder *e, const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = p[i];
		if (e->cr) {
			e->cr = false;
			if (b == '\n') {
				if (qp_line_end(e, out) < 0)
					return -1;
				continue;
			}
			/* A bare CR is data. */
			if (qp_flush_ws(e, false, out) < 0 || qp_byte(e, '\r', out) < 0)
				return -1;
		}
		if (b == '\r') {
			e->cr = true;
		} else if (b == '\n') {
			if (qp_line_end(e, out) < 0)
				return -1;
		} else if (b == ' ' || b == '\t') {
			if (qp_flush_ws(e, false, out) < 0)
				return -1;
			e->ws = (char)b;
			e->has_ws = true;
		} else if (qp_flush_ws(e, false, out) < 0 || qp_byte(e, b, out) < 0) {
			return -1;
		}
	}
	return 0;
}

int qp_encode_finish(struct qp_encoder *e, struct buf *out)
{
	if (e->cr) {
		e->cr = false;
		if (qp_flush_ws(e, false, out) < 0 || qp_byte(e, '\r', out) < 0)
			return -1;
	}
	return qp_flush_ws(e, true, out);
}
