/* FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2; BINARY, RFC 3516).
 *
 * Responses are written message by message; when the connection has more
 * than FETCH_OUTPUT_HIGH bytes waiting, the command stops and goes on when
 * the output drains (on_drain), so fetching many or large messages never
 * holds more than one message and that much output in memory.
 *
 * ENVELOPE, BODY and BODYSTRUCTURE, and the byte ranges of the parts, were
 * computed by the MIME parser when the message was stored (store_mime):
 * a FETCH reads them with one primary-key lookup and never parses, and
 * BODY[section] reads only the section's bytes from the body file. Rows
 * stored before that cache existed are parsed when fetched.
 *
 * A message as a client sees it is the per-recipient prefix (Return-Path,
 * Delivered-To) followed by the shared body file; part ranges are offsets
 * into the file, so a range that starts at 0 (the top-level header, or the
 * whole message) takes the prefix in and every other range moves by its
 * length. */
#include "imap/imap_private.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "mime/mime.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FETCH_OUTPUT_HIGH (256 * 1024)
#define FETCH_SECTIONS_MAX 32
/* A section part path ("1.2.3"): deeper than the MIME parser's nesting
 * limit is never needed. */
#define FETCH_PART_MAX 512

enum section_text {
	TEXT_NONE,		/* BODY[] or BODY[1.2]: the whole message or part body */
	TEXT_HEADER,
	TEXT_TEXT,
	TEXT_FIELDS,		/* HEADER.FIELDS (...) */
	TEXT_FIELDS_NOT,	/* HEADER.FIELDS.NOT (...) */
	TEXT_MIME,		/* 1.MIME: the part's own header */
};

enum section_type {
	SECTION_BODY,		/* BODY[...], RFC822, RFC822.HEADER, RFC822.TEXT */
	SECTION_BINARY,		/* BINARY[...] (RFC 3516) */
	SECTION_BINARY_SIZE,	/* BINARY.SIZE[...] */
};

struct section {
	enum section_type type;
	enum section_text text;
	char *part;		/* "1.2", or "" for the message itself */
	bool peek;
	char *name;		/* how the response names it */
	char **fields;		/* HEADER.FIELDS(.NOT) names */
	size_t field_count;
	bool partial;
	uint64_t start, count;
};

#define ITEM_UID 0x01
#define ITEM_FLAGS 0x02
#define ITEM_INTERNALDATE 0x04
#define ITEM_SIZE 0x08
#define ITEM_ENVELOPE 0x10
#define ITEM_BODY 0x20
#define ITEM_BODYSTRUCTURE 0x40
#define ITEM_MODSEQ 0x80	/* RFC 7162 3.1.4.2 */
#define ITEM_EMAILID 0x100	/* RFC 8474 5.3 */
#define ITEM_THREADID 0x200
#define ITEM_SAVEDATE 0x400	/* RFC 8514 4.2 */
#define ITEM_PREVIEW 0x800	/* RFC 8970 3 */
#define ITEMS_MIME (ITEM_ENVELOPE | ITEM_BODY | ITEM_BODYSTRUCTURE)

/* Why a message's response was left out; the tagged reply says so. */
enum fetch_error {
	FETCH_ERR_NONE,
	FETCH_ERR_EXPUNGED,	/* its body is gone: expunged by another session */
	FETCH_ERR_UNKNOWN_CTE,	/* BINARY of an encoding we cannot decode */
	FETCH_ERR_SERVER,	/* anything else: logged */
};

struct imap_fetch {
	unsigned items;
	bool preview_lazy;	/* PREVIEW (LAZY): NIL rather than a parse */
	struct section sections[FETCH_SECTIONS_MAX];
	size_t section_count;
	size_t *positions;	/* indexes into the view */
	size_t count, next;
	uint32_t *seen;		/* UIDs to mark \Seen */
	size_t seen_count;
	enum fetch_error error;	/* the worst seen */
};

void imap_fetch_free(struct imap_fetch **fp)
{
	struct imap_fetch *f = *fp;
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->section_count; i++) {
		free(f->sections[i].name);
		free(f->sections[i].part);
		for (size_t k = 0; k < f->sections[i].field_count; k++)
			free(f->sections[i].fields[k]);
		free(f->sections[i].fields);
	}
	free(f->positions);
	free(f->seen);
	free(f);
	*fp = NULL;
}

/* ---- parsing the items ---- */

/* RFC 9051 9: header-fld-name = astring; inside the brackets of an atom
 * the parser left it raw, so atoms and quoted strings are read here. */
static bool field_name_char(char c)
{
	/* ASTRING-CHAR less what ends the list; a field name is printable
	 * ASCII without ":" (RFC 5322 3.6.8), and more is never useful. */
	return c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '"' && c != '\\' &&
	       c != '{' && c != ':' && c != '%' && c != '*' && c != ']';
}

/* Parses " (name name ...)" at *p (leading space included) up to the
 * closing parenthesis. */
