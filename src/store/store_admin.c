/* The admin side of the store, for the CLI: domains, accounts, aliases, and
 * read-only views of mailboxes and of the queue.
 *
 * Each function is one transaction on the store's own connection. A change
 * starts with BEGIN IMMEDIATE, so its checks ("does the domain exist?") and
 * the change they allow see the same state while a server writes to the same
 * database; a failure rolls back, so a failed command changes nothing. A
 * read starts with a plain BEGIN: one consistent snapshot that never holds up
 * the server's writer (WAL).
 *
 * Names are kept the way store_resolve() looks them up: domains lower case,
 * local parts lower case, the catch-all as the local part "". */
#include "store/store_private.h"
#include "core/log.h"
#include "core/util.h"
#include "smtp/address.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- transactions and statements ---- */

static int tx_begin(struct store *s, bool write, char **error_r)
{
	return store_exec(s->db, write ? "BEGIN IMMEDIATE" : "BEGIN", error_r);
}

/* Commits when r is 0, otherwise (or when the commit fails) rolls back.
 * Returns 0 when committed, -1 otherwise (*error_r set). */
static int tx_end(struct store *s, int r, char **error_r)
{
	if (r == 0 && store_exec(s->db, "COMMIT", error_r) == 0)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Body files nobody references any more go in a transaction of their own,
 * after the one that dropped the references is committed:
 * store_gc_bodies() unlinks as it goes, and a commit that failed after the
 * unlinks would leave rows pointing at missing files. This way the worst
 * case is unused files, which the next collection takes. */
static void gc_after(struct store *s)
{
	char *gc_error = NULL;
	if (tx_begin(s, true, &gc_error) < 0 ||
	    tx_end(s, store_gc_bodies(s, s->db, &gc_error), &gc_error) < 0) {
		log_warn("event=gc_bodies_failed error=\"%s\"", gc_error ? gc_error : "");
		free(gc_error);
	}
}

static sqlite3_stmt *prepare(struct store *s, const char *sql, char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_db_error(s->db, "database");
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

/* Runs a statement that returns no rows. Finalizes it. */
static int step_done(struct store *s, sqlite3_stmt *st, char **error_r)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		*error_r = store_db_error(s->db, "database");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Runs a query whose first column of its first row is an integer.
 * Returns 1 with *value_r, 0 when there is no row, -1 on error. Finalizes. */
static int step_int(struct store *s, sqlite3_stmt *st, int64_t *value_r, char **error_r)
{
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc == SQLITE_ROW) {
		*value_r = sqlite3_column_int64(st, 0);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s->db, "database");
		r = -1;
	}
	sqlite3_finalize(st);
	return r;
}

/* Collects the first column of every row into a NULL-terminated vector.
 * Finalizes the statement. */
static int step_strv(struct store *s, sqlite3_stmt *st, char ***strv_r, char **error_r)
{
	size_t n = 0;
	char **v = xcalloc(1, sizeof(*v));
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text = (const char *)sqlite3_column_text(st, 0);
		v = xrealloc(v, (n + 2) * sizeof(*v));
		v[n++] = xstrdup(text ? text : "");
		v[n] = NULL;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_db_error(s->db, "database");
		store_strv_free(&v);
		return -1;
	}
	*strv_r = v;
	return 0;
}

/* ---- names ---- */

static int parse_domain(const char *domain, char **domain_r, char **error_r)
{
	const char *err = NULL;
	if (address_parse_domain(domain, 0, domain_r, &err) < 0) {
		*error_r = xasprintf("not a valid domain: %s (%s)", domain,
				     err ? err : "bad syntax");
		return -1;
	}
	return 0;
}

/* Parses "local@domain" into new strings, the domain lower case and the
 * local part as address_parse() leaves it (case kept). An address literal
 * ("a@[192.0.2.1]") is refused unless allow_literal: it names no domain of
 * ours, but it is a valid place to forward to. */
static int parse_address(const char *address, bool allow_literal, char **local_r,
			 char **domain_r, char **error_r)
{
	struct address a;
	const char *err = NULL;
	if (address_parse(address, 0, &a, &err) < 0) {
		*error_r = xasprintf("not a valid address: %s (%s)", address,
				     err ? err : "bad syntax");
		return -1;
	}
	if (a.domain_literal && !allow_literal) {
		*error_r = xasprintf("not a valid address: %s (an address literal "
				     "is not a mail domain)", address);
		address_deinit(&a);
		return -1;
	}
	*local_r = xstrdup(a.local);
	*domain_r = xstrdup(a.domain);
	address_deinit(&a);
	return 0;
}

