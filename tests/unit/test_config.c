/* config: defaults, every value type, listeners, and the error messages an
 * operator sees (FILE:LINE: [section] key: problem). Files are real files
 * in a fresh folder under /tmp, so relative paths resolve against it. */
#include "test.h"
#include "config/config.h"
#include "core/util.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];	/* the temporary folder */
static char path[128];	/* dir/yubin.conf */

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* Loads text from a file; returns what config_load() returned. */
static int load(const char *text, struct config **cfg, char **error)
{
	write_file(text);
	*cfg = NULL;
	*error = NULL;
	int r = config_load(path, cfg, error);
	CHECK((r == 0) == (*cfg != NULL));
	CHECK((r == 0) == (*error == NULL));
	return r;
}

static char *error_of(const char *text)
{
	struct config *cfg;
	char *error;
	if (load(text, &cfg, &error) == 0) {
		config_free(&cfg);
		return NULL;
	}
	return error;
}

static void test_defaults(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[server]\nhostname = mx.example.org\n", &cfg, &error), 0);
	if (cfg == NULL)
		return;
	CHECK_STR(cfg->path, path);
	CHECK_STR(cfg->hostname, "mx.example.org");
	CHECK_STR(cfg->data_dir, "/var/lib/yubin");
	CHECK(cfg->user == NULL);
	CHECK(cfg->tls_cert == NULL);
	CHECK(cfg->tls_key == NULL);
	CHECK(!cfg->tls_selfsigned);
	CHECK_INT(cfg->io_threads, 0);
	CHECK_STR(cfg->log_level, "info");
	CHECK_INT(cfg->plaintext_auth, PLAINTEXT_AUTH_LOOPBACK);
	CHECK_STR(cfg->recipient_delimiter, "+");
	CHECK(cfg->max_message_size == 50ull * 1024 * 1024);
	CHECK_INT(cfg->max_line_length, 4096);
	CHECK_INT(cfg->max_recipients, 1000);
	CHECK_INT(cfg->max_errors, 10);
	CHECK_INT(cfg->max_connections, 1000);
	CHECK_INT(cfg->max_connections_per_ip, 20);
	CHECK_INT(cfg->smtp_timeout, 300);
	CHECK_INT(cfg->smtp_data_timeout, 600);
	CHECK_INT(cfg->max_received_headers, 100);
	CHECK_INT(cfg->pop3_timeout, 600);
	CHECK_INT(cfg->max_sessions_per_user, 50);
	CHECK_INT(cfg->login_timeout, 60);
	CHECK_INT(cfg->command_timeout, 1800);
	for (int k = 0; k < LISTENER__COUNT; k++) {
		CHECK(!cfg->listeners[k].present);
		CHECK_INT(cfg->listeners[k].listen_count, 0);
		CHECK_STR(cfg->listeners[k].section, config_listener_name((enum listener_kind)k));
	}
	config_free(&cfg);
	CHECK(cfg == NULL);
	config_free(&cfg);	/* freeing NULL is fine */

	/* An empty file is a valid config; hostname comes from the system. */
	char host[HOST_NAME_MAX + 1] = "";
	gethostname(host, sizeof(host));
	CHECK_INT(load("", &cfg, &error), 0);
	if (cfg != NULL)
		CHECK_STR(cfg->hostname, host);
	config_free(&cfg);
}

static void test_listener_names(void)
{
	static const char *const names[LISTENER__COUNT] = {
		[LISTENER_SMTP] = "smtp", [LISTENER_SUBMISSION] = "submission",
		[LISTENER_SUBMISSIONS] = "submissions", [LISTENER_IMAP] = "imap",
		[LISTENER_IMAPS] = "imaps", [LISTENER_POP3] = "pop3", [LISTENER_POP3S] = "pop3s",
	};
	for (int k = 0; k < LISTENER__COUNT; k++)
		CHECK_STR(config_listener_name((enum listener_kind)k), names[k]);
}

