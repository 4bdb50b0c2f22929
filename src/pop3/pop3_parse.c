/* POP3 command lines (RFC 1939 3, RFC 2449 4, RFC 5034 4): the reader that
 * takes one line at a time out of a session's input, the split of a line
 * into keyword and arguments, and message numbers. No session state here,
 * so the fuzz target (fuzz/fuzz_pop3.c) runs exactly what sessions run. */
#include "pop3/pop3_private.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

enum pop3_line_result pop3_line_read(struct evbuffer *in, bool sasl, bool *discarding,
				     char **line_r)
{
	/* SASL responses and AUTH lines may be long (RFC 5034 4). */
	size_t max = POP3_LINE_MAX;
	unsigned char head[5];
	if (sasl || (evbuffer_copyout(in, head, 5) == 5 && str_nieq((char *)head, "AUTH ", 5)))
		max = POP3_SASL_LINE_MAX;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		size_t have = evbuffer_get_length(in);
		if (have > max) {
			/* Drop what we have; the rest goes when the line ends. */
			evbuffer_drain(in, have);
			*discarding = true;
		}
		return POP3_LINE_MORE;
	}
	size_t len = (size_t)eol.pos;
	if (*discarding || len + 1 > max) {
		evbuffer_drain(in, len + 1);
		*discarding = false;
		return POP3_LINE_TOO_LONG;
	}
	char *line = xmalloc(len + 1);
	evbuffer_remove(in, line, len + 1);
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL) {
		mem_wipe(line, len);
		free(line);
		return POP3_LINE_BAD;
	}
	*line_r = line;
	return POP3_LINE_OK;
}

char *pop3_line_split(char *line)
{
	char *arg = line + strcspn(line, " ");
	if (*arg == ' ')
		*arg++ = '\0';
	return arg;
}

void pop3_trim_blanks(char *arg)
{
	size_t n = strlen(arg);
	while (n > 0 && arg[n - 1] == ' ')
		arg[--n] = '\0';
}

int pop3_split_args(char *arg, char **argv, int max)
{
	int n = 0;
	char *p = arg;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		argv[n++] = p;
		p += strcspn(p, " ");
		if (*p)
			*p++ = '\0';
	}
}

int pop3_msg_number(const char *arg, uint64_t *n_r)
{
	/* RFC 1939 3: a message number is a decimal number; ten digits hold
	 * any count we could have, and keep the conversion far from
	 * overflow. */
	if (strlen(arg) > 10 || str_to_u64(arg, n_r) < 0)
		return -1;
	return 0;
}