/* An account address as the admin typed it, in its stored form: both parts
 * lower case. Local parts are case-insensitive here on purpose (as in
 * Postfix and Dovecot): "Bob@" and "bob@" are one person. */
static int parse_account(const char *address, char **local_r, char **domain_r,
			 char **error_r)
{
	if (parse_address(address, false, local_r, domain_r, error_r) < 0)
		return -1;
	str_lower(*local_r);
	return 0;
}

/* The domain's id: 1 found, 0 not ours, -1 error. */
static int find_domain(struct store *s, const char *domain, int64_t *id_r, char **error_r)
{
	sqlite3_stmt *st = prepare(s, "SELECT id FROM domains WHERE name = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	return step_int(s, st, id_r, error_r);
}

/* Like find_domain, but a missing domain is an error. */
static int need_domain(struct store *s, const char *domain, int64_t *id_r, char **error_r)
{
	int r = find_domain(s, domain, id_r, error_r);
	if (r == 0)
		*error_r = xasprintf("no such domain: %s", domain);
	return r > 0 ? 0 : -1;
}

/* The account's id: 1 found, 0 none, -1 error. */
static int find_account(struct store *s, int64_t domain_id, const char *local,
			int64_t *id_r, char **error_r)
{
	sqlite3_stmt *st = prepare(s, "SELECT id FROM accounts WHERE domain_id = ?"
				   " AND localpart = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, domain_id);
	sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
	return step_int(s, st, id_r, error_r);
}

/* Parses an account address and finds it; a missing domain or account is an
 * error. Call inside a transaction. */
static int need_account(struct store *s, const char *address, int64_t *id_r,
			char **error_r)
{
	char *local, *domain;
	int64_t dom;
	int r = -1;
	if (parse_account(address, &local, &domain, error_r) < 0)
		return -1;
	if (need_domain(s, domain, &dom, error_r) == 0) {
		r = find_account(s, dom, local, id_r, error_r);
		if (r == 0)
			*error_r = xasprintf("no such user: %s@%s", local, domain);
		r = r > 0 ? 0 : -1;
	}
	free(local);
	free(domain);
	return r;
}

/* "2 accounts", "1 alias" */
static char *count_noun(int64_t n, const char *one, const char *many)
{
	return xasprintf("%lld %s", (long long)n, n == 1 ? one : many);
}

/* ---- domains ---- */

int store_domain_add(struct store *s, const char *domain, char **error_r)
{
	char *name;
	int64_t id;
	int r;
	if (parse_domain(domain, &name, error_r) < 0)
		return -1;
	if (tx_begin(s, true, error_r) < 0) {
		free(name);
		return -1;
	}
	r = find_domain(s, name, &id, error_r);
	if (r > 0) {
		*error_r = xasprintf("domain already exists: %s", name);
		r = -1;
	} else if (r == 0) {
		sqlite3_stmt *st = prepare(s, "INSERT INTO domains (name, created)"
					   " VALUES (?, ?)", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, time_now_ms() / 1000);
			r = step_done(s, st, error_r);
		}
	}
	r = tx_end(s, r, error_r);
	free(name);
	return r;
}

int store_domain_del(struct store *s, const char *domain, char **error_r)
{
	char *name;
	int64_t id;
	int r;
	if (parse_domain(domain, &name, error_r) < 0)
		return -1;
	if (tx_begin(s, true, error_r) < 0) {
		free(name);
		return -1;
	}
	r = need_domain(s, name, &id, error_r);
	if (r == 0) {
		/* Accounts and aliases hang on the domain: deleting it under
		 * them would leave mailboxes nobody can reach. The admin
		 * removes them first, knowingly. */
		sqlite3_stmt *st = prepare(s,
			"SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1),"
			" (SELECT count(*) FROM aliases WHERE domain_id = ?1)", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) == SQLITE_ROW) {
				int64_t accounts = sqlite3_column_int64(st, 0);
				int64_t aliases = sqlite3_column_int64(st, 1);
				char *a = count_noun(accounts, "account", "accounts");
				char *b = count_noun(aliases, "alias", "aliases");
				if (accounts > 0 && aliases > 0)
					*error_r = xasprintf("domain %s still has %s and %s; "
							     "delete them first", name, a, b);
				else if (accounts > 0 || aliases > 0)
					*error_r = xasprintf("domain %s still has %s; delete %s first",
							     name, accounts > 0 ? a : b,
							     accounts + aliases > 1 ? "them" : "it");
				else
					r = 0;
				free(a);
				free(b);
			} else {
				*error_r = store_db_error(s->db, "database");
			}
			sqlite3_finalize(st);
		}
	}
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, "DELETE FROM domains WHERE id = ?", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, id);
			r = step_done(s, st, error_r);
		}
	}
	r = tx_end(s, r, error_r);
	free(name);
	return r;
}

