/* LIST and LSUB (RFC 9051 6.3.9, RFC 3501 6.3.9) with LIST-EXTENDED
 * (RFC 5258): selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH and
 * SPECIAL-USE (RFC 6154), return options SUBSCRIBED, CHILDREN, SPECIAL-USE
 * and STATUS (RFC 5819 LIST-STATUS), and several patterns at once.
 *
 * Every mailbox name we could list exists: CREATE makes the levels above a
 * new name, and a subscription is a column of the mailbox row, gone with
 * it. So \NonExistent and \NoSelect never come up, and the children
 * attributes (cheap: one pass over the account's list) and the special-use
 * attributes are always returned, as RFC 5258 4 and RFC 6154 2 allow.
 * There are no remote mailboxes: REMOTE changes nothing. */
#include "imap/imap_private.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* Patterns in one LIST command: a bound on the matching work. */
#define LIST_PATTERNS_MAX 64

#define SEL_SUBSCRIBED 0x01
#define SEL_REMOTE 0x02
#define SEL_RECURSIVEMATCH 0x04
#define SEL_SPECIAL_USE 0x08

#define RET_SUBSCRIBED 0x01
#define RET_CHILDREN 0x02
#define RET_SPECIAL_USE 0x04
#define RET_STATUS 0x08

struct list_req {
	bool lsub;
	unsigned sel, ret;
	char *pats[LIST_PATTERNS_MAX];	/* reference + pattern, in UTF-8 */
	size_t npats;
	bool empty;			/* a "" pattern: the delimiter request */
	struct imap_status_req status;
};

/* Pattern matching (RFC 9051 6.3.9): "*" matches anything, "%" anything
 * but the hierarchy delimiter. INBOX is case-insensitive (5.1): within the
 * first five characters of a name that is INBOX or under it, pattern
 * characters match in any case, so "inbox", "InBoX/%" and "inb*" find it
 * while "sent" does not find "Sent". Recursion depth is bounded by the
 * number of wildcards in a pattern (the command line is bounded). */
static bool match_at(const char *pat, const char *name, const char *start, bool inbox)
{
	for (; *pat; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *p = name;; p++) {
				if (match_at(pat + 1, p, start, inbox))
					return true;
				if (*p == '\0' || (*pat == '%' && *p == '/'))
					return false;
			}
		}
		if (*name == '\0')
			return false;
		bool fold = inbox && name - start < 5;
		if (*pat != *name && !(fold && (*pat | 0x20) == (*name | 0x20)))
			return false;
	}
	return *name == '\0';
}

static bool matches(const struct list_req *req, const char *name)
{
	bool inbox = strncmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/');
	for (size_t i = 0; i < req->npats; i++) {
		if (match_at(req->pats[i], name, name, inbox))
			return true;
	}
	return false;
}

static bool selected_by(const struct list_req *req, const struct store_mailbox_entry *e)
{
	if (((req->sel & SEL_SUBSCRIBED) || req->lsub) && !e->subscribed)
		return false;
	if ((req->sel & SEL_SPECIAL_USE) && e->special_use == NULL)
		return false;
	return true;
}

static bool is_child(const char *parent, const char *name)
{
	size_t n = strlen(parent);
	return strncmp(name, parent, n) == 0 && name[n] == '/';
}

static const struct {
	const char *name;
	unsigned bit;
} select_opts[] = {
	{ "SUBSCRIBED", SEL_SUBSCRIBED }, { "REMOTE", SEL_REMOTE },
	{ "RECURSIVEMATCH", SEL_RECURSIVEMATCH }, { "SPECIAL-USE", SEL_SPECIAL_USE },
}, return_opts[] = {
	{ "SUBSCRIBED", RET_SUBSCRIBED }, { "CHILDREN", RET_CHILDREN },
	{ "SPECIAL-USE", RET_SPECIAL_USE }, { "STATUS", RET_STATUS },
};

static unsigned opt_bit(const struct imap_arg *a, bool selection)
{
	if (a->type != IMAP_ARG_ATOM)
		return 0;
	size_t n = selection ? ARRAY_SIZE(select_opts) : ARRAY_SIZE(return_opts);
	for (size_t i = 0; i < n; i++) {
		const char *name = selection ? select_opts[i].name : return_opts[i].name;
		if (str_ieq(a->str, name))
			return selection ? select_opts[i].bit : return_opts[i].bit;
	}
	return 0;
}

