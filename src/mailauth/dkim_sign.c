/* DKIM signing (RFC 6376 5, RFC 8463) and the key files.
 *
 * Keys: <data_dir>/dkim/<domain>/<selector>.pem, a PKCS#8 PEM private key
 * (RSA or Ed25519), mode 0600. The algorithm is the key's own type. */
#include "mailauth/dkim_private.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DKIM_MAX_KEY_FILE (64 * 1024)
#define DKIM_FOLD 72		/* b= characters per folded line */

struct dkim_key {
	EVP_PKEY *pkey;
	enum dkim_alg alg;
	char *domain;
	char *selector;
};

/* The fields signed (RFC 6376 5.4.1). Those marked "over" are listed once
 * more than they occur, so that a field of that name added later breaks
 * the signature (5.4.2, 8.15): From above all (a second From could be
 * shown to the reader instead of the signed one), and the others a reader
 * sees or that change how the body is shown. The others are signed as
 * many times as they occur, if at all: a relay that adds one of them does
 * not break the signature. */
static const struct {
	const char *name;
	bool over;
} sign_fields[] = {
	{ "from", true },
	{ "reply-to", true },
	{ "subject", true },
	{ "date", true },
	{ "to", true },
	{ "cc", true },
	{ "mime-version", true },
	{ "content-type", true },
	{ "content-transfer-encoding", true },
	{ "message-id", false },
	{ "in-reply-to", false },
	{ "references", false },
	{ "sender", false },
	{ "list-id", true },
	{ "list-help", false },
	{ "list-unsubscribe", true },
	{ "list-unsubscribe-post", true },
	{ "list-subscribe", false },
	{ "list-post", false },
	{ "list-owner", false },
	{ "list-archive", false },
};

static char *ossl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	if (e == 0)
		return xstrdup(what);
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return xasprintf("%s: %s", what, msg);
}

static struct dkim_key *key_from_pkey(EVP_PKEY *pkey, const char *domain,
				      const char *selector, char **error_r)
{
	enum dkim_alg alg;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		/* RFC 8301 3.2: signers MUST use at least 1024 bits */
		if (EVP_PKEY_get_bits(pkey) < 1024) {
			*error_r = xstrdup("RSA key under 1024 bits (RFC 8301 3.2)");
			EVP_PKEY_free(pkey);
			return NULL;
		}
		alg = DKIM_ALG_RSA_SHA256;
		break;
	case EVP_PKEY_ED25519:
		alg = DKIM_ALG_ED25519_SHA256;
		break;
	default:
		*error_r = xstrdup("not an RSA nor an Ed25519 key");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	struct dkim_key *k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	k->alg = alg;
	k->domain = xstrdup(domain);
	str_lower(k->domain);
	k->selector = xstrdup(selector);
	str_lower(k->selector);
	return k;
}

struct dkim_key *dkim_key_from_pem(const char *pem, size_t len, const char *domain,
				   const char *selector, char **error_r)
{
	if (len > DKIM_MAX_KEY_FILE) {
		*error_r = xstrdup("key file too large");
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		log_fatal("dkim: out of memory");
	EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = ossl_error("not a PEM private key");
		return NULL;
	}
	return key_from_pkey(pkey, domain, selector, error_r);
}

static char *read_small_file(const char *path, size_t *len_r, char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	char *data = xmalloc(DKIM_MAX_KEY_FILE + 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, data + len, DKIM_MAX_KEY_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > DKIM_MAX_KEY_FILE) {
			*error_r = xasprintf("%s: too large", path);
			goto fail;
		}
	}
	close(fd);
	data[len] = '\0';
	*len_r = len;
	return data;
fail:
	close(fd);
	mem_wipe(data, DKIM_MAX_KEY_FILE + 1);
	free(data);
	return NULL;
}

