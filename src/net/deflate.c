#include "net/deflate.h"
#include "core/util.h"

#include <stdbool.h>
#include <stdint.h>
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
/* Output positions where DEFLATE ends or starts again that the compressor
 * has not reached yet (output still queued above it). */
#define MAX_SWITCHES 8

enum in_mode {
	IN_INFLATE,	/* the peer's stream is DEFLATE */
	IN_ENDED,	/* it ended unasked: what follows is held below */
	IN_RAW,		/* it ended where asked: the rest passes as it is */
};

struct deflate_filter {
	struct bufferevent *bev;
	z_stream in, out;
	bool in_ok, out_ok;
	bool dirty;		/* deflated input not yet flushed out */
	bool failed;		/* the peer's stream was bad: input discarded */
	bool on;		/* on for the session: deflate_filter_end() not called */
	enum in_mode in_mode;
	bool in_end_ok;		/* the peer's stream may end now, and nothing more
				 * may come in it */
	bool out_deflate;	/* the bytes at out_pos are deflated */
	uint64_t out_pos;	/* bytes of the session's output consumed so far */
	/* Positions (ascending) where out_deflate flips: DEFLATE ends
	 * (Z_FINISH) or starts again (a fresh stream). */
	uint64_t out_switch[MAX_SWITCHES];
	size_t out_switches;
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

/* Moves src to dst as it is, at most limit bytes (-1: all). */
static size_t pass_raw(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit)
{
	size_t n = evbuffer_get_length(src);
	if (limit >= 0 && (size_t)limit < n)
		n = (size_t)limit;
	if (n == 0)
		return 0;
	int moved = evbuffer_remove_buffer(src, dst, n);
	return moved > 0 ? (size_t)moved : 0;
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
	if (df->in_mode == IN_ENDED)
		return BEV_NEED_MORE;
	if (df->in_mode == IN_RAW)
		return pass_raw(src, dst, limit) > 0 ? BEV_OK : BEV_NEED_MORE;
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
		if (out > 0 && df->in_end_ok) {
			/* RFC 8437 3: the client's layer ends right after the
			 * CRLF of UNAUTHENTICATE; nothing more may be in it
			 * (and none of it reaches the session). */
			ov.iov_len = 0;
			evbuffer_commit_space(dst, &ov, 1);
			fail(df, "data after the announced end of the DEFLATE stream");
			evbuffer_drain(src, evbuffer_get_length(src));
			return progress ? BEV_OK : BEV_NEED_MORE;
		}
		ov.iov_len = out;
		evbuffer_commit_space(dst, &ov, 1);
		produced += out;
		if (used > 0 || out > 0)
			progress = true;
		if (r == Z_STREAM_END) {
			if (df->in_end_ok) {
				/* Where it was announced: the bytes after
				 * it, and all later ones, are plain. */
				df->in_end_ok = false;
				df->in_mode = IN_RAW;
				size_t left = (size_t)-1;
				if (limit >= 0)
					left = (size_t)limit > produced ? (size_t)limit - produced : 0;
				if (pass_raw(src, dst, left == (size_t)-1 ? -1 : (ev_ssize_t)left) > 0)
					progress = true;
				return progress ? BEV_OK : BEV_NEED_MORE;
			}
			/* RFC 4978 3: the stream never ends while the
			 * connection lasts, unless the session ends it
			 * (UNAUTHENTICATE, RFC 8437 3) and it may not have
			 * read that command yet: hold what follows below
			 * until it does (deflate_filter_end) or has read
			 * everything before the end (deflate_filter_check). */
			df->in_mode = IN_ENDED;
			deflate_filter_check(df);
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

/* Applies the switches due at out_pos: DEFLATE ends there (Z_FINISH, the
 * rest of the stream into dst) or a fresh stream starts. */
static bool out_switch_due(struct deflate_filter *df, struct evbuffer *dst)
{
	bool any = false;
	while (df->out_switches > 0 && df->out_switch[0] == df->out_pos) {
		if (df->out_deflate) {
			unsigned char none = 0;
			df->out.next_in = &none;
			df->out.avail_in = 0;
			deflate_all(df, dst, Z_FINISH);
			df->dirty = false;
		} else {
			deflateReset(&df->out);
		}
		df->out_deflate = !df->out_deflate;
		df->out_switches--;
		memmove(df->out_switch, df->out_switch + 1,
			df->out_switches * sizeof(df->out_switch[0]));
		any = true;
	}
	return any;
}

/* Deflates src into dst while dst has room (limit, -1: none), then flushes
 * when asked to (BEV_FLUSH) or schedules that flush for later in this loop
 * iteration. Past a switch to plain, bytes are copied as they are. */
static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst,
						 ev_ssize_t limit,
						 enum bufferevent_flush_mode mode, void *arg)
{
	struct deflate_filter *df = arg;
	size_t produced = 0;
	bool progress = out_switch_due(df, dst);
	while (evbuffer_get_length(src) > 0 && (limit < 0 || produced < (size_t)limit)) {
		/* Up to the next switch at most. */
		size_t most = CHUNK;
		if (df->out_switches > 0 && df->out_switch[0] - df->out_pos < most)
			most = (size_t)(df->out_switch[0] - df->out_pos);
		if (!df->out_deflate) {
			if (limit >= 0 && (size_t)limit - produced < most)
				most = (size_t)limit - produced;
			size_t n = pass_raw(src, dst, (ev_ssize_t)most);
			if (n == 0)
				break;	/* dst frozen (being freed) */
			produced += n;
			df->out_pos += n;
		} else {
			struct evbuffer_iovec iv;
			if (evbuffer_peek(src, -1, NULL, &iv, 1) < 1)
				break;
			if (iv.iov_len > most)
				iv.iov_len = most;
			df->out.next_in = iv.iov_base;
			df->out.avail_in = (uInt)iv.iov_len;
			produced += deflate_all(df, dst, Z_NO_FLUSH);
			size_t used = iv.iov_len - df->out.avail_in;
			if (used == 0)
				break;	/* no room in dst */
			evbuffer_drain(src, used);
			df->out_pos += used;
			df->dirty = true;
		}
		progress = true;
		out_switch_due(df, dst);
	}
	if (evbuffer_get_length(src) == 0 && df->dirty && df->out_deflate) {
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
	df->on = df->out_deflate = true;
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

/* The session's output from here on, and the peer's input after the end of
 * its stream, are plain. */
void deflate_filter_end(struct deflate_filter *df)
{
	if (!df->on || df->failed)
		return;
	df->on = false;
	struct bufferevent *under = bufferevent_get_underlying(df->bev);
	uint64_t at = df->out_pos + evbuffer_get_length(bufferevent_get_output(df->bev));
	if (df->out_switches == MAX_SWITCHES) {
		fail(df, "too many DEFLATE ends and starts queued");
		return;
	}
	df->out_switch[df->out_switches++] = at;
	/* Nothing queued above: the stream ends now (the OK is out). */
	out_switch_due(df, bufferevent_get_output(under));

	/* Input the session has not read yet came after its command in the
	 * peer's stream, where RFC 8437 3 says the stream ends. */
	if (evbuffer_get_length(bufferevent_get_input(df->bev)) > 0) {
		fail(df, "data after the announced end of the DEFLATE stream");
		return;
	}
	if (df->in_mode == IN_ENDED) {
		/* The end came with the command: release what was held. */
		df->in_mode = IN_RAW;
		if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
			bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
					    BEV_TRIG_DEFER_CALLBACKS);
	} else {
		df->in_end_ok = true;
	}
}

void deflate_filter_check(struct deflate_filter *df)
{
	/* The session has read everything before the end of the peer's
	 * stream without ending compression itself. */
	if (df->in_mode == IN_ENDED && !df->failed &&
	    evbuffer_get_length(bufferevent_get_input(df->bev)) == 0)
		fail(df, "end of the DEFLATE stream");
}

int deflate_filter_restart(struct deflate_filter *df)
{
	if (df->on || df->failed || df->in_mode != IN_RAW)
		return -1;
	if (df->out_switches == MAX_SWITCHES)
		return -1;
	struct bufferevent *under = bufferevent_get_underlying(df->bev);
	/* Whatever passed up as plain after the command is the start of the
	 * new stream: back in front of what waits below. */
	struct evbuffer *in = bufferevent_get_input(df->bev);
	if (evbuffer_get_length(in) > 0 &&
	    evbuffer_prepend_buffer(bufferevent_get_input(under), in) < 0)
		return -1;
	inflateReset(&df->in);
	df->in_mode = IN_INFLATE;
	df->in_end_ok = false;
	df->on = true;
	df->out_switch[df->out_switches++] =
		df->out_pos + evbuffer_get_length(bufferevent_get_output(df->bev));
	out_switch_due(df, bufferevent_get_output(under));
	/* Have the filter read what waits below: only new input would. */
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
	return 0;
}

bool deflate_filter_on(const struct deflate_filter *df)
{
	return df->on;
}

bool deflate_filter_ended(const struct deflate_filter *df)
{
	return !df->on && !df->failed && df->in_mode == IN_RAW;
}