/* The numeric fields by key, for the table below. */
static uint64_t number_of(const struct config *cfg, const char *key)
{
	if (strcmp(key, "io_threads") == 0) return cfg->io_threads;
	if (strcmp(key, "max_message_size") == 0) return cfg->max_message_size;
	if (strcmp(key, "max_line_length") == 0) return cfg->max_line_length;
	if (strcmp(key, "max_recipients") == 0) return cfg->max_recipients;
	if (strcmp(key, "max_errors") == 0) return cfg->max_errors;
	if (strcmp(key, "max_connections") == 0) return cfg->max_connections;
	if (strcmp(key, "max_connections_per_ip") == 0) return cfg->max_connections_per_ip;
	if (strcmp(key, "smtp_timeout") == 0) return cfg->smtp_timeout;
	if (strcmp(key, "smtp_data_timeout") == 0) return cfg->smtp_data_timeout;
	if (strcmp(key, "max_received_headers") == 0) return cfg->max_received_headers;
	if (strcmp(key, "max_sessions_per_user") == 0) return cfg->max_sessions_per_user;
	if (strcmp(key, "login_timeout") == 0) return cfg->login_timeout;
	if (strcmp(key, "command_timeout") == 0) return cfg->command_timeout;
	if (strcmp(key, "tls_selfsigned") == 0) return cfg->tls_selfsigned;
	if (strcmp(key, "plaintext_auth") == 0) return (uint64_t)cfg->plaintext_auth;
	return UINT64_MAX;
}

