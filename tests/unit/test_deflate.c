/* The DEFLATE filter (src/net/deflate.c) over a bufferevent pair: where
 * its streams end for UNAUTHENTICATE (RFC 8437 3), what an end the session
 * did not ask for does (RFC 4978 3), and COMPRESS again. */
#include "test.h"
#include "net/deflate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct rig {
	struct event_base *base;
	struct bufferevent *zbev, *peer;
	struct deflate_filter *df;
	int errors;
	z_stream out;		/* the peer's compressor */
};

static void on_error(void *arg, const char *why)
{
	struct rig *r = arg;
	(void)why;
	r->errors++;
}

static void run(struct rig *r)
{
	for (int i = 0; i < 8; i++)
		event_base_loop(r->base, EVLOOP_NONBLOCK);
}

/* peer_window: what the peer's side takes before it stops reading. */
static void rig_open(struct rig *r, size_t peer_window)
{
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	struct bufferevent *pair[2];
	bufferevent_pair_new(r->base, BEV_OPT_CLOSE_ON_FREE, pair);
	r->peer = pair[1];
	r->zbev = deflate_filter_new(pair[0], on_error, r, &r->df);
	bufferevent_setwatermark(r->zbev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(pair[0], EV_WRITE, 0, 16 * 1024);
	if (peer_window)
		bufferevent_setwatermark(r->peer, EV_READ, 0, peer_window);
	bufferevent_enable(r->zbev, EV_READ | EV_WRITE);
	bufferevent_enable(r->peer, EV_READ | EV_WRITE);
	deflateInit2(&r->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
}

static void rig_close(struct rig *r)
{
	deflateEnd(&r->out);
	deflate_filter_detach(r->df);
	bufferevent_free(r->zbev);
	bufferevent_free(r->peer);
	run(r);
	event_base_free(r->base);
}

/* The peer's bytes: text deflated with flush (Z_SYNC_FLUSH or Z_FINISH),
 * then plain bytes, in one write. */
static void peer_send(struct rig *r, const char *text, int flush, const char *plain)
{
	unsigned char buf[4096];
	r->out.next_in = (Bytef *)text;
	r->out.avail_in = (uInt)strlen(text);
	r->out.next_out = buf;
	r->out.avail_out = sizeof(buf);
	deflate(&r->out, flush);
	struct evbuffer *eb = evbuffer_new();
	evbuffer_add(eb, buf, sizeof(buf) - r->out.avail_out);
	if (plain)
		evbuffer_add(eb, plain, strlen(plain));
	bufferevent_write_buffer(r->peer, eb);
	evbuffer_free(eb);
	run(r);
}

/* The session reads n bytes (or all there is, n 0) as a string. As in
 * net.c, deflate_filter_check() comes once it has run what it read. */
static char *session_read(struct rig *r, size_t n)
{
	struct evbuffer *in = bufferevent_get_input(r->zbev);
	if (n == 0 || n > evbuffer_get_length(in))
		n = evbuffer_get_length(in);
	char *s = calloc(1, n + 1);
	evbuffer_remove(in, s, n);
	return s;
}

/* All the peer has received. */
static unsigned char *peer_take(struct rig *r, size_t *len)
{
	size_t cap = 1024, n = 0;
	unsigned char *buf = malloc(cap);
	for (int idle = 0; idle < 4;) {
		run(r);
		struct evbuffer *in = bufferevent_get_input(r->peer);
		size_t got = evbuffer_get_length(in);
		if (got == 0) {
			idle++;
			continue;
		}
		idle = 0;
		if (n + got > cap) {
			cap = (n + got) * 2;
			buf = realloc(buf, cap);
		}
		evbuffer_remove(in, buf + n, got);
		n += got;
	}
	*len = n;
	return buf;
}

/* Inflates a raw DEFLATE stream from wire + *off; returns the text, *off
 * past what was used, *ended whether the stream ended. */
static unsigned char *inflate_from(const unsigned char *wire, size_t len, size_t *off,
				   size_t *text_len, bool *ended)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	inflateInit2(&z, -15);
	size_t cap = len * 8 + 1024;
	unsigned char *text = malloc(cap);
	z.next_in = (Bytef *)wire + *off;
	z.avail_in = (uInt)(len - *off);
	z.next_out = text;
	z.avail_out = (uInt)cap;
	int rc = inflate(&z, Z_SYNC_FLUSH);
	*ended = rc == Z_STREAM_END;
	*off = len - z.avail_in;
	*text_len = cap - z.avail_out;
	inflateEnd(&z);
	return text;
}

/* 3: the server's stream ends right after its OK, though most of what
 * came before still waited above the compressor; later output is plain. */
static void test_end_with_output_queued(void)
{
	struct rig r;
	rig_open(&r, 1024);
	size_t big = 300 * 1024;
	unsigned char *noise = malloc(big);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < big; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		noise[i] = (unsigned char)x;
	}
	bufferevent_write(r.zbev, noise, big);
	bufferevent_write(r.zbev, "u OK bye\r\n", 10);
	run(&r);
	/* Most of it is still above the compressor. */
	CHECK(evbuffer_get_length(bufferevent_get_output(r.zbev)) > 100 * 1024);
	deflate_filter_end(r.df);
	CHECK(!deflate_filter_on(r.df));
	bufferevent_write(r.zbev, "* PLAIN\r\n", 9);
	size_t len, off = 0, tlen;
	bool ended;
	unsigned char *wire = peer_take(&r, &len);
	unsigned char *text = inflate_from(wire, len, &off, &tlen, &ended);
	CHECK(ended);
	CHECK_INT(tlen, big + 10);
	CHECK(tlen == big + 10 && memcmp(text, noise, big) == 0 &&
	      memcmp(text + big, "u OK bye\r\n", 10) == 0);
	CHECK_INT(len - off, 9);
	CHECK(len - off == 9 && memcmp(wire + off, "* PLAIN\r\n", 9) == 0);
	CHECK_INT(r.errors, 0);
	free(text);
	free(wire);
	free(noise);
	rig_close(&r);
}

