/* The IMAP command parser (RFC 9051 section 9, RFC 3501 section 9;
 * literals: RFC 7888 LITERAL+ and LITERAL-, RFC 3516 literal8).
 *
 * Incremental: feed bytes as they come, split anywhere. A command comes
 * back as a tag, a name and a tree of arguments. A synchronizing literal
 * "{n}" stops the parser until the caller has sent its continuation
 * request ("+ ..."), as RFC 9051 7.5 requires; non-synchronizing "{n+}"
 * goes on at once. Every dimension is limited, and a malformed line is
 * reported with the tag (when there is one) and skipped up to its end, so
 * the session can answer "tag BAD ..." and go on.
 *
 * Atoms follow the ABNF with two allowances that FETCH and flags need: a
 * "[" inside an atom opens a section that runs to the next "]" whatever it
 * holds ("BODY[HEADER.FIELDS (FROM TO)]<0.2048>"), and "\" , "%" and "*"
 * are atom characters ("\Seen", list wildcards). NIL is returned as the
 * atom "NIL": only the command knows whether it means nil. */
#ifndef YUBIN_IMAP_PARSER_H
#define YUBIN_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;		/* "~{n}" (binary) */
	bool streamed;		/* a literal handed to the sink: len bytes, str "" */
	size_t len;		/* bytes of str, or items of list */
	char *str;		/* NUL-terminated (literals may hold NUL too) */
	struct imap_arg *list;	/* IMAP_ARG_LIST */
};

struct imap_command {
	char *tag;
	char *name;		/* as sent; compare case-insensitively */
	size_t argc;
	struct imap_arg *args;
};

struct imap_parser_limits {
	size_t line_max;	/* bytes of one line, literals not counted */
	uint64_t literal_max;	/* bytes of one literal */
	uint64_t nonsync_max;	/* bytes of one "{n+}" literal; 0: any
				 * (LITERAL+), 4096 under LITERAL- */
	size_t args_max;	/* arguments in all lists together */
	size_t depth_max;	/* list nesting */
};

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE,	/* all input taken; feed more */
	IMAP_PARSE_COMMAND,	/* a whole command: imap_parser_command() */
	IMAP_PARSE_LITERAL_SYNC, /* send "+ ..." then feed more */
	IMAP_PARSE_ERROR,	/* a bad line: imap_parser_error(); skipped */
	IMAP_PARSE_LITERAL_TOO_BIG, /* a literal over literal_max was announced:
				 * answer "tag NO [TOOBIG]" (RFC 7888/9051);
				 * a synchronizing one is never read; the
				 * bytes of a non-synchronizing one are
				 * skipped. */
	IMAP_PARSE_NONSYNC_TOO_BIG, /* a "{n+}" literal over nonsync_max
				 * (RFC 7888 5, LITERAL-): answer "tag BAD
				 * [TOOBIG]"; its bytes are skipped. */
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
void imap_parser_free(struct imap_parser **p);

/* Parses from data; *used_r bytes were taken (the rest is for the next
 * call). A result other than NEED_MORE is returned as soon as it happens;
 * the caller answers it and simply feeds on: the parser itself drops the
 * handled command, or skips the rest of a bad line (and the bytes of a
 * refused non-synchronizing literal). */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *data,
					size_t len, size_t *used_r);
/* After IMAP_PARSE_COMMAND: the command, valid until the next feed or
 * reset. */
const struct imap_command *imap_parser_command(struct imap_parser *p);
/* After ERROR or LITERAL_TOO_BIG: the tag ("*" if none was read) and the
 * reason. Valid until the next feed. */
const char *imap_parser_error_tag(struct imap_parser *p);
const char *imap_parser_error(struct imap_parser *p);
/* The size of the literal announced (for LITERAL_SYNC, LITERAL_TOO_BIG). */
uint64_t imap_parser_literal_size(struct imap_parser *p);
/* Forgets everything (for a session that starts over, e.g. after TLS). */
void imap_parser_reset(struct imap_parser *p);
/* Whether the line being parsed is at its very start (nothing read yet). */
bool imap_parser_idle(struct imap_parser *p);

/* Where large literals may go instead of memory (IMAP APPEND): when a
 * literal over literal_max starts, want() is asked with the command's name
 * and the size (at most stream_max); if it says yes, the bytes go to write()
 * as they arrive and the argument is marked streamed. */
struct imap_literal_sink {
	bool (*want)(void *ctx, const char *command, uint64_t size);
	int (*write)(void *ctx, const char *data, size_t len);
	void *ctx;
	uint64_t stream_max;
};
void imap_parser_set_sink(struct imap_parser *p, const struct imap_literal_sink *sink);

/* Helpers for commands. */
bool imap_arg_is_string(const struct imap_arg *a);	/* atom, quoted or literal */
bool imap_arg_is_nil(const struct imap_arg *a);

#endif
