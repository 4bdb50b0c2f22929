/* What IMAP SORT and THREAD (RFC 5256, RFC 5957) need of each message,
 * computed once at delivery or APPEND from the parse made while the body
 * was written, and stored in message_sort (one row per messages row): the
 * base subject already extracted (RFC 5256 2.1), whether the subject says
 * reply or forward, the sent date in UTC, the first addresses' mailboxes
 * and display names, the normalised Message-ID and the references THREAD
 * follows. SORT and THREAD read them for a whole mailbox with one query;
 * rows stored before the table existed are parsed from the body file. */
#include "store/store_private.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/mime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- RFC 5256 2.1 base subject ---- */

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP: its length at p, or 0. */
static size_t blob_len(const char *p)
{
	if (*p != '[')
		return 0;
	size_t i = 1;
	while (p[i] != '\0' && p[i] != '[' && p[i] != ']')
		i++;
	if (p[i] != ']')
		return 0;
	i++;
	while (wsp(p[i]))
		i++;
	return i;
}

/* subj-leader's first form, *subj-blob subj-refwd, with subj-refwd =
 * ("re" / ("fw" ["d"])) *WSP [subj-blob] ":": its length at p, or 0. */
static size_t refwd_len(const char *p)
{
	size_t i = 0, b;
	while ((b = blob_len(p + i)) > 0)
		i += b;
	if (str_nieq(p + i, "re", 2)) {
		i += 2;
	} else if (str_nieq(p + i, "fw", 2)) {
		i += 2;
		if (p[i] == 'd' || p[i] == 'D')
			i++;
	} else {
		return 0;
	}
	while (wsp(p[i]))
		i++;
	i += blob_len(p + i);
	return p[i] == ':' ? i + 1 : 0;
}

char *store_base_subject(const char *subject, bool *reply_r)
{
	*reply_r = false;
	/* (1) The subject is decoded already; tabs and line breaks become
	 * spaces, runs of spaces one. */
	size_t n = subject ? strlen(subject) : 0;
	char *s = xmalloc(n + 1);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		char c = subject[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && len > 0 && s[len - 1] == ' ')
			continue;
		s[len++] = c;
	}
	s[len] = '\0';
	size_t start = 0;
	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, from the end. */
		for (;;) {
			if (len > start && s[len - 1] == ' ') {
				len--;
			} else if (len - start >= 5 && str_nieq(s + len - 5, "(fwd)", 5)) {
				len -= 5;
				*reply_r = true;
			} else {
				break;
			}
		}
		s[len] = '\0';
		/* (3)-(5) */
		bool changed = true;
		while (changed) {
			changed = false;
			/* (3) subj-leader = (*subj-blob subj-refwd) / WSP */
			for (;;) {
				size_t r;
				if (wsp(s[start])) {
					start++;
				} else if ((r = refwd_len(s + start)) > 0) {
					start += r;
					*reply_r = true;
				} else {
					break;
				}
				changed = true;
			}
			/* (4) a subj-blob, when a subj-base is left after it */
			size_t b = blob_len(s + start);
			if (b > 0 && start + b < len) {
				start += b;
				changed = true;
			}
		}
		/* (6) subj-fwd-hdr and subj-fwd-trl */
		if (len - start >= 6 && str_nieq(s + start, "[fwd:", 5) && s[len - 1] == ']') {
			start += 5;
			len--;
			s[len] = '\0';
			*reply_r = true;
			continue;
		}
		break;
	}
	memmove(s, s + start, len - start + 1);
	return s;
}

/* ---- RFC 5256 REFERENCES: normalised Message IDs ---- */

/* The next msg-id ("<" id-left "@" id-right ">") at or after *pp, with the
 * quoting, escapes, white space and comments removed, so that
 * <"a b"@x> and <a b@x> compare equal. NULL when none is left. */
