/* The MIME results stored with each message (struct store_mime): computed
 * once from the parse made while the body was written, read back by FETCH
 * with one primary-key lookup. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime.h"
#include "mime/mime_imap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each value is bounded: the part limit of the parser bounds them in
 * practice (a 10,000-part message writes a BODYSTRUCTURE of about a
 * megabyte), these catch the rest. */
#define STORE_MIME_VALUE_MAX (16 * 1024 * 1024)

static int compute_one(const struct mime_message *msg,
		       int (*fn)(const struct mime_message *, struct buf *),
		       char **out_r, size_t *len_r)
{
	struct buf b;
	buf_init(&b, STORE_MIME_VALUE_MAX);
	if (fn(msg, &b) < 0) {
		buf_deinit(&b);
		return -1;
	}
	*out_r = buf_steal(&b, len_r);
	return 0;
}

static int parts_serialize(const struct mime_message *msg, struct buf *out)
{
	return mime_parts_serialize(msg, out);
}

int store_mime_compute(const struct mime_message *msg, struct store_mime *m)
{
	memset(m, 0, sizeof(*m));
	char *parts = NULL;
	if (compute_one(msg, mime_envelope, &m->envelope, &m->envelope_len) < 0 ||
	    compute_one(msg, mime_body, &m->body, &m->body_len) < 0 ||
	    compute_one(msg, mime_bodystructure, &m->bodystructure, &m->bodystructure_len) < 0 ||
	    compute_one(msg, parts_serialize, &parts, &m->parts_len) < 0) {
		store_mime_deinit(m);
		return -1;
	}
	m->parts = (unsigned char *)parts;
	return 0;
}

void store_mime_deinit(struct store_mime *m)
{
	free(m->envelope);
	free(m->body);
	free(m->bodystructure);
	free(m->parts);
	memset(m, 0, sizeof(*m));
}

static char *column_copy(sqlite3_stmt *st, int i, size_t *len_r)
{
	const void *p = sqlite3_column_blob(st, i);
	size_t len = (size_t)sqlite3_column_bytes(st, i);
	*len_r = len;
	if (p == NULL)
		return NULL;
	char *v = xmalloc(len + 1);
	memcpy(v, p, len);
	v[len] = '\0';
	return v;
}

int store_message_mime(struct store_reader *r, int64_t message_id, struct store_mime *m)
{
	memset(m, 0, sizeof(*m));
	sqlite3_stmt *st = r->st_mime;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st), result = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 3) != SQLITE_NULL) {
		m->envelope = column_copy(st, 0, &m->envelope_len);
		m->body = column_copy(st, 1, &m->body_len);
		m->bodystructure = column_copy(st, 2, &m->bodystructure_len);
		m->parts = (unsigned char *)column_copy(st, 3, &m->parts_len);
		result = m->envelope && m->body && m->bodystructure && m->parts ? 1 : 0;
		if (result == 0)
			store_mime_deinit(m);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		result = -1;
	}
	sqlite3_reset(st);
	return result;
}

struct mime_message *store_msg_parse(struct store *s, const struct store_msg *msg)
{
	int fd = store_msg_open(s, msg);
	if (fd < 0)
		return NULL;
	struct mime_parser *p = mime_parser_new(NULL);
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		mime_parser_feed(p, chunk, (size_t)n);
	int err = errno;
	close(fd);
	if (n < 0) {
		mime_parser_free(&p);
		errno = err;
		return NULL;
	}
	struct mime_message *mm;
	mime_parser_finish(&p, &mm);
	return mm;
}

int store_msg_mime_parse(struct store *s, const struct store_msg *msg, struct store_mime *m)
{
	struct mime_message *mm = store_msg_parse(s, msg);
	if (mm == NULL)
		return -1;
	int r = store_mime_compute(mm, m);
	mime_message_free(&mm);
	if (r < 0)
		errno = EFBIG;
	return r;
}

