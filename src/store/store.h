/* The mailbox store: domains, accounts, aliases, mailboxes, messages and the
 * outbound queue, in one SQLite database (WAL mode) under data_dir, with
 * message bodies as immutable files under data_dir/msg/.
 *
 * Layout of data_dir:
 *   yubin.db         the database (plus -wal and -shm)
 *   msg/BUCKET/ID    message bodies; BUCKET is the hour they were written
 *   tmp/             bodies being received; emptied at start-up
 *
 * Writes from protocol sessions go through one writer thread that batches
 * them into shared transactions (group commit, see store_writer.c); a session
 * learns its write is durable through a callback posted to its own loop.
 * Reads use a connection per thread (struct store_reader) and never wait for
 * the writer. The admin functions below are for the CLI: synchronous, one
 * transaction each, safe while a server runs on the same data_dir.
 *
 * All functions return 0 for success and -1 for failure, with *error_r set to
 * a new string to show to the user (caller frees), unless noted. */
#ifndef YUBIN_STORE_H
#define YUBIN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;
struct loop;
struct store;
struct store_reader;
struct store_delivery;

/* Opens (creating and migrating when needed) the store in data_dir. */
int store_open(const char *data_dir, struct store **store_r, char **error_r);
void store_close(struct store **store);
const char *store_data_dir(struct store *store);

/* Starts the writer thread (the server does; the CLI does not). */
int store_writer_start(struct store *store, char **error_r);
/* Finishes every write already submitted, then stops the thread. */
void store_writer_stop(struct store *store);

/* ---- admin (CLI) ---- */

/* Special-use mailboxes every new account gets (RFC 6154). */
#define STORE_DEFAULT_MAILBOXES { \
	{ "INBOX", NULL }, { "Sent", "\\Sent" }, { "Drafts", "\\Drafts" }, \
	{ "Trash", "\\Trash" }, { "Junk", "\\Junk" } }

int store_domain_add(struct store *s, const char *domain, char **error_r);
/* Refuses while the domain still has accounts or aliases. */
int store_domain_del(struct store *s, const char *domain, char **error_r);
/* A NULL-terminated array of new strings; free with store_strv_free(). */
int store_domain_list(struct store *s, char ***names_r, char **error_r);

/* address must be "local@domain" with domain already added; hash is a
 * password hash as made by password_hash() or password_import(); scram the
 * SCRAM-SHA-256 record made from the same password (scram_make_record), or
 * NULL when the password is not known (an imported hash). */
int store_user_add(struct store *s, const char *address, const char *hash,
		   const char *scram, char **error_r);
/* Deletes the account, its mailboxes and its messages. */
int store_user_del(struct store *s, const char *address, char **error_r);
int store_user_passwd(struct store *s, const char *address, const char *hash,
		      const char *scram, char **error_r);
/* domain may be NULL for all domains. Entries are "local@domain". */
int store_user_list(struct store *s, const char *domain, char ***addresses_r,
		    char **error_r);
/* The stored hash of an account, or -1 when there is no such account. */
int store_user_hash(struct store *s, const char *address, char **hash_r,
		    char **error_r);

/* Extra addresses an account may send as (besides its own, its aliases
 * and user+tag), on submission. The address is any valid address, stored
 * lower-cased. */
int store_sendas_add(struct store *s, const char *account, const char *address,
		     char **error_r);
int store_sendas_del(struct store *s, const char *account, const char *address,
		     char **error_r);
int store_sendas_list(struct store *s, const char *account, char ***addresses_r,
		      char **error_r);

/* source is "local@domain" or "@domain" (catch-all) of a local domain;
 * target is any address. An alias may have several targets. */
int store_alias_add(struct store *s, const char *source, const char *target,
		    char **error_r);
/* target NULL deletes every target of source. */
int store_alias_del(struct store *s, const char *source, const char *target,
		    char **error_r);
/* Entries are "source target". */
int store_alias_list(struct store *s, const char *domain, char ***entries_r,
		     char **error_r);

