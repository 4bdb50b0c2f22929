/* Internals of the POP3 server shared by its files. */
#ifndef YUBIN_POP3_PRIVATE_H
#define YUBIN_POP3_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

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
