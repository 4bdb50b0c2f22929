/* ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2).
 *
 * The layout and the string choices are Dovecot's (lib-imap
 * imap-bodystructure.c, imap-envelope.c, imap-quote.c), so that clients see
 * what they already see from the most common IMAP server:
 * - Subjects and display names are cleaned "for humans": runs of white
 *   space (TAB, CR, LF included) become one space, leading and trailing
 *   white space goes. Anything cleaned, and any '"' or '\', goes out as a
 *   literal, as Dovecot does.
 * - Content-ID, Content-Description, Content-MD5 and Content-Location lose
 *   their folds (CR and LF removed, a space kept between words).
 * - Other strings are written as they are.
 * - A text part without charset gets ("charset" "us-ascii") (RFC 2045 5.2);
 *   a multipart without parts gets one empty text/plain part, since RFC
 *   3501's grammar needs at least one.
 * - Sizes count a bare LF as CR LF; see mime.h. */
#include "mime/mime_imap.h"
#include "mime/mime_private.h"
#include "core/buf.h"
#include "core/util.h"

#include <inttypes.h>
#include <string.h>

#define QUOTED_MAX_ESCAPES 4

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

static bool needs_literal(const char *s, size_t len)
{
	unsigned int escapes = 0;
	if (len > IMAP_QUOTED_MAX)
		return true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			if (++escapes > QUOTED_MAX_ESCAPES)
				return true;
		} else if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80) {
			return true;
		}
	}
	return false;
}

int imap_write_string(struct buf *out, const char *s, size_t len)
{
	int r = 0;
	if (needs_literal(s, len)) {
		size_t nuls = 0;
		for (size_t i = 0; i < len; i++)
			nuls += s[i] == '\0';
		r |= buf_printf(out, "{%zu}\r\n", len + nuls * 2);
		if (nuls == 0)
			return r | buf_append(out, s, len);
		for (size_t i = 0; i < len; i++) {
			if (s[i] == '\0')
				r |= buf_append(out, "\xef\xbf\xbd", 3);
			else
				r |= buf_append_c(out, s[i]);
		}
		return r;
	}
	r |= buf_append_c(out, '"');
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			r |= buf_append(out, s + start, i - start);
			r |= buf_append_c(out, '\\');
			start = i;
		}
	}
	r |= buf_append(out, s + start, len - start);
	r |= buf_append_c(out, '"');
	return r;
}

int imap_write_nstring(struct buf *out, const char *s, size_t len)
{
	if (s == NULL)
		return buf_append_str(out, "NIL");
	return imap_write_string(out, s, len);
}

static int write_mstr(struct buf *out, const struct mime_message *msg, struct mstr s)
{
	return imap_write_nstring(out, mstr_ptr(msg, s), s.len);
}

/* Without CR and LF; a space where a line break stood before a word. */
static int write_nolf(struct buf *out, const struct mime_message *msg, struct mstr s)
{
	const char *v = mstr_ptr(msg, s);
	if (v == NULL || (memchr(v, '\r', s.len) == NULL && memchr(v, '\n', s.len) == NULL))
		return write_mstr(out, msg, s);
	struct buf tmp;
	buf_init(&tmp, 0);
	for (size_t i = 0; i < s.len; i++) {
		if (v[i] != '\r' && v[i] != '\n') {
			buf_append_c(&tmp, v[i]);
		} else if (i + 1 < s.len && v[i + 1] != ' ' && v[i + 1] != '\t' &&
			   v[i + 1] != '\r' && v[i + 1] != '\n') {
			buf_append_c(&tmp, ' ');
		}
	}
	int r = imap_write_string(out, tmp.data ? tmp.data : "", tmp.len);
	buf_deinit(&tmp);
	return r;
}

static bool is_lwsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A subject or a display name: white space runs become one space, none at
 * either end; a NUL would be 0x80 (our strings have none). Quoted only when
 * nothing had to change. */
