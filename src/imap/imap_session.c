/* An IMAP session: the command loop, authentication, mailbox selection,
 * flags and the reporting of changes made by others.
 *
 * Commands come from the incremental parser (imap_parser.c) and run one at
 * a time: a command waiting for the store or for output room sets busy and
 * pauses input, and finishes with imap_command_done(). Changes to the
 * selected mailbox (new mail, flags and expunges by other sessions, POP3 or
 * the store) are found by asking the store what changed since the last
 * mod-sequence this session reported (imap_sync), after commands and, while
 * IDLE, whenever the mailbox's in-memory version moves. */
#include "imap/imap_private.h"
#include "imap/imap_mutf7.h"
#include "auth/auth.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "net/net.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>

/* RFC 9051 and common practice: a literal larger than this is refused
 * (APPEND takes max_message_size); command lines are long for UID sets. */
#define IMAP_LINE_MAX (64 * 1024)
#define IMAP_LITERAL_MAX (64 * 1024)
/* RFC 7888 5: the largest "{n+}" literal under LITERAL-. */
#define IMAP_NONSYNC_MAX 4096
#define IMAP_ARGS_MAX 4096
#define IMAP_DEPTH_MAX 16
/* RFC 9051 5.4: at least 30 minutes of inactivity before autologout.
 * Before login, [limits] login_timeout bounds the whole wait. */
#define IMAP_IDLE_TIMEOUT_S (30 * 60)

const struct config *imap_cfg;
struct store *imap_store;
static _Thread_local struct store_reader *tl_reader;

void imap_init(const struct config *config, struct store *store)
{
	imap_cfg = config;
	imap_store = store;
}

void imap_thread_deinit(void)
{
	store_reader_free(&tl_reader);
}

struct store_reader *imap_reader(void)
{
	if (tl_reader == NULL)
		tl_reader = store_reader_new(imap_store);
	return tl_reader;
}

/* ---- output ---- */

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	if (s->conn == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	struct buf b;
	buf_init(&b, 0);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append(&b, "\r\n", 2);
	conn_write(s->conn, b.data, b.len);
	buf_deinit(&b);
}

void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	if (s->conn == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "%s %s ", s->tag ? s->tag : "*", status);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	log_debug("event=imap_reply session=%s text=\"%.200s\"", conn_id(s->conn), b.data);
	buf_append(&b, "\r\n", 2);
	conn_write(s->conn, b.data, b.len);
	buf_deinit(&b);
	if (strcmp(status, "BAD") == 0 && ++s->errors >= imap_cfg->max_errors) {
		conn_printf(s->conn, "* BYE Too many invalid commands\r\n");
		conn_close(s->conn);
	}
}

void imap_append_astring(struct buf *b, const char *str, size_t len)
{
	bool quotable = len < 1024;
	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			quotable = false;
	}
	if (!quotable) {
		buf_printf(b, "{%zu}\r\n", len);
		buf_append(b, str, len);
		return;
	}
	buf_append_c(b, '"');
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			buf_append_c(b, '\\');
		buf_append_c(b, str[i]);
	}
	buf_append_c(b, '"');
}

static const struct {
	uint32_t bit;
	const char *name;
} system_flags[] = {
	{ STORE_FLAG_ANSWERED, "\\Answered" },
	{ STORE_FLAG_FLAGGED, "\\Flagged" },
	{ STORE_FLAG_DELETED, "\\Deleted" },
	{ STORE_FLAG_SEEN, "\\Seen" },
	{ STORE_FLAG_DRAFT, "\\Draft" },
};

void imap_append_flags(struct buf *b, const struct store_msg *m)
{
	bool first = true;
	buf_append_c(b, '(');
	for (size_t i = 0; i < ARRAY_SIZE(system_flags); i++) {
		if (m->flags & system_flags[i].bit) {
			buf_printf(b, "%s%s", first ? "" : " ", system_flags[i].name);
			first = false;
		}
	}
	if (m->keywords && *m->keywords)
		buf_printf(b, "%s%s", first ? "" : " ", m->keywords);
	buf_append_c(b, ')');
}

static void capabilities(struct imap_session *s, struct buf *b);
static void append_name(struct imap_session *s, struct buf *b, const char *name);
static void append_abort_all(struct imap_session *s);
static char *name_in(struct imap_session *s, const char *arg);
static char *decode_name(struct imap_session *s, const char *arg);

void imap_set_add(struct seqset *set, uint32_t n)
{
	if (set->count > 0 && set->r[set->count - 1].hi + 1 == n) {
		set->r[set->count - 1].hi = n;
		return;
	}
	/* Grows by doubling: count is a power of two when full. */
	if ((set->count & (set->count - 1)) == 0)
		set->r = xrealloc(set->r, (set->count ? set->count * 2 : 1) * sizeof(*set->r));
	set->r[set->count].lo = set->r[set->count].hi = n;
	set->count++;
}

void imap_append_set(struct buf *b, const struct seqset *set)
{
	for (size_t i = 0; i < set->count; i++) {
		buf_printf(b, "%s%u", i ? "," : "", set->r[i].lo);
		if (set->r[i].hi != set->r[i].lo)
			buf_printf(b, ":%u", set->r[i].hi);
	}
}

/* ---- \Recent (RFC 3501 2.3.2) ----
 *
 * A message is \Recent to the first session told of it that has the
 * mailbox selected read-write, and to no session after that one; read-only
 * sessions see it without taking it. What is taken is one number per
 * mailbox: the lowest UID no read-write session has been told of. It is
 * kept in memory for the process, not in the store (that would need a
 * column in the mailboxes table): after a restart, mail that came before
 * the first SELECT or STATUS of the mailbox is not \Recent. IMAP4rev2
 * dropped \Recent (RFC 9051 appendix E item 12), so this is for rev1
 * clients only. */
#define RECENT_BUCKETS 1024
struct recent_entry {
	int64_t mailbox_id;
	uint32_t next;
	struct recent_entry *link;
};
static struct recent_entry *recent_table[RECENT_BUCKETS];
static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;

/* The lowest UID of the mailbox not yet taken (init for a mailbox not seen
 * before); with take, the UIDs below upto are taken from now on. */
static uint32_t recent_next(int64_t mailbox_id, uint32_t init, uint32_t upto, bool take)
{
	pthread_mutex_lock(&recent_lock);
	struct recent_entry **slot = &recent_table[(uint64_t)mailbox_id % RECENT_BUCKETS], *e;
	for (e = *slot; e != NULL && e->mailbox_id != mailbox_id; e = e->link)
		;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->mailbox_id = mailbox_id;
		e->next = init;
		e->link = *slot;
		*slot = e;
	}
	uint32_t next = e->next;
	if (take && upto > e->next)
		e->next = upto;
	pthread_mutex_unlock(&recent_lock);
	return next;
}

/* New messages from first on in the view: which of them are \Recent to
 * this session (and taken from the others when it is read-write). */
static void recent_arrived(struct imap_session *s, size_t first)
{
	struct imap_view *v = &s->view;
	if (first >= v->count)
		return;
	uint32_t top = v->msgs[v->count - 1].uid + 1;
	uint32_t next = recent_next(v->info.id, v->msgs[first].uid, top, !v->readonly);
	size_t n = 0;
	for (size_t i = first; i < v->count; i++) {
		if (v->msgs[i].uid >= next) {
			imap_set_add(&v->recent, v->msgs[i].uid);
			n++;
		}
	}
	if (n > 0 && !s->rev2) {
		size_t total = 0;
		for (size_t i = 0; i < v->count; i++)
			total += seqset_has(&v->recent, v->msgs[i].uid);
		imap_reply(s, "* %zu RECENT", total);
	}
}

bool imap_is_recent(struct imap_session *s, uint32_t uid)
{
	return seqset_has(&s->view.recent, uid);
}

void imap_append_view_flags(struct imap_session *s, struct buf *b, size_t pos)
{
	const struct store_msg *m = &s->view.msgs[pos];
	imap_append_flags(b, m);
	if (!s->rev2 && imap_is_recent(s, m->uid)) {
		b->len--;	/* reopen the list: drop its ")" */
		buf_append_str(b, b->data[b->len - 1] == '(' ? "\\Recent)" : " \\Recent)");
	}
}

/* "* n FETCH (UID u FLAGS (...))": UID always, as RFC 9051 7.5.2 requires
 * of unsolicited FETCH responses. */
static void imap_reply_flags(struct imap_session *s, size_t pos)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "* %zu FETCH (UID %u ", pos + 1, s->view.msgs[pos].uid);
	if (s->condstore)
		buf_printf(&b, "MODSEQ (%llu) ", (unsigned long long)s->view.msgs[pos].modseq);
	buf_append_str(&b, "FLAGS ");
	imap_append_view_flags(s, &b, pos);
	buf_append_c(&b, ')');
	imap_reply(s, "%s", b.data);
	buf_deinit(&b);
}


/* ---- the view of the selected mailbox ---- */

static void view_clear(struct imap_view *v)
{
	store_msgs_free(&v->msgs, v->count);
	seqset_deinit(&v->recent);
	free(v->name);
	memset(v, 0, sizeof(*v));
}

static size_t view_find(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count && v->msgs[lo].uid == uid ? lo : (size_t)-1;
}

static void msg_move(struct store_msg *dst, struct store_msg *src)
{
	free(dst->body);
	free(dst->prefix);
	free(dst->keywords);
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

void imap_sync(struct imap_session *s, bool expunges)
{
	struct imap_view *v = &s->view;
	if (s->state != IMAP_SELECTED || s->conn == NULL)
		return;
	struct store_changes ch;
	if (store_mailbox_changes(imap_reader(), v->info.id, v->modseq, &ch) < 0) {
		log_error("event=imap_sync_failed session=%s", conn_id(s->conn));
		return;
	}
	bool complete = true;
	if (expunges) {
		/* With QRESYNC, one VANISHED (RFC 7162 3.2.10.2) of the UIDs
		 * the session knows instead of EXPUNGEs; ch.expunged ascends. */
		struct seqset vanished = { 0, NULL };
		for (size_t i = 0; i < ch.expunged_count; i++) {
			size_t pos = view_find(v, ch.expunged[i]);
			if (pos == (size_t)-1)
				continue;
			if (s->qresync)
				imap_set_add(&vanished, ch.expunged[i]);
			else
				imap_reply(s, "* %zu EXPUNGE", pos + 1);
			struct store_msg gone = v->msgs[pos];
			free(gone.body);
			free(gone.prefix);
			free(gone.keywords);
			memmove(&v->msgs[pos], &v->msgs[pos + 1],
				(v->count - pos - 1) * sizeof(*v->msgs));
			v->count--;
		}
		if (vanished.count > 0) {
			struct buf b;
			buf_init(&b, 0);
			imap_append_set(&b, &vanished);
			imap_reply(s, "* VANISHED %s", b.data);
			buf_deinit(&b);
		}
		seqset_deinit(&vanished);
	} else {
		for (size_t i = 0; i < ch.expunged_count && complete; i++)
			complete = view_find(v, ch.expunged[i]) == (size_t)-1;
	}
	size_t added = 0;
	for (size_t i = 0; i < ch.msg_count; i++) {
		struct store_msg *m = &ch.msgs[i];
		size_t pos = view_find(v, m->uid);
		if (pos != (size_t)-1) {
			/* A change already in the view was reported by an earlier
			 * sync that had to come back for held-back expunges, or
			 * was the session's own .SILENT STORE: not again. The
			 * messages of a STORE running now are answered by
			 * store_done, once each (RFC 9051 6.4.6). */
			bool echo = m->modseq != v->msgs[pos].modseq &&
				    !seqset_has(&s->store_uids, m->uid);
			msg_move(&v->msgs[pos], m);
			if (echo)
				imap_reply_flags(s, pos);
		} else if (v->count == 0 || m->uid > v->msgs[v->count - 1].uid) {
			v->msgs = xrealloc(v->msgs, (v->count + 1) * sizeof(*v->msgs));
			memset(&v->msgs[v->count], 0, sizeof(*v->msgs));
			msg_move(&v->msgs[v->count], m);
			v->count++;
			added++;
		}
	}
	if (added) {
		imap_reply(s, "* %zu EXISTS", v->count);
		recent_arrived(s, v->count - added);
	}
	/* Expunges held back: come back for them later from the same point. */
	if (complete) {
		v->modseq = ch.highestmodseq;
		v->info.uidnext = ch.uidnext;
	} else if (s->condstore) {
		/* RFC 7162 3.2 and 6: MODSEQs above a held-back expunge may be
		 * sent now; this tells the client where it really is. */
		imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Expunges held back",
			   (unsigned long long)v->modseq);
	}
	store_changes_deinit(&ch);
}