int store_domain_list(struct store *s, char ***names_r, char **error_r)
{
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	sqlite3_stmt *st = prepare(s, "SELECT name FROM domains ORDER BY name", error_r);
	int r = st != NULL ? step_strv(s, st, names_r, error_r) : -1;
	if (tx_end(s, r, error_r) < 0) {
		if (r == 0)
			store_strv_free(names_r);
		return -1;
	}
	return 0;
}

/* ---- accounts ---- */

/* RFC 9051 2.3.1.1: UIDVALIDITY must change whenever a mailbox name comes
 * back with new UIDs, as when a user is deleted and added again. Seconds
 * since the epoch do that over time, and one more than the largest value in
 * use keeps the five new mailboxes (and a user added again within the same
 * second) above everything existing. The one case left is a re-add within
 * the same second of an account that held the largest values, since nothing
 * remembers them after the delete: a window of one second, accepted. */
static int next_uidvalidity(struct store *s, int64_t *value_r, char **error_r)
{
	int64_t now = time_now_ms() / 1000, max = 0;
	sqlite3_stmt *st = prepare(s, "SELECT max(uidvalidity) FROM mailboxes", error_r);
	if (st == NULL || step_int(s, st, &max, error_r) < 0)
		return -1;
	*value_r = max >= now ? max + 1 : now;
	if (*value_r > UINT32_MAX) {
		*error_r = xstrdup("no UIDVALIDITY left below 2^32");
		return -1;
	}
	return 0;
}