static int write_for_humans(struct buf *out, const char *s, size_t len)
{
	bool modify = false, last_lwsp = true, only_ws = true;
	size_t keep = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_lwsp((char)c)) {
			if (c != ' ' || last_lwsp)
				modify = true;
			last_lwsp = true;
			continue;
		}
		if (c == '"' || c == '\\' || c >= 0x80 || c == 0)
			modify = true;
		last_lwsp = false;
		only_ws = false;
	}
	if (last_lwsp && len > 0 && !only_ws)
		modify = true;
	if (!modify) {
		int r = buf_append_c(out, '"');
		r |= buf_append(out, s, len);
		return r | buf_append_c(out, '"');
	}
	if (only_ws)
		return buf_append_str(out, "\"\"");
	struct buf tmp;
	buf_init(&tmp, 0);
	last_lwsp = true;
	for (size_t i = 0; i < len; i++) {
		if (is_lwsp(s[i])) {
			if (!last_lwsp)
				buf_append_c(&tmp, ' ');
			last_lwsp = true;
		} else {
			buf_append_c(&tmp, s[i] == '\0' ? (char)0x80 : s[i]);
			last_lwsp = false;
		}
	}
	keep = tmp.len;
	if (last_lwsp && keep > 0)
		keep--;
	int r = buf_printf(out, "{%zu}\r\n", keep);
	r |= buf_append(out, tmp.data, keep);
	buf_deinit(&tmp);
	return r;
}

static int write_addrs(struct buf *out, const struct mime_message *msg, uint32_t start,
		       uint32_t count)
{
	if (count == 0)
		return buf_append_str(out, "NIL");
	int r = buf_append_c(out, '(');
	for (uint32_t i = 0; i < count; i++) {
		const struct mime_addr *a = &msg->addrs[start + i];
		r |= buf_append_c(out, '(');
		if (mstr_is_nil(a->name))
			r |= buf_append_str(out, "NIL");
		else
			r |= write_for_humans(out, mstr_ptr(msg, a->name), a->name.len);
		r |= buf_append_c(out, ' ');
		r |= write_mstr(out, msg, a->route);
		r |= buf_append_c(out, ' ');
		r |= write_mstr(out, msg, a->mailbox);
		r |= buf_append_c(out, ' ');
		r |= write_mstr(out, msg, a->domain);
		r |= buf_append_c(out, ')');
	}
	return r | buf_append_c(out, ')');
}

/* The fields of an envelope, without the parentheses. */
static int write_envelope_fields(struct buf *out, const struct mime_message *msg, uint32_t env)
{
	if (env == UINT32_MAX)
		return buf_append_str(out, "NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL");
	const struct mime_envelope *e = &msg->envelopes[env];
	int r = write_nolf(out, msg, e->date);
	r |= buf_append_c(out, ' ');
	if (mstr_is_nil(e->subject))
		r |= buf_append_str(out, "NIL");
	else
		r |= write_for_humans(out, mstr_ptr(msg, e->subject), e->subject.len);
	static const enum mime_env_addr order[] = {
		MIME_ENV_FROM, MIME_ENV_SENDER, MIME_ENV_REPLY_TO, MIME_ENV_TO, MIME_ENV_CC, MIME_ENV_BCC,
	};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		enum mime_env_addr a = order[i];
		/* RFC 3501 7.4.2: Sender and Reply-To default to From. */
		if ((a == MIME_ENV_SENDER || a == MIME_ENV_REPLY_TO) && e->addr_count[a] == 0)
			a = MIME_ENV_FROM;
		r |= buf_append_c(out, ' ');
		r |= write_addrs(out, msg, e->addr_start[a], e->addr_count[a]);
	}
	r |= buf_append_c(out, ' ');
	r |= write_nolf(out, msg, e->in_reply_to);
	r |= buf_append_c(out, ' ');
	r |= write_nolf(out, msg, e->message_id);
	return r;
}

