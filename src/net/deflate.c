#include "net/deflate.h"
#include "core/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

/* Bytes handed to zlib, or asked of it, per call. */
#define CHUNK (16 * 1024)
/* Room asked for when draining what inflate still holds. */
#define PENDING_CHUNK 512

struct deflate_filter {
	struct bufferevent *bev;
	z_stream in, out;
	bool in_ok, out_ok;
	bool dirty;		/* deflated input not yet flushed out */
	bool failed;		/* the peer's stream was bad: input discarded */
	struct event *flush_ev;
	deflate_error_fn *on_error;
	void *arg;		/* NULL once detached */
};

static void fail(struct deflate_filter *df, const char *why)
{
	if (df->failed)
		return;
	df->failed = true;
	if (df->arg != NULL)
		df->on_error(df->arg, why);
}

/* Inflates into dst, at most limit bytes (-1: no limit) plus whatever zlib
 * still holds once the limit is reached (at most one match). */
static enum bufferevent_filter_result in_filter(struct evbuffer *src, struct evbuffer *dst,
						ev_ssize_t limit,
						enum bufferevent_flush_mode mode UNUSED, void *arg)
{
	struct deflate_filter *df = arg;
	if (df->failed) {
		evbuffer_drain(src, evbuffer_get_length(src));
		return BEV_NEED_MORE;
	}
	size_t produced = 0;
	bool progress = false, at_limit = false;
	for (;;) {
		size_t room = CHUNK;
		if (limit >= 0) {
			if (produced >= (size_t)limit) {
				at_limit = true;
				break;
			}
			if ((size_t)limit - produced < room)
				room = (size_t)limit - produced;
		}
		unsigned char none = 0;
		struct evbuffer_iovec iv = { &none, 0 };
		if (evbuffer_get_length(src) > 0 && evbuffer_peek(src, -1, NULL, &iv, 1) < 1)
			break;
		if (iv.iov_len > CHUNK)
			iv.iov_len = CHUNK;
		struct evbuffer_iovec ov;
		if (evbuffer_reserve_space(dst, (ev_ssize_t)room, &ov, 1) < 1)
			break;
		if (ov.iov_len > room)
			ov.iov_len = room;
		df->in.next_in = iv.iov_base;
		df->in.avail_in = (uInt)iv.iov_len;
		df->in.next_out = ov.iov_base;
		df->in.avail_out = (uInt)ov.iov_len;
		int r = inflate(&df->in, Z_SYNC_FLUSH);
		size_t used = iv.iov_len - df->in.avail_in;
		size_t out = ov.iov_len - df->in.avail_out;
		evbuffer_drain(src, used);
		ov.iov_len = out;
		evbuffer_commit_space(dst, &ov, 1);
		produced += out;
		if (used > 0 || out > 0)
			progress = true;
		if (r == Z_STREAM_END) {
			/* RFC 4978 3: the stream never ends while the connection
			 * lasts. */
			fail(df, "end of the DEFLATE stream");
			evbuffer_drain(src, evbuffer_get_length(src));
			return progress ? BEV_OK : BEV_NEED_MORE;
		}
		if (r != Z_OK && r != Z_BUF_ERROR) {
			fail(df, df->in.msg ? df->in.msg : "inflate failed");
			evbuffer_drain(src, evbuffer_get_length(src));
			return progress ? BEV_OK : BEV_NEED_MORE;
		}
		if (used == 0 && out == 0)
			break;
	}
	if (at_limit) {
		/* Stopped for room with the input maybe consumed: what zlib
		 * still holds (the rest of one match) must come out now, or
		 * it would wait for input that may never come. */
		for (;;) {
			struct evbuffer_iovec ov;
			if (evbuffer_reserve_space(dst, PENDING_CHUNK, &ov, 1) < 1)
				break;
			unsigned char none = 0;
			df->in.next_in = &none;
			df->in.avail_in = 0;
			df->in.next_out = ov.iov_base;
			df->in.avail_out = (uInt)ov.iov_len;
			int r = inflate(&df->in, Z_SYNC_FLUSH);
			size_t out = ov.iov_len - df->in.avail_out;
			ov.iov_len = out;
			evbuffer_commit_space(dst, &ov, 1);
			if (out > 0)
				progress = true;
			if (r != Z_OK || out == 0 || df->in.avail_out > 0)
				break;
		}
	}
	return progress ? BEV_OK : BEV_NEED_MORE;
}