static int insert_account(struct store *s, int64_t dom, const char *local,
			  const char *hash, const char *scram, char **error_r)
{
	static const struct {
		const char *name;
		const char *special_use;
	} mailboxes[] = STORE_DEFAULT_MAILBOXES;
	int64_t uidvalidity;
	if (next_uidvalidity(s, &uidvalidity, error_r) < 0)
		return -1;

	sqlite3_stmt *st = prepare(s, "INSERT INTO accounts (domain_id, localpart,"
				   " password, scram, created) VALUES (?, ?, ?, ?, ?)", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, dom);
	sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	if (scram)
		sqlite3_bind_text(st, 4, scram, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, time_now_ms() / 1000);
	if (step_done(s, st, error_r) < 0)
		return -1;
	int64_t account = sqlite3_last_insert_rowid(s->db);

	st = prepare(s, "INSERT INTO mailboxes (account_id, name, special_use,"
		     " uidvalidity, uidnext, highestmodseq) VALUES (?, ?, ?, ?, 1, 1)",
		     error_r);
	if (st == NULL)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(mailboxes); i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, account);
		sqlite3_bind_text(st, 2, mailboxes[i].name, -1, SQLITE_STATIC);
		if (mailboxes[i].special_use)
			sqlite3_bind_text(st, 3, mailboxes[i].special_use, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		sqlite3_bind_int64(st, 4, uidvalidity + (int64_t)i);
		if (sqlite3_step(st) != SQLITE_DONE) {
			*error_r = store_db_error(s->db, "database");
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return 0;
}

int store_user_add(struct store *s, const char *address, const char *hash,
		   const char *scram, char **error_r)
{
	char *local, *domain;
	int64_t dom, acc;
	int r;
	if (hash == NULL || *hash == '\0') {
		*error_r = xstrdup("empty password hash");
		return -1;
	}
	if (parse_account(address, &local, &domain, error_r) < 0)
		return -1;
	if (tx_begin(s, true, error_r) < 0) {
		r = -1;
		goto out;
	}
	r = need_domain(s, domain, &dom, error_r);
	if (r == 0) {
		r = find_account(s, dom, local, &acc, error_r);
		if (r > 0) {
			*error_r = xasprintf("user already exists: %s@%s", local, domain);
			r = -1;
		}
	}
	if (r == 0)
		r = insert_account(s, dom, local, hash, scram, error_r);
	r = tx_end(s, r, error_r);
out:
	free(local);
	free(domain);
	return r;
}

int store_user_del(struct store *s, const char *address, char **error_r)
{
	int64_t acc;
	sqlite3_stmt *st;
	if (tx_begin(s, true, error_r) < 0)
		return -1;
	int r = need_account(s, address, &acc, error_r);
	/* The mailboxes take their mail and expunge tombstones with them
	 * (ON DELETE CASCADE). Aliases pointing at the address stay: they
	 * are the admin's to change, and mail to them is refused (or goes to
	 * their other targets) until the address exists again. */
	if (r == 0) {
		r = -1;
		if ((st = prepare(s, "DELETE FROM mailboxes WHERE account_id = ?", error_r)) != NULL) {
			sqlite3_bind_int64(st, 1, acc);
			r = step_done(s, st, error_r);
		}
	}
	if (r == 0) {
		r = -1;
		if ((st = prepare(s, "DELETE FROM accounts WHERE id = ?", error_r)) != NULL) {
			sqlite3_bind_int64(st, 1, acc);
			r = step_done(s, st, error_r);
		}
	}
	if (tx_end(s, r, error_r) < 0)
		return -1;

	gc_after(s);
	return 0;
}

int store_user_passwd(struct store *s, const char *address, const char *hash,
		      const char *scram, char **error_r)
{
	int64_t acc;
	if (hash == NULL || *hash == '\0') {
		*error_r = xstrdup("empty password hash");
		return -1;
	}
	if (tx_begin(s, true, error_r) < 0)
		return -1;
	int r = need_account(s, address, &acc, error_r);
	if (r == 0) {
		/* The SCRAM record always changes with the hash: an old one
		 * would keep the old password working for SCRAM-SHA-256; an
		 * imported hash has none, and SCRAM then refuses the user. */
		sqlite3_stmt *st = prepare(s, "UPDATE accounts SET password = ?, scram = ?"
					   " WHERE id = ?", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
			if (scram)
				sqlite3_bind_text(st, 2, scram, -1, SQLITE_STATIC);
			else
				sqlite3_bind_null(st, 2);
			sqlite3_bind_int64(st, 3, acc);
			r = step_done(s, st, error_r);
		}
	}
	return tx_end(s, r, error_r);
}

int store_user_list(struct store *s, const char *domain, char ***addresses_r,
		    char **error_r)
{
	char *name = NULL;
	int64_t dom;
	int r = 0;
	if (domain != NULL && parse_domain(domain, &name, error_r) < 0)
		return -1;
	if (tx_begin(s, false, error_r) < 0) {
		free(name);
		return -1;
	}
	if (name != NULL)
		r = need_domain(s, name, &dom, error_r);
	if (r == 0) {
		sqlite3_stmt *st = prepare(s,
			"SELECT a.localpart || '@' || d.name FROM accounts a"
			" JOIN domains d ON d.id = a.domain_id"
			" WHERE ?1 IS NULL OR d.name = ?1"
			" ORDER BY d.name, a.localpart", error_r);
		r = -1;
		if (st != NULL) {
			if (name != NULL)
				sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			r = step_strv(s, st, addresses_r, error_r);
		}
	}
	free(name);
	if (tx_end(s, r, error_r) < 0) {
		if (r == 0)
			store_strv_free(addresses_r);
		return -1;
	}
	return 0;
}

int store_user_hash(struct store *s, const char *address, char **hash_r,
		    char **error_r)
{
	int64_t acc;
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	int r = need_account(s, address, &acc, error_r);
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, "SELECT password FROM accounts WHERE id = ?",
					   error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, acc);
			if (sqlite3_step(st) == SQLITE_ROW) {
				*hash_r = xstrdup((const char *)sqlite3_column_text(st, 0));
				r = 0;
			} else {
				*error_r = store_db_error(s->db, "database");
			}
			sqlite3_finalize(st);
		}
	}
	if (tx_end(s, r, error_r) < 0) {
		if (r == 0)
			xfree(hash_r);
		return -1;
	}
	return 0;
}

/* ---- aliases ---- */

