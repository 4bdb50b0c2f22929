/* The IMAP server (RFC 3501 IMAP4rev1, moving to RFC 9051 IMAP4rev2) for
 * the [imap] and [imaps] listeners. */
#ifndef YUBIN_IMAP_H
#define YUBIN_IMAP_H

struct config;
struct conn_handler;
struct store;

void imap_init(const struct config *config, struct store *store);
void imap_thread_deinit(void);
extern const struct conn_handler imap_conn_handler;

#endif