/* ---- text for the full-text index ---- */

/* Reads [start, start+len) of fd onto out: 0, 1 when out filled up first
 * (the text is cut there), -1 on a read error. */
static int pread_range(int fd, uint64_t start, uint64_t len, struct buf *out)
{
	char chunk[65536];
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		ssize_t n = pread(fd, chunk, want, (off_t)start);
		if (n <= 0)
			return n < 0 ? -1 : 0;
		if (buf_append(out, chunk, (size_t)n) < 0)
			return 1;	/* out is full: the text is cut there */
		start += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* "Name: value" lines of a header block, unfolded and RFC 2047 decoded;
 * *cut set when out had no room for all. */
static void header_text(const char *hdr, size_t len, struct buf *out, bool *cut)
{
	size_t pos = 0;
	struct header_field f;
	int r;
	while ((r = header_next(hdr, len, &pos, &f)) != 0) {
		if (r < 0)
			continue;
		char *raw = header_unfold(f.value, f.value_len);
		char *dec = header_decode_2047(raw);
		if (buf_append(out, f.name, f.name_len) < 0 || buf_append_str(out, ": ") < 0 ||
		    buf_append_str(out, dec) < 0 || buf_append_c(out, '\n') < 0)
			*cut = true;
		free(dec);
		free(raw);
	}
}

/* HTML to its text: tags go (a tag between two words leaves one space),
 * a few entities become their character. Good enough to find words in;
 * not a renderer. */
static void html_text(const char *p, size_t len, struct buf *out)
{
	static const struct { const char *name; const char *text; } ent[] = {
		{ "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
		{ "&apos;", "'" }, { "&nbsp;", " " },
	};
	bool in_tag = false, gap = false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_tag) {
			in_tag = c != '>';
			continue;
		}
		if (c == '<') {
			in_tag = gap = true;
			continue;
		}
		bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		char last = out->len ? out->data[out->len - 1] : ' ';
		if (gap && !space && last != ' ' && last != '\n')
			buf_append_c(out, ' ');
		gap = false;
		if (c == '&') {
			size_t k;
			for (k = 0; k < ARRAY_SIZE(ent); k++) {
				size_t el = strlen(ent[k].name);
				if (len - i >= el && str_nieq(p + i, ent[k].name, el)) {
					buf_append_str(out, ent[k].text);
					i += el - 1;
					break;
				}
			}
			if (k < ARRAY_SIZE(ent))
				continue;
		}
		buf_append_c(out, c);
	}
}

/* Text extraction from the body file fd: each piece at most max bytes;
 * cut is set when some text did not fit. */
struct text_ctx {
	int fd;
	size_t max;
	bool cut;
};

/* A text part's body: transfer decoding, charset to UTF-8, HTML to text. */
static void part_text(const struct mime_part *part, struct text_ctx *x, struct buf *out)
{
	struct mime_range r = mime_part_body(part);
	struct buf raw, dec, utf8;
	buf_init(&raw, x->max);
	buf_init(&dec, x->max);
	buf_init(&utf8, x->max);
	if (pread_range(x->fd, r.start, r.len, &raw) > 0)
		x->cut = true;
	const char *in = raw.data ? raw.data : "";
	switch (mime_part_cte(part)) {
	case MIME_CTE_BASE64:
		(void)decode_base64(in, raw.len, &dec);
		break;
	case MIME_CTE_QP:
		(void)decode_qp(in, raw.len, &dec);
		break;
	default:
		(void)buf_append(&dec, in, raw.len);
		break;
	}
	const char *charset = mime_part_param(part, "charset");
	int cr = 0;
	if (dec.len > 0 &&
	    (cr = charset_to_utf8(charset ? charset : "us-ascii", dec.data, dec.len, &utf8)) == -2)
		cr = charset_to_utf8("utf-8", dec.data, dec.len, &utf8);
	if (cr == -1)
		x->cut = true;	/* utf8 is full */
	/* html_text's output is never longer than its input */
	if (out->len + utf8.len + 1 > out->max)
		x->cut = true;
	if (str_ieq(mime_part_subtype(part), "html"))
		html_text(utf8.data ? utf8.data : "", utf8.len, out);
	else
		(void)buf_append(out, utf8.data ? utf8.data : "", utf8.len);
	(void)buf_append_c(out, '\n');
	buf_deinit(&raw);
	buf_deinit(&dec);
	buf_deinit(&utf8);
}