/* 3: the command, the end of the client's stream and plain commands in
 * one packet: what follows the end waits until the session has read the
 * command and ended compression, then comes up unchanged. */
static void test_peer_end_before_command_read(void)
{
	struct rig r;
	rig_open(&r, 0);
	peer_send(&r, "a UNAUTHENTICATE\r\n", Z_FINISH, "b LOGIN x y\r\n");
	CHECK_INT(evbuffer_get_length(bufferevent_get_input(r.zbev)), 18);
	char *s = session_read(&r, 0);
	CHECK_STR(s, "a UNAUTHENTICATE\r\n");
	free(s);
	CHECK_INT(r.errors, 0);
	deflate_filter_end(r.df);
	deflate_filter_check(r.df);
	run(&r);
	s = session_read(&r, 0);
	CHECK_STR(s, "b LOGIN x y\r\n");
	free(s);
	CHECK(deflate_filter_ended(r.df));
	CHECK_INT(r.errors, 0);
	rig_close(&r);
}

/* The session ends compression first; the client's end comes after,
 * with plain bytes behind it. */
static void test_peer_end_after_command_read(void)
{
	struct rig r;
	rig_open(&r, 0);
	peer_send(&r, "a UNAUTHENTICATE\r\n", Z_SYNC_FLUSH, NULL);
	char *s = session_read(&r, 0);
	CHECK_STR(s, "a UNAUTHENTICATE\r\n");
	free(s);
	deflate_filter_end(r.df);
	CHECK(!deflate_filter_ended(r.df));	/* the client's end has not come */
	CHECK_INT(deflate_filter_restart(r.df), -1);
	peer_send(&r, "", Z_FINISH, "b NOOP\r\n");
	s = session_read(&r, 0);
	CHECK_STR(s, "b NOOP\r\n");
	free(s);
	CHECK(deflate_filter_ended(r.df));
	CHECK_INT(r.errors, 0);
	rig_close(&r);
}

/* RFC 4978 3: an end the session did not ask for is an error once the
 * session has read what came before it; the plain bytes after it never
 * reach the session. */
static void test_unasked_end(void)
{
	struct rig r;
	rig_open(&r, 0);
	peer_send(&r, "a NOOP\r\n", Z_FINISH, "b LOGOUT\r\n");
	CHECK_INT(r.errors, 0);
	char *s = session_read(&r, 0);
	CHECK_STR(s, "a NOOP\r\n");
	free(s);
	CHECK_INT(r.errors, 0);
	deflate_filter_check(r.df);
	CHECK_INT(r.errors, 1);
	run(&r);
	CHECK_INT(evbuffer_get_length(bufferevent_get_input(r.zbev)), 0);
	rig_close(&r);

	/* The end alone, everything before it read already. */
	rig_open(&r, 0);
	peer_send(&r, "a NOOP\r\n", Z_SYNC_FLUSH, NULL);
	s = session_read(&r, 0);
	free(s);
	peer_send(&r, "", Z_FINISH, NULL);
	CHECK_INT(r.errors, 1);
	rig_close(&r);
}