struct dkim_key *dkim_key_load(const char *path, char **error_r)
{
	/* .../<domain>/<selector>.pem */
	const char *base = strrchr(path, '/');
	size_t blen = base != NULL ? strlen(base + 1) : 0;
	if (base == NULL || base == path || blen <= 4 || strcmp(base + blen + 1 - 4, ".pem") != 0) {
		*error_r = xasprintf("%s: not a <domain>/<selector>.pem path", path);
		return NULL;
	}
	const char *dir = base;
	while (dir > path && dir[-1] != '/')
		dir--;
	char *domain = xstrndup(dir, (size_t)(base - dir));
	char *selector = xstrndup(base + 1, blen - 4);
	size_t len;
	char *pem = read_small_file(path, &len, error_r);
	struct dkim_key *k = NULL;
	if (pem != NULL) {
		k = dkim_key_from_pem(pem, len, domain, selector, error_r);
		if (k == NULL) {
			char *e = xasprintf("%s: %s", path, *error_r);
			free(*error_r);
			*error_r = e;
		}
		mem_wipe(pem, len);
		free(pem);
	}
	free(domain);
	free(selector);
	return k;
}

size_t dkim_keys_for_domain(const char *data_dir, const char *domain,
			    struct dkim_key **keys_r, size_t max)
{
	char *lower = xstrdup(domain);
	str_lower(lower);
	if (strchr(lower, '/') != NULL || lower[0] == '.' || lower[0] == '\0') {
		free(lower);
		return 0;
	}
	char *dir = xasprintf("%s/dkim/%s", data_dir, lower);
	free(lower);
	DIR *d = opendir(dir);
	if (d == NULL) {
		free(dir);
		return 0;
	}
	/* the newest file of each algorithm */
	char *best[2] = { NULL, NULL };
	int64_t best_mtime[2] = { 0, 0 };
	struct dkim_key *best_key[2] = { NULL, NULL };
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".pem") != 0)
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		char *error = NULL;
		struct dkim_key *k = NULL;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			k = dkim_key_load(path, &error);
		if (k == NULL) {
			if (error != NULL)
				log_warn("dkim: key skipped: %s", error);
			free(error);
			free(path);
			continue;
		}
		int a = k->alg == DKIM_ALG_ED25519_SHA256;
		int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		if (best_key[a] == NULL || mt > best_mtime[a] ||
		    (mt == best_mtime[a] && strcmp(path, best[a]) > 0)) {
			dkim_key_free(&best_key[a]);
			free(best[a]);
			best_key[a] = k;
			best[a] = path;
			best_mtime[a] = mt;
		} else {
			dkim_key_free(&k);
			free(path);
		}
	}
	closedir(d);
	free(dir);
	size_t count = 0;
	/* RSA first: the signature every verifier understands */
	for (int a = 0; a < 2; a++) {
		if (best_key[a] != NULL && count < max)
			keys_r[count++] = best_key[a];
		else
			dkim_key_free(&best_key[a]);
		free(best[a]);
	}
	return count;
}

enum dkim_alg dkim_key_alg(const struct dkim_key *key)
{
	return key->alg;
}

const char *dkim_key_domain(const struct dkim_key *key)
{
	return key->domain;
}

const char *dkim_key_selector(const struct dkim_key *key)
{
	return key->selector;
}

void dkim_key_free(struct dkim_key **keyp)
{
	struct dkim_key *k = *keyp;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->domain);
	free(k->selector);
	free(k);
	*keyp = NULL;
}

/* The signature of the SHA-256 header hash; returns its length or -1. */
static int sign_hash(const struct dkim_key *key, const unsigned char hash[32],
		     unsigned char *sig, size_t max)
{
	size_t len = max;
	int ok = 0;

	if (key->alg == DKIM_ALG_ED25519_SHA256) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) == 1 &&
			EVP_DigestSign(ctx, sig, &len, hash, 32) == 1;
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);
		ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
			EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
			EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
			EVP_PKEY_sign(ctx, sig, &len, hash, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	return (int)len;
}

