/* Mail addresses and SMTP paths (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).
 *
 * The parsers take untrusted input, are bounded by the RFC's own limits
 * (local part 64 octets, domain 255, path 256; RFC 5321 4.5.3.1) and never
 * read past the given length. */
#ifndef YUBIN_SMTP_ADDRESS_H
#define YUBIN_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_LOCAL_MAX 64
#define ADDRESS_DOMAIN_MAX 255
#define ADDRESS_PATH_MAX 256
#define SMTP_PARAMS_MAX 16

/* Flags for the parsers. */
#define ADDRESS_ALLOW_NULL 0x01	/* "<>" is valid (reverse-path) */
#define ADDRESS_ALLOW_UTF8 0x02	/* UTF-8 in local part and domain (SMTPUTF8) */
/* Without ADDRESS_ALLOW_UTF8 any 8-bit byte is an error; with it, 8-bit bytes
 * must be well-formed UTF-8 (RFC 3629) and may appear only where RFC 6531 3.3
 * allows them: atext, qtextSMTP, U-labels, esmtp-value. */

struct address {
	/* The local part as it is to be compared and stored: a Dot-string stays as
	 * it is; a Quoted-string whose content is a valid Dot-string is unquoted
	 * ("a.b"@x equals a.b@x); any other Quoted-string is kept with its quotes
	 * and minimal backslash escaping. Case is preserved (RFC 5321 2.4). */
	char *local;
	/* The domain in lower case, or an address literal with its brackets,
	 * e.g. "[192.0.2.1]" or "[IPv6:2001:db8::1]". */
	char *domain;
	/* For "<>", local and domain are both "". For "<Postmaster>" without a
	 * domain (accepted by smtp_path_parse for RCPT only, RFC 5321 4.1.1.3),
	 * local is "postmaster" and domain is "": the caller picks the domain. */
	bool is_null;		/* the null reverse-path "<>" */
	bool domain_literal;	/* domain is an address literal */
	bool utf8;		/* local or domain holds non-ASCII */
};

struct smtp_param {
	char *keyword;		/* as sent; compare with str_ieq */
	char *value;		/* NULL when the parameter has no "=value" */
};

struct smtp_path_args {
	struct address addr;
	size_t param_count;
	struct smtp_param params[SMTP_PARAMS_MAX];
};

/* Parses the argument of MAIL FROM: or RCPT TO: (the text after the colon,
 * e.g. "<a@b.example> SIZE=100 BODY=8BITMIME"). A source route ("@a,@b:")
 * is accepted and dropped (RFC 5321 4.1.1.3, C.). One space between the
 * colon and "<" is tolerated, as deployed clients send it. Parameters are
 * checked against the esmtp-param grammar but not interpreted; they follow
 * the path after at least one space (runs of spaces and trailing spaces are
 * tolerated); at most SMTP_PARAMS_MAX; duplicates are returned as sent.
 * With ADDRESS_ALLOW_NULL the argument is a Reverse-path (MAIL: "<>" is
 * valid); without it, a Forward-path (RCPT: "<Postmaster>" without a domain
 * is valid, case-insensitively).
 * Returns 0, or -1 with *error_r a static English reason for a 501 reply.
 * On error nothing is left allocated in *args_r (deinit is still safe). */
int smtp_path_parse(const char *arg, size_t len, unsigned flags,
		    struct smtp_path_args *args_r, const char **error_r);
void smtp_path_args_deinit(struct smtp_path_args *args);

/* Parses a bare address "local@domain" (the CLI, config, alias targets).
 * Same grammar as a Mailbox of RFC 5321, and it must fit in a path (at most
 * ADDRESS_PATH_MAX - 2 octets). With ADDRESS_ALLOW_NULL, "" is the null
 * address. Returns 0 or -1 with *error_r. */
int address_parse(const char *s, unsigned flags, struct address *addr_r,
		  const char **error_r);
/* Parses a bare domain name (a Domain of RFC 5321, no literal). Writes it
 * lower-cased to a new string. Returns 0 or -1 with *error_r. */
int address_parse_domain(const char *s, unsigned flags, char **domain_r,
			 const char **error_r);
void address_deinit(struct address *addr);
void address_copy(struct address *dst, const struct address *src);

/* "local@domain", "" for the null path, or "postmaster" for "<Postmaster>"
 * without a domain. Parsing the result (inside "<>" for a path) gives the
 * same address again. The caller frees it. */
char *address_to_string(const struct address *addr);

/* True when the string is well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t len);

#endif