static int parse_header_list(const char **pp, struct section *sec)
{
	const char *p = *pp;
	if (p[0] != ' ' || p[1] != '(')
		return -1;
	p += 2;
	for (;;) {
		struct buf name;
		buf_init(&name, 256);
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				if (*p == '\0' || !field_name_char(*p) ||
				    buf_append_c(&name, *p) < 0) {
					buf_deinit(&name);
					return -1;
				}
			}
			p++;
		} else {
			for (; field_name_char(*p); p++) {
				if (buf_append_c(&name, *p) < 0) {
					buf_deinit(&name);
					return -1;
				}
			}
		}
		if (name.len == 0) {
			buf_deinit(&name);
			return -1;
		}
		sec->fields = xrealloc(sec->fields, (sec->field_count + 1) * sizeof(char *));
		sec->fields[sec->field_count++] = buf_steal(&name, NULL);
		if (*p == ')')
			break;
		if (*p != ' ')
			return -1;
		p++;
	}
	*pp = p + 1;
	return 0;
}

/* section-part = nz-number *("." nz-number). Leaves *pp after the part,
 * on the "." that starts a section-text if there is one. */
static int parse_part(const char **pp, struct buf *part)
{
	const char *p = *pp;
	while (*p >= '1' && *p <= '9') {
		uint64_t n = 0;
		const char *d = p;
		while (*p >= '0' && *p <= '9' && n <= UINT32_MAX)
			n = n * 10 + (uint64_t)(*p++ - '0');
		if (n > UINT32_MAX || part->len + (size_t)(p - d) + 1 > FETCH_PART_MAX)
			return -1;
		if (part->len > 0)
			buf_append_c(part, '.');
		buf_append(part, d, (size_t)(p - d));
		if (*p != '.' || !(p[1] >= '0' && p[1] <= '9'))
			break;
		p++;
	}
	if (*p >= '0' && *p <= '9')
		return -1;	/* a leading zero */
	*pp = p;
	return 0;
}

/* "<start.count>" (RFC 9051 9: partial = "<" number "." nz-number ">"). */
static int parse_partial(const char *p, struct section *sec)
{
	uint64_t v[2] = { 0, 0 };
	for (int k = 0; k < 2; k++) {
		const char *d = ++p;
		while (*p >= '0' && *p <= '9' && v[k] <= UINT32_MAX)
			v[k] = v[k] * 10 + (uint64_t)(*p++ - '0');
		if (p == d || v[k] > UINT32_MAX || *p != (k == 0 ? '.' : '>'))
			return -1;
	}
	if (p[1] != '\0' || v[1] == 0)
		return -1;
	sec->partial = true;
	sec->start = v[0];
	sec->count = v[1];
	return 0;
}

/* Parses "BODY[...]<a.b>", "BODY.PEEK[...]", "BINARY[...]",
 * "BINARY.PEEK[...]" or "BINARY.SIZE[...]" into a section. Returns 0, or
 * -1 with *why. */
static int parse_section_item(const char *item, struct section *sec, const char **why)
{
	const char *open = strchr(item, '[');
	size_t plen = (size_t)(open - item);
	*why = "invalid section";
	if (plen == 4 && str_nieq(item, "BODY", 4)) {
		sec->type = SECTION_BODY;
	} else if (plen == 9 && str_nieq(item, "BODY.PEEK", 9)) {
		sec->type = SECTION_BODY;
		sec->peek = true;
	} else if (plen == 6 && str_nieq(item, "BINARY", 6)) {
		sec->type = SECTION_BINARY;
	} else if (plen == 11 && str_nieq(item, "BINARY.PEEK", 11)) {
		sec->type = SECTION_BINARY;
		sec->peek = true;
	} else if (plen == 11 && str_nieq(item, "BINARY.SIZE", 11)) {
		sec->type = SECTION_BINARY_SIZE;
		sec->peek = true;
	} else {
		*why = "unknown FETCH item";
		return -1;
	}
	const char *p = open + 1;
	struct buf part;
	buf_init(&part, 0);
	if (parse_part(&p, &part) < 0) {
		buf_deinit(&part);
		return -1;
	}
	sec->part = part.len ? buf_steal(&part, NULL) : xstrdup("");
	buf_deinit(&part);
	bool has_part = sec->part[0] != '\0';
	if (has_part && *p == '.') {
		if (*++p == ']')
			return -1;	/* "1." */
	} else if (has_part && *p != ']') {
		return -1;
	}
	if (sec->type != SECTION_BODY) {
		/* section-binary = "[" [section-part] "]" */
		if (*p != ']') {
			*why = "BINARY takes a part number only";
			return -1;
		}
	} else if (*p == ']') {
		sec->text = TEXT_NONE;
	} else if (str_istarts(p, "HEADER.FIELDS.NOT")) {
		sec->text = TEXT_FIELDS_NOT;
		p += 17;
	} else if (str_istarts(p, "HEADER.FIELDS")) {
		sec->text = TEXT_FIELDS;
		p += 13;
	} else if (str_istarts(p, "HEADER")) {
		sec->text = TEXT_HEADER;
		p += 6;
	} else if (str_istarts(p, "TEXT")) {
		sec->text = TEXT_TEXT;
		p += 4;
	} else if (has_part && str_istarts(p, "MIME")) {
		sec->text = TEXT_MIME;
		p += 4;
	} else {
		return -1;
	}
	if ((sec->text == TEXT_FIELDS || sec->text == TEXT_FIELDS_NOT) &&
	    parse_header_list(&p, sec) < 0) {
		*why = "invalid header field list";
		return -1;
	}
	if (*p != ']')
		return -1;
	const char *close = p;
	/* The response names the section as asked, without PEEK and without
	 * the partial's length (RFC 9051 7.5.2). */
	struct buf name;
	buf_init(&name, 0);
	buf_printf(&name, "%s[%.*s]", sec->type == SECTION_BODY ? "BODY" :
		   sec->type == SECTION_BINARY ? "BINARY" : "BINARY.SIZE",
		   (int)(close - open - 1), open + 1);
	if (close[1] == '<') {
		if (sec->type == SECTION_BINARY_SIZE || parse_partial(close + 1, sec) < 0) {
			buf_deinit(&name);
			*why = "invalid partial range";
			return -1;
		}
		buf_printf(&name, "<%llu>", (unsigned long long)sec->start);
	} else if (close[1] != '\0') {
		buf_deinit(&name);
		return -1;
	}
	sec->name = buf_steal(&name, NULL);
	return 0;
}

