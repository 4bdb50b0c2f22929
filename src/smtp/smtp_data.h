/* The DATA phase of SMTP (RFC 5321 sections 4.1.1.4 and 4.5.2): finds the
 * end of the mail data and removes dot-stuffing, byte by byte, so input may
 * arrive split anywhere.
 *
 * Only CR LF "." CR LF ends the data. A line starts only after CR LF: a bare
 * LF or bare CR never starts one, so "\n.\r\n" and "\r.\r\n" inside a message
 * are content, never the end (the "SMTP smuggling" attack). Bare CR, bare LF
 * and NUL are counted for the caller's policy; with normalize, bare CR and
 * bare LF are written out as CR LF and NUL is dropped. */
#ifndef YUBIN_SMTP_DATA_H
#define YUBIN_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include "core/buf.h"

enum smtp_data_state {
	SMTP_DATA_BOL,		/* at the start of a line */
	SMTP_DATA_DOT,		/* a "." at the start of a line */
	SMTP_DATA_DOT_CR,	/* "." CR at the start of a line */
	SMTP_DATA_TEXT,		/* inside a line */
	SMTP_DATA_CR,		/* CR inside a line */
	SMTP_DATA_DONE,
};

struct smtp_data_parser {
	enum smtp_data_state state;
	bool normalize;
	size_t bare_cr;		/* bare CR seen */
	size_t bare_lf;		/* bare LF seen */
	size_t nul;		/* NUL bytes seen */
};

void smtp_data_init(struct smtp_data_parser *p, bool normalize);

/* Consumes input up to and including the end-of-data line, appending the
 * message bytes to out (which the caller empties as it likes). Returns the
 * number of bytes consumed; when the end was found, p->state is
 * SMTP_DATA_DONE and the rest of in belongs to the next command. */
size_t smtp_data_feed(struct smtp_data_parser *p, const char *in, size_t len,
		      struct buf *out);

static inline bool smtp_data_done(const struct smtp_data_parser *p)
{
	return p->state == SMTP_DATA_DONE;
}

#endif
