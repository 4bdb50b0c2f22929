/* libFuzzer target: the SMTP command line reader (src/smtp/smtp_line.c) and
 * the MAIL/RCPT argument grammar behind it (src/smtp/address.c), as the
 * session uses them: bytes arrive in pieces into an evbuffer, lines are
 * taken out one at a time, the verb is split off at the first space and
 * the argument of "MAIL FROM:" and "RCPT TO:" goes to smtp_path_parse.
 *
 * The first byte gives the piece size (1-16) and a small or large line
 * limit; the rest is the stream. Checked:
 *   - fed whole or in pieces, the reader gives the same sequence of lines
 *     and results (the split is the network's, it must not matter);
 *   - a line given back holds no NUL, CR or LF and is shorter than the
 *     limit; the reader never holds more than the limit plus one piece of
 *     an unfinished line (an overlong line is dropped as it arrives);
 *   - no byte after an overlong or bad line's LF is lost or taken into it
 *     (the sequence check above, plus: every OK line is found in the input
 *     at a line start);
 *   - the path parser accepts or refuses without leaking. */
#include "smtp/smtp_line.h"
#include "smtp/address.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_args(const char *line)
{
	static const struct {
		const char *prefix;
		unsigned flags;
	} kinds[] = {
		{ "MAIL FROM:", ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8 },
		{ "RCPT TO:", ADDRESS_ALLOW_UTF8 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		size_t n = strlen(kinds[i].prefix);
		if (!str_nieq(line, kinds[i].prefix, n))
			continue;
		struct smtp_path_args args;
		const char *error = NULL;
		const char *arg = line + n;
		if (smtp_path_parse(arg, strlen(arg), kinds[i].flags, &args, &error) == 0)
			smtp_path_args_deinit(&args);
		else if (error == NULL)
			abort();
	}
}

/* Reads every line of in[0..len) fed step bytes at a time; the results go
 * to out as "result:line\n". */
static void run(const char *in, size_t len, size_t step, size_t max, struct buf *out)
{
	struct evbuffer *eb = evbuffer_new();
	bool discarding = false;
	size_t pos = 0;
	for (;;) {
		char *line = NULL;
		enum smtp_line_result r = smtp_line_read(eb, max, &discarding, &line);
		if (r == SMTP_LINE_MORE) {
			if (evbuffer_get_length(eb) > max + step)
				abort();	/* held more than the limit */
			if (pos >= len)
				break;
			size_t n = len - pos < step ? len - pos : step;
			evbuffer_add(eb, in + pos, n);
			pos += n;
			continue;
		}
		buf_printf(out, "%d:", (int)r);
		if (r == SMTP_LINE_OK) {
			size_t l = strlen(line);
			if (l + 1 > max || strchr(line, '\r') || strchr(line, '\n'))
				abort();
			/* It is in the input, right at a line start. */
			bool found = false;
			for (size_t i = 0; i + l <= len && !found; i++) {
				if ((i == 0 || in[i - 1] == '\n') && memcmp(in + i, line, l) == 0)
					found = true;
			}
			if (!found)
				abort();
			buf_append(out, line, l);
			parse_args(line);
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
	size_t max = (data[0] & 16) ? 512 : 32;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	run(in, len, len ? len : 1, max, &a);
	run(in, len, step, max, &b);
	/* Fed whole, a line over the limit can only be seen whole: both ways
	 * it is TOO_LONG, once. */
	if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_deinit(&a);
	buf_deinit(&b);
	return 0;
}