int mime_envelope(const struct mime_message *msg, struct buf *out)
{
	int r = buf_append_c(out, '(');
	r |= write_envelope_fields(out, msg, msg->parts[0].envelope);
	r |= buf_append_c(out, ')');
	return r < 0 ? -1 : 0;
}

/* (name value ...) or NIL; a text part without charset gets us-ascii. */
static int write_params(struct buf *out, const struct mime_message *msg, uint32_t start,
			uint32_t count, bool default_charset)
{
	if (!default_charset && count == 0)
		return buf_append_str(out, "NIL");
	int r = buf_append_c(out, '(');
	bool seen_charset = false;
	for (uint32_t i = 0; i < count; i++) {
		const struct mime_param *pp = &msg->params[start + i];
		const char *name = mstr_ptr(msg, pp->name);
		if (i > 0)
			r |= buf_append_c(out, ' ');
		if (str_ieq(name, "charset"))
			seen_charset = true;
		r |= imap_write_string(out, name, pp->name.len);
		r |= buf_append_c(out, ' ');
		r |= imap_write_string(out, mstr_ptr(msg, pp->value), pp->value.len);
	}
	if (default_charset && !seen_charset) {
		if (count > 0)
			r |= buf_append_c(out, ' ');
		r |= buf_append_str(out, "\"charset\" \"us-ascii\"");
	}
	return r | buf_append_c(out, ')');
}

/* Disposition, language and location: the extension data both kinds of
 * body share. */
static int write_ext_common(struct buf *out, const struct mime_part *part)
{
	const struct mime_message *msg = part->msg;
	int r = buf_append_c(out, ' ');
	if (mstr_is_nil(part->disposition)) {
		r |= buf_append_str(out, "NIL");
	} else {
		r |= buf_append_c(out, '(');
		r |= write_mstr(out, msg, part->disposition);
		r |= buf_append_c(out, ' ');
		r |= write_params(out, msg, part->dparams_start, part->dparams_count, false);
		r |= buf_append_c(out, ')');
	}
	r |= buf_append_c(out, ' ');
	if (part->lang_count == 0) {
		r |= buf_append_str(out, "NIL");
	} else {
		r |= buf_append_c(out, '(');
		for (uint32_t i = 0; i < part->lang_count; i++) {
			if (i > 0)
				r |= buf_append_c(out, ' ');
			r |= write_mstr(out, msg, msg->langs[part->lang_start + i]);
		}
		r |= buf_append_c(out, ')');
	}
	r |= buf_append_c(out, ' ');
	return r | write_nolf(out, msg, part->location);
}

static bool part_is_text(const struct mime_part *part)
{
	return !(part->pflags & (MIME_PF_RFC822 | MIME_PF_OVERFLOW)) &&
	       (mstr_is_nil(part->type) || str_ieq(mstr_ptr(part->msg, part->type), "text"));
}

/* Everything of a part before its children: all of a leaf; up to the
 * envelope of a message/rfc822; the empty part of a multipart without
 * parts. */
