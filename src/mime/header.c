/* Header fields (RFC 5322 2.2) and RFC 2047 encoded-words.
 *
 * Policy for what real mail contains:
 * - A line may end in CRLF or in a bare LF; a CR before the LF is not part
 *   of the value. A lone CR elsewhere is kept by header_next() and made a
 *   space by header_unfold().
 * - The header block ends at the first empty line, or at the end of the
 *   input when there is no empty line (a message without a body).
 * - A line starting with white space continues the field above it (folding,
 *   RFC 5322 2.2.3), even a line of white space only (obs-FWS, 4.2). A line
 *   that is neither a field nor a continuation (no colon, a bad name, a
 *   continuation with no field above, an mbox "From " line) is skipped with
 *   its own continuation lines, and header_next() says so with -1.
 * - White space between the name and the colon is accepted and dropped
 *   (obs-optional, RFC 5322 4.5).
 * - Every loop moves forward through the input, so the work is linear in
 *   its length. */
#include "mime/header.h"
#include "core/buf.h"
#include "core/util.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The longest charset name handed to iconv_open(). The IANA registry's
 * longest is 45; a longer "charset" is junk. */
#define CHARSET_MAX 64

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 3.6.8: ftext = %d33-57 / %d59-126 (printable, not colon). */
static bool is_ftext(char c)
{
	unsigned char u = (unsigned char)c;
	return u >= 33 && u <= 126 && u != ':';
}

/* The length of the empty line at msg[pos]: 1 (LF), 2 (CRLF) or 0 when the
 * line there is not empty. */
static size_t empty_line_len(const char *msg, size_t len, size_t pos)
{
	if (pos < len && msg[pos] == '\n')
		return 1;
	if (pos + 1 < len && msg[pos] == '\r' && msg[pos + 1] == '\n')
		return 2;
	return 0;
}

/* The index of the LF ending the line that starts at pos, or len. */
static size_t line_end(const char *msg, size_t len, size_t pos)
{
	const char *nl = memchr(msg + pos, '\n', len - pos);
	return nl ? (size_t)(nl - msg) : len;
}

size_t header_block_len(const char *msg, size_t len)
{
	size_t pos = 0;
	while (pos < len) {
		size_t e = empty_line_len(msg, len, pos);
		if (e > 0)
			return pos + e;
		pos = line_end(msg, len, pos);
		if (pos < len)
			pos++;
	}
	return len;
}

int header_next(const char *msg, size_t len, size_t *pos, struct header_field *field_r)
{
	size_t start = *pos;
	if (start >= len || empty_line_len(msg, len, start) > 0)
		return 0;

	/* The field runs to the end of the last continuation line. */
	size_t first_end = line_end(msg, len, start);
	size_t end = first_end;
	while (end + 1 < len && is_wsp(msg[end + 1]))
		end = line_end(msg, len, end + 1);
	*pos = end < len ? end + 1 : len;

	size_t i = start;
	while (i < first_end && is_ftext(msg[i]))
		i++;
	size_t name_end = i;
	while (i < first_end && is_wsp(msg[i]))
		i++;
	if (name_end == start || i >= first_end || msg[i] != ':')
		return -1;

	size_t value = i + 1;
	/* Without the final line end: the LF is at end (or end == len) and a
	 * CR just before it belongs to it. */
	if (end > value && msg[end - 1] == '\r')
		end--;
	field_r->name = msg + start;
	field_r->name_len = name_end - start;
	field_r->value = msg + value;
	field_r->value_len = end - value;
	return 1;
}

char *header_unfold(const char *value, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		/* RFC 5322 2.2.3: unfolding removes the line break, not the
		 * white space after it. */
		if (c == '\n' || (c == '\r' && i + 1 < len && value[i + 1] == '\n'))
			continue;
		if (c == '\0' || c == '\r')
			c = ' ';
		out[n++] = c;
	}
	size_t start = 0;
	while (start < n && is_wsp(out[start]))
		start++;
	while (n > start && is_wsp(out[n - 1]))
		n--;
	memmove(out, out + start, n - start);
	out[n - start] = '\0';
	return out;
}

static bool name_is(const struct header_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && str_nieq(f->name, name, n);
}

char *header_get(const char *msg, size_t len, const char *name)
{
	struct header_field f;
	size_t pos = 0;
	int r;
	while ((r = header_next(msg, len, &pos, &f)) != 0) {
		if (r > 0 && name_is(&f, name))
			return header_unfold(f.value, f.value_len);
	}
	return NULL;
}

