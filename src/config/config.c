/* The configuration file.
 *
 * Every directive is one row of directives[] below: {scope, key, type,
 * offset, default, limits}, in the manner of nginx's ngx_command_t. Parsing,
 * defaults, duplicate detection and freeing are all driven by that table, so
 * adding a directive is adding a row (and a field in struct config).
 *
 * libinih splits the file into sections and key = value pairs, but its
 * handler is not told the line number, and a few of its defaults would
 * surprise an operator: an indented line continues the previous value
 * (INI_ALLOW_MULTILINE), a line longer than INI_MAX_LINE (200) is silently
 * cut in two, "key: value" is accepted as well as "key = value", an inline
 * comment starts only at " ;" (INI_ALLOW_INLINE_COMMENTS with prefix ";",
 * not "#"), and a section with no keys is never reported. So we feed it
 * through our own line reader (ini_parse_stream), which counts lines and
 * hands inih one clean line at a time: leading blanks and comments
 * removed (";" or "#" at the start of a line, or preceded by a blank), a
 * section line checked and noted, a key line checked to be "key = value",
 * and a line that does not fit refused rather than cut. The libinih
 * tunables (ini_allow_multiline, ...) are left alone: they are a Debian
 * addition and global to the process. */
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "dns/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOSTNAME_MAX 253	/* RFC 1035 2.3.4, without the final dot */
#define DELIMITER_MAX 8		/* characters in recipient_delimiter */

/* Which sections a directive may appear in: a directive has one scope bit,
 * a section the bits of every scope it accepts. */
enum scope {
	SCOPE_SERVER = 1 << 0,
	SCOPE_LIMITS = 1 << 1,
	SCOPE_LISTENER = 1 << 2,	/* every listener section */
	SCOPE_SMTP = 1 << 3,		/* the SMTP listener sections only */
	SCOPE_QUEUE = 1 << 5,		/* [queue]: the outbound queue's schedule */
	SCOPE_RELAY = 1 << 6,		/* [relay]: how mail leaves */
	SCOPE_DNS = 1 << 4,		/* [dns]: the resolver */
	SCOPE_MAILAUTH = 1 << 7,	/* [mailauth]: SPF, DKIM, DMARC on port 25 */
};

struct section {
	const char *name;
	unsigned scopes;
	int listener;			/* enum listener_kind, -1 for none */
	enum bare_lf_policy bare_lf;	/* its default, SMTP kinds only */
};

static const struct section sections[] = {
	{ "server", SCOPE_SERVER, -1, BARE_LF_REJECT },
	{ "limits", SCOPE_LIMITS, -1, BARE_LF_REJECT },
	{ "queue", SCOPE_QUEUE, -1, BARE_LF_REJECT },
	{ "relay", SCOPE_RELAY, -1, BARE_LF_REJECT },
	{ "dns", SCOPE_DNS, -1, BARE_LF_REJECT },
	{ "mailauth", SCOPE_MAILAUTH, -1, BARE_LF_REJECT },
	/* Port 25 takes mail from anywhere: a bare LF there is refused, since
	 * accepting it is what SMTP smuggling relies on. Submission clients
	 * are our own users' programs, some of which send bare LF. */
	{ "smtp", SCOPE_LISTENER | SCOPE_SMTP, LISTENER_SMTP, BARE_LF_REJECT },
	{ "submission", SCOPE_LISTENER | SCOPE_SMTP, LISTENER_SUBMISSION, BARE_LF_NORMALIZE },
	{ "submissions", SCOPE_LISTENER | SCOPE_SMTP, LISTENER_SUBMISSIONS, BARE_LF_NORMALIZE },
	{ "imap", SCOPE_LISTENER, LISTENER_IMAP, BARE_LF_REJECT },
	{ "imaps", SCOPE_LISTENER, LISTENER_IMAPS, BARE_LF_REJECT },
	{ "pop3", SCOPE_LISTENER, LISTENER_POP3, BARE_LF_REJECT },
	{ "pop3s", SCOPE_LISTENER, LISTENER_POP3S, BARE_LF_REJECT },
};

enum dtype {
	DT_STRING,	/* any non-empty text */
	DT_PATH,	/* relative to the config file's folder, stored absolute */
	DT_HOSTNAME,	/* a domain name */
	DT_DELIMITER,	/* a few local-part punctuation characters */
	DT_KEYWORD,	/* one of choices, stored as a string */
	DT_ENUM,	/* one of choices, stored as an int (the index) */
	DT_BOOL,
	DT_UINT,	/* uint32_t in [min, max] */
	DT_SIZE,	/* uint64_t bytes, suffix K, M or G (1024-based) */
	DT_DURATION,	/* uint32_t seconds, suffix s, m, h or d */
	DT_LISTEN,	/* ADDRESS:PORT appended to the listener */
	DT_SNI,		/* NAME CERT KEY appended to cfg->sni */
	DT_DNS_SERVERS,	/* ADDR[:PORT]... appended to a c-ares server list */
};

#define DF_REPEAT 0x1	/* may appear more than once */
#define DF_EMPTY 0x2	/* an empty value is allowed */

struct directive {
	unsigned scope;
	const char *key;
	enum dtype type;
	/* In struct config for the server and limits scopes, in struct
	 * config_listener for the listener scopes. */
	size_t offset;
	/* Parsed exactly like a value from the file, so a default cannot be
	 * invalid. NULL: unset (or computed, see apply_defaults()). */
	const char *def;
	uint64_t min, max;		/* DT_UINT, DT_SIZE, DT_DURATION */
	const char *const *choices;	/* DT_KEYWORD, DT_ENUM: NULL-terminated */
	unsigned flags;
};

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
/* In the order of enum plaintext_auth and enum bare_lf_policy. */
static const char *const plaintext_auths[] = { "tls", "loopback", "always", NULL };
static const char *const bare_lf_policies[] = { "reject", "normalize", NULL };
/* In the order of enum imap_literals. */
static const char *const imap_literal_modes[] = { "plus", "minus", NULL };
/* In the order of enum relay_tls. */
static const char *const relay_tls_modes[] = { "opportunistic", "required", "verify", NULL };