struct store_mail_row {
	uint32_t uid;
	int64_t internaldate;	/* seconds since the epoch */
	uint64_t size;		/* octets as served (prefix + body file) */
	char *from;		/* From: header, unfolded, may be "" */
	char *subject;		/* Subject: header, unfolded, may be "" */
};
/* mailbox NULL is INBOX. */
int store_mail_list(struct store *s, const char *address, const char *mailbox,
		    struct store_mail_row **rows_r, size_t *count_r, char **error_r);
void store_mail_rows_free(struct store_mail_row **rows, size_t count);
/* Writes the message exactly as a reader would get it to fd. */
int store_mail_show(struct store *s, const char *address, const char *mailbox,
		    uint32_t uid, int fd, char **error_r);

struct store_queue_row {
	int64_t id;
	char *queue_id;
	char *sender;
	char *recipient;
	int64_t created;
	int64_t next_attempt;
	uint32_t attempts;
	char *last_error;	/* may be NULL */
	char *body;		/* the body file, relative to data_dir */
	uint64_t size;
};
int store_queue_list(struct store *s, struct store_queue_row **rows_r,
		     size_t *count_r, char **error_r);
/* `yubin queue flush`: every row is due now (a running server tries them
 * within a second). */
int store_queue_flush(struct store *s, int *count_r, char **error_r);
/* `yubin queue delete`: the rows of the message queue_id (of its recipient
 * rcpt only, if not NULL) go without a bounce; *count_r says how many. */
int store_queue_delete(struct store *s, const char *queue_id, const char *rcpt,
		       int *count_r, char **error_r);
/* `yubin queue bounce`: the running server bounces them at once. */
int store_queue_bounce(struct store *s, const char *queue_id, const char *rcpt,
		       int *count_r, char **error_r);
void store_queue_rows_free(struct store_queue_row **rows, size_t count);

void store_strv_free(char ***strv);

/* ---- per-thread reads (server) ---- */

struct store_reader *store_reader_new(struct store *s);
void store_reader_free(struct store_reader **r);

bool store_domain_is_local(struct store_reader *r, const char *domain);
/* The first domain added (a new string), or NULL when there is none. */
char *store_first_domain(struct store_reader *r);

/* An account as authentication needs it. */
struct store_account {
	int64_t id;
	char *address;		/* canonical "local@domain" */
	char *hash;		/* password hash */
	char *scram;		/* SCRAM-SHA-256 record, or NULL */
};
/* Returns 1 and fills *account_r, 0 when there is no such account, -1 on
 * a database error. */
int store_account_lookup(struct store_reader *r, const char *address,
			 struct store_account *account_r);
/* Frees and wipes the secrets. */
void store_account_deinit(struct store_account *account);

/* Where a recipient's mail goes after alias expansion. */
struct store_target {
	int64_t account_id;	/* > 0: a local account */
	char *address;		/* the final address (for remote targets, and Delivered-To) */
};
struct store_targets {
	size_t count;
	struct store_target *v;
	bool catchall;		/* the address itself is nobody's: a catch-all or
				 * the postmaster fallback took it */
};
enum store_resolve_result {
	STORE_RESOLVE_OK,		/* targets filled */
	STORE_RESOLVE_NOT_LOCAL,	/* the domain is not ours */
	STORE_RESOLVE_NO_SUCH_USER,	/* our domain, nobody there */
	STORE_RESOLVE_ERROR,		/* database trouble: answer 451 */
};
/* Resolves local@domain (domain lower case): alias (recursive, depth and
 * fan-out limited, duplicates removed), then account, then the part before
 * recipient_delimiter (if set), then catch-all; postmaster@ of a local domain
 * always resolves (RFC 5321 4.5.1). */
enum store_resolve_result
store_resolve(struct store_reader *r, const char *local, const char *domain,
	      const char *recipient_delimiter, struct store_targets *targets_r);
void store_targets_deinit(struct store_targets *t);

/* Whether the account may send as address: it is the account's own, an
 * alias or user+tag that leads to it (catch-alls excluded), or one of its
 * extra send-as addresses. */
bool store_may_send_as(struct store_reader *r, int64_t account_id,
		       const char *account_address, const char *address,
		       const char *recipient_delimiter);

/* Quotas (RFC 9208): limits of an account (0: none) and its usage, the
 * messages of all its mailboxes (prefix + body file, as clients see them),
 * kept up to date by the transactions that add or remove mail. */
