/* SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4).
 *
 * The keys become a tree, evaluated for each message of the view. Keys on
 * flags, sizes, dates of arrival, UIDs and message numbers use the view
 * alone (it is in memory: no query is faster). BODY and TEXT are answered
 * by the full-text index (store_text_search: SQLite FTS5 over the decoded
 * text, filled at delivery), asked once per key before the walk; header
 * keys ask the same index for the messages whose decoded header holds the
 * string, and read only those, to check the field. Messages the index does
 * not hold whole (stored before it existed, or cut at its size limit) are
 * read and matched as they are. Matching is case-insensitive substring
 * matching (RFC 9051 6.4.4); header values match decoded (RFC 2047) or
 * raw. */
#include "imap/imap_private.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/decode.h"
#include "mime/header.h"
#include "net/net.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define SEARCH_DEPTH_MAX 32

enum skey_type {
	K_ALL, K_MODSEQ, K_FLAG, K_UNFLAG, K_KEYWORD, K_UNKEYWORD, K_LARGER, K_SMALLER,
	K_BEFORE, K_ON, K_SINCE, K_SENTBEFORE, K_SENTON, K_SENTSINCE,
	K_HEADER, K_BODY, K_TEXT, K_UID, K_SEQ, K_NOT, K_OR, K_AND, K_NONE,
	K_RECENT, K_NEW, K_OLD, K_OLDER, K_YOUNGER,
	K_SAVEDBEFORE, K_SAVEDON, K_SAVEDSINCE, K_EMAILID, K_THREADID,
};

struct skey {
	enum skey_type type;
	uint32_t flag;
	uint64_t number;
	int64_t day;		/* days since the epoch; OLDER, YOUNGER: a time */
	char *field;		/* K_HEADER */
	char *value;
	struct seqset set;
	struct skey *a, *b;	/* NOT: a; OR: a, b; AND: list in a, chained by b */
	struct skey *next;
	/* K_HEADER, K_BODY, K_TEXT: what the full-text index said (UIDs,
	 * ascending), when it could be asked. */
	bool indexed;
	struct store_text_hits ix;
};

static void skey_free(struct skey *k)
{
	while (k) {
		struct skey *next = k->next;
		skey_free(k->a);
		skey_free(k->b);
		free(k->field);
		free(k->value);
		store_text_hits_deinit(&k->ix);
		seqset_deinit(&k->set);
		free(k);
		k = next;
	}
}

struct sparser {
	struct imap_session *s;
	const struct imap_arg *args;
	size_t n, pos;
	bool uid;
	const char *error;
};

static const char *next_string(struct sparser *p)
{
	if (p->pos >= p->n || !imap_arg_is_string(&p->args[p->pos]))
		return NULL;
	return p->args[p->pos++].str;
}

/* "1-Feb-1994" (RFC 9051 date) to days since the epoch. */
static int parse_day(const char *v, int64_t *day_r)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int d, y;
	char mon[4];
	if (sscanf(v, "%2d-%3s-%4d", &d, mon, &y) != 3 || d < 1 || d > 31 || y < 1900)
		return -1;
	for (int m = 0; m < 12; m++) {
		if (str_ieq(mon, months[m])) {
			struct tm tm = { .tm_mday = d, .tm_mon = m, .tm_year = y - 1900 };
			*day_r = (int64_t)timegm(&tm) / 86400;
			return 0;
		}
	}
	return -1;
}

static struct skey *parse_key(struct sparser *p, int depth);

static struct skey *parse_list(struct sparser *p, const struct imap_arg *args, size_t n,
			       int depth)
{
	struct sparser sub = { p->s, args, n, 0, p->uid, NULL };
	struct skey *head = NULL, **tail = &head;
	while (sub.pos < sub.n) {
		struct skey *k = parse_key(&sub, depth + 1);
		if (k == NULL) {
			p->error = sub.error;
			skey_free(head);
			return NULL;
		}
		*tail = k;
		tail = &k->next;
	}
	if (head == NULL) {
		p->error = "empty search key list";
		return NULL;
	}
	struct skey *and = xcalloc(1, sizeof(*and));
	and->type = K_AND;
	and->a = head;
	return and;
}

