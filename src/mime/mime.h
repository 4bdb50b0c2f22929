/* The MIME parser: RFC 5322 messages with MIME bodies (RFC 2045, 2046,
 * 2231), parsed once at delivery or APPEND into a part tree that holds what
 * IMAP needs: every part's header and body byte ranges, line counts, the
 * Content-* fields, and the envelope of the message and of every attached
 * message/rfc822. mime_imap.h writes ENVELOPE and BODYSTRUCTURE from it;
 * mime_parts_serialize() stores the ranges for BODY[section].
 *
 * The parser is incremental: feed it the message in pieces of any size, it
 * never needs the whole message in memory, and the tree does not depend on
 * where the input was split. Offsets are byte offsets into the input as fed.
 *
 *   struct mime_parser *p = mime_parser_new(NULL);
 *   mime_parser_feed(p, data, len);		(any number of times)
 *   struct mime_message *msg;
 *   mime_parser_finish(&p, &msg);
 *   ... mime_bodystructure(msg, &out); mime_parts_serialize(msg, &blob);
 *   mime_message_free(&msg);
 *
 * Hostile or broken input never fails a message: each limit below degrades
 * the result (the rest is taken as the body of the last part) and sets a
 * flag. The semantics follow Dovecot's message parser, whose BODYSTRUCTURE
 * is the oracle of tests/unit/test_mime.c (see tests/data/mime/).
 *
 * Line ends: CRLF or a bare LF end a line. Sizes given to IMAP (BODYSTRUCTURE
 * body sizes) count a bare LF as CRLF, as a message sent over IMAP has CRLF
 * line ends; the byte ranges are raw offsets. A message stored with CRLF
 * line ends (SMTP DATA, or APPEND after normalising) has both the same.
 *
 * Cost: linear in the input. A line is compared with the open boundaries
 * only when it starts with "--", on at most MIME_BOUNDARY_MAX bytes each. */
#ifndef YUBIN_MIME_MIME_H
#define YUBIN_MIME_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

/* Default limits. Nesting and part counts are Dovecot's (lib-mail
 * message-parser.h), so that real mail parses the same as there: 100 levels
 * is far deeper than any mail program nests, and 10000 parts bound the tree
 * (a few hundred bytes each) and the BODYSTRUCTURE line. */
#define MIME_DEFAULT_MAX_DEPTH 100
#define MIME_DEFAULT_MAX_PARTS 10000
/* Header bytes of one part that are read for fields. Real headers are a few
 * KiB, long Received chains and DKIM a few tens; the rest of a larger header
 * still belongs to the header, only its fields are not looked at. */
#define MIME_DEFAULT_MAX_HEADER_SIZE (256 * 1024)
/* Fields per part header that are looked at. */
#define MIME_DEFAULT_MAX_HEADER_FIELDS 2000
/* A boundary may be 70 characters (RFC 2046 5.1.1); longer ones are cut to
 * this length, as Dovecot does, and since a delimiter line only has to
 * start with the boundary, they still match. */
#define MIME_BOUNDARY_MAX 80

struct mime_limits {
	unsigned int max_depth;		/* nesting of multipart and message/rfc822 */
	unsigned int max_parts;		/* parts in the whole message, root included */
	size_t max_header_size;		/* per part */
	unsigned int max_header_fields;	/* per part */
};

/* What was wrong with a part; mime_message_flags() or-s them all. */
enum mime_flag {
	MIME_FLAG_NO_HEADER_END = 1 << 0,	/* header ended without an empty line */
	MIME_FLAG_BAD_HEADER_LINE = 1 << 1,	/* a header line that is not a field */
	MIME_FLAG_HEADER_TRUNCATED = 1 << 2,	/* max_header_size / _fields reached */
	MIME_FLAG_BAD_CONTENT_TYPE = 1 << 3,	/* unparsable Content-Type or parameters */
	MIME_FLAG_NO_BOUNDARY = 1 << 4,		/* multipart without a usable boundary */
	MIME_FLAG_NO_END_BOUNDARY = 1 << 5,	/* multipart not closed by --boundary-- */
	MIME_FLAG_DEPTH_LIMIT = 1 << 6,		/* max_depth: body not parsed further */
	MIME_FLAG_PARTS_LIMIT = 1 << 7,		/* max_parts: later parts are body text */
	MIME_FLAG_BARE_LF = 1 << 8,		/* a line ends in LF without CR */
	MIME_FLAG_NUL = 1 << 9,			/* a NUL byte */
	MIME_FLAG_8BIT_HEADER = 1 << 10,	/* a header byte >= 0x80 */
};

/* The structure of a part, after defaults (RFC 2045 5.2: text/plain;
 * inside multipart/digest, message/rfc822). */
enum mime_kind {
	MIME_KIND_LEAF,		/* anything that is not one of these */
	MIME_KIND_TEXT,		/* text/x: has a line count */
	MIME_KIND_MULTIPART,	/* has children */
	MIME_KIND_MESSAGE,	/* message/rfc822: exactly one child, the message */
};

/* Content-Transfer-Encoding (RFC 2045 6). */
enum mime_cte {
	MIME_CTE_7BIT,		/* also when absent */
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,	/* an x-token or junk: cannot be decoded */
};

struct mime_range {
	uint64_t start;		/* byte offset into the message */
	uint64_t len;
};

struct mime_parser;
struct mime_message;
struct mime_part;

void mime_limits_default(struct mime_limits *limits_r);