/* Parses an alias source, "local@domain" or "@domain", into its stored
 * form ("" is the catch-all's local part) and the id of its domain, which
 * must be ours. *source_r is the source as shown ("@domain" for the
 * catch-all). Call inside a transaction. */
static int parse_source(struct store *s, const char *source, char **local_r,
			char **source_r, int64_t *dom_r, char **error_r)
{
	char *domain;
	if (source[0] == '@') {
		if (parse_domain(source + 1, &domain, error_r) < 0)
			return -1;
		*local_r = xstrdup("");
	} else if (parse_account(source, local_r, &domain, error_r) < 0) {
		return -1;
	}
	int r = need_domain(s, domain, dom_r, error_r);
	if (r < 0)
		xfree(local_r);
	else
		*source_r = xasprintf("%s@%s", *local_r, domain);
	free(domain);
	return r;
}

/* An alias target in its stored form: the domain lower case; the local part
 * lower case too when the domain is ours (our local parts are), as the
 * remote server decides what case means for its own. Call inside a
 * transaction. */
static int parse_target(struct store *s, const char *target, char **target_r,
			char **error_r)
{
	char *local, *domain;
	int64_t dom;
	if (parse_address(target, true, &local, &domain, error_r) < 0)
		return -1;
	int r = find_domain(s, domain, &dom, error_r);
	if (r > 0)
		str_lower(local);
	if (r >= 0)
		*target_r = xasprintf("%s@%s", local, domain);
	free(local);
	free(domain);
	return r < 0 ? -1 : 0;
}

int store_alias_add(struct store *s, const char *source, const char *target,
		    char **error_r)
{
	char *local = NULL, *stored = NULL, *src = NULL;
	int64_t dom, id;
	if (tx_begin(s, true, error_r) < 0)
		return -1;
	int r = parse_source(s, source, &local, &src, &dom, error_r);
	if (r == 0)
		r = parse_target(s, target, &stored, error_r);
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, "SELECT id FROM aliases WHERE domain_id = ?"
					   " AND localpart = ? AND target = ?", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, dom);
			sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, stored, -1, SQLITE_STATIC);
			r = step_int(s, st, &id, error_r);
		}
		if (r > 0) {
			*error_r = xasprintf("alias already exists: %s %s", src, stored);
			r = -1;
		}
	}
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, "INSERT INTO aliases (domain_id, localpart,"
					   " target) VALUES (?, ?, ?)", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, dom);
			sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, stored, -1, SQLITE_STATIC);
			r = step_done(s, st, error_r);
		}
	}
	free(local);
	free(stored);
	free(src);
	return tx_end(s, r, error_r);
}

int store_alias_del(struct store *s, const char *source, const char *target,
		    char **error_r)
{
	char *local = NULL, *stored = NULL, *src = NULL;
	int64_t dom;
	if (tx_begin(s, true, error_r) < 0)
		return -1;
	int r = parse_source(s, source, &local, &src, &dom, error_r);
	if (r == 0 && target != NULL)
		r = parse_target(s, target, &stored, error_r);
	if (r == 0) {
		/* A target is matched without regard to case: it was lowered
		 * at "alias add" only where its domain was ours then. */
		sqlite3_stmt *st = prepare(s, "DELETE FROM aliases WHERE domain_id = ?1"
					   " AND localpart = ?2"
					   " AND (?3 IS NULL OR target = ?3 COLLATE NOCASE)",
					   error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, dom);
			sqlite3_bind_text(st, 2, local, -1, SQLITE_STATIC);
			if (stored != NULL)
				sqlite3_bind_text(st, 3, stored, -1, SQLITE_STATIC);
			r = step_done(s, st, error_r);
		}
		if (r == 0 && sqlite3_changes(s->db) == 0) {
			if (stored != NULL)
				*error_r = xasprintf("no such alias: %s %s", src, stored);
			else
				*error_r = xasprintf("no such alias: %s", src);
			r = -1;
		}
	}
	free(local);
	free(stored);
	free(src);
	return tx_end(s, r, error_r);
}