int imap_seqset(struct imap_session *s, const char *arg, bool uid, struct seqset *set_r)
{
	struct imap_view *v = &s->view;
	if (strcmp(arg, "$") == 0) {
		/* RFC 9051 6.4.4.1: "$" holds UIDs; expunged ones simply match
		 * nothing any more. For message numbers, map them through the
		 * view as it is now. */
		memset(set_r, 0, sizeof(*set_r));
		for (size_t i = 0; i < s->saved.count && uid; i++) {
			imap_set_add(set_r, s->saved.r[i].lo);
			set_r->r[set_r->count - 1].hi = s->saved.r[i].hi;
		}
		for (size_t i = 0; i < v->count && !uid; i++) {
			if (seqset_has(&s->saved, v->msgs[i].uid))
				imap_set_add(set_r, (uint32_t)i + 1);
		}
		return 0;
	}
	uint32_t star = uid ? (v->count ? v->msgs[v->count - 1].uid : 0) : (uint32_t)v->count;
	if (seqset_parse(arg, star, set_r) < 0)
		return -1;
	/* RFC 9051 9 (seq-number): a number beyond the last message is an
	 * error, and "*" in an empty mailbox too (it became 0). UIDs are
	 * not: a UID set may name UIDs that do not exist. */
	for (size_t i = 0; !uid && i < set_r->count; i++) {
		if (set_r->r[i].lo == 0 || set_r->r[i].hi > v->count) {
			seqset_deinit(set_r);
			return -1;
		}
	}
	return 0;
}

void imap_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	if (s->state == IMAP_SELECTED)
		imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			   (unsigned long long)s->view.modseq);
}

/* ---- command plumbing ---- */

/* Gives the account's session slot back (max_sessions_per_user): at
 * LOGOUT and UNAUTHENTICATE before the client hears OK, so it can log in
 * again at once; at a timeout, a dropped connection or shutdown. */
static void session_release(struct imap_session *s)
{
	if (s->counted)
		auth_session_release(s->account_id);
	s->counted = false;
}

/* Before login: login_timeout from the greeting (or UNAUTHENTICATE) to a
 * successful login, as an idle timeout and a deadline, so bytes trickled
 * in do not keep the connection. */
static void login_clock(struct imap_session *s)
{
	s->cmd_clock = false;
	conn_set_timeout(s->conn, imap_cfg->login_timeout);
	conn_set_deadline(s->conn, imap_cfg->login_timeout);
}

/* Once logged in, each command must arrive whole (line and literals)
 * within command_timeout of its first byte; the 30-minute idle timeout
 * alone would let a client dribble a byte now and then for ever. */
static void command_clock(struct imap_session *s, bool running)
{
	if (!(s->state & (IMAP_AUTH | IMAP_SELECTED)) || s->cmd_clock == running)
		return;
	s->cmd_clock = running;
	conn_set_deadline(s->conn, running ? imap_cfg->command_timeout : 0);
}

static void session_free(struct imap_session *s)
{
	session_release(s);
	append_abort_all(s);
	imap_fetch_free(&s->fetch);
	imap_parser_free(&s->parser);
	sasl_free(&s->sasl);
	free(s->sasl_final);
	free(s->account);
	free(s->tag);
	view_clear(&s->view);
	seqset_deinit(&s->store_uids);
	store_flags_result_deinit(&s->store_res);
	seqset_deinit(&s->saved);
	if (s->idle_timer)
		event_free(s->idle_timer);
	free(s);
}

static void on_read(struct conn *c);

void imap_command_done(struct imap_session *s)
{
	xfree(&s->tag);
	if (s->busy) {
		s->busy = false;
		if (s->conn == NULL) {
			session_free(s);
			return;
		}
		conn_resume_read(s->conn);
	}
}

static void wait_for(struct imap_session *s)
{
	s->busy = true;
	conn_pause_read(s->conn);
}

static const char *arg_str(const struct imap_arg *args, size_t argc, size_t i)
{
	return i < argc && imap_arg_is_string(&args[i]) ? args[i].str : NULL;
}

/* ---- any state ---- */

static void capabilities(struct imap_session *s, struct buf *b)
{
	/* RFC 9051 appendix A: both revisions; a client wanting rev2
	 * semantics sends ENABLE IMAP4rev2. The rev1 extensions folded into
	 * rev2 stay listed for rev1 clients. */
	buf_append_str(b, "IMAP4rev1 IMAP4rev2");
	/* RFC 7888 5: one or the other, never both. */
	buf_append_str(b, imap_cfg->imap_literals == IMAP_LITERALS_MINUS ? " LITERAL-" : " LITERAL+");
	buf_append_str(b, " SASL-IR ID ENABLE IDLE UNSELECT UIDPLUS"
		       " MOVE NAMESPACE SPECIAL-USE BINARY ESEARCH SEARCHRES LIST-EXTENDED"
		       " LIST-STATUS MULTIAPPEND STATUS=SIZE UTF8=ACCEPT"
		       " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT WITHIN");
	/* RFC 7162 (every mailbox keeps mod-sequences and tombstones). */
	buf_append_str(b, " CONDSTORE QRESYNC");
	/* RFC 8474, RFC 8514, RFC 8970. */
	buf_append_str(b, " OBJECTID SAVEDATE PREVIEW");
	/* RFC 7889: the largest message APPEND takes. */
	buf_printf(b, " APPENDLIMIT=%llu", (unsigned long long)imap_cfg->max_message_size);
	bool plain_ok = conn_is_tls(s->conn) ||
		imap_cfg->plaintext_auth == PLAINTEXT_AUTH_ALWAYS ||
		(imap_cfg->plaintext_auth == PLAINTEXT_AUTH_LOOPBACK &&
		 conn_peer_is_loopback(s->conn));
	/* RFC 4978: for the authenticated states, where COMPRESS is. */
	if (s->state != IMAP_NOT_AUTH)
		buf_append_str(b, " COMPRESS=DEFLATE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE");
	/* RFC 8437 3: may be listed only once authenticated (also under
	 * COMPRESS: see cmd_unauthenticate). */
	if (s->state != IMAP_NOT_AUTH)
		buf_append_str(b, " UNAUTHENTICATE");
	if (s->state == IMAP_NOT_AUTH) {
		if (!conn_is_tls(s->conn) && conn_tls_available())
			buf_append_str(b, " STARTTLS");
		if (plain_ok)
			buf_append_str(b, " AUTH=PLAIN AUTH=LOGIN AUTH=SCRAM-SHA-256");
		else
			buf_append_str(b, " LOGINDISABLED");
	}
}

static bool auth_allowed(struct imap_session *s)
{
	return conn_is_tls(s->conn) || imap_cfg->plaintext_auth == PLAINTEXT_AUTH_ALWAYS ||
	       (imap_cfg->plaintext_auth == PLAINTEXT_AUTH_LOOPBACK &&
		conn_peer_is_loopback(s->conn));
}

static void cmd_capability(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	struct buf b;
	buf_init(&b, 0);
	capabilities(s, &b);
	imap_reply(s, "* CAPABILITY %s", b.data);
	buf_deinit(&b);
	imap_tagged(s, "OK", "Capability completed");
}

static void cmd_noop(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_sync(s, true);
	imap_tagged(s, "OK", "NOOP completed");
}

static void cmd_logout(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	session_release(s);
	imap_reply(s, "* BYE Logging out");
	imap_tagged(s, "OK", "Logout completed");
	s->state = IMAP_LOGOUT;
	conn_close(s->conn);
}

/* RFC 4978: DEFLATE both ways from right after the tagged OK. */
static void cmd_compress(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *mech = arg_str(a, n, 0);
	if (mech == NULL || n != 1 || !str_ieq(mech, "DEFLATE")) {
		imap_tagged(s, "BAD", "Syntax: COMPRESS DEFLATE");
		return;
	}
	if (conn_is_compressed(s->conn)) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active");
		return;
	}
	imap_tagged(s, "OK", "DEFLATE active");
	if (conn_compress(s->conn) < 0)
		conn_close(s->conn);
}

/* RFC 8437: back to the not authenticated state, with everything the
 * session held for the user dropped: the selected mailbox (without
 * EXPUNGE responses), what ENABLE turned on (CONDSTORE, QRESYNC,
 * IMAP4rev2, UTF8=ACCEPT: 4.1), the saved search "$" (4.1), and the
 * idle timeout of an authenticated session. TLS stays (3). Under
 * COMPRESS, "the server terminates its outgoing compression layer after
 * it sends the CRLF following the OK response. The client terminates its
 * outgoing compression layer after the CRLF following the UNAUTHENTICATE
 * command" (3): both DEFLATE streams end there (conn_compress_end), and a
 * later COMPRESS starts fresh ones. Never NO (3). */
static void cmd_unauthenticate(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	if (n != 0) {
		imap_tagged(s, "BAD", "Syntax: UNAUTHENTICATE");
		return;
	}
	append_abort_all(s);
	view_clear(&s->view);
	session_release(s);
	s->account_id = 0;
	xfree(&s->account);
	s->condstore = s->qresync = false;
	s->rev2 = s->utf8 = false;
	seqset_deinit(&s->saved);
	s->state = IMAP_NOT_AUTH;
	login_clock(s);
	imap_tagged(s, "OK", "Not authenticated any more");
	if (conn_is_compressed(s->conn))
		(void)conn_compress_end(s->conn);
}

static void cmd_id(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	/* RFC 2971: the client's list is only logged. */
	imap_reply(s, "* ID (\"name\" \"yubin\")");
	imap_tagged(s, "OK", "ID completed");
}

/* ---- not authenticated ---- */