static const struct {
	const char *name;
	enum skey_type type;
	uint32_t flag;
} flag_keys[] = {
	{ "ANSWERED", K_FLAG, STORE_FLAG_ANSWERED }, { "DELETED", K_FLAG, STORE_FLAG_DELETED },
	{ "DRAFT", K_FLAG, STORE_FLAG_DRAFT }, { "FLAGGED", K_FLAG, STORE_FLAG_FLAGGED },
	{ "SEEN", K_FLAG, STORE_FLAG_SEEN },
	{ "UNANSWERED", K_UNFLAG, STORE_FLAG_ANSWERED },
	{ "UNDELETED", K_UNFLAG, STORE_FLAG_DELETED }, { "UNDRAFT", K_UNFLAG, STORE_FLAG_DRAFT },
	{ "UNFLAGGED", K_UNFLAG, STORE_FLAG_FLAGGED }, { "UNSEEN", K_UNFLAG, STORE_FLAG_SEEN },
	/* \Recent as this session sees it (RFC 3501 6.4.4): NEW is RECENT
	 * UNSEEN, OLD is NOT RECENT. */
	{ "NEW", K_NEW, 0 }, { "RECENT", K_RECENT, 0 }, { "OLD", K_OLD, 0 },
};

static const struct {
	const char *name;
	enum skey_type type;
} date_keys[] = {
	{ "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
	{ "SENTBEFORE", K_SENTBEFORE }, { "SENTON", K_SENTON }, { "SENTSINCE", K_SENTSINCE },
	/* RFC 8514 4.3: every mailbox keeps save dates. */
	{ "SAVEDBEFORE", K_SAVEDBEFORE }, { "SAVEDON", K_SAVEDON }, { "SAVEDSINCE", K_SAVEDSINCE },
};

/* RFC 8474 7: objectid = 1*255(ALPHA / DIGIT / "_" / "-"). */
static bool objectid_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static struct skey *parse_key(struct sparser *p, int depth)
{
	if (depth > SEARCH_DEPTH_MAX) {
		p->error = "search keys nested too deep";
		return NULL;
	}
	if (p->pos >= p->n) {
		p->error = "missing search key";
		return NULL;
	}
	const struct imap_arg *a = &p->args[p->pos];
	if (a->type == IMAP_ARG_LIST) {
		p->pos++;
		return parse_list(p, a->list, a->len, depth);
	}
	if (a->type != IMAP_ARG_ATOM) {
		p->error = "invalid search key";
		return NULL;
	}
	const char *w = a->str;
	p->pos++;
	struct skey *k = xcalloc(1, sizeof(*k));
	for (size_t i = 0; i < ARRAY_SIZE(flag_keys); i++) {
		if (str_ieq(w, flag_keys[i].name)) {
			k->type = flag_keys[i].type;
			k->flag = flag_keys[i].flag;
			return k;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(date_keys); i++) {
		if (str_ieq(w, date_keys[i].name)) {
			const char *v = next_string(p);
			if (v == NULL || parse_day(v, &k->day) < 0) {
				p->error = "invalid date";
				goto bad;
			}
			k->type = date_keys[i].type;
			return k;
		}
	}
	if (str_ieq(w, "ALL")) {
		k->type = K_ALL;
	} else if (str_ieq(w, "SAVEDATESUPPORTED")) {
		/* RFC 8514 4.3: every message, as every mailbox has them. */
		k->type = K_ALL;
	} else if (str_ieq(w, "EMAILID") || str_ieq(w, "THREADID")) {
		/* RFC 8474 6: exact, case-sensitive. */
		const char *v = next_string(p);
		if (v == NULL || !objectid_ok(v)) {
			p->error = "invalid object id";
			goto bad;
		}
		k->type = str_ieq(w, "EMAILID") ? K_EMAILID : K_THREADID;
		k->value = xstrdup(v);
	} else if (str_ieq(w, "KEYWORD") || str_ieq(w, "UNKEYWORD")) {
		const char *v = next_string(p);
		if (v == NULL) {
			p->error = "missing keyword";
			goto bad;
		}
		k->type = w[0] == 'K' || w[0] == 'k' ? K_KEYWORD : K_UNKEYWORD;
		k->value = xstrdup(v);
	} else if (str_ieq(w, "LARGER") || str_ieq(w, "SMALLER")) {
		const char *v = next_string(p);
		if (v == NULL || str_to_u64(v, &k->number) < 0) {
			p->error = "invalid number";
			goto bad;
		}
		k->type = str_ieq(w, "LARGER") ? K_LARGER : K_SMALLER;
	} else if (str_ieq(w, "FROM") || str_ieq(w, "TO") || str_ieq(w, "CC") ||
		   str_ieq(w, "BCC") || str_ieq(w, "SUBJECT")) {
		const char *v = next_string(p);
		if (v == NULL) {
			p->error = "missing search string";
			goto bad;
		}
		k->type = K_HEADER;
		k->field = xstrdup(w);
		k->value = xstrdup(v);
	} else if (str_ieq(w, "HEADER")) {
		const char *f = next_string(p), *v = f ? next_string(p) : NULL;
		if (v == NULL) {
			p->error = "HEADER needs a field name and a string";
			goto bad;
		}
		k->type = K_HEADER;
		k->field = xstrdup(f);
		k->value = xstrdup(v);
	} else if (str_ieq(w, "BODY") || str_ieq(w, "TEXT")) {
		const char *v = next_string(p);
		if (v == NULL) {
			p->error = "missing search string";
			goto bad;
		}
		k->type = str_ieq(w, "BODY") ? K_BODY : K_TEXT;
		k->value = xstrdup(v);
	} else if (str_ieq(w, "UID")) {
		const char *v = next_string(p);
		if (v == NULL || imap_seqset(p->s, v, true, &k->set) < 0) {
			p->error = "invalid UID set";
			goto bad;
		}
		k->type = K_UID;
	} else if (str_ieq(w, "MODSEQ")) {
		/* RFC 7162 3.1.5: MODSEQ [entry-name entry-type] modseq. A
		 * message has one mod-sequence here, so the entry is checked
		 * and ignored, as the RFC asks. */
		const char *v = next_string(p);
		if (v != NULL && (v[0] < '0' || v[0] > '9')) {
			const char *type = next_string(p);
			if (!str_istarts(v, "/flags/") || type == NULL ||
			    !(str_ieq(type, "priv") || str_ieq(type, "shared") || str_ieq(type, "all"))) {
				p->error = "invalid MODSEQ entry name or type";
				goto bad;
			}
			v = next_string(p);
		}
		if (v == NULL || str_to_u64(v, &k->number) < 0 || k->number > INT64_MAX) {
			p->error = "invalid mod-sequence";
			goto bad;
		}
		k->type = K_MODSEQ;
	} else if (str_ieq(w, "OLDER") || str_ieq(w, "YOUNGER")) {
		/* WITHIN (RFC 5032): an interval in seconds back from now,
		 * against the internal date. */
		const char *v = next_string(p);
		if (v == NULL || str_to_u64(v, &k->number) < 0 || k->number == 0 ||
		    k->number > (uint64_t)INT32_MAX * 64) {
			p->error = "invalid interval";
			goto bad;
		}
		k->type = str_ieq(w, "OLDER") ? K_OLDER : K_YOUNGER;
		k->day = (int64_t)time(NULL) - (int64_t)k->number;
	} else if (str_ieq(w, "NOT")) {
		k->type = K_NOT;
		if ((k->a = parse_key(p, depth + 1)) == NULL)
			goto bad;
	} else if (str_ieq(w, "OR")) {
		k->type = K_OR;
		if ((k->a = parse_key(p, depth + 1)) == NULL ||
		    (k->b = parse_key(p, depth + 1)) == NULL)
			goto bad;
	} else if (imap_seqset(p->s, w, false, &k->set) == 0) {
		k->type = K_SEQ;
	} else {
		p->error = "unknown search key";
		goto bad;
	}
	return k;
bad:
	skey_free(k);
	return NULL;
}

/* The message, read when a key needs it. */
struct smsg {
	struct store_msg *m;
	int64_t mailbox_id;
	uint32_t seq;
	bool recent;
	bool loaded;
	struct buf text;
	size_t hlen;
	/* the text the index will hold, for a message not in it yet */
	bool decoded_loaded, decoded_ok, decoded_complete;
	char *dheader, *dbody;
	size_t dheader_len, dbody_len;
};

static void smsg_deinit(struct smsg *sm)
{
	if (sm->loaded)
		buf_deinit(&sm->text);
	free(sm->dheader);
	free(sm->dbody);
}

/* A message stored since the index was last written: matched on the text
 * the index will hold for it (decoded), as if it were there already, so
 * that the answer does not depend on when the index catches up. */
static bool pending_match(struct smsg *sm, enum skey_type type, const char *value)
{
	if (!sm->decoded_loaded) {
		sm->decoded_loaded = true;
		sm->decoded_ok = store_msg_text(imap_store, sm->m, &sm->dheader, &sm->dheader_len,
						&sm->dbody, &sm->dbody_len,
						&sm->decoded_complete) == 0;
	}
	if (!sm->decoded_ok)
		return false;
	return text_contains_fold(sm->dbody, sm->dbody_len, value) ||
	       (type == K_TEXT && text_contains_fold(sm->dheader, sm->dheader_len, value));
}

static void load(struct smsg *sm)
{
	if (sm->loaded)
		return;
	sm->loaded = true;
	buf_init(&sm->text, 0);
	if (sm->m->prefix_len > 0)
		store_msg_prefix(imap_reader(), sm->mailbox_id, sm->m->uid, &sm->text);
	int fd = store_msg_open(imap_store, sm->m);
	if (fd >= 0) {
		char chunk[65536];
		ssize_t r;
		while ((r = read(fd, chunk, sizeof(chunk))) > 0)
			buf_append(&sm->text, chunk, (size_t)r);
		close(fd);
	}
	sm->hlen = header_block_len(sm->text.data ? sm->text.data : "", sm->text.len);
}

static bool contains(const char *hay, size_t len, const char *needle)
{
	return text_contains_fold(hay, len, needle);
}

static bool uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Asks the full-text index once for each text key of the tree. */
static void ask_index(struct imap_session *s, struct skey *k)
{
	for (; k; k = k->next) {
		ask_index(s, k->a);
		ask_index(s, k->b);
		if ((k->type != K_BODY && k->type != K_TEXT && k->type != K_HEADER) ||
		    *k->value == '\0')
			continue;
		enum store_text_where where = k->type == K_BODY ? STORE_TEXT_BODY :
					      k->type == K_TEXT ? STORE_TEXT_ALL : STORE_TEXT_HEADER;
		k->indexed = store_text_search(imap_reader(), s->view.info.id, where, k->value,
					       &k->ix) == 0;
	}
}

static bool header_has(struct smsg *sm, const char *field, const char *value)
{
	load(sm);
	size_t pos = 0;
	struct header_field f;
	int r;
	size_t flen = strlen(field);
	while ((r = header_next(sm->text.data ? sm->text.data : "", sm->hlen, &pos, &f)) != 0) {
		if (r < 0 || f.name_len != flen || !str_nieq(f.name, field, flen))
			continue;
		/* HEADER field "" matches any message with the field. */
		if (*value == '\0')
			return true;
		char *v = header_unfold(f.value, f.value_len);
		bool hit = contains(v, strlen(v), value);
		if (!hit) {
			char *d = header_decode_2047(v);
			hit = contains(d, strlen(d), value);
			free(d);
		}
		free(v);
		if (hit)
			return true;
	}
	return false;
}

/* The Date: field's day, disregarding time and zone (RFC 9051 6.4.4). */
static int64_t sent_day(struct smsg *sm)
{
	load(sm);
	char *d = header_get(sm->text.data ? sm->text.data : "", sm->hlen, "Date");
	int64_t day = -1;
	if (d != NULL) {
		const char *p = strchr(d, ',');
		p = p ? p + 1 : d;
		char mon[4];
		int dd, yy;
		static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
			"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
		if (sscanf(p, " %d %3s %d", &dd, mon, &yy) == 3) {
			if (yy < 50)
				yy += 2000;	/* RFC 5322 4.3 obsolete two-digit years */
			else if (yy < 1000)
				yy += 1900;
			for (int m = 0; m < 12; m++) {
				if (str_ieq(mon, months[m])) {
					struct tm tm = { .tm_mday = dd, .tm_mon = m, .tm_year = yy - 1900 };
					day = (int64_t)timegm(&tm) / 86400;
				}
			}
		}
		free(d);
	}
	/* Without a usable Date:, the arrival day stands in (as Dovecot does). */
	return day >= 0 ? day : sm->m->internaldate / 86400;
}

static bool keyword_set(const struct store_msg *m, const char *kw)
{
	size_t n = strlen(kw);
	for (const char *p = m->keywords; p && *p;) {
		const char *e = strchr(p, ' ');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && str_nieq(p, kw, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* Whether the keys use MODSEQ: the answer then carries the highest
 * mod-sequence of what was found (RFC 7162 3.1.5, 3.1.10). */
static bool skey_has_modseq(const struct skey *k)
{
	for (; k; k = k->next) {
		if (k->type == K_MODSEQ || skey_has_modseq(k->a) || skey_has_modseq(k->b))
			return true;
	}
	return false;
}

static bool match(const struct skey *k, struct smsg *sm)
{
	const struct store_msg *m = sm->m;
	int64_t arrived = m->internaldate / 86400, sent;
	switch (k->type) {
	case K_ALL: return true;
	case K_MODSEQ: return m->modseq >= k->number;
	case K_NONE: return false;
	case K_RECENT: return sm->recent;
	case K_NEW: return sm->recent && !(m->flags & STORE_FLAG_SEEN);
	case K_OLD: return !sm->recent;
	case K_FLAG: return (m->flags & k->flag) != 0;
	case K_UNFLAG: return (m->flags & k->flag) == 0;
	case K_KEYWORD: return keyword_set(m, k->value);
	case K_UNKEYWORD: return !keyword_set(m, k->value);
	case K_LARGER: return m->size > k->number;
	case K_SMALLER: return m->size < k->number;
	case K_BEFORE: return arrived < k->day;
	case K_ON: return arrived == k->day;
	case K_SINCE: return arrived >= k->day;
	/* OLDER: older than the interval; YOUNGER: younger or equal. */
	case K_OLDER: return m->internaldate < k->day;
	case K_YOUNGER: return m->internaldate >= k->day;
	case K_SAVEDBEFORE: return m->savedate / 86400 < k->day;
	case K_SAVEDON: return m->savedate / 86400 == k->day;
	case K_SAVEDSINCE: return m->savedate / 86400 >= k->day;
	case K_EMAILID:
	case K_THREADID: {
		char id[STORE_MSGID_MAX];
		if (k->type == K_EMAILID)
			store_msgid_format('M', m->emailid, id);
		else
			store_msgid_format('T', m->threadid, id);
		return strcmp(id, k->value) == 0;
	}
	case K_SENTBEFORE: sent = sent_day(sm); return sent < k->day;
	case K_SENTON: sent = sent_day(sm); return sent == k->day;
	case K_SENTSINCE: sent = sent_day(sm); return sent >= k->day;
	case K_HEADER:
		/* The index narrows the messages to read down to those whose
		 * header holds the string somewhere. */
		if (k->indexed && !uid_in(k->ix.match, k->ix.match_count, m->uid) &&
		    !uid_in(k->ix.unindexed, k->ix.unindexed_count, m->uid) &&
		    !uid_in(k->ix.pending, k->ix.pending_count, m->uid))
			return false;
		return header_has(sm, k->field, k->value);
	case K_BODY:
	case K_TEXT:
		if (k->indexed && uid_in(k->ix.match, k->ix.match_count, m->uid))
			return true;
		if (k->indexed && uid_in(k->ix.pending, k->ix.pending_count, m->uid)) {
			/* not in the index yet, or only its first part:
			 * the whole decoded text decides; a text too long
			 * even for that is also read as it is */
			if (pending_match(sm, k->type, k->value))
				return true;
			if (!sm->decoded_ok || sm->decoded_complete)
				return false;
		} else if (k->indexed && !uid_in(k->ix.unindexed, k->ix.unindexed_count, m->uid)) {
			return false;
		}
		load(sm);
		if (k->type == K_BODY)
			return contains(sm->text.data + sm->hlen, sm->text.len - sm->hlen, k->value);
		return contains(sm->text.data ? sm->text.data : "", sm->text.len, k->value);
	case K_UID: return seqset_has(&k->set, m->uid);
	case K_SEQ: return seqset_has(&k->set, sm->seq);
	case K_NOT: return !match(k->a, sm);
	case K_OR: return match(k->a, sm) || match(k->b, sm);
	case K_AND:
		for (const struct skey *c = k->a; c; c = c->next) {
			if (!match(c, sm))
				return false;
		}
		return true;
	}
	return false;
}

/* RFC 9051 6.4.4 result options (RFC 4731 ESEARCH, RFC 5182 SAVE). */
#define RET_MIN IMAP_RET_MIN
#define RET_MAX IMAP_RET_MAX
#define RET_ALL IMAP_RET_ALL
#define RET_COUNT IMAP_RET_COUNT
#define RET_SAVE IMAP_RET_SAVE

static const struct {
	const char *name;
	unsigned bit;
} return_opts[] = {
	{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL }, { "COUNT", RET_COUNT },
	{ "SAVE", RET_SAVE },
};

/* "RETURN (options)": the options, or -1 (after answering BAD). */
int imap_search_parse_return(struct imap_session *s, const struct imap_arg *a, size_t n,
			unsigned *ret_r)
{
	if (n < 2 || a[1].type != IMAP_ARG_LIST) {
		imap_tagged(s, "BAD", "Syntax: SEARCH RETURN (options) key ...");
		return -1;
	}
	unsigned ret = 0;
	for (size_t i = 0; i < a[1].len; i++) {
		const struct imap_arg *o = &a[1].list[i];
		unsigned bit = 0;
		for (size_t k = 0; o->type == IMAP_ARG_ATOM && k < ARRAY_SIZE(return_opts); k++) {
			if (str_ieq(o->str, return_opts[k].name))
				bit = return_opts[k].bit;
		}
		/* "Any options not defined by extensions that the server
		 * supports MUST be rejected with a BAD response." */
		if (bit == 0) {
			imap_tagged(s, "BAD", "Unknown SEARCH return option");
			return -1;
		}
		ret |= bit;
	}
	/* No option, or SAVE alone with ALL for what is saved: ALL. */
	*ret_r = ret == 0 ? RET_ALL : ret;
	return 0;
}

/* ---- the keys for SORT and THREAD (imap_sort.c) ---- */

struct imap_search {
	struct skey *root;
};

struct imap_search *imap_search_parse(struct imap_session *s, const struct imap_arg *a,
				      size_t n, bool uid, const char **error_r)
{
	struct sparser p = { s, a, n, 0, uid, NULL };
	struct skey *root = n > 0 ? parse_list(&p, a, n, 0) : NULL;
	if (root == NULL) {
		*error_r = p.error ? p.error : "missing search key";
		return NULL;
	}
	struct imap_search *k = xcalloc(1, sizeof(*k));
	k->root = root;
	return k;
}

size_t imap_search_run(struct imap_session *s, struct imap_search *k, uint32_t **pos_r)
{
	struct imap_view *v = &s->view;
	ask_index(s, k->root);
	uint32_t *found = xmalloc((v->count ? v->count : 1) * sizeof(*found));
	size_t count = 0;
	for (size_t i = 0; i < v->count; i++) {
		struct smsg sm = { .m = &v->msgs[i], .mailbox_id = v->info.id,
				   .seq = (uint32_t)i + 1,
				   .recent = imap_is_recent(s, v->msgs[i].uid) };
		if (match(k->root, &sm))
			found[count++] = (uint32_t)i;
		smsg_deinit(&sm);
	}
	*pos_r = found;
	return count;
}

void imap_search_free(struct imap_search **k)
{
	if (*k == NULL)
		return;
	skey_free((*k)->root);
	free(*k);
	*k = NULL;
}

/* The ESEARCH response (RFC 9051 7.3.4) for the numbers found. */
static void reply_esearch(struct imap_session *s, unsigned ret, bool uid,
			  const uint32_t *found, size_t count, uint64_t modseq)
{
	struct buf out;
	buf_init(&out, 0);
	buf_printf(&out, "* ESEARCH (TAG \"%s\")%s", s->tag, uid ? " UID" : "");
	/* MIN, MAX and ALL only when something was found; COUNT always. */
	if ((ret & RET_MIN) && count > 0)
		buf_printf(&out, " MIN %u", found[0]);
	if ((ret & RET_MAX) && count > 0)
		buf_printf(&out, " MAX %u", found[count - 1]);
	if ((ret & RET_ALL) && count > 0) {
		struct seqset set = { 0, NULL };
		for (size_t i = 0; i < count; i++)
			imap_set_add(&set, found[i]);
		buf_append_str(&out, " ALL ");
		imap_append_set(&out, &set);
		seqset_deinit(&set);
	}
	if (ret & RET_COUNT)
		buf_printf(&out, " COUNT %zu", count);
	if (modseq > 0 && count > 0)
		buf_printf(&out, " MODSEQ %llu", (unsigned long long)modseq);
	imap_reply(s, "%s", out.data);
	buf_deinit(&out);
}

void imap_cmd_search(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid)
{
	size_t start = 0;
	unsigned ret = 0;
	if (n >= 1 && a[0].type == IMAP_ARG_ATOM && str_ieq(a[0].str, "RETURN")) {
		if (imap_search_parse_return(s, a, n, &ret) < 0)
			return;
		start = 2;
	}
	if (n >= start + 2 && a[start].type == IMAP_ARG_ATOM && str_ieq(a[start].str, "CHARSET")) {
		/* RFC 9051 6.4.4: UTF-8 (and US-ASCII, its subset) only. */
		if (!imap_arg_is_string(&a[start + 1]) ||
		    !(str_ieq(a[start + 1].str, "UTF-8") || str_ieq(a[start + 1].str, "US-ASCII"))) {
			/* A SAVE that fails with NO empties "$" (6.4.4.1). */
			if (ret & RET_SAVE)
				seqset_deinit(&s->saved);
			imap_tagged(s, "NO", "[BADCHARSET (UTF-8)] Unsupported charset");
			return;
		}
		start += 2;
	}
	if (start >= n) {
		/* Not parse_list: with no arguments a is NULL. */
		imap_tagged(s, "BAD", "Syntax: SEARCH [RETURN (options)] [CHARSET charset] key ...");
		return;
	}
	struct sparser p = { s, a, n, start, uid, NULL };
	struct skey *root = parse_list(&p, a + start, n - start, 0);
	if (root == NULL) {
		imap_tagged(s, "BAD", "%s", p.error ? p.error : "invalid search");
		return;
	}
	struct imap_view *v = &s->view;
	ask_index(s, root);
	uint32_t *found = xmalloc((v->count ? v->count : 1) * sizeof(*found));
	size_t count = 0;
	struct seqset saved = { 0, NULL };
	/* RFC 7162 3.1: SEARCH MODSEQ enables CONDSTORE. */
	bool modseq_key = skey_has_modseq(root);
	uint64_t top = 0;
	if (modseq_key)
		imap_condstore_enable(s);
	for (size_t i = 0; i < v->count; i++) {
		struct smsg sm = { .m = &v->msgs[i], .mailbox_id = v->info.id,
				   .seq = (uint32_t)i + 1,
				   .recent = imap_is_recent(s, v->msgs[i].uid) };
		if (match(root, &sm)) {
			found[count++] = uid ? v->msgs[i].uid : (uint32_t)i + 1;
			if (modseq_key && v->msgs[i].modseq > top)
				top = v->msgs[i].modseq;
			/* SAVE keeps everything found, except that MIN and/or MAX
			 * without ALL or COUNT keep just those (6.4.4.1, table 4). */
			if ((ret & (RET_ALL | RET_COUNT)) || !(ret & (RET_MIN | RET_MAX)))
				imap_set_add(&saved, v->msgs[i].uid);
		}
		smsg_deinit(&sm);
	}
	skey_free(root);
	if ((ret & RET_SAVE) && !(ret & (RET_ALL | RET_COUNT)) && count > 0) {
		/* found[] is in view order, so UIDs and numbers rise together. */
		size_t lo = 0, hi = count - 1;
		for (size_t i = 0; i < v->count; i++) {
			uint32_t key = uid ? v->msgs[i].uid : (uint32_t)i + 1;
			if ((ret & RET_MIN) && key == found[lo])
				imap_set_add(&saved, v->msgs[i].uid);
			else if ((ret & RET_MAX) && key == found[hi])
				imap_set_add(&saved, v->msgs[i].uid);
		}
	}
	if (ret & RET_SAVE) {
		seqset_deinit(&s->saved);
		s->saved = saved;
	} else {
		seqset_deinit(&saved);
	}
	if (ret == 0 && !s->rev2) {
		/* IMAP4rev1 without RETURN: the SEARCH response (RFC 3501 7.2.5). */
		struct buf out;
		buf_init(&out, 0);
		buf_append_str(&out, "* SEARCH");
		for (size_t i = 0; i < count; i++)
			buf_printf(&out, " %u", found[i]);
		if (count > 0 && modseq_key)
			buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)top);
		imap_reply(s, "%s", out.data);
		buf_deinit(&out);
	} else if (ret != RET_SAVE) {
		/* IMAP4rev2 answers ESEARCH always (RFC 9051 appendix E item 4);
		 * SAVE alone answers nothing (6.4.4). */
		reply_esearch(s, ret ? ret : RET_ALL, uid, found, count, top);
	}
	free(found);
	/* No EXPUNGE during SEARCH (RFC 9051 7.5.1). */
	imap_sync(s, false);
	imap_tagged(s, "OK", "SEARCH completed%s", (ret & RET_SAVE) ? ", result saved" : "");
}
