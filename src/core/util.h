/* Small utilities every module uses: allocation that never returns NULL,
 * string helpers, time. */
#ifndef YUBIN_CORE_UTIL_H
#define YUBIN_CORE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Allocation failure aborts inside these wrappers (an out-of-memory server
 * cannot keep its promises anyway), so callers never check for NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTF(1, 0);
/* Frees *p and sets it to NULL. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

/* ASCII-only case helpers: protocol keywords are ASCII. */
bool str_ieq(const char *a, const char *b);
bool str_nieq(const char *a, const char *b, size_t n);
/* True when s starts with prefix, ASCII case-insensitively. */
bool str_istarts(const char *s, const char *prefix);
void str_lower(char *s);

/* Parses a decimal unsigned number of the whole string, refusing overflow,
 * signs, blanks and empty input. Returns 0 or -1. */
int str_to_u64(const char *s, uint64_t *value_r);

/* Wipes memory that held a secret so the compiler cannot drop the store. */
void mem_wipe(void *p, size_t n);

/* Wall clock in milliseconds and seconds since the epoch. */
int64_t time_now_ms(void);
/* Monotonic clock in milliseconds. */
int64_t time_mono_ms(void);

/* RFC 5322 date-time of t in local time, e.g. "Sun, 22 Nov 2026 07:38:12 +0000".
 * buf must hold 64 bytes. */
void time_rfc5322(int64_t t, char buf[64]);

/* Writes the whole buffer, retrying on EINTR and short writes.
 * Returns 0 or -1 with errno set. */
int write_full(int fd, const void *p, size_t n);

/* Fills p with n unpredictable bytes (libsodium). */
void random_bytes(void *p, size_t n);

#endif