static void test_numbers(void)
{
	static const struct {
		const char *section, *key, *value;
		uint64_t want;		/* when problem is NULL */
		const char *problem;	/* part of the error, NULL: accepted */
	} cases[] = {
		/* uint */
		{ "server", "io_threads", "8", 8, NULL },
		{ "server", "io_threads", "0", 0, NULL },
		{ "server", "io_threads", "64", 64, NULL },
		{ "server", "io_threads", "65", 0, "must be at most 64" },
		{ "server", "io_threads", "-1", 0, "expected a number" },
		{ "server", "io_threads", "4x", 0, "expected a whole number" },
		{ "limits", "max_errors", "0", 0, "must be at least 1" },
		{ "limits", "max_errors", "4294967295", UINT32_MAX, NULL },
		{ "limits", "max_errors", "4294967296", 0, "must be at most 4294967295" },
		{ "limits", "max_errors", "99999999999999999999999", 0, "number too large" },
		{ "limits", "max_errors", "1 0", 0, "expected a whole number" },
		{ "limits", "max_line_length", "1000", 1000, NULL },
		{ "limits", "max_line_length", "999", 0, "must be at least 1000" },
		{ "limits", "max_recipients", "100", 100, NULL },
		{ "limits", "max_recipients", "99", 0, "must be at least 100" },
		{ "limits", "max_connections", "0", 0, NULL },
		{ "limits", "max_connections_per_ip", "007", 7, NULL },
		{ "limits", "max_received_headers", "30", 30, NULL },
		{ "limits", "max_sessions_per_user", "0", 0, NULL },
		{ "limits", "max_sessions_per_user", "10", 10, NULL },
		{ "limits", "login_timeout", "3s", 3, NULL },
		{ "limits", "login_timeout", "0", 0, "must be at least 1 seconds" },
		{ "limits", "command_timeout", "2m", 120, NULL },
		{ "limits", "command_timeout", "0s", 0, "must be at least 1 seconds" },
		/* size: 1024-based suffixes, either case */
		{ "limits", "max_message_size", "2048", 2048, NULL },
		{ "limits", "max_message_size", "10K", 10240, NULL },
		{ "limits", "max_message_size", "10k", 10240, NULL },
		{ "limits", "max_message_size", "3M", 3ull << 20, NULL },
		{ "limits", "max_message_size", "2g", 2ull << 30, NULL },
		{ "limits", "max_message_size", "1023", 0, "must be at least 1024 bytes" },
		{ "limits", "max_message_size", "1K", 1024, NULL },
		{ "limits", "max_message_size", "10T", 0, "unknown suffix \"T\"" },
		{ "limits", "max_message_size", "10MB", 0, "unknown suffix \"MB\"" },
		{ "limits", "max_message_size", "10 M", 0, "unknown suffix" },
		{ "limits", "max_message_size", "M", 0, "expected a number" },
		{ "limits", "max_message_size", "17179869184G", 0, "number too large" },
		{ "limits", "max_message_size", "8589934591G", 8589934591ull << 30, NULL },
		{ "limits", "max_message_size", "8589934592G", 0, "must be at most" },
		/* duration */
		{ "limits", "smtp_timeout", "45", 45, NULL },
		{ "limits", "smtp_timeout", "45s", 45, NULL },
		{ "limits", "smtp_timeout", "5m", 300, NULL },
		{ "limits", "smtp_timeout", "2H", 7200, NULL },
		{ "limits", "smtp_data_timeout", "1d", 86400, NULL },
		{ "limits", "smtp_timeout", "0", 0, "must be at least 1 seconds" },
		{ "limits", "smtp_timeout", "1w", 0, "unknown suffix" },
		{ "limits", "smtp_timeout", "49711d", 0, "must be at most 4294967295" },
		{ "limits", "smtp_timeout", "49710d", 49710ull * 86400, NULL },
		{ "limits", "smtp_timeout", "213503982334602d", 0, "number too large" },
		/* bool */
		{ "server", "tls_selfsigned", "yes", 1, NULL },
		{ "server", "tls_selfsigned", "TRUE", 1, NULL },
		{ "server", "tls_selfsigned", "on", 1, NULL },
		{ "server", "tls_selfsigned", "1", 1, NULL },
		{ "server", "tls_selfsigned", "no", 0, NULL },
		{ "server", "tls_selfsigned", "False", 0, NULL },
		{ "server", "tls_selfsigned", "off", 0, NULL },
		{ "server", "tls_selfsigned", "0", 0, NULL },
		{ "server", "tls_selfsigned", "2", 0, "expected yes or no" },
		{ "server", "tls_selfsigned", "yess", 0, "expected yes or no" },
		/* enum */
		{ "server", "plaintext_auth", "tls", PLAINTEXT_AUTH_TLS, NULL },
		{ "server", "plaintext_auth", "loopback", PLAINTEXT_AUTH_LOOPBACK, NULL },
		{ "server", "plaintext_auth", "ALWAYS", PLAINTEXT_AUTH_ALWAYS, NULL },
		{ "server", "plaintext_auth", "never", 0,
		  "\"never\": expected one of tls, loopback or always" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text = xasprintf("[%s]\n%s = %s\n", cases[i].section, cases[i].key,
				       cases[i].value);
		struct config *cfg;
		char *error;
		int r = load(text, &cfg, &error);
		if (cases[i].problem == NULL) {
			CHECK_INT(r, 0);
			if (r != 0)
				fprintf(stderr, "  case %zu: %s\n", i, error);
			else if (number_of(cfg, cases[i].key) != cases[i].want) {
				CHECK(number_of(cfg, cases[i].key) == cases[i].want);
				fprintf(stderr, "  case %zu: %s = %s\n", i, cases[i].key,
					cases[i].value);
			}
		} else {
			CHECK_INT(r, -1);
			char *want = xasprintf("%s:2: [%s] %s: ", path, cases[i].section,
					       cases[i].key);
			CHECK(error != NULL && strncmp(error, want, strlen(want)) == 0 &&
			      strstr(error, cases[i].problem) != NULL);
			if (error == NULL || strstr(error, cases[i].problem) == NULL)
				fprintf(stderr, "  case %zu: got \"%s\", want \"%s\"\n", i,
					error ? error : "(none)", cases[i].problem);
			free(want);
		}
		config_free(&cfg);
		free(error);
		free(text);
	}
}

static void test_strings(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[server]\n"
		       "hostname = Mail-1.Example.COM\n"
		       "user = yubin\n"
		       "log_level = DEBUG\n"
		       "recipient_delimiter = +-\n", &cfg, &error), 0);
	if (cfg != NULL) {
		CHECK_STR(cfg->hostname, "Mail-1.Example.COM");
		CHECK_STR(cfg->user, "yubin");
		CHECK_STR(cfg->log_level, "debug");	/* stored in canonical form */
		CHECK_STR(cfg->recipient_delimiter, "+-");
	}
	config_free(&cfg);

	/* An empty delimiter turns the feature off. */
	CHECK_INT(load("[server]\nrecipient_delimiter =\n", &cfg, &error), 0);
	if (cfg != NULL)
		CHECK_STR(cfg->recipient_delimiter, "");
	config_free(&cfg);

	static const struct {
		const char *line;
		const char *problem;
	} bad[] = {
		{ "hostname = mail example.com", "is not a host name" },
		{ "hostname = -mail.example.com", "starts with '-'" },
		{ "hostname = mail..example.com", "empty label" },
		{ "hostname = mail.example.com.", "empty label" },
		{ "hostname = mail_1.example.com", "only letters, digits" },
		{ "hostname = a23456789012345678901234567890123456789012345678901234567890"
		  "1234.com", "longer than 63" },
		{ "hostname =", "empty value" },
		{ "user =", "empty value" },
		{ "data_dir =", "empty value" },
		{ "log_level = verbose", "expected one of debug, info, warn or error" },
		{ "recipient_delimiter = a", "'a' cannot be a delimiter" },
		{ "recipient_delimiter = @", "'@' cannot be a delimiter" },
		{ "recipient_delimiter = +-=_.~!&%", "at most 8 characters" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *text = xasprintf("[server]\n%s\n", bad[i].line);
		char *e = error_of(text);
		CHECK(e != NULL && strstr(e, ":2: [server] ") != NULL &&
		      strstr(e, bad[i].problem) != NULL);
		if (e == NULL || strstr(e, bad[i].problem) == NULL)
			fprintf(stderr, "  bad %zu: got \"%s\"\n", i, e ? e : "(none)");
		free(e);
		free(text);
	}
}

