/* FETCH and UID FETCH (RFC 9051 6.4.5, 7.5.2).
 *
 * Responses are written message by message; when the connection has more
 * than FETCH_OUTPUT_HIGH bytes waiting, the command stops and goes on when
 * the output drains (on_drain), so fetching many or large messages never
 * holds more than one message and that much output in memory.
 *
 * Not yet: ENVELOPE, BODY, BODYSTRUCTURE, numbered body parts and BINARY
 * (they need the MIME parser's cached results); they are answered BAD. */
#include "imap/imap_private.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/header.h"
#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FETCH_OUTPUT_HIGH (256 * 1024)
#define FETCH_SECTIONS_MAX 32

enum section_kind {
	SECTION_ALL,		/* BODY[] / RFC822 */
	SECTION_HEADER,		/* BODY[HEADER] / RFC822.HEADER */
	SECTION_TEXT,		/* BODY[TEXT] / RFC822.TEXT */
	SECTION_FIELDS,		/* BODY[HEADER.FIELDS (...)] */
	SECTION_FIELDS_NOT,	/* BODY[HEADER.FIELDS.NOT (...)] */
};

struct section {
	enum section_kind kind;
	bool peek;
	char *name;		/* how the response names it */
	char **fields;		/* HEADER.FIELDS(.NOT) names */
	size_t field_count;
	bool partial;
	uint64_t start, count;
};

#define ITEM_UID 0x1
#define ITEM_FLAGS 0x2
#define ITEM_INTERNALDATE 0x4
#define ITEM_SIZE 0x8

struct imap_fetch {
	unsigned items;
	struct section sections[FETCH_SECTIONS_MAX];
	size_t section_count;
	size_t *positions;	/* indexes into the view */
	size_t count, next;
	uint32_t *seen;		/* UIDs to mark \Seen */
	size_t seen_count;
};

void imap_fetch_free(struct imap_fetch **fp)
{
	struct imap_fetch *f = *fp;
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->section_count; i++) {
		free(f->sections[i].name);
		for (size_t k = 0; k < f->sections[i].field_count; k++)
			free(f->sections[i].fields[k]);
		free(f->sections[i].fields);
	}
	free(f->positions);
	free(f->seen);
	free(f);
	*fp = NULL;
}

/* Parses "BODY[...]<a.b>" / "BODY.PEEK[...]" into a section. Returns 0, or
 * -1 with *why. */
