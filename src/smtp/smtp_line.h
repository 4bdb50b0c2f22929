/* The SMTP command line reader (RFC 5321 2.3.8, 4.5.3.1.4): takes one
 * command line at a time out of a session's input buffer.
 *
 * A line ends at LF; a CR right before it is dropped, so "CMD\n" reads like
 * "CMD\r\n". A line longer than max (counting its LF) is refused whole: what
 * has arrived is dropped at once, so a client cannot make us hold more than
 * max bytes, and the rest is dropped up to its LF. NUL, or a CR anywhere
 * but before the LF, makes the line bad. */
#ifndef YUBIN_SMTP_LINE_H
#define YUBIN_SMTP_LINE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum smtp_line_result {
	SMTP_LINE_BAD = -2,	/* NUL or a bare CR in it; consumed */
	SMTP_LINE_TOO_LONG = -1,/* over max; consumed up to its LF */
	SMTP_LINE_MORE = 0,	/* no whole line yet */
	SMTP_LINE_OK = 1,	/* *line_r holds it */
};

/* Takes the next command line from in. *discarding is the reader's state
 * between calls (false at the start of a session): true while the rest of
 * an overlong line is being dropped. Returns SMTP_LINE_OK with *line_r, a
 * new NUL-terminated string without the line end that the caller frees;
 * SMTP_LINE_MORE when more input is needed; SMTP_LINE_TOO_LONG or
 * SMTP_LINE_BAD after consuming a line the caller must refuse. */
enum smtp_line_result smtp_line_read(struct evbuffer *in, size_t max,
				     bool *discarding, char **line_r);

#endif