static void tree_text(const struct mime_part *part, struct text_ctx *x, struct buf *body,
		      int depth)
{
	if (depth > MIME_DEFAULT_MAX_DEPTH)
		return;
	switch (mime_part_kind(part)) {
	case MIME_KIND_TEXT:
		part_text(part, x, body);
		break;
	case MIME_KIND_MULTIPART:
		for (const struct mime_part *c = mime_part_first_child(part); c; c = mime_part_next(c))
			tree_text(c, x, body, depth + 1);
		break;
	case MIME_KIND_MESSAGE: {
		/* An attached message: its header is text of ours too. */
		const struct mime_part *inner = mime_part_first_child(part);
		if (inner == NULL)
			break;
		struct mime_range h = mime_part_header(inner);
		struct buf hdr;
		buf_init(&hdr, x->max);
		if (pread_range(x->fd, h.start, h.len, &hdr) > 0)
			x->cut = true;
		header_text(hdr.data ? hdr.data : "", hdr.len, body, &x->cut);
		buf_deinit(&hdr);
		tree_text(inner, x, body, depth + 1);
		break;
	}
	case MIME_KIND_LEAF:
		break;
	}
}

void store_text_extract(const struct mime_message *msg, int fd, size_t max,
			struct store_text *t)
{
	struct text_ctx x = { fd, max, false };
	buf_init(&t->header, max);
	buf_init(&t->body, max);
	const struct mime_part *root = mime_message_root(msg);
	struct mime_range h = mime_part_header(root);
	struct buf hdr;
	buf_init(&hdr, max);
	x.cut = pread_range(fd, h.start, h.len, &hdr) > 0;
	header_text(hdr.data ? hdr.data : "", hdr.len, &t->header, &x.cut);
	buf_deinit(&hdr);
	tree_text(root, &x, &t->body, 0);
	/* Cut at the limit: those messages are searched the slow way. */
	t->complete = !x.cut && t->header.len < max && t->body.len < max;
}

void store_text_deinit(struct store_text *t)
{
	buf_deinit(&t->header);
	buf_deinit(&t->body);
}

/* ---- PREVIEW (RFC 8970) ---- */

/* How much of a part is read for its preview: enough for the first
 * STORE_PREVIEW_CHARS characters of text behind a long HTML head. */
#define PREVIEW_READ_MAX (256 * 1024)

/* The first text/plain or text/html part that is not an attachment, in
 * the order a reader meets them (the first alternative of a
 * multipart/alternative, plain text by convention); not inside attached
 * messages. */
static const struct mime_part *preview_part(const struct mime_part *part, int depth)
{
	if (depth > MIME_DEFAULT_MAX_DEPTH)
		return NULL;
	if (mime_part_kind(part) == MIME_KIND_MULTIPART) {
		for (const struct mime_part *c = mime_part_first_child(part); c; c = mime_part_next(c)) {
			const struct mime_part *p = preview_part(c, depth + 1);
			if (p != NULL)
				return p;
		}
		return NULL;
	}
	if (mime_part_kind(part) != MIME_KIND_TEXT)
		return NULL;
	const char *disp = mime_part_disposition(part);
	if (disp != NULL && str_ieq(disp, "attachment"))
		return NULL;
	const char *sub = mime_part_subtype(part);
	return str_ieq(sub, "plain") || str_ieq(sub, "html") ? part : NULL;
}

