/* libFuzzer target: the DEFLATE filter of IMAP COMPRESS (src/net/deflate.c)
 * over a bufferevent pair, with its ends and restarts (UNAUTHENTICATE,
 * RFC 8437 3, then COMPRESS again, RFC 4978).
 *
 * Byte 0: bit 0 raw mode, bit 1 end compression in raw mode; byte 1: the
 * size of the pieces the peer's bytes arrive in (1-256); byte 2: how much
 * the peer's side takes before it stops reading (the server's output then
 * waits in the layers, above the compressor too). The rest:
 *   - raw mode: the peer's "compressed" stream as it is. The session reads
 *     all it gets (ending compression after its first read if bit 1 says
 *     so, and starting it again if the filter lets it). Only memory safety
 *     and the read watermark are checked.
 *   - otherwise, NUL-separated: P (the peer's text before its end), T (its
 *     plain text after the end), W1 (the server's text before its end), W2
 *     (after it), C (the peer's text in a new stream after COMPRESS again),
 *     W3 (the server's text in its new stream). The peer deflates P,
 *     finishes (Z_FINISH) and sends T; the session ends compression once
 *     it has read P, having written W1, then writes W2, reads the rest and
 *     starts compression again. Checked: no error; the session reads P, T,
 *     then C exactly; the peer reads W1 deflated with the stream ending
 *     right after it, W2 plain, then W3 in a fresh stream. */
#include "net/deflate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_HIGH (256 * 1024)

struct rig {
	struct event_base *base;
	struct bufferevent *zbev;	/* the filter: the session's side */
	struct bufferevent *peer;	/* the client's side of the pair */
	struct deflate_filter *df;
	bool failed;
	size_t piece;
	size_t peer_window;
};

static void on_error(void *arg, const char *why)
{
	struct rig *r = arg;
	(void)why;
	r->failed = true;
}

static void run(struct rig *r)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(r->base, EVLOOP_NONBLOCK);
}

/* What the session has, up to max bytes, appended to out. */
static size_t session_read(struct rig *r, uint8_t *out, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(r->zbev);
	if (evbuffer_get_length(in) > READ_HIGH + 258 + 16 * 1024)
		abort();	/* the read watermark, plus one match and a chunk */
	int n = evbuffer_remove(in, out, max);
	return n > 0 ? (size_t)n : 0;
}

/* The peer sends data in pieces, the loop running between them. */
static void peer_send(struct rig *r, const uint8_t *data, size_t len)
{
	for (size_t off = 0; off < len; off += r->piece) {
		size_t n = len - off < r->piece ? len - off : r->piece;
		bufferevent_write(r->peer, data + off, n);
		run(r);
	}
}

/* Everything the peer gets, reading peer_window at a time. */
static size_t peer_take(struct rig *r, uint8_t **buf, size_t *cap, size_t len)
{
	for (int idle = 0; idle < 4;) {
		run(r);
		struct evbuffer *in = bufferevent_get_input(r->peer);
		size_t n = evbuffer_get_length(in);
		if (n == 0) {
			idle++;
			continue;
		}
		idle = 0;
		if (len + n > *cap) {
			*cap = (len + n) * 2;
			*buf = realloc(*buf, *cap);
			if (*buf == NULL)
				abort();
		}
		evbuffer_remove(in, *buf + len, n);
		len += n;
	}
	return len;
}

static bool rig_open(struct rig *r, const uint8_t *hdr)
{
	memset(r, 0, sizeof(*r));
	r->piece = (size_t)hdr[1] + 1;
	r->peer_window = 64 + (size_t)hdr[2] * 256;
	r->base = event_base_new();
	struct bufferevent *pair[2];
	if (r->base == NULL || bufferevent_pair_new(r->base, BEV_OPT_CLOSE_ON_FREE, pair) < 0)
		abort();
	r->peer = pair[1];
	r->zbev = deflate_filter_new(pair[0], on_error, r, &r->df);
	if (r->zbev == NULL)
		abort();
	/* As net.c sets them. */
	bufferevent_setwatermark(r->zbev, EV_READ, 0, READ_HIGH);
	bufferevent_setwatermark(pair[0], EV_WRITE, 0, 16 * 1024);
	/* A peer slow to read: the server's output waits. */
	bufferevent_setwatermark(r->peer, EV_READ, 0, r->peer_window);
	bufferevent_enable(r->zbev, EV_READ | EV_WRITE);
	bufferevent_enable(r->peer, EV_READ | EV_WRITE);
	return true;
}