static int add_item(struct imap_fetch *f, const struct imap_arg *a, bool alone,
		    const char **why)
{
	if (a->type != IMAP_ARG_ATOM) {
		*why = "FETCH items are atoms";
		return -1;
	}
	const char *it = a->str;
	static const struct {
		const char *name;
		unsigned items;
		bool macro;	/* only alone, not in a list (RFC 9051 9 fetch) */
	} simple[] = {
		{ "UID", ITEM_UID, false },
		{ "FLAGS", ITEM_FLAGS, false },
		{ "INTERNALDATE", ITEM_INTERNALDATE, false },
		{ "RFC822.SIZE", ITEM_SIZE, false },
		{ "ENVELOPE", ITEM_ENVELOPE, false },
		{ "BODY", ITEM_BODY, false },
		{ "BODYSTRUCTURE", ITEM_BODYSTRUCTURE, false },
		{ "MODSEQ", ITEM_MODSEQ, false },
		{ "EMAILID", ITEM_EMAILID, false },
		{ "THREADID", ITEM_THREADID, false },
		{ "SAVEDATE", ITEM_SAVEDATE, false },
		{ "PREVIEW", ITEM_PREVIEW, false },
		{ "FAST", ITEM_FLAGS | ITEM_INTERNALDATE | ITEM_SIZE, true },
		{ "ALL", ITEM_FLAGS | ITEM_INTERNALDATE | ITEM_SIZE | ITEM_ENVELOPE, true },
		{ "FULL", ITEM_FLAGS | ITEM_INTERNALDATE | ITEM_SIZE | ITEM_ENVELOPE | ITEM_BODY, true },
	};
	for (size_t i = 0; i < ARRAY_SIZE(simple); i++) {
		if (str_ieq(it, simple[i].name)) {
			if (simple[i].macro && !alone) {
				*why = "FAST, ALL and FULL cannot be in a list";
				return -1;
			}
			f->items |= simple[i].items;
			return 0;
		}
	}
	static const struct {
		const char *name;
		enum section_text text;
		bool peek;
	} rfc822[] = {
		{ "RFC822", TEXT_NONE, false },
		/* RFC 9051 6.4.5: RFC822.HEADER is BODY.PEEK[HEADER] */
		{ "RFC822.HEADER", TEXT_HEADER, true },
		{ "RFC822.TEXT", TEXT_TEXT, false },
	};
	struct section *sec = NULL;
	if (f->section_count >= FETCH_SECTIONS_MAX) {
		*why = "too many body sections";
		return -1;
	}
	sec = &f->sections[f->section_count];
	memset(sec, 0, sizeof(*sec));
	for (size_t i = 0; i < ARRAY_SIZE(rfc822); i++) {
		if (str_ieq(it, rfc822[i].name)) {
			sec->type = SECTION_BODY;
			sec->text = rfc822[i].text;
			sec->peek = rfc822[i].peek;
			sec->part = xstrdup("");
			sec->name = xstrdup(rfc822[i].name);
			f->section_count++;
			return 0;
		}
	}
	if (strchr(it, '[') == NULL) {
		*why = "unknown FETCH item";
		return -1;
	}
	/* Counted even on failure, so that imap_fetch_free() frees it. */
	f->section_count++;
	return parse_section_item(it, sec, why);
}