#define C(f) offsetof(struct config, f)
#define L(f) offsetof(struct config_listener, f)

static const struct directive directives[] = {
	{ SCOPE_SERVER, "hostname", DT_HOSTNAME, C(hostname), NULL, 0, 0, NULL, 0 },
	{ SCOPE_SERVER, "data_dir", DT_PATH, C(data_dir), "/var/lib/yubin", 0, 0, NULL, 0 },
	{ SCOPE_SERVER, "user", DT_STRING, C(user), NULL, 0, 0, NULL, 0 },
	{ SCOPE_SERVER, "tls_cert", DT_PATH, C(tls_cert), NULL, 0, 0, NULL, 0 },
	{ SCOPE_SERVER, "tls_key", DT_PATH, C(tls_key), NULL, 0, 0, NULL, 0 },
	{ SCOPE_SERVER, "tls_sni", DT_SNI, 0, NULL, 0, 0, NULL, DF_REPEAT },
	{ SCOPE_SERVER, "tls_selfsigned", DT_BOOL, C(tls_selfsigned), "no", 0, 0, NULL, 0 },
	/* 64 is also the most `yubin serve` starts (IO_THREADS_MAX). */
	{ SCOPE_SERVER, "io_threads", DT_UINT, C(io_threads), "0", 0, 64, NULL, 0 },
	{ SCOPE_SERVER, "log_level", DT_KEYWORD, C(log_level), "info", 0, 0, log_levels, 0 },
	{ SCOPE_SERVER, "plaintext_auth", DT_ENUM, C(plaintext_auth), "loopback", 0, 0,
	  plaintext_auths, 0 },
	{ SCOPE_SERVER, "recipient_delimiter", DT_DELIMITER, C(recipient_delimiter), "+",
	  0, 0, NULL, DF_EMPTY },

	{ SCOPE_LIMITS, "max_message_size", DT_SIZE, C(max_message_size), "50M",
	  1024, INT64_MAX, NULL, 0 },
	/* RFC 5321 4.5.3.1.4: a command line may be 512 octets, and
	 * extensions make it longer (SIZE=, AUTH=, BODY=); 1000 leaves room
	 * for them. AUTH with an initial response is limited by this too. */
	{ SCOPE_LIMITS, "max_line_length", DT_UINT, C(max_line_length), "4096",
	  1000, 1024 * 1024, NULL, 0 },
	/* RFC 5321 4.5.3.1.8: refusing fewer than 100 recipients is a
	 * violation. */
	{ SCOPE_LIMITS, "max_recipients", DT_UINT, C(max_recipients), "1000",
	  100, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "max_errors", DT_UINT, C(max_errors), "10", 1, UINT32_MAX, NULL, 0 },
	/* 0: no limit, as net_set_limits() takes it. */
	{ SCOPE_LIMITS, "max_connections", DT_UINT, C(max_connections), "1000",
	  0, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "max_connections_per_ip", DT_UINT, C(max_connections_per_ip), "20",
	  0, UINT32_MAX, NULL, 0 },
	/* RFC 5321 4.5.3.2.7: the server should wait at least 5 minutes for
	 * the next command. Shorter is allowed (tests, overload), not advised. */
	{ SCOPE_LIMITS, "smtp_timeout", DT_DURATION, C(smtp_timeout), "300s",
	  1, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "smtp_data_timeout", DT_DURATION, C(smtp_data_timeout), "600s",
	  1, UINT32_MAX, NULL, 0 },
	/* RFC 5321 6.3: a loop threshold should normally be at least 100. */
	{ SCOPE_LIMITS, "max_received_headers", DT_UINT, C(max_received_headers), "100",
	  1, UINT32_MAX, NULL, 0 },
	/* RFC 7888 5: LITERAL+ (non-synchronizing literals of any size) or
	 * LITERAL- (up to 4096 octets; larger ones must be synchronizing). */
	{ SCOPE_LIMITS, "imap_literals", DT_ENUM, C(imap_literals), "plus", 0, 0,
	  imap_literal_modes, 0 },

	/* Login throttling (auth/auth.c): each failure is answered after a
	 * delay that doubles per failure; enough failures lock the IP or the
	 * account for a while. */
	{ SCOPE_LIMITS, "auth_fail_delay", DT_UINT, C(auth_fail_delay), "1000",
	  0, 60000, NULL, 0 },
	{ SCOPE_LIMITS, "auth_fail_delay_max", DT_UINT, C(auth_fail_delay_max), "15000",
	  0, 600000, NULL, 0 },
	{ SCOPE_LIMITS, "auth_lock_failures", DT_UINT, C(auth_lock_failures), "10",
	  0, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "auth_lock_time", DT_DURATION, C(auth_lock_time), "15m",
	  1, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "auth_cache_time", DT_DURATION, C(auth_cache_time), "60s",
	  0, 86400, NULL, 0 },
	{ SCOPE_LIMITS, "submission_messages_per_hour", DT_UINT,
	  C(submission_messages_per_hour), "1000", 0, UINT32_MAX, NULL, 0 },
	{ SCOPE_LIMITS, "submission_max_recipients", DT_UINT,
	  C(submission_max_recipients), "500", 0, UINT32_MAX, NULL, 0 },
	/* RFC 1939 3: an inactivity autologout timer must be at least 10
	 * minutes. Shorter is allowed (tests), not advised. */
	{ SCOPE_LIMITS, "pop3_timeout", DT_DURATION, C(pop3_timeout), "10m",
	  1, UINT32_MAX, NULL, 0 },
	/* IMAP and POP3 sessions logged in to one account, both protocols
	 * together. Dovecot allows 10 per user and IP and protocol; a user's
	 * phone, laptop and desktop each keep several IMAP connections. */
	{ SCOPE_LIMITS, "max_sessions_per_user", DT_UINT, C(max_sessions_per_user), "50",
	  0, UINT32_MAX, NULL, 0 },
	/* RFC 9051 5.4 allows a shorter timer before authentication; a
	 * client must log in within this, whatever it sends meanwhile. */
	{ SCOPE_LIMITS, "login_timeout", DT_DURATION, C(login_timeout), "60s",
	  1, UINT32_MAX, NULL, 0 },
	/* A logged-in client must send each whole command (an IMAP one with
	 * its literals) within this, not only each byte within the idle
	 * timeout: as long as RFC 9051 5.4's least idle timer. */
	{ SCOPE_LIMITS, "command_timeout", DT_DURATION, C(command_timeout), "30m",
	  1, UINT32_MAX, NULL, 0 },

	/* The resolver (dns/). servers: numeric ADDR[:PORT], several per line
	 * or on several lines, instead of /etc/resolv.conf's. timeout is the
	 * first try per server (c-ares doubles it each round) and attempts the
	 * rounds: 5s and 2 take at most 15 s per server before a lookup is a
	 * temporary failure, like the resolv.conf defaults. */
	{ SCOPE_DNS, "servers", DT_DNS_SERVERS, C(dns_servers), NULL, 0, 0, NULL, DF_REPEAT },
	{ SCOPE_DNS, "timeout", DT_DURATION, C(dns_timeout), "5s", 1, 300, NULL, 0 },
	{ SCOPE_DNS, "attempts", DT_UINT, C(dns_attempts), "2", 1, 10, NULL, 0 },

	/* Mail authentication of what port 25 receives (mailauth/): each
	 * check can be turned off; dmarc_reject=no delivers what DMARC says
	 * to reject into the recipient's Junk instead of refusing it with
	 * 550 5.7.1. authserv_id names us in Authentication-Results (RFC 8601
	 * 2.5): the hostname when unset. mailauth_timeout bounds all the DNS
	 * work of one message after its data ended (DKIM keys, DMARC). */
	{ SCOPE_MAILAUTH, "spf", DT_BOOL, C(mailauth_spf), "yes", 0, 0, NULL, 0 },
	{ SCOPE_MAILAUTH, "dkim", DT_BOOL, C(mailauth_dkim), "yes", 0, 0, NULL, 0 },
	{ SCOPE_MAILAUTH, "dmarc", DT_BOOL, C(mailauth_dmarc), "yes", 0, 0, NULL, 0 },
	{ SCOPE_MAILAUTH, "dmarc_reject", DT_BOOL, C(dmarc_reject), "yes", 0, 0, NULL, 0 },
	{ SCOPE_MAILAUTH, "authserv_id", DT_HOSTNAME, C(authserv_id), NULL, 0, 0, NULL, 0 },
	{ SCOPE_MAILAUTH, "mailauth_timeout", DT_DURATION, C(mailauth_timeout), "30s",
	  1, 600, NULL, 0 },


	/* The outbound queue (RFC 5321 4.5.4.1: retry after at least 30
	 * minutes, give up after 4-5 days; the first retry comes sooner, as
	 * most temporary failures are greylisting, which passes in minutes). */
	{ SCOPE_QUEUE, "retry_min", DT_DURATION, C(queue_retry_min), "5m", 1, 86400, NULL, 0 },
	{ SCOPE_QUEUE, "retry_max", DT_DURATION, C(queue_retry_max), "4h", 1, 7 * 86400, NULL, 0 },
	{ SCOPE_QUEUE, "max_age", DT_DURATION, C(queue_max_age), "5d", 60, 60 * 86400, NULL, 0 },
	{ SCOPE_QUEUE, "delay_notice", DT_DURATION, C(queue_delay_notice), "4h", 0, 60 * 86400,
	  NULL, 0 },
	{ SCOPE_QUEUE, "max_destinations", DT_UINT, C(queue_max_destinations), "20",
	  1, 10000, NULL, 0 },
	{ SCOPE_QUEUE, "connect_timeout", DT_DURATION, C(queue_connect_timeout), "30s",
	  1, 600, NULL, 0 },
	/* HOST:PORT, [IPV6]:PORT, or HOST (port 587). */
	{ SCOPE_RELAY, "smarthost", DT_STRING, C(smarthost), NULL, 0, 0, NULL, 0 },
	{ SCOPE_RELAY, "smarthost_user", DT_STRING, C(smarthost_user), NULL, 0, 0, NULL, 0 },
	{ SCOPE_RELAY, "smarthost_password", DT_STRING, C(smarthost_password), NULL, 0, 0, NULL, 0 },
	{ SCOPE_RELAY, "smarthost_tls", DT_ENUM, C(smarthost_tls), "required", 0, 0,
	  relay_tls_modes, 0 },
	{ SCOPE_RELAY, "tls", DT_ENUM, C(relay_tls), "opportunistic", 0, 0, relay_tls_modes, 0 },

	{ SCOPE_LISTENER, "listen", DT_LISTEN, 0, NULL, 0, 0, NULL, DF_REPEAT },
	/* Its default depends on the section: sections[].bare_lf. */
	{ SCOPE_SMTP, "bare_lf", DT_ENUM, L(bare_lf), NULL, 0, 0, bare_lf_policies, 0 },
};

