/* The server side of SASL (RFC 4422): PLAIN (RFC 4616), LOGIN (the
 * de facto mechanism of draft-murchison-sasl-login) and SCRAM-SHA-256
 * (RFC 7677 over RFC 5802), shared by SMTP, POP3 and IMAP.
 *
 * The protocol decodes each base64 client response and hands the raw bytes
 * to sasl_step(); challenges come back raw for the protocol to encode.
 * PLAIN and LOGIN end with SASL_CHECK_PASSWORD: the protocol verifies the
 * password off the event loop (auth.h). SCRAM needs no password: it asks
 * for the user's stored SCRAM record through lookup and checks the proof
 * itself. No mechanism says whether a user exists. */
#ifndef YUBIN_AUTH_SASL_H
#define YUBIN_AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"

/* Responses larger than this are refused (they never need to be). */
#define SASL_RESPONSE_MAX 8192
#define SCRAM_ITERATIONS 4096

enum sasl_status {
	SASL_CONTINUE,		/* send the challenge, wait for a response */
	SASL_CHECK_PASSWORD,	/* verify sasl_authcid() / sasl_password() */
	SASL_OK,		/* authenticated as sasl_authcid(); send the
				 * final challenge if one is given */
	SASL_FAIL,		/* *error_r says why, for the log only */
};

struct sasl_lookup {
	/* The stored SCRAM-SHA-256 record of authcid (a new string), or -1
	 * when there is none. */
	int (*scram_record)(void *ctx, const char *authcid, char **record_r);
	void *ctx;
};

struct sasl;

/* A new exchange, or NULL for a mechanism we do not offer. The name is
 * compared case-insensitively. */
struct sasl *sasl_new(const char *mech, const struct sasl_lookup *lookup);
void sasl_free(struct sasl **s);

/* One step. in is the decoded response (NULL for "no initial response").
 * The challenge to send (possibly empty) is appended to challenge. */
enum sasl_status sasl_step(struct sasl *s, const unsigned char *in, size_t len,
			   struct buf *challenge, const char **error_r);

const char *sasl_authcid(const struct sasl *s);
/* The password of PLAIN/LOGIN after SASL_CHECK_PASSWORD (wiped by sasl_free). */
const char *sasl_password(const struct sasl *s);

/* Whether the mechanism sends the password itself (PLAIN, LOGIN). */
bool sasl_mech_is_plaintext(const char *mech);
/* The mechanisms to advertise, space-separated. */
const char *sasl_mechanisms(bool plaintext_allowed);

/* The SCRAM-SHA-256 record for a new password:
 * "SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY" (base64 parts). */
char *scram_make_record(const char *password, size_t len);

/* Tests only: use this server nonce part instead of a random one (NULL
 * restores randomness), to reproduce the RFC 7677 example exchange. */
void sasl_test_fixed_nonce(const char *nonce);

/* base64 helpers (RFC 4648, no line breaks). Decoding refuses anything
 * that is not strict base64. Returns 0 or -1. */
void base64_encode(const void *in, size_t len, struct buf *out);
int base64_decode(const char *in, size_t len, struct buf *out);

#endif