struct store_quota {
	uint64_t storage_limit;	/* bytes */
	uint64_t message_limit;
	uint64_t storage_used;	/* bytes */
	uint64_t messages_used;
};
/* Returns 1 with *q_r, 0 when there is no such account, -1. */
int store_quota_get(struct store_reader *r, int64_t account_id, struct store_quota *q_r);
/* Whether adding that much would go over a limit. */
bool store_quota_exceeded(const struct store_quota *q, uint64_t add_bytes,
			  uint64_t add_messages);
/* Whether a limit is already reached: nothing more fits. */
bool store_quota_full(const struct store_quota *q);
/* CLI: sets both limits (0: none); shows them with the usage. */
int store_user_quota_set(struct store *s, const char *address, uint64_t storage,
			 uint64_t messages, char **error_r);
int store_user_quota_show(struct store *s, const char *address, struct store_quota *q_r,
			  char **error_r);

/* Called on the loop given to a write (store_delivery_commit,
 * store_expunge...), once it is on stable storage (result 0) or could not be
 * made (result -1). */
typedef void store_done_fn(void *arg, int result);

/* ---- mailboxes (server) ---- */

/* IMAP OBJECTID (RFC 8474): "F" and 24 hex digits for a mailbox (random,
 * made with it, kept across renames), "M" and the queue id for a message's
 * content (EMAILID: shared by its copies), "T" and a queue id for its thread
 * (THREADID: the one of a message it references, else its own). */
#define STORE_OBJECTID_MAX 32
#define STORE_MSGID_MAX 20
struct store_mailbox_info {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	char objectid[STORE_OBJECTID_MAX];	/* MAILBOXID */
};
/* Returns 1 with *info_r, 0 when the account has no such mailbox, -1. */
int store_mailbox_get(struct store_reader *r, int64_t account_id, const char *name,
		      struct store_mailbox_info *info_r);

/* A message in a mailbox, as readers need it. */
#define STORE_FLAG_SEEN 0x01
#define STORE_FLAG_ANSWERED 0x02
#define STORE_FLAG_FLAGGED 0x04
#define STORE_FLAG_DELETED 0x08
#define STORE_FLAG_DRAFT 0x10
struct store_msg {
	uint32_t uid;
	uint32_t flags;		/* STORE_FLAG_* */
	uint64_t modseq;
	int64_t internaldate;
	int64_t savedate;	/* when it came into this mailbox (RFC 8514) */
	uint64_t size;		/* prefix + body file: what a reader gets */
	int64_t message_id;	/* the shared messages row */
	char *body;		/* body file, relative to data_dir */
	char *prefix;		/* per-recipient header lines served first; NULL
				 * in a listing made without (store_msg_prefix) */
	size_t prefix_len;
	char *keywords;		/* space-separated, or NULL */
	/* RFC 8474 EMAILID and THREADID as numbers, the 16 hex digits of
	 * their queue ids: every session holds one of these per message of
	 * its mailbox, so 8 bytes each rather than the text */
	uint64_t emailid, threadid;
};
/* The text of an EMAILID ('M') or THREADID ('T'). */
void store_msgid_format(char kind, uint64_t id, char out[STORE_MSGID_MAX]);
/* Every message of the mailbox in UID order (a new array). Returns 0 or -1. */
int store_mailbox_messages(struct store_reader *r, int64_t mailbox_id,
			   struct store_msg **msgs_r, size_t *count_r);
/* The same without the prefixes (prefix NULL, prefix_len set): what a
 * session holds while a mailbox is selected, for as long as it is; the
 * few it serves are read with store_msg_prefix. */
int store_mailbox_listing(struct store_reader *r, int64_t mailbox_id,
			  struct store_msg **msgs_r, size_t *count_r);
/* Appends the prefix of message uid of a mailbox to out. Returns 1, 0
 * when the mailbox no longer holds it, or -1. */
int store_msg_prefix(struct store_reader *r, int64_t mailbox_id, uint32_t uid,
		     struct buf *out);