static void cmd_starttls(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	if (conn_is_tls(s->conn) || !conn_tls_available()) {
		imap_tagged(s, "BAD", "TLS not available or already active");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now");
	if (conn_starttls(s->conn) < 0) {
		conn_close(s->conn);
		return;
	}
	/* RFC 9051 6.2.1: nothing read before the handshake counts. */
	imap_parser_reset(s->parser);
}

static void login_done(void *arg, enum auth_result result, int64_t account_id,
		       const char *address)
{
	struct imap_session *s = arg;
	sasl_free(&s->sasl);
	xfree(&s->sasl_final);
	if (s->conn != NULL) {
		uint32_t sessions = 0;
		if (result == AUTH_OK && !auth_session_acquire(account_id, &sessions)) {
			/* [limits] max_sessions_per_user, IMAP and POP3 together.
			 * RFC 5530 3 (RFC 9051 7.1): LIMIT, an implementation
			 * limit; the session stays not authenticated and may
			 * try again. */
			log_info("event=login_refused session=%s protocol=imap user=%s "
				 "reason=max_sessions_per_user sessions=%u limit=%u",
				 conn_id(s->conn), address, sessions, auth_session_limit());
			imap_tagged(s, "NO", "[LIMIT] Too many sessions of this account (at most %u),"
				    " close one first", auth_session_limit());
		} else if (result == AUTH_OK) {
			s->counted = true;
			s->account_id = account_id;
			s->account = xstrdup(address);
			s->state = IMAP_AUTH;
			s->cmd_clock = false;
			conn_set_deadline(s->conn, 0);
			conn_set_timeout(s->conn, IMAP_IDLE_TIMEOUT_S);
			log_info("event=login session=%s protocol=imap user=%s tls=%s sessions=%u",
				 conn_id(s->conn), address, conn_is_tls(s->conn) ? "yes" : "no",
				 sessions);
			struct buf b;
			buf_init(&b, 0);
			capabilities(s, &b);
			imap_tagged(s, "OK", "[CAPABILITY %s] Logged in", b.data);
			buf_deinit(&b);
		} else if (result == AUTH_TEMPFAIL) {
			imap_tagged(s, "NO", "[UNAVAILABLE] Temporary failure, try again later");
		} else {
			imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
		}
	}
	imap_command_done(s);
}

static void cmd_login(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *user = arg_str(a, n, 0), *pass = arg_str(a, n, 1);
	if (user == NULL || pass == NULL || n != 2) {
		imap_tagged(s, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (!auth_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	wait_for(s);
	auth_check_password(conn_loop(s->conn), "imap", conn_peer_ip(s->conn), user, pass,
			    login_done, s);
}

static void sasl_next(struct imap_session *s, const unsigned char *in, size_t len)
{
	struct buf ch, enc;
	const char *error = NULL;
	buf_init(&ch, 0);
	buf_init(&enc, 0);
	enum sasl_status st = sasl_step(s->sasl, in, len, &ch, &error);
	switch (st) {
	case SASL_CONTINUE:
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		imap_reply(s, "+ %s", enc.data ? enc.data : "");
		break;
	case SASL_CHECK_PASSWORD:
		wait_for(s);
		auth_check_password(conn_loop(s->conn), "imap", conn_peer_ip(s->conn),
				    sasl_authcid(s->sasl), sasl_password(s->sasl), login_done, s);
		break;
	case SASL_OK:
		base64_encode(ch.data ? ch.data : "", ch.len, &enc);
		s->sasl_final = buf_steal(&enc, NULL);
		imap_reply(s, "+ %s", s->sasl_final);
		break;
	case SASL_FAIL:
		log_info("event=sasl_failed session=%s reason=\"%s\"", conn_id(s->conn), error);
		wait_for(s);
		auth_finish_external(conn_loop(s->conn), "imap", conn_peer_ip(s->conn),
				     sasl_authcid(s->sasl) ? sasl_authcid(s->sasl) : "", false,
				     login_done, s);
		break;
	}
	buf_deinit(&enc);
	buf_deinit(&ch);
}

/* A line answering a "+" during AUTHENTICATE. */
static void sasl_line(struct imap_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		sasl_free(&s->sasl);
		xfree(&s->sasl_final);
		imap_tagged(s, "BAD", "Authentication cancelled");
		imap_command_done(s);
		return;
	}
	if (s->sasl_final) {
		bool ok = len == 0;
		wait_for(s);
		auth_finish_external(conn_loop(s->conn), "imap", conn_peer_ip(s->conn),
				     sasl_authcid(s->sasl), ok, login_done, s);
		return;
	}
	struct buf dec;
	buf_init(&dec, SASL_RESPONSE_MAX);
	if (base64_decode(line, len, &dec) < 0) {
		sasl_free(&s->sasl);
		imap_tagged(s, "BAD", "Cannot decode the response");
		imap_command_done(s);
	} else {
		sasl_next(s, (const unsigned char *)(dec.data ? dec.data : ""), dec.len);
	}
	mem_wipe(dec.data ? dec.data : (char *)"", dec.data ? dec.len : 0);
	buf_deinit(&dec);
}

static void cmd_authenticate(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *mech = arg_str(a, n, 0);
	if (mech == NULL || n > 2) {
		imap_tagged(s, "BAD", "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!auth_allowed(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS first");
		return;
	}
	static const struct sasl_lookup lookup = { auth_scram_record, NULL };
	s->sasl = sasl_new(mech, &lookup);
	if (s->sasl == NULL) {
		imap_tagged(s, "NO", "Unsupported authentication mechanism");
		return;
	}
	/* The tag stays until the exchange ends. */
	if (n == 2) {
		/* RFC 4959 SASL-IR: "=" is an empty initial response. */
		const char *ir = a[1].str;
		if (strcmp(ir, "=") == 0)
			sasl_next(s, (const unsigned char *)"", 0);
		else
			sasl_line(s, ir, a[1].len);
	} else {
		sasl_next(s, NULL, 0);
	}
}

/* ---- authenticated ---- */

static void cmd_enable(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	/* RFC 5161 3.1: one or more capability names; unknown ones are
	 * ignored, and ENABLED lists what this command turned on. */
	if (n == 0) {
		imap_tagged(s, "BAD", "Syntax: ENABLE capability ...");
		return;
	}
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "* ENABLED");
	for (size_t i = 0; i < n; i++) {
		if (a[i].type != IMAP_ARG_ATOM) {
			buf_deinit(&b);
			imap_tagged(s, "BAD", "ENABLE takes capability names (atoms)");
			return;
		}
	}
	bool condstore_was = s->condstore, condstore_listed = false;
	for (size_t i = 0; i < n; i++) {
		/* IMAP4rev2 brings UTF-8 names with it (RFC 9051 appendix A). */
		if (str_ieq(a[i].str, "IMAP4rev2") && !s->rev2) {
			s->rev2 = true;
			s->utf8 = true;
			buf_append_str(&b, " IMAP4rev2");
		} else if (str_ieq(a[i].str, "UTF8=ACCEPT") && !s->utf8) {
			/* RFC 6855 3: UTF-8 names, and UTF-8 in quoted strings. */
			s->utf8 = true;
			buf_append_str(&b, " UTF8=ACCEPT");
		} else if (str_ieq(a[i].str, "QRESYNC") && !s->qresync) {
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE. */
			s->qresync = true;
			s->condstore = true;
			buf_append_str(&b, " QRESYNC");
		} else if (str_ieq(a[i].str, "CONDSTORE") && !condstore_was && !condstore_listed) {
			s->condstore = true;
			condstore_listed = true;
			buf_append_str(&b, " CONDSTORE");
		}
	}
	imap_reply(s, "%s", b.data);
	buf_deinit(&b);
	imap_tagged(s, "OK", "Enabled");
}

static void cmd_namespace(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_reply(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, "OK", "Namespace completed");
}

static void cmd_list(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_list(s, a, n, false);
}

static void cmd_lsub(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_list(s, a, n, true);
}

/* A mailbox name or pattern as the client sends it, in UTF-8 (a new
 * string): modified UTF-7 for IMAP4rev1, UTF-8 itself once IMAP4rev2 or
 * UTF8=ACCEPT is enabled (RFC 9051 appendix A, RFC 6855 3). NULL when it
 * is not valid. */
static char *name_in(struct imap_session *s, const char *arg)
{
	if (!s->utf8)
		return mutf7_decode(arg);
	char *check = mutf7_encode(arg);	/* NULL unless valid UTF-8 */
	if (check == NULL)
		return NULL;
	free(check);
	return xstrdup(arg);
}

/* A mailbox name from the client: modified UTF-7 to UTF-8 (RFC 3501
 * 5.1.3), "INBOX" in any case is INBOX (RFC 9051 5.1), and a name we can
 * store: no control characters, no wildcards, no empty level. NULL (after
 * answering BAD) when it is not. */
static char *decode_name(struct imap_session *s, const char *arg)
{
	char *name = name_in(s, arg);
	const char *why = name == NULL ? (s->utf8 ? "Invalid UTF-8 mailbox name" :
					  "Invalid modified UTF-7 mailbox name") : NULL;
	if (name != NULL) {
		size_t len = strlen(name);
		if (len > 0 && name[len - 1] == '/')
			name[--len] = '\0';	/* "a/" is "a" (CREATE, RFC 9051 6.3.4) */
		if (len == 0 || len > 512)
			why = "Invalid mailbox name length";
		else if (name[0] == '/' || strstr(name, "//") != NULL)
			why = "Empty hierarchy level in mailbox name";
		else if (strpbrk(name, "*%") != NULL)
			why = "Wildcards are not allowed in mailbox names";
		for (const unsigned char *p = (const unsigned char *)name; !why && *p; p++) {
			if (*p < 0x20 || *p == 0x7f)
				why = "Control characters are not allowed in mailbox names";
		}
		/* "." and ".." levels mean "here" and "up" to clients and
		 * tools that map names to folders; names are never paths
		 * here, but such a name is refused so that none can become
		 * one (docs/security.md). */
		for (const char *lv = name; !why && lv != NULL; lv = strchr(lv, '/')) {
			if (*lv == '/')
				lv++;
			size_t n = strcspn(lv, "/");
			if ((n == 1 && lv[0] == '.') || (n == 2 && lv[0] == '.' && lv[1] == '.'))
				why = "\".\" and \"..\" are not allowed as mailbox name levels";
		}
		if (!why && (str_ieq(name, "INBOX") || str_istarts(name, "INBOX/")))
			memcpy(name, "INBOX", 5);
	}
	if (why) {
		free(name);
		imap_tagged(s, "BAD", "%s", why);
		return NULL;
	}
	return name;
}

static void append_name(struct imap_session *s, struct buf *b, const char *name)
{
	if (s->utf8) {
		/* RFC 9051 / RFC 6855 3: UTF-8 in a quoted string. Names are
		 * short and have no CR, LF or NUL (decode_name). */
		buf_append_c(b, '"');
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append_c(b, '\\');
			buf_append_c(b, *p);
		}
		buf_append_c(b, '"');
		return;
	}
	char *m = mutf7_encode(name);
	imap_append_astring(b, m ? m : name, strlen(m ? m : name));
	free(m);
}

char *imap_name_in(struct imap_session *s, const char *arg)
{
	return name_in(s, arg);
}

char *imap_decode_name(struct imap_session *s, const char *arg)
{
	return decode_name(s, arg);
}

void imap_append_name(struct imap_session *s, struct buf *b, const char *name)
{
	append_name(s, b, name);
}

/* ---- STATUS (RFC 9051 6.3.11) ---- */

enum status_item {
	ST_MESSAGES, ST_UIDNEXT, ST_UIDVALIDITY, ST_UNSEEN, ST_RECENT, ST_SIZE, ST_DELETED,
	ST_APPENDLIMIT, ST_HIGHESTMODSEQ, ST_MAILBOXID,
};

static const char *const status_names[] = {
	[ST_MESSAGES] = "MESSAGES", [ST_UIDNEXT] = "UIDNEXT", [ST_UIDVALIDITY] = "UIDVALIDITY",
	[ST_UNSEEN] = "UNSEEN", [ST_RECENT] = "RECENT", [ST_SIZE] = "SIZE",
	[ST_DELETED] = "DELETED", [ST_APPENDLIMIT] = "APPENDLIMIT",
	[ST_HIGHESTMODSEQ] = "HIGHESTMODSEQ", [ST_MAILBOXID] = "MAILBOXID",
};

int imap_status_parse(const struct imap_arg *list, size_t n, struct imap_status_req *req)
{
	req->count = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM)
			return -1;
		size_t k = 0;
		while (k < ARRAY_SIZE(status_names) && !str_ieq(list[i].str, status_names[k]))
			k++;
		if (k == ARRAY_SIZE(status_names))
			return -1;
		/* An item asked twice is answered once. */
		bool dup = false;
		for (size_t j = 0; j < req->count; j++)
			dup |= req->item[j] == k;
		if (!dup)
			req->item[req->count++] = (unsigned char)k;
	}
	return 0;
}

