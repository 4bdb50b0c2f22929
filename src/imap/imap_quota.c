/* QUOTA (RFC 9208): one quota root per account, "", with the resources
 * STORAGE (in KiB) and MESSAGE, for every mailbox of the account. Limits
 * are set with `yubin user quota`, never over IMAP (SETQUOTA is NO). A
 * resource without a limit is not reported; an account without any has no
 * quota root. */
#include "imap/imap_private.h"
#include "core/buf.h"
#include "core/util.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *arg_string(const struct imap_arg *a, size_t n, size_t i)
{
	return i < n && imap_arg_is_string(&a[i]) ? a[i].str : NULL;
}

/* The resource list, "STORAGE 10 100 MESSAGE 2 5", for the limited ones. */
static void resources(struct buf *b, const struct store_quota *q)
{
	if (q->storage_limit) {
		buf_printf(b, "STORAGE %" PRIu64 " %" PRIu64, (q->storage_used + 1023) / 1024,
			   q->storage_limit / 1024);
	}
	if (q->message_limit) {
		buf_printf(b, "%sMESSAGE %" PRIu64 " %" PRIu64, q->storage_limit ? " " : "",
			   q->messages_used, q->message_limit);
	}
}

static bool has_root(const struct store_quota *q)
{
	return q->storage_limit || q->message_limit;
}

static int get(struct imap_session *s, struct store_quota *q)
{
	if (store_quota_get(imap_reader(), s->account_id, q) <= 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot read the quota");
		return -1;
	}
	return 0;
}

static void reply_quota(struct imap_session *s, const struct store_quota *q)
{
	struct buf b;
	buf_init(&b, 0);
	resources(&b, q);
	imap_reply(s, "* QUOTA \"\" (%s)", b.data);
	buf_deinit(&b);
}

void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *arg = arg_string(a, n, 0);
	if (arg == NULL || n != 1) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	char *name = imap_decode_name(s, arg);
	if (name == NULL)
		return;		/* answered */
	struct store_mailbox_info info;
	int r = store_mailbox_get(imap_reader(), s->account_id, name, &info);
	free(name);
	if (r <= 0) {
		imap_tagged(s, "NO", r == 0 ? "[NONEXISTENT] No such mailbox" :
			    "[SERVERBUG] Cannot open the mailbox");
		return;
	}
	struct store_quota q;
	if (get(s, &q) < 0)
		return;
	struct buf b;
	buf_init(&b, 0);
	imap_append_astring(&b, arg, strlen(arg));
	imap_reply(s, "* QUOTAROOT %s%s", b.data, has_root(&q) ? " \"\"" : "");
	buf_deinit(&b);
	if (has_root(&q))
		reply_quota(s, &q);
	imap_tagged(s, "OK", "Getquotaroot completed");
}

void imap_cmd_getquota(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	const char *root = arg_string(a, n, 0);
	if (root == NULL || n != 1) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTA root");
		return;
	}
	struct store_quota q;
	if (get(s, &q) < 0)
		return;
	if (*root != '\0' || !has_root(&q)) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	reply_quota(s, &q);
	imap_tagged(s, "OK", "Getquota completed");
}

void imap_cmd_setquota(struct imap_session *s, const struct imap_arg *a, size_t n)
{
	/* RFC 9208 4.3: a server may refuse; limits are the administrator's. */
	imap_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator");
}

bool imap_quota_over(struct imap_session *s, uint64_t bytes, uint64_t messages)
{
	struct store_quota q;
	if (store_quota_get(imap_reader(), s->account_id, &q) <= 0)
		return false;	/* the store's own errors follow, if any */
	return store_quota_exceeded(&q, bytes, messages);
}