_Static_assert(sizeof(enum plaintext_auth) == sizeof(int), "DT_ENUM stores an int");
_Static_assert(sizeof(enum bare_lf_policy) == sizeof(int), "DT_ENUM stores an int");
_Static_assert(sizeof(enum relay_tls) == sizeof(int), "DT_ENUM stores an int");
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "DT_UINT stores a uint32_t");

#define SECTION_COUNT ARRAY_SIZE(sections)
#define DIRECTIVE_COUNT ARRAY_SIZE(directives)

struct parser {
	struct config *cfg;
	const char *name;	/* the file, for messages */
	char *dir;		/* its folder, absolute, for relative paths */
	const char *text;
	size_t len, pos;
	int line;		/* of the line last handed to inih */
	int section;		/* index in sections[], -1 before the first */
	int section_line[SECTION_COUNT];		/* first line, 0: absent */
	int seen[SECTION_COUNT][DIRECTIVE_COUNT];	/* first line, 0: unset */
	char *error;		/* the first error; parsing stops there */
};

static void fail(struct parser *p, int line, const char *fmt, ...) PRINTF(3, 4);

/* Records the first error as "FILE:LINE: text" ("FILE: text" for line 0). */
static void fail(struct parser *p, int line, const char *fmt, ...)
{
	if (p->error != NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (line > 0)
		p->error = xasprintf("%s:%d: %s", p->name, line, msg);
	else
		p->error = xasprintf("%s: %s", p->name, msg);
	free(msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_key_char(char c)
{
	return is_alnum(c) || c == '_';
}

static void replace_str(void *field, char *s)
{
	char **f = field;
	free(*f);
	*f = s;
}

/* ---- value types; each returns NULL or the problem (to be freed) ---- */

static char *set_string(struct parser *p, const struct directive *d, const char *v,
			void *field)
{
	replace_str(field, xstrdup(v));
	return NULL;
}

static char *set_path(struct parser *p, const struct directive *d, const char *v,
		      void *field)
{
	if (v[0] == '/') {
		replace_str(field, xstrdup(v));
		return NULL;
	}
	while (v[0] == '.' && v[1] == '/') {
		v += 2;
		while (*v == '/')
			v++;
	}
	if (*v == '\0' || strcmp(v, ".") == 0)
		replace_str(field, xstrdup(p->dir));
	else
		replace_str(field, xasprintf("%s%s%s", p->dir,
					     strcmp(p->dir, "/") == 0 ? "" : "/", v));
	return NULL;
}

/* Letters, digits and hyphens in dot-separated labels of 1 to 63 (RFC 1035
 * 2.3.1, with RFC 1123 2.1 letting a label start with a digit). This name
 * goes into the SMTP greeting and Received fields. */
static const char *hostname_problem(const char *v)
{
	size_t len = strlen(v), label = 0;
	if (len == 0)
		return "empty";
	if (len > HOSTNAME_MAX)
		return "longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		char c = v[i];
		if (c == '.' || c == '\0') {
			if (label == 0)
				return "empty label";
			if (v[i - 1] == '-')
				return "a label ends with '-'";
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			if (label == 0 && c == '-')
				return "a label starts with '-'";
			if (++label > 63)
				return "a label is longer than 63 characters";
		} else {
			return "only letters, digits, '-' and '.' are allowed";
		}
	}
	return NULL;
}

static char *set_hostname(struct parser *p, const struct directive *d, const char *v,
			  void *field)
{
	const char *problem = hostname_problem(v);
	if (problem != NULL)
		return xasprintf("\"%s\" is not a host name: %s", v, problem);
	replace_str(field, xstrdup(v));
	return NULL;
}

/* Characters that may separate user from extension in a local part: atext
 * punctuation (RFC 5322 3.2.3) and '.'. Letters and digits would split
 * ordinary names; '@' and quotes would not survive the address parser. */
static char *set_delimiter(struct parser *p, const struct directive *d, const char *v,
			   void *field)
{
	static const char allowed[] = "!#$%&'*+-/=?^_`{|}~.";
	size_t len = strlen(v);
	if (len > DELIMITER_MAX)
		return xasprintf("at most %d characters", DELIMITER_MAX);
	for (size_t i = 0; i < len; i++) {
		if (strchr(allowed, v[i]) == NULL)
			return xasprintf("'%c' cannot be a delimiter; use characters from %s",
					 v[i], allowed);
	}
	replace_str(field, xstrdup(v));
	return NULL;
}

static char *choices_text(const char *const *choices)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; choices[i] != NULL; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : choices[i + 1] == NULL ? " or " : ", ",
			   choices[i]);
	return buf_steal(&b, NULL);
}

