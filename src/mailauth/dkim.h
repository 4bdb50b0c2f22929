/* DKIM (RFC 6376): verifying every signature of a received message, and
 * signing outgoing mail. Algorithms: rsa-sha256 (RFC 6376 3.3, keys of 1024
 * bits and more, RFC 8301) and ed25519-sha256 (RFC 8463).
 *
 * The verifier does no I/O (see ma_dns.h): the message is fed as it arrives,
 * body hashes are computed as it goes, and dkim_verify_step() asks for one
 * key record (TXT <s>._domainkey.<d>) at a time.
 *
 * Limits: at most DKIM_MAX_SIGS signatures are evaluated per message (the
 * first ones from the top; the others are ignored and given no result); the
 * header block is kept up to DKIM_MAX_HEADER bytes and DKIM_MAX_FIELDS
 * fields: past either, no signature is evaluated (dkim=none).
 *
 * Choices where RFC 6376 leaves room (docs/design.md, "DKIM"):
 *   - l= shorter than the body: the signature is checked as usual, and a
 *     good one is reported as DKIM_POLICY ("unsigned data after l="), never
 *     as pass, so appended content cannot ride on it (RFC 6376 8.2).
 *   - RSA keys under 1024 bits: DKIM_POLICY without any cryptography
 *     (RFC 8301 3.2: not valid); rsa-sha1: DKIM_PERMERROR (RFC 8301 3.1).
 *   - key revoked (empty p=), key missing, bad syntax: DKIM_PERMERROR; DNS
 *     failure: DKIM_TEMPERROR; bad signature or body hash: DKIM_FAIL.
 *   - x= in the past: DKIM_PERMERROR ("signature expired").
 */
#ifndef YUBIN_MAILAUTH_DKIM_H
#define YUBIN_MAILAUTH_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailauth/ma_dns.h"

#define DKIM_MAX_SIGS 8
#define DKIM_MAX_HEADER (256 * 1024)
#define DKIM_MAX_FIELDS 1000

/* RFC 8601 2.7.1 */
enum dkim_result {
	DKIM_NONE,
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_POLICY,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
};

/* "none", "pass", "fail", "neutral", "policy", "temperror", "permerror" */
const char *dkim_result_name(enum dkim_result result);

/* ---- verifying ---- */

struct dkim_verify;

struct dkim_verify *dkim_verify_new(void);
/* The clock for t=/x= checks (seconds since the epoch); default: time(). */
void dkim_verify_set_now(struct dkim_verify *v, int64_t now);
/* The message as received: header and body, CRLF line ends, after
 * dot-unstuffing, in chunks of any size. */
void dkim_verify_feed(struct dkim_verify *v, const char *data, size_t len);
/* The end of the message: finishes the body hashes. */
void dkim_verify_end(struct dkim_verify *v);
/* After dkim_verify_end(). First call: answer NULL. Returns MA_STEP_QUERY
 * with *q_r filled (a TXT question) until every signature has a result,
 * then MA_STEP_DONE. */
enum ma_step dkim_verify_step(struct dkim_verify *v, const struct ma_answer *answer,
			      struct ma_query *q_r);

struct dkim_sig_result {
	enum dkim_result result;
	const char *domain;	/* d= (as written), NULL if absent */
	const char *selector;	/* s=, NULL if absent */
	const char *algorithm;	/* a= ("rsa-sha256", "ed25519-sha256"), NULL if absent */
	const char *b_prefix;	/* the first 12 characters of b= (header.b, RFC 6008), or NULL */
	const char *auid;	/* i= (decoded), or "@" d= when absent */
	const char *reason;	/* why it is not a pass, for logs / AR comments; NULL for pass */
	bool testing;		/* key t=y */
};

/* The results, one per DKIM-Signature evaluated (at most DKIM_MAX_SIGS), in
 * the order of the header fields (top first). Valid until dkim_verify_free().
 * Meaningful once dkim_verify_step() returned MA_STEP_DONE. */
size_t dkim_verify_results(const struct dkim_verify *v, const struct dkim_sig_result **r);
void dkim_verify_free(struct dkim_verify **v);

/* ---- signing ---- */

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

/* A loaded private key with the domain and selector it signs for. */
struct dkim_key;

/* Loads a PEM private key (RSA of 1024 bits or more, or Ed25519). Key files
 * live at <data_dir>/dkim/<domain>/<selector>.pem (docs/config.md); this
 * takes the domain and selector from such a path. Returns NULL with
 * *error_r (malloc'd) set on failure. */
struct dkim_key *dkim_key_load(const char *path, char **error_r);
/* The same from PEM text, with the domain and selector given. */
struct dkim_key *dkim_key_from_pem(const char *pem, size_t len, const char *domain,
				   const char *selector, char **error_r);
/* All the keys of domain under <data_dir>/dkim/<domain>/: the newest key
 * file of each algorithm (so a domain may sign with both RSA and Ed25519,
 * as RFC 8463 suggests). Returns how many were stored in keys_r[] (at most
 * max); 0 when the domain has none. Files that do not load are logged and
 * skipped. */
size_t dkim_keys_for_domain(const char *data_dir, const char *domain,
			    struct dkim_key **keys_r, size_t max);
enum dkim_alg dkim_key_alg(const struct dkim_key *key);
const char *dkim_key_domain(const struct dkim_key *key);
const char *dkim_key_selector(const struct dkim_key *key);
void dkim_key_free(struct dkim_key **key);

/* Signs msg (CRLF line ends, header and body) with relaxed/relaxed
 * canonicalisation and the header list of docs/design.md (From and the
 * other important fields signed once more than they occur, so that one
 * added later breaks the signature). t= is now (0: time()). Returns a
 * malloc'd "DKIM-Signature: ...\r\n" (folded) to prepend, or NULL when the
 * message cannot be signed (no From field, a header too large). */
char *dkim_sign(const struct dkim_key *key, const char *msg, size_t len, int64_t now);

/* The same in steps, for a message read from a file, with several keys
 * (one body hash, relaxed): the body bytes (after the empty line) in
 * chunks, then the header block (the fields; the empty line may follow).
 * Returns the DKIM-Signature fields of every key, in the order of keys,
 * malloc'd, or NULL (no From field, header too large, no key); frees the
 * signer. */
struct dkim_signer;
struct dkim_signer *dkim_signer_new(void);
void dkim_signer_body(struct dkim_signer *s, const char *data, size_t len);
char *dkim_signer_finish(struct dkim_signer **s, struct dkim_key *const *keys, size_t nkeys,
			 const char *header, size_t hlen, int64_t now);

/* Makes a new key: RSA (bits: 2048 when 0) or Ed25519. Writes it as a
 * PKCS#8 PEM file at path (mode 0600, not replacing an existing file) and
 * returns the malloc'd TXT record value to publish at
 * <selector>._domainkey.<domain> ("v=DKIM1; k=...; p=..."), or NULL with
 * *error_r set. */
char *dkim_keygen(const char *path, enum dkim_alg alg, unsigned bits, char **error_r);

#endif
