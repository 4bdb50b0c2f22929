/* Password hashes: Argon2id from libsodium for new passwords, crypt(3) from
 * libxcrypt for hashes brought along from other systems.
 *
 * Hashes are stored as the self-describing strings these libraries produce
 * ("$argon2id$v=19$m=...", "$6$...", "$y$...", "$2b$..."), so verification
 * needs nothing but the string. Import checks each string thoroughly, because
 * a hash that can never match would lock a user out without a word, and one
 * with absurd cost parameters would let a single login tie up the hashing
 * pool for minutes. */
#include "auth/password.h"
#include "core/log.h"
#include "core/util.h"

#include <crypt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Cost of new hashes: libsodium's "interactive" limits, t=2 passes over
 * m=64 MiB with one lane. Measured at about 80 ms per hash on one core of an
 * AMD EPYC server (Debian 12, libsodium 1.0.18); t=3 takes about 100 ms. */
#define PASSWORD_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PASSWORD_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

/* Longest hash string accepted by import (the longest real ones, argon2id
 * with a long salt or yescrypt with extra parameters, are around 130). */
#define PASSWORD_HASH_MAX 256

/* Bounds on the cost of imported hashes, so that one login costs at most
 * about a second of CPU and a bounded amount of memory. Common settings from
 * other systems (argon2-cffi t=3 m=64 MiB p=4, Dovecot, SHA-512 crypt 5000
 * rounds, bcrypt cost 10-12) are well inside. */
#define PASSWORD_ARGON2_MEMORY_MAX_KIB (256u * 1024u)	/* m */
#define PASSWORD_ARGON2_WORK_MAX_KIB (1024u * 1024u)	/* t * m */
#define PASSWORD_ARGON2_LANES_MAX 16u			/* p */
#define PASSWORD_SHA512_ROUNDS_MAX 2000000u		/* ~0.5 s */
#define PASSWORD_BCRYPT_COST_MAX 14u			/* 2^14 rounds, ~1 s */

enum password_scheme {
	PASSWORD_SCHEME_UNKNOWN,
	PASSWORD_SCHEME_ARGON2ID,
	PASSWORD_SCHEME_SHA512_CRYPT,
	PASSWORD_SCHEME_YESCRYPT,
	PASSWORD_SCHEME_BCRYPT,
};

static const struct {
	const char *prefix;
	enum password_scheme scheme;
} schemes[] = {
	{ "$argon2id$", PASSWORD_SCHEME_ARGON2ID },
	{ "$6$", PASSWORD_SCHEME_SHA512_CRYPT },
	{ "$y$", PASSWORD_SCHEME_YESCRYPT },
	/* $2b$ is current bcrypt, $2y$ the same algorithm as named by PHP and
	 * crypt_blowfish. $2a$ is left out: it is ambiguous between the fixed
	 * and the buggy handling of 8-bit passwords. */
	{ "$2b$", PASSWORD_SCHEME_BCRYPT },
	{ "$2y$", PASSWORD_SCHEME_BCRYPT },
};

/* Dovecot's scheme prefixes, stripped on import. {CRYPT} is whatever the
 * system's crypt(3) made, so any crypt scheme may follow it. */
static const struct {
	const char *prefix;
	enum password_scheme scheme;	/* UNKNOWN: any crypt(3) scheme */
} dovecot_prefixes[] = {
	{ "{SHA512-CRYPT}", PASSWORD_SCHEME_SHA512_CRYPT },
	{ "{BLF-CRYPT}", PASSWORD_SCHEME_BCRYPT },
	{ "{ARGON2ID}", PASSWORD_SCHEME_ARGON2ID },
	{ "{CRYPT}", PASSWORD_SCHEME_UNKNOWN },
};

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static bool sodium_ready;

static void sodium_init_once(void)
{
	sodium_ready = sodium_init() >= 0;
}

/* sodium_init() is idempotent and thread-safe on its own; the once-guard
 * only spares the call on every hash. */
static void password_init(void)
{
	pthread_once(&sodium_once, sodium_init_once);
	if (!sodium_ready)
		log_fatal("libsodium initialisation failed");
}

