#include "auth/sasl.h"
#include "core/log.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

enum mech { MECH_PLAIN, MECH_LOGIN, MECH_SCRAM };

enum scram_state { SCRAM_FIRST, SCRAM_FINAL, SCRAM_DONE_ACK };

struct sasl {
	enum mech mech;
	struct sasl_lookup lookup;
	int step;
	char *authcid;
	char *password;
	/* SCRAM */
	char *client_first_bare;
	char *server_first;
	char *gs2_header;
	char *nonce;
	unsigned char stored_key[SHA256_DIGEST_LENGTH];
	unsigned char server_key[SHA256_DIGEST_LENGTH];
	bool known;		/* the user has a SCRAM record */
};

static const char *fixed_nonce;

void sasl_test_fixed_nonce(const char *nonce)
{
	fixed_nonce = nonce;
}

static const char *const mech_names[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256" };

struct sasl *sasl_new(const char *mech, const struct sasl_lookup *lookup)
{
	for (size_t i = 0; i < ARRAY_SIZE(mech_names); i++) {
		if (str_ieq(mech, mech_names[i])) {
			struct sasl *s = xcalloc(1, sizeof(*s));
			s->mech = (enum mech)i;
			if (lookup)
				s->lookup = *lookup;
			return s;
		}
	}
	return NULL;
}

static void free_secret(char **p)
{
	if (*p) {
		mem_wipe(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void sasl_free(struct sasl **sp)
{
	struct sasl *s = *sp;
	if (s == NULL)
		return;
	free(s->authcid);
	free_secret(&s->password);
	free(s->client_first_bare);
	free(s->server_first);
	free(s->gs2_header);
	free(s->nonce);
	mem_wipe(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

const char *sasl_authcid(const struct sasl *s)
{
	return s->authcid;
}

const char *sasl_password(const struct sasl *s)
{
	return s->password;
}

bool sasl_mech_is_plaintext(const char *mech)
{
	return str_ieq(mech, "PLAIN") || str_ieq(mech, "LOGIN");
}

const char *sasl_mechanisms(bool plaintext_allowed)
{
	return plaintext_allowed ? "PLAIN LOGIN SCRAM-SHA-256" : "SCRAM-SHA-256";
}

/* ---- base64 ---- */

void base64_encode(const void *in, size_t len, struct buf *out)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *tmp = xmalloc(n);
	sodium_bin2base64(tmp, n, in, len, sodium_base64_VARIANT_ORIGINAL);
	buf_append_str(out, tmp);
	free(tmp);
}

int base64_decode(const char *in, size_t len, struct buf *out)
{
	/* RFC 4648 4: the alphabet and "=" only. libsodium reads the input
	 * through plain (signed) chars and took some 8-bit bytes for digits
	 * ("\xd6" as "/", found by fuzz/fuzz_sasl.c), so the alphabet is
	 * checked here first. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '='))
			return -1;
	}
	size_t max = len / 4 * 3 + 3, bin_len = 0;
	unsigned char *tmp = xmalloc(max);
	const char *end = NULL;
	int r = sodium_base642bin(tmp, max, in, len, NULL, &bin_len, &end,
				  sodium_base64_VARIANT_ORIGINAL);
	if (r == 0 && end == in + len && buf_append(out, tmp, bin_len) == 0) {
		mem_wipe(tmp, max);
		free(tmp);
		return 0;
	}
	mem_wipe(tmp, max);
	free(tmp);
	return -1;
}

/* ---- PLAIN and LOGIN ---- */

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
static enum sasl_status plain_step(struct sasl *s, const unsigned char *in, size_t len,
				   const char **error_r)
{
	if (in == NULL) {
		s->step++;
		return s->step == 1 ? SASL_CONTINUE : SASL_FAIL;
	}
	const char *p = (const char *)in;
	const char *nul1 = memchr(p, '\0', len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p)) : NULL;
	if (nul1 == NULL || nul2 == NULL) {
		*error_r = "malformed PLAIN response";
		return SASL_FAIL;
	}
	size_t zlen = (size_t)(nul1 - p), clen = (size_t)(nul2 - nul1 - 1);
	size_t plen = len - (size_t)(nul2 + 1 - p);
	if (clen == 0 || plen == 0 || memchr(nul2 + 1, '\0', plen) != NULL) {
		*error_r = "malformed PLAIN response";
		return SASL_FAIL;
	}
	/* Acting as someone else (authzid) is not offered. */
	if (zlen > 0 && (zlen != clen || memcmp(p, nul1 + 1, clen) != 0)) {
		*error_r = "authorization identity differs from authentication identity";
		return SASL_FAIL;
	}
	s->authcid = xstrndup(nul1 + 1, clen);
	s->password = xstrndup(nul2 + 1, plen);
	return SASL_CHECK_PASSWORD;
}

static enum sasl_status login_step(struct sasl *s, const unsigned char *in, size_t len,
				   struct buf *challenge, const char **error_r)
{
	switch (s->step++) {
	case 0:
		if (in != NULL) {
			/* An initial response is the user name. */
			s->step++;
			if (len == 0 || memchr(in, '\0', len)) {
				*error_r = "malformed LOGIN user name";
				return SASL_FAIL;
			}
			s->authcid = xstrndup((const char *)in, len);
			buf_append_str(challenge, "Password:");
			return SASL_CONTINUE;
		}
		buf_append_str(challenge, "Username:");
		return SASL_CONTINUE;
	case 1:
		if (in == NULL || len == 0 || memchr(in, '\0', len)) {
			*error_r = "malformed LOGIN user name";
			return SASL_FAIL;
		}
		s->authcid = xstrndup((const char *)in, len);
		buf_append_str(challenge, "Password:");
		return SASL_CONTINUE;
	case 2:
		if (in == NULL || len == 0 || memchr(in, '\0', len)) {
			*error_r = "malformed LOGIN password";
			return SASL_FAIL;
		}
		s->password = xstrndup((const char *)in, len);
		return SASL_CHECK_PASSWORD;
	default:
		*error_r = "LOGIN exchange already over";
		return SASL_FAIL;
	}
}

/* ---- SCRAM-SHA-256 ---- */

static void hmac256(const unsigned char *key, size_t klen, const void *data, size_t dlen,
		    unsigned char out[SHA256_DIGEST_LENGTH])
{
	unsigned int n = SHA256_DIGEST_LENGTH;
	HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &n);
}

static void scram_keys(const char *password, size_t len, const unsigned char *salt,
		       size_t salt_len, unsigned iter,
		       unsigned char stored[SHA256_DIGEST_LENGTH],
		       unsigned char server[SHA256_DIGEST_LENGTH])
{
	unsigned char salted[SHA256_DIGEST_LENGTH], client[SHA256_DIGEST_LENGTH];
	/* RFC 5802 3: SaltedPassword := Hi(Normalize(password), salt, i) */
	PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iter, EVP_sha256(),
			  sizeof(salted), salted);
	hmac256(salted, sizeof(salted), "Client Key", 10, client);
	SHA256(client, sizeof(client), stored);
	hmac256(salted, sizeof(salted), "Server Key", 10, server);
	mem_wipe(salted, sizeof(salted));
	mem_wipe(client, sizeof(client));
}

char *scram_make_record(const char *password, size_t len)
{
	unsigned char salt[16], stored[SHA256_DIGEST_LENGTH], server[SHA256_DIGEST_LENGTH];
	random_bytes(salt, sizeof(salt));
	scram_keys(password, len, salt, sizeof(salt), SCRAM_ITERATIONS, stored, server);
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "SCRAM-SHA-256$%u:", SCRAM_ITERATIONS);
	base64_encode(salt, sizeof(salt), &b);
	buf_append_c(&b, '$');
	base64_encode(stored, sizeof(stored), &b);
	buf_append_c(&b, ':');
	base64_encode(server, sizeof(server), &b);
	return buf_steal(&b, NULL);
}

/* Parses a stored record. Returns 0 or -1. */
static int scram_parse_record(const char *rec, unsigned *iter_r, struct buf *salt,
			      unsigned char stored[SHA256_DIGEST_LENGTH],
			      unsigned char server[SHA256_DIGEST_LENGTH])
{
	const char *prefix = "SCRAM-SHA-256$";
	if (strncmp(rec, prefix, strlen(prefix)) != 0)
		return -1;
	const char *p = rec + strlen(prefix);
	char *colon = strchr(p, ':'), *dollar = colon ? strchr(colon, '$') : NULL;
	char *colon2 = dollar ? strchr(dollar, ':') : NULL;
	if (colon == NULL || dollar == NULL || colon2 == NULL)
		return -1;
	char num[12];
	size_t nlen = (size_t)(colon - p);
	uint64_t iter;
	if (nlen == 0 || nlen >= sizeof(num))
		return -1;
	memcpy(num, p, nlen);
	num[nlen] = '\0';
	if (str_to_u64(num, &iter) < 0 || iter < 1 || iter > 1000000)
		return -1;
	struct buf k1, k2;
	buf_init(&k1, 64);
	buf_init(&k2, 64);
	int r = -1;
	if (base64_decode(colon + 1, (size_t)(dollar - colon - 1), salt) == 0 &&
	    base64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), &k1) == 0 &&
	    base64_decode(colon2 + 1, strlen(colon2 + 1), &k2) == 0 &&
	    k1.len == SHA256_DIGEST_LENGTH && k2.len == SHA256_DIGEST_LENGTH) {
		memcpy(stored, k1.data, SHA256_DIGEST_LENGTH);
		memcpy(server, k2.data, SHA256_DIGEST_LENGTH);
		*iter_r = (unsigned)iter;
		r = 0;
	}
	buf_deinit(&k1);
	buf_deinit(&k2);
	return r;
}