static char *next_msgid(const char **pp)
{
	const char *p = *pp;
	for (;;) {
		int depth = 0;
		while (*p != '\0' && (depth > 0 || *p != '<')) {
			if (*p == '\\' && depth > 0 && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && depth > 0)
				depth--;
			p++;
		}
		if (*p == '\0') {
			*pp = p;
			return NULL;
		}
		p++;
		struct buf id;
		buf_init(&id, 0);
		bool quoted = false, ok = true;
		for (; *p != '\0' && (quoted || *p != '>'); p++) {
			if (*p == '"') {
				quoted = !quoted;
			} else if (*p == '\\' && quoted && p[1] != '\0') {
				buf_append_c(&id, *++p);
			} else if (*p == '<' && !quoted) {
				ok = false;	/* "<<x@y>": start again at the inner one */
				break;
			} else if (quoted || (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')) {
				buf_append_c(&id, *p);
			}
		}
		if (*p == '>')
			p++;
		else
			ok = false;
		const char *at = id.data ? strrchr(id.data, '@') : NULL;
		if (ok && at != NULL && at != id.data && at[1] != '\0') {
			*pp = p;
			return buf_steal(&id, NULL);
		}
		buf_deinit(&id);
	}
}

/* ---- the fields ---- */

void store_sort_compute(const struct mime_message *msg, struct store_sort_fields *f)
{
	memset(f, 0, sizeof(*f));
	const struct mime_search_fields *sf = mime_message_search_fields(msg);
	f->base_subject = store_base_subject(sf->subject, &f->reply);
	f->has_date = sf->date_valid;
	f->date = sf->date;
	f->from = xstrdup(sf->sort_from ? sf->sort_from : "");
	f->to = xstrdup(sf->sort_to ? sf->sort_to : "");
	f->cc = xstrdup(sf->sort_cc ? sf->sort_cc : "");
	f->display_from = xstrdup(sf->display_from ? sf->display_from : "");
	f->display_to = xstrdup(sf->display_to ? sf->display_to : "");
	const char *p = sf->message_id ? sf->message_id : "";
	f->message_id = next_msgid(&p);
	/* The references: those of References; without a valid one, the
	 * first valid Message ID of In-Reply-To. */
	struct buf refs;
	buf_init(&refs, 0);
	p = sf->references ? sf->references : "";
	char *id;
	while ((id = next_msgid(&p)) != NULL) {
		if (refs.len > 0)
			buf_append_c(&refs, ' ');
		buf_append_str(&refs, id);
		free(id);
	}
	if (refs.len == 0 && sf->in_reply_to != NULL) {
		p = sf->in_reply_to;
		if ((id = next_msgid(&p)) != NULL) {
			buf_append_str(&refs, id);
			free(id);
		}
	}
	f->refs = refs.len > 0 ? buf_steal(&refs, NULL) : xstrdup("");
	buf_deinit(&refs);
}

void store_sort_fields_deinit(struct store_sort_fields *f)
{
	free(f->base_subject);
	free(f->from);
	free(f->to);
	free(f->cc);
	free(f->display_from);
	free(f->display_to);
	free(f->message_id);
	free(f->refs);
	memset(f, 0, sizeof(*f));
}

static int bind_opt(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int store_sort_insert(sqlite3 *db, int64_t message_id, const struct store_sort_fields *f)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			"INSERT INTO message_sort (id, base_subject, reply, sent_date, sort_from,"
			" sort_to, sort_cc, display_from, display_to, message_id, refs)"
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	sqlite3_bind_text(st, 2, f->base_subject, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, f->reply);
	if (f->has_date)
		sqlite3_bind_int64(st, 4, f->date);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, f->from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, f->to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, f->cc, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, f->display_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, f->display_to, -1, SQLITE_STATIC);
	bind_opt(st, 10, f->message_id);
	sqlite3_bind_text(st, 11, f->refs, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? xstrdup((const char *)v) : NULL;
}

/* A message stored before message_sort existed: parsed from its file. */
static int parse_file(struct store *s, const struct store_msg *m, struct store_sort_fields *f)
{
	struct mime_message *mm = store_msg_parse(s, m);
	if (mm == NULL)
		return -1;
	store_sort_compute(mm, f);
	mime_message_free(&mm);
	return 0;
}

int store_sort_fields_get(struct store_reader *r, int64_t mailbox_id,
			  const struct store_msg *const *msgs, size_t count,
			  struct store_sort_fields *fields_r)
{
	memset(fields_r, 0, count * sizeof(*fields_r));
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(r->db,
			"SELECT m.uid, s.base_subject, s.reply, s.sent_date, s.sort_from, s.sort_to,"
			" s.sort_cc, s.display_from, s.display_to, s.message_id, s.refs"
			" FROM mail m JOIN message_sort s ON s.id = m.message_id"
			" WHERE m.mailbox_id = ? ORDER BY m.uid", -1, &st, NULL) != SQLITE_OK) {
		log_error("event=sort_fields_failed error=\"%s\"", sqlite3_errmsg(r->db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	/* Both in UID order: a merge. */
	size_t i = 0;
	int rc;
	while (i < count && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);
		while (i < count && msgs[i]->uid < uid)
			i++;	/* not in the table: parsed below */
		if (i == count || msgs[i]->uid != uid)
			continue;
		struct store_sort_fields *f = &fields_r[i++];
		f->base_subject = col_text(st, 1);
		f->reply = sqlite3_column_int(st, 2) != 0;
		f->has_date = sqlite3_column_type(st, 3) != SQLITE_NULL;
		f->date = sqlite3_column_int64(st, 3);
		f->from = col_text(st, 4);
		f->to = col_text(st, 5);
		f->cc = col_text(st, 6);
		f->display_from = col_text(st, 7);
		f->display_to = col_text(st, 8);
		f->message_id = col_text(st, 9);
		f->refs = col_text(st, 10);
	}
	sqlite3_finalize(st);
	for (i = 0; i < count; i++) {
		struct store_sort_fields *f = &fields_r[i];
		if (f->base_subject != NULL)
			continue;
		if (parse_file(r->store, msgs[i], f) < 0) {
			/* Unreadable: sorted as a message without those fields. */
			log_warn("event=sort_fields_unreadable uid=%u error=\"%s\"", msgs[i]->uid,
				 strerror(errno));
			memset(f, 0, sizeof(*f));
			f->base_subject = xstrdup("");
		}
	}
	/* NULL columns (none are written) read as empty strings. */
	for (i = 0; i < count; i++) {
		struct store_sort_fields *f = &fields_r[i];
		char **strs[] = { &f->from, &f->to, &f->cc, &f->display_from, &f->display_to,
				  &f->refs };
		for (size_t k = 0; k < ARRAY_SIZE(strs); k++) {
			if (*strs[k] == NULL)
				*strs[k] = xstrdup("");
		}
	}
	return 0;
}
