#include "auth/auth.h"
#include "auth/password.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/util.h"
#include "core/work.h"
#include "store/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <openssl/sha.h>
#include <sodium.h>

static struct store *store;
static struct auth_limits limits;
static char *dummy_hash;
static _Thread_local struct store_reader *tl_reader;

/* ---- failure counters (per IP and per account) ---- */

#define TABLE_SIZE 4096
#define TABLE_MAX_ENTRIES 100000

struct counter {
	struct counter *next;
	char *key;		/* "ip:1.2.3.4" or "user:a@b" */
	uint32_t failures;
	int64_t last_ms;
	int64_t locked_until_ms;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter *table[TABLE_SIZE];
static size_t table_entries;

static unsigned hash_str(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % TABLE_SIZE;
}

/* Counters forget a failure after this long without new ones. */
static int64_t forget_ms(void)
{
	return (int64_t)(limits.lock_seconds ? limits.lock_seconds : 300) * 1000 * 2;
}

static struct counter *counter_get(const char *key, bool create, int64_t now)
{
	unsigned h = hash_str(key);
	for (struct counter **pc = &table[h]; *pc;) {
		struct counter *c = *pc;
		if (now - c->last_ms > forget_ms() && now >= c->locked_until_ms) {
			/* stale: drop it on the way */
			*pc = c->next;
			free(c->key);
			free(c);
			table_entries--;
			continue;
		}
		if (strcmp(c->key, key) == 0)
			return c;
		pc = &c->next;
	}
	if (!create || table_entries >= TABLE_MAX_ENTRIES)
		return NULL;
	struct counter *c = xcalloc(1, sizeof(*c));
	c->key = xstrdup(key);
	c->next = table[h];
	table[h] = c;
	table_entries++;
	return c;
}

static void keys(const char *ip, const char *user, char **ipkey, char **userkey)
{
	*ipkey = xasprintf("ip:%s", ip);
	*userkey = xasprintf("user:%s", user);
	str_lower(*userkey);
}

/* The delay for n failures: fail_delay, doubled for each one after the
 * first, up to fail_delay_max. */
static uint32_t delay_for(uint32_t failures)
{
	uint32_t delay = limits.fail_delay_ms;
	for (uint32_t i = 1; i < failures && delay < limits.fail_delay_max_ms; i++)
		delay *= 2;
	return delay > limits.fail_delay_max_ms ? limits.fail_delay_max_ms : delay;
}

/* A try refused by a lock: logged as a failure, answered after the delay
 * the locked counters have earned, and counted nowhere. Counting it would
 * mix the locks up: a right password sent from a locked IP would count
 * against the account and lock it everywhere (and a try at a locked
 * account against the IP). Returns the delay. */
static uint32_t note_locked(const char *protocol, const char *ip, const char *user)
{
	char *k[2];
	keys(ip, user, &k[0], &k[1]);
	int64_t now = time_mono_ms();
	uint32_t worst = 0;
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < 2; i++) {
		struct counter *c = counter_get(k[i], false, now);
		if (c != NULL && c->locked_until_ms > now && c->failures > worst)
			worst = c->failures;
	}
	pthread_mutex_unlock(&table_lock);
	uint32_t delay = delay_for(worst);
	log_info("event=auth_failed protocol=%s ip=%s user=\"%s\" failures=%u delay_ms=%u "
		 "reason=locked", protocol, ip, user, worst, delay);
	free(k[0]);
	free(k[1]);
	return delay;
}

static bool is_locked(const char *ip, const char *user)
{
	char *k1, *k2;
	keys(ip, user, &k1, &k2);
	int64_t now = time_mono_ms();
	pthread_mutex_lock(&table_lock);
	struct counter *a = counter_get(k1, false, now), *b = counter_get(k2, false, now);
	bool locked = (a && a->locked_until_ms > now) || (b && b->locked_until_ms > now);
	pthread_mutex_unlock(&table_lock);
	free(k1);
	free(k2);
	return locked;
}

