/* SORT, UID SORT, THREAD and UID THREAD (RFC 5256), with SORT=DISPLAY
 * (RFC 5957), ESORT (RFC 5267: RETURN options answered by ESEARCH) and
 * SAVE for "$" (RFC 5182).
 *
 * The messages are chosen by SEARCH's keys (imap_search.c). What the keys
 * sort on was computed at delivery and is read for the mailbox with one
 * query (store_sort_fields_get): no message is read, except those stored
 * before the fields were.
 *
 * Strings compare case-insensitively over all of Unicode, in the spirit
 * of i;unicode-casemap (RFC 5051) that RFC 5256 allows for UTF-8: each
 * field is folded once (text_fold: the simple lower-case mapping of the
 * C.UTF-8 locale), then compared with the ASCII case map, so ASCII sorts
 * exactly as i;ascii-casemap (RFC 4790 9.2) and "\u00c9T\u00c9" equals
 * "\u00e9t\u00e9". Not done: the titlecase mapping and the NFKD
 * decomposition of RFC 5051 ("e" + U+0301 is not "\u00e9"). SORT, ESORT
 * and THREAD (subject groups) use the same folded fields. */
#include "imap/imap_private.h"
#include "core/log.h"
#include "core/util.h"
#include "mime/decode.h"

#include <stdlib.h>
#include <string.h>

enum sort_key {
	SK_ARRIVAL, SK_CC, SK_DATE, SK_FROM, SK_SIZE, SK_SUBJECT, SK_TO,
	SK_DISPLAYFROM, SK_DISPLAYTO,
};

static const struct {
	const char *name;
	enum sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", SK_ARRIVAL }, { "CC", SK_CC }, { "DATE", SK_DATE }, { "FROM", SK_FROM },
	{ "SIZE", SK_SIZE }, { "SUBJECT", SK_SUBJECT }, { "TO", SK_TO },
	{ "DISPLAYFROM", SK_DISPLAYFROM }, { "DISPLAYTO", SK_DISPLAYTO },
};

#define SORT_CRITERIA_MAX 16

struct criterion {
	enum sort_key key;
	bool reverse;
};

/* One message found. */
struct item {
	uint32_t pos;		/* in the view */
	const struct store_msg *m;
	struct store_sort_fields *f;
	int64_t sent;		/* RFC 5256 2.2 */
};

static int casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
		if (x >= 'a' && x <= 'z')
			x -= 32;
		if (y >= 'a' && y <= 'z')
			y -= 32;
		if (x != y || x == '\0')
			return x < y ? -1 : x > y;
	}
}

/* The compared strings of f, case-folded in place (see the top). */
static void fold_fields(struct store_sort_fields *f)
{
	char **v[] = { &f->base_subject, &f->from, &f->to, &f->cc, &f->display_from,
		       &f->display_to };
	for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
		if (*v[i] == NULL)
			continue;
		char *folded = text_fold(*v[i], strlen(*v[i]), NULL);
		free(*v[i]);
		*v[i] = folded;
	}
}