int store_alias_list(struct store *s, const char *domain, char ***entries_r,
		     char **error_r)
{
	char *name = NULL;
	int64_t dom;
	int r = 0;
	if (domain != NULL && parse_domain(domain, &name, error_r) < 0)
		return -1;
	if (tx_begin(s, false, error_r) < 0) {
		free(name);
		return -1;
	}
	if (name != NULL)
		r = need_domain(s, name, &dom, error_r);
	if (r == 0) {
		/* The catch-all's local part is "", which prints as "@domain".
		 * Targets of one source come in the order they were added. */
		sqlite3_stmt *st = prepare(s,
			"SELECT a.localpart || '@' || d.name || ' ' || a.target"
			" FROM aliases a JOIN domains d ON d.id = a.domain_id"
			" WHERE ?1 IS NULL OR d.name = ?1"
			" ORDER BY d.name, a.localpart, a.id", error_r);
		r = -1;
		if (st != NULL) {
			if (name != NULL)
				sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
			r = step_strv(s, st, entries_r, error_r);
		}
	}
	free(name);
	if (tx_end(s, r, error_r) < 0) {
		if (r == 0)
			store_strv_free(entries_r);
		return -1;
	}
	return 0;
}

/* ---- mailboxes and the queue ---- */

/* The id of an account's mailbox. NULL and any case of "INBOX" are the
 * INBOX (RFC 9051 5.1); other names match exactly. Inside a transaction. */
static int find_mailbox(struct store *s, const char *address, const char *mailbox,
			int64_t *id_r, char **error_r)
{
	int64_t acc;
	if (need_account(s, address, &acc, error_r) < 0)
		return -1;
	const char *name = mailbox == NULL || str_ieq(mailbox, "INBOX") ? "INBOX" : mailbox;
	sqlite3_stmt *st = prepare(s, "SELECT id FROM mailboxes WHERE account_id = ?"
				   " AND name = ?", error_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, acc);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	int r = step_int(s, st, id_r, error_r);
	if (r == 0)
		*error_r = xasprintf("no such mailbox: %s %s", address, name);
	return r > 0 ? 0 : -1;
}

static char *column_strdup(sqlite3_stmt *st, int i)
{
	const char *text = (const char *)sqlite3_column_text(st, i);
	return xstrdup(text ? text : "");
}

int store_mail_list(struct store *s, const char *address, const char *mailbox,
		    struct store_mail_row **rows_r, size_t *count_r, char **error_r)
{
	struct store_mail_row *rows = NULL;
	size_t n = 0;
	int64_t box;
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	int r = find_mailbox(s, address, mailbox, &box, error_r);
	if (r == 0) {
		/* The size served is the per-recipient prefix plus the shared
		 * body; the prefix is a BLOB, cast so length() counts bytes.
		 * A message without From: shows its envelope sender instead,
		 * in angle brackets so it reads as one. */
		sqlite3_stmt *st = prepare(s,
			"SELECT m.uid, m.internaldate,"
			" length(CAST(m.prefix AS BLOB)) + g.size,"
			" CASE WHEN g.hdr_from <> '' OR g.sender = '' THEN g.hdr_from"
			"  ELSE '<' || g.sender || '>' END, g.hdr_subject"
			" FROM mail m JOIN messages g ON g.id = m.message_id"
			" WHERE m.mailbox_id = ? ORDER BY m.uid", error_r);
		r = -1;
		if (st != NULL) {
			int rc;
			sqlite3_bind_int64(st, 1, box);
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				rows = xrealloc(rows, (n + 1) * sizeof(*rows));
				rows[n].uid = (uint32_t)sqlite3_column_int64(st, 0);
				rows[n].internaldate = sqlite3_column_int64(st, 1);
				rows[n].size = (uint64_t)sqlite3_column_int64(st, 2);
				rows[n].from = column_strdup(st, 3);
				rows[n].subject = column_strdup(st, 4);
				n++;
			}
			if (rc == SQLITE_DONE)
				r = 0;
			else
				*error_r = store_db_error(s->db, "database");
			sqlite3_finalize(st);
		}
	}
	if (tx_end(s, r, error_r) < 0) {
		store_mail_rows_free(&rows, n);
		return -1;
	}
	*rows_r = rows;
	*count_r = n;
	return 0;
}

void store_mail_rows_free(struct store_mail_row **rowsp, size_t count)
{
	struct store_mail_row *rows = *rowsp;
	if (rows == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(rows[i].from);
		free(rows[i].subject);
	}
	free(rows);
	*rowsp = NULL;
}

/* Copies the rest of a file to fd. */
static int copy_fd(int in, int out, char **error_r)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading the message: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		if (write_full(out, buf, (size_t)n) < 0) {
			*error_r = xasprintf("writing the message: %s", strerror(errno));
			return -1;
		}
	}
}