/* Whether p[0..len) starts with the tag name name (then a space, "/" or
 * ">"), case-insensitively. */
static bool tag_is(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && str_nieq(p, name, n) &&
	       (p[n] == '>' || p[n] == '/' || p[n] == ' ' || p[n] == '\t' ||
		p[n] == '\r' || p[n] == '\n');
}

/* Finds needle (ASCII, lower case) in p[0..len), case-insensitively. */
static size_t find_ci(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++) {
		if (str_nieq(p + i, needle, n))
			return i;
	}
	return len;
}

/* Appends code point cp as UTF-8 (invalid ones as U+FFFD). */
static void append_utf8(struct buf *out, unsigned long cp)
{
	char u[4];
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		buf_append_c(out, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		buf_append(out, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		buf_append(out, u, 3);
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		buf_append(out, u, 4);
	}
}

/* HTML as the text a reader sees: what tags enclose in head, style,
 * script and title goes, so do comments and tags (a tag leaves a space:
 * "<p>a</p><p>b</p>" reads "a b"); the common named entities and every
 * numeric one become their character. */
static void preview_html(const char *p, size_t len, struct buf *out)
{
	static const struct { const char *name; const char *text; } ent[] = {
		{ "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
		{ "&apos;", "'" }, { "&nbsp;", " " },
	};
	static const char *const skipped[] = { "head", "style", "script", "title" };
	size_t i = 0;
	while (i < len) {
		char c = p[i];
		if (c == '<') {
			const char *t = p + i + 1;
			size_t left = len - i - 1;
			if (left >= 3 && memcmp(t, "!--", 3) == 0) {
				size_t end = find_ci(t + 3, left - 3, "-->");
				i += 1 + 3 + end + 3;
				continue;
			}
			size_t k;
			for (k = 0; k < ARRAY_SIZE(skipped); k++) {
				if (tag_is(t, left, skipped[k]))
					break;
			}
			if (k < ARRAY_SIZE(skipped)) {
				char close[16];
				snprintf(close, sizeof(close), "</%s", skipped[k]);
				size_t end = find_ci(t, left, close);
				i += 1 + end;
				/* then the closing tag itself, as any tag */
			}
			size_t gt = i;
			while (gt < len && p[gt] != '>')
				gt++;
			i = gt + 1;
			buf_append_c(out, ' ');
			continue;
		}
		if (c == '&') {
			const char *e = p + i;
			size_t left = len - i;
			if (left > 2 && e[1] == '#') {
				size_t j = 2;
				bool hex = j < left && (e[j] == 'x' || e[j] == 'X');
				j += hex;
				unsigned long cp = 0;
				size_t digits = 0;
				while (j < left && digits < 8 &&
				       (hex ? isxdigit((unsigned char)e[j]) : isdigit((unsigned char)e[j]))) {
					char d = e[j];
					cp = cp * (hex ? 16 : 10) +
					     (unsigned long)(isdigit((unsigned char)d) ? d - '0' :
							     (tolower((unsigned char)d) - 'a' + 10));
					j++;
					digits++;
				}
				if (digits > 0) {
					append_utf8(out, cp);
					i += j + (j < left && e[j] == ';');
					continue;
				}
			}
			size_t k;
			for (k = 0; k < ARRAY_SIZE(ent); k++) {
				size_t el = strlen(ent[k].name);
				if (left >= el && str_nieq(e, ent[k].name, el)) {
					buf_append_str(out, ent[k].text);
					i += el;
					break;
				}
			}
			if (k < ARRAY_SIZE(ent))
				continue;
		}
		buf_append_c(out, c);
		i++;
	}
}

/* The length of the well-formed UTF-8 sequence at p[0..len) (RFC 3629 4:
 * no overlong form, no surrogate, nothing above U+10FFFF), 0 if there is
 * none. The conversion to UTF-8 lets some malformed bytes through. */
static size_t utf8_seq(const unsigned char *p, size_t len)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 :
		   c >= 0xF0 && c <= 0xF4 ? 4 : 0;
	if (n == 0 || n > len)
		return 0;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	}
	return n;
}

