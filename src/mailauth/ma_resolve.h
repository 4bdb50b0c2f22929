/* The evaluators' questions (ma_dns.h) asked of the real DNS, through dns/
 * (c-ares in the calling thread's event loop).
 *
 * Same rules as dns.h: call on a thread that ran dns_thread_init(); the
 * callback runs later, from the loop, exactly once unless the lookup is
 * cancelled, never inside ma_resolve() itself. The answer and everything
 * it points to live during the callback only. The handle belongs to the
 * library until the callback runs or ma_resolve_cancel() is called; never
 * cancel from inside the callback. */
#ifndef YUBIN_MA_RESOLVE_H
#define YUBIN_MA_RESOLVE_H

#include "mailauth/ma_dns.h"

struct ma_lookup;

typedef void ma_resolve_cb(const struct ma_answer *answer, void *ctx);

/* Asks q (copied). A name that cannot be asked is answered MA_DNS_PERMFAIL
 * through the callback too. */
struct ma_lookup *ma_resolve(const struct ma_query *q, ma_resolve_cb *cb, void *ctx);
/* Forgets the lookup: the callback will not run. Sets *l to NULL; NULL is
 * fine. */
void ma_resolve_cancel(struct ma_lookup **l);

#endif