/* How many messages of the mailbox are \Recent to a session selecting it
 * now (RFC 3501 6.3.10): this session's own count for its selected
 * mailbox, else those no read-write session has taken. */
static int status_recent(struct imap_session *s, int64_t mailbox_id, uint32_t uidnext,
			 uint32_t *recent_r)
{
	*recent_r = 0;
	if (s->state == IMAP_SELECTED && s->view.info.id == mailbox_id) {
		for (size_t i = 0; i < s->view.count; i++)
			*recent_r += imap_is_recent(s, s->view.msgs[i].uid);
		return 0;
	}
	uint32_t next = recent_next(mailbox_id, uidnext, 0, false);
	if (next >= uidnext)
		return 0;
	/* Rare (rev1 clients asking RECENT with new mail): the listing. */
	struct store_msg *msgs;
	size_t count;
	if (store_mailbox_listing(imap_reader(), mailbox_id, &msgs, &count) < 0)
		return -1;
	for (size_t i = 0; i < count; i++)
		*recent_r += msgs[i].uid >= next;
	store_msgs_free(&msgs, count);
	return 0;
}

bool imap_status_wants_size(const struct imap_status_req *req)
{
	for (size_t i = 0; i < req->count; i++) {
		if (req->item[i] == ST_SIZE)
			return true;
	}
	return false;
}

int imap_status_reply(struct imap_session *s, int64_t mailbox_id, const char *name,
		      const struct imap_status_req *req)
{
	struct store_status st;
	if (store_mailbox_status(imap_reader(), mailbox_id, &st) < 0)
		return -1;
	return imap_status_reply_with(s, &st, name, req);
}

int imap_status_reply_with(struct imap_session *s, const struct store_status *stp,
			   const char *name, const struct imap_status_req *req)
{
	struct store_status st = *stp;
	int64_t mailbox_id = st.mailbox_id;
	uint32_t recent = 0;
	for (size_t i = 0; i < req->count; i++) {
		if (req->item[i] == ST_RECENT && status_recent(s, mailbox_id, st.uidnext, &recent) < 0)
			return -1;
		/* RFC 7162 3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE. */
		if (req->item[i] == ST_HIGHESTMODSEQ)
			imap_condstore_enable(s);
	}
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "* STATUS ");
	append_name(s, &b, name);
	buf_append_str(&b, " (");
	for (size_t i = 0; i < req->count; i++) {
		if (i)
			buf_append_c(&b, ' ');
		buf_printf(&b, "%s ", status_names[req->item[i]]);
		switch ((enum status_item)req->item[i]) {
		case ST_MESSAGES: buf_printf(&b, "%u", st.messages); break;
		case ST_UIDNEXT: buf_printf(&b, "%u", st.uidnext); break;
		case ST_UIDVALIDITY: buf_printf(&b, "%u", st.uidvalidity); break;
		case ST_UNSEEN: buf_printf(&b, "%u", st.unseen); break;
		case ST_RECENT: buf_printf(&b, "%u", recent); break;
		/* RFC 8438 / RFC 9051: the total of RFC822.SIZE. */
		case ST_SIZE: buf_printf(&b, "%llu", (unsigned long long)st.size); break;
		case ST_DELETED: buf_printf(&b, "%u", st.deleted); break;
		/* RFC 7889 2.2: the same limit for every mailbox. */
		case ST_APPENDLIMIT:
			buf_printf(&b, "%llu", (unsigned long long)imap_cfg->max_message_size);
			break;
		case ST_HIGHESTMODSEQ:
			buf_printf(&b, "%llu", (unsigned long long)st.highestmodseq);
			break;
		/* RFC 8474 4.3 */
		case ST_MAILBOXID: buf_printf(&b, "(%s)", st.objectid); break;
		}
	}
	buf_append_c(&b, ')');
	imap_reply(s, "%s", b.data);
	buf_deinit(&b);
	return 0;
}