void store_msgs_free(struct store_msg **msgs, size_t count);
/* What changed in a mailbox since a mod-sequence: messages added or whose
 * flags changed (modseq > since), in UID order, without their prefixes
 * (as store_mailbox_listing), and UIDs expunged since. */
struct store_changes {
	struct store_msg *msgs;
	size_t msg_count;
	uint32_t *expunged;
	size_t expunged_count;
	uint64_t highestmodseq;
	uint32_t uidnext;
};
int store_mailbox_changes(struct store_reader *r, int64_t mailbox_id, uint64_t since,
			  struct store_changes *changes_r);
void store_changes_deinit(struct store_changes *c);
/* The UIDs expunged from a mailbox with a mod-sequence above since (RFC
 * 7162 QRESYNC), ascending, in a new array. Tombstones are never pruned,
 * so the answer is complete. Returns 0 or -1. */
int store_mailbox_expunged(struct store_reader *r, int64_t mailbox_id, uint64_t since,
			   uint32_t **uids_r, size_t *count_r);

/* The mailboxes of an account, in name order. */
struct store_mailbox_entry {
	int64_t id;
	char *name;
	char *special_use;	/* "\Sent"..., or NULL */
	bool subscribed;
};
int store_mailbox_list(struct store_reader *r, int64_t account_id,
		       struct store_mailbox_entry **list_r, size_t *count_r);
void store_mailbox_list_free(struct store_mailbox_entry **list, size_t count);

/* Counts for IMAP STATUS. */
struct store_status {
	int64_t mailbox_id;
	uint32_t messages, unseen, deleted, uidnext, uidvalidity;
	uint64_t size, highestmodseq;
	char objectid[STORE_OBJECTID_MAX];	/* MAILBOXID (RFC 8474) */
};
int store_mailbox_status(struct store_reader *r, int64_t mailbox_id,
			 struct store_status *status_r);
/* The same for every mailbox of an account at once, in ascending
 * mailbox_id order (a new array), with one query whatever their number
 * (LIST-STATUS, RFC 5819); size: also the sums of message sizes (a join
 * with every message's row, else 0). Returns 0 or -1. */
int store_account_status(struct store_reader *r, int64_t account_id, bool size,
			 struct store_status **v_r, size_t *count_r);

/* Changes flags of messages (by UID): STORE_FLAGS_ADD, _REMOVE or _SET
 * the system flags in flags and the keywords (space-separated names, may
 * be NULL). Every message whose flags really change gets the mailbox's new
 * mod-sequence (one per call). done is posted to loop. */
enum store_flags_mode { STORE_FLAGS_ADD, STORE_FLAGS_REMOVE, STORE_FLAGS_SET };
/* CONDSTORE (RFC 7162 3.1.3): with unchangedsince other than
 * STORE_UNCHANGEDSINCE_NONE, a message whose mod-sequence is above it is
 * left alone and listed in res->modified; the check is made in the store
 * transaction. res (may be NULL) is the caller's, filled before done runs:
 * the new mod-sequence (0: nothing changed), the UIDs changed with the
 * mod-sequence each had before. Free its arrays with
 * store_flags_result_deinit(). */
#define STORE_UNCHANGEDSINCE_NONE UINT64_MAX
struct store_flags_result {
	uint64_t modseq;
	uint32_t *modified;
	size_t modified_count;
	uint32_t *updated;
	uint64_t *prior;
	size_t updated_count;
};
void store_flags_update(struct store *s, int64_t mailbox_id, const uint32_t *uids,
			size_t count, enum store_flags_mode mode, uint32_t flags,
			const char *keywords, uint64_t unchangedsince,
			struct store_flags_result *res, struct loop *loop, store_done_fn *done,
			void *arg);
void store_flags_result_deinit(struct store_flags_result *res);

/* A number that changes after every committed write to the mailbox
 * (delivery, flags, expunge) by this process: sessions that wait (IDLE)
 * look at it each second and query the database only when it moved. Two
 * mailboxes may share a number (then one wakes for nothing). */
uint64_t store_mailbox_version(int64_t mailbox_id);

/* Results of the mailbox-changing writes below, given to done. */
#define STORE_OK 0
#define STORE_FAILED (-1)	/* the database failed */
#define STORE_EXISTS (-2)	/* the target name is taken */
#define STORE_NOT_FOUND (-3)	/* no such mailbox */
#define STORE_REFUSED (-4)	/* not allowed (e.g. deleting INBOX) */