/* RFC 5802 5.1: saslname with "=2C" for "," and "=3D" for "=". */
static char *scram_unescape(const char *p, size_t len)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '=') {
			if (i + 2 < len && p[i + 1] == '2' && p[i + 2] == 'C')
				buf_append_c(&b, ',');
			else if (i + 2 < len && p[i + 1] == '3' && p[i + 2] == 'D')
				buf_append_c(&b, '=');
			else {
				buf_deinit(&b);
				return NULL;
			}
			i += 2;
		} else if (p[i] == ',' || p[i] == '\0') {
			buf_deinit(&b);
			return NULL;
		} else {
			buf_append_c(&b, p[i]);
		}
	}
	if (b.len == 0) {
		buf_deinit(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

static bool printable_nonce(const char *p, size_t len)
{
	/* printable = %x21-2B / %x2D-7E */
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return true;
}

/* A salt for users without a record, stable per name, so a probe cannot
 * tell them apart from real ones. */
static void fake_salt(const char *user, unsigned char salt[16])
{
	static unsigned char secret[32];
	static bool have;
	if (!have) {
		random_bytes(secret, sizeof(secret));
		have = true;
	}
	unsigned char h[SHA256_DIGEST_LENGTH];
	hmac256(secret, sizeof(secret), user, strlen(user), h);
	memcpy(salt, h, 16);
}

static enum sasl_status scram_first(struct sasl *s, const char *p, size_t len,
				    struct buf *challenge, const char **error_r)
{
	/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
	*error_r = "malformed SCRAM client-first-message";
	if (len < 3 || memchr(p, '\0', len))
		return SASL_FAIL;
	if (p[0] == 'p') {
		*error_r = "channel binding not supported";
		return SASL_FAIL;
	}
	if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return SASL_FAIL;
	const char *c2 = memchr(p + 2, ',', len - 2);
	if (c2 == NULL)
		return SASL_FAIL;
	if (c2 != p + 2) {
		/* authzid "a=..." must name the same user: checked below. */
		if (c2 - p < 4 || p[2] != 'a' || p[3] != '=')
			return SASL_FAIL;
	}
	s->gs2_header = xstrndup(p, (size_t)(c2 + 1 - p));
	const char *bare = c2 + 1;
	size_t blen = len - (size_t)(bare - p);
	s->client_first_bare = xstrndup(bare, blen);
	/* client-first-message-bare = [reserved-mext ","] username "," nonce */
	if (blen < 2 || bare[0] != 'n' || bare[1] != '=')
		return SASL_FAIL;
	const char *uend = memchr(bare, ',', blen);
	if (uend == NULL)
		return SASL_FAIL;
	s->authcid = scram_unescape(bare + 2, (size_t)(uend - bare - 2));
	if (s->authcid == NULL)
		return SASL_FAIL;
	const char *r = uend + 1;
	size_t rlen = blen - (size_t)(r - bare);
	const char *rend = memchr(r, ',', rlen);
	if (rend)
		rlen = (size_t)(rend - r);
	if (rlen < 3 || r[0] != 'r' || r[1] != '=' || !printable_nonce(r + 2, rlen - 2))
		return SASL_FAIL;
	if (c2 != p + 2) {
		char *authz = scram_unescape(p + 4, (size_t)(c2 - p - 4));
		bool same = authz && strcmp(authz, s->authcid) == 0;
		free(authz);
		if (!same) {
			*error_r = "authorization identity differs from authentication identity";
			return SASL_FAIL;
		}
	}

	unsigned iter = SCRAM_ITERATIONS;
	struct buf salt;
	buf_init(&salt, 256);
	char *record = NULL;
	if (s->lookup.scram_record &&
	    s->lookup.scram_record(s->lookup.ctx, s->authcid, &record) == 0 &&
	    scram_parse_record(record, &iter, &salt, s->stored_key, s->server_key) == 0) {
		s->known = true;
	} else {
		unsigned char fs[16];
		fake_salt(s->authcid, fs);
		buf_reset(&salt);
		buf_append(&salt, fs, sizeof(fs));
		iter = SCRAM_ITERATIONS;
	}
	free(record);

	unsigned char rnd[18];
	random_bytes(rnd, sizeof(rnd));
	struct buf nonce;
	buf_init(&nonce, 0);
	buf_append(&nonce, r + 2, rlen - 2);
	if (fixed_nonce != NULL)
		buf_append_str(&nonce, fixed_nonce);
	else
		base64_encode(rnd, sizeof(rnd), &nonce);
	s->nonce = buf_steal(&nonce, NULL);

	struct buf sf;
	buf_init(&sf, 0);
	buf_printf(&sf, "r=%s,s=", s->nonce);
	base64_encode(salt.data, salt.len, &sf);
	buf_printf(&sf, ",i=%u", iter);
	buf_deinit(&salt);
	s->server_first = buf_steal(&sf, NULL);
	buf_append_str(challenge, s->server_first);
	return SASL_CONTINUE;
}

static enum sasl_status scram_final(struct sasl *s, const char *p, size_t len,
				    struct buf *challenge, const char **error_r)
{
	*error_r = "malformed SCRAM client-final-message";
	if (memchr(p, '\0', len))
		return SASL_FAIL;
	/* client-final-message-without-proof "," proof, proof = "p=" base64 */
	const char *pp = NULL;
	for (size_t i = len; i-- > 0;) {
		if (p[i] == ',') {
			pp = p + i;
			break;
		}
	}
	if (pp == NULL || (size_t)(p + len - pp) < 4 || pp[1] != 'p' || pp[2] != '=')
		return SASL_FAIL;
	size_t wlen = (size_t)(pp - p);
	/* channel-binding "c=" base64(gs2-header), then "r=" nonce */
	struct buf cb;
	buf_init(&cb, 0);
	base64_encode(s->gs2_header, strlen(s->gs2_header), &cb);
	char *expect = xasprintf("c=%s,r=%s", cb.data, s->nonce);
	buf_deinit(&cb);
	size_t elen = strlen(expect);
	bool match = wlen >= elen && memcmp(p, expect, elen) == 0 &&
		     (wlen == elen || p[elen] == ',');
	free(expect);
	if (!match) {
		*error_r = "SCRAM channel binding or nonce mismatch";
		return SASL_FAIL;
	}
	struct buf proof;
	buf_init(&proof, 256);
	if (base64_decode(pp + 3, (size_t)(p + len - pp - 3), &proof) < 0 ||
	    proof.len != SHA256_DIGEST_LENGTH) {
		buf_deinit(&proof);
		return SASL_FAIL;
	}
	/* AuthMessage := client-first-message-bare + "," +
	 *                server-first-message + "," +
	 *                client-final-message-without-proof */
	struct buf am;
	buf_init(&am, 0);
	buf_printf(&am, "%s,%s,", s->client_first_bare, s->server_first);
	buf_append(&am, p, wlen);
	unsigned char sig[SHA256_DIGEST_LENGTH], key[SHA256_DIGEST_LENGTH], h[SHA256_DIGEST_LENGTH];
	hmac256(s->stored_key, sizeof(s->stored_key), am.data, am.len, sig);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)proof.data[i] ^ sig[i];
	SHA256(key, sizeof(key), h);
	bool ok = s->known && sodium_memcmp(h, s->stored_key, sizeof(h)) == 0;
	buf_deinit(&proof);
	if (!ok) {
		buf_deinit(&am);
		*error_r = "SCRAM proof does not match";
		return SASL_FAIL;
	}
	hmac256(s->server_key, sizeof(s->server_key), am.data, am.len, sig);
	buf_deinit(&am);
	buf_append_str(challenge, "v=");
	base64_encode(sig, sizeof(sig), challenge);
	return SASL_OK;
}

static enum sasl_status scram_step(struct sasl *s, const unsigned char *in, size_t len,
				   struct buf *challenge, const char **error_r)
{
	switch (s->step++) {
	case 0:
		if (in == NULL) {
			/* No initial response: an empty challenge asks for it. */
			s->step = 0;
			if (s->nonce != NULL || challenge == NULL)
				return SASL_FAIL;
			s->nonce = xstrdup("");
			return SASL_CONTINUE;
		}
		free(s->nonce);
		s->nonce = NULL;
		return scram_first(s, (const char *)in, len, challenge, error_r);
	case 1:
		if (in == NULL)
			return SASL_FAIL;
		return scram_final(s, (const char *)in, len, challenge, error_r);
	default:
		*error_r = "SCRAM exchange already over";
		return SASL_FAIL;
	}
}

enum sasl_status sasl_step(struct sasl *s, const unsigned char *in, size_t len,
			   struct buf *challenge, const char **error_r)
{
	*error_r = "authentication failed";
	if (in != NULL && len > SASL_RESPONSE_MAX) {
		*error_r = "response too long";
		return SASL_FAIL;
	}
	switch (s->mech) {
	case MECH_PLAIN:
		return plain_step(s, in, len, error_r);
	case MECH_LOGIN:
		return login_step(s, in, len, challenge, error_r);
	case MECH_SCRAM:
		return scram_step(s, in, len, challenge, error_r);
	}
	return SASL_FAIL;
}
