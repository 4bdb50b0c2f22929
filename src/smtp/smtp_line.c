/* The SMTP command line reader; see smtp_line.h. */
#include "smtp/smtp_line.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

enum smtp_line_result smtp_line_read(struct evbuffer *in, size_t max,
				     bool *discarding, char **line_r)
{
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		size_t have = evbuffer_get_length(in);
		if (have > max) {
			/* Drop what we have; the rest goes when the line ends. */
			evbuffer_drain(in, have);
			*discarding = true;
		}
		return SMTP_LINE_MORE;
	}
	size_t len = (size_t)eol.pos;
	if (*discarding || len + 1 > max) {
		evbuffer_drain(in, len + 1);
		*discarding = false;
		return SMTP_LINE_TOO_LONG;
	}
	char *line = xmalloc(len + 1);
	evbuffer_remove(in, line, len + 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL) {
		free(line);
		return SMTP_LINE_BAD;
	}
	*line_r = line;
	return SMTP_LINE_OK;
}