static void test_paths(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[server]\n"
		       "data_dir = ../var\n"
		       "tls_cert = tls/cert.pem\n"
		       "tls_key = /etc/ssl/private/key.pem\n", &cfg, &error), 0);
	if (cfg == NULL)
		return;
	char *want = xasprintf("%s/../var", dir);
	CHECK_STR(cfg->data_dir, want);
	free(want);
	want = xasprintf("%s/tls/cert.pem", dir);
	CHECK_STR(cfg->tls_cert, want);
	free(want);
	CHECK_STR(cfg->tls_key, "/etc/ssl/private/key.pem");
	config_free(&cfg);

	CHECK_INT(load("[server]\ndata_dir = ./var\n", &cfg, &error), 0);
	if (cfg != NULL) {
		want = xasprintf("%s/var", dir);
		CHECK_STR(cfg->data_dir, want);
		free(want);
	}
	config_free(&cfg);

	/* A config named relative to the current folder still gives absolute
	 * paths. */
	write_file("");
	char *old = getcwd(NULL, 0);
	CHECK(chdir(dir) == 0);
	CHECK_INT(config_load("yubin.conf", &cfg, &error), 0);
	if (cfg != NULL) {
		CHECK(cfg->data_dir[0] == '/');
		CHECK_STR(cfg->data_dir, "/var/lib/yubin");
	}
	config_free(&cfg);
	const char text[] = "[server]\ndata_dir = var\n";
	CHECK_INT(config_load_string(text, strlen(text), "./sub/yubin.conf", &cfg, &error), 0);
	if (cfg != NULL) {
		want = xasprintf("%s/sub/var", dir);
		CHECK_STR(cfg->data_dir, want);
		free(want);
	}
	config_free(&cfg);
	CHECK(chdir(old) == 0);
	free(old);

	/* cert and key go together. */
	char *e = error_of("[server]\n\ntls_key = key.pem\n");
	CHECK(e != NULL && strstr(e, ":3: [server] tls_key: set without tls_cert") != NULL);
	free(e);
}

static void test_sni(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[server]\n"
		       "tls_sni = Mail.Example.ORG org/cert.pem /etc/org.key\n"
		       "tls_sni = *.example.net  net.pem\tnet.key\n", &cfg, &error), 0);
	if (cfg == NULL)
		return;
	CHECK_INT(cfg->sni_count, 2);
	CHECK_STR(cfg->sni[0].name, "mail.example.org");
	char *want = xasprintf("%s/org/cert.pem", dir);
	CHECK_STR(cfg->sni[0].cert, want);
	free(want);
	CHECK_STR(cfg->sni[0].key, "/etc/org.key");
	CHECK_STR(cfg->sni[1].name, "*.example.net");
	config_free(&cfg);

	static const char *const bad[] = {
		"[server]\ntls_sni = a.example\n",
		"[server]\ntls_sni = a.example cert.pem\n",
		"[server]\ntls_sni = a.example c k extra\n",
		"[server]\ntls_sni = -bad-.example c k\n",
		"[server]\ntls_sni = *.*.example c k\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = error_of(bad[i]);
		CHECK(error != NULL && strstr(error, "tls_sni") != NULL);
		free(error);
	}
}