static char *b64(const unsigned char *p, size_t n)
{
	size_t len = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	char *s = xmalloc(len);
	sodium_bin2base64(s, len, p, n, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Appends s to the field being built, folding before it when the line
 * would pass 78 characters (RFC 5322 2.1.1). */
static void fold_append(struct buf *b, size_t *col, const char *s)
{
	size_t n = strlen(s);

	if (*col + n > 78 && *col > 1) {
		(void)buf_append(b, "\r\n\t", 3);
		*col = 1;
		if (*s == ' ') {
			s++;
			n--;
		}
	}
	(void)buf_append(b, s, n);
	*col += n;
}

/* The header block hdr[0..hlen) (the empty line may follow), the body
 * hash bh: the DKIM-Signature field of key, or NULL. */
static char *sign_field(const struct dkim_key *key, const char *hdr, size_t hlen,
			const unsigned char bh[32], int64_t now)
{
	if (hlen > DKIM_MAX_HEADER)
		return NULL;
	struct dkim_field *fields = xcalloc(DKIM_MAX_FIELDS, sizeof(*fields));
	int nf = dkim_fields_split(hdr, hlen, fields, DKIM_MAX_FIELDS);
	char *result = NULL;
	if (nf < 0)
		goto out;

	/* h=: every listed field present, and the oversigned ones once more */
	struct buf h;
	buf_init(&h, 0);
	bool has_from = false;
	for (size_t i = 0; i < ARRAY_SIZE(sign_fields); i++) {
		size_t nlen = strlen(sign_fields[i].name), count = 0;
		for (int k = 0; k < nf; k++) {
			if (fields[k].name_len == nlen &&
			    str_nieq(fields[k].raw, sign_fields[i].name, nlen))
				count++;
		}
		if (i == 0)
			has_from = count > 0;
		if (sign_fields[i].over)
			count++;
		for (size_t c = 0; c < count; c++) {
			if (h.len > 0)
				(void)buf_append_c(&h, ':');
			(void)buf_append_str(&h, sign_fields[i].name);
		}
	}
	if (!has_from) {
		/* 5.4: "The From header field MUST be signed" */
		buf_deinit(&h);
		goto out;
	}
	char *bh64 = b64(bh, 32);

	/* the field with an empty b= (3.5, 3.7) */
	struct buf f;
	buf_init(&f, 0);
	size_t col = 0;
	char *part = xasprintf("DKIM-Signature: v=1; a=%s; c=relaxed/relaxed;",
			       key->alg == DKIM_ALG_RSA_SHA256 ? "rsa-sha256" : "ed25519-sha256");
	fold_append(&f, &col, part);
	free(part);
	part = xasprintf(" d=%s;", key->domain);
	fold_append(&f, &col, part);
	free(part);
	part = xasprintf(" s=%s;", key->selector);
	fold_append(&f, &col, part);
	free(part);
	part = xasprintf(" t=%lld;", (long long)(now > 0 ? now : (int64_t)time(NULL)));
	fold_append(&f, &col, part);
	free(part);
	/* h= folded at its colons */
	fold_append(&f, &col, " h=");
	size_t hv_start = f.len;
	const char *p = h.data;
	while (*p != '\0') {
		size_t n = strcspn(p, ":");
		char *name = xasprintf("%.*s%s", (int)n, p, p[n] == ':' ? ":" : ";");
		fold_append(&f, &col, name);
		free(name);
		p += n + (p[n] == ':');
	}
	size_t hv_end = f.len - 1;	/* the ";" */
	buf_deinit(&h);
	part = xasprintf(" bh=%s;", bh64);
	fold_append(&f, &col, part);
	free(part);
	free(bh64);
	fold_append(&f, &col, " b=");

	struct buf data;
	buf_init(&data, 0);
	(void)buf_append(&f, "\r\n", 2);
	int ret = dkim_header_data(DKIM_CANON_RELAXED, fields, (size_t)nf, f.data + hv_start,
				   hv_end - hv_start, f.data, f.len, &data);
	f.len -= 2;
	f.data[f.len] = '\0';
	unsigned char hash[32], sig[1024];
	int siglen = -1;
	if (ret == 0) {
		EVP_Digest(data.data, data.len, hash, NULL, EVP_sha256(), NULL);
		siglen = sign_hash(key, hash, sig, sizeof(sig));
	}
	buf_deinit(&data);
	if (siglen < 0) {
		log_error("dkim: signing for %s failed", key->domain);
		buf_deinit(&f);
		goto out;
	}
	char *sig64 = b64(sig, (size_t)siglen);
	for (size_t i = 0, n = strlen(sig64); i < n;) {
		size_t room = col < 78 ? 78 - col : 0;
		if (room < 8) {
			(void)buf_append(&f, "\r\n\t", 3);
			col = 1;
			room = 77;
		}
		size_t take = n - i < room ? n - i : room;
		(void)buf_append(&f, sig64 + i, take);
		col += take;
		i += take;
	}
	free(sig64);
	(void)buf_append(&f, "\r\n", 2);
	result = buf_steal(&f, NULL);
out:
	free(fields);
	return result;
}

struct dkim_signer {
	EVP_MD_CTX *md;
	struct dkim_body body;
};

struct dkim_signer *dkim_signer_new(void)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));
	s->md = EVP_MD_CTX_new();
	if (s->md == NULL || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		log_fatal("dkim: cannot start SHA-256");
	/* relaxed (3.4.4): the body hash of every key we sign with */
	dkim_body_init(&s->body, DKIM_CANON_RELAXED, s->md, false, 0);
	return s;
}