int store_mail_show(struct store *s, const char *address, const char *mailbox,
		    uint32_t uid, int fd, char **error_r)
{
	int64_t box;
	void *prefix = NULL;
	size_t prefix_len = 0;
	int body_fd = -1;
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	int r = find_mailbox(s, address, mailbox, &box, error_r);
	if (r == 0) {
		sqlite3_stmt *st = prepare(s,
			"SELECT m.prefix, g.body FROM mail m"
			" JOIN messages g ON g.id = m.message_id"
			" WHERE m.mailbox_id = ? AND m.uid = ?", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, box);
			sqlite3_bind_int64(st, 2, uid);
			int rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				const void *p = sqlite3_column_blob(st, 0);
				prefix_len = (size_t)sqlite3_column_bytes(st, 0);
				prefix = xmalloc(prefix_len);
				if (prefix_len > 0)
					memcpy(prefix, p, prefix_len);
				const char *body = (const char *)sqlite3_column_text(st, 1);
				/* Opened while the snapshot still holds the row: once
				 * open, an expunge that removes the file cannot take
				 * the content away from us. */
				body_fd = openat(s->data_dir_fd, body, O_RDONLY | O_CLOEXEC);
				if (body_fd < 0)
					*error_r = xasprintf("%s/%s: %s", s->data_dir, body,
							     strerror(errno));
				else
					r = 0;
			} else if (rc == SQLITE_DONE) {
				*error_r = xasprintf("no such message: %s %s uid %u", address,
						     mailbox ? mailbox : "INBOX", uid);
			} else {
				*error_r = store_db_error(s->db, "database");
			}
			sqlite3_finalize(st);
		}
	}
	if (tx_end(s, r, error_r) == 0) {
		r = -1;
		if (write_full(fd, prefix, prefix_len) < 0)
			*error_r = xasprintf("writing the message: %s", strerror(errno));
		else
			r = copy_fd(body_fd, fd, error_r);
	} else {
		r = -1;
	}
	if (body_fd >= 0)
		close(body_fd);
	free(prefix);
	return r;
}

int store_queue_list(struct store *s, struct store_queue_row **rows_r,
		     size_t *count_r, char **error_r)
{
	struct store_queue_row *rows = NULL;
	size_t n = 0;
	int r = -1;
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	sqlite3_stmt *st = prepare(s,
		"SELECT q.id, g.queue_id, g.sender, q.recipient, q.created,"
		" q.next_attempt, q.attempts, q.last_error, g.body, g.size"
		" FROM queue q JOIN messages g ON g.id = q.message_id ORDER BY q.id",
		error_r);
	if (st != NULL) {
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			rows = xrealloc(rows, (n + 1) * sizeof(*rows));
			struct store_queue_row *q = &rows[n++];
			q->id = sqlite3_column_int64(st, 0);
			q->queue_id = column_strdup(st, 1);
			q->sender = column_strdup(st, 2);
			q->recipient = column_strdup(st, 3);
			q->created = sqlite3_column_int64(st, 4);
			q->next_attempt = sqlite3_column_int64(st, 5);
			q->attempts = (uint32_t)sqlite3_column_int64(st, 6);
			q->last_error = sqlite3_column_type(st, 7) == SQLITE_NULL ? NULL :
					column_strdup(st, 7);
			q->body = column_strdup(st, 8);
			q->size = (uint64_t)sqlite3_column_int64(st, 9);
		}
		if (rc == SQLITE_DONE)
			r = 0;
		else
			*error_r = store_db_error(s->db, "database");
		sqlite3_finalize(st);
	}
	if (tx_end(s, r, error_r) < 0) {
		store_queue_rows_free(&rows, n);
		return -1;
	}
	*rows_r = rows;
	*count_r = n;
	return 0;
}

/* The rows of one message (by its queue id), or of one of its recipients
 * when rcpt is set: "WHERE" text for the queue table. */
#define QUEUE_MATCH " message_id = (SELECT id FROM messages WHERE queue_id = ?1)" \
		    " AND (?2 IS NULL OR recipient = ?2 COLLATE NOCASE)"