static void rig_close(struct rig *r)
{
	deflate_filter_detach(r->df);
	bufferevent_free(r->zbev);
	bufferevent_free(r->peer);
	run(r);
	event_base_free(r->base);
}

static void raw_mode(struct rig *r, bool end, const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(64 * 1024);
	if (buf == NULL)
		abort();
	bool ended = false;
	for (size_t off = 0; off < size; off += r->piece) {
		size_t n = size - off < r->piece ? size - off : r->piece;
		bufferevent_write(r->peer, data + off, n);
		run(r);
		while (session_read(r, buf, 64 * 1024) > 0) {
			if (end && !ended) {
				bufferevent_write(r->zbev, "t OK\r\n", 6);
				deflate_filter_end(r->df);
				ended = true;
			}
			deflate_filter_check(r->df);
			run(r);
		}
		if (ended && deflate_filter_ended(r->df) && deflate_filter_restart(r->df) == 0) {
			if (deflate_filter_on(r->df) != true)
				abort();
			bufferevent_write(r->zbev, "again\r\n", 7);
			ended = false;
		}
	}
	free(buf);
}

/* Raw DEFLATE of text, sync-flushed, finished if asked. */
static uint8_t *deflate_text(const uint8_t *text, size_t len, bool finish, size_t *out_len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	size_t cap = deflateBound(&z, (uLong)len) + 64;
	uint8_t *out = malloc(cap);
	if (out == NULL)
		abort();
	z.next_in = (Bytef *)text;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_SYNC_FLUSH) != Z_OK)
		abort();
	if (finish && deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	*out_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

/* Inflates wire from *off: true and the text if a whole stream is there
 * (Z_STREAM_END) or, with to_end false, all of wire inflates cleanly. */
static bool inflate_wire(const uint8_t *wire, size_t len, size_t *off, bool to_end,
			 uint8_t **text, size_t *text_len)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -15) != Z_OK)
		abort();
	size_t cap = 1024, n = 0;
	uint8_t *out = malloc(cap);
	if (out == NULL)
		abort();
	z.next_in = (Bytef *)wire + *off;
	z.avail_in = (uInt)(len - *off);
	int rc;
	do {
		if (n == cap) {
			cap *= 2;
			out = realloc(out, cap);
			if (out == NULL)
				abort();
		}
		z.next_out = out + n;
		z.avail_out = (uInt)(cap - n);
		rc = inflate(&z, Z_SYNC_FLUSH);
		n = cap - z.avail_out;
	} while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
	*off = len - z.avail_in;
	inflateEnd(&z);
	*text = out;
	*text_len = n;
	return to_end ? rc == Z_STREAM_END : (rc == Z_OK || rc == Z_BUF_ERROR) && z.avail_in == 0;
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void structured(struct rig *r, const uint8_t *data, size_t size)
{
	const uint8_t *part[6];
	size_t plen[6];
	for (int i = 0; i < 6; i++) {
		const uint8_t *nul = size > 0 ? memchr(data, 0, size) : NULL;
		size_t n = nul ? (size_t)(nul - data) : size;
		part[i] = data;
		plen[i] = n;
		data += nul ? n + 1 : n;
		size -= nul ? n + 1 : n;
	}
	enum { P, T, W1, W2, C, W3 };

	/* The server has written W1; the peer sends P, its end and T. */
	bufferevent_write(r->zbev, part[W1], plen[W1]);
	size_t zlen;
	uint8_t *z = deflate_text(part[P], plen[P], true, &zlen);
	uint8_t *wire_in = malloc(zlen + plen[T] + 1);
	if (wire_in == NULL)
		abort();
	memcpy(wire_in, z, zlen);
	if (plen[T] > 0)
		memcpy(wire_in + zlen, part[T], plen[T]);
	free(z);

	size_t want = plen[P] + plen[T] + plen[C];
	uint8_t *got = malloc(want + 1);
	if (got == NULL)
		abort();
	size_t have = 0;
	bool ended = false;
	if (plen[P] == 0) {
		deflate_filter_end(r->df);
		bufferevent_write(r->zbev, part[W2], plen[W2]);
		ended = true;
	}
	size_t total = zlen + plen[T];
	for (size_t off = 0; off < total || !ended; off += r->piece) {
		if (off < total) {
			size_t n = total - off < r->piece ? total - off : r->piece;
			bufferevent_write(r->peer, wire_in + off, n);
		}
		run(r);
		/* Some of the server's output may wait for the peer. */
		for (;;) {
			size_t room = ended ? plen[P] + plen[T] - have : plen[P] - have;
			size_t n = session_read(r, got + have, room);
			have += n;
			if (!ended && have == plen[P]) {
				deflate_filter_end(r->df);
				bufferevent_write(r->zbev, part[W2], plen[W2]);
				ended = true;
				continue;
			}
			if (ended)
				deflate_filter_check(r->df);
			if (n == 0)
				break;
		}
		if (r->failed)
			abort();
		if (off >= total && !ended)
			abort();	/* P never came whole */
	}
	free(wire_in);
	while (have < plen[P] + plen[T]) {
		run(r);
		size_t n = session_read(r, got + have, plen[P] + plen[T] - have);
		if (n == 0)
			abort();	/* T held back */
		have += n;
	}
	if (!same(got, plen[P], part[P], plen[P]) ||
	    !same(got + plen[P], plen[T], part[T], plen[T]))
		abort();

	/* COMPRESS again: the peer's new stream, the server's W3. */
	if (!deflate_filter_ended(r->df) || deflate_filter_on(r->df))
		abort();
	if (deflate_filter_restart(r->df) != 0 || !deflate_filter_on(r->df))
		abort();
	bufferevent_write(r->zbev, part[W3], plen[W3]);
	z = deflate_text(part[C], plen[C], false, &zlen);
	peer_send(r, z, zlen);
	free(z);
	while (have < want) {
		run(r);
		size_t n = session_read(r, got + have, want - have);
		if (n == 0)
			abort();
		have += n;
	}
	if (r->failed || !same(got + plen[P] + plen[T], plen[C], part[C], plen[C]))
		abort();
	free(got);
	bufferevent_flush(r->zbev, EV_WRITE, BEV_FLUSH);

	/* What the peer got: W1 in a stream that ends, W2 plain, W3 in a
	 * new stream. */
	size_t cap = 4096, len = 0, off = 0;
	uint8_t *wire = malloc(cap);
	if (wire == NULL)
		abort();
	len = peer_take(r, &wire, &cap, len);
	uint8_t *text;
	size_t text_len;
	if (!inflate_wire(wire, len, &off, true, &text, &text_len) ||
	    !same(text, text_len, part[W1], plen[W1]))
		abort();
	free(text);
	if (len - off < plen[W2] || !same(wire + off, plen[W2], part[W2], plen[W2]))
		abort();
	off += plen[W2];
	if (!inflate_wire(wire, len, &off, false, &text, &text_len) ||
	    !same(text, text_len, part[W3], plen[W3]))
		abort();
	free(text);
	free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > 256 * 1024)
		return 0;
	struct rig r;
	rig_open(&r, data);
	if (data[0] & 1)
		raw_mode(&r, (data[0] & 2) != 0, data + 3, size - 3);
	else
		structured(&r, data + 3, size - 3);
	rig_close(&r);
	return 0;
}
