/* The outbound queue: remote recipients wait in the store's queue table
 * until the scheduler delivers them (smtp/smtp_client.h), bounces them, or
 * gives up on them after [queue] max_age.
 *
 * The scheduler runs on a thread of its own with its own event loop. Each
 * second (and at once when a delivery queues mail) it reads the rows that
 * are due, groups them by destination domain, and sends each domain's
 * messages over one connection at a time (one attempt per domain at once,
 * at most [queue] max_destinations domains at once), trying the domain's
 * MX hosts in order. A row leaves the queue only in the transaction that
 * records its fate; a bounce is committed before the rows it reports on
 * are removed. So a crash or a restart repeats at worst the last attempt
 * (the peer may get a message twice, RFC 5321 6.1), and never loses one. */
#ifndef YUBIN_QUEUE_QUEUE_H
#define YUBIN_QUEUE_QUEUE_H

struct config;
struct store;

/* Starts the scheduler thread. Returns 0 or -1 (logged). */
int queue_start(const struct config *cfg, struct store *store);
/* Stops it: attempts in progress are cut, their rows stay due. Before
 * store_writer_stop(). */
void queue_stop(void);
/* After store_writer_stop(): frees what is left. */
void queue_free(void);
/* Something was queued: look now rather than at the next tick. Any thread. */
void queue_kick(void);

#endif
