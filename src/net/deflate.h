/* A raw DEFLATE (RFC 1951, zlib with windowBits -15) filter bufferevent,
 * for IMAP COMPRESS=DEFLATE (RFC 4978): input is inflated, output deflated.
 *
 * Output is deflated as it is written and flushed (Z_SYNC_FLUSH) once per
 * loop iteration in which something was written, so a reply is never held
 * back yet several writes share one flush. Inflated input never grows the
 * filter's input past its read high watermark by more than one DEFLATE
 * match (258 bytes): a decompression bomb stays bounded. Internal to net/. */
#ifndef YUBIN_NET_DEFLATE_H
#define YUBIN_NET_DEFLATE_H

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

#endif
