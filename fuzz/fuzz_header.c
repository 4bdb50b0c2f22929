/* libFuzzer target: the header helpers on a raw message. Checked: every
 * slice lies inside the header block, header_next() always moves forward,
 * lookups agree with the iteration, and a decoded value never carries a
 * line break (nothing can smuggle one through RFC 2047). */
#include "mime/header.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decoded(const char *value)
{
	char *d = header_decode_2047(value);
	if (strchr(d, '\r') != NULL || strchr(d, '\n') != NULL)
		abort();
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so a read past len is caught. */
	char *msg = xmalloc(size ? size : 1);
	memcpy(msg, data, size);
	size_t block = header_block_len(msg, size);
	if (block > size)
		abort();

	static const char *const names[] = { "Subject", "From", "Received" };
	size_t counts[ARRAY_SIZE(names)] = { 0 };
	struct header_field f;
	size_t pos = 0;
	int r;
	while ((r = header_next(msg, block, &pos, &f)) != 0) {
		if (pos > block)
			abort();
		if (r < 0)
			continue;
		if (r != 1 || f.name_len == 0 || f.name < msg || f.name + f.name_len > f.value ||
		    f.value + f.value_len > msg + block || memchr(f.name, ':', f.name_len) != NULL)
			abort();
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			if (f.name_len == strlen(names[i]) && str_nieq(f.name, names[i], f.name_len))
				counts[i]++;
		}
		char *v = header_unfold(f.value, f.value_len);
		if (strchr(v, '\r') != NULL || strchr(v, '\n') != NULL)
			abort();
		check_decoded(v);
		free(v);
	}
	/* Again at the end: stays at the end. */
	size_t end = pos;
	if (header_next(msg, block, &pos, &f) != 0 || pos != end)
		abort();

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (header_count(msg, size, names[i]) != counts[i])
			abort();
		char *v = header_get(msg, size, names[i]);
		if ((v != NULL) != (counts[i] > 0))
			abort();
		free(v);
	}

	/* The decoder on the whole input as one string. */
	char *s = xstrndup(msg, size);
	char *d = header_decode_2047(s);
	free(d);
	free(s);
	free(msg);
	return 0;
}
