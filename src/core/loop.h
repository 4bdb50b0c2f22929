/* An event loop (libevent base) owned by one thread, plus a way for other
 * threads to run a function on it.
 *
 * The store's writer thread finishes a commit and must answer the SMTP
 * client on the thread that owns the connection: it calls loop_post(), and
 * the function runs on that loop's thread at its next turn. */
#ifndef YUBIN_CORE_LOOP_H
#define YUBIN_CORE_LOOP_H

struct event_base;
struct loop;

typedef void loop_fn(void *arg);

/* Must be called once before any loop is made (enables libevent threads). */
void loop_global_init(void);

struct loop *loop_new(void);
void loop_free(struct loop **loop);
struct event_base *loop_base(struct loop *loop);

/* Runs fn(arg) on the loop's thread. Safe from any thread. Calls are run in
 * the order posted. */
void loop_post(struct loop *loop, loop_fn *fn, void *arg);

/* Runs the loop until loop_stop(). */
void loop_run(struct loop *loop);
/* Safe from any thread. */
void loop_stop(struct loop *loop);

#endif