static int cmp_num(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_key(const struct item *a, const struct item *b, enum sort_key key)
{
	switch (key) {
	case SK_ARRIVAL: return cmp_num(a->m->internaldate, b->m->internaldate);
	case SK_SIZE: return cmp_num((int64_t)a->m->size, (int64_t)b->m->size);
	case SK_DATE: return cmp_num(a->sent, b->sent);
	case SK_CC: return casecmp(a->f->cc, b->f->cc);
	case SK_FROM: return casecmp(a->f->from, b->f->from);
	case SK_TO: return casecmp(a->f->to, b->f->to);
	case SK_SUBJECT: return casecmp(a->f->base_subject, b->f->base_subject);
	case SK_DISPLAYFROM: return casecmp(a->f->display_from, b->f->display_from);
	case SK_DISPLAYTO: return casecmp(a->f->display_to, b->f->display_to);
	}
	return 0;
}

/* qsort has no context argument: the criteria of the sort running in this
 * thread. */
static _Thread_local const struct criterion *cmp_crit;
static _Thread_local size_t cmp_crit_count;

static int cmp_items(const void *x, const void *y)
{
	const struct item *a = x, *b = y;
	for (size_t i = 0; i < cmp_crit_count; i++) {
		int r = cmp_key(a, b, cmp_crit[i].key);
		if (r != 0)
			return cmp_crit[i].reverse ? -r : r;
	}
	/* The implicit last criterion: the order in the mailbox. */
	return cmp_num(a->pos, b->pos);
}

static void sort_items(struct item *items, size_t count, const struct criterion *crit,
		       size_t ncrit)
{
	cmp_crit = crit;
	cmp_crit_count = ncrit;
	qsort(items, count, sizeof(*items), cmp_items);
}

static bool charset_ok(const struct imap_arg *a)
{
	return imap_arg_is_string(a) && (str_ieq(a->str, "UTF-8") || str_ieq(a->str, "US-ASCII"));
}

/* The messages found and their fields; NULL after answering. */
static struct item *find(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid,
			 struct store_sort_fields **fields_r, size_t *count_r)
{
	const char *error = NULL;
	struct imap_search *k = imap_search_parse(s, a, n, uid, &error);
	if (k == NULL) {
		imap_tagged(s, "BAD", "%s", error);
		return NULL;
	}
	uint32_t *pos;
	size_t count = imap_search_run(s, k, &pos);
	imap_search_free(&k);
	struct imap_view *v = &s->view;
	const struct store_msg **msgs = xmalloc((count ? count : 1) * sizeof(*msgs));
	for (size_t i = 0; i < count; i++)
		msgs[i] = &v->msgs[pos[i]];
	struct store_sort_fields *fields = xcalloc(count ? count : 1, sizeof(*fields));
	if (store_sort_fields_get(imap_reader(), v->info.id, msgs, count, fields) < 0) {
		free(msgs);
		free(pos);
		free(fields);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read the mailbox");
		return NULL;
	}
	struct item *items = xcalloc(count ? count : 1, sizeof(*items));
	for (size_t i = 0; i < count; i++) {
		fold_fields(&fields[i]);
		items[i].pos = pos[i];
		items[i].m = msgs[i];
		items[i].f = &fields[i];
		/* Without a usable Date:, the internal date (2.2). */
		items[i].sent = fields[i].has_date ? fields[i].date : msgs[i]->internaldate;
	}
	free(msgs);
	free(pos);
	*fields_r = fields;
	*count_r = count;
	return items;
}

static void free_found(struct item *items, struct store_sort_fields *fields, size_t count)
{
	for (size_t i = 0; i < count; i++)
		store_sort_fields_deinit(&fields[i]);
	free(fields);
	free(items);
}

static uint32_t number(const struct imap_session *s, const struct item *it, bool uid)
{
	return uid ? s->view.msgs[it->pos].uid : it->pos + 1;
}

/* ESEARCH for a sorted result (RFC 5267 3.1): MIN and MAX are the first
 * and last in sort order, ALL is in sort order, with ranges only where the
 * numbers rise by one (3.2). */
static void reply_esort(struct imap_session *s, unsigned ret, bool uid, const uint32_t *nums,
			size_t count)
{
	struct buf out;
	buf_init(&out, 0);
	buf_printf(&out, "* ESEARCH (TAG \"%s\")%s", s->tag, uid ? " UID" : "");
	if ((ret & IMAP_RET_MIN) && count > 0)
		buf_printf(&out, " MIN %u", nums[0]);
	if ((ret & IMAP_RET_MAX) && count > 0)
		buf_printf(&out, " MAX %u", nums[count - 1]);
	if ((ret & IMAP_RET_ALL) && count > 0) {
		buf_append_str(&out, " ALL ");
		for (size_t i = 0; i < count;) {
			size_t j = i;
			while (j + 1 < count && nums[j + 1] == nums[j] + 1)
				j++;
			buf_printf(&out, "%s%u", i > 0 ? "," : "", nums[i]);
			if (j > i)
				buf_printf(&out, ":%u", nums[j]);
			i = j + 1;
		}
	}
	if (ret & IMAP_RET_COUNT)
		buf_printf(&out, " COUNT %zu", count);
	imap_reply(s, "%s", out.data);
	buf_deinit(&out);
}

void imap_cmd_sort(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid)
{
	size_t i = 0;
	unsigned ret = 0;
	if (n >= 1 && a[0].type == IMAP_ARG_ATOM && str_ieq(a[0].str, "RETURN")) {
		if (imap_search_parse_return(s, a, n, &ret) < 0)
			return;
		i = 2;
	}
	if (i + 3 > n || a[i].type != IMAP_ARG_LIST || a[i].len == 0) {
		imap_tagged(s, "BAD", "Syntax: SORT [RETURN (options)] (criteria) charset key ...");
		return;
	}
	struct criterion crit[SORT_CRITERIA_MAX];
	size_t ncrit = 0;
	const struct imap_arg *l = a[i].list;
	for (size_t k = 0; k < a[i].len; k++) {
		bool reverse = false;
		if (l[k].type == IMAP_ARG_ATOM && str_ieq(l[k].str, "REVERSE") && k + 1 < a[i].len) {
			reverse = true;
			k++;
		}
		size_t key = ARRAY_SIZE(sort_keys);
		for (size_t j = 0; l[k].type == IMAP_ARG_ATOM && j < ARRAY_SIZE(sort_keys); j++) {
			if (str_ieq(l[k].str, sort_keys[j].name))
				key = j;
		}
		if (key == ARRAY_SIZE(sort_keys) || ncrit == SORT_CRITERIA_MAX) {
			imap_tagged(s, "BAD", "Unknown sort criterion");
			return;
		}
		crit[ncrit].key = sort_keys[key].key;
		crit[ncrit++].reverse = reverse;
	}
	i++;
	if (!charset_ok(&a[i])) {
		/* A SAVE that fails with NO empties "$" (RFC 5182 2.1). */
		if (ret & IMAP_RET_SAVE)
			seqset_deinit(&s->saved);
		imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	i++;
	struct store_sort_fields *fields;
	size_t count;
	struct item *items = find(s, a + i, n - i, uid, &fields, &count);
	if (items == NULL)
		return;
	sort_items(items, count, crit, ncrit);
	uint32_t *nums = xmalloc((count ? count : 1) * sizeof(*nums));
	for (size_t k = 0; k < count; k++)
		nums[k] = number(s, &items[k], uid);
	if (ret & IMAP_RET_SAVE) {
		/* "$" is a set of UIDs: everything found, or with MIN and/or
		 * MAX alone, just those (RFC 9051 6.4.4.1, of the sorted
		 * order here). */
		uint32_t *uids = xmalloc((count ? count : 1) * sizeof(*uids));
		size_t nu = 0;
		bool all = (ret & (IMAP_RET_ALL | IMAP_RET_COUNT)) ||
			   !(ret & (IMAP_RET_MIN | IMAP_RET_MAX));
		for (size_t k = 0; k < count; k++) {
			if (all || ((ret & IMAP_RET_MIN) && k == 0) ||
			    ((ret & IMAP_RET_MAX) && k == count - 1))
				uids[nu++] = s->view.msgs[items[k].pos].uid;
		}
		/* imap_set_add wants them ascending. */
		for (size_t x = 1; x < nu; x++) {
			for (size_t y = x; y > 0 && uids[y - 1] > uids[y]; y--) {
				uint32_t t = uids[y];
				uids[y] = uids[y - 1];
				uids[y - 1] = t;
			}
		}
		seqset_deinit(&s->saved);
		for (size_t k = 0; k < nu; k++)
			imap_set_add(&s->saved, uids[k]);
		free(uids);
	}
	if (ret == 0) {
		struct buf out;
		buf_init(&out, 0);
		buf_append_str(&out, "* SORT");
		for (size_t k = 0; k < count; k++)
			buf_printf(&out, " %u", nums[k]);
		imap_reply(s, "%s", out.data);
		buf_deinit(&out);
	} else if (ret != IMAP_RET_SAVE) {
		reply_esort(s, ret, uid, nums, count);
	}
	free(nums);
	free_found(items, fields, count);
	/* No EXPUNGE during SORT (RFC 5256 3). */
	imap_sync(s, false);
	imap_tagged(s, "OK", "%sSORT completed%s", uid ? "UID " : "",
		    (ret & IMAP_RET_SAVE) ? ", result saved" : "");
}

/* ---- THREAD ---- */

/* A node of the thread tree: a message found, or a dummy (item NULL). */
struct node {
	struct item *item;
	struct node *parent, *child, *next;	/* first child, next sibling */
	bool deleted;
};

struct tree {
	struct node *nodes;	/* found messages first, then dummies */
	size_t count, cap;
};

static struct node *node_new(struct tree *t)
{
	/* Allocated up front (cap): pointers stay valid. */
	if (t->count == t->cap)
		abort();
	struct node *n = &t->nodes[t->count++];
	memset(n, 0, sizeof(*n));
	return n;
}

/* Message-ID to node, open addressing. */
struct idmap {
	const char **keys;
	struct node **vals;
	size_t cap;
};

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct node **idmap_slot(struct idmap *m, const char *key)
{
	size_t i = hash_str(key) & (m->cap - 1);
	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == NULL)
		m->keys[i] = key;	/* the caller fills the value */
	return &m->vals[i];
}

static void unlink_node(struct node *n)
{
	if (n->parent == NULL)
		return;
	struct node **pp = &n->parent->child;
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	n->next = NULL;
	n->parent = NULL;
}

static void append_child(struct node *parent, struct node *c)
{
	struct node **pp = &parent->child;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = c;
	c->parent = parent;
	c->next = NULL;
}

/* Whether a is b or one of b's descendants. */
static bool descends(const struct node *a, const struct node *b)
{
	for (; a != NULL; a = a->parent) {
		if (a == b)
			return true;
	}
	return false;
}

/* The message a node sorts by: itself, or a dummy's first child (sorted
 * already). */
static const struct item *sort_item(const struct node *n)
{
	while (n != NULL && n->item == NULL)
		n = n->child;
	return n ? n->item : NULL;
}

static int cmp_nodes(const void *x, const void *y)
{
	const struct item *a = sort_item(*(struct node *const *)x);
	const struct item *b = sort_item(*(struct node *const *)y);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	int r = cmp_num(a->sent, b->sent);
	return r != 0 ? r : cmp_num(a->pos, b->pos);
}

/* Sorts a sibling list by sent date (RFC 5256 2.2), returning its head. */
static struct node *sort_siblings(struct node *head, struct node ***scratch, size_t *cap)
{
	size_t n = 0;
	for (struct node *c = head; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return head;
	if (n > *cap) {
		*cap = n;
		*scratch = xrealloc(*scratch, n * sizeof(**scratch));
	}
	struct node **v = *scratch;
	n = 0;
	for (struct node *c = head; c != NULL; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), cmp_nodes);
	for (size_t i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	return v[0];
}

/* The nodes below root in post-order (children before parents), without
 * recursion: a long References chain is a deep tree. */
static struct node **post_order(struct tree *t, struct node *root, size_t *count_r)
{
	struct node **out = xmalloc(t->count * sizeof(*out));
	struct node **stack = xmalloc(t->count * sizeof(*stack));
	size_t n = 0, sp = 0;
	for (struct node *c = root->child; c != NULL; c = c->next)
		stack[sp++] = c;
	/* Pre-order with children pushed, reversed: a valid post-order. */
	while (sp > 0) {
		struct node *x = stack[--sp];
		out[n++] = x;
		for (struct node *c = x->child; c != NULL; c = c->next)
			stack[sp++] = c;
	}
	for (size_t i = 0; i < n / 2; i++) {
		struct node *tmp = out[i];
		out[i] = out[n - 1 - i];
		out[n - 1 - i] = tmp;
	}
	free(stack);
	*count_r = n;
	return out;
}

/* Step (3): dummies go, their children taking their place; at the top
 * only a dummy with one child goes. */
static struct node *prune_list(struct node *head, struct node *parent, bool top)
{
	struct node *out = NULL, **tail = &out;
	struct node *next;
	for (struct node *c = head; c != NULL; c = next) {
		next = c->next;
		if (c->item == NULL && (c->child == NULL || !top || c->child->next == NULL)) {
			for (struct node *g = c->child, *gn; g != NULL; g = gn) {
				gn = g->next;
				g->parent = parent;
				*tail = g;
				tail = &g->next;
			}
			c->child = NULL;
			c->deleted = true;
			continue;
		}
		c->parent = parent;
		*tail = c;
		tail = &c->next;
	}
	*tail = NULL;
	return out;
}

static const char *thread_subject(const struct node *n)
{
	const struct node *m = n->item ? n : n->child;
	return m && m->item ? m->item->f->base_subject : "";
}

static void write_thread(struct imap_session *s, struct buf *out, const struct node *n,
			 bool uid);

/* "a b c (d ...)(e ...)": a chain of single children, then the branches. */
static void write_members(struct imap_session *s, struct buf *out, const struct node *n,
			  bool uid)
{
	bool first = true;
	while (n != NULL) {
		if (n->item != NULL) {
			buf_printf(out, "%s%u", first ? "" : " ", number(s, n->item, uid));
			first = false;
		}
		if (n->child == NULL)
			return;
		if (n->child->next == NULL && n->item != NULL) {
			n = n->child;
			continue;
		}
		if (!first)
			buf_append_c(out, ' ');
		for (const struct node *c = n->child; c != NULL; c = c->next)
			write_thread(s, out, c, uid);
		return;
	}
}

static void write_thread(struct imap_session *s, struct buf *out, const struct node *n,
			 bool uid)
{
	buf_append_c(out, '(');
	write_members(s, out, n, uid);
	buf_append_c(out, ')');
}

static _Thread_local struct node *const *group_top;

static int cmp_group(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int r = casecmp(thread_subject(group_top[a]), thread_subject(group_top[b]));
	return r != 0 ? r : cmp_num((int64_t)a, (int64_t)b);
}

/* first[i]: the lowest j with top[j]'s thread subject equal to top[i]'s. */
static void subject_groups(struct node *const *top, size_t n, size_t *first)
{
	size_t *idx = xmalloc((n ? n : 1) * sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	group_top = top;
	qsort(idx, n, sizeof(*idx), cmp_group);
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && casecmp(thread_subject(top[idx[k - 1]]), thread_subject(top[idx[k]])) == 0)
			first[idx[k]] = first[idx[k - 1]];
		else
			first[idx[k]] = idx[k];
	}
	free(idx);
}

static void thread_references(struct tree *t, struct node *root, struct item *items,
			      size_t count)
{
	/* Room for the references of every message, as dummies. */
	size_t ids = count;
	for (size_t i = 0; i < count; i++) {
		for (const char *p = items[i].f->refs; *p; p++)
			ids += *p == ' ';
		ids += *items[i].f->refs != '\0';
	}
	struct idmap map = { 0 };
	map.cap = 16;
	while (map.cap < ids * 2)
		map.cap *= 2;
	map.keys = xcalloc(map.cap, sizeof(*map.keys));
	map.vals = xcalloc(map.cap, sizeof(*map.vals));
	char **refcopies = xcalloc(count ? count : 1, sizeof(*refcopies));
	/* (1) In mailbox order. */
	for (size_t i = 0; i < count; i++) {
		struct item *it = &items[i];
		struct node *self = NULL;
		if (it->f->message_id != NULL) {
			struct node **slot = idmap_slot(&map, it->f->message_id);
			if (*slot == NULL) {
				*slot = self = node_new(t);
			} else if ((*slot)->item == NULL) {
				self = *slot;	/* a dummy made by a reference */
			}
			/* else: a duplicate Message-ID: a unique one instead. */
		}
		if (self == NULL)
			self = node_new(t);
		self->item = it;
		/* (A) */
		refcopies[i] = xstrdup(it->f->refs);
		struct node *prev = NULL;
		char *save = NULL;
		for (char *id = strtok_r(refcopies[i], " ", &save); id != NULL;
		     id = strtok_r(NULL, " ", &save)) {
			struct node **slot = idmap_slot(&map, id);
			if (*slot == NULL)
				*slot = node_new(t);
			struct node *cur = *slot;
			if (prev != NULL && cur->parent == NULL && !descends(prev, cur))
				append_child(prev, cur);
			prev = cur;
		}
		/* (B) */
		unlink_node(self);
		if (prev != NULL && !descends(prev, self))
			append_child(prev, self);
	}
	/* (2) */
	for (size_t i = 0; i < t->count; i++) {
		struct node *x = &t->nodes[i];
		if (x->parent == NULL && x != root)
			append_child(root, x);
	}
	/* (3) Below the top, children first, so that a dummy's children are
	 * pruned when it goes. */
	size_t n;
	struct node **order = post_order(t, root, &n);
	for (size_t i = 0; i < n; i++)
		order[i]->child = prune_list(order[i]->child, order[i], false);
	free(order);
	root->child = prune_list(root->child, root, true);
	/* (4) */
	struct node **scratch = NULL;
	size_t scap = 0;
	for (struct node *c = root->child; c != NULL; c = c->next) {
		if (c->item == NULL)
			c->child = sort_siblings(c->child, &scratch, &scap);
	}
	root->child = sort_siblings(root->child, &scratch, &scap);
	/* (5) A subject table, by base subject, case-insensitively. */
	size_t tops = 0;
	for (struct node *c = root->child; c != NULL; c = c->next)
		tops++;
	struct node **top = xmalloc((tops ? tops : 1) * sizeof(*top));
	tops = 0;
	for (struct node *c = root->child; c != NULL; c = c->next)
		top[tops++] = c;
	struct node **table = xcalloc(tops ? tops : 1, sizeof(*table));
	/* (B) table[first[i]]: the message for top[i]'s subject, where
	 * first[i] is the first top node with that subject (found by sorting
	 * the top nodes by subject, not by comparing every pair). */
	size_t *first = xmalloc((tops ? tops : 1) * sizeof(*first));
	subject_groups(top, tops, first);
	for (size_t i = 0; i < tops; i++) {
		struct node *cur = top[i];
		if (*thread_subject(cur) == '\0')
			continue;
		struct node **slot = &table[first[i]];
		if (*slot == NULL) {
			*slot = cur;
		} else if ((*slot)->item != NULL &&
			   (cur->item == NULL || ((*slot)->item->f->reply && !cur->item->f->reply))) {
			*slot = cur;
		}
	}
	/* (C) */
	for (size_t i = 0; i < tops; i++) {
		struct node *cur = top[i];
		/* Only what is still a child of the root. */
		if (cur->deleted || cur->parent != root || *thread_subject(cur) == '\0')
			continue;
		struct node **slot = &table[first[i]];
		struct node *tbl = *slot;
		if (tbl == cur)
			continue;
		if (tbl->item == NULL && cur->item == NULL) {
			unlink_node(cur);
			for (struct node *g = cur->child, *gn; g != NULL; g = gn) {
				gn = g->next;
				append_child(tbl, g);
			}
			cur->child = NULL;
			cur->deleted = true;
		} else if (tbl->item == NULL ||
			   (cur->item != NULL && cur->item->f->reply && !tbl->item->f->reply)) {
			unlink_node(cur);
			append_child(tbl, cur);
		} else {
			struct node *d = node_new(t);
			/* The dummy takes the table message's place at the top. */
			d->parent = root;
			d->next = tbl->next;
			struct node **pp = &root->child;
			while (*pp != tbl)
				pp = &(*pp)->next;
			*pp = d;
			tbl->parent = NULL;
			tbl->next = NULL;
			append_child(d, tbl);
			unlink_node(cur);
			append_child(d, cur);
			*slot = d;
		}
	}
	free(first);
	free(table);
	free(top);
	/* (6) Every sibling list, the deepest first, the top last. */
	order = post_order(t, root, &n);
	for (size_t i = 0; i < n; i++)
		order[i]->child = sort_siblings(order[i]->child, &scratch, &scap);
	free(order);
	root->child = sort_siblings(root->child, &scratch, &scap);
	free(scratch);
	for (size_t i = 0; i < count; i++)
		free(refcopies[i]);
	free(refcopies);
	free(map.keys);
	free(map.vals);
}

static int cmp_ordered(const void *x, const void *y)
{
	const struct item *a = x, *b = y;
	int r = casecmp(a->f->base_subject, b->f->base_subject);
	if (r == 0)
		r = cmp_num(a->sent, b->sent);
	return r != 0 ? r : cmp_num(a->pos, b->pos);
}

/* ORDEREDSUBJECT: by base subject and sent date, one thread per subject
 * whose first message is the parent of all the others; the threads by the
 * sent date of their first message. */
static void thread_orderedsubject(struct tree *t, struct node *root, struct item *items,
				  size_t count)
{
	qsort(items, count, sizeof(*items), cmp_ordered);
	struct node *head = NULL;
	for (size_t i = 0; i < count; i++) {
		struct node *x = node_new(t);
		x->item = &items[i];
		if (head != NULL && casecmp(head->item->f->base_subject,
					    items[i].f->base_subject) == 0) {
			append_child(head, x);
		} else {
			append_child(root, x);
			head = x;
		}
	}
	struct node **scratch = NULL;
	size_t scap = 0;
	root->child = sort_siblings(root->child, &scratch, &scap);
	free(scratch);
}

void imap_cmd_thread(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid)
{
	if (n < 3 || a[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: THREAD algorithm charset key ...");
		return;
	}
	bool references;
	if (str_ieq(a[0].str, "REFERENCES")) {
		references = true;
	} else if (str_ieq(a[0].str, "ORDEREDSUBJECT")) {
		references = false;
	} else {
		imap_tagged(s, "BAD", "Unknown threading algorithm");
		return;
	}
	if (!charset_ok(&a[1])) {
		imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
		return;
	}
	struct store_sort_fields *fields;
	size_t count;
	struct item *items = find(s, a + 2, n - 2, uid, &fields, &count);
	if (items == NULL)
		return;
	struct tree t = { 0 };
	/* The messages, a dummy per reference at most, subject dummies, the
	 * root. */
	t.cap = 2 * count + 1;
	for (size_t i = 0; references && i < count; i++) {
		for (const char *p = fields[i].refs; *p; p++)
			t.cap += *p == ' ';
		t.cap += *fields[i].refs != '\0';
	}
	t.nodes = xmalloc(t.cap * sizeof(*t.nodes));
	struct node *root = node_new(&t);
	if (references)
		thread_references(&t, root, items, count);
	else
		thread_orderedsubject(&t, root, items, count);
	struct buf out;
	buf_init(&out, 0);
	buf_append_str(&out, "* THREAD");
	if (root->child != NULL)
		buf_append_c(&out, ' ');
	for (const struct node *c = root->child; c != NULL; c = c->next)
		write_thread(s, &out, c, uid);
	imap_reply(s, "%s", out.data);
	buf_deinit(&out);
	free(t.nodes);
	free_found(items, fields, count);
	imap_sync(s, false);
	imap_tagged(s, "OK", "%sTHREAD completed", uid ? "UID " : "");
}