static void test_listeners(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[smtp]\n"
		       "listen = 127.0.0.1:25\n"
		       "listen = [::1]:25\n"
		       "listen = mail.example.com:0025\n"
		       "[imaps]\n"
		       "listen = *:993\n"
		       "[submission]\n"
		       "listen = [fe80::1%eth0]:587\n"
		       "[pop3]\n"
		       "listen = [::]:110\n", &cfg, &error), 0);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", error);
		free(error);
		return;
	}
	struct config_listener *l = &cfg->listeners[LISTENER_SMTP];
	CHECK(l->present);
	CHECK_STR(l->section, "smtp");
	CHECK_INT(l->listen_count, 3);
	if (l->listen_count == 3) {
		CHECK_STR(l->listen[0].host, "127.0.0.1");
		CHECK_STR(l->listen[0].port, "25");
		CHECK_STR(l->listen[0].file, path);
		CHECK_INT(l->listen[0].line, 2);
		CHECK_STR(l->listen[1].host, "::1");
		CHECK_STR(l->listen[1].port, "25");
		CHECK_INT(l->listen[1].line, 3);
		CHECK_STR(l->listen[2].host, "mail.example.com");
		CHECK_STR(l->listen[2].port, "25");
	}
	l = &cfg->listeners[LISTENER_IMAPS];
	CHECK(l->present && l->listen_count == 1);
	if (l->listen_count == 1) {
		CHECK_STR(l->listen[0].host, "*");
		CHECK_STR(l->listen[0].port, "993");
		CHECK_INT(l->listen[0].line, 6);
	}
	l = &cfg->listeners[LISTENER_SUBMISSION];
	CHECK(l->present && l->listen_count == 1);
	if (l->listen_count == 1)
		CHECK_STR(l->listen[0].host, "fe80::1%eth0");
	CHECK(cfg->listeners[LISTENER_POP3].present);
	CHECK(!cfg->listeners[LISTENER_IMAP].present);
	CHECK(!cfg->listeners[LISTENER_POP3S].present);
	config_free(&cfg);

	static const struct {
		const char *value;
		const char *problem;
	} bad[] = {
		{ "127.0.0.1", "expected ADDRESS:PORT" },
		{ "::1:25", "in brackets" },
		{ "[::1]25", "expected ADDRESS:PORT" },
		{ "[::1:25", "expected ADDRESS:PORT" },
		{ "[1.2.3.4]:25", "is not an IPv6 address" },
		{ "[::g]:25", "is not an IPv6 address" },
		{ "[]:25", "is not an IPv6 address" },
		{ "[::1%]:25", "is not an IPv6 address" },
		{ ":25", "no address" },
		{ "127.0.0.1:", "port must be a number" },
		{ "127.0.0.1:0", "port must be a number" },
		{ "127.0.0.1:65536", "port must be a number" },
		{ "127.0.0.1:smtp", "port must be a number" },
		{ "127.0.0.1:-25", "port must be a number" },
		{ "a/b:25", "is not an address or host name" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *text = xasprintf("[smtp]\nlisten = %s\n", bad[i].value);
		char *e = error_of(text);
		CHECK(e != NULL && strstr(e, ":2: [smtp] listen: ") != NULL &&
		      strstr(e, bad[i].problem) != NULL);
		if (e == NULL || strstr(e, bad[i].problem) == NULL)
			fprintf(stderr, "  listen %s: got \"%s\"\n", bad[i].value, e ? e : "(none)");
		free(e);
		free(text);
	}

	/* A listener section without listen, reported at the section line. */
	char *e = error_of("[server]\nhostname = a.example\n\n[imap]\n# nothing\n");
	CHECK(e != NULL && strstr(e, ":4: [imap]: no listen line") != NULL);
	free(e);
	e = error_of("[pop3s]\n");
	CHECK(e != NULL && strstr(e, ":1: [pop3s]: no listen line") != NULL);
	free(e);

	/* The same address twice, even across sections. */
	e = error_of("[smtp]\nlisten = 127.0.0.1:25\n[imap]\nlisten = 127.0.0.1:25\n");
	CHECK(e != NULL && strstr(e, ":4: [imap] listen: 127.0.0.1:25 is already used on "
				  "line 2 ([smtp])") != NULL);
	free(e);
	e = error_of("[smtp]\nlisten = [::1]:25\nlisten = [::1]:25\n");
	CHECK(e != NULL && strstr(e, ":3: [smtp] listen: [::1]:25 is already used") != NULL);
	free(e);

	/* At most CONFIG_LISTEN_MAX per section. */
	char *many = xstrdup("[smtp]\n");
	for (int i = 0; i <= CONFIG_LISTEN_MAX; i++) {
		char *n = xasprintf("%slisten = 127.0.0.1:%d\n", many, 1000 + i);
		free(many);
		many = n;
	}
	e = error_of(many);
	CHECK(e != NULL && strstr(e, ":66: [smtp] listen: more than 64 listen lines") != NULL);
	free(e);
	free(many);
}