/* Mailbox management for IMAP; names are UTF-8, "/" separates levels.
 * Each is one transaction in the writer; done gets a STORE_* result. */
void store_mailbox_create(struct store *s, int64_t account_id, const char *name,
			  struct loop *loop, store_done_fn *done, void *arg);
/* Deletes the mailbox and its messages (not INBOX, not its children). */
void store_mailbox_delete(struct store *s, int64_t account_id, const char *name,
			  struct loop *loop, store_done_fn *done, void *arg);
/* Renames old (and every "old/..." below it) to new. Renaming INBOX moves
 * its messages to a new mailbox and leaves INBOX empty (RFC 9051 6.3.6). */
void store_mailbox_rename(struct store *s, int64_t account_id, const char *old,
			  const char *new_name, struct loop *loop, store_done_fn *done,
			  void *arg);
void store_mailbox_subscribe(struct store *s, int64_t account_id, const char *name,
			     bool subscribed, struct loop *loop, store_done_fn *done,
			     void *arg);

/* Copies (or moves, RFC 6851) messages by UID to another mailbox of the
 * same account in one transaction: the new entries share the body files.
 * done gets the destination's UIDVALIDITY and the UID pairs (RFC 4315
 * COPYUID), valid during the call only. */
typedef void store_copy_done_fn(void *arg, int result, uint32_t uidvalidity,
				const uint32_t *src_uids, const uint32_t *dst_uids,
				size_t count);
void store_copy(struct store *s, int64_t src_mailbox, int64_t dst_mailbox,
		const uint32_t *uids, size_t count, bool move, struct loop *loop,
		store_copy_done_fn *done, void *arg);

/* What the MIME parser (mime/mime.h) computed for a message once, at
 * delivery or APPEND, and IMAP FETCH serves: ENVELOPE, BODY and
 * BODYSTRUCTURE as IMAP writes them, and the byte ranges of the parts
 * (mime_parts_serialize; offsets into the body file, without the
 * per-recipient prefix). */
struct store_mime {
	char *envelope, *body, *bodystructure;
	size_t envelope_len, body_len, bodystructure_len;
	unsigned char *parts;
	size_t parts_len;
};
/* The stored values of a messages row: 1 with *m filled, 0 when the row has
 * none (written by an older version), -1 on error. */
int store_message_mime(struct store_reader *r, int64_t message_id, struct store_mime *m);
/* Parses the body file of m (without its prefix) and computes the values,
 * for rows that have none. Returns 0 or -1 (errno: the file is gone). */
int store_msg_mime_parse(struct store *s, const struct store_msg *msg, struct store_mime *m);
void store_mime_deinit(struct store_mime *m);

/* PREVIEW (RFC 8970): at most STORE_PREVIEW_CHARS characters of UTF-8 from
 * the first text/plain or text/html part that is not an attachment,
 * transfer-decoded, HTML tags, comments, style and script removed, runs of
 * white space made one space; "" when the message has no such text.
 * store_message_preview: the one stored at delivery: 1 with a new string,
 * 0 when the row has none (stored by an older version), -1.
 * store_msg_preview_make: made now from the body file, 0 or -1 (errno).
 * store_preview_save: stores it for a row that had none, in the writer,
 * without telling anyone (a lost write only means making it again). */
#define STORE_PREVIEW_CHARS 200
int store_message_preview(struct store_reader *r, int64_t message_id, char **preview_r);
int store_msg_preview_make(struct store *s, const struct store_msg *msg, char **preview_r);
void store_preview_save(struct store *s, int64_t message_id, const char *preview);

/* Full-text search for IMAP SEARCH BODY/TEXT/HEADER (RFC 9051 6.4.4):
 * the UIDs of the mailbox, ascending, whose indexed text contains needle
 * (case-insensitive substring; the index holds decoded, UTF-8 text), in
 * *match_r; in *unindexed_r those whose text is not in the index (stored
 * by an older version), which the caller must check by reading them; and
 * in *pending_r those stored since the index was last written (it takes
 * new messages' text shortly after their commit) and those whose text it
 * holds only in part (cut at its size limit), which the caller checks
 * against store_msg_text, their whole decoded text. All from one
 * snapshot. Arrays are new (free them). */