static void cmd_status(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *arg = arg_str(a, n, 0);
	struct imap_status_req req;
	if (arg == NULL || n != 2 || a[1].type != IMAP_ARG_LIST) {
		imap_tagged(s, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	if (imap_status_parse(a[1].list, a[1].len, &req) < 0) {
		imap_tagged(s, "BAD", "Unknown or missing STATUS item");
		return;
	}
	char *name = decode_name(s, arg);
	if (name == NULL)
		return;
	struct store_mailbox_info info;
	int r = store_mailbox_get(imap_reader(), s->account_id, name, &info);
	if (r <= 0 || imap_status_reply(s, info.id, name, &req) < 0) {
		free(name);
		imap_tagged(s, "NO", r == 0 ? "[NONEXISTENT] No such mailbox" :
			    "[SERVERBUG] Cannot read the mailbox");
		return;
	}
	free(name);
	imap_tagged(s, "OK", "STATUS completed");
}

/* QRESYNC (uidvalidity modseq [known-uids [seq-match-data]]) (RFC 7162
 * 3.2.5). The sequence match data is checked and not used: every
 * tombstone is kept, so VANISHED (EARLIER) is exact without it. */
struct qresync_req {
	bool on, has_uids;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct seqset uids;
};

/* A sequence set of known-uids / seq-match-data: "*" is not allowed. */
static int known_set(const struct imap_arg *a, struct seqset *set_r)
{
	memset(set_r, 0, sizeof(*set_r));
	if (a->type != IMAP_ARG_ATOM || strchr(a->str, '*') != NULL)
		return -1;
	return seqset_parse(a->str, 1, set_r);
}

/* The select-params of RFC 4466 we know: CONDSTORE and QRESYNC. Returns
 * NULL, or why they are bad. */
static const char *select_params(struct imap_session *s, const struct imap_arg *p, size_t n,
				 bool *condstore_r, struct qresync_req *q)
{
	const char *syntax = "Syntax: QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])";
	for (size_t i = 0; i < n; i++) {
		if (p[i].type != IMAP_ARG_ATOM)
			return "Invalid SELECT parameter";
		if (str_ieq(p[i].str, "CONDSTORE")) {
			*condstore_r = true;
			continue;
		}
		if (!str_ieq(p[i].str, "QRESYNC") || q->on)
			return "Unknown SELECT parameter";
		/* RFC 7162 3.2.5: BAD unless ENABLE QRESYNC came first. */
		if (!s->qresync)
			return "QRESYNC is not enabled";
		if (++i >= n || p[i].type != IMAP_ARG_LIST || p[i].len < 2 || p[i].len > 4)
			return syntax;
		const struct imap_arg *l = p[i].list;
		uint64_t uv;
		if (l[0].type != IMAP_ARG_ATOM || str_to_u64(l[0].str, &uv) < 0 || uv == 0 ||
		    uv > UINT32_MAX || l[1].type != IMAP_ARG_ATOM ||
		    str_to_u64(l[1].str, &q->modseq) < 0 || q->modseq > INT64_MAX)
			return "Invalid UIDVALIDITY or mod-sequence in QRESYNC";
		q->uidvalidity = (uint32_t)uv;
		q->on = true;
		size_t k = 2;
		if (k < p[i].len && l[k].type == IMAP_ARG_ATOM) {
			if (known_set(&l[k], &q->uids) < 0)
				return "Invalid known-uids in QRESYNC";
			q->has_uids = true;
			k++;
		}
		if (k < p[i].len) {
			const struct imap_arg *m = l[k].list;
			struct seqset seqs, uids;
			bool ok = l[k].type == IMAP_ARG_LIST && l[k].len == 2 &&
				  known_set(&m[0], &seqs) == 0;
			if (ok) {
				ok = known_set(&m[1], &uids) == 0;
				uint64_t ns = 0, nu = 0;
				for (size_t j = 0; ok && j < seqs.count; j++)
					ns += (uint64_t)seqs.r[j].hi - seqs.r[j].lo + 1;
				for (size_t j = 0; ok && j < uids.count; j++)
					nu += (uint64_t)uids.r[j].hi - uids.r[j].lo + 1;
				ok = ok && ns == nu;
				seqset_deinit(&uids);
			}
			seqset_deinit(&seqs);
			if (!ok)
				return "Invalid sequence match data in QRESYNC";
			k++;
		}
		if (k != p[i].len)
			return syntax;
	}
	return NULL;
}

/* RFC 7162 3.2.5.1: what changed since the client's mod-sequence, among
 * its known UIDs: VANISHED (EARLIER), then FETCH of the changed. UIDs
 * the view still holds were expunged after it was read: a later
 * VANISHED tells of them. Returns 0 or -1 (store). */
static int qresync_report(struct imap_session *s, const struct qresync_req *q)
{
	struct imap_view *v = &s->view;
	uint32_t *gone;
	size_t n;
	if (store_mailbox_expunged(imap_reader(), v->info.id, q->modseq, &gone, &n) < 0)
		return -1;
	struct seqset set = { 0, NULL };
	for (size_t i = 0; i < n; i++) {
		if ((!q->has_uids || seqset_has(&q->uids, gone[i])) &&
		    view_find(v, gone[i]) == (size_t)-1)
			imap_set_add(&set, gone[i]);
	}
	free(gone);
	if (set.count > 0) {
		struct buf b;
		buf_init(&b, 0);
		imap_append_set(&b, &set);
		imap_reply(s, "* VANISHED (EARLIER) %s", b.data);
		buf_deinit(&b);
	}
	seqset_deinit(&set);
	for (size_t i = 0; i < v->count; i++) {
		if (v->msgs[i].modseq > q->modseq &&
		    (!q->has_uids || seqset_has(&q->uids, v->msgs[i].uid)))
			imap_reply_flags(s, i);
	}
	return 0;
}

static void select_mailbox(struct imap_session *s, const struct imap_arg *a, size_t n,
			   bool readonly)
{
	const char *arg = arg_str(a, n, 0);
	if (arg == NULL || !(n == 1 || (n == 2 && a[1].type == IMAP_ARG_LIST))) {
		imap_tagged(s, "BAD", "Syntax: %s mailbox [(parameters)]",
			    readonly ? "EXAMINE" : "SELECT");
		return;
	}
	/* Checked before anything changes (RFC 7162 3.2.5). */
	bool condstore = false;
	struct qresync_req q = { 0 };
	const char *why = n == 2 ? select_params(s, a[1].list, a[1].len, &condstore, &q) : NULL;
	if (why) {
		seqset_deinit(&q.uids);
		imap_tagged(s, "BAD", "%s", why);
		return;
	}
	char *name = decode_name(s, arg);
	if (name == NULL) {
		seqset_deinit(&q.uids);
		return;
	}
	/* RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected. */
	if (s->state == IMAP_SELECTED) {
		view_clear(&s->view);
		s->state = IMAP_AUTH;
		imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	}
	struct imap_view *v = &s->view;
	int r = store_mailbox_get(imap_reader(), s->account_id, name, &v->info);
	if (r <= 0) {
		free(name);
		seqset_deinit(&q.uids);
		imap_tagged(s, "NO", r == 0 ? "[NONEXISTENT] No such mailbox" :
			    "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	/* The version first: a change after it wakes IDLE even if the
	 * listing below already has it. */
	v->version = store_mailbox_version(v->info.id);
	if (store_mailbox_listing(imap_reader(), v->info.id, &v->msgs, &v->count) < 0) {
		free(name);
		seqset_deinit(&q.uids);
		view_clear(v);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read the mailbox");
		return;
	}
	v->name = name;
	v->readonly = readonly;
	v->modseq = v->info.highestmodseq;
	s->state = IMAP_SELECTED;
	/* RFC 9051 6.4.4.1: a new mailbox starts with an empty "$". */
	seqset_deinit(&s->saved);
	uint32_t first_unseen = 0;
	for (size_t i = 0; i < v->count && !first_unseen; i++) {
		if (!(v->msgs[i].flags & STORE_FLAG_SEEN))
			first_unseen = (uint32_t)i + 1;
	}
	/* Everything here from the first UID no read-write session has seen
	 * on is \Recent to us; UIDs up to uidnext are ours now if we write. */
	uint32_t top = v->info.uidnext;
	if (v->count && v->msgs[v->count - 1].uid >= top)
		top = v->msgs[v->count - 1].uid + 1;
	uint32_t next = recent_next(v->info.id, top, top, !readonly);
	size_t recent = 0;
	for (size_t i = 0; i < v->count; i++) {
		if (v->msgs[i].uid >= next) {
			imap_set_add(&v->recent, v->msgs[i].uid);
			recent++;
		}
	}
	imap_reply(s, "* %zu EXISTS", v->count);
	/* IMAP4rev2 has no RECENT (RFC 9051 appendix E item 12) but returns
	 * the mailbox's LIST response (item 10, 6.3.2). */
	if (!s->rev2)
		imap_reply(s, "* %zu RECENT", recent);
	imap_reply(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	imap_reply(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted");
	if (s->rev2) {
		struct buf b;
		buf_init(&b, 0);
		buf_append_str(&b, "* LIST () \"/\" ");
		append_name(s, &b, v->name);
		imap_reply(s, "%s", b.data);
		buf_deinit(&b);
	}
	/* UNSEEN is deprecated in rev2 (appendix E item 11). */
	if (first_unseen && !s->rev2)
		imap_reply(s, "* OK [UNSEEN %u] First unseen", first_unseen);
	imap_reply(s, "* OK [UIDVALIDITY %u] UIDs valid", v->info.uidvalidity);
	imap_reply(s, "* OK [UIDNEXT %u] Predicted next UID", v->info.uidnext);
	/* RFC 8474 4.2 */
	imap_reply(s, "* OK [MAILBOXID (%s)] Mailbox id", v->info.objectid);
	/* RFC 7162 3.1.2.1, 3.1.8: every mailbox keeps mod-sequences. */
	if (condstore)
		s->condstore = true;
	if (s->condstore)
		imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			   (unsigned long long)v->modseq);
	/* A different UIDVALIDITY: the rest of QRESYNC is ignored (3.2.5). */
	int qr = q.on && q.uidvalidity == v->info.uidvalidity ? qresync_report(s, &q) : 0;
	seqset_deinit(&q.uids);
	if (qr < 0) {
		view_clear(v);
		s->state = IMAP_AUTH;
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read the mailbox");
		return;
	}
	imap_tagged(s, "OK", "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
		    readonly ? "EXAMINE" : "SELECT");
}

static void cmd_select(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	select_mailbox(s, a, n, false);
}

static void cmd_examine(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	select_mailbox(s, a, n, true);
}

/* ---- mailbox management ---- */

struct manage_wait {
	struct imap_session *s;
	char *verb;
	char *created;		/* CREATE: the name, for its MAILBOXID */
};

static void manage_done(void *arg, int result)
{
	struct manage_wait *w = arg;
	struct imap_session *s = w->s;
	switch (result) {
	case STORE_OK: {
		/* RFC 8474 4.1: CREATE answers with the new MAILBOXID. */
		struct store_mailbox_info info;
		if (w->created != NULL &&
		    store_mailbox_get(imap_reader(), s->account_id, w->created, &info) == 1)
			imap_tagged(s, "OK", "[MAILBOXID (%s)] %s completed", info.objectid, w->verb);
		else
			imap_tagged(s, "OK", "%s completed", w->verb);
		break;
	}
	case STORE_EXISTS:
		imap_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		break;
	case STORE_NOT_FOUND:
		imap_tagged(s, "NO", "[NONEXISTENT] No such mailbox");
		break;
	case STORE_REFUSED:
		imap_tagged(s, "NO", "[CANNOT] %s is not allowed on INBOX", w->verb);
		break;
	default:
		imap_tagged(s, "NO", "[SERVERBUG] %s failed", w->verb);
		break;
	}
	free(w->verb);
	free(w->created);
	free(w);
	imap_command_done(s);
}

static struct manage_wait *manage_wait(struct imap_session *s, const char *verb)
{
	struct manage_wait *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->verb = xstrdup(verb);
	wait_for(s);
	return w;
}

static char *one_name(struct imap_session *s, const struct imap_arg *a, size_t n,
		      const char *verb)
{
	const char *arg = arg_str(a, n, 0);
	if (arg == NULL || n != 1) {
		imap_tagged(s, "BAD", "Syntax: %s mailbox", verb);
		return NULL;
	}
	return decode_name(s, arg);
}

static void cmd_create(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	char *name = one_name(s, a, n, "CREATE");
	if (name == NULL)
		return;
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	struct manage_wait *w = manage_wait(s, "CREATE");
	w->created = xstrdup(name);
	store_mailbox_create(imap_store, s->account_id, name, conn_loop(s->conn), manage_done, w);
	free(name);
}

static void cmd_delete(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	char *name = one_name(s, a, n, "DELETE");
	if (name == NULL)
		return;
	store_mailbox_delete(imap_store, s->account_id, name, conn_loop(s->conn), manage_done,
			     manage_wait(s, "DELETE"));
	free(name);
}

static void cmd_rename(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *a0 = arg_str(a, n, 0), *a1 = arg_str(a, n, 1);
	if (a0 == NULL || a1 == NULL || n != 2) {
		imap_tagged(s, "BAD", "Syntax: RENAME old new");
		return;
	}
	char *old = decode_name(s, a0);
	if (old == NULL)
		return;
	char *new_name = decode_name(s, a1);
	if (new_name == NULL) {
		free(old);
		return;
	}
	if (strcmp(new_name, "INBOX") == 0) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] INBOX always exists");
	} else {
		store_mailbox_rename(imap_store, s->account_id, old, new_name, conn_loop(s->conn),
				     manage_done, manage_wait(s, "RENAME"));
	}
	free(old);
	free(new_name);
}

static void subscribe(struct imap_session *s, const struct imap_arg *a, size_t n, bool on)
{
	const char *verb = on ? "SUBSCRIBE" : "UNSUBSCRIBE";
	char *name = one_name(s, a, n, verb);
	if (name == NULL)
		return;
	store_mailbox_subscribe(imap_store, s->account_id, name, on, conn_loop(s->conn),
				manage_done, manage_wait(s, verb));
	free(name);
}

static void cmd_subscribe(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	subscribe(s, a, n, true);
}

static void cmd_unsubscribe(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	subscribe(s, a, n, false);
}

/* ---- APPEND (RFC 9051 6.3.12) and MULTIAPPEND (RFC 3502) ---- */

/* RFC 3502 sets no limit; this one bounds the work of one command (each
 * message is one delivery with its own body file). */
#define APPEND_MESSAGES_MAX 1000

static void append_abort_all(struct imap_session *s)
{
	for (size_t i = 0; i < s->append_count; i++)
		store_delivery_abort(&s->append[i]);
	xfree(&s->append);
	s->append_count = 0;
	s->append_failed = false;
}

/* The parser asks before a large literal: APPEND's message goes straight
 * into a new body file instead of memory. Each streamed literal of the
 * command gets the next delivery. */
static bool append_want(void *ctx, const char *command, uint64_t size)
{
	struct imap_session *s = ctx;
	if (command == NULL || !str_ieq(command, "APPEND") ||
	    !(s->state & (IMAP_AUTH | IMAP_SELECTED)) || s->append_count >= APPEND_MESSAGES_MAX)
		return false;
	char *error = NULL;
	struct store_delivery *d = store_delivery_new(imap_store, &error);
	if (d == NULL) {
		log_error("event=append_start_failed error=\"%s\"", error);
		free(error);
		return false;
	}
	s->append = xrealloc(s->append, (s->append_count + 1) * sizeof(*s->append));
	s->append[s->append_count++] = d;
	return true;
}

static int append_write(void *ctx, const char *data, size_t len)
{
	struct imap_session *s = ctx;
	if (s->append_count > 0 &&
	    store_delivery_write(s->append[s->append_count - 1], data, len) < 0)
		s->append_failed = true;
	return 0;
}

/* One APPEND command being committed: its messages go into one store
 * transaction, so all or none are appended (RFC 3502 3). */
struct imap_append_item {
	uint32_t uidvalidity, uid;
};

struct imap_append {
	struct imap_session *s;
	size_t count;
	struct imap_append_item *items;
};

static void append_uid_set(struct buf *b, const uint32_t *uids, size_t n);

static void append_done(void *arg, int result)
{
	struct imap_append *w = arg;
	struct imap_session *s = w->s;
	if (s->conn != NULL && result == 0) {
		/* The new messages show in the selected mailbox at once. */
		imap_sync(s, false);
		uint32_t *uids = xmalloc(w->count * sizeof(*uids));
		for (size_t i = 0; i < w->count; i++)
			uids[i] = w->items[i].uid;
		struct buf b;
		buf_init(&b, 0);
		append_uid_set(&b, uids, w->count);
		imap_tagged(s, "OK", "[APPENDUID %u %s] APPEND completed",
			    w->items[0].uidvalidity, b.data);
		buf_deinit(&b);
		free(uids);
	} else if (s->conn != NULL) {
		imap_tagged(s, "NO", "[SERVERBUG] APPEND failed; no message was appended");
	}
	s->appending = NULL;
	free(w->items);
	free(w);
	imap_command_done(s);
}

static int parse_internaldate(const char *v, int64_t *t_r)
{
	/* date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP
	 * time SP zone DQUOTE, e.g. " 7-Nov-2026 08:05:56 +0900" */
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int day, year, hh, mm, ss, zone;
	char mon[4], sign;
	if (sscanf(v, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, mon, &year, &hh, &mm, &ss,
		   &sign, &zone) != 8 || (sign != '+' && sign != '-'))
		return -1;
	int m = -1;
	for (int i = 0; i < 12; i++) {
		if (str_ieq(mon, months[i]))
			m = i;
	}
	if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970 ||
	    zone % 100 > 59 || zone > 2400)
		return -1;
	struct tm tm = { .tm_sec = ss, .tm_min = mm, .tm_hour = hh, .tm_mday = day,
			 .tm_mon = m, .tm_year = year - 1900 };
	int64_t t = (int64_t)timegm(&tm);
	int64_t off = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - off : t + off;
	return 0;
}

/* Flags of a list: system flags as bits, keywords space-separated.
 * Returns 0 or -1 (an unknown system flag). */
static int parse_flag_list(const struct imap_arg *fl, size_t fn, uint32_t *bits_r,
			   struct buf *kw);

/* One message of an APPEND: its flags, date and literal. */
struct append_msg {
	uint32_t flags;
	char *keywords;
	int64_t date;
	const struct imap_arg *lit;
};

/* Reads "[(flags)] [date-time] literal" from a[*i]. Returns NULL or why. */
static const char *parse_append_msg(const struct imap_arg *a, size_t n, size_t *i,
				    struct append_msg *m)
{
	struct buf kw;
	buf_init(&kw, 0);
	m->flags = 0;
	m->keywords = NULL;
	m->date = time_now_ms() / 1000;
	if (*i < n && a[*i].type == IMAP_ARG_LIST) {
		if (parse_flag_list(a[*i].list, a[*i].len, &m->flags, &kw) < 0) {
			buf_deinit(&kw);
			return "Invalid flag in APPEND";
		}
		(*i)++;
	}
	m->keywords = buf_steal(&kw, NULL);
	if (*i < n && a[*i].type == IMAP_ARG_QUOTED) {
		if (parse_internaldate(a[*i].str, &m->date) < 0)
			return "Invalid date-time in APPEND";
		(*i)++;
	}
	if (*i >= n || a[*i].type != IMAP_ARG_LITERAL)
		return "Syntax: APPEND mailbox [(flags)] [date-time] literal ...";
	m->lit = &a[(*i)++];
	return NULL;
}

static void cmd_append(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *mbox = arg_str(a, n, 0);
	struct append_msg *msgs = xcalloc(n ? n : 1, sizeof(*msgs));
	size_t count = 0, streamed = 0;
	const char *why = mbox == NULL || n < 2 ?
		"Syntax: APPEND mailbox [(flags)] [date-time] literal ..." : NULL;
	for (size_t i = 1; !why && i < n; count++) {
		why = parse_append_msg(a, n, &i, &msgs[count]);
		if (!why && msgs[count].lit->streamed)
			streamed++;
	}
	if (!why && count > APPEND_MESSAGES_MAX)
		why = "Too many messages in one APPEND";
	/* Every streamed literal took a delivery, in order. */
	if (!why && streamed != s->append_count)
		why = "Message literal could not be received";
	char *name = why ? NULL : decode_name(s, mbox);
	bool answered = why != NULL || name == NULL;	/* decode_name answers */
	struct store_mailbox_info info;
	int r = -1;
	const char *no = NULL;
	if (why) {
		imap_tagged(s, "BAD", "%s", why);
	} else if (answered) {
		/* BAD from decode_name */
	} else if ((r = store_mailbox_get(imap_reader(), s->account_id, name, &info)) <= 0) {
		no = r < 0 ? "[SERVERBUG] Cannot open the mailbox" : "[TRYCREATE] No such mailbox";
	} else {
		for (size_t k = 0; k < count && !no; k++) {
			if (msgs[k].lit->len == 0)
				no = "Empty message; nothing was appended";
			else if (msgs[k].lit->len > imap_cfg->max_message_size)
				no = "[TOOBIG] Message too big; nothing was appended";
		}
		uint64_t bytes = 0;
		for (size_t k = 0; k < count; k++)
			bytes += msgs[k].lit->len;
		if (!no && imap_quota_over(s, bytes, count))
			no = "[OVERQUOTA] Quota exceeded; nothing was appended";
	}
	free(name);
	if (no)
		imap_tagged(s, "NO", "%s", no);
	if (answered || no) {
		for (size_t k = 0; k < n; k++)
			free(msgs[k].keywords);
		free(msgs);
		append_abort_all(s);
		return;
	}
	/* The deliveries, in the order of the messages: streamed ones were
	 * made while reading, small ones are made now. */
	struct store_delivery **ds = xcalloc(count, sizeof(*ds));
	bool failed = s->append_failed;
	for (size_t k = 0, st = 0; k < count; k++) {
		if (msgs[k].lit->streamed) {
			ds[k] = s->append[st];
			s->append[st++] = NULL;
			continue;
		}
		char *error = NULL;
		ds[k] = store_delivery_new(imap_store, &error);
		if (ds[k] == NULL) {
			log_error("event=append_start_failed error=\"%s\"", error);
			free(error);
			failed = true;
		} else if (store_delivery_write(ds[k], msgs[k].lit->str, msgs[k].lit->len) < 0) {
			failed = true;
		}
	}
	append_abort_all(s);
	if (failed) {
		for (size_t k = 0; k < count; k++) {
			store_delivery_abort(&ds[k]);
			free(msgs[k].keywords);
		}
		free(ds);
		free(msgs);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot store the message; nothing was appended");
		return;
	}
	struct imap_append *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->count = count;
	w->items = xcalloc(count, sizeof(*w->items));
	s->appending = w;
	wait_for(s);
	/* In the order of the messages: so are their UIDs. */
	for (size_t k = 0; k < count; k++) {
		store_delivery_add_mailbox(ds[k], info.id, msgs[k].flags,
					   *msgs[k].keywords ? msgs[k].keywords : NULL, msgs[k].date,
					   &w->items[k].uidvalidity, &w->items[k].uid);
		free(msgs[k].keywords);
	}
	store_delivery_commit_group(ds, count, conn_loop(s->conn), append_done, w);
	free(ds);
	free(msgs);
}

/* ---- selected ---- */

static void cmd_check(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_sync(s, true);
	imap_tagged(s, "OK", "CHECK completed");
}

static void unselect(struct imap_session *s)
{
	view_clear(&s->view);
	s->state = IMAP_AUTH;
}

static void cmd_unselect(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	unselect(s);
	imap_tagged(s, "OK", "UNSELECT completed");
}

struct expunge_wait {
	struct imap_session *s;
	const char *verb;
	bool close_after;
};

static void expunge_done(void *arg, int result)
{
	struct expunge_wait *w = arg;
	struct imap_session *s = w->s;
	if (s->conn != NULL) {
		if (w->close_after) {
			/* CLOSE reports no EXPUNGE (RFC 9051 6.4.1). */
			unselect(s);
			imap_tagged(s, result == 0 ? "OK" : "NO", "%s %s", w->verb,
				    result == 0 ? "completed" : "failed");
		} else {
			if (result == 0)
				imap_sync(s, true);
			if (result == 0 && s->qresync)
				imap_tagged(s, "OK", "[HIGHESTMODSEQ %llu] %s completed",
					    (unsigned long long)s->view.modseq, w->verb);
			else
				imap_tagged(s, result == 0 ? "OK" : "NO", "%s %s", w->verb,
					    result == 0 ? "completed" : "failed");
		}
	}
	free(w);
	imap_command_done(s);
}

/* Expunges the \Deleted messages (of uids, when given). */
static void expunge(struct imap_session *s, const struct seqset *uids, const char *verb,
		    bool close_after)
{
	struct imap_view *v = &s->view;
	uint32_t *list = xmalloc((v->count ? v->count : 1) * sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < v->count; i++) {
		if ((v->msgs[i].flags & STORE_FLAG_DELETED) &&
		    (uids == NULL || seqset_has(uids, v->msgs[i].uid)))
			list[n++] = v->msgs[i].uid;
	}
	if (v->readonly || n == 0) {
		free(list);
		if (close_after)
			unselect(s);
		else
			imap_sync(s, true);
		imap_tagged(s, "OK", "%s completed", verb);
		return;
	}
	struct expunge_wait *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->verb = verb;
	w->close_after = close_after;
	wait_for(s);
	store_expunge(imap_store, v->info.id, list, n, conn_loop(s->conn), expunge_done, w);
	free(list);
}

static void cmd_close(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	expunge(s, NULL, "CLOSE", true);
}

static void cmd_expunge(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	expunge(s, NULL, "EXPUNGE", false);
}

/* STORE seq-set [+|-]FLAGS[.SILENT] (flags) */
struct store_wait {
	struct imap_session *s;
};

/* The index of uid in an ascending array, or -1. */
static size_t uid_index(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo] == uid ? lo : (size_t)-1;
}

static void store_done(void *arg, int result)
{
	struct imap_session *s = arg;
	struct store_flags_result *res = &s->store_res;
	if (s->conn != NULL) {
		/* Changes by others come as FETCH responses; no EXPUNGE during
		 * STORE (RFC 9051 7.5.1). The STORE's own messages are answered
		 * "as if a FETCH of those flags was done" (6.4.6), changed or
		 * not, once each, and not at all for .SILENT. */
		struct imap_view *v = &s->view;
		size_t before = v->count;
		uint64_t *old = xmalloc((before ? before : 1) * sizeof(*old));
		for (size_t i = 0; i < before; i++)
			old[i] = v->msgs[i].modseq;
		imap_sync(s, false);
		struct seqset modified = { 0, NULL };
		for (size_t i = 0; result == 0 && i < v->count; i++) {
			uint32_t uid = v->msgs[i].uid;
			if (!seqset_has(&s->store_uids, uid))
				continue;
			/* RFC 7162 3.1.3: what failed UNCHANGEDSINCE goes in
			 * MODIFIED, with its flags as they are now. */
			bool failed = uid_index(res->modified, res->modified_count, uid) !=
				      (size_t)-1;
			if (failed)
				imap_set_add(&modified, s->store_uid ? uid : (uint32_t)i + 1);
			if (!s->store_silent || failed) {
				imap_reply_flags(s, i);
				continue;
			}
			if (i >= before)
				continue;
			/* .SILENT: nothing for what only this STORE changed, but for
			 * CONDSTORE's new MODSEQ (3.1.3, example 14). When another
			 * session changed the message since the client last heard,
			 * the flags it holds are not what it asked for plus what it
			 * knew: they are sent (RFC 9051 7.5.1), CONDSTORE or not. */
			size_t k = uid_index(res->updated, res->updated_count, uid);
			if (k != (size_t)-1 && v->msgs[i].modseq == res->modseq &&
			    res->prior[k] == old[i]) {
				if (s->condstore)
					imap_reply(s, "* %zu FETCH (UID %u MODSEQ (%llu))", i + 1,
						   uid, (unsigned long long)res->modseq);
			} else if (v->msgs[i].modseq != old[i])
				imap_reply_flags(s, i);
			else if (s->store_conditional)
				/* 3.1.3: a conditional STORE answers every message
				 * that passed, .SILENT or not; this one needed no
				 * change, so its MODSEQ stays. */
				imap_reply(s, "* %zu FETCH (UID %u MODSEQ (%llu))", i + 1, uid,
					   (unsigned long long)v->msgs[i].modseq);
		}
		free(old);
		if (result == 0 && modified.count > 0) {
			struct buf b;
			buf_init(&b, 0);
			imap_append_set(&b, &modified);
			imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed", b.data);
			buf_deinit(&b);
		} else if (result == 0) {
			imap_tagged(s, "OK", "STORE completed");
		} else {
			imap_tagged(s, "NO", "[SERVERBUG] STORE failed");
		}
		seqset_deinit(&modified);
	}
	seqset_deinit(&s->store_uids);
	store_flags_result_deinit(res);
	imap_command_done(s);
}

static void store_cmd(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid)
{
	/* RFC 4466 2.5 store-modifiers: UNCHANGEDSINCE (RFC 7162 3.1.3). */
	size_t mods = n >= 2 && a[1].type == IMAP_ARG_LIST ? 1 : 0;
	uint64_t unchangedsince = STORE_UNCHANGEDSINCE_NONE;
	const char *set = arg_str(a, n, 0), *item = arg_str(a, n, 1 + mods);
	if (set == NULL || item == NULL || n < 3 + mods) {
		imap_tagged(s, "BAD", "Syntax: STORE set [(modifiers)] item flags");
		return;
	}
	if (mods) {
		const struct imap_arg *m = a[1].list;
		if (a[1].len != 2 || m[0].type != IMAP_ARG_ATOM ||
		    !str_ieq(m[0].str, "UNCHANGEDSINCE") || m[1].type != IMAP_ARG_ATOM ||
		    str_to_u64(m[1].str, &unchangedsince) < 0 || unchangedsince > INT64_MAX) {
			imap_tagged(s, "BAD", "Syntax: STORE set (UNCHANGEDSINCE modseq) item flags");
			return;
		}
	}
	enum store_flags_mode mode = STORE_FLAGS_SET;
	if (*item == '+') {
		mode = STORE_FLAGS_ADD;
		item++;
	} else if (*item == '-') {
		mode = STORE_FLAGS_REMOVE;
		item++;
	}
	bool silent = str_ieq(item, "FLAGS.SILENT");
	if (!silent && !str_ieq(item, "FLAGS")) {
		imap_tagged(s, "BAD", "Unknown STORE item");
		return;
	}
	/* The flags: a list, or the rest of the arguments. */
	const struct imap_arg *fl = &a[2 + mods];
	size_t fn = n - 2 - mods;
	if (n == 3 + mods && a[2 + mods].type == IMAP_ARG_LIST) {
		fl = a[2 + mods].list;
		fn = a[2 + mods].len;
	}
	uint32_t bits = 0;
	struct buf kw;
	buf_init(&kw, 0);
	if (parse_flag_list(fl, fn, &bits, &kw) < 0) {
		buf_deinit(&kw);
		imap_tagged(s, "BAD", "Invalid flag");
		return;
	}
	struct seqset set_;
	if (imap_seqset(s, set, uid, &set_) < 0) {
		buf_deinit(&kw);
		imap_tagged(s, "BAD", "Invalid sequence set or message number");
		return;
	}
	if (s->view.readonly) {
		seqset_deinit(&set_);
		buf_deinit(&kw);
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	struct imap_view *v = &s->view;
	uint32_t *uids = xmalloc((v->count ? v->count : 1) * sizeof(*uids));
	size_t count = 0;
	seqset_deinit(&s->store_uids);
	for (size_t i = 0; i < v->count; i++) {
		if (seqset_has(&set_, uid ? v->msgs[i].uid : (uint32_t)i + 1)) {
			uids[count++] = v->msgs[i].uid;
			imap_set_add(&s->store_uids, v->msgs[i].uid);
		}
	}
	seqset_deinit(&set_);
	s->store_silent = silent;
	s->store_uid = uid;
	s->store_conditional = mods != 0;
	if (mods)
		imap_condstore_enable(s);
	wait_for(s);
	store_flags_update(imap_store, v->info.id, uids, count, mode, bits,
			   kw.len ? kw.data : NULL, unchangedsince, &s->store_res,
			   conn_loop(s->conn), store_done, s);
	free(uids);
	buf_deinit(&kw);
}

static int parse_flag_list(const struct imap_arg *fl, size_t fn, uint32_t *bits_r,
			   struct buf *kw)
{
	uint32_t bits = 0;
	for (size_t i = 0; i < fn; i++) {
		if (fl[i].type != IMAP_ARG_ATOM)
			return -1;
		const char *f = fl[i].str;
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(system_flags); k++) {
			if (str_ieq(f, system_flags[k].name)) {
				bits |= system_flags[k].bit;
				known = true;
			}
		}
		if (known)
			continue;
		/* \Recent cannot be set; other system flags do not exist. */
		if (f[0] == '\\' || strpbrk(f, "[]%*") != NULL)
			return -1;
		if (kw->len)
			buf_append_c(kw, ' ');
		buf_append_str(kw, f);
	}
	*bits_r = bits;
	return 0;
}

static void cmd_store(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	store_cmd(s, a, n, false);
}

/* A compact UID set ("1:3,7") for COPYUID. */
static void append_uid_set(struct buf *b, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		buf_printf(b, "%s%u", i ? "," : "", uids[i]);
		if (j > i)
			buf_printf(b, ":%u", uids[j]);
		i = j + 1;
	}
}