static int write_pre(struct buf *out, const struct mime_part *part, bool ext)
{
	const struct mime_message *msg = part->msg;
	int r = 0;
	if (part->pflags & MIME_PF_MULTIPART) {
		if (part->first_child == UINT32_MAX) {
			r |= buf_append_str(out, EMPTY_BODY);
			r |= buf_append_str(out, ext ? " NIL NIL NIL NIL)" : ")");
		}
		return r;
	}
	bool text = part_is_text(part);
	if (part->pflags & MIME_PF_OVERFLOW) {
		/* A multipart or message/rfc822 whose inside a limit kept us
		 * from parsing: opaque data, as Dovecot shows it. */
		text = false;
		r |= buf_append_str(out, "\"application\" \"octet-stream\"");
	} else if (part->pflags & MIME_PF_RFC822) {
		r |= buf_append_str(out, "\"message\" \"rfc822\"");
	} else if (mstr_is_nil(part->type)) {
		r |= buf_append_str(out, "\"text\" \"plain\"");
	} else {
		r |= write_mstr(out, msg, part->type);
		r |= buf_append_c(out, ' ');
		r |= write_mstr(out, msg, part->subtype);
	}
	r |= buf_append_c(out, ' ');
	r |= write_params(out, msg, part->params_start, part->params_count, text);
	r |= buf_append_c(out, ' ');
	r |= write_nolf(out, msg, part->id);
	r |= buf_append_c(out, ' ');
	r |= write_nolf(out, msg, part->description);
	r |= buf_append_c(out, ' ');
	if (mstr_is_nil(part->cte))
		r |= buf_append_str(out, "\"7bit\"");
	else
		r |= write_mstr(out, msg, part->cte);
	uint64_t size = part->body_end - part->body_start + part->bare_end - part->bare_start;
	r |= buf_printf(out, " %" PRIu64, size);
	if (text) {
		r |= buf_printf(out, " %" PRIu64, part->lf_end - part->lf_start);
	} else if (part->pflags & MIME_PF_RFC822) {
		r |= buf_append_str(out, " (");
		r |= write_envelope_fields(out, msg, msg->parts[part->first_child].envelope);
		r |= buf_append_str(out, ") ");
		return r;
	}
	if (ext) {
		r |= buf_append_c(out, ' ');
		r |= write_nolf(out, msg, part->md5);
		r |= write_ext_common(out, part);
	}
	return r;
}

/* Everything after the children. */
static int write_post(struct buf *out, const struct mime_part *part, bool ext)
{
	const struct mime_message *msg = part->msg;
	int r = 0;
	if (part->pflags & MIME_PF_MULTIPART) {
		r |= buf_append_c(out, ' ');
		r |= write_mstr(out, msg, part->subtype);
		if (ext) {
			r |= buf_append_c(out, ' ');
			r |= write_params(out, msg, part->params_start, part->params_count, false);
			r |= write_ext_common(out, part);
		}
	} else if (part->pflags & MIME_PF_RFC822) {
		r |= buf_printf(out, " %" PRIu64, part->lf_end - part->lf_start);
		if (ext) {
			r |= buf_append_c(out, ' ');
			r |= write_nolf(out, msg, part->md5);
			r |= write_ext_common(out, part);
		}
	}
	return r;
}

/* Walks the tree without recursion: each part is "(" pre children post ")";
 * the children of a multipart follow each other, the one child of a
 * message/rfc822 stands between its envelope and its line count. */
static int write_structure(const struct mime_message *msg, struct buf *out, bool ext)
{
	const struct mime_part *parts = msg->parts;
	uint32_t cur = 0;
	int r = 0;
	for (;;) {
		r |= buf_append_c(out, '(');
		r |= write_pre(out, &parts[cur], ext);
		if (parts[cur].first_child != UINT32_MAX &&
		    (parts[cur].pflags & (MIME_PF_MULTIPART | MIME_PF_RFC822))) {
			cur = parts[cur].first_child;
			continue;
		}
		/* cur is done: close it, go to its next sibling or up. */
		r |= write_post(out, &parts[cur], ext);
		for (;;) {
			r |= buf_append_c(out, ')');
			if (r < 0)
				return -1;
			if (cur == 0)
				return 0;
			if (parts[cur].next != UINT32_MAX) {
				cur = parts[cur].next;
				break;
			}
			cur = parts[cur].parent;
			r |= write_post(out, &parts[cur], ext);
		}
	}
}

int mime_body(const struct mime_message *msg, struct buf *out)
{
	return write_structure(msg, out, false);
}

int mime_bodystructure(const struct mime_message *msg, struct buf *out)
{
	return write_structure(msg, out, true);
}
