/* The configuration file: an INI file read with libinih.
 *
 * Directives are declared in one table (config.c) of {section, key, type,
 * offset, default}. An unknown section or key, a bad value or a missing
 * required value is an error naming FILE:LINE and the key. Relative paths
 * are taken relative to the folder holding the config file. */
#ifndef YUBIN_CONFIG_H
#define YUBIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define CONFIG_FILE_MAX (1024 * 1024)	/* bytes of the whole file */
#define CONFIG_LISTEN_MAX 64		/* listen lines per listener section */

enum listener_kind {
	LISTENER_SMTP,		/* [smtp]: port 25, mail for our domains */
	LISTENER_SUBMISSION,	/* [submission]: 587, STARTTLS, AUTH */
	LISTENER_SUBMISSIONS,	/* [submissions]: 465, implicit TLS */
	LISTENER_IMAP,		/* [imap]: 143, STARTTLS */
	LISTENER_IMAPS,		/* [imaps]: 993, implicit TLS */
	LISTENER_POP3,		/* [pop3]: 110, STLS */
	LISTENER_POP3S,		/* [pop3s]: 995, implicit TLS */
	LISTENER__COUNT
};

/* What to do with a bare LF or bare CR inside DATA. */
enum bare_lf_policy {
	BARE_LF_REJECT,		/* refuse the message (550 5.6.11) */
	BARE_LF_NORMALIZE,	/* turn it into CRLF */
};

/* RFC 7888: which non-synchronizing literals IMAP advertises. */
enum imap_literals {
	IMAP_LITERALS_PLUS,	/* LITERAL+: of any size */
	IMAP_LITERALS_MINUS,	/* LITERAL-: up to 4096 octets */
};

enum plaintext_auth {
	PLAINTEXT_AUTH_TLS,
	PLAINTEXT_AUTH_LOOPBACK,
	PLAINTEXT_AUTH_ALWAYS,
};

/* STARTTLS to other servers: when offered (RFC 7435 opportunistic), always
 * (no TLS: the attempt fails and is retried), or always with a certificate
 * that verifies for the host name. */
enum relay_tls {
	RELAY_TLS_OPPORTUNISTIC,
	RELAY_TLS_REQUIRED,
	RELAY_TLS_VERIFY,
};

struct config_listen {
	char *host;	/* numeric address or name, without brackets; "*" means
			 * every address, IPv6 and IPv4 */
	char *port;	/* decimal, 1-65535 */
	char *file;	/* where it was written, for error messages */
	int line;
};

/* [server] tls_sni = NAME CERT KEY: the certificate for clients that ask
 * for NAME (or, for "*.example.com", any one label under it). */
struct config_sni {
	char *name;		/* lower case */
	char *cert;		/* absolute paths */
	char *key;
};

struct config_listener {
	bool present;		/* the section appears in the file */
	const char *section;	/* "smtp", "submission", ... */
	size_t listen_count;
	struct config_listen *listen;
	enum bare_lf_policy bare_lf;	/* SMTP kinds only */
};

struct config {
	char *path;		/* the file read */

	/* [server] */
	char *hostname;		/* default: gethostname() */
	char *data_dir;		/* absolute */
	char *user;		/* drop to this user when started as root; NULL: none */
	char *tls_cert;		/* absolute path, NULL if unset */
	char *tls_key;
	bool tls_selfsigned;	/* make cert and key on first start if both are missing */
	struct config_sni *sni;
	size_t sni_count;
	unsigned io_threads;	/* 0: one per core */
	char *log_level;
	enum plaintext_auth plaintext_auth;
	char *recipient_delimiter;	/* "+" by default; "" disables */

	struct config_listener listeners[LISTENER__COUNT];

	/* [limits] */
	uint64_t max_message_size;	/* bytes, SIZE */
	uint32_t max_line_length;	/* bytes of a command line incl. CRLF */
	uint32_t max_recipients;	/* RCPT per transaction */
	uint32_t max_errors;		/* protocol errors before disconnect */
	uint32_t max_connections;	/* concurrent, all listeners */
	uint32_t max_connections_per_ip;
	uint32_t smtp_timeout;		/* seconds idle between commands */
	uint32_t smtp_data_timeout;	/* seconds for a whole DATA/BDAT transfer */
	uint32_t max_received_headers;	/* mail loop detection */
	enum imap_literals imap_literals;	/* LITERAL+ or LITERAL- */
	uint32_t auth_fail_delay;	/* ms before answering the first failure */
	uint32_t auth_fail_delay_max;	/* ms; the delay doubles up to this */
	uint32_t auth_lock_failures;	/* failures (per IP or account) that lock; 0: never */
	uint32_t auth_lock_time;	/* seconds a lock lasts */
	uint32_t auth_cache_time;	/* seconds a verified password is remembered */
	uint32_t submission_messages_per_hour;	/* per account; 0: no limit */
	uint32_t submission_max_recipients;	/* per message on submission */
	uint32_t pop3_timeout;		/* seconds idle before a POP3 autologout */
	uint32_t max_sessions_per_user;	/* logged-in IMAP+POP3 sessions per account; 0: no limit */
	uint32_t login_timeout;		/* seconds an IMAP/POP3 connection may stay logged out */
	uint32_t command_timeout;	/* seconds for one whole IMAP/POP3 command once logged in */

	/* [queue] */
	uint32_t queue_retry_min;	/* seconds before the first retry */
	uint32_t queue_retry_max;	/* the delay doubles up to this */
	uint32_t queue_max_age;		/* then the message is bounced */
	uint32_t queue_delay_notice;	/* tell the sender after this long; 0: never */
	uint32_t queue_max_destinations;	/* domains sent to at once */
	uint32_t queue_connect_timeout;

	/* [relay] */
	char *smarthost;		/* NULL: deliver by MX */
	char *smarthost_user;		/* AUTH PLAIN when set */
	char *smarthost_password;
	enum relay_tls smarthost_tls;
	enum relay_tls relay_tls;	/* to MX hosts */

	/* [dns] */
	char *dns_servers;	/* "ADDR:PORT,[ADDR6]:PORT" for c-ares; NULL: resolv.conf */
	uint32_t dns_timeout;	/* seconds, the first try per server */
	uint32_t dns_attempts;	/* rounds over the servers */

	/* [mailauth]: port 25 only */
	bool mailauth_spf, mailauth_dkim, mailauth_dmarc;
	bool dmarc_reject;	/* no: what DMARC rejects goes to Junk */
	char *authserv_id;	/* NULL: the hostname */
	uint32_t mailauth_timeout;	/* seconds for one message's DNS work */
};

/* Reads and checks the file. Returns 0 and a new config, or -1 with
 * *error_r set to one line ("FILE:LINE: [section] key: problem"), to be
 * freed. The file may hold at most CONFIG_FILE_MAX bytes. */
int config_load(const char *path, struct config **config_r, char **error_r);
/* The same for text[0..len) already in memory (tests, fuzzing): name stands
 * for the file in messages and its folder anchors relative paths. */
int config_load_string(const char *text, size_t len, const char *name,
		       struct config **config_r, char **error_r);
void config_free(struct config **config);

/* The section name of a listener kind ("smtp", ...). */
const char *config_listener_name(enum listener_kind kind);

#endif