size_t header_count(const char *msg, size_t len, const char *name)
{
	struct header_field f;
	size_t pos = 0, count = 0;
	int r;
	while ((r = header_next(msg, len, &pos, &f)) != 0) {
		if (r > 0 && name_is(&f, name))
			count++;
	}
	return count;
}

/* ---- RFC 2047 ---- */

struct encoded_word {
	const char *end;	/* just after "?=" */
	const char *charset;	/* without the RFC 2231 "*language" */
	size_t charset_len;
	char encoding;		/* 'B' or 'Q' */
	const char *text;
	size_t text_len;
};

/* RFC 2047 2: token characters, minus the especials. '.' and ':' are
 * especials there, but charset names use them ("ANSI_X3.4-1968"), and '*'
 * starts the language (RFC 2231 5). '/' and ',' stay out: to glibc's
 * iconv_open() they introduce "//TRANSLIT"-style options. */
static bool is_charset_char(char c)
{
	unsigned char u = (unsigned char)c;
	return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
	       (u != 0 && strchr("-_.:+*!#$%&'^`{|}~", u) != NULL);
}

/* Reads "=?charset?encoding?text?=" at p. The scan stops at the third '?'
 * after p at the latest, so trying every "=?" of a string stays linear. */
static bool parse_word(const char *p, struct encoded_word *w)
{
	const char *c = p + 2, *q = c;
	while (is_charset_char(*q))
		q++;
	if (*q != '?')
		return false;
	const char *star = memchr(c, '*', (size_t)(q - c));
	w->charset = c;
	w->charset_len = (size_t)((star ? star : q) - c);
	if (w->charset_len == 0 || w->charset_len > CHARSET_MAX)
		return false;
	char e = q[1];
	if (e == 'b' || e == 'q')
		e = (char)(e - 32);
	if ((e != 'B' && e != 'Q') || q[2] != '?')
		return false;
	/* encoded-text: printable ASCII but '?' and SPACE. It may be empty
	 * here (RFC 2047 says 1*): some mailers write that, and it decodes
	 * to nothing. */
	const char *t = q + 3, *u = t;
	while ((unsigned char)*u > 0x20 && (unsigned char)*u < 0x7f && *u != '?')
		u++;
	if (u[0] != '?' || u[1] != '=')
		return false;
	w->encoding = e;
	w->text = t;
	w->text_len = (size_t)(u - t);
	w->end = u + 2;
	return true;
}

static int b64_value(char c)
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

/* RFC 2047 4.1, the "B" encoding: base64 (RFC 2045 6.8). Padding may be
 * missing (common in the wild), but what is there must be right. */