/* Records a result; returns the delay to apply before answering. */
static uint32_t note(const char *protocol, const char *ip, const char *user, bool ok)
{
	char *k[2];
	keys(ip, user, &k[0], &k[1]);
	int64_t now = time_mono_ms();
	uint32_t delay = 0, worst = 0;
	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < 2; i++) {
		struct counter *c = counter_get(k[i], !ok, now);
		if (c == NULL)
			continue;
		if (ok) {
			/* A success clears the account's counter; the IP's only
			 * for that IP's own record. */
			c->failures = 0;
			c->locked_until_ms = 0;
			continue;
		}
		c->failures++;
		c->last_ms = now;
		if (c->failures > worst)
			worst = c->failures;
		if (limits.lock_failures && c->failures >= limits.lock_failures &&
		    c->locked_until_ms <= now) {
			c->locked_until_ms = now + (int64_t)limits.lock_seconds * 1000;
			log_warn("event=auth_lock key=%s failures=%u seconds=%u", c->key,
				 c->failures, limits.lock_seconds);
		}
	}
	pthread_mutex_unlock(&table_lock);
	if (!ok) {
		delay = delay_for(worst);
		log_info("event=auth_failed protocol=%s ip=%s user=\"%s\" failures=%u delay_ms=%u",
			 protocol, ip, user, worst, delay);
	} else {
		log_info("event=auth protocol=%s ip=%s user=%s", protocol, ip, user);
	}
	free(k[0]);
	free(k[1]);
	return delay;
}

/* ---- verified-password cache ---- */

#define CACHE_SIZE 1024

struct cache_entry {
	unsigned char key[SHA256_DIGEST_LENGTH];
	int64_t expires_ms;
};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry cache[CACHE_SIZE];
static unsigned char cache_secret[32];

/* The key covers the stored hash too: a changed password (a new hash)
 * makes old entries useless at once. */
static void cache_key(const char *hash, const char *password,
		      unsigned char out[SHA256_DIGEST_LENGTH])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, cache_secret, sizeof(cache_secret), SHA256_DIGEST_LENGTH);
	crypto_generichash_update(&st, (const unsigned char *)hash, strlen(hash) + 1);
	crypto_generichash_update(&st, (const unsigned char *)password, strlen(password));
	crypto_generichash_final(&st, out, SHA256_DIGEST_LENGTH);
}

static bool cache_hit(const unsigned char key[SHA256_DIGEST_LENGTH])
{
	if (limits.cache_seconds == 0)
		return false;
	unsigned slot = (unsigned)(key[0] | key[1] << 8) % CACHE_SIZE;
	pthread_mutex_lock(&cache_lock);
	bool hit = cache[slot].expires_ms > time_mono_ms() &&
		   memcmp(cache[slot].key, key, SHA256_DIGEST_LENGTH) == 0;
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const unsigned char key[SHA256_DIGEST_LENGTH])
{
	if (limits.cache_seconds == 0)
		return;
	unsigned slot = (unsigned)(key[0] | key[1] << 8) % CACHE_SIZE;
	pthread_mutex_lock(&cache_lock);
	memcpy(cache[slot].key, key, SHA256_DIGEST_LENGTH);
	cache[slot].expires_ms = time_mono_ms() + (int64_t)limits.cache_seconds * 1000;
	pthread_mutex_unlock(&cache_lock);
}

/* ---- logged-in sessions per account ----
 *
 * A hash of account ids to their count of logged-in IMAP and POP3
 * sessions. An entry lives while its count is above 0, so the table holds
 * at most one entry per session logged in. By account id, not by the
 * string typed at login: every spelling of an account counts as one. */

#define SESSION_BUCKETS 1024

struct session_count {
	struct session_count *next;
	int64_t account_id;
	uint32_t count;
};

static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static struct session_count *sessions[SESSION_BUCKETS];