static int parse_body_item(const char *item, struct section *sec, const char **why)
{
	const char *open = strchr(item, '['), *close = open ? strchr(open, ']') : NULL;
	*why = "invalid BODY[] item";
	if (open == NULL || close == NULL)
		return -1;
	size_t plen = (size_t)(open - item);
	if (plen == 4 && str_nieq(item, "BODY", 4))
		sec->peek = false;
	else if (plen == 9 && str_nieq(item, "BODY.PEEK", 9))
		sec->peek = true;
	else
		return -1;
	char *spec = xstrndup(open + 1, (size_t)(close - open - 1));
	int r = -1;
	if (*spec == '\0') {
		sec->kind = SECTION_ALL;
	} else if (str_ieq(spec, "HEADER")) {
		sec->kind = SECTION_HEADER;
	} else if (str_ieq(spec, "TEXT")) {
		sec->kind = SECTION_TEXT;
	} else if (str_istarts(spec, "HEADER.FIELDS")) {
		const char *p = spec + 13;
		sec->kind = SECTION_FIELDS;
		if (str_istarts(p, ".NOT")) {
			sec->kind = SECTION_FIELDS_NOT;
			p += 4;
		}
		if (p[0] != ' ' || p[1] != '(' || spec[strlen(spec) - 1] != ')')
			goto out;
		char *list = xstrndup(p + 2, strlen(p + 2) - 1), *save = NULL;
		for (char *t = strtok_r(list, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
			sec->fields = xrealloc(sec->fields, (sec->field_count + 1) * sizeof(char *));
			sec->fields[sec->field_count++] = xstrdup(t[0] == '"' ? t + 1 : t);
			size_t l = strlen(sec->fields[sec->field_count - 1]);
			if (l && sec->fields[sec->field_count - 1][l - 1] == '"')
				sec->fields[sec->field_count - 1][l - 1] = '\0';
		}
		free(list);
		if (sec->field_count == 0)
			goto out;
	} else {
		*why = "body part sections are not supported yet";
		goto out;
	}
	/* The response names the section as asked, without PEEK and without
	 * the partial range's length (RFC 9051 7.5.2). */
	struct buf name;
	buf_init(&name, 0);
	buf_printf(&name, "BODY[%s]", spec);
	const char *rest = close + 1;
	if (*rest == '<') {
		unsigned long long a, b;
		char end;
		if (sscanf(rest, "<%llu.%llu%c", &a, &b, &end) != 3 || end != '>' || b == 0) {
			buf_deinit(&name);
			goto out;
		}
		sec->partial = true;
		sec->start = a;
		sec->count = b;
		buf_printf(&name, "<%llu>", a);
	} else if (*rest != '\0') {
		buf_deinit(&name);
		goto out;
	}
	sec->name = buf_steal(&name, NULL);
	r = 0;
out:
	free(spec);
	return r;
}

static int add_item(struct imap_fetch *f, const struct imap_arg *a, const char **why)
{
	if (a->type != IMAP_ARG_ATOM) {
		*why = "FETCH items are atoms";
		return -1;
	}
	const char *it = a->str;
	struct section *sec = NULL;
	if (str_ieq(it, "UID")) {
		f->items |= ITEM_UID;
	} else if (str_ieq(it, "FLAGS")) {
		f->items |= ITEM_FLAGS;
	} else if (str_ieq(it, "INTERNALDATE")) {
		f->items |= ITEM_INTERNALDATE;
	} else if (str_ieq(it, "RFC822.SIZE")) {
		f->items |= ITEM_SIZE;
	} else if (str_ieq(it, "FAST")) {
		f->items |= ITEM_FLAGS | ITEM_INTERNALDATE | ITEM_SIZE;
	} else if (str_ieq(it, "RFC822") || str_ieq(it, "RFC822.HEADER") ||
		   str_ieq(it, "RFC822.TEXT") || strchr(it, '[') != NULL) {
		if (f->section_count >= FETCH_SECTIONS_MAX) {
			*why = "too many body sections";
			return -1;
		}
		sec = &f->sections[f->section_count];
		memset(sec, 0, sizeof(*sec));
		if (str_ieq(it, "RFC822")) {
			sec->kind = SECTION_ALL;
			sec->name = xstrdup("RFC822");
		} else if (str_ieq(it, "RFC822.HEADER")) {
			sec->kind = SECTION_HEADER;
			sec->peek = true;	/* RFC 9051 6.4.5: does not set \Seen */
			sec->name = xstrdup("RFC822.HEADER");
		} else if (str_ieq(it, "RFC822.TEXT")) {
			sec->kind = SECTION_TEXT;
			sec->name = xstrdup("RFC822.TEXT");
		} else if (parse_body_item(it, sec, why) < 0) {
			for (size_t k = 0; k < sec->field_count; k++)
				free(sec->fields[k]);
			free(sec->fields);
			return -1;
		}
		f->section_count++;
	} else {
		*why = str_ieq(it, "ENVELOPE") || str_ieq(it, "BODYSTRUCTURE") ||
		       str_ieq(it, "BODY") || str_ieq(it, "ALL") || str_ieq(it, "FULL") ?
			"this FETCH item is not supported yet" : "unknown FETCH item";
		return -1;
	}
	return 0;
}

/* Reads the whole message as a reader gets it (prefix + body file). */
static int read_message(const struct store_msg *m, struct buf *out)
{
	buf_append(out, m->prefix, m->prefix_len);
	int fd = store_msg_open(imap_store, m);
	if (fd < 0)
		return -1;
	char chunk[65536];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	close(fd);
	return n < 0 ? -1 : 0;
}

static bool field_listed(const struct section *sec, const char *name, size_t len)
{
	for (size_t i = 0; i < sec->field_count; i++) {
		if (strlen(sec->fields[i]) == len && str_nieq(sec->fields[i], name, len))
			return true;
	}
	return false;
}

/* The bytes of a section of msg into out. */
static void section_bytes(const struct section *sec, const char *msg, size_t len,
			  struct buf *out)
{
	size_t hlen = header_block_len(msg, len);
	switch (sec->kind) {
	case SECTION_ALL:
		buf_append(out, msg, len);
		break;
	case SECTION_HEADER:
		buf_append(out, msg, hlen);
		break;
	case SECTION_TEXT:
		buf_append(out, msg + hlen, len - hlen);
		break;
	case SECTION_FIELDS:
	case SECTION_FIELDS_NOT: {
		size_t pos = 0;
		struct header_field f;
		int r;
		while ((r = header_next(msg, hlen, &pos, &f)) != 0) {
			if (r < 0)
				continue;
			bool listed = field_listed(sec, f.name, f.name_len);
			if (listed != (sec->kind == SECTION_FIELDS))
				continue;
			/* The field as it is, folds included, with its CRLF. */
			const char *end = f.value + f.value_len;
			buf_append(out, f.name, (size_t)(end - f.name));
			buf_append(out, "\r\n", 2);
		}
		buf_append(out, "\r\n", 2);
		break;
	}
	}
}

static void internaldate(int64_t t, char out[40])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 40, "%d-%b-%Y %H:%M:%S +0000", &tm);
}