void dkim_signer_body(struct dkim_signer *s, const char *data, size_t len)
{
	dkim_body_feed(&s->body, data, len);
}

char *dkim_signer_finish(struct dkim_signer **sp, struct dkim_key *const *keys, size_t nkeys,
			 const char *header, size_t hlen, int64_t now)
{
	struct dkim_signer *s = *sp;
	unsigned char bh[32];

	*sp = NULL;
	dkim_body_end(&s->body);
	EVP_DigestFinal_ex(s->md, bh, NULL);
	EVP_MD_CTX_free(s->md);
	free(s);
	struct buf out;
	buf_init(&out, 0);
	for (size_t i = 0; i < nkeys; i++) {
		char *f = sign_field(keys[i], header, hlen, bh, now);
		if (f == NULL) {
			buf_deinit(&out);
			return NULL;
		}
		(void)buf_append_str(&out, f);
		free(f);
	}
	if (out.len == 0) {
		buf_deinit(&out);
		return NULL;
	}
	return buf_steal(&out, NULL);
}

char *dkim_sign(const struct dkim_key *key, const char *msg, size_t len, int64_t now)
{
	/* the header block: up to the empty line */
	size_t hlen = 0, body = len;
	for (size_t i = 0; i < len;) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			hlen = i;
			body = i + 2;
			break;
		}
		if (msg[i] == '\n') {
			hlen = i;
			body = i + 1;
			break;
		}
		const char *nl = memchr(msg + i, '\n', len - i);
		i = nl != NULL ? (size_t)(nl - msg) + 1 : len;
		hlen = i;
	}
	struct dkim_signer *s = dkim_signer_new();
	dkim_signer_body(s, msg + body, len - body);
	struct dkim_key *k = (struct dkim_key *)key;
	return dkim_signer_finish(&s, &k, 1, msg, hlen, now);
}

/* ---- key generation ---- */

static char *txt_record(EVP_PKEY *pkey, enum dkim_alg alg)
{
	if (alg == DKIM_ALG_ED25519_SHA256) {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != 32)
			return NULL;
		char *p = b64(raw, n);
		char *txt = xasprintf("v=DKIM1; k=ed25519; p=%s", p);
		free(p);
		return txt;
	}
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pkey, &der);
	if (n <= 0)
		return NULL;
	char *p = b64(der, (size_t)n);
	OPENSSL_free(der);
	char *txt = xasprintf("v=DKIM1; k=rsa; p=%s", p);
	free(p);
	return txt;
}

char *dkim_keygen(const char *path, enum dkim_alg alg, unsigned bits, char **error_r)
{
	EVP_PKEY *pkey = NULL;

	if (alg == DKIM_ALG_RSA_SHA256) {
		if (bits == 0)
			bits = 2048;
		if (bits < 1024 || bits > 8192) {
			*error_r = xstrdup("RSA keys are of 1024 to 8192 bits");
			return NULL;
		}
		pkey = EVP_RSA_gen(bits);
	} else {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	}
	if (pkey == NULL) {
		*error_r = ossl_error("key generation failed");
		return NULL;
	}
	char *txt = txt_record(pkey, alg);
	BIO *bio = BIO_new(BIO_s_mem());
	if (txt == NULL || bio == NULL ||
	    PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		*error_r = ossl_error("cannot encode the key");
		goto fail;
	}
	char *pem;
	long pem_len = BIO_get_mem_data(bio, &pem);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto fail;
	}
	if (write_full(fd, pem, (size_t)pem_len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto fail;
	}
	close(fd);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return txt;
fail:
	free(txt);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return NULL;
}