struct copy_wait {
	struct imap_session *s;
	bool move;
};

static void copy_done(void *arg, int result, uint32_t uidvalidity, const uint32_t *src,
		      const uint32_t *dst, size_t count)
{
	struct copy_wait *w = arg;
	struct imap_session *s = w->s;
	const char *verb = w->move ? "MOVE" : "COPY";
	if (s->conn != NULL && result != STORE_OK) {
		imap_tagged(s, "NO", "[SERVERBUG] %s failed", verb);
	} else if (s->conn != NULL) {
		struct buf code;
		buf_init(&code, 0);
		if (count > 0) {
			buf_printf(&code, "[COPYUID %u ", uidvalidity);
			append_uid_set(&code, src, count);
			buf_append_c(&code, ' ');
			append_uid_set(&code, dst, count);
			buf_append_str(&code, "] ");
		}
		if (w->move) {
			/* RFC 6851 4.3: COPYUID untagged, then the EXPUNGEs. */
			if (count > 0)
				imap_reply(s, "* OK %s%s", code.data, "Moved");
			imap_sync(s, true);
			/* RFC 6851 4.4: with QRESYNC, a MOVE that took messages
			 * out gives the new HIGHESTMODSEQ, as EXPUNGE does. */
			if (count > 0 && s->qresync)
				imap_tagged(s, "OK", "[HIGHESTMODSEQ %llu] MOVE completed",
					    (unsigned long long)s->view.modseq);
			else
				imap_tagged(s, "OK", "MOVE completed");
		} else {
			imap_tagged(s, "OK", "%sCOPY completed", code.data ? code.data : "");
		}
		buf_deinit(&code);
	}
	free(w);
	imap_command_done(s);
}