static enum password_scheme scheme_of(const char *hash)
{
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		if (strncmp(hash, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
			return schemes[i].scheme;
	}
	return PASSWORD_SCHEME_UNKNOWN;
}

/* Parses a decimal number of 1-10 digits at *p, no sign, no leading zero
 * unless it is "0". Advances *p. Returns 0 or -1. */
static int parse_u32(const char **p, uint32_t *value_r)
{
	const char *s = *p;
	uint64_t v = 0;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9' && n < 10) {
		v = v * 10 + (uint64_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > UINT32_MAX ||
	    (s[n] >= '0' && s[n] <= '9'))
		return -1;
	*value_r = (uint32_t)v;
	*p = s + n;
	return 0;
}

static bool skip(const char **p, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Shortest salt and tag libsodium's Argon2 accepts, in bytes. */
#define ARGON2_SALT_MIN 8u
#define ARGON2_TAG_MIN 16u

/* Checks that *p starts with canonical unpadded base64 (as Argon2's encoding
 * uses) of at least min bytes, ending at the character end. Advances *p to
 * it. Returns 0 or -1. */
static int check_b64(const char **p, char end, size_t min)
{
	const char *e = strchr(*p, end);
	unsigned char bin[PASSWORD_HASH_MAX];
	size_t n;

	if (e == NULL || (size_t)(e - *p) > PASSWORD_HASH_MAX)
		return -1;
	if (sodium_base642bin(bin, sizeof(bin), *p, (size_t)(e - *p), NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0 || n < min)
		return -1;
	*p = e;
	return 0;
}

/* Checks the cost parameters of a hash against the bounds above.
 * The rest of the structure is checked by the libraries (see
 * check_structure). Returns 0, or -1 with *error_r. */
static int check_cost(enum password_scheme scheme, const char *hash, const char **error_r)
{
	const char *p = hash;
	uint32_t v, m, t, lanes;

	switch (scheme) {
	case PASSWORD_SCHEME_ARGON2ID:
		/* "$argon2id$v=19$m=M,t=T,p=P$" salt "$" tag, both in unpadded
		 * base64; only version 19 (1.3) is in use anywhere. */
		if (!skip(&p, "$argon2id$v=") || parse_u32(&p, &v) < 0 || v != 19 ||
		    !skip(&p, "$m=") || parse_u32(&p, &m) < 0 ||
		    !skip(&p, ",t=") || parse_u32(&p, &t) < 0 ||
		    !skip(&p, ",p=") || parse_u32(&p, &lanes) < 0 || !skip(&p, "$") ||
		    check_b64(&p, '$', ARGON2_SALT_MIN) < 0 || !skip(&p, "$") ||
		    check_b64(&p, '\0', ARGON2_TAG_MIN) < 0) {
			*error_r = "malformed hash";
			return -1;
		}
		/* Argon2 needs t >= 1 and at least 8 KiB of memory per lane. */
		if (t < 1 || lanes < 1 || m < 8u * lanes) {
			*error_r = "malformed hash";
			return -1;
		}
		if (m > PASSWORD_ARGON2_MEMORY_MAX_KIB || lanes > PASSWORD_ARGON2_LANES_MAX ||
		    (uint64_t)t * m > PASSWORD_ARGON2_WORK_MAX_KIB) {
			*error_r = "hash too expensive to verify";
			return -1;
		}
		return 0;
	case PASSWORD_SCHEME_SHA512_CRYPT:
		/* "$6$" ["rounds=N$"] salt "$" hash */
		p += 3;
		if (skip(&p, "rounds=")) {
			if (parse_u32(&p, &v) < 0 || *p != '$') {
				*error_r = "malformed hash";
				return -1;
			}
			if (v > PASSWORD_SHA512_ROUNDS_MAX) {
				*error_r = "hash too expensive to verify";
				return -1;
			}
		}
		return 0;
	case PASSWORD_SCHEME_BCRYPT:
		/* "$2b$" two-digit cost "$" 22 salt 31 hash */
		p += 4;
		if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] != '$') {
			*error_r = "malformed hash";
			return -1;
		}
		if ((unsigned)(p[0] - '0') * 10u + (unsigned)(p[1] - '0') > PASSWORD_BCRYPT_COST_MAX) {
			*error_r = "hash too expensive to verify";
			return -1;
		}
		return 0;
	case PASSWORD_SCHEME_YESCRYPT:
		/* The parameters are packed in a variable-length encoding that
		 * only libxcrypt should be trusted to decode; the defaults
		 * (mkpasswd, passwd on Debian) cost about 16 MiB and 50 ms. */
		return 0;
	case PASSWORD_SCHEME_UNKNOWN:
		break;
	}
	*error_r = "unsupported hash format";
	return -1;
}

static bool is_crypt64(char c)
{
	return c == '.' || c == '/' || (c >= '0' && c <= '9') ||
		(c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A crypt(3) hash is well-formed when crypt() with it as the setting gives a
 * string of the same length that differs only in the checksum: that catches
 * a missing or truncated checksum, a salt longer than the method uses
 * (silently cut by crypt, so the stored hash could never match), and
 * parameters libxcrypt rejects. crypt_checksalt() alone accepts settings
 * without a checksum. Returns 0 or -1 with *error_r. */
static int check_crypt_structure(enum password_scheme scheme, const char *hash,
				 const char **error_r)
{
	int ret = -1;

	if (crypt_checksalt(hash) != CRYPT_SALT_OK) {
		*error_r = "malformed hash";
		return -1;
	}
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out = crypt_rn("", hash, cd, sizeof(*cd));
	size_t len = strlen(hash);
	*error_r = "malformed hash";
	if (out != NULL && strlen(out) == len) {
		/* bcrypt: "$2b$NN$" and 22 salt characters; others: up to
		 * the last "$". */
		size_t setting;
		if (scheme == PASSWORD_SCHEME_BCRYPT) {
			setting = 7 + 22;
		} else {
			const char *last = strrchr(out, '$');
			setting = (size_t)(last - out) + 1;
		}
		if (setting < len && memcmp(out, hash, setting) == 0) {
			ret = 0;
			for (size_t i = setting; i < len; i++) {
				if (!is_crypt64(hash[i]))
					ret = -1;
			}
		}
	}
	mem_wipe(cd, sizeof(*cd));
	free(cd);
	return ret;
}

/* libsodium declares its string parameter char[crypto_pwhash_STRBYTES] but
 * reads it as a C string, and verifies longer ones too (a 64-byte argon2id
 * hash is 128 characters). Copy the hash into a buffer at least that large
 * so the declared size holds. Returns false when the hash cannot fit. */
#define PASSWORD_ARGON2_BUF (PASSWORD_HASH_MAX + 1)
_Static_assert(PASSWORD_ARGON2_BUF >= crypto_pwhash_STRBYTES, "argon2 buffer too small");

static bool argon2_buffer(const char *hash, char buf[PASSWORD_ARGON2_BUF])
{
	size_t len = strlen(hash);
	if (len >= PASSWORD_ARGON2_BUF)
		return false;
	memset(buf, 0, PASSWORD_ARGON2_BUF);
	memcpy(buf, hash, len);
	return true;
}

int password_hash(const char *password, size_t len, char **hash_r)
{
	char out[crypto_pwhash_STRBYTES];

	password_init();
	*hash_r = NULL;
	if (crypto_pwhash_str(out, password, len, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) != 0)
		return -1;
	*hash_r = xstrdup(out);
	return 0;
}

static int verify_crypt(const char *password, size_t len, const char *hash)
{
	/* crypt(3) takes a C string: a NUL inside the password would cut it
	 * short and let a prefix match, so such a password never matches. */
	unsigned char nul = 0;
	for (size_t i = 0; i < len; i++)
		nul |= (unsigned char)(password[i] == '\0');
	if (nul || len >= CRYPT_MAX_PASSPHRASE_SIZE)
		return 0;

	char *phrase = xmalloc(len + 1);
	memcpy(phrase, password, len);
	phrase[len] = '\0';
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out = crypt_rn(phrase, hash, cd, sizeof(*cd));
	int ret = 0;
	size_t hlen = strlen(hash);
	if (out != NULL && strlen(out) == hlen && sodium_memcmp(out, hash, hlen) == 0)
		ret = 1;
	mem_wipe(cd, sizeof(*cd));
	free(cd);
	mem_wipe(phrase, len);
	free(phrase);
	return ret;
}

int password_verify(const char *password, size_t len, const char *hash)
{
	const char *error;
	enum password_scheme scheme = scheme_of(hash);

	password_init();
	/* The cost bounds hold at login too, should the database have been
	 * edited by hand. */
	if (scheme == PASSWORD_SCHEME_UNKNOWN || check_cost(scheme, hash, &error) < 0)
		return 0;
	if (scheme == PASSWORD_SCHEME_ARGON2ID) {
		char buf[PASSWORD_ARGON2_BUF];
		if (!argon2_buffer(hash, buf))
			return 0;
		return crypto_pwhash_str_verify(buf, password, len) == 0 ? 1 : 0;
	}
	return verify_crypt(password, len, hash);
}

int password_import(const char *hash, char **stored_r, const char **error_r)
{
	enum password_scheme want = PASSWORD_SCHEME_UNKNOWN;
	bool any_crypt = false;

	password_init();
	*stored_r = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(dovecot_prefixes); i++) {
		if (str_istarts(hash, dovecot_prefixes[i].prefix)) {
			hash += strlen(dovecot_prefixes[i].prefix);
			want = dovecot_prefixes[i].scheme;
			any_crypt = want == PASSWORD_SCHEME_UNKNOWN;
			break;
		}
	}
	enum password_scheme scheme = scheme_of(hash);
	if (scheme == PASSWORD_SCHEME_UNKNOWN) {
		*error_r = "unsupported hash format";
		return -1;
	}
	if (any_crypt ? scheme == PASSWORD_SCHEME_ARGON2ID :
	    (want != PASSWORD_SCHEME_UNKNOWN && scheme != want)) {
		*error_r = "hash does not match its {SCHEME} prefix";
		return -1;
	}
	size_t len = strlen(hash);
	if (len > PASSWORD_HASH_MAX) {
		*error_r = "hash too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (hash[i] <= ' ' || hash[i] > '~') {
			*error_r = "malformed hash";
			return -1;
		}
	}
	if (check_cost(scheme, hash, error_r) < 0)
		return -1;
	if (scheme == PASSWORD_SCHEME_ARGON2ID) {
		/* check_cost has parsed all of it. Ask libsodium's decoder too,
		 * where it can: its needs_rehash refuses strings of
		 * crypto_pwhash_STRBYTES or more, although verify takes them
		 * (a 64-byte tag makes 128 characters). */
		char buf[PASSWORD_ARGON2_BUF];
		if (len < crypto_pwhash_STRBYTES && (!argon2_buffer(hash, buf) ||
		    crypto_pwhash_str_needs_rehash(buf, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) < 0)) {
			*error_r = "malformed hash";
			return -1;
		}
	} else if (check_crypt_structure(scheme, hash, error_r) < 0) {
		return -1;
	}
	*stored_r = xstrdup(hash);
	return 0;
}