static int find_choice(const char *const *choices, const char *v)
{
	for (int i = 0; choices[i] != NULL; i++) {
		if (str_ieq(choices[i], v))
			return i;
	}
	return -1;
}

static char *bad_choice(const struct directive *d, const char *v)
{
	char *list = choices_text(d->choices);
	char *problem = xasprintf("\"%s\": expected one of %s", v, list);
	free(list);
	return problem;
}

static char *set_keyword(struct parser *p, const struct directive *d, const char *v,
			 void *field)
{
	int i = find_choice(d->choices, v);
	if (i < 0)
		return bad_choice(d, v);
	replace_str(field, xstrdup(d->choices[i]));
	return NULL;
}

static char *set_enum(struct parser *p, const struct directive *d, const char *v,
		      void *field)
{
	int i = find_choice(d->choices, v);
	if (i < 0)
		return bad_choice(d, v);
	*(int *)field = i;
	return NULL;
}

static char *set_bool(struct parser *p, const struct directive *d, const char *v,
		      void *field)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	if (find_choice(yes, v) >= 0)
		*(bool *)field = true;
	else if (find_choice(no, v) >= 0)
		*(bool *)field = false;
	else
		return xasprintf("\"%s\": expected yes or no", v);
	return NULL;
}

/* The leading decimal digits of v, refusing overflow. *rest_r points after
 * them (the suffix). */
