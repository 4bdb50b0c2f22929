/* Content-Transfer-Encoding decoders (RFC 2045 6.7 quoted-printable, 6.8
 * base64) and charset conversion to UTF-8, for IMAP BINARY (RFC 3516) and
 * for SEARCH on body text.
 *
 * The decoders are streaming: feed the encoded body in pieces of any size,
 * the output does not depend on the split. They never fail on bad input:
 * mail in the wild has line breaks inside base64, missing padding, junk
 * after it, "=" that starts no escape, and so on; such bytes are skipped or
 * kept as text (as Dovecot does), and counted in ->bad so a caller can tell.
 * The only error is a full output buffer (buf's hard maximum). */
#ifndef YUBIN_MIME_DECODE_H
#define YUBIN_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

struct base64_decoder {
	uint32_t acc;		/* bits not yet written */
	unsigned int bits;	/* how many */
	bool padded;		/* "=" seen, no data since */
	bool done;		/* text after the padding: the rest is ignored */
	size_t bad;		/* bytes skipped that are not base64 or white space */
};

void base64_decoder_init(struct base64_decoder *d);
/* Decodes in[0..len) onto the end of out. Bytes outside the alphabet are
 * ignored (RFC 2045 6.8). A "=" ends a quantum (what it completes is
 * written). After padding, more base64 goes on decoding (mailers that pad
 * every line), but anything else (white space inside a line, punctuation:
 * a list footer or a signature appended to the body) ends the data, and
 * the rest of the input is ignored. Returns 0, or -1 if out's maximum was
 * reached. */
int base64_decode_more(struct base64_decoder *d, const void *in, size_t len, struct buf *out);
/* Ends the input: a quantum without its padding still gives its whole
 * bytes. Returns 0 or -1. */
int base64_decode_finish(struct base64_decoder *d, struct buf *out);

enum qp_state {
	QP_TEXT,
	QP_CR,		/* a CR: line end if a LF follows */
	QP_EQ,		/* "=" */
	QP_EQ_HEX,	/* "=" and one hex digit */
	QP_EQ_CR,	/* "=" CR */
	QP_EQ_WS,	/* "=" and white space: a soft break if the line ends */
	QP_EQ_WS_CR,
};

/* White space kept back until we know whether it ends a line. A longer run
 * is written as it is (no line in mail is that long). */
#define QP_WS_MAX 1024

struct qp_decoder {
	enum qp_state state;
	char hex1;
	size_t ws_len, eq_ws_len;
	char ws[QP_WS_MAX], eq_ws[QP_WS_MAX];
	size_t bad;		/* "=" not followed by hex digits or a line end */
};

void qp_decoder_init(struct qp_decoder *d);
/* Decodes quoted-printable: "=XX" (either case) is a byte, "=" at the end
 * of a line (after optional white space) joins lines, white space at the
 * end of a line goes (RFC 2045 6.7 rule 3), line ends stay as they are
 * (CRLF or LF). A "=" that is none of these is kept as text. Returns 0 or
 * -1. */
int qp_decode_more(struct qp_decoder *d, const void *in, size_t len, struct buf *out);
int qp_decode_finish(struct qp_decoder *d, struct buf *out);

/* Quoted-printable encoding (RFC 2045 6.7), streaming: line ends (CRLF or
 * a bare LF) become CRLF hard breaks, lines are cut by soft breaks to at
 * most 76 characters, "=", control and 8-bit bytes are encoded, and white
 * space at the end of a line too. For 8BITMIME down-conversion (RFC 6152). */
struct qp_encoder {
	size_t col;		/* characters on the current output line */
	char ws;		/* white space held until we know what follows */
	bool has_ws;
	bool cr;		/* a CR, waiting for its LF */
};
void qp_encoder_init(struct qp_encoder *e);
int qp_encode_more(struct qp_encoder *e, const void *in, size_t len, struct buf *out);
int qp_encode_finish(struct qp_encoder *e, struct buf *out);

/* One-shot helpers over whole inputs. Return 0 or -1 (out full). */
int decode_base64(const void *in, size_t len, struct buf *out);
int decode_qp(const void *in, size_t len, struct buf *out);

/* ---- Charsets ---- */

struct charset_conv;

/* A converter from charset (a MIME charset name, any case) to UTF-8, or NULL
 * when iconv does not know it. "us-ascii" and "utf-8" give a UTF-8
 * validator: 8-bit bytes in mail labelled us-ascii are common, and are kept
 * when they are valid UTF-8. */
struct charset_conv *charset_conv_new(const char *charset);
/* Converts in[0..len) onto out. A byte sequence that is not valid in the
 * charset becomes U+FFFD; an incomplete one at the end waits for the next
 * call. Returns 0 or -1 (out full). */
int charset_conv_more(struct charset_conv *c, const void *in, size_t len, struct buf *out);
/* An incomplete sequence left at the end becomes U+FFFD. */
int charset_conv_finish(struct charset_conv *c, struct buf *out);
void charset_conv_free(struct charset_conv **c);
/* How many invalid sequences were replaced. */
size_t charset_conv_bad(const struct charset_conv *c);

/* Whole input. Returns 0, -1 (out full) or -2 (unknown charset: nothing
 * written). */
int charset_to_utf8(const char *charset, const void *in, size_t len, struct buf *out);

/* ---- Case-insensitive matching (IMAP SEARCH, RFC 9051 6.4.4) ---- */

/* s[0..len) with every character lower-cased (Unicode simple case mapping
 * of the C.UTF-8 locale), as a new NUL-terminated string; bytes that are
 * not valid UTF-8 are kept. */
char *text_fold(const char *s, size_t len, size_t *len_r);
/* Whether needle occurs in hay, both folded (needle "" always does). */
bool text_contains_fold(const char *hay, size_t hay_len, const char *needle);

#endif
