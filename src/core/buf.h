/* A growable, binary-safe byte buffer with a hard maximum.
 *
 * The maximum is what keeps a hostile peer from making us allocate without
 * bound: every append checks it first and fails rather than grow past it.
 * data is always NUL-terminated after data[len] so it can be used as a C
 * string when the content is known to be text. */
#ifndef YUBIN_CORE_BUF_H
#define YUBIN_CORE_BUF_H

#include <stddef.h>
#include "core/util.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;	/* 0: no limit (only for trusted, internal data) */
};

void buf_init(struct buf *b, size_t max);
/* Releases the memory; the buffer may be initialised again. */
void buf_deinit(struct buf *b);
void buf_reset(struct buf *b);
/* Append n bytes. Returns 0, or -1 (nothing appended) if max would be exceeded. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_c(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) PRINTF(2, 3);
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) PRINTF(2, 0);
/* Takes the data away: the caller frees it; the buffer is left empty. */
char *buf_steal(struct buf *b, size_t *len_r);

#endif
