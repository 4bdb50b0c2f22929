/* The server's TLS context (OpenSSL 3): TLS 1.2 and newer, the certificate
 * and key from the config, replaced as a whole on reload so sessions that
 * already started keep the context they began with. */
#ifndef YUBIN_NET_TLS_H
#define YUBIN_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ssl_st SSL;

/* A certificate for clients that ask for name by SNI ("*.example.com"
 * covers one label under example.com). */
struct tls_sni {
	const char *name;
	const char *cert;
	const char *key;
};

/* Loads cert (PEM chain) and key, the default, and one pair per SNI name.
 * Returns 0 or -1 with *error_r. Called again, it replaces them all at once
 * (SIGHUP). */
int tls_load(const char *cert, const char *key, const struct tls_sni *sni,
	     size_t sni_count, char **error_r);
bool tls_loaded(void);
/* A new server-side SSL from the current context, or NULL. */
SSL *tls_ssl_new(void);
void tls_unload(void);

/* Client side (the SMTP client of the outbound queue). A new SSL for a
 * connection to host (sent as SNI, and the name checked when verify is
 * set: then the handshake fails unless the peer's chain verifies against
 * the system's trust store, /etc/ssl/certs). NULL on failure. */
SSL *tls_client_ssl_new(const char *host, bool verify);

/* Writes a new self-signed certificate for hostname (EC P-256, 10 years)
 * and its key (mode 0600) when neither file exists. Returns 1 when it made
 * them, 0 when both exist, -1 with *error_r otherwise. */
int tls_make_selfsigned(const char *hostname, const char *cert, const char *key,
			char **error_r);

#endif