/* limits may be NULL for the defaults; a zero field takes its default. */
struct mime_parser *mime_parser_new(const struct mime_limits *limits);
/* Consumes all of data[0..len). Never fails. */
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* Ends the input, frees the parser (*p becomes NULL) and gives the message.
 * Always succeeds. */
void mime_parser_finish(struct mime_parser **p, struct mime_message **msg_r);
/* Frees a parser without a result (an aborted delivery). */
void mime_parser_free(struct mime_parser **p);

/* Parses a message that is whole in memory. */
struct mime_message *mime_parse(const void *data, size_t len, const struct mime_limits *limits);
void mime_message_free(struct mime_message **msg);

uint64_t mime_message_size(const struct mime_message *msg);
/* The size with every bare LF counted as CRLF (RFC822.SIZE of a message
 * sent with CRLF line ends). */
uint64_t mime_message_crlf_size(const struct mime_message *msg);
unsigned int mime_message_flags(const struct mime_message *msg);
size_t mime_message_part_count(const struct mime_message *msg);

/* The tree. Parts belong to the message. */
const struct mime_part *mime_message_root(const struct mime_message *msg);
const struct mime_part *mime_part_first_child(const struct mime_part *part);
const struct mime_part *mime_part_next(const struct mime_part *part);
const struct mime_part *mime_part_parent(const struct mime_part *part);

enum mime_kind mime_part_kind(const struct mime_part *part);
unsigned int mime_part_flags(const struct mime_part *part);
/* The header, with the empty line that ends it, and the body. */
struct mime_range mime_part_header(const struct mime_part *part);
struct mime_range mime_part_body(const struct mime_part *part);
/* LFs in the body: the line count IMAP gives for text and message parts. */
uint64_t mime_part_lines(const struct mime_part *part);
/* Type and subtype as written (lower-case them to compare), after the
 * defaults: "text"/"plain", or "message"/"rfc822" in a digest. */
const char *mime_part_type(const struct mime_part *part);
const char *mime_part_subtype(const struct mime_part *part);
/* A Content-Type parameter, name ASCII case-insensitive, as IMAP shows it:
 * RFC 2231 continuations are joined, and an extended value keeps its
 * charset'language'%XX form under the name with a trailing "*" (use
 * mime_param_decode()). NULL if absent. */
const char *mime_part_param(const struct mime_part *part, const char *name);
/* The same for a Content-Disposition parameter; the disposition itself
 * ("attachment", "inline") or NULL. */
const char *mime_part_disposition(const struct mime_part *part);
const char *mime_part_disposition_param(const struct mime_part *part, const char *name);
enum mime_cte mime_part_cte(const struct mime_part *part);

/* The value of parameter name (e.g. "filename") in UTF-8: looks for
 * "name*" first (RFC 2231 charset'language'%XX, converted with iconv) and
 * then "name" (RFC 2047 encoded-words decoded, as mailers write those too).
 * Returns a new string or NULL. disposition chooses Content-Disposition's
 * parameters instead of Content-Type's. */
char *mime_param_decode(const struct mime_part *part, bool disposition, const char *name);

/* The header fields SEARCH and SORT use, from the top-level header, taken
 * once at parse time. Strings are UTF-8 (RFC 2047 decoded) and unfolded;
 * NULL when the field is absent. */
struct mime_search_fields {
	char *subject;
	char *from, *to, *cc, *bcc;	/* whole field, decoded */
	char *message_id, *in_reply_to, *references;
	/* Date: seconds since the epoch and the zone in minutes east of UTC;
	 * date_valid false when absent or unparsable (SORT then uses the
	 * internal date, RFC 5256 2.2). */
	int64_t date;
	int date_tz;
	bool date_valid;
	/* RFC 5256 SORT FROM/TO/CC: the local part of the first address,
	 * and RFC 5957 DISPLAYFROM/DISPLAYTO: its decoded display name, or
	 * local@domain when it has none. */
	char *sort_from, *sort_to, *sort_cc;
	char *display_from, *display_to;
};
const struct mime_search_fields *mime_message_search_fields(const struct mime_message *msg);

/* RFC 5322 3.3 date-time, with the obsolete forms of 4.3 and the usual
 * junk (missing day name or seconds, two-digit years, zone names, a
 * trailing comment). Returns 0 or -1. */
int mime_date_parse(const char *s, int64_t *time_r, int *tz_minutes_r);

/* ---- Part ranges in the database ----
 *
 * A compact serialisation of the tree's byte ranges (a few bytes a part),
 * stored with the message so that BODY[section] reads just those bytes of
 * the body file without parsing again. */

/* Appends the blob to out. Returns 0, or -1 if out's maximum was reached. */
int mime_parts_serialize(const struct mime_message *msg, struct buf *out);

struct mime_section {
	struct mime_range range;	/* the bytes to send */
	enum mime_cte cte;		/* the part's encoding, for BINARY */
	/* The range is one non-multipart part's body: BINARY may decode it. */
	bool leaf_body;
};

/* Looks up an RFC 3501 6.4.5 section: "" (the whole message), "HEADER",
 * "TEXT", "1", "1.2", "3.MIME", "2.HEADER", "2.TEXT", ... (ASCII case-
 * insensitive). For HEADER.FIELDS ask for "HEADER" and filter the fields.
 * A non-multipart message has part 1, its body, whose MIME header is the
 * message header; a message/rfc822 part has its own HEADER and TEXT and
 * numbers the parts of the message inside. Returns 0, or -1 for a section
 * the message does not have (the server answers with an empty string) or a
 * damaged blob. */
int mime_parts_lookup(const void *blob, size_t len, const char *section,
		      struct mime_section *section_r);

#endif
