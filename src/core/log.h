/* Logging: one line per event, "key=value" pairs after a short event name.
 *
 * Two kinds of fatal, as in Postfix's msg(3): log_fatal() is a problem in the
 * environment (a missing file, a full disk) and exits with status 1;
 * log_panic() is a bug in our code and aborts for a core dump. */
#ifndef YUBIN_CORE_LOG_H
#define YUBIN_CORE_LOG_H

#include <stdbool.h>
#include "core/util.h"

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

void log_set_level(enum log_level min);
/* Parses "debug", "info", "warn", "error". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *level_r);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF(2, 3);
#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

_Noreturn void log_fatal(const char *fmt, ...) PRINTF(1, 2);
_Noreturn void log_panic(const char *fmt, ...) PRINTF(1, 2);

#endif