/* ---- one message ---- */

/* What fetch_one knows of the message it is writing. */
struct msg_ctx {
	struct imap_fetch *f;
	const struct store_msg *m;
	int64_t mailbox_id;
	int fd;			/* body file, opened when first needed */
	struct buf prefix;	/* read when first needed: the view holds its length */
	bool mime_loaded;
	struct store_mime mime;
};

static int msg_fail(struct msg_ctx *x, enum fetch_error e)
{
	if (e == FETCH_ERR_SERVER)
		log_error("event=imap_read_failed uid=%u body=%s error=\"%s\"", x->m->uid,
			  x->m->body, strerror(errno));
	if (e > x->f->error)
		x->f->error = e;
	return -1;
}

static enum fetch_error errno_error(void)
{
	return errno == ENOENT ? FETCH_ERR_EXPUNGED : FETCH_ERR_SERVER;
}

static int msg_mime(struct msg_ctx *x)
{
	if (x->mime_loaded)
		return 0;
	int r = store_message_mime(imap_reader(), x->m->message_id, &x->mime);
	if (r == 0)
		r = store_msg_mime_parse(imap_store, x->m, &x->mime) == 0 ? 1 : -1;
	if (r < 0)
		return msg_fail(x, errno_error());
	x->mime_loaded = true;
	return 0;
}

/* Bytes [start, start+len) of the message as the client sees it (prefix +
 * body file) onto out. */
static int msg_read(struct msg_ctx *x, uint64_t start, uint64_t len, struct buf *out)
{
	const struct store_msg *m = x->m;
	if (start < m->prefix_len) {
		if (x->prefix.len == 0) {
			int r = store_msg_prefix(imap_reader(), x->mailbox_id, m->uid, &x->prefix);
			if (r <= 0 || x->prefix.len != m->prefix_len) {
				buf_reset(&x->prefix);
				return msg_fail(x, r < 0 ? FETCH_ERR_SERVER : FETCH_ERR_EXPUNGED);
			}
		}
		size_t n = m->prefix_len - (size_t)start;
		if (n > len)
			n = (size_t)len;
		buf_append(out, x->prefix.data + start, n);
		start += n;
		len -= n;
	}
	if (len == 0)
		return 0;
	if (x->fd < 0 && (x->fd = store_msg_open(imap_store, m)) < 0)
		return msg_fail(x, errno_error());
	off_t off = (off_t)(start - m->prefix_len);
	char chunk[65536];
	while (len > 0) {
		size_t want = len < sizeof(chunk) ? (size_t)len : sizeof(chunk);
		ssize_t n = pread(x->fd, chunk, want, off);
		if (n < 0)
			return msg_fail(x, FETCH_ERR_SERVER);
		if (n == 0)
			break;	/* the file is shorter than its row says */
		buf_append(out, chunk, (size_t)n);
		off += n;
		len -= (uint64_t)n;
	}
	return 0;
}

static bool field_listed(const struct section *sec, const char *name, size_t len)
{
	for (size_t i = 0; i < sec->field_count; i++) {
		if (strlen(sec->fields[i]) == len && str_nieq(sec->fields[i], name, len))
			return true;
	}
	return false;
}

/* The fields of a header block listed (or, for .NOT, not listed), as they
 * are, folds included, and the empty line that ends a header. */
static void filter_fields(const struct section *sec, const char *hdr, size_t len,
			  struct buf *out)
{
	size_t pos = 0;
	struct header_field f;
	int r;
	while ((r = header_next(hdr, len, &pos, &f)) != 0) {
		if (r < 0)
			continue;
		if (field_listed(sec, f.name, f.name_len) != (sec->text == TEXT_FIELDS))
			continue;
		const char *end = f.value + f.value_len;
		buf_append(out, f.name, (size_t)(end - f.name));
		buf_append(out, "\r\n", 2);
	}
	buf_append(out, "\r\n", 2);
}

/* Decodes a leaf body for BINARY (RFC 3516 4.2). */
static int binary_decode(struct msg_ctx *x, enum mime_cte cte, struct buf *raw,
			 struct buf *out)
{
	switch (cte) {
	case MIME_CTE_BASE64:
		return decode_base64(raw->data ? raw->data : "", raw->len, out);
	case MIME_CTE_QP:
		return decode_qp(raw->data ? raw->data : "", raw->len, out);
	case MIME_CTE_UNKNOWN:
		return msg_fail(x, FETCH_ERR_UNKNOWN_CTE);
	default:
		buf_append(out, raw->data ? raw->data : "", raw->len);
		return 0;
	}
}

/* Cuts the partial range <start.count> out of [*start, *start + *len). */
static void cut_partial(const struct section *sec, uint64_t *start, uint64_t *len)
{
	uint64_t off = sec->start < *len ? sec->start : *len;
	*start += off;
	*len -= off;
	if (*len > sec->count)
		*len = sec->count;
}