/* "RETURN (options)" at a[0..1]. Returns NULL or why it is bad. */
static const char *parse_return(const struct imap_arg *list, size_t n, struct list_req *req)
{
	for (size_t i = 0; i < n; i++) {
		unsigned bit = opt_bit(&list[i], false);
		if (bit == 0)
			return "Unknown LIST return option";
		if (bit == RET_STATUS) {
			/* RFC 5819: STATUS (items), as the STATUS command takes. */
			if (i + 1 >= n || list[i + 1].type != IMAP_ARG_LIST ||
			    imap_status_parse(list[i + 1].list, list[i + 1].len, &req->status) < 0)
				return "Syntax: RETURN (STATUS (items))";
			i++;
		}
		req->ret |= bit;
	}
	return NULL;
}

/* One pattern: the reference prepended (RFC 9051 6.3.9), decoded. */
static const char *add_pattern(struct imap_session *s, struct list_req *req, const char *ref,
			       const struct imap_arg *pat)
{
	if (!imap_arg_is_string(pat))
		return "Syntax: a pattern is a string";
	if (req->npats == LIST_PATTERNS_MAX)
		return "Too many LIST patterns";
	if (pat->str[0] == '\0') {
		req->empty = true;
		return NULL;
	}
	char *raw = xasprintf("%s%s", ref, pat->str);
	char *full = imap_name_in(s, raw);
	free(raw);
	if (full == NULL)
		return s->utf8 ? "Invalid UTF-8 in the pattern" :
				 "Invalid modified UTF-7 in the pattern";
	req->pats[req->npats++] = full;
	return NULL;
}

/* LIST [(selection)] reference pattern-or-(patterns) [RETURN (options)];
 * LSUB reference pattern. Returns NULL or why the command is bad. */
static const char *parse_args(struct imap_session *s, const struct imap_arg *a, size_t n,
			      struct list_req *req)
{
	const char *syntax = req->lsub ? "Syntax: LSUB reference pattern" :
		"Syntax: LIST [(selection options)] reference pattern [RETURN (options)]";
	size_t i = 0;
	if (!req->lsub && i < n && a[i].type == IMAP_ARG_LIST) {
		for (size_t k = 0; k < a[i].len; k++) {
			unsigned bit = opt_bit(&a[i].list[k], true);
			if (bit == 0)
				return "Unknown LIST selection option";
			req->sel |= bit;
		}
		i++;
	}
	if (i + 2 > n || !imap_arg_is_string(&a[i]))
		return syntax;
	const char *ref = a[i++].str;
	const char *why;
	if (!req->lsub && a[i].type == IMAP_ARG_LIST) {
		if (a[i].len == 0)
			return "Syntax: an empty list of patterns";
		for (size_t k = 0; k < a[i].len; k++) {
			if ((why = add_pattern(s, req, ref, &a[i].list[k])) != NULL)
				return why;
		}
	} else if ((why = add_pattern(s, req, ref, &a[i])) != NULL) {
		return why;
	}
	i++;
	if (i < n) {
		if (req->lsub || a[i].type != IMAP_ARG_ATOM || !str_ieq(a[i].str, "RETURN") ||
		    i + 2 != n || a[i + 1].type != IMAP_ARG_LIST)
			return syntax;
		if ((why = parse_return(a[i + 1].list, a[i + 1].len, req)) != NULL)
			return why;
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) is BAD. */
	if ((req->sel & SEL_RECURSIVEMATCH) && !(req->sel & (SEL_SUBSCRIBED | SEL_SPECIAL_USE)))
		return "RECURSIVEMATCH needs another selection option";
	/* Selection options imply their return options (RFC 5258 3.1,
	 * RFC 6154 5.1). */
	if (req->sel & SEL_SUBSCRIBED)
		req->ret |= RET_SUBSCRIBED;
	if (req->sel & SEL_SPECIAL_USE)
		req->ret |= RET_SPECIAL_USE;
	return NULL;
}