static void test_bare_lf(void)
{
	struct config *cfg;
	char *error;
	CHECK_INT(load("[smtp]\nlisten = *:25\n"
		       "[submission]\nlisten = *:587\n"
		       "[submissions]\nlisten = *:465\n", &cfg, &error), 0);
	if (cfg != NULL) {
		CHECK_INT(cfg->listeners[LISTENER_SMTP].bare_lf, BARE_LF_REJECT);
		CHECK_INT(cfg->listeners[LISTENER_SUBMISSION].bare_lf, BARE_LF_NORMALIZE);
		CHECK_INT(cfg->listeners[LISTENER_SUBMISSIONS].bare_lf, BARE_LF_NORMALIZE);
	}
	config_free(&cfg);
	CHECK_INT(load("[smtp]\nlisten = *:25\nbare_lf = normalize\n"
		       "[submission]\nlisten = *:587\nbare_lf = reject\n", &cfg, &error), 0);
	if (cfg != NULL) {
		CHECK_INT(cfg->listeners[LISTENER_SMTP].bare_lf, BARE_LF_NORMALIZE);
		CHECK_INT(cfg->listeners[LISTENER_SUBMISSION].bare_lf, BARE_LF_REJECT);
		CHECK_INT(cfg->listeners[LISTENER_SUBMISSIONS].bare_lf, BARE_LF_NORMALIZE);
	}
	config_free(&cfg);

	char *e = error_of("[imap]\nlisten = *:143\nbare_lf = reject\n");
	CHECK(e != NULL && strstr(e, ":3: [imap] bare_lf: not allowed here, only in "
				  "[smtp] [submission] [submissions]") != NULL);
	free(e);
	e = error_of("[smtp]\nlisten = *:25\nbare_lf = accept\n");
	CHECK(e != NULL && strstr(e, ":3: [smtp] bare_lf: \"accept\": expected one of "
				  "reject or normalize") != NULL);
	free(e);
}

