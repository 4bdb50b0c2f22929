/* libFuzzer target: the POP3 command parser (src/pop3/pop3_parse.c), run as
 * a session runs it: bytes arrive in pieces, lines are taken out with
 * pop3_line_read() (long ones allowed inside a SASL exchange and for AUTH),
 * split into keyword and argument, the argument into words, and words
 * read as message numbers.
 *
 * The first byte gives the piece size (1-16) and whether a SASL exchange
 * is in progress (bit 4); the rest is the stream. Checked:
 *   - fed whole or in pieces, the same lines and results come out;
 *   - a line holds no NUL, CR or LF and fits its limit; the reader never
 *     holds more than the limit plus one piece of an unfinished line;
 *   - the keyword holds no space; the words hold no space, are not empty
 *     and are at most as many as asked for; a message number is what
 *     strtoull reads from at most ten digits. */
#include "pop3/pop3_private.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(char *line, struct buf *out)
{
	char *arg = pop3_line_split(line);
	if (strchr(line, ' ') != NULL)
		abort();
	buf_printf(out, "[%s]", line);
	if (!str_ieq(line, "PASS"))
		pop3_trim_blanks(arg);
	size_t alen = strlen(arg);
	if (!str_ieq(line, "PASS") && alen > 0 && arg[alen - 1] == ' ')
		abort();
	char *argv[2];
	int argc = pop3_split_args(arg, argv, 2);
	if (argc < -1 || argc > 2)
		abort();
	buf_printf(out, "%d", argc);
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '\0' || strchr(argv[i], ' ') != NULL)
			abort();
		uint64_t n;
		if (pop3_msg_number(argv[i], &n) == 0) {
			if (strlen(argv[i]) > 10 || strspn(argv[i], "0123456789") != strlen(argv[i]) ||
			    n != strtoull(argv[i], NULL, 10))
				abort();
			buf_printf(out, " #%llu", (unsigned long long)n);
		} else {
			buf_printf(out, " <%s>", argv[i]);
		}
	}
}

static void run(const char *in, size_t len, size_t step, bool sasl, struct buf *out)
{
	struct evbuffer *eb = evbuffer_new();
	bool discarding = false;
	size_t pos = 0;
	for (;;) {
		char *line = NULL;
		enum pop3_line_result r = pop3_line_read(eb, sasl, &discarding, &line);
		if (r == POP3_LINE_MORE) {
			if (evbuffer_get_length(eb) > POP3_SASL_LINE_MAX + step)
				abort();
			if (pos >= len)
				break;
			size_t n = len - pos < step ? len - pos : step;
			evbuffer_add(eb, in + pos, n);
			pos += n;
			continue;
		}
		buf_printf(out, "%d:", (int)r);
		if (r == POP3_LINE_OK) {
			size_t l = strlen(line);
			size_t max = sasl || str_nieq(line, "AUTH ", 5) ? POP3_SASL_LINE_MAX :
				     POP3_LINE_MAX;
			if (l + 1 > max || strchr(line, '\r') || strchr(line, '\n'))
				abort();
			parse(line, out);
			mem_wipe(line, l);
			free(line);
		} else if (line != NULL) {
			abort();
		}
		buf_append_c(out, '\n');
	}
	evbuffer_free(eb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = 1 + (data[0] & 15);
	bool sasl = data[0] & 16;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	run(in, len, len ? len : 1, sasl, &a);
	run(in, len, step, sasl, &b);
	if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_deinit(&a);
	buf_deinit(&b);
	return 0;
}