static struct session_count **session_slot(int64_t account_id)
{
	struct session_count **pe = &sessions[(uint64_t)account_id % SESSION_BUCKETS];
	while (*pe != NULL && (*pe)->account_id != account_id)
		pe = &(*pe)->next;
	return pe;
}

bool auth_session_acquire(int64_t account_id, uint32_t *count_r)
{
	bool ok = true;
	pthread_mutex_lock(&session_lock);
	struct session_count **pe = session_slot(account_id);
	uint32_t n = *pe ? (*pe)->count : 0;
	if (limits.max_sessions && n >= limits.max_sessions) {
		ok = false;
	} else {
		if (*pe == NULL) {
			*pe = xcalloc(1, sizeof(**pe));
			(*pe)->account_id = account_id;
		}
		n = ++(*pe)->count;
	}
	pthread_mutex_unlock(&session_lock);
	if (count_r)
		*count_r = n;
	return ok;
}

void auth_session_release(int64_t account_id)
{
	pthread_mutex_lock(&session_lock);
	struct session_count **pe = session_slot(account_id), *e = *pe;
	bool unknown = e == NULL;
	if (e != NULL && --e->count == 0) {
		*pe = e->next;
		free(e);
	}
	pthread_mutex_unlock(&session_lock);
	if (unknown)
		log_error("event=session_count_error account_id=%lld note=\"released, never taken\"",
			  (long long)account_id);
}

uint32_t auth_session_limit(void)
{
	return limits.max_sessions;
}

/* ---- the check ---- */

void auth_init(struct store *s, const struct auth_limits *l)
{
	store = s;
	limits = *l;
	random_bytes(cache_secret, sizeof(cache_secret));
	char pw[16];
	random_bytes(pw, sizeof(pw));
	if (password_hash(pw, sizeof(pw), &dummy_hash) < 0)
		log_fatal("event=auth_init error=\"cannot hash\"");
}

static void deliver_waiting(void);

void auth_thread_deinit(void)
{
	deliver_waiting();
	store_reader_free(&tl_reader);
}

static struct store_reader *reader(void)
{
	if (tl_reader == NULL)
		tl_reader = store_reader_new(store);
	return tl_reader;
}

struct check {
	struct loop *loop;
	const char *protocol;
	char *ip;
	char *user;
	char *password;
	char *hash;
	unsigned char key[SHA256_DIGEST_LENGTH];
	bool cached;
	bool known;
	int verified;
	enum auth_result result;
	int64_t account_id;
	char *address;
	auth_done_fn *done;
	void *arg;
	struct event *timer;		/* the answer's, on loop */
	struct check *prev, *next;	/* in tl_waiting while timer runs */
};

/* Checks whose answer waits for its timer (the failure delay, or the next
 * loop turn) on this thread's loop. A loop that ends never fires them:
 * auth_thread_deinit answers them at once, so the sessions waiting (their
 * connections closed by then) are freed rather than leaked. */
static _Thread_local struct check *tl_waiting;
/* Set once a loop has ended: a password check finished by the worker pool
 * after that is answered at once, as loop_free runs what was posted (the
 * loop's timers will never run again). */
static atomic_bool loops_ending;

static void check_free(struct check *c)
{
	if (c->password) {
		mem_wipe(c->password, strlen(c->password));
		free(c->password);
	}
	if (c->hash) {
		mem_wipe(c->hash, strlen(c->hash));
		free(c->hash);
	}
	free(c->ip);
	free(c->user);
	free(c->address);
	free(c);
}

static void deliver(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct check *c = arg;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
		if (c->prev)
			c->prev->next = c->next;
		else
			tl_waiting = c->next;
		if (c->next)
			c->next->prev = c->prev;
	}
	c->done(c->arg, c->result, c->account_id, c->address);
	check_free(c);
}

/* Answers after the throttle delay (or at the next loop turn), on the
 * check's loop; called on that loop's thread. */
