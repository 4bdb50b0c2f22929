/* libFuzzer target: the MIME parser and its IMAP outputs. The first three
 * bytes choose where the input is split (two cuts) and whether small limits
 * are used; the rest is the message. Checked: a split parse gives the same
 * tree and outputs as a whole one, every range lies inside the message and
 * inside its parent, section lookups stay inside the message, and the
 * decoders give the same output whole and split. */
#include "mime/mime.h"
#include "mime/mime_imap.h"
#include "mime/decode.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void describe(const struct mime_message *msg, struct buf *out)
{
	if (mime_envelope(msg, out) < 0 || mime_body(msg, out) < 0 ||
	    mime_bodystructure(msg, out) < 0 || mime_parts_serialize(msg, out) < 0)
		abort();
	buf_printf(out, "|%x|%zu|%llu", mime_message_flags(msg), mime_message_part_count(msg),
		   (unsigned long long)mime_message_crlf_size(msg));
	const struct mime_search_fields *sf = mime_message_search_fields(msg);
	buf_printf(out, "|%s|%s|%d|%lld", sf->subject ? sf->subject : "-",
		   sf->sort_from ? sf->sort_from : "-", sf->date_valid, (long long)sf->date);
}

static void check_tree(const struct mime_message *msg)
{
	uint64_t size = mime_message_size(msg);
	const struct mime_part *part = mime_message_root(msg);
	size_t seen = 0;
	while (part != NULL) {
		seen++;
		struct mime_range h = mime_part_header(part), b = mime_part_body(part);
		if (h.start + h.len != b.start || b.start + b.len > size)
			abort();
		const struct mime_part *par = mime_part_parent(part);
		if (par != NULL) {
			struct mime_range pb = mime_part_body(par);
			if (h.start < pb.start || b.start + b.len > pb.start + pb.len)
				abort();
		}
		if (mime_part_lines(part) > b.len)
			abort();
		(void)mime_part_type(part);
		(void)mime_part_subtype(part);
		(void)mime_part_cte(part);
		free(mime_param_decode(part, true, "filename"));
		free(mime_param_decode(part, false, "name"));
		if (mime_part_first_child(part) != NULL) {
			part = mime_part_first_child(part);
			continue;
		}
		while (part != NULL && mime_part_next(part) == NULL)
			part = mime_part_parent(part);
		if (part != NULL)
			part = mime_part_next(part);
	}
	if (seen != mime_message_part_count(msg))
		abort();

	struct buf blob;
	buf_init(&blob, 0);
	mime_parts_serialize(msg, &blob);
	static const char *const sections[] = {
		"", "HEADER", "TEXT", "1", "1.MIME", "1.1", "1.2", "2", "2.HEADER", "2.TEXT",
		"2.1", "1.1.1", "3.2.1.MIME", "1.1.1.1.1.1",
	};
	for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
		struct mime_section s;
		if (mime_parts_lookup(blob.data, blob.len, sections[i], &s) == 0 &&
		    (s.range.start > size || s.range.len > size - s.range.start))
			abort();
	}
	/* A damaged blob is refused or read inside its bounds. */
	for (size_t cut = 0; cut < blob.len; cut += 1 + blob.len / 8) {
		struct mime_section s;
		(void)mime_parts_lookup(blob.data, cut, "1.2", &s);
	}
	buf_deinit(&blob);
}

static void check_decoders(const char *d, size_t n, size_t cut)
{
	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	decode_base64(d, n, &a);
	struct base64_decoder bd;
	base64_decoder_init(&bd);
	base64_decode_more(&bd, d, cut, &b);
	base64_decode_more(&bd, d + cut, n - cut, &b);
	base64_decode_finish(&bd, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_reset(&a);
	buf_reset(&b);
	decode_qp(d, n, &a);
	struct qp_decoder *qd = xmalloc(sizeof(*qd));
	qp_decoder_init(qd);
	qp_decode_more(qd, d, cut, &b);
	qp_decode_more(qd, d + cut, n - cut, &b);
	qp_decode_finish(qd, &b);
	free(qd);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_reset(&a);
	charset_to_utf8("utf-8", d, n, &a);
	buf_deinit(&a);
	buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t mode = data[2];
	size_t n = size - 3;
	/* An exact-size copy, so a read past the end is caught. */
	char *msg = xmalloc(n ? n : 1);
	memcpy(msg, data + 3, n);
	size_t cut1 = n ? data[0] % (n + 1) : 0;
	size_t cut2 = n ? (cut1 + data[1] * 7u) % (n + 1) : 0;
	if (cut2 < cut1) {
		size_t t = cut1;
		cut1 = cut2;
		cut2 = t;
	}
	struct mime_limits small = { 4, 12, 200, 6 };
	const struct mime_limits *lim = (mode & 1) ? &small : NULL;

	struct mime_message *whole = mime_parse(msg, n, lim);
	struct mime_parser *p = mime_parser_new(lim);
	mime_parser_feed(p, msg, cut1);
	mime_parser_feed(p, msg + cut1, cut2 - cut1);
	mime_parser_feed(p, msg + cut2, n - cut2);
	struct mime_message *split;
	mime_parser_finish(&p, &split);

	struct buf a, b;
	buf_init(&a, 0);
	buf_init(&b, 0);
	describe(whole, &a);
	describe(split, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort();
	check_tree(whole);
	buf_deinit(&a);
	buf_deinit(&b);
	mime_message_free(&whole);
	mime_message_free(&split);

	if (mode & 2)
		check_decoders(msg, n, cut1);
	free(msg);
	return 0;
}
