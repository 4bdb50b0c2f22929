/* libFuzzer target: the IMAP command parser. The input is parsed whole and
 * in chunks of a size taken from its first byte; both must give the same
 * events (commands, continuations, errors), and nothing may crash or leak. */
#include "core/buf.h"
#include "imap/imap_parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render(struct buf *b, const struct imap_arg *a, size_t n, int depth)
{
	for (size_t i = 0; i < n; i++) {
		buf_printf(b, "%d:%d:%zu:", depth, (int)a[i].type, a[i].len);
		if (a[i].type == IMAP_ARG_LIST)
			render(b, a[i].list, a[i].len, depth + 1);
		else
			buf_append(b, a[i].str, a[i].len);
	}
}

static void run(const char *in, size_t len, size_t step, bool minus, struct buf *out)
{
	/* minus: LITERAL- scaled down, "{n+}" up to 100 octets */
	const struct imap_parser_limits lim = {
		.line_max = 1000, .literal_max = 300, .args_max = 100, .depth_max = 8,
		.nonsync_max = minus ? 100 : 0,
	};
	struct imap_parser *p = imap_parser_new(&lim);
	size_t pos = 0;
	while (pos < len) {
		size_t used = 0, n = len - pos < step ? len - pos : step;
		enum imap_parse_result r = imap_parser_feed(p, in + pos, n, &used);
		pos += used;
		buf_printf(out, "[%d]", (int)r);
		if (r == IMAP_PARSE_COMMAND) {
			const struct imap_command *c = imap_parser_command(p);
			buf_printf(out, "%s %s ", c->tag, c->name);
			render(out, c->args, c->argc, 0);
		} else if (r == IMAP_PARSE_ERROR || r == IMAP_PARSE_LITERAL_TOO_BIG ||
			   r == IMAP_PARSE_NONSYNC_TOO_BIG) {
			buf_printf(out, "%s %s", imap_parser_error_tag(p), imap_parser_error(p));
		}
		if (r == IMAP_PARSE_NEED_MORE && used == 0 && n > 0)
			abort();	/* no progress */
	}
	imap_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = 1 + data[0] % 16;
	bool minus = data[0] & 0x10;
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	run((const char *)data + 1, size - 1, size, minus, &a);
	run((const char *)data + 1, size - 1, step, minus, &b);
	/* NEED_MORE events depend on the split; compare the rest. */
	struct buf fa, fb;
	buf_init(&fa, 0);
	buf_init(&fb, 0);
	for (int k = 0; k < 2; k++) {
		struct buf *src = k ? &b : &a, *dst = k ? &fb : &fa;
		const char *s = src->data ? src->data : "";
		size_t n = src->len;
		for (size_t i = 0; i < n;) {
			if (i + 3 <= n && memcmp(s + i, "[0]", 3) == 0) {
				i += 3;
				continue;
			}
			buf_append_c(dst, s[i++]);
		}
	}
	if (fa.len != fb.len || (fa.len && memcmp(fa.data, fb.data, fa.len) != 0))
		abort();
	buf_deinit(&a);
	buf_deinit(&b);
	buf_deinit(&fa);
	buf_deinit(&fb);
	return 0;
}
