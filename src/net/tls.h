/* The server's TLS context (OpenSSL 3): TLS 1.2 and newer, the certificate
 * and key from the config, replaced as a whole on reload so sessions that
 * already started keep the context they began with. */
#ifndef YUBIN_NET_TLS_H
#define YUBIN_NET_TLS_H

#include <stdbool.h>

typedef struct ssl_st SSL;

/* Loads cert (PEM chain) and key. Returns 0 or -1 with *error_r. Called
 * again, it replaces the context (SIGHUP). */
int tls_load(const char *cert, const char *key, char **error_r);
bool tls_loaded(void);
/* A new server-side SSL from the current context, or NULL. */
SSL *tls_ssl_new(void);
void tls_unload(void);

/* Writes a new self-signed certificate for hostname (EC P-256, 10 years)
 * and its key (mode 0600) when neither file exists. Returns 1 when it made
 * them, 0 when both exist, -1 with *error_r otherwise. */
int tls_make_selfsigned(const char *hostname, const char *cert, const char *key,
			char **error_r);

#endif