static void copy_cmd(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid,
		     bool move)
{
	const char *set = arg_str(a, n, 0), *dest = arg_str(a, n, 1);
	if (set == NULL || dest == NULL || n != 2) {
		imap_tagged(s, "BAD", "Syntax: %s set mailbox", move ? "MOVE" : "COPY");
		return;
	}
	if (move && s->view.readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	char *name = decode_name(s, dest);
	if (name == NULL)
		return;
	struct store_mailbox_info info;
	int r = store_mailbox_get(imap_reader(), s->account_id, name, &info);
	free(name);
	if (r <= 0) {
		imap_tagged(s, "NO", r == 0 ? "[TRYCREATE] No such mailbox" :
			    "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	struct seqset set_;
	if (imap_seqset(s, set, uid, &set_) < 0) {
		imap_tagged(s, "BAD", "Invalid sequence set");
		return;
	}
	struct imap_view *v = &s->view;
	bool bad = false;
	for (size_t i = 0; !uid && i < set_.count; i++)
		bad |= set_.r[i].hi > v->count;
	if (bad) {
		seqset_deinit(&set_);
		imap_tagged(s, "BAD", "Invalid message number");
		return;
	}
	uint32_t *uids = xmalloc((v->count ? v->count : 1) * sizeof(*uids));
	size_t count = 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < v->count; i++) {
		if (seqset_has(&set_, uid ? v->msgs[i].uid : (uint32_t)i + 1)) {
			uids[count++] = v->msgs[i].uid;
			bytes += v->msgs[i].size;
		}
	}
	seqset_deinit(&set_);
	/* MOVE stays in the account's one quota root: it never adds. */
	if (!move && count > 0 && imap_quota_over(s, bytes, count)) {
		free(uids);
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded; nothing was copied");
		return;
	}
	struct copy_wait *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->move = move;
	wait_for(s);
	store_copy(imap_store, v->info.id, info.id, uids, count, move, conn_loop(s->conn),
		   copy_done, w);
	free(uids);
}

static void cmd_copy(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	copy_cmd(s, a, n, false, false);
}

static void cmd_move(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	copy_cmd(s, a, n, false, true);
}

static void cmd_search(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_search(s, a, n, false);
}

static void cmd_sort(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_sort(s, a, n, false);
}

static void cmd_thread(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_thread(s, a, n, false);
}

static void cmd_fetch(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_cmd_fetch(s, NULL, a, n, false);
}

static void cmd_uid(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *sub = arg_str(a, n, 0);
	if (sub == NULL) {
		imap_tagged(s, "BAD", "Syntax: UID command ...");
	} else if (str_ieq(sub, "FETCH")) {
		imap_cmd_fetch(s, NULL, a + 1, n - 1, true);
	} else if (str_ieq(sub, "STORE")) {
		store_cmd(s, a + 1, n - 1, true);
	} else if (str_ieq(sub, "SEARCH")) {
		imap_cmd_search(s, a + 1, n - 1, true);
	} else if (str_ieq(sub, "SORT")) {
		imap_cmd_sort(s, a + 1, n - 1, true);
	} else if (str_ieq(sub, "THREAD")) {
		imap_cmd_thread(s, a + 1, n - 1, true);
	} else if (str_ieq(sub, "COPY")) {
		copy_cmd(s, a + 1, n - 1, true, false);
	} else if (str_ieq(sub, "MOVE")) {
		copy_cmd(s, a + 1, n - 1, true, true);
	} else if (str_ieq(sub, "EXPUNGE")) {
		struct seqset set;
		if (n != 2 || imap_seqset(s, arg_str(a, n, 1) ? a[1].str : "", true, &set) < 0) {
			imap_tagged(s, "BAD", "Syntax: UID EXPUNGE set");
			return;
		}
		expunge(s, &set, "UID EXPUNGE", false);
		seqset_deinit(&set);
	} else {
		imap_tagged(s, "BAD", "Unknown UID command");
	}
}

/* ---- IDLE (RFC 2177) ---- */

static void idle_tick(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct imap_session *s = arg;
	if (!s->idling || s->conn == NULL)
		return;
	if (s->state == IMAP_SELECTED) {
		uint64_t ver = store_mailbox_version(s->view.info.id);
		if (ver != s->view.version) {
			s->view.version = ver;
			imap_sync(s, true);
		}
	}
	struct timeval tv = { 1, 0 };
	evtimer_add(s->idle_timer, &tv);
}

static void cmd_idle(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	imap_sync(s, true);
	imap_reply(s, "+ idling");
	s->idling = true;
	if (s->idle_timer == NULL)
		s->idle_timer = evtimer_new(loop_base(conn_loop(s->conn)), idle_tick, s);
	struct timeval tv = { 1, 0 };
	evtimer_add(s->idle_timer, &tv);
}

/* A line during IDLE. */
static void idle_line(struct imap_session *s, const char *line)
{
	s->idling = false;
	evtimer_del(s->idle_timer);
	if (str_ieq(line, "DONE")) {
		imap_sync(s, true);
		imap_tagged(s, "OK", "IDLE terminated");
	} else {
		imap_tagged(s, "BAD", "Expected DONE");
	}
	xfree(&s->tag);
}

/* ---- dispatch ---- */

struct imap_cmd {
	const char *name;
	unsigned states;
	void (*fn)(struct imap_session *s, const struct imap_arg *a, size_t n);
};

#define ANY (IMAP_NOT_AUTH | IMAP_AUTH | IMAP_SELECTED)
#define AUTHED (IMAP_AUTH | IMAP_SELECTED)

static const struct imap_cmd commands[] = {
	{ "CAPABILITY", ANY, cmd_capability },
	{ "NOOP", ANY, cmd_noop },
	{ "LOGOUT", ANY, cmd_logout },
	{ "ID", ANY, cmd_id },
	{ "STARTTLS", IMAP_NOT_AUTH, cmd_starttls },
	{ "LOGIN", IMAP_NOT_AUTH, cmd_login },
	{ "AUTHENTICATE", IMAP_NOT_AUTH, cmd_authenticate },
	/* RFC 5161 3.1 / RFC 9051 6.3.1: before a mailbox is selected. */
	{ "ENABLE", IMAP_AUTH, cmd_enable },
	{ "NAMESPACE", AUTHED, cmd_namespace },
	{ "LIST", AUTHED, cmd_list },
	{ "LSUB", AUTHED, cmd_lsub },
	{ "STATUS", AUTHED, cmd_status },
	{ "SELECT", AUTHED, cmd_select },
	{ "EXAMINE", AUTHED, cmd_examine },
	{ "IDLE", AUTHED, cmd_idle },
	{ "COMPRESS", AUTHED, cmd_compress },
	{ "UNAUTHENTICATE", AUTHED, cmd_unauthenticate },
	{ "GETQUOTAROOT", AUTHED, imap_cmd_getquotaroot },
	{ "GETQUOTA", AUTHED, imap_cmd_getquota },
	{ "SETQUOTA", AUTHED, imap_cmd_setquota },
	{ "APPEND", AUTHED, cmd_append },
	{ "CREATE", AUTHED, cmd_create },
	{ "DELETE", AUTHED, cmd_delete },
	{ "RENAME", AUTHED, cmd_rename },
	{ "SUBSCRIBE", AUTHED, cmd_subscribe },
	{ "UNSUBSCRIBE", AUTHED, cmd_unsubscribe },
	{ "COPY", IMAP_SELECTED, cmd_copy },
	{ "MOVE", IMAP_SELECTED, cmd_move },
	{ "CHECK", IMAP_SELECTED, cmd_check },
	{ "CLOSE", IMAP_SELECTED, cmd_close },
	{ "UNSELECT", IMAP_SELECTED, cmd_unselect },
	{ "EXPUNGE", IMAP_SELECTED, cmd_expunge },
	{ "FETCH", IMAP_SELECTED, cmd_fetch },
	{ "SEARCH", IMAP_SELECTED, cmd_search },
	{ "SORT", IMAP_SELECTED, cmd_sort },
	{ "THREAD", IMAP_SELECTED, cmd_thread },
	{ "STORE", IMAP_SELECTED, cmd_store },
	{ "UID", IMAP_SELECTED, cmd_uid },
};

static void run_command(struct imap_session *s, const struct imap_command *c)
{
	free(s->tag);
	s->tag = xstrdup(c->tag);
	log_debug("event=imap_command session=%s tag=%.32s name=%.32s", conn_id(s->conn),
		  c->tag, c->name);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (!str_ieq(c->name, commands[i].name))
			continue;
		if (!(commands[i].states & s->state)) {
			imap_tagged(s, "BAD", "%s is not allowed %s", commands[i].name,
				    s->state == IMAP_NOT_AUTH ? "before login" :
				    s->state == IMAP_AUTH ? "without a selected mailbox" :
				    "now");
			xfree(&s->tag);
			return;
		}
		commands[i].fn(s, c->args, c->argc);
		/* Finished at once unless it waits (busy), authenticates or idles. */
		if (!s->busy && s->sasl == NULL && !s->idling && s->fetch == NULL)
			xfree(&s->tag);
		return;
	}
	imap_tagged(s, "BAD", "Unknown command");
	xfree(&s->tag);
}

/* A plain line (AUTHENTICATE responses, IDLE's DONE) from the input. */
static int read_plain_line(struct imap_session *s, struct evbuffer *in, char **line_r,
			   size_t *len_r)
{
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > IMAP_LINE_MAX) {
			conn_printf(s->conn, "* BYE Line too long\r\n");
			conn_close(s->conn);
		}
		return 0;
	}
	size_t len = (size_t)eol.pos;
	char *line = xmalloc(len + 1);
	evbuffer_remove(in, line, len + 1);
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	*line_r = line;
	*len_r = len;
	return 1;
}