static char *parse_number(const char *v, uint64_t *n_r, const char **rest_r)
{
	uint64_t n = 0;
	const char *s = v;
	*n_r = 0;
	*rest_r = v;
	if (!is_digit(*s))
		return xasprintf("\"%s\": expected a number", v);
	for (; is_digit(*s); s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (n > (UINT64_MAX - digit) / 10)
			return xasprintf("\"%s\": number too large", v);
		n = n * 10 + digit;
	}
	*n_r = n;
	*rest_r = s;
	return NULL;
}

static char *check_range(const struct directive *d, const char *v, uint64_t n,
			 const char *unit)
{
	if (n >= d->min && n <= d->max)
		return NULL;
	if (n < d->min)
		return xasprintf("\"%s\": must be at least %llu%s", v,
				 (unsigned long long)d->min, unit);
	return xasprintf("\"%s\": must be at most %llu%s", v, (unsigned long long)d->max, unit);
}

/* A number with an optional one-letter suffix from units (case-insensitive),
 * multiplied by the matching factor, refusing overflow. */
static char *parse_scaled(const struct directive *d, const char *v, const char *units,
			  const uint64_t *factors, const char *unit_name, uint64_t *n_r)
{
	uint64_t n;
	const char *rest;
	char *problem = parse_number(v, &n, &rest);
	if (problem != NULL)
		return problem;
	if (*rest != '\0') {
		const char *u = strchr(units, *rest | 0x20);
		if (u == NULL || rest[1] != '\0')
			return xasprintf("\"%s\": unknown suffix \"%s\" (use one of %s)",
					 v, rest, units);
		uint64_t f = factors[u - units];
		if (n > UINT64_MAX / f)
			return xasprintf("\"%s\": number too large", v);
		n *= f;
	}
	problem = check_range(d, v, n, unit_name);
	if (problem != NULL)
		return problem;
	*n_r = n;
	return NULL;
}

static char *set_uint(struct parser *p, const struct directive *d, const char *v,
		      void *field)
{
	uint64_t n;
	const char *rest;
	char *problem = parse_number(v, &n, &rest);
	if (problem == NULL && *rest != '\0')
		problem = xasprintf("\"%s\": expected a whole number", v);
	if (problem == NULL)
		problem = check_range(d, v, n, "");
	if (problem == NULL)
		*(uint32_t *)field = (uint32_t)n;
	return problem;
}

static char *set_size(struct parser *p, const struct directive *d, const char *v,
		      void *field)
{
	static const uint64_t factors[] = { 1024, 1024 * 1024, 1024 * 1024 * 1024 };
	uint64_t n;
	char *problem = parse_scaled(d, v, "kmg", factors, " bytes", &n);
	if (problem == NULL)
		*(uint64_t *)field = n;
	return problem;
}

static char *set_duration(struct parser *p, const struct directive *d, const char *v,
			  void *field)
{
	static const uint64_t factors[] = { 1, 60, 3600, 86400 };
	uint64_t n;
	char *problem = parse_scaled(d, v, "smhd", factors, " seconds", &n);
	if (problem == NULL)
		*(uint32_t *)field = (uint32_t)n;
	return problem;
}

/* "[IPv6]:PORT", "HOST:PORT" or "*:PORT". The port is numeric: a service
 * name would depend on /etc/services at start-up. */
static char *set_listen(struct parser *p, const struct directive *d, const char *v,
			void *field)
{
	struct config_listener *l = field;
	static const char *const usage =
		"expected ADDRESS:PORT, e.g. 127.0.0.1:25, [::1]:25 or *:25";
	const char *host, *port;
	size_t host_len;

	if (l->listen_count >= CONFIG_LISTEN_MAX)
		return xasprintf("more than %d listen lines", CONFIG_LISTEN_MAX);
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL || close[1] != ':')
			return xasprintf("\"%s\": %s", v, usage);
		host = v + 1;
		host_len = (size_t)(close - host);
		port = close + 2;
		/* An IPv6 address, with an optional %zone (RFC 4007 11). */
		char addr[INET6_ADDRSTRLEN + 1];
		const char *zone = memchr(host, '%', host_len);
		size_t addr_len = zone ? (size_t)(zone - host) : host_len;
		struct in6_addr a6;
		bool ok = addr_len > 0 && addr_len < sizeof(addr);
		if (ok) {
			memcpy(addr, host, addr_len);
			addr[addr_len] = '\0';
			ok = inet_pton(AF_INET6, addr, &a6) == 1;
		}
		for (size_t i = addr_len + 1; ok && zone && i < host_len; i++)
			ok = is_alnum(host[i]) || host[i] == '_' || host[i] == '-' || host[i] == '.';
		if (!ok || (zone && addr_len + 1 == host_len))
			return xasprintf("\"%.*s\" is not an IPv6 address", (int)host_len, host);
	} else {
		const char *colon = strrchr(v, ':');
		if (colon == NULL)
			return xasprintf("\"%s\": %s", v, usage);
		host = v;
		host_len = (size_t)(colon - v);
		port = colon + 1;
		if (memchr(host, ':', host_len) != NULL)
			return xasprintf("\"%s\": write an IPv6 address in brackets, e.g. [::1]:25", v);
		if (host_len == 0)
			return xasprintf("\"%s\": no address; write *:PORT for all addresses", v);
		if (!(host_len == 1 && host[0] == '*')) {
			for (size_t i = 0; i < host_len; i++) {
				if (!is_alnum(host[i]) && host[i] != '.' && host[i] != '-' &&
				    host[i] != '_')
					return xasprintf("\"%.*s\" is not an address or host name",
							 (int)host_len, host);
			}
		}
	}
	uint64_t n;
	if (str_to_u64(port, &n) < 0 || n < 1 || n > 65535)
		return xasprintf("\"%s\": the port must be a number from 1 to 65535", v);

	l->listen = xrealloc(l->listen, (l->listen_count + 1) * sizeof(*l->listen));
	struct config_listen *a = &l->listen[l->listen_count++];
	a->host = xstrndup(host, host_len);
	a->port = xasprintf("%u", (unsigned)n);
	a->file = xstrdup(p->name);
	a->line = p->line;
	return NULL;
}