/* Runs deflate over what is in next_in with flush, all output into dst. */
static size_t deflate_all(struct deflate_filter *df, struct evbuffer *dst, int flush)
{
	size_t produced = 0;
	do {
		struct evbuffer_iovec ov;
		if (evbuffer_reserve_space(dst, CHUNK, &ov, 1) < 1)
			break;
		df->out.next_out = ov.iov_base;
		df->out.avail_out = (uInt)ov.iov_len;
		(void)deflate(&df->out, flush);	/* cannot fail with a valid state */
		size_t out = ov.iov_len - df->out.avail_out;
		ov.iov_len = out;
		evbuffer_commit_space(dst, &ov, 1);
		produced += out;
	} while (df->out.avail_out == 0);
	return produced;
}

/* Deflates src into dst while dst has room (limit, -1: none), then flushes
 * when asked to (BEV_FLUSH) or schedules that flush for later in this loop
 * iteration. */
static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst,
						 ev_ssize_t limit,
						 enum bufferevent_flush_mode mode, void *arg)
{
	struct deflate_filter *df = arg;
	size_t produced = 0;
	bool progress = false;
	while (evbuffer_get_length(src) > 0 && (limit < 0 || produced < (size_t)limit)) {
		struct evbuffer_iovec iv;
		if (evbuffer_peek(src, -1, NULL, &iv, 1) < 1)
			break;
		if (iv.iov_len > CHUNK)
			iv.iov_len = CHUNK;
		df->out.next_in = iv.iov_base;
		df->out.avail_in = (uInt)iv.iov_len;
		produced += deflate_all(df, dst, Z_NO_FLUSH);
		evbuffer_drain(src, iv.iov_len - df->out.avail_in);
		df->dirty = true;
		progress = true;
	}
	if (evbuffer_get_length(src) == 0 && df->dirty) {
		if (mode != BEV_NORMAL) {
			unsigned char none = 0;
			df->out.next_in = &none;
			df->out.avail_in = 0;
			deflate_all(df, dst, Z_SYNC_FLUSH);
			df->dirty = false;
			progress = true;
		} else if (df->flush_ev != NULL) {
			event_active(df->flush_ev, 0, 0);
		}
	}
	return progress ? BEV_OK : BEV_NEED_MORE;
}

static void flush_cb(evutil_socket_t fd UNUSED, short what UNUSED, void *arg)
{
	struct deflate_filter *df = arg;
	/* With output still waiting for room below, the flush comes when
	 * the last of it has been deflated. */
	if (df->dirty && evbuffer_get_length(bufferevent_get_output(df->bev)) == 0)
		bufferevent_flush(df->bev, EV_WRITE, BEV_FLUSH);
}

static void free_filter(void *arg)
{
	struct deflate_filter *df = arg;
	if (df->flush_ev != NULL)
		event_free(df->flush_ev);
	if (df->in_ok)
		inflateEnd(&df->in);
	if (df->out_ok)
		deflateEnd(&df->out);
	free(df);
}

struct bufferevent *deflate_filter_new(struct bufferevent *under, deflate_error_fn *on_error,
				       void *arg, struct deflate_filter **df_r)
{
	struct deflate_filter *df = xcalloc(1, sizeof(*df));
	df->on_error = on_error;
	df->arg = arg;
	if (inflateInit2(&df->in, -15) != Z_OK) {
		free_filter(df);
		return NULL;
	}
	df->in_ok = true;
	if (deflateInit2(&df->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		free_filter(df);
		return NULL;
	}
	df->out_ok = true;
	df->flush_ev = event_new(bufferevent_get_base(under), -1, 0, flush_cb, df);
	/* Deferred callbacks: a write never calls the session back from
	 * inside itself. */
	df->bev = bufferevent_filter_new(under, in_filter, out_filter,
					 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
					 free_filter, df);
	if (df->bev == NULL) {
		free_filter(df);
		return NULL;
	}
	*df_r = df;
	return df->bev;
}

void deflate_filter_detach(struct deflate_filter *df)
{
	df->arg = NULL;
	if (df->flush_ev != NULL) {
		event_free(df->flush_ev);
		df->flush_ev = NULL;
	}
}
