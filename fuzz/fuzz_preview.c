/* libFuzzer target: the RFC 8970 preview of a text part (store_preview_text),
 * plain and HTML, on valid UTF-8 as charset_to_utf8 hands it over. Checked:
 * the result is valid UTF-8 of at most STORE_PREVIEW_CHARS characters, with
 * no control character, no space at either end and no two spaces in a row. */
#include "store/store_private.h"
#include "core/buf.h"
#include "mime/decode.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *p)
{
	size_t chars = 0, n = strlen(p);
	if (n > 0 && (p[0] == ' ' || p[n - 1] == ' '))
		abort();
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f)
			abort();
		if (c == ' ' && p[i + 1] == ' ')
			abort();
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
			     (c & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || i + len > n)
			abort();
		for (size_t k = 1; k < len; k++) {
			if (((unsigned char)p[i + k] & 0xc0) != 0x80)
				abort();
		}
		i += len;
		chars++;
	}
	if (chars > STORE_PREVIEW_CHARS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* The first byte chooses plain or HTML; the rest is made valid
	 * UTF-8 the way delivery makes it. */
	struct buf utf8;
	buf_init(&utf8, 0);
	(void)charset_to_utf8("utf-8", data + 1, size - 1, &utf8);
	/* An exact-size copy, so a read past the end is caught. */
	char *in = malloc(utf8.len ? utf8.len : 1);
	if (utf8.len)
		memcpy(in, utf8.data, utf8.len);
	char *out = store_preview_text(data[0] & 1, in, utf8.len);
	check(out);
	free(out);
	free(in);
	buf_deinit(&utf8);
	return 0;
}