/* The section's bytes onto out; *missing_r when the message has no such
 * part (answered with an empty string, as RFC 3501 6.4.5 lets servers),
 * *cut_r when the partial range was applied already: a partial BODY reads
 * only what it sends, as clients fetch large parts in pieces. */
static int section_bytes(struct msg_ctx *x, const struct section *sec, struct buf *out,
			 bool *missing_r, bool *cut_r)
{
	const struct store_msg *m = x->m;
	*missing_r = false;
	*cut_r = false;
	bool plain = sec->type == SECTION_BODY && sec->text != TEXT_FIELDS &&
		     sec->text != TEXT_FIELDS_NOT;
	if (sec->part[0] == '\0' && sec->text == TEXT_NONE) {
		/* The whole message: no lookup needed. */
		uint64_t start = 0, len = m->size;
		if (plain && sec->partial) {
			cut_partial(sec, &start, &len);
			*cut_r = true;
		}
		return msg_read(x, start, len, out);
	}
	if (msg_mime(x) < 0)
		return -1;
	const char *suffix = sec->text == TEXT_NONE ? "" :
			     sec->text == TEXT_TEXT ? "TEXT" :
			     sec->text == TEXT_MIME ? "MIME" : "HEADER";
	char *spec = xasprintf("%s%s%s", sec->part, sec->part[0] && *suffix ? "." : "", suffix);
	struct mime_section ms;
	int r = mime_parts_lookup(x->mime.parts, x->mime.parts_len, spec, &ms);
	free(spec);
	if (r < 0) {
		*missing_r = true;
		return 0;
	}
	/* Into the message's coordinates (see the top of the file). */
	uint64_t start = ms.range.start, len = ms.range.len;
	if (start == 0)
		len += m->prefix_len;
	else
		start += m->prefix_len;

	if (sec->text == TEXT_FIELDS || sec->text == TEXT_FIELDS_NOT) {
		struct buf hdr;
		buf_init(&hdr, 0);
		r = msg_read(x, start, len, &hdr);
		if (r == 0)
			filter_fields(sec, hdr.data ? hdr.data : "", hdr.len, out);
		buf_deinit(&hdr);
		return r;
	}
	if (plain || !ms.leaf_body) {
		if (plain && sec->partial) {
			cut_partial(sec, &start, &len);
			*cut_r = true;
		}
		return msg_read(x, start, len, out);
	}
	struct buf raw;
	buf_init(&raw, 0);
	r = msg_read(x, start, len, &raw);
	if (r == 0)
		r = binary_decode(x, ms.cte, &raw, out);
	buf_deinit(&raw);
	return r;
}

static void internaldate(int64_t t, char out[40])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 40, "%d-%b-%Y %H:%M:%S +0000", &tm);
}

/* RFC 8970: the preview stored with the message, or made now from its
 * body file (and stored for next time) for a message from before; with
 * LAZY that is not done and NIL answers (4.1). Returns 0 or -1. */
static int write_preview(struct msg_ctx *x, struct buf *b)
{
	char *pv = NULL;
	int r = store_message_preview(imap_reader(), x->m->message_id, &pv);
	if (r < 0) {
		errno = EIO;
		return msg_fail(x, FETCH_ERR_SERVER);
	}
	if (r == 0 && x->f->preview_lazy) {
		buf_append_str(b, "PREVIEW NIL");
		return 0;
	}
	if (r == 0) {
		if (store_msg_preview_make(imap_store, x->m, &pv) < 0)
			return msg_fail(x, errno_error());
		store_preview_save(imap_store, x->m->message_id, pv);
	}
	buf_append_str(b, "PREVIEW ");
	imap_append_astring(b, pv, strlen(pv));
	free(pv);
	return 0;
}

/* Appends one section's value: "NAME {n}\r\n..." (or "~{n}" for BINARY
 * content with NUL, RFC 3516 4.3). Returns 0 or -1 (message skipped). */
static int write_section(struct msg_ctx *x, const struct section *sec, struct buf *b)
{
	struct buf data;
	buf_init(&data, 0);
	bool missing, cut;
	if (section_bytes(x, sec, &data, &missing, &cut) < 0) {
		buf_deinit(&data);
		return -1;
	}
	const char *p = data.data ? data.data : "";
	size_t n = data.len;
	if (sec->type == SECTION_BINARY_SIZE) {
		buf_printf(b, "%s %zu", sec->name, n);
	} else if (missing) {
		buf_printf(b, "%s \"\"", sec->name);
	} else {
		if (sec->partial && !cut) {
			uint64_t start = 0, len = n;
			cut_partial(sec, &start, &len);
			p += start;
			n = (size_t)len;
		}
		bool binary = sec->type == SECTION_BINARY && memchr(p, '\0', n) != NULL;
		buf_printf(b, "%s %s{%zu}\r\n", sec->name, binary ? "~" : "", n);
		buf_append(b, p, n);
	}
	buf_deinit(&data);
	return 0;
}

