/* Internals shared by the IMAP server's files. */
#ifndef YUBIN_IMAP_PRIVATE_H
#define YUBIN_IMAP_PRIVATE_H

#include "imap/imap.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "auth/sasl.h"
#include "config/config.h"
#include "core/buf.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct event;

enum imap_state {
	IMAP_NOT_AUTH = 1 << 0,
	IMAP_AUTH = 1 << 1,
	IMAP_SELECTED = 1 << 2,
	IMAP_LOGOUT = 1 << 3,
};

/* The selected mailbox as this session sees it: sequence numbers are
 * positions in msgs, and change only when the session is told (RFC 9051
 * 7.5.1). */
struct imap_view {
	struct store_mailbox_info info;
	char *name;
	bool readonly;
	struct store_msg *msgs;
	size_t count;
	uint64_t modseq;	/* everything up to here has been reported */
	uint64_t version;	/* store_mailbox_version() last seen */
	struct seqset recent;	/* UIDs \Recent to this session (RFC 3501 2.3.2) */
};

struct imap_fetch;
struct imap_append;

struct imap_session {
	struct conn *conn;	/* NULL once the connection is gone */
	struct imap_parser *parser;
	enum imap_state state;
	unsigned errors;
	bool busy;		/* waiting for the store, a password, or output room */
	char *tag;		/* of the command waiting */

	int64_t account_id;
	char *account;
	bool counted;		/* holds one of account_id's session slots (auth.h) */
	bool cmd_clock;		/* command_timeout runs: a command has begun */
	struct sasl *sasl;	/* AUTHENTICATE in progress */
	char *sasl_final;	/* SCRAM server-final sent, waiting for "" */

	struct imap_view view;
	bool idling;
	struct event *idle_timer;
	struct imap_fetch *fetch;	/* a FETCH being written */
	struct seqset store_uids;	/* of the STORE running: echoed by store_done */
	bool store_silent;
	/* CONDSTORE and QRESYNC (RFC 7162), once enabled; and what the STORE
	 * running asked and got. */
	bool condstore, qresync;
	bool store_uid, store_conditional;
	struct store_flags_result store_res;
	struct seqset saved;	/* SEARCHRES "$" as UIDs (RFC 9051 6.4.4.1) */
	/* APPEND's large messages, streamed into body files as the parser
	 * reads them, in order (MULTIAPPEND, RFC 3502: several per command). */
	struct store_delivery **append;
	size_t append_count;
	bool append_failed;
	struct imap_append *appending;	/* committing, waiting for the store */
	/* ENABLE (RFC 5161): IMAP4rev2 (RFC 9051 appendix E: ESEARCH for
	 * SEARCH, no \Recent, UTF-8 names) and UTF8=ACCEPT (RFC 6855). */
	bool rev2;
	bool utf8;
};

extern const struct config *imap_cfg;
extern struct store *imap_store;
struct store_reader *imap_reader(void);

