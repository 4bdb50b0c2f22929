/* RETR and TOP output: byte-stuffing and TOP's cut (RFC 1939 3, 7). */
#include "pop3/pop3_private.h"
#include "core/buf.h"

#include <string.h>

void pop3_filter_init(struct pop3_filter *f, bool top, uint64_t lines)
{
	memset(f, 0, sizeof(*f));
	f->top = top;
	f->lines_left = lines;
	f->bol = true;
	f->line_blank = true;
}

/* A line ended (its LF was just passed on). Returns true when TOP has
 * sent all it should. */
static bool line_end(struct pop3_filter *f)
{
	bool blank = f->line_blank;
	f->bol = true;
	f->line_blank = true;
	if (!f->top)
		return false;
	if (!f->in_body) {
		/* RFC 1939 7: the header, the blank line, then n body lines. */
		if (!blank)
			return false;
		f->in_body = true;
		return f->lines_left == 0;
	}
	return --f->lines_left == 0;
}

size_t pop3_filter_feed(struct pop3_filter *f, const char *in, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len && !f->done) {
		if (f->bol) {
			/* RFC 1939 3: a line starting with "." is stuffed
			 * with one more, so it cannot end the response. */
			if (in[i] == '.')
				buf_append_c(out, '.');
			f->bol = false;
		}
		const char *nl = memchr(in + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - in) + 1 : len;
		size_t text_end = nl ? end - 1 : end;
		for (size_t k = i; f->line_blank && k < text_end; k++) {
			if (in[k] != '\r')
				f->line_blank = false;
		}
		buf_append(out, in + i, end - i);
		i = end;
		if (nl != NULL && line_end(f))
			f->done = true;
	}
	return i;
}

void pop3_filter_finish(struct pop3_filter *f, struct buf *out)
{
	if (!f->bol)
		buf_append(out, "\r\n", 2);
	buf_append(out, ".\r\n", 3);
}
