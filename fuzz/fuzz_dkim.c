/* libFuzzer target: DKIM verification end to end, and the canonicalisers.
 * Input: the first line is the TXT record every key question gets (an
 * empty line: a DNS failure), the rest the message. Checked: the message
 * fed in one piece and in two give the same results; at most
 * DKIM_MAX_SIGS results and as many questions; the relaxed body never
 * keeps a tab, two spaces or white space before a line end, and both
 * bodies end in CRLF (simple always, relaxed unless empty); the tag parser
 * never returns a value outside its input. */
#include "core/buf.h"
#include "core/util.h"
#include "mailauth/dkim.h"
#include "mailauth/dkim_private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t run(const char *rec, size_t rec_len, const char *msg, size_t len, size_t split,
		  enum dkim_result *res)
{
	struct dkim_verify *v = dkim_verify_new();
	dkim_verify_set_now(v, 1700000000);
	dkim_verify_feed(v, msg, split);
	dkim_verify_feed(v, msg + split, len - split);
	dkim_verify_end(v);
	struct ma_query q;
	struct ma_record r = { .text = rec, .len = rec_len };
	struct ma_answer a = { .status = rec_len ? MA_DNS_OK : MA_DNS_TEMPFAIL,
			       .count = rec_len ? 1 : 0, .records = &r };
	int steps = 0;
	bool first = true;
	while (dkim_verify_step(v, first ? NULL : &a, &q) == MA_STEP_QUERY) {
		first = false;
		if (++steps > DKIM_MAX_SIGS || q.type != MA_DNS_TXT)
			abort();
	}
	const struct dkim_sig_result *out;
	size_t n = dkim_verify_results(v, &out);
	if (n > DKIM_MAX_SIGS)
		abort();
	for (size_t i = 0; i < n; i++)
		res[i] = out[i].result;
	dkim_verify_free(&v);
	return n;
}

static void check_body(enum dkim_canon canon, const char *p, size_t len)
{
	struct buf out;
	struct dkim_body b;
	buf_init(&out, 0);
	dkim_body_trace = &out;
	dkim_body_init(&b, canon, NULL, false, 0);
	dkim_body_feed(&b, p, len);
	dkim_body_end(&b);
	dkim_body_trace = NULL;
	const char *o = out.data ? out.data : "";	/* NULL while nothing came */
	if (out.len > 0 && (out.len < 2 || memcmp(o + out.len - 2, "\r\n", 2) != 0))
		abort();
	if (canon == DKIM_CANON_SIMPLE && out.len == 0)
		abort();
	if (canon == DKIM_CANON_RELAXED &&
	    (memchr(o, '\t', out.len) != NULL || memmem(o, out.len, "  ", 2) ||
	     memmem(o, out.len, " \r\n", 3)))
		abort();
	buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* exact-size copies, so a read past the end is caught */
	const char *nl = memchr(data, '\n', size);
	size_t rec_len = nl != NULL ? (size_t)(nl - (const char *)data) : size;
	char *rec = xmalloc(rec_len + 1);
	memcpy(rec, data, rec_len);
	rec[rec_len] = '\0';
	size_t len = nl != NULL ? size - rec_len - 1 : 0;
	char *msg = xmalloc(len ? len : 1);
	memcpy(msg, nl != NULL ? nl + 1 : "", len);

	enum dkim_result r1[DKIM_MAX_SIGS], r2[DKIM_MAX_SIGS];
	size_t n1 = run(rec, rec_len, msg, len, len, r1);
	size_t n2 = run(rec, rec_len, msg, len, len / 2, r2);
	if (n1 != n2 || memcmp(r1, r2, n1 * sizeof(r1[0])) != 0)
		abort();

	check_body(DKIM_CANON_SIMPLE, msg, len);
	check_body(DKIM_CANON_RELAXED, msg, len);

	struct dkim_tags tags;
	const char *error;
	if (dkim_tags_parse(rec, rec_len, &tags, &error) == 0) {
		for (size_t i = 0; i < tags.count; i++) {
			if (tags.tag[i].value < rec ||
			    tags.tag[i].value + tags.tag[i].value_len > rec + rec_len)
				abort();
		}
	}
	free(rec);
	free(msg);
	return 0;
}