enum store_text_where { STORE_TEXT_HEADER, STORE_TEXT_BODY, STORE_TEXT_ALL };
struct store_text_hits {
	uint32_t *match, *unindexed, *pending;
	size_t match_count, unindexed_count, pending_count;
};
int store_text_search(struct store_reader *r, int64_t mailbox_id, enum store_text_where where,
		      const char *needle, struct store_text_hits *hits_r);
void store_text_hits_deinit(struct store_text_hits *h);
/* The text of a message as the index holds it (decoded, UTF-8), but whole
 * up to a much larger limit than the index's: its header and its body, new
 * strings of *header_len_r and *body_len_r bytes, and whether nothing was
 * cut (then the message is also to be read as it is). 0, or -1 when it
 * cannot be read. */
int store_msg_text(struct store *s, const struct store_msg *msg, char **header_r,
		   size_t *header_len_r, char **body_r, size_t *body_len_r, bool *complete_r);

/* What IMAP SORT and THREAD (RFC 5256, RFC 5957) use of a message, stored
 * at delivery. Strings are UTF-8, "" when the field is absent. */
struct store_sort_fields {
	char *base_subject;	/* RFC 5256 2.1, extracted */
	bool reply;		/* the extraction removed a reply/forward marker */
	bool has_date;		/* else the internal date is the sent date (2.2) */
	int64_t date;		/* sent date, seconds since the epoch (UTC) */
	char *from, *to, *cc;	/* addr-mailbox of the first address */
	char *display_from, *display_to;	/* RFC 5957 3 */
	char *message_id;	/* normalised msg-id, or NULL */
	char *refs;		/* normalised references, space-separated */
};
/* The fields of msgs[0..count) of a mailbox (ascending UIDs) into
 * fields_r[0..count), with one query; messages stored before the fields
 * were (or whose row is missing) are parsed from their body file. Returns
 * 0 or -1 (database). */
int store_sort_fields_get(struct store_reader *r, int64_t mailbox_id,
			  const struct store_msg *const *msgs, size_t count,
			  struct store_sort_fields *fields_r);
void store_sort_fields_deinit(struct store_sort_fields *f);
/* RFC 5256 2.1 base subject of a decoded subject (NULL: none), a new
 * string; *reply_r says whether a subj-refwd, "(fwd)" subj-trailer or
 * subj-fwd-hdr/trl was removed (a reply or forward, for REFERENCES). */
char *store_base_subject(const char *subject, bool *reply_r);

/* Opens a body file (a path relative to data_dir, as messages.body holds)
 * for reading. Returns an fd or -1 (errno). */
int store_body_open(struct store *s, const char *body);
/* Opens a message's body file for reading. Returns an fd or -1 (errno). */
int store_msg_open(struct store *s, const struct store_msg *m);

/* Removes messages (by UID) from a mailbox for good, in one transaction:
 * each leaves a tombstone with the mailbox's new modseq (for IMAP
 * resynchronisation), and body files nobody holds any more are deleted
 * after the commit. UIDs not in the mailbox are ignored. done is posted to
 * loop. */
void store_expunge(struct store *s, int64_t mailbox_id, const uint32_t *uids,
		   size_t count, struct loop *loop, store_done_fn *done, void *arg);

/* ---- the outbound queue (server) ---- */

/* A remote recipient of a message, due for an attempt. */
struct store_queue_item {
	int64_t id;		/* queue row */
	int64_t message_id;
	char *queue_id;		/* the message's */
	char *sender;		/* "" for the null sender */
	char *recipient;
	char *body;		/* body file, relative to data_dir */
	uint64_t size;
	int64_t created;	/* when it was queued */
	int64_t received;	/* when the message arrived */
	uint32_t attempts;
	char *bounce_reason;	/* set by `yubin queue bounce`: bounce, do not send */
	bool delay_notified;	/* the sender was told of the delay */
};
/* Rows whose next attempt is at or before now, oldest first, at most
 * limit. Returns 0 or -1. */