/* imap_session.c */
void imap_reply(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reports changes to the selected mailbox; expunges only when allowed. */
void imap_sync(struct imap_session *s, bool expunges);
void imap_command_done(struct imap_session *s);
/* A CONDSTORE enabling command (RFC 7162 3.1): the first one with a
 * mailbox selected reports its HIGHESTMODSEQ. */
void imap_condstore_enable(struct imap_session *s);
/* Appends a string as an IMAP quoted string or literal. */
void imap_append_astring(struct buf *b, const char *s, size_t len);
void imap_append_flags(struct buf *b, const struct store_msg *m);
/* The flags of message pos of the view, with \Recent for an IMAP4rev1
 * session (FETCH FLAGS should use this one). */
void imap_append_view_flags(struct imap_session *s, struct buf *b, size_t pos);
bool imap_is_recent(struct imap_session *s, uint32_t uid);
/* Adds n to a set built in ascending order (merging neighbours). */
void imap_set_add(struct seqset *set, uint32_t n);
/* A sequence set in the compact form ("1:3,7"), as COPYUID writes it. */
void imap_append_set(struct buf *b, const struct seqset *set);
/* A sequence set argument against the view (uid: UIDs), or "$", the saved
 * search result (RFC 9051 6.4.4.1), in the numbers asked for. Returns 0,
 * or -1 for bad syntax or a message number beyond the view (RFC 9051 9,
 * seq-number: also "*" in an empty mailbox). */
int imap_seqset(struct imap_session *s, const char *arg, bool uid, struct seqset *set_r);

/* STATUS items asked for, in order (RFC 9051 6.3.11). */
struct imap_status_req {
	size_t count;
	unsigned char item[16];
};
/* Parses a list of STATUS items. Returns 0, or -1 (empty, unknown item). */
int imap_status_parse(const struct imap_arg *list, size_t n, struct imap_status_req *req_r);
/* Sends "* STATUS name (...)" for a mailbox. Returns 0 or -1 (store). */
int imap_status_reply(struct imap_session *s, int64_t mailbox_id, const char *name,
		      const struct imap_status_req *req);
/* The same from counts already read (store_account_status). */
int imap_status_reply_with(struct imap_session *s, const struct store_status *st,
			   const char *name, const struct imap_status_req *req);
/* Whether SIZE is among the items (it costs a join). */
bool imap_status_wants_size(const struct imap_status_req *req);
/* Mailbox names as the client sends and sees them: modified UTF-7, or
 * UTF-8 once enabled. imap_name_in: a new UTF-8 string or NULL (invalid);
 * imap_decode_name: also checked for a name we store (else NULL after
 * answering BAD). */
char *imap_name_in(struct imap_session *s, const char *arg);
char *imap_decode_name(struct imap_session *s, const char *arg);
void imap_append_name(struct imap_session *s, struct buf *b, const char *name);

/* imap_quota.c: QUOTA (RFC 9208). imap_quota_over: whether adding that
 * much to the account would go over its quota. */
void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_arg *a, size_t n);
void imap_cmd_getquota(struct imap_session *s, const struct imap_arg *a, size_t n);
void imap_cmd_setquota(struct imap_session *s, const struct imap_arg *a, size_t n);
bool imap_quota_over(struct imap_session *s, uint64_t bytes, uint64_t messages);

/* imap_list.c: LIST and LSUB, with LIST-EXTENDED (RFC 5258). */
void imap_cmd_list(struct imap_session *s, const struct imap_arg *a, size_t n, bool lsub);

/* imap_search.c */
void imap_cmd_search(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid);
/* RETURN options of SEARCH (RFC 4731, RFC 5182) and SORT (RFC 5267). */
#define IMAP_RET_MIN 0x01
#define IMAP_RET_MAX 0x02
#define IMAP_RET_ALL 0x04
#define IMAP_RET_COUNT 0x08
#define IMAP_RET_SAVE 0x10
/* a[0] is "RETURN", a[1] the list: the options (none: ALL), or -1 after
 * answering BAD. */
int imap_search_parse_return(struct imap_session *s, const struct imap_arg *a, size_t n,
			     unsigned *ret_r);
/* The search keys a[0..n) (SEARCH's syntax, "$" included), parsed; NULL
 * with *error_r for bad syntax. */
struct imap_search;
struct imap_search *imap_search_parse(struct imap_session *s, const struct imap_arg *a,
				      size_t n, bool uid, const char **error_r);
/* The positions in the view (from 0, ascending) of the messages that
 * match, in a new array; returns their count. */
size_t imap_search_run(struct imap_session *s, struct imap_search *k, uint32_t **pos_r);
void imap_search_free(struct imap_search **k);

/* imap_sort.c: SORT (RFC 5256, 5957, 5267 ESORT) and THREAD (RFC 5256). */
void imap_cmd_sort(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid);
void imap_cmd_thread(struct imap_session *s, const struct imap_arg *a, size_t n, bool uid);

/* imap_fetch.c */
void imap_cmd_fetch(struct imap_session *s, const struct imap_command *c,
		    const struct imap_arg *args, size_t argc, bool uid);
void imap_fetch_continue(struct imap_session *s);
void imap_fetch_free(struct imap_fetch **f);

#endif
