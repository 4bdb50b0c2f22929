/* A raw DEFLATE (RFC 1951, zlib with windowBits -15) filter bufferevent,
 * for IMAP COMPRESS=DEFLATE (RFC 4978): input is inflated, output deflated.
 *
 * Output is deflated as it is written and flushed (Z_SYNC_FLUSH) once per
 * loop iteration in which something was written, so a reply is never held
 * back yet several writes share one flush. Inflated input never grows the
 * filter's input past its read high watermark by more than one DEFLATE
 * match (258 bytes): a decompression bomb stays bounded. Compression can
 * be ended and started again (deflate_filter_end, deflate_filter_restart):
 * the filter stays, passing bytes through as they are in between. Internal
 * to net/. */
#ifndef YUBIN_NET_DEFLATE_H
#define YUBIN_NET_DEFLATE_H

#include <stdbool.h>

struct bufferevent;
struct deflate_filter;

/* Called (once) when the peer's stream is not valid DEFLATE; the filter
 * then discards all further input. why is for logs. */
typedef void deflate_error_fn(void *arg, const char *why);

/* A filter over under (which it frees with itself). Returns NULL if zlib
 * fails to start. *df_r is for deflate_filter_detach(). */
struct bufferevent *deflate_filter_new(struct bufferevent *under, deflate_error_fn *on_error,
				       void *arg, struct deflate_filter **df_r);
/* Before freeing the bufferevent: no more callbacks to arg. */
void deflate_filter_detach(struct deflate_filter *df);

/* Ends compression both ways (IMAP UNAUTHENTICATE, RFC 8437 3): the output
 * written so far is deflated and the stream finished (Z_FINISH) after its
 * last byte, even if part of it still waits above the compressor; what is
 * written later passes plain. The peer's stream must end (Z_STREAM_END)
 * right after what the session has read: input after that end passes
 * plain, more DEFLATE data before it is an error. */
void deflate_filter_end(struct deflate_filter *df);
/* A fresh DEFLATE stream both ways after deflate_filter_end(), once the
 * peer's stream has ended: output from what is written next, input from
 * the first byte the session has not read. -1 if the peer's stream has not
 * ended (or too many switches are queued). */
int deflate_filter_restart(struct deflate_filter *df);
/* Whether compression is on for the session (not ended). */
bool deflate_filter_on(const struct deflate_filter *df);
/* Ended both ways (after deflate_filter_end() and the peer's end): it
 * only passes bytes through. */
bool deflate_filter_ended(const struct deflate_filter *df);
/* After the session has read: a peer's stream that ended without
 * deflate_filter_end() is an error once everything before its end is
 * read (RFC 4978 3: the stream does not end). */
void deflate_filter_check(struct deflate_filter *df);

#endif