/* Runs of white space and control characters become one space, none at
 * either end; a malformed UTF-8 byte becomes U+FFFD (3.3: the preview is
 * UTF-8); the text is cut after STORE_PREVIEW_CHARS characters. */
static char *preview_finish(const char *p, size_t len)
{
	struct buf out;
	buf_init(&out, 0);
	size_t chars = 0;
	bool space = false;
	for (size_t i = 0; i < len && chars < STORE_PREVIEW_CHARS;) {
		unsigned char c = (unsigned char)p[i];
		/* U+00A0 (no-break space, as &nbsp; and many mailers make it)
		 * counts as white space too. */
		if (c <= 0x20 || c == 0x7F || (c == 0xC2 && i + 1 < len && (unsigned char)p[i + 1] == 0xA0)) {
			space = out.len > 0;
			i += c == 0xC2 ? 2 : 1;
			continue;
		}
		size_t n = utf8_seq((const unsigned char *)p + i, len - i);
		/* C1 controls (U+0080..U+009F) go like C0 ones. */
		if (n == 2 && c == 0xC2 && (unsigned char)p[i + 1] < 0xA0) {
			space = out.len > 0;
			i += 2;
			continue;
		}
		if (space) {
			/* a space only with a character after it */
			if (chars + 2 > STORE_PREVIEW_CHARS)
				break;
			buf_append_c(&out, ' ');
			chars++;
			space = false;
		}
		if (n == 0) {
			buf_append_str(&out, "\xef\xbf\xbd");
			n = 1;
		} else {
			buf_append(&out, p + i, n);
		}
		chars++;
		i += n;
	}
	return out.data ? buf_steal(&out, NULL) : xstrdup("");
}

void store_preview_compute(const struct mime_message *msg, int fd, char **preview_r)
{
	const struct mime_part *part = preview_part(mime_message_root(msg), 0);
	if (part == NULL) {
		*preview_r = xstrdup("");
		return;
	}
	struct mime_range r = mime_part_body(part);
	struct buf raw, dec, utf8;
	buf_init(&raw, PREVIEW_READ_MAX);
	buf_init(&dec, PREVIEW_READ_MAX);
	buf_init(&utf8, 4 * PREVIEW_READ_MAX);
	(void)pread_range(fd, r.start, r.len < PREVIEW_READ_MAX ? r.len : PREVIEW_READ_MAX, &raw);
	const char *in = raw.data ? raw.data : "";
	switch (mime_part_cte(part)) {
	case MIME_CTE_BASE64:
		(void)decode_base64(in, raw.len, &dec);
		break;
	case MIME_CTE_QP:
		(void)decode_qp(in, raw.len, &dec);
		break;
	default:
		(void)buf_append(&dec, in, raw.len);
		break;
	}
	const char *charset = mime_part_param(part, "charset");
	if (dec.len > 0 &&
	    charset_to_utf8(charset ? charset : "us-ascii", dec.data, dec.len, &utf8) == -2)
		(void)charset_to_utf8("utf-8", dec.data, dec.len, &utf8);
	*preview_r = store_preview_text(str_ieq(mime_part_subtype(part), "html"),
					utf8.data ? utf8.data : "", utf8.len);
	buf_deinit(&raw);
	buf_deinit(&dec);
	buf_deinit(&utf8);
}

char *store_preview_text(bool html, const char *utf8, size_t len)
{
	if (!html)
		return preview_finish(utf8, len);
	struct buf text;
	buf_init(&text, 0);
	preview_html(utf8, len, &text);
	char *r = preview_finish(text.data ? text.data : "", text.len);
	buf_deinit(&text);
	return r;
}