static void answer(struct check *c, uint32_t delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
	c->timer = evtimer_new(loop_base(c->loop), deliver, c);
	c->prev = NULL;
	c->next = tl_waiting;
	if (tl_waiting)
		tl_waiting->prev = c;
	tl_waiting = c;
	evtimer_add(c->timer, &tv);
}

static void deliver_waiting(void)
{
	atomic_store(&loops_ending, true);
	while (tl_waiting != NULL)
		deliver(-1, 0, tl_waiting);
}

static void verify_work(void *arg)
{
	struct check *c = arg;
	/* Unknown users cost the same as known ones: verify against a
	 * dummy hash so timing does not tell them apart. */
	c->verified = password_verify(c->password, strlen(c->password),
				      c->known ? c->hash : dummy_hash) == 1 && c->known;
}

static void verify_done(void *arg)
{
	struct check *c = arg;
	bool ok = c->verified == 1;
	if (ok)
		cache_put(c->key);
	c->result = ok ? AUTH_OK : AUTH_FAIL;
	if (!ok)
		xfree(&c->address);
	uint32_t delay = note(c->protocol, c->ip, c->user, ok);
	/* Posted here by the worker pool; this is not inside the caller's
	 * auth_check_password, so answering now is safe. */
	if (atomic_load(&loops_ending))
		deliver(-1, 0, c);
	else
		answer(c, delay);
}

void auth_check_password(struct loop *loop, const char *protocol, const char *ip,
			 const char *user, const char *password, auth_done_fn *done,
			 void *arg)
{
	struct check *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->protocol = protocol;
	c->ip = xstrdup(ip);
	c->user = xstrdup(user);
	c->done = done;
	c->arg = arg;

	if (is_locked(ip, user)) {
		c->result = AUTH_FAIL;
		answer(c, note_locked(protocol, ip, user));
		return;
	}
	struct store_account acc;
	int r = store_account_lookup(reader(), user, &acc);
	if (r < 0) {
		c->result = AUTH_TEMPFAIL;
		answer(c, 0);
		return;
	}
	c->password = xstrdup(password);
	if (r > 0) {
		c->known = true;
		c->account_id = acc.id;
		c->address = xstrdup(acc.address);
		c->hash = xstrdup(acc.hash);
		store_account_deinit(&acc);
		cache_key(c->hash, c->password, c->key);
		if (cache_hit(c->key)) {
			c->result = AUTH_OK;
			answer(c, note(protocol, ip, user, true));
			return;
		}
	}
	work_submit(verify_work, verify_done, c, loop);
}

void auth_finish_external(struct loop *loop, const char *protocol, const char *ip,
			  const char *user, bool proof_ok, auth_done_fn *done, void *arg)
{
	struct check *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->protocol = protocol;
	c->ip = xstrdup(ip);
	c->user = xstrdup(user);
	c->done = done;
	c->arg = arg;
	c->result = AUTH_FAIL;
	if (is_locked(ip, user)) {
		answer(c, note_locked(protocol, ip, user));
		return;
	}
	if (proof_ok) {
		struct store_account acc;
		int r = store_account_lookup(reader(), user, &acc);
		if (r < 0) {
			c->result = AUTH_TEMPFAIL;
			answer(c, 0);
			return;
		}
		if (r > 0) {
			c->result = AUTH_OK;
			c->account_id = acc.id;
			c->address = xstrdup(acc.address);
			store_account_deinit(&acc);
		}
	}
	answer(c, note(protocol, ip, user, c->result == AUTH_OK));
}

int auth_scram_record(void *ctx UNUSED, const char *user, char **record_r)
{
	struct store_account acc;
	if (is_locked("", user) || store_account_lookup(reader(), user, &acc) <= 0)
		return -1;
	int r = -1;
	if (acc.scram) {
		*record_r = xstrdup(acc.scram);
		r = 0;
	}
	store_account_deinit(&acc);
	return r;
}