/* 3: nothing more in the client's stream after UNAUTHENTICATE, whether it
 * was there when the session ended compression or came later. */
static void test_data_after_announced_end(void)
{
	struct rig r;
	rig_open(&r, 0);
	peer_send(&r, "a UNAUTHENTICATE\r\nb NOOP\r\n", Z_SYNC_FLUSH, NULL);
	char *s = session_read(&r, 18);
	CHECK_STR(s, "a UNAUTHENTICATE\r\n");
	free(s);
	deflate_filter_end(r.df);
	CHECK_INT(r.errors, 1);
	rig_close(&r);

	rig_open(&r, 0);
	peer_send(&r, "a UNAUTHENTICATE\r\n", Z_SYNC_FLUSH, NULL);
	s = session_read(&r, 0);
	free(s);
	deflate_filter_end(r.df);
	peer_send(&r, "b NOOP\r\n", Z_FINISH, NULL);
	CHECK_INT(r.errors, 1);
	CHECK_INT(evbuffer_get_length(bufferevent_get_input(r.zbev)), 0);
	rig_close(&r);
}

/* RFC 4978 after RFC 8437: COMPRESS again. The new stream's first bytes
 * came with the command and went up plain: they are inflated all the
 * same. The server's OK goes out plain, what follows in a new stream. */
static void test_restart(void)
{
	struct rig r;
	rig_open(&r, 0);
	peer_send(&r, "a UNAUTHENTICATE\r\n", Z_FINISH, NULL);
	free(session_read(&r, 0));
	bufferevent_write(r.zbev, "a OK\r\n", 6);
	deflate_filter_end(r.df);
	deflateReset(&r.out);
	/* "c COMPRESS DEFLATE" plain, a new stream right behind it. */
	unsigned char z[256];
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (Bytef *)"d NOOP\r\n";
	zs.avail_in = 8;
	zs.next_out = z;
	zs.avail_out = sizeof(z);
	deflate(&zs, Z_SYNC_FLUSH);
	struct evbuffer *eb = evbuffer_new();
	evbuffer_add(eb, "c COMPRESS DEFLATE\r\n", 20);
	evbuffer_add(eb, z, sizeof(z) - zs.avail_out);
	bufferevent_write_buffer(r.peer, eb);
	evbuffer_free(eb);
	deflateEnd(&zs);
	run(&r);
	CHECK(!deflate_filter_on(r.df));
	char *s = session_read(&r, 20);
	CHECK_STR(s, "c COMPRESS DEFLATE\r\n");
	free(s);
	bufferevent_write(r.zbev, "c OK\r\n", 6);
	CHECK_INT(deflate_filter_restart(r.df), 0);
	CHECK(deflate_filter_on(r.df));
	CHECK_INT(deflate_filter_restart(r.df), -1);	/* on already */
	bufferevent_write(r.zbev, "d OK\r\n", 6);
	run(&r);
	s = session_read(&r, 0);
	CHECK_STR(s, "d NOOP\r\n");
	free(s);
	CHECK_INT(r.errors, 0);

	size_t len, off = 0, tlen;
	bool ended;
	unsigned char *wire = peer_take(&r, &len);
	unsigned char *text = inflate_from(wire, len, &off, &tlen, &ended);
	CHECK(ended && tlen == 6 && memcmp(text, "a OK\r\n", 6) == 0);
	free(text);
	CHECK(len - off > 6 && memcmp(wire + off, "c OK\r\n", 6) == 0);
	off += 6;
	text = inflate_from(wire, len, &off, &tlen, &ended);
	CHECK(!ended && tlen == 6 && memcmp(text, "d OK\r\n", 6) == 0);
	CHECK_INT(off, len);
	free(text);
	free(wire);
	rig_close(&r);
}

int main(void)
{
	RUN(test_end_with_output_queued);
	RUN(test_peer_end_before_command_read);
	RUN(test_peer_end_after_command_read);
	RUN(test_unasked_end);
	RUN(test_data_after_announced_end);
	RUN(test_restart);
	return test_done();
}