int store_msg_preview_make(struct store *s, const struct store_msg *msg, char **preview_r)
{
	int fd = store_msg_open(s, msg);
	if (fd < 0)
		return -1;
	struct mime_parser *p = mime_parser_new(NULL);
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		mime_parser_feed(p, chunk, (size_t)n);
	if (n < 0) {
		int err = errno;
		mime_parser_free(&p);
		close(fd);
		errno = err;
		return -1;
	}
	struct mime_message *mm;
	mime_parser_finish(&p, &mm);
	store_preview_compute(mm, fd, preview_r);
	mime_message_free(&mm);
	close(fd);
	return 0;
}

int store_message_preview(struct store_reader *r, int64_t message_id, char **preview_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(r->db, "SELECT preview FROM messages WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st), res = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*preview_r = xstrdup((const char *)sqlite3_column_text(st, 0));
		res = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		res = -1;
	}
	sqlite3_finalize(st);
	return res;
}

struct preview_job {
	struct store_job job;	/* first: the writer sees only this */
	int64_t message_id;
	char *preview;
};

static int preview_apply(struct store_job *job, sqlite3 *db)
{
	struct preview_job *j = (struct preview_job *)job;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "UPDATE messages SET preview = ? WHERE id = ? AND preview IS NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, j->preview, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, j->message_id);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return r;
}

static void preview_finish_job(struct store_job *job, int result UNUSED)
{
	struct preview_job *j = (struct preview_job *)job;
	free(j->preview);
	free(j);
}

void store_preview_save(struct store *s, int64_t message_id, const char *preview)
{
	struct preview_job *j = xcalloc(1, sizeof(*j));
	j->job.apply = preview_apply;
	j->job.finish = preview_finish_job;
	j->message_id = message_id;
	j->preview = xstrdup(preview);
	store_writer_submit(s, &j->job);
}

