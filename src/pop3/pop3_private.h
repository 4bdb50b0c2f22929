/* Internals of the POP3 server shared by its files. */
#ifndef YUBIN_POP3_PRIVATE_H
#define YUBIN_POP3_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "auth/sasl.h"

struct buf;
struct evbuffer;

/* ---- command lines (pop3_parse.c) ---- */

/* RFC 2449 4: a command line is at most 255 octets, CRLF included. */
#define POP3_LINE_MAX 255
/* RFC 5034 4: SASL responses may be as long as the mechanism needs (and
 * an AUTH line with an initial response is taken up to the same size):
 * the base64 of the largest response we take, plus the command. */
#define POP3_SASL_LINE_MAX ((SASL_RESPONSE_MAX + 2) / 3 * 4 + 64)

enum pop3_line_result {
	POP3_LINE_BAD = -2,	/* NUL or a bare CR in it; consumed */
	POP3_LINE_TOO_LONG = -1,/* over the limit; consumed up to its LF */
	POP3_LINE_MORE = 0,	/* no whole line yet */
	POP3_LINE_OK = 1,	/* *line_r holds it */
};

/* Takes the next command line from in, as smtp_line_read() does: a line
 * ends at LF, a CR right before it is dropped; NUL or any other CR makes
 * it bad. The limit is POP3_LINE_MAX, or POP3_SASL_LINE_MAX for a
 * response in a SASL exchange (sasl) or an "AUTH " line. An overlong line
 * is dropped as it arrives: *discarding (false at the start) says the rest
 * of one is being dropped. Returns POP3_LINE_OK with *line_r, a new string
 * without the line end that the caller wipes and frees. */
enum pop3_line_result pop3_line_read(struct evbuffer *in, bool sasl, bool *discarding,
				     char **line_r);
/* Ends the keyword at the first space (RFC 1939 3: keyword and arguments
 * are separated by a single space) and returns the argument text, empty
 * when there is none. */
char *pop3_line_split(char *line);
/* Drops trailing blanks from arg, in place. */
void pop3_trim_blanks(char *arg);
/* Splits arg in place into at most max words separated by blanks. Returns
 * the count, or -1 when there are more. */
int pop3_split_args(char *arg, char **argv, int max);
/* A message number (RFC 1939 3: msg): 0 with *n_r, or -1 when arg is not
 * a decimal number of at most ten digits. Range checks are the caller's. */
int pop3_msg_number(const char *arg, uint64_t *n_r);

/* ---- RETR and TOP output (pop3_filter.c) ---- */

/* Turns a stored message into the lines RETR and TOP send (RFC 1939 3):
 * every line that starts with "." gets one more, and for TOP the output
 * stops after the header, the empty line that ends it and the first
 * `lines` lines of the body. Incremental: the message may be fed in pieces
 * of any size, one byte at a time included. The bytes are otherwise passed
 * on as they are (8-bit included). */
struct pop3_filter {
	bool top;		/* cut after the header and `lines_left` lines */
	uint64_t lines_left;
	bool in_body;		/* the header's empty line has been passed */
	bool bol;		/* the next byte starts a line */
	bool line_blank;	/* the line so far holds nothing but CR */
	bool done;		/* TOP's cut was reached: feed no more */
};

void pop3_filter_init(struct pop3_filter *f, bool top, uint64_t lines);
/* Appends the output for in[0..len) to out (a buffer without a maximum).
 * Returns how many input bytes were used: len, or less once f->done. */
size_t pop3_filter_feed(struct pop3_filter *f, const char *in, size_t len, struct buf *out);
/* Appends the end of the multi-line response: a CRLF when the last line
 * was not ended, then ".\r\n". */
void pop3_filter_finish(struct pop3_filter *f, struct buf *out);

#endif
