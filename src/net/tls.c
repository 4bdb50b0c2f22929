#include "net/tls.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *server_ctx;

/* Mozilla's "intermediate" choice for TLS 1.2: forward secrecy and AEAD
 * only. TLS 1.3 suites are OpenSSL's defaults, all good. */
#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

static char *ssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return xasprintf("%s: %s", what, e ? buf : "unknown TLS error");
}

/* The SNI certificates of one default context, kept in its ex_data so
 * they live exactly as long as it (a handshake may still be using an old
 * default context after a reload). */
struct sni_set {
	size_t count;
	char **names;
	SSL_CTX **ctxs;
};
static int sni_index = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;

static void sni_set_free(void *parent UNUSED, void *ptr, CRYPTO_EX_DATA *ad UNUSED,
			 int idx UNUSED, long argl UNUSED, void *argp UNUSED)
{
	struct sni_set *set = ptr;
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++) {
		free(set->names[i]);
		SSL_CTX_free(set->ctxs[i]);
	}
	free(set->names);
	free(set->ctxs);
	free(set);
}

static void sni_init(void)
{
	sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_set_free);
}

static bool name_matches(const char *pattern, const char *name)
{
	if (strncmp(pattern, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');
		return dot != NULL && dot != name && str_ieq(dot + 1, pattern + 2);
	}
	return str_ieq(pattern, name);
}

static int servername_cb(SSL *ssl, int *alert UNUSED, void *arg UNUSED)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	struct sni_set *set = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sni_index);
	if (name == NULL || set == NULL)
		return SSL_TLSEXT_ERR_OK;
	/* Exact names win over wildcards. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < set->count; i++) {
			bool wild = set->names[i][0] == '*';
			if (wild == (pass == 1) && name_matches(set->names[i], name)) {
				SSL_set_SSL_CTX(ssl, set->ctxs[i]);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_OK;	/* the default certificate */
}

static SSL_CTX *ctx_new(const char *cert, const char *key, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = ssl_error("SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		*error_r = ssl_error(cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		*error_r = ssl_error(key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		char *e = ssl_error("does not match its certificate");
		*error_r = xasprintf("%s %s", key, e);
		free(e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_load(const char *cert, const char *key, const struct tls_sni *sni,
	     size_t sni_count, char **error_r)
{
	pthread_once(&sni_once, sni_init);
	SSL_CTX *ctx = ctx_new(cert, key, error_r);
	if (ctx == NULL)
		return -1;
	if (sni_count > 0) {
		struct sni_set *set = xcalloc(1, sizeof(*set));
		set->names = xcalloc(sni_count, sizeof(*set->names));
		set->ctxs = xcalloc(sni_count, sizeof(*set->ctxs));
		/* Owned by ctx from here: freed with it. */
		SSL_CTX_set_ex_data(ctx, sni_index, set);
		for (size_t i = 0; i < sni_count; i++) {
			SSL_CTX *c = ctx_new(sni[i].cert, sni[i].key, error_r);
			if (c == NULL) {
				SSL_CTX_free(ctx);
				return -1;
			}
			set->names[set->count] = xstrdup(sni[i].name);
			set->ctxs[set->count++] = c;
		}
		SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
	}
	pthread_mutex_lock(&ctx_lock);
	SSL_CTX *old = server_ctx;
	server_ctx = ctx;
	pthread_mutex_unlock(&ctx_lock);
	/* Sessions hold their own reference; the old context goes with the
	 * last of them. */
	SSL_CTX_free(old);
	return 0;
}

bool tls_loaded(void)
{
	pthread_mutex_lock(&ctx_lock);
	bool r = server_ctx != NULL;
	pthread_mutex_unlock(&ctx_lock);
	return r;
}

SSL *tls_ssl_new(void)
{
	pthread_mutex_lock(&ctx_lock);
	SSL *ssl = server_ctx ? SSL_new(server_ctx) : NULL;
	pthread_mutex_unlock(&ctx_lock);
	return ssl;
}

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static SSL_CTX *client_ctx;

static void client_init(void)
{
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (client_ctx == NULL)
		return;
	/* Opportunistic STARTTLS between MTAs (RFC 3207, RFC 7435): the
	 * protocol floor of the server side; peers of TLS 1.0/1.1 are sent
	 * to in clear rather than refused, as most MTAs do. */
	SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(client_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
			    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(client_ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_default_verify_paths(client_ctx) != 1)
		ERR_clear_error();
}

SSL *tls_client_ssl_new(const char *host, bool verify)
{
	pthread_once(&client_once, client_init);
	if (client_ctx == NULL)
		return NULL;
	SSL *ssl = SSL_new(client_ctx);
	if (ssl == NULL)
		return NULL;
	SSL_set_tlsext_host_name(ssl, host);
	if (verify) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (SSL_set1_host(ssl, host) != 1) {
			SSL_free(ssl);
			return NULL;
		}
	} else {
		/* The result is still computed, and logged. */
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
		SSL_set1_host(ssl, host);
	}
	return ssl;
}

void tls_unload(void)
{
	pthread_mutex_lock(&ctx_lock);
	SSL_CTX_free(server_ctx);
	server_ctx = NULL;
	pthread_mutex_unlock(&ctx_lock);
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x509,
		     char **error_r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	FILE *f = fdopen(fd, "w");
	int ok = pkey ? PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) :
			PEM_write_X509(f, x509);
	if (fflush(f) != 0 || fsync(fd) != 0)
		ok = 0;
	fclose(f);
	if (!ok) {
		*error_r = xasprintf("%s: writing failed", path);
		unlink(path);
		return -1;
	}
	return 0;
}

int tls_make_selfsigned(const char *hostname, const char *cert, const char *key,
			char **error_r)
{
	bool have_cert = access(cert, F_OK) == 0, have_key = access(key, F_OK) == 0;
	if (have_cert && have_key)
		return 0;
	if (have_cert || have_key) {
		*error_r = xasprintf("%s exists but %s does not: refusing to make a new pair",
				     have_cert ? cert : key, have_cert ? key : cert);
		return -1;
	}
	/* Make the folder of each file if needed. */
	for (int i = 0; i < 2; i++) {
		char *dir = xstrdup(i ? key : cert), *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
				*error_r = xasprintf("%s: %s", dir, strerror(errno));
				free(dir);
				return -1;
			}
		}
		free(dir);
	}

	int r = -1;
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = NULL;
	X509_EXTENSION *ext = NULL;
	if (pkey == NULL || x == NULL) {
		*error_r = ssl_error("making a key");
		goto out;
	}
	X509_set_version(x, 2);
	unsigned char serial[16];
	random_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				   (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	char *san = xasprintf("DNS:%s", hostname);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	free(san);
	if (ext == NULL || !X509_add_ext(x, ext, -1) || !X509_sign(x, pkey, EVP_sha256())) {
		*error_r = ssl_error("making the certificate");
		goto out;
	}
	if (write_pem(key, 0600, pkey, NULL, error_r) < 0)
		goto out;
	if (write_pem(cert, 0644, NULL, x, error_r) < 0) {
		unlink(key);
		goto out;
	}
	r = 1;
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}
