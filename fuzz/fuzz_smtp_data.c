/* libFuzzer target: the DATA-phase parser. The first byte picks the policy
 * and how the input is split; the invariants checked are those that keep
 * smuggling out: the end is found only right after CR LF "." CR LF, and
 * splitting the input never changes the result. */
#include "smtp/smtp_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool normalize = data[0] & 1;
	size_t step = 1 + (data[0] >> 1);
	const char *in = (const char *)data + 1;
	size_t len = size - 1;

	struct smtp_data_parser a, b;
	struct buf oa, ob;
	buf_init(&oa, 0);
	buf_init(&ob, 0);
	smtp_data_init(&a, normalize);
	smtp_data_init(&b, normalize);
	size_t ua = smtp_data_feed(&a, in, len, &oa);
	size_t ub = 0;
	while (ub < len && !smtp_data_done(&b)) {
		size_t n = len - ub < step ? len - ub : step;
		ub += smtp_data_feed(&b, in + ub, n, &ob);
	}
	if (ua != ub || smtp_data_done(&a) != smtp_data_done(&b) || oa.len != ob.len ||
	    (oa.len && memcmp(oa.data, ob.data, oa.len) != 0))
		abort();
	if (smtp_data_done(&a)) {
		/* The end is ".\r\n" at the start of the data or after "\r\n". */
		if (ua < 3 || memcmp(in + ua - 3, ".\r\n", 3) != 0)
			abort();
		if (ua > 3 && (ua < 5 || memcmp(in + ua - 5, "\r\n", 2) != 0))
			abort();
	}
	if (!normalize && oa.len > 0) {
		/* Without normalising, output CR only ever comes with its LF. */
		for (size_t i = 0; i < oa.len; i++) {
			if (oa.data[i] == '\r' && (i + 1 >= oa.len || oa.data[i + 1] != '\n'))
				abort();
			if (oa.data[i] == '\n' && (i == 0 || oa.data[i - 1] != '\r'))
				abort();
		}
	}
	buf_deinit(&oa);
	buf_deinit(&ob);
	return 0;
}