/* Errors that are about the file's shape rather than one value. */
static void test_errors(void)
{
	static const struct {
		const char *text;
		const char *want;	/* after "FILE" */
	} cases[] = {
		{ "[server]\nhostnme = a.example\n", ":2: [server] hostnme: unknown key" },
		{ "[limits]\nhostname = a.example\n",
		  ":2: [limits] hostname: not allowed here, only in [server]" },
		{ "[server]\n[smtpd]\nlisten = *:25\n", ":2: unknown section [smtpd]" },
		{ "# empty\n[]\n", ":2: unknown section []" },
		{ "[server\nhostname = a.example\n", ":1: [server: missing ']'" },
		{ "[server] x\n", ":1: [server] x: text after ']'" },
		{ "hostname = a.example\n", ":1: hostname: outside any section" },
		{ "[server]\nhostname\n", ":2: hostname: expected \"key = value\"" },
		{ "[server]\nhostname: a.example\n", ":2: hostname: a.example: expected" },
		{ "[server]\n= x\n", ":2: = x: expected" },
		{ "[server]\nhost name = a\n", ":2: host name = a: expected" },
		{ "[server]\nhostname = a.example\nlog_level = info\nhostname = b.example\n",
		  ":4: [server] hostname: set twice (first on line 2)" },
		{ "[server]\nhostname = a.example\n[server]\nHOSTNAME = b.example\n",
		  ":4: [server] hostname: set twice (first on line 2)" },
		{ "[server]\nhostname = a\x01.example\n", ":2: control character 0x01" },
		{ "[server]\nhostname = a.example\rx\n", ":2: control character 0x0d" },
		/* An indented line is not a continuation (inih's multiline). */
		{ "[server]\nhostname = a.example\n  b.example\n", ":3: b.example: expected" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *e = error_of(cases[i].text);
		char *want = xasprintf("%s%s", path, cases[i].want);
		CHECK(e != NULL && strncmp(e, want, strlen(want)) == 0);
		if (e == NULL || strncmp(e, want, strlen(want)) != 0)
			fprintf(stderr, "  case %zu: got \"%s\", want \"%s...\"\n", i,
				e ? e : "(none)", want);
		CHECK(e == NULL || strchr(e, '\n') == NULL);
		free(want);
		free(e);
	}

	/* A missing file. */
	struct config *cfg = (struct config *)1;
	char *error = NULL;
	CHECK_INT(config_load("/nonexistent/yubin.conf", &cfg, &error), -1);
	CHECK(cfg == NULL);
	CHECK_STR(error, "/nonexistent/yubin.conf: No such file or directory");
	free(error);
	CHECK_INT(config_load(dir, &cfg, &error), -1);
	CHECK(error != NULL && strstr(error, "Is a directory") != NULL);
	free(error);

	/* A NUL byte, and a file too large. */
	CHECK_INT(config_load_string("[server]\nuser = a\0b\n", 19, "mem.conf", &cfg, &error), -1);
	CHECK_STR(error, "mem.conf:2: control character 0x00 in the line");
	free(error);
	char *big = xcalloc(1, CONFIG_FILE_MAX + 2);
	memset(big, '\n', CONFIG_FILE_MAX + 1);
	CHECK_INT(config_load_string(big, CONFIG_FILE_MAX + 1, "big.conf", &cfg, &error), -1);
	CHECK(error != NULL && strstr(error, "big.conf: larger than") != NULL);
	free(error);
	CHECK_INT(config_load_string(big, CONFIG_FILE_MAX, "big.conf", &cfg, &error), 0);
	config_free(&cfg);
	free(big);

	/* inih's line buffer holds 199 characters: a longer line is refused
	 * rather than cut in two. */
	char *line = xasprintf("[server]\nuser = %0*d\n", 191, 0);	/* 198 */
	CHECK_INT(load(line, &cfg, &error), 0);
	if (cfg != NULL)
		CHECK_INT(strlen(cfg->user), 191);
	config_free(&cfg);
	free(line);
	line = xasprintf("[server]\nuser = %0*d\n", 193, 0);	/* 200 */
	char *e = error_of(line);
	CHECK(e != NULL && strstr(e, ":2: line too long") != NULL);
	free(e);
	free(line);
}

/* Comments, blanks, CRLF, BOM and case: what an operator may write. */
static void test_syntax(void)
{
	struct config *cfg;
	char *error;
	const char text[] =
		"\xEF\xBB\xBF; a comment\r\n"
		"# another\r\n"
		"\r\n"
		"  [ Server ]   ; trailing comment\r\n"
		"\tHostName=mx.example.net   # inline\r\n"
		"user = a;b#c\r\n"		/* no blank before ; or #: kept */
		"recipient_delimiter = +# ; plus or hash\r\n"
		"\r\n"
		"[LIMITS]\r\n"
		"max_errors = 3 ; three\r\n"
		"[smtp]\n"
		"listen = 127.0.0.1:2525\t#dev\n"
		"[imap]\n"
		"listen = 127.0.0.1:2143";	/* no final line end */
	CHECK_INT(config_load_string(text, strlen(text), path, &cfg, &error), 0);
	if (cfg == NULL) {
		fprintf(stderr, "  %s\n", error);
		free(error);
		return;
	}
	CHECK_STR(cfg->hostname, "mx.example.net");
	CHECK_STR(cfg->user, "a;b#c");
	CHECK_STR(cfg->recipient_delimiter, "+#");
	CHECK_INT(cfg->max_errors, 3);
	CHECK_INT(cfg->listeners[LISTENER_SMTP].listen_count, 1);
	if (cfg->listeners[LISTENER_SMTP].listen_count == 1) {
		CHECK_STR(cfg->listeners[LISTENER_SMTP].listen[0].port, "2525");
		CHECK_INT(cfg->listeners[LISTENER_SMTP].listen[0].line, 12);
	}
	CHECK_INT(cfg->listeners[LISTENER_IMAP].listen_count, 1);
	config_free(&cfg);
}

int main(void)
{
	strcpy(dir, "/tmp/yubin-test-config-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/yubin.conf", dir);
	RUN(test_defaults);
	RUN(test_listener_names);
	RUN(test_numbers);
	RUN(test_strings);
	RUN(test_paths);
	RUN(test_listeners);
	RUN(test_bare_lf);
	RUN(test_sni);
	RUN(test_errors);
	RUN(test_syntax);
	unlink(path);
	rmdir(dir);
	return test_done();
}
