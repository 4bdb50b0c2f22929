/* Authenticating users, shared by SMTP submission, POP3 and IMAP.
 *
 * auth_check_password() looks the account up, verifies the password on the
 * worker pool (Argon2id costs tens of milliseconds; the event loop never
 * waits for it), remembers a verified password for a short while so that
 * clients that reconnect often stay cheap, and applies login throttling:
 * per-IP and per-account failure counters that delay each failure answer
 * more, and lock for a while after too many. Every failure is logged with
 * the IP and the protocol. */
#ifndef YUBIN_AUTH_H
#define YUBIN_AUTH_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct store;

struct auth_limits {
	uint32_t fail_delay_ms;		/* first failure answer delay */
	uint32_t fail_delay_max_ms;	/* the delay doubles up to this */
	uint32_t lock_failures;		/* failures that lock (0: never) */
	uint32_t lock_seconds;		/* how long a lock lasts */
	uint32_t cache_seconds;		/* verified-password cache (0: off) */
	uint32_t max_sessions;		/* logged-in IMAP+POP3 sessions per account (0: no limit) */
};

void auth_init(struct store *store, const struct auth_limits *limits);
/* Per I/O thread, at its end. */
void auth_thread_deinit(void);

enum auth_result {
	AUTH_OK,
	AUTH_FAIL,	/* wrong user or password, or locked: the client is not told which */
	AUTH_TEMPFAIL,	/* the store failed */
};

/* account_id and address (canonical "local@domain") are set for AUTH_OK. */
typedef void auth_done_fn(void *arg, enum auth_result result, int64_t account_id,
			  const char *address);

/* Checks user/password; done runs later on loop (never before this returns).
 * The password is copied and wiped after use. */
void auth_check_password(struct loop *loop, const char *protocol, const char *ip,
			 const char *user, const char *password, auth_done_fn *done,
			 void *arg);

/* For mechanisms that check the proof themselves (SCRAM): the outcome,
 * which counts for throttling like a password check, delivered the same way. */
void auth_finish_external(struct loop *loop, const char *protocol, const char *ip,
			  const char *user, bool proof_ok, auth_done_fn *done, void *arg);

/* Logged-in sessions per account, IMAP and POP3 together ([limits]
 * max_sessions_per_user), over all I/O threads. A session takes a slot
 * after its login succeeded and gives it back once, however it ends.
 * Returns true with the slot taken; false over the limit (nothing taken).
 * *count_r: the account's sessions, this one included when taken. */
bool auth_session_acquire(int64_t account_id, uint32_t *count_r);
void auth_session_release(int64_t account_id);
uint32_t auth_session_limit(void);

/* sasl_lookup.scram_record for this thread (ctx unused). */
int auth_scram_record(void *ctx, const char *user, char **record_r);

#endif