/* "NAME CERT KEY": NAME a host name, or "*." and one. */
static char *set_sni(struct parser *p, const struct directive *d, const char *v,
		     void *field)
{
	struct config *cfg = p->cfg;
	char *copy = xstrdup(v), *save = NULL;
	char *name = strtok_r(copy, " \t", &save);
	char *cert = name ? strtok_r(NULL, " \t", &save) : NULL;
	char *key = cert ? strtok_r(NULL, " \t", &save) : NULL;
	char *extra = key ? strtok_r(NULL, " \t", &save) : NULL;
	char *problem = NULL;
	if (key == NULL || extra != NULL) {
		problem = xasprintf("expected NAME CERTFILE KEYFILE, e.g. "
				    "mail.example.org /etc/yubin/org.pem /etc/yubin/org.key");
		goto out;
	}
	const char *host = strncmp(name, "*.", 2) == 0 ? name + 2 : name;
	const char *hp = hostname_problem(host);
	if (hp != NULL) {
		problem = xasprintf("\"%s\" is not a host name: %s", name, hp);
		goto out;
	}
	if (cfg->sni_count >= CONFIG_LISTEN_MAX) {
		problem = xasprintf("more than %d tls_sni lines", CONFIG_LISTEN_MAX);
		goto out;
	}
	cfg->sni = xrealloc(cfg->sni, (cfg->sni_count + 1) * sizeof(*cfg->sni));
	struct config_sni *e = &cfg->sni[cfg->sni_count++];
	memset(e, 0, sizeof(*e));
	e->name = xstrdup(name);
	str_lower(e->name);
	set_path(p, d, cert, &e->cert);
	set_path(p, d, key, &e->key);
out:
	free(copy);
	return problem;
}

/* "ADDR[:PORT] ...": each checked by dns/ and appended to the list. */
static char *set_dns_servers(struct parser *p, const struct directive *d, const char *v,
			     void *field)
{
	char *copy = xstrdup(v), *save = NULL, *problem = NULL;
	for (char *s = strtok_r(copy, " \t", &save); s != NULL && problem == NULL;
	     s = strtok_r(NULL, " \t", &save))
		dns_servers_append(field, s, &problem);
	free(copy);
	return problem;
}

typedef char *setter_fn(struct parser *p, const struct directive *d, const char *v,
			void *field);

static setter_fn *const setters[] = {
	[DT_STRING] = set_string,
	[DT_PATH] = set_path,
	[DT_HOSTNAME] = set_hostname,
	[DT_DELIMITER] = set_delimiter,
	[DT_KEYWORD] = set_keyword,
	[DT_ENUM] = set_enum,
	[DT_BOOL] = set_bool,
	[DT_UINT] = set_uint,
	[DT_SIZE] = set_size,
	[DT_DURATION] = set_duration,
	[DT_LISTEN] = set_listen,
	[DT_SNI] = set_sni,
	[DT_DNS_SERVERS] = set_dns_servers,
};

static bool is_string_type(enum dtype t)
{
	return t == DT_STRING || t == DT_PATH || t == DT_HOSTNAME || t == DT_DELIMITER ||
	       t == DT_KEYWORD || t == DT_DNS_SERVERS;
}

/* Where directive d of section s is stored. */
static void *field_of(struct config *cfg, const struct section *s, const struct directive *d)
{
	if (!(d->scope & (SCOPE_LISTENER | SCOPE_SMTP)))
		return (char *)cfg + d->offset;
	if (s->listener < 0 || s->listener >= LISTENER__COUNT)
		log_panic("config: %s in [%s]", d->key, s->name);
	struct config_listener *l = &cfg->listeners[s->listener];
	return d->type == DT_LISTEN ? (void *)l : (char *)l + d->offset;
}

/* ---- the line reader and the inih handler ---- */

static int find_section(const char *name, size_t len)
{
	for (size_t i = 0; i < SECTION_COUNT; i++) {
		if (strlen(sections[i].name) == len && str_nieq(sections[i].name, name, len))
			return (int)i;
	}
	return -1;
}

/* Checks a section line ("[name]", comments and blanks already gone) and
 * makes it the current section. Returns 0 or -1 after fail(). */
static int section_line(struct parser *p, const char *line, size_t n)
{
	const char *close = memchr(line, ']', n);
	if (close == NULL) {
		fail(p, p->line, "%.*s: missing ']'", (int)n, line);
		return -1;
	}
	if ((size_t)(close - line) != n - 1) {
		fail(p, p->line, "%.*s: text after ']'", (int)n, line);
		return -1;
	}
	const char *name = line + 1;
	size_t len = n - 2;
	while (len > 0 && is_blank(*name)) {
		name++;
		len--;
	}
	while (len > 0 && is_blank(name[len - 1]))
		len--;
	int i = find_section(name, len);
	if (i < 0) {
		fail(p, p->line, "unknown section [%.*s]", (int)len, name);
		return -1;
	}
	p->section = i;
	if (p->section_line[i] == 0)
		p->section_line[i] = p->line;
	if (sections[i].listener >= 0)
		p->cfg->listeners[sections[i].listener].present = true;
	return 0;
}

/* Checks a "key = value" line. Returns 0 or -1 after fail(). */
static int key_line(struct parser *p, const char *line, size_t n)
{
	size_t k = 0;
	while (k < n && is_key_char(line[k]))
		k++;
	size_t eq = k;
	while (eq < n && is_blank(line[eq]))
		eq++;
	if (k == 0 || eq == n || line[eq] != '=') {
		fail(p, p->line, "%.*s: expected \"key = value\" or \"[section]\"",
		     (int)(n > 60 ? 60 : n), line);
		return -1;
	}
	if (p->section < 0) {
		fail(p, p->line, "%.*s: outside any section (put it under [server], "
		     "[limits] or a listener section)", (int)k, line);
		return -1;
	}
	return 0;
}