int store_queue_due(struct store_reader *r, int64_t now, size_t limit,
		    struct store_queue_item **items_r, size_t *count_r);
void store_queue_items_free(struct store_queue_item **items, size_t count);
/* The earliest next attempt in the queue, 0 when it is empty. */
int64_t store_queue_next_attempt(struct store_reader *r);

/* The outcome of an attempt for one row: removed (delivered, or bounced:
 * the bounce is a delivery of its own, committed before), or tried again
 * at next_attempt with error remembered. */
struct store_queue_update {
	int64_t id;
	bool remove;
	int64_t next_attempt;
	char *error;
	bool delay_notified;	/* a delay notice was sent now */
};
/* Applies the updates in one transaction; bodies nobody holds any more
 * are deleted after the commit. done is posted to loop. */
void store_queue_update(struct store *s, const struct store_queue_update *u, size_t count,
			struct loop *loop, store_done_fn *done, void *arg);

/* fn(arg) is called (on the writer thread) after each commit that queued
 * mail for remote recipients: the scheduler looks at once. NULL: none. */
void store_set_queue_hook(struct store *s, void (*fn)(void *), void *arg);

/* ---- delivery (server) ---- */

/* Starts a new message: a body file in tmp/. The queue id names it from
 * now on in logs. Returns NULL with *error_r on a file system error. */
struct store_delivery *store_delivery_new(struct store *s, char **error_r);
const char *store_delivery_queue_id(struct store_delivery *d);
/* Appends body bytes (the message as it will be stored, CRLF line ends).
 * Returns 0, or -1 on a write error (disk full): the delivery must then be
 * aborted. */
int store_delivery_write(struct store_delivery *d, const void *data, size_t len);
uint64_t store_delivery_size(struct store_delivery *d);
/* The first bytes written (at most 64 KiB): enough for the header block. */
const char *store_delivery_head(struct store_delivery *d, size_t *len_r);
/* The envelope sender ("" for the null sender). */
void store_delivery_set_sender(struct store_delivery *d, const char *sender);
/* A local account receives the message in its INBOX; rcpt is the address
 * that led there (for Delivered-To). Adding one account twice delivers once. */
void store_delivery_add_local(struct store_delivery *d, int64_t account_id,
			      const char *rcpt);
/* IMAP APPEND: the message goes into this mailbox with these flags and
 * internal date, without per-recipient header lines. After a successful
 * commit, *uidvalidity_r and *uid_r (owned by the caller, who must keep them
 * alive until done runs) hold where it went (RFC 4315 APPENDUID). */
void store_delivery_add_mailbox(struct store_delivery *d, int64_t mailbox_id,
				uint32_t flags, const char *keywords, int64_t internaldate,
				uint32_t *uidvalidity_r, uint32_t *uid_r);

/* Header lines (CRLF-ended) every local recipient gets above the message,
 * after Return-Path and Delivered-To: the Authentication-Results of port
 * 25 (RFC 8601). Copied. */
void store_delivery_set_local_header(struct store_delivery *d, const char *lines);
/* Local recipients get the message in their \Junk mailbox (RFC 6154)
 * instead of the INBOX: DMARC quarantine. One is created (named "Junk",
 * or "Junk-<n>" when that name is taken) when the account has none. */
void store_delivery_set_junk(struct store_delivery *d, bool junk);

/* A remote recipient: the message waits in the queue for it. */
void store_delivery_add_remote(struct store_delivery *d, const char *rcpt);

/* Hands the delivery to the writer thread, which syncs the body, moves it in
 * place and commits all rows in one transaction. Takes ownership of d. */
void store_delivery_commit(struct store_delivery *d, struct loop *loop,
			   store_done_fn *done, void *arg);
/* Commits several deliveries in one transaction, in order: all of them or
 * none (RFC 3502 MULTIAPPEND). Takes ownership of each; done gets the one
 * result; the uid_r of store_delivery_add_mailbox() are set before it. */
void store_delivery_commit_group(struct store_delivery **ds, size_t count, struct loop *loop,
				 store_done_fn *done, void *arg);
/* Drops a delivery that was not committed and removes its file. */
void store_delivery_abort(struct store_delivery **d);

#endif
