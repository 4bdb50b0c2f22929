/* The SMTP server (RFC 5321) for the [smtp], [submission] and [submissions]
 * listeners. */
#ifndef YUBIN_SMTP_H
#define YUBIN_SMTP_H

struct config;
struct conn_handler;
struct store;

/* Must be called before any session starts; both must outlive them. */
void smtp_init(const struct config *config, struct store *store);
/* Per I/O thread: frees the thread's store reader. */
void smtp_thread_deinit(void);
/* The connection callbacks for SMTP listeners. */
extern const struct conn_handler smtp_conn_handler;

#endif