/* The ini_reader: gives inih the next line, cleaned, as a C string.
 * Returns NULL at the end or once an error was recorded, which ends
 * ini_parse_stream(). */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	if (p->error != NULL || p->pos >= p->len)
		return NULL;

	const char *line = p->text + p->pos;
	const char *nl = memchr(line, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - line) : p->len - p->pos;
	p->pos += n + (nl != NULL);
	p->line++;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	/* A UTF-8 byte order mark, which some editors write. */
	if (p->line == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
		line += 3;
		n -= 3;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			fail(p, p->line, "control character 0x%02x in the line", c);
			return NULL;
		}
	}
	while (n > 0 && is_blank(*line)) {
		line++;
		n--;
	}
	/* A comment: ';' or '#' at the start, or after a blank. */
	for (size_t i = 0; i < n; i++) {
		if ((line[i] == ';' || line[i] == '#') && (i == 0 || is_blank(line[i - 1]))) {
			n = i;
			break;
		}
	}
	while (n > 0 && is_blank(line[n - 1]))
		n--;

	str[0] = '\0';
	if (n == 0)
		return str;
	if (line[0] == '[') {
		if (section_line(p, line, n) < 0)
			return NULL;
		snprintf(str, (size_t)num, "[%s]", sections[p->section].name);
		return str;
	}
	if (key_line(p, line, n) < 0)
		return NULL;
	if (num < 1 || n > (size_t)num - 1) {
		fail(p, p->line, "line too long (at most %d characters without comments)",
		     num - 1);
		return NULL;
	}
	memcpy(str, line, n);
	str[n] = '\0';
	return str;
}

static int directive_index(const char *key)
{
	for (size_t i = 0; i < DIRECTIVE_COUNT; i++) {
		if (str_ieq(directives[i].key, key))
			return (int)i;
	}
	return -1;
}

/* "[smtp] [submission]": the sections where directive d belongs. */
static char *sections_of(const struct directive *d)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < SECTION_COUNT; i++) {
		if (sections[i].scopes & d->scope)
			buf_printf(&b, "%s[%s]", b.len ? " " : "", sections[i].name);
	}
	return buf_steal(&b, NULL);
}

static int on_pair(void *user, const char *section_name, const char *key, const char *value)
{
	struct parser *p = user;
	if (p->error != NULL)
		return 0;
	/* read_line() let no key through outside a section. */
	const struct section *s = &sections[p->section];
	int i = directive_index(key);
	if (i < 0 || !(directives[i].scope & s->scopes)) {
		if (i < 0) {
			fail(p, p->line, "[%s] %s: unknown key", s->name, key);
		} else {
			char *where = sections_of(&directives[i]);
			fail(p, p->line, "[%s] %s: not allowed here, only in %s", s->name, key, where);
			free(where);
		}
		return 0;
	}
	const struct directive *d = &directives[i];
	int *seen = &p->seen[p->section][i];
	if (*seen && !(d->flags & DF_REPEAT)) {
		fail(p, p->line, "[%s] %s: set twice (first on line %d)", s->name, d->key, *seen);
		return 0;
	}
	if (*seen == 0)
		*seen = p->line;
	if (*value == '\0' && !(d->flags & DF_EMPTY)) {
		fail(p, p->line, "[%s] %s: empty value", s->name, d->key);
		return 0;
	}
	char *problem = setters[d->type](p, d, value, field_of(p->cfg, s, d));
	if (problem != NULL) {
		fail(p, p->line, "[%s] %s: %s", s->name, d->key, problem);
		free(problem);
		return 0;
	}
	return 1;
}

/* ---- before and after the file ---- */

static void apply_defaults(struct parser *p)
{
	struct config *cfg = p->cfg;
	for (size_t i = 0; i < DIRECTIVE_COUNT; i++) {
		const struct directive *d = &directives[i];
		if (d->def == NULL || (d->scope & (SCOPE_LISTENER | SCOPE_SMTP)))
			continue;
		char *problem = setters[d->type](p, d, d->def, (char *)cfg + d->offset);
		if (problem != NULL)
			log_panic("config: bad default %s = %s: %s", d->key, d->def, problem);
	}
	for (size_t i = 0; i < SECTION_COUNT; i++) {
		if (sections[i].listener < 0)
			continue;
		struct config_listener *l = &cfg->listeners[sections[i].listener];
		l->section = sections[i].name;
		l->bare_lf = sections[i].bare_lf;
	}
	/* hostname: the system's name, checked after the file if still used. */
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0') {
		host[HOST_NAME_MAX] = '\0';
		cfg->hostname = xstrdup(host);
	}
}

static int seen_line(const struct parser *p, const char *section, const char *key)
{
	int s = find_section(section, strlen(section));
	int d = directive_index(key);
	return s >= 0 && d >= 0 ? p->seen[s][d] : 0;
}

/* What needs the whole file: listeners have addresses, no address is used
 * twice, the computed hostname is valid, TLS files come in pairs. */