/* One message's FETCH response. */
static void fetch_one(struct imap_session *s, struct imap_fetch *f, size_t pos)
{
	const struct store_msg *m = &s->view.msgs[pos];
	struct msg_ctx x = { .f = f, .m = m, .mailbox_id = s->view.info.id, .fd = -1 };
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "* %zu FETCH (", pos + 1);
	const char *sep = "";
	int r = 0;
	if (f->items & ITEM_UID) {
		buf_printf(&b, "UID %u", m->uid);
		sep = " ";
	}
	if (f->items & ITEM_MODSEQ) {
		buf_printf(&b, "%sMODSEQ (%llu)", sep, (unsigned long long)m->modseq);
		sep = " ";
	}
	if (f->items & ITEM_FLAGS) {
		buf_printf(&b, "%sFLAGS ", sep);
		imap_append_view_flags(s, &b, pos);
		sep = " ";
	}
	if (f->items & ITEM_INTERNALDATE) {
		char d[40];
		internaldate(m->internaldate, d);
		buf_printf(&b, "%sINTERNALDATE \"%s\"", sep, d);
		sep = " ";
	}
	if (f->items & ITEM_SIZE) {
		buf_printf(&b, "%sRFC822.SIZE %llu", sep, (unsigned long long)m->size);
		sep = " ";
	}
	if (f->items & ITEM_SAVEDATE) {
		char d[40];
		internaldate(m->savedate, d);
		buf_printf(&b, "%sSAVEDATE \"%s\"", sep, d);
		sep = " ";
	}
	char id[STORE_MSGID_MAX];
	if (f->items & ITEM_EMAILID) {
		store_msgid_format('M', m->emailid, id);
		buf_printf(&b, "%sEMAILID (%s)", sep, id);
		sep = " ";
	}
	if (f->items & ITEM_THREADID) {
		store_msgid_format('T', m->threadid, id);
		buf_printf(&b, "%sTHREADID (%s)", sep, id);
		sep = " ";
	}
	if (f->items & ITEM_PREVIEW) {
		buf_append_str(&b, sep);
		r = write_preview(&x, &b);
		sep = " ";
	}
	if (r == 0 && (f->items & ITEMS_MIME) && (r = msg_mime(&x)) == 0) {
		if (f->items & ITEM_ENVELOPE) {
			buf_printf(&b, "%sENVELOPE ", sep);
			buf_append(&b, x.mime.envelope, x.mime.envelope_len);
			sep = " ";
		}
		if (f->items & ITEM_BODY) {
			buf_printf(&b, "%sBODY ", sep);
			buf_append(&b, x.mime.body, x.mime.body_len);
			sep = " ";
		}
		if (f->items & ITEM_BODYSTRUCTURE) {
			buf_printf(&b, "%sBODYSTRUCTURE ", sep);
			buf_append(&b, x.mime.bodystructure, x.mime.bodystructure_len);
			sep = " ";
		}
	}
	bool seen = false;
	for (size_t i = 0; r == 0 && i < f->section_count; i++) {
		const struct section *sec = &f->sections[i];
		buf_append_str(&b, sep);
		r = write_section(&x, sec, &b);
		sep = " ";
		if (!sec->peek)
			seen = true;
	}
	if (x.fd >= 0)
		close(x.fd);
	buf_deinit(&x.prefix);
	store_mime_deinit(&x.mime);
	if (r == 0) {
		/* RFC 9051 6.4.5: the \Seen flag set by BODY[] is reported
		 * with the FETCH response once it is stored (seen_done). */
		if (seen && !s->view.readonly && !(m->flags & STORE_FLAG_SEEN)) {
			f->seen = xrealloc(f->seen, (f->seen_count + 1) * sizeof(*f->seen));
			f->seen[f->seen_count++] = m->uid;
		}
		buf_append_str(&b, ")\r\n");
		conn_write(s->conn, b.data, b.len);
	}
	buf_deinit(&b);
}

/* The tagged reply, after the \Seen update if there was one. */
static void fetch_reply(struct imap_session *s, enum fetch_error error)
{
	/* No EXPUNGE during FETCH (RFC 9051 7.5.1). */
	imap_sync(s, false);
	switch (error) {
	case FETCH_ERR_NONE:
		imap_tagged(s, "OK", "FETCH completed");
		break;
	case FETCH_ERR_EXPUNGED:
		/* RFC 9051 7.1: the message is gone for another session; it
		 * will hear of the EXPUNGE at its next command. */
		imap_tagged(s, "NO", "[EXPUNGEISSUED] Some messages were expunged");
		break;
	case FETCH_ERR_UNKNOWN_CTE:
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Cannot decode the part's Content-Transfer-Encoding");
		break;
	case FETCH_ERR_SERVER:
		imap_tagged(s, "NO", "[SERVERBUG] Some messages could not be read");
		break;
	}
}