/* One message's FETCH response. */
static void fetch_one(struct imap_session *s, struct imap_fetch *f, size_t pos)
{
	struct store_msg *m = &s->view.msgs[pos];
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "* %zu FETCH (", pos + 1);
	const char *sep = "";
	if (f->items & ITEM_UID) {
		buf_printf(&b, "UID %u", m->uid);
		sep = " ";
	}
	if (f->items & ITEM_FLAGS) {
		buf_printf(&b, "%sFLAGS ", sep);
		imap_append_flags(&b, m);
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
	if (f->section_count > 0) {
		struct buf msg;
		buf_init(&msg, 0);
		if (read_message(m, &msg) < 0)
			log_error("event=imap_read_failed uid=%u body=%s error=\"%s\"", m->uid,
				  m->body, strerror(errno));
		bool seen = false;
		for (size_t i = 0; i < f->section_count; i++) {
			const struct section *sec = &f->sections[i];
			struct buf part;
			buf_init(&part, 0);
			section_bytes(sec, msg.data ? msg.data : "", msg.len, &part);
			size_t off = 0, n = part.len;
			if (sec->partial) {
				off = sec->start < part.len ? (size_t)sec->start : part.len;
				n = part.len - off;
				if (n > sec->count)
					n = (size_t)sec->count;
			}
			buf_printf(&b, "%s%s {%zu}\r\n", sep, sec->name, n);
			buf_append(&b, part.data ? part.data + off : "", n);
			buf_deinit(&part);
			sep = " ";
			if (!sec->peek)
				seen = true;
		}
		buf_deinit(&msg);
		if (seen && !s->view.readonly && !(m->flags & STORE_FLAG_SEEN)) {
			f->seen = xrealloc(f->seen, (f->seen_count + 1) * sizeof(*f->seen));
			f->seen[f->seen_count++] = m->uid;
		}
	}
	buf_append_str(&b, ")\r\n");
	conn_write(s->conn, b.data, b.len);
	buf_deinit(&b);
}

static void seen_done(void *arg, int result)
{
	struct imap_session *s = arg;
	if (s->conn != NULL) {
		imap_sync(s, false);
		imap_tagged(s, "OK", "FETCH completed");
	}
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
	f->seen = NULL;
	imap_fetch_free(&s->fetch);
	if (seen_count > 0) {
		s->busy = true;
		conn_pause_read(s->conn);
		store_flags_update(imap_store, s->view.info.id, seen, seen_count,
				   STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, conn_loop(s->conn),
				   seen_done, s);
		free(seen);
		return;
	}
	free(seen);
	/* No EXPUNGE during FETCH (RFC 9051 7.5.1). */
	imap_sync(s, false);
	imap_tagged(s, "OK", "FETCH completed");
	xfree(&s->tag);
	conn_resume_read(s->conn);
}

void imap_cmd_fetch(struct imap_session *s, const struct imap_command *c UNUSED,
		    const struct imap_arg *a, size_t n, bool uid)
{
	if (n != 2 || !imap_arg_is_string(&a[0])) {
		imap_tagged(s, "BAD", "Syntax: FETCH set items");
		return;
	}
	struct imap_fetch *f = xcalloc(1, sizeof(*f));
	const char *why = NULL;
	int r = 0;
	if (a[1].type == IMAP_ARG_LIST) {
		for (size_t i = 0; i < a[1].len && r == 0; i++)
			r = add_item(f, &a[1].list[i], &why);
	} else {
		r = add_item(f, &a[1], &why);
	}
	if (uid)
		f->items |= ITEM_UID;
	struct seqset set;
	if (r == 0 && imap_seqset(s, a[0].str, uid, &set) < 0) {
		why = "invalid sequence set";
		r = -1;
	}
	if (r < 0) {
		imap_fetch_free(&f);
		imap_tagged(s, "BAD", "%s", why);
		return;
	}
	struct imap_view *v = &s->view;
	f->positions = xmalloc((v->count ? v->count : 1) * sizeof(*f->positions));
	for (size_t i = 0; i < v->count; i++) {
		if (seqset_has(&set, uid ? v->msgs[i].uid : (uint32_t)i + 1))
			f->positions[f->count++] = i;
	}
	bool bad_seq = false;
	for (size_t i = 0; !uid && i < set.count; i++)
		bad_seq |= set.r[i].hi > v->count;
	seqset_deinit(&set);
	if (bad_seq) {
		/* RFC 9051 6.4.5: message numbers beyond EXISTS are an error. */
		imap_fetch_free(&f);
		imap_tagged(s, "BAD", "Invalid message number");
		return;
	}
	s->fetch = f;
	conn_pause_read(s->conn);
	imap_fetch_continue(s);
}
