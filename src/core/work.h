/* A small pool of threads for blocking work (password hashing, large file
 * reads), so no event loop ever waits for it.
 *
 * work_submit() runs fn(arg) on a pool thread, then done(arg) on the given
 * loop's thread. Jobs run in submission order as threads free up. */
#ifndef YUBIN_CORE_WORK_H
#define YUBIN_CORE_WORK_H

struct loop;

typedef void work_fn(void *arg);

/* Starts threads workers (0: one per core). */
void work_start(unsigned threads);
/* Finishes every job already submitted (their done calls are posted), then
 * stops the threads. */
void work_stop(void);
void work_submit(work_fn *fn, work_fn *done, void *arg, struct loop *loop);

#endif