static void check_config(struct parser *p)
{
	struct config *cfg = p->cfg;
	for (size_t i = 0; i < SECTION_COUNT && p->error == NULL; i++) {
		if (sections[i].listener < 0)
			continue;
		const struct config_listener *l = &cfg->listeners[sections[i].listener];
		if (l->present && l->listen_count == 0)
			fail(p, p->section_line[i], "[%s]: no listen line (e.g. listen = 127.0.0.1:25)",
			     l->section);
	}
	/* At most LISTENER__COUNT * CONFIG_LISTEN_MAX entries, so the square
	 * is small. */
	for (int k = 0; k < LISTENER__COUNT && p->error == NULL; k++) {
		const struct config_listener *l = &cfg->listeners[k];
		for (size_t i = 0; i < l->listen_count && p->error == NULL; i++) {
			const struct config_listen *a = &l->listen[i];
			for (int k2 = 0; k2 <= k && p->error == NULL; k2++) {
				const struct config_listener *l2 = &cfg->listeners[k2];
				size_t end = k2 == k ? i : l2->listen_count;
				for (size_t j = 0; j < end; j++) {
					const struct config_listen *b = &l2->listen[j];
					if (strcmp(a->port, b->port) == 0 && str_ieq(a->host, b->host)) {
						fail(p, a->line, "[%s] listen: %s%s%s:%s is already used "
						     "on line %d ([%s])", l->section,
						     strchr(a->host, ':') ? "[" : "", a->host,
						     strchr(a->host, ':') ? "]" : "", a->port, b->line,
						     l2->section);
						break;
					}
				}
			}
		}
	}
	if (p->error == NULL && cfg->hostname == NULL) {
		fail(p, 0, "[server] hostname: not set, and the system has no name");
	} else if (p->error == NULL && seen_line(p, "server", "hostname") == 0) {
		const char *problem = hostname_problem(cfg->hostname);
		if (problem != NULL)
			fail(p, 0, "[server] hostname: not set, and the system's name \"%s\" "
			     "is not usable (%s)", cfg->hostname, problem);
	}
	if (p->error == NULL && (cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		bool cert = cfg->tls_cert != NULL;
		fail(p, seen_line(p, "server", cert ? "tls_cert" : "tls_key"),
		     "[server] %s: set without %s", cert ? "tls_cert" : "tls_key",
		     cert ? "tls_key" : "tls_cert");
	}
}

/* The absolute folder of the config file named name. */
static char *config_dir(const char *name, char **error_r)
{
	const char *slash = strrchr(name, '/');
	if (slash == name)
		return xstrdup("/");
	if (name[0] == '/')
		return xstrndup(name, (size_t)(slash - name));
	char *cwd = getcwd(NULL, 0);
	if (cwd == NULL) {
		*error_r = xasprintf("%s: cannot find the current folder: %s", name,
				     strerror(errno));
		return NULL;
	}
	const char *rel = name;
	size_t rel_len = slash ? (size_t)(slash - name) : 0;
	while (rel_len >= 2 && rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		rel_len -= 2;
		while (rel_len > 0 && *rel == '/') {
			rel++;
			rel_len--;
		}
	}
	if (rel_len == 0 || (rel_len == 1 && rel[0] == '.'))
		return cwd;
	char *dir = xasprintf("%s%s%.*s", cwd, strcmp(cwd, "/") == 0 ? "" : "/",
			      (int)rel_len, rel);
	free(cwd);
	return dir;
}

int config_load_string(const char *text, size_t len, const char *name,
		       struct config **config_r, char **error_r)
{
	*config_r = NULL;
	*error_r = NULL;
	if (len > CONFIG_FILE_MAX) {
		*error_r = xasprintf("%s: larger than %d bytes", name, CONFIG_FILE_MAX);
		return -1;
	}
	struct parser *p = xcalloc(1, sizeof(*p));
	p->name = name;
	p->text = text;
	p->len = len;
	p->section = -1;
	p->dir = config_dir(name, error_r);
	if (p->dir == NULL) {
		free(p);
		return -1;
	}
	p->cfg = xcalloc(1, sizeof(*p->cfg));
	p->cfg->path = xstrdup(name);
	apply_defaults(p);

	int r = ini_parse_stream(read_line, p, on_pair, p);
	if (p->error == NULL && r != 0)
		fail(p, r > 0 ? r : 0, "%s", r == -2 ? "out of memory" : "syntax error");
	if (p->error == NULL)
		check_config(p);

	int ret = 0;
	if (p->error != NULL) {
		*error_r = p->error;
		config_free(&p->cfg);
		ret = -1;
	}
	*config_r = p->cfg;
	free(p->dir);
	free(p);
	return ret;
}

int config_load(const char *path, struct config **config_r, char **error_r)
{
	*config_r = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		*error_r = xasprintf("%s: %s", path, fstat(fd, &st) < 0 ? strerror(e) :
				     S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		close(fd);
		return -1;
	}
	/* One byte more than allowed, to tell "too large" from "just fits". */
	char *text = xmalloc(CONFIG_FILE_MAX + 1);
	size_t len = 0;
	while (len < CONFIG_FILE_MAX + 1) {
		ssize_t n = read(fd, text + len, CONFIG_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("%s: %s", path, strerror(errno));
			close(fd);
			free(text);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	int r = config_load_string(text, len, path, config_r, error_r);
	free(text);
	return r;
}

void config_free(struct config **config)
{
	struct config *cfg = *config;
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < DIRECTIVE_COUNT; i++) {
		const struct directive *d = &directives[i];
		if (!(d->scope & (SCOPE_LISTENER | SCOPE_SMTP)) && is_string_type(d->type))
			replace_str((char *)cfg + d->offset, NULL);
	}
	for (int k = 0; k < LISTENER__COUNT; k++) {
		struct config_listener *l = &cfg->listeners[k];
		for (size_t i = 0; i < l->listen_count; i++) {
			free(l->listen[i].host);
			free(l->listen[i].port);
			free(l->listen[i].file);
		}
		free(l->listen);
	}
	for (size_t i = 0; i < cfg->sni_count; i++) {
		free(cfg->sni[i].name);
		free(cfg->sni[i].cert);
		free(cfg->sni[i].key);
	}
	free(cfg->sni);
	free(cfg->path);
	free(cfg);
	*config = NULL;
}

const char *config_listener_name(enum listener_kind kind)
{
	for (size_t i = 0; i < SECTION_COUNT; i++) {
		if (sections[i].listener == (int)kind)
			return sections[i].name;
	}
	return "unknown";
}