static int collect_uids(sqlite3_stmt *st, uint32_t **uids_r, size_t *count_r)
{
	size_t n = 0, cap = 0;
	uint32_t *v = NULL;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xrealloc(v, cap * sizeof(*v));
		}
		v[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	*uids_r = v;
	*count_r = n;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* yubin_contains(haystack, needle): case-folded substring (SQL function). */
static void sql_contains(sqlite3_context *ctx, int argc UNUSED, sqlite3_value **argv)
{
	const char *hay = (const char *)sqlite3_value_text(argv[0]);
	const char *needle = (const char *)sqlite3_value_text(argv[1]);
	if (hay == NULL || needle == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	sqlite3_result_int(ctx, text_contains_fold(hay, (size_t)sqlite3_value_bytes(argv[0]),
						   needle));
}

/* Characters, not bytes: the trigram tokenizer counts characters. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static char *buf_take(struct buf *b, size_t *len_r)
{
	*len_r = b->len;
	char *v = xmalloc(b->len + 1);
	if (b->len > 0)
		memcpy(v, b->data, b->len);
	v[b->len] = '\0';
	return v;
}

int store_msg_text(struct store *s, const struct store_msg *msg, char **header_r,
		   size_t *header_len_r, char **body_r, size_t *body_len_r, bool *complete_r)
{
	struct mime_message *mm = store_msg_parse(s, msg);
	if (mm == NULL)
		return -1;
	int fd = store_msg_open(s, msg);
	if (fd < 0) {
		mime_message_free(&mm);
		return -1;
	}
	struct store_text t;
	store_text_extract(mm, fd, STORE_SEARCH_TEXT_MAX, &t);
	close(fd);
	mime_message_free(&mm);
	*header_r = buf_take(&t.header, header_len_r);
	*body_r = buf_take(&t.body, body_len_r);
	*complete_r = t.complete;
	store_text_deinit(&t);
	return 0;
}

void store_text_hits_deinit(struct store_text_hits *h)
{
	free(h->match);
	free(h->unindexed);
	free(h->pending);
	memset(h, 0, sizeof(*h));
}

int store_text_search(struct store_reader *r, int64_t mailbox_id, enum store_text_where where,
		      const char *needle, struct store_text_hits *h)
{
	static const char *const columns[] = { "header", "body", NULL };
	memset(h, 0, sizeof(*h));
	struct buf sql, arg;
	buf_init(&sql, 0);
	buf_init(&arg, 0);
	if (utf8_chars(needle) >= 3) {
		/* An FTS5 phrase: one string, quotes doubled; with the
		 * trigram tokenizer it matches as a substring. The index is
		 * asked once (IN), not once per message of the mailbox. */
		buf_append_str(&sql, "SELECT m.uid FROM mail m WHERE m.mailbox_id = ?1 AND"
			       " m.message_id IN (SELECT rowid FROM message_text"
			       " WHERE message_text MATCH ?2)"
			       " AND m.message_id NOT IN (SELECT id FROM text_gc)");
		if (where != STORE_TEXT_ALL)
			buf_printf(&arg, "%s : ", columns[where]);
		buf_append_c(&arg, '"');
		for (const char *p = needle; *p; p++) {
			if (*p == '"')
				buf_append_c(&arg, '"');
			buf_append_c(&arg, *p);
		}
		buf_append_c(&arg, '"');
	} else {
		/* Too short for trigrams: the stored text of this mailbox's
		 * messages is scanned, case folded as the trigram index folds
		 * (LIKE would fold ASCII only). */
		sqlite3_create_function(r->db, "yubin_contains", 2,
					SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_contains,
					NULL, NULL);
		buf_append_str(&sql, "SELECT m.uid FROM mail m JOIN message_text t"
			       " ON t.rowid = m.message_id WHERE m.mailbox_id = ?1 AND"
			       " m.message_id NOT IN (SELECT id FROM text_gc) AND ");
		buf_append_str(&arg, needle);
		if (where == STORE_TEXT_ALL)
			buf_append_str(&sql, "(yubin_contains(t.header, ?2) OR yubin_contains(t.body, ?2))");
		else
			buf_printf(&sql, "yubin_contains(t.%s, ?2)", columns[where]);
	}
	buf_append_str(&sql, " ORDER BY m.uid");
	sqlite3_stmt *st = NULL, *un = NULL, *pend = NULL;
	int result = -1;
	/* One read transaction: a message indexed between the queries would
	 * otherwise be in none of the lists. */
	bool in_tx = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	if (!in_tx ||
	    sqlite3_prepare_v2(r->db, sql.data, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT m.uid FROM mail m JOIN messages g ON g.id = m.message_id"
			       " WHERE m.mailbox_id = ? AND g.text_indexed IS NULL"
			       " ORDER BY m.uid", -1, &un, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "SELECT m.uid FROM mail m JOIN messages g ON g.id = m.message_id"
			       " WHERE m.mailbox_id = ? AND g.text_indexed IN (0, "
			       STORE_TEXT_PENDING_SQL ") ORDER BY m.uid", -1, &pend, NULL) != SQLITE_OK) {
		log_error("event=text_search_failed error=\"%s\"", sqlite3_errmsg(r->db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, arg.data, (int)arg.len, SQLITE_STATIC);
	sqlite3_bind_int64(un, 1, mailbox_id);
	sqlite3_bind_int64(pend, 1, mailbox_id);
	if (collect_uids(st, &h->match, &h->match_count) < 0 ||
	    collect_uids(un, &h->unindexed, &h->unindexed_count) < 0 ||
	    collect_uids(pend, &h->pending, &h->pending_count) < 0) {
		log_error("event=text_search_failed error=\"%s\"", sqlite3_errmsg(r->db));
		store_text_hits_deinit(h);
		goto out;
	}
	result = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(un);
	sqlite3_finalize(pend);
	if (in_tx)
		sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
	buf_deinit(&sql);
	buf_deinit(&arg);
	return result;
}