static int decode_b(const char *t, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i = 0;
	for (; i < n && t[i] != '='; i++) {
		int v = b64_value(t[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_append_c(out, (char)(acc >> bits));
			acc &= (1u << bits) - 1;
		}
	}
	size_t data = i, pad = n - i;
	for (; i < n; i++) {
		if (t[i] != '=')
			return -1;
	}
	if (data % 4 == 1 || pad > 2 || (pad > 0 && (data + pad) % 4 != 0))
		return -1;
	return 0;
}

/* RFC 2047 4.2, the "Q" encoding: "_" is a space, "=XX" a byte (lower-case
 * hex accepted), anything else itself. */
static int decode_q(const char *t, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=') {
			if (i + 2 >= n)
				return -1;
			int hi = hex_value(t[i + 1]), lo = hex_value(t[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		buf_append_c(out, c);
	}
	return 0;
}

/* The words decoded so far that still wait for their charset conversion:
 * adjacent words in the same charset are converted together, because
 * mailers do split a multibyte character between two words (against
 * RFC 2047 5). */
struct word_run {
	bool active;
	const char *start, *end;	/* the words in the input, for a fallback */
	/* The white space before the run, after a word that was converted:
	 * it goes only if this run is converted too. */
	const char *gap, *gap_end;
	const char *charset;
	size_t charset_len;
	struct buf bytes;
};

/* The last charset opened, since a header tends to use one. */
struct converter {
	iconv_t cd;		/* (iconv_t)-1 if none, or if opening failed */
	char charset[CHARSET_MAX + 1];	/* "" if none */
};

/* Converts in[0..len) from charset to UTF-8 at the end of out. Returns 0,
 * or -1 (out unchanged) for an unknown charset or bytes not valid in it. */
static int convert(struct converter *conv, const char *charset, size_t charset_len,
		   const char *in, size_t len, struct buf *out)
{
	bool same = conv->charset[0] != '\0' && strlen(conv->charset) == charset_len &&
		    str_nieq(conv->charset, charset, charset_len);
	if (!same) {
		if (conv->cd != (iconv_t)-1)
			iconv_close(conv->cd);
		memcpy(conv->charset, charset, charset_len);
		conv->charset[charset_len] = '\0';
		conv->cd = iconv_open("UTF-8", conv->charset);
	}
	if (conv->cd == (iconv_t)-1)
		return -1;
	iconv(conv->cd, NULL, NULL, NULL, NULL);
	/* One input byte gives at most 4 bytes of UTF-8 in most charsets; a
	 * few (TSCII) give more, hence the E2BIG loop. */
	size_t cap = len * 4 + 16;
	char *dst = xmalloc(cap);
	char *ip = (char *)in, *op = dst;
	size_t ileft = len, oleft = cap;
	while (iconv(conv->cd, &ip, &ileft, &op, &oleft) == (size_t)-1) {
		if (errno != E2BIG) {
			free(dst);
			return -1;
		}
		size_t used = (size_t)(op - dst);
		cap *= 2;
		dst = xrealloc(dst, cap);
		op = dst + used;
		oleft = cap - used;
	}
	size_t n = (size_t)(op - dst);
	/* A decoded NUL would cut the string, and CR or LF would let an
	 * encoded-word smuggle a line break into whatever shows it. */
	for (size_t i = 0; i < n; i++) {
		if (dst[i] == '\0' || dst[i] == '\r' || dst[i] == '\n')
			dst[i] = ' ';
	}
	buf_append(out, dst, n);
	free(dst);
	return 0;
}

/* Outputs the run: converted, or as it was written when it cannot be.
 * Returns 0 if it was converted, -1 if it went out as written. */
static int flush_run(struct word_run *run, struct converter *conv, struct buf *out)
{
	if (!run->active)
		return 0;
	run->active = false;
	int r = convert(conv, run->charset, run->charset_len, run->bytes.data ? run->bytes.data : "",
			run->bytes.len, out);
	if (r < 0) {
		buf_append(out, run->gap, (size_t)(run->gap_end - run->gap));
		buf_append(out, run->start, (size_t)(run->end - run->start));
	}
	buf_reset(&run->bytes);
	return r;
}

static bool all_lwsp(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return false;
	}
	return true;
}

/* Encoded-words are decoded wherever they are found, also inside a word or
 * a quoted string, where RFC 2047 5 does not allow them: mailers put them
 * there, and readers expect them decoded. */
char *header_decode_2047(const char *s)
{
	struct buf out, word;
	struct word_run run = { .active = false };
	struct converter conv = { .cd = (iconv_t)-1, .charset = "" };
	buf_init(&out, 0);
	buf_init(&word, 0);
	buf_init(&run.bytes, 0);

	const char *text = s;	/* input not yet written out */
	const char *p = s;
	while (*p != '\0') {
		struct encoded_word w;
		if (p[0] != '=' || p[1] != '?' || !parse_word(p, &w)) {
			p++;
			continue;
		}
		buf_reset(&word);
		if ((w.encoding == 'B' ? decode_b(w.text, w.text_len, &word) :
		     decode_q(w.text, w.text_len, &word)) < 0) {
			p++;	/* malformed: it stays as text */
			continue;
		}
		/* RFC 2047 6.2: white space between two encoded-words goes. */
		bool adjacent = run.active && all_lwsp(text, p);
		if (adjacent && run.charset_len == w.charset_len &&
		    str_nieq(run.charset, w.charset, w.charset_len)) {
			buf_append(&run.bytes, word.data ? word.data : "", word.len);
			run.end = w.end;
		} else {
			/* If the run could not be converted, it is text now,
			 * and the white space after it stays. */
			if (flush_run(&run, &conv, &out) < 0 || !adjacent) {
				buf_append(&out, text, (size_t)(p - text));
				run.gap = run.gap_end = p;
			} else {
				run.gap = text;
				run.gap_end = p;
			}
			run.active = true;
			run.start = p;
			run.end = w.end;
			run.charset = w.charset;
			run.charset_len = w.charset_len;
			buf_append(&run.bytes, word.data ? word.data : "", word.len);
		}
		text = p = w.end;
	}
	flush_run(&run, &conv, &out);
	buf_append(&out, text, (size_t)(p - text));

	if (conv.cd != (iconv_t)-1)
		iconv_close(conv.cd);
	buf_deinit(&word);
	buf_deinit(&run.bytes);
	buf_append(&out, "", 0);	/* so that even "" comes back terminated */
	return buf_steal(&out, NULL);
}