struct seen_ctx {
	struct imap_session *s;
	enum fetch_error error;
};

static void seen_done(void *arg, int result UNUSED)
{
	struct seen_ctx *c = arg;
	struct imap_session *s = c->s;
	if (s->conn != NULL)
		fetch_reply(s, c->error);
	free(c);
	imap_command_done(s);
}

void imap_fetch_continue(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	if (f == NULL || s->conn == NULL)
		return;
	while (f->next < f->count) {
		if (conn_output_pending(s->conn) > FETCH_OUTPUT_HIGH)
			return;	/* on_drain brings us back */
		fetch_one(s, f, f->positions[f->next++]);
	}
	/* Done: mark what was read \Seen (RFC 9051 6.4.5), then report. */
	uint32_t *seen = f->seen;
	size_t seen_count = f->seen_count;
	enum fetch_error error = f->error;
	f->seen = NULL;
	imap_fetch_free(&s->fetch);
	if (seen_count > 0) {
		struct seen_ctx *c = xmalloc(sizeof(*c));
		c->s = s;
		c->error = error;
		s->busy = true;
		conn_pause_read(s->conn);
		store_flags_update(imap_store, s->view.info.id, seen, seen_count,
				   STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
				   STORE_UNCHANGEDSINCE_NONE, NULL, conn_loop(s->conn), seen_done, c);
		free(seen);
		return;
	}
	free(seen);
	fetch_reply(s, error);
	xfree(&s->tag);
	conn_resume_read(s->conn);
}

/* FETCH modifiers (RFC 4466 2.4): CHANGEDSINCE and, for UID FETCH with
 * QRESYNC enabled, VANISHED (RFC 7162 3.1.4.1, 3.2.6). Returns NULL or
 * why they are bad. */
static const char *fetch_modifiers(struct imap_session *s, const struct imap_arg *m, size_t n,
				   bool uid, uint64_t *changedsince_r, bool *vanished_r)
{
	bool changedsince = false;
	for (size_t i = 0; i < n; i++) {
		if (m[i].type != IMAP_ARG_ATOM)
			return "Invalid FETCH modifier";
		if (str_ieq(m[i].str, "CHANGEDSINCE") && !changedsince) {
			if (++i >= n || m[i].type != IMAP_ARG_ATOM ||
			    str_to_u64(m[i].str, changedsince_r) < 0 || *changedsince_r > INT64_MAX)
				return "CHANGEDSINCE takes a mod-sequence";
			changedsince = true;
		} else if (str_ieq(m[i].str, "VANISHED") && !*vanished_r) {
			if (!uid)
				return "VANISHED is for UID FETCH only";
			if (!s->qresync)
				return "VANISHED needs ENABLE QRESYNC";
			*vanished_r = true;
		} else {
			return "Unknown FETCH modifier";
		}
	}
	if (*vanished_r && !changedsince)
		return "VANISHED needs CHANGEDSINCE";
	return changedsince ? NULL : "Unknown FETCH modifier";
}

/* VANISHED (EARLIER) for UID FETCH (VANISHED) (RFC 7162 3.2.6): the UIDs
 * of the set expunged since the mod-sequence, before any FETCH. "*" goes
 * up to the last UID given out, not only the last one present. UIDs the
 * view still holds come later as VANISHED, when the session hears of
 * the expunge. Returns 0 or -1 (store). */
static int fetch_vanished(struct imap_session *s, const char *arg, const struct seqset *set,
			  uint64_t since)
{
	struct imap_view *v = &s->view;
	struct seqset wide = { 0, NULL };
	uint32_t star = v->info.uidnext > 1 ? v->info.uidnext - 1 : 1;
	if (v->count && v->msgs[v->count - 1].uid > star)
		star = v->msgs[v->count - 1].uid;
	bool widened = strcmp(arg, "$") != 0 && seqset_parse(arg, star, &wide) == 0;
	uint32_t *gone;
	size_t n;
	if (store_mailbox_expunged(imap_reader(), v->info.id, since, &gone, &n) < 0) {
		seqset_deinit(&wide);
		return -1;
	}
	struct seqset out = { 0, NULL };
	for (size_t i = 0; i < n; i++) {
		if (seqset_has(widened ? &wide : set, gone[i]) && !seqset_has(&out, gone[i])) {
			size_t lo = 0, hi = v->count;
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				if (v->msgs[mid].uid < gone[i])
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == v->count || v->msgs[lo].uid != gone[i])
				imap_set_add(&out, gone[i]);
		}
	}
	free(gone);
	seqset_deinit(&wide);
	if (out.count > 0) {
		struct buf b;
		buf_init(&b, 0);
		imap_append_set(&b, &out);
		imap_reply(s, "* VANISHED (EARLIER) %s", b.data);
		buf_deinit(&b);
	}
	seqset_deinit(&out);
	return 0;
}