static int queue_change(struct store *s, const char *sql, const char *queue_id,
			const char *rcpt, bool gc, int *count_r, char **error_r)
{
	if (tx_begin(s, true, error_r) < 0)
		return -1;
	int r = -1;
	sqlite3_stmt *st = prepare(s, sql, error_r);
	if (st != NULL) {
		if (queue_id != NULL)
			sqlite3_bind_text(st, 1, queue_id, -1, SQLITE_STATIC);
		if (rcpt != NULL)
			sqlite3_bind_text(st, 2, rcpt, -1, SQLITE_STATIC);
		r = step_done(s, st, error_r);
	}
	*count_r = sqlite3_changes(s->db);
	if (tx_end(s, r, error_r) < 0)
		return -1;
	if (gc)
		gc_after(s);
	return 0;
}

int store_queue_flush(struct store *s, int *count_r, char **error_r)
{
	return queue_change(s, "UPDATE queue SET next_attempt = 0", NULL, NULL, false,
			    count_r, error_r);
}

int store_queue_delete(struct store *s, const char *queue_id, const char *rcpt,
		       int *count_r, char **error_r)
{
	return queue_change(s, "DELETE FROM queue WHERE" QUEUE_MATCH, queue_id, rcpt, true,
			    count_r, error_r);
}

int store_queue_bounce(struct store *s, const char *queue_id, const char *rcpt,
		       int *count_r, char **error_r)
{
	return queue_change(s, "UPDATE queue SET next_attempt = 0, bounce_reason ="
			    " 'Returned by the postmaster of this server' WHERE" QUEUE_MATCH,
			    queue_id, rcpt, false, count_r, error_r);
}

void store_queue_rows_free(struct store_queue_row **rowsp, size_t count)
{
	struct store_queue_row *rows = *rowsp;
	if (rows == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free(rows[i].queue_id);
		free(rows[i].sender);
		free(rows[i].recipient);
		free(rows[i].last_error);
		free(rows[i].body);
	}
	free(rows);
	*rowsp = NULL;
}

/* ---- send-as addresses ---- */

static int sendas_change(struct store *s, const char *account, const char *address,
			 bool add, char **error_r)
{
	char *local, *domain;
	int64_t acc;
	if (parse_address(address, true, &local, &domain, error_r) < 0)
		return -1;
	char *lower = xasprintf("%s@%s", local, domain);
	str_lower(lower);
	free(local);
	free(domain);
	if (tx_begin(s, true, error_r) < 0) {
		free(lower);
		return -1;
	}
	int r = need_account(s, account, &acc, error_r);
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, add ?
			"INSERT OR IGNORE INTO sendas (account_id, address) VALUES (?, ?)" :
			"DELETE FROM sendas WHERE account_id = ? AND address = ?", error_r);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, acc);
			sqlite3_bind_text(st, 2, lower, -1, SQLITE_STATIC);
			r = step_done(s, st, error_r);
		}
		if (r == 0 && sqlite3_changes(s->db) == 0) {
			*error_r = add ? xasprintf("%s may already send as %s", account, lower) :
					 xasprintf("%s has no send-as address %s", account, lower);
			r = -1;
		}
	}
	free(lower);
	return tx_end(s, r, error_r);
}

int store_sendas_add(struct store *s, const char *account, const char *address,
		     char **error_r)
{
	return sendas_change(s, account, address, true, error_r);
}

int store_sendas_del(struct store *s, const char *account, const char *address,
		     char **error_r)
{
	return sendas_change(s, account, address, false, error_r);
}

int store_sendas_list(struct store *s, const char *account, char ***addresses_r,
		      char **error_r)
{
	int64_t acc;
	if (tx_begin(s, false, error_r) < 0)
		return -1;
	int r = need_account(s, account, &acc, error_r);
	char **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	if (r == 0) {
		sqlite3_stmt *st = prepare(s, "SELECT address FROM sendas WHERE account_id = ?"
					   " ORDER BY address", error_r);
		r = -1;
		if (st != NULL) {
			int rc;
			sqlite3_bind_int64(st, 1, acc);
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				v = xrealloc(v, (n + 2) * sizeof(*v));
				v[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
				v[n] = NULL;
			}
			r = rc == SQLITE_DONE ? 0 : -1;
			if (r < 0)
				*error_r = store_db_error(s->db, "database");
			sqlite3_finalize(st);
		}
	}
	r = tx_end(s, r, error_r);
	if (r < 0)
		store_strv_free(&v);
	else
		*addresses_r = v;
	return r;
}
