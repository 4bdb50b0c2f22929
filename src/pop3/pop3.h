/* The POP3 server (RFC 1939) for the [pop3] (STLS, RFC 2595) and [pop3s]
 * (implicit TLS, RFC 8314) listeners, with the extensions of RFC 2449
 * (CAPA, response codes), RFC 5034 (SASL AUTH) and RFC 6856 (UTF8).
 *
 * The maildrop is the account's INBOX. A session takes it at login: the
 * message list (numbers, sizes, UIDs) is fixed from then on, and the
 * account is locked against a second POP3 session (-ERR [IN-USE]) until
 * the session ends. Deletions are applied only by QUIT, in one store
 * transaction (store_expunge); a connection that drops deletes nothing. */
#ifndef YUBIN_POP3_H
#define YUBIN_POP3_H

struct config;
struct conn_handler;
struct store;

/* Must be called before any session starts; both must outlive them. */
void pop3_init(const struct config *config, struct store *store);
/* Per I/O thread: frees the thread's store reader. */
void pop3_thread_deinit(void);
/* The connection callbacks for the POP3 listeners. */
extern const struct conn_handler pop3_conn_handler;

#endif