/* preview-mod list (RFC 8970 6): "(" "LAZY" *(SP "LAZY") ")". */
static bool preview_mods(const struct imap_arg *list)
{
	if (list->len == 0)
		return false;
	for (size_t i = 0; i < list->len; i++) {
		if (list->list[i].type != IMAP_ARG_ATOM || !str_ieq(list->list[i].str, "LAZY"))
			return false;
	}
	return true;
}

void imap_cmd_fetch(struct imap_session *s, const struct imap_command *c UNUSED,
		    const struct imap_arg *a, size_t n, bool uid)
{
	/* RFC 8970 6: "PREVIEW (LAZY)" alone, its list before any
	 * modifiers. */
	bool lazy_alone = n >= 3 && a[1].type == IMAP_ARG_ATOM && str_ieq(a[1].str, "PREVIEW") &&
			  a[2].type == IMAP_ARG_LIST && preview_mods(&a[2]);
	size_t mods = lazy_alone ? 3 : 2;
	if (!(n == mods || (n == mods + 1 && a[mods].type == IMAP_ARG_LIST)) ||
	    !imap_arg_is_string(&a[0])) {
		imap_tagged(s, "BAD", "Syntax: FETCH set items [(modifiers)]");
		return;
	}
	uint64_t changedsince = 0;
	bool has_changedsince = false, vanished = false;
	if (n == mods + 1) {
		const char *bad = fetch_modifiers(s, a[mods].list, a[mods].len, uid, &changedsince,
						  &vanished);
		if (bad) {
			imap_tagged(s, "BAD", "%s", bad);
			return;
		}
		has_changedsince = true;
	}
	struct imap_fetch *f = xcalloc(1, sizeof(*f));
	const char *why = "no FETCH items";
	int r = 0;
	if (a[1].type == IMAP_ARG_LIST) {
		if (a[1].len == 0)
			r = -1;	/* RFC 9051 9: "(" fetch-att *(SP fetch-att) ")" */
		for (size_t i = 0; i < a[1].len && r == 0; i++) {
			const struct imap_arg *it = &a[1].list[i];
			if (it->type == IMAP_ARG_LIST) {
				/* only PREVIEW's modifiers (RFC 8970 6) */
				bool after_preview = i > 0 && a[1].list[i - 1].type == IMAP_ARG_ATOM &&
						     str_ieq(a[1].list[i - 1].str, "PREVIEW");
				if (!after_preview || !preview_mods(it)) {
					why = "unknown FETCH item";
					r = -1;
				} else {
					f->preview_lazy = true;
				}
				continue;
			}
			r = add_item(f, it, false, &why);
		}
	} else {
		r = add_item(f, &a[1], true, &why);
		f->preview_lazy = lazy_alone;
	}
	if (uid)
		f->items |= ITEM_UID;
	/* CHANGEDSINCE implies MODSEQ (RFC 7162 3.1.4.1). */
	if (has_changedsince)
		f->items |= ITEM_MODSEQ;
	struct imap_view *v = &s->view;
	struct seqset set;
	if (r == 0 && !uid && v->count == 0) {
		/* RFC 9051 9 seq-number: a number beyond EXISTS is an error,
		 * "*" in an empty mailbox included. */
		why = "Invalid message number: the mailbox is empty";
		r = -1;
	} else if (r == 0 && imap_seqset(s, a[0].str, uid, &set) < 0) {
		why = "invalid sequence set";
		r = -1;
	}
	if (r < 0) {
		imap_fetch_free(&f);
		imap_tagged(s, "BAD", "%s", why);
		return;
	}
	f->positions = xmalloc((v->count ? v->count : 1) * sizeof(*f->positions));
	for (size_t i = 0; i < v->count; i++) {
		if (seqset_has(&set, uid ? v->msgs[i].uid : (uint32_t)i + 1) &&
		    (!has_changedsince || v->msgs[i].modseq > changedsince))
			f->positions[f->count++] = i;
	}
	bool bad_seq = false;
	for (size_t i = 0; !uid && i < set.count; i++)
		bad_seq |= set.r[i].hi > v->count;
	if (bad_seq) {
		/* RFC 9051 6.4.5: message numbers beyond EXISTS are an error. */
		seqset_deinit(&set);
		imap_fetch_free(&f);
		imap_tagged(s, "BAD", "Invalid message number");
		return;
	}
	/* RFC 7162 3.1: FETCH MODSEQ or CHANGEDSINCE enables CONDSTORE. */
	if (f->items & ITEM_MODSEQ)
		imap_condstore_enable(s);
	if (vanished && fetch_vanished(s, a[0].str, &set, changedsince) < 0) {
		seqset_deinit(&set);
		imap_fetch_free(&f);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read the mailbox");
		return;
	}
	seqset_deinit(&set);
	s->fetch = f;
	conn_pause_read(s->conn);
	imap_fetch_continue(s);
}