static void on_read(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	while (!s->busy && s->fetch == NULL && !conn_closing(c)) {
		struct evbuffer *in = conn_input(c);
		if (evbuffer_get_length(in) == 0)
			return;
		command_clock(s, true);
		if (s->sasl != NULL || s->idling) {
			char *line;
			size_t len;
			if (read_plain_line(s, in, &line, &len) <= 0)
				return;
			command_clock(s, false);
			if (s->idling)
				idle_line(s, line);
			else
				sasl_line(s, line, len);
			mem_wipe(line, len);
			free(line);
			if (s->sasl == NULL && !s->busy)
				xfree(&s->tag);
			continue;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		size_t used = 0;
		enum imap_parse_result r = imap_parser_feed(s->parser, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		/* A command is in (or refused): what it then waits for (the
		 * store, output room) is the server's time, not the client's. */
		if (r != IMAP_PARSE_NEED_MORE && r != IMAP_PARSE_LITERAL_SYNC)
			command_clock(s, false);
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			break;
		case IMAP_PARSE_LITERAL_SYNC:
			imap_reply(s, "+ OK");
			break;
		case IMAP_PARSE_COMMAND:
			run_command(s, imap_parser_command(s->parser));
			break;
		case IMAP_PARSE_ERROR:
			append_abort_all(s);
			free(s->tag);
			s->tag = xstrdup(imap_parser_error_tag(s->parser));
			imap_tagged(s, "BAD", "%s", imap_parser_error(s->parser));
			xfree(&s->tag);
			break;
		case IMAP_PARSE_LITERAL_TOO_BIG:
			append_abort_all(s);
			free(s->tag);
			s->tag = xstrdup(imap_parser_error_tag(s->parser));
			imap_tagged(s, "NO", "[TOOBIG] Literal too big");
			xfree(&s->tag);
			break;
		case IMAP_PARSE_NONSYNC_TOO_BIG:
			/* RFC 7888 5: BAD with TOOBIG (mandatory for APPEND). */
			append_abort_all(s);
			free(s->tag);
			s->tag = xstrdup(imap_parser_error_tag(s->parser));
			imap_tagged(s, "BAD", "[TOOBIG] Non-synchronizing literals over %u octets"
				    " must be sent synchronizing (LITERAL-)", IMAP_NONSYNC_MAX);
			xfree(&s->tag);
			break;
		}
	}
}

static void on_open(struct conn *c)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	s->conn = c;
	s->state = IMAP_NOT_AUTH;
	struct imap_parser_limits lim = {
		.line_max = IMAP_LINE_MAX,
		.literal_max = IMAP_LITERAL_MAX,
		.nonsync_max = imap_cfg->imap_literals == IMAP_LITERALS_MINUS ? IMAP_NONSYNC_MAX : 0,
		.args_max = IMAP_ARGS_MAX,
		.depth_max = IMAP_DEPTH_MAX,
	};
	s->parser = imap_parser_new(&lim);
	struct imap_literal_sink sink = { append_want, append_write, s, imap_cfg->max_message_size };
	imap_parser_set_sink(s->parser, &sink);
	conn_set_data(c, s);
	login_clock(s);
	struct buf b;
	buf_init(&b, 0);
	capabilities(s, &b);
	conn_printf(c, "* OK [CAPABILITY %s] %s yubin IMAP ready\r\n", b.data, imap_cfg->hostname);
	buf_deinit(&b);
}

static void on_drain(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	if (s != NULL && s->fetch != NULL)
		imap_fetch_continue(s);
}

static void on_timeout(struct conn *c)
{
	struct imap_session *s = conn_data(c);
	const char *why = "Autologout; idle for too long";
	if (s->state == IMAP_NOT_AUTH) {
		log_info("event=login_timeout session=%s ip=%s seconds=%u", conn_id(c),
			 conn_peer_ip(c), imap_cfg->login_timeout);
		why = "Not logged in in time";
	} else if (s->cmd_clock) {
		log_info("event=command_timeout session=%s user=%s seconds=%u", conn_id(c),
			 s->account, imap_cfg->command_timeout);
		why = "Command not completed in time";
	} else {
		log_info("event=autologout session=%s user=%s", conn_id(c), s->account);
	}
	session_release(s);
	/* RFC 9051 7.1.5: BYE announces an autologout; the connection
	 * closes at once. */
	conn_printf(c, "* BYE %s\r\n", why);
	conn_close(c);
}

static void on_close(struct conn *c, enum conn_close_reason reason)
{
	struct imap_session *s = conn_data(c);
	if (s == NULL)
		return;
	session_release(s);
	s->conn = NULL;
	s->idling = false;
	if (s->idle_timer)
		evtimer_del(s->idle_timer);
	imap_fetch_free(&s->fetch);
	if (!s->busy)
		session_free(s);
}

const struct conn_handler imap_conn_handler = {
	.on_open = on_open,
	.on_read = on_read,
	.on_timeout = on_timeout,
	.on_drain = on_drain,
	.on_close = on_close,
	.busy_reply = "* BYE Too many connections, try again later\r\n",
};