/* The counts of mailbox id among the account's (ascending ids), or NULL. */
static const struct store_status *status_of(const struct store_status *v, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].mailbox_id == id)
			return &v[mid];
		if (v[mid].mailbox_id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void list_one(struct imap_session *s, const struct list_req *req,
		     const struct store_mailbox_entry *list, size_t count, size_t i,
		     const struct store_status *status, size_t status_count)
{
	const struct store_mailbox_entry *e = &list[i];
	bool in_selection = selected_by(req, e), children = false, childinfo = false;
	for (size_t k = 0; k < count; k++) {
		if (!is_child(e->name, list[k].name))
			continue;
		children = true;
		/* RFC 5258 3.5: a descendant that meets the selection but is
		 * not listed itself (it does not match a pattern). */
		if ((req->sel & SEL_RECURSIVEMATCH) && selected_by(req, &list[k]) &&
		    !matches(req, list[k].name))
			childinfo = true;
	}
	if (!in_selection && !childinfo)
		return;
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "* %s (%s", req->lsub ? "LSUB" : "LIST",
		   children ? "\\HasChildren" : "\\HasNoChildren");
	if (e->special_use)
		buf_printf(&b, " %s", e->special_use);
	if ((req->ret & RET_SUBSCRIBED) && e->subscribed)
		buf_append_str(&b, " \\Subscribed");
	buf_append_str(&b, ") \"/\" ");
	imap_append_name(s, &b, e->name);
	if (childinfo) {
		buf_append_str(&b, " (\"CHILDINFO\" (");
		if (req->sel & SEL_SUBSCRIBED)
			buf_append_str(&b, "\"SUBSCRIBED\"");
		if (req->sel & SEL_SPECIAL_USE)
			buf_printf(&b, "%s\"SPECIAL-USE\"", (req->sel & SEL_SUBSCRIBED) ? " " : "");
		buf_append_str(&b, "))");
	}
	imap_reply(s, "%s", b.data);
	buf_deinit(&b);
	/* RFC 5819 2: STATUS after the LIST of each mailbox that meets the
	 * selection, from the counts read for all at once when there are
	 * (a mailbox made since has none: it is dropped, as a failed lookup
	 * would be), else with a query of its own; a failed lookup just
	 * drops it. */
	const struct store_status *st;
	if (!(req->ret & RET_STATUS) || !in_selection)
		return;
	if (status == NULL)
		(void)imap_status_reply(s, e->id, e->name, &req->status);
	else if ((st = status_of(status, status_count, e->id)) != NULL)
		(void)imap_status_reply_with(s, st, e->name, &req->status);
}

/* How many mailboxes are asked STATUS at most before the counts of all
 * are read at once. */
#define LIST_STATUS_ONE_BY_ONE 8

/* How many listed mailboxes get a STATUS. */
static size_t status_wanted(const struct list_req *req, const struct store_mailbox_entry *list,
			    size_t count)
{
	size_t n = 0;
	for (size_t i = 0; i < count; i++)
		n += matches(req, list[i].name) && selected_by(req, &list[i]);
	return n;
}

void imap_cmd_list(struct imap_session *s, const struct imap_arg *a, size_t n, bool lsub)
{
	struct list_req req;
	memset(&req, 0, sizeof(req));
	req.lsub = lsub;
	const char *verb = lsub ? "LSUB" : "LIST";
	const char *why = parse_args(s, a, n, &req);
	struct store_mailbox_entry *list = NULL;
	size_t count = 0;
	/* LIST-STATUS: the counts of every mailbox with one query, not one
	 * per mailbox, when many are listed (an account with thousands of
	 * folders); that query reads every message row of the account, so a
	 * few mailboxes (LIST "" INBOX RETURN (STATUS ...)) are asked one by
	 * one. */
	struct store_status *status = NULL;
	size_t status_count = 0;
	if (why) {
		imap_tagged(s, "BAD", "%s", why);
	} else if (req.npats > 0 &&
		   store_mailbox_list(imap_reader(), s->account_id, &list, &count) < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot list mailboxes");
	} else if (req.npats > 0 && (req.ret & RET_STATUS) &&
		   status_wanted(&req, list, count) > LIST_STATUS_ONE_BY_ONE &&
		   store_account_status(imap_reader(), s->account_id,
					imap_status_wants_size(&req.status), &status,
					&status_count) < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read mailboxes");
	} else {
		/* RFC 9051 6.3.9: "" asks for the delimiter and the root. */
		if (req.empty)
			imap_reply(s, "* %s (\\Noselect) \"/\" \"\"", verb);
		for (size_t i = 0; i < count; i++) {
			if (matches(&req, list[i].name))
				list_one(s, &req, list, count, i, status, status_count);
		}
		imap_tagged(s, "OK", "%s completed", verb);
	}
	store_mailbox_list_free(&list, count);
	free(status);
	for (size_t i = 0; i < req.npats; i++)
		free(req.pats[i]);
}
