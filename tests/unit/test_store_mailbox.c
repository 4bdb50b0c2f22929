/* Mailbox reads and writes against real SQLite in a temp folder: delivery,
 * listing, flag changes with mod-sequences, expunge with tombstones and
 * removal of unreferenced bodies. */
#include "test.h"
#include "core/buf.h"
#include "core/loop.h"
#include "core/util.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct loop *loop;
static int last_result;

static void done(void *arg, int result)
{
	last_result = result;
	loop_stop(loop);
}

static void wait_done(void)
{
	last_result = 99;
	loop_run(loop);
}

static void deliver(struct store *s, int64_t account, const char *subject)
{
	char *error = NULL;
	struct store_delivery *d = store_delivery_new(s, &error);
	CHECK(d != NULL);
	char *msg = xasprintf("Subject: %s\r\nFrom: a@b.example\r\n\r\nbody\r\n", subject);
	CHECK_INT(store_delivery_write(d, msg, strlen(msg)), 0);
	free(msg);
	store_delivery_set_sender(d, "a@b.example");
	store_delivery_add_local(d, account, "u@example.com");
	store_delivery_commit(d, loop, done, NULL);
	wait_done();
	CHECK_INT(last_result, 0);
}

static bool file_exists(const char *dir, const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	bool r = access(p, F_OK) == 0;
	free(p);
	return r;
}

static void test_mailbox_flow(void)
{
	char dir[] = "/tmp/yubin-test-store-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *data = xasprintf("%s/data", dir), *error = NULL;
	struct store *s = NULL;
	CHECK_INT(store_open(data, &s, &error), 0);
	CHECK_INT(store_writer_start(s, &error), 0);
	CHECK_INT(store_domain_add(s, "example.com", &error), 0);
	CHECK_INT(store_user_add(s, "u@example.com", "$argon2id$x", NULL, &error), 0);

	struct store_reader *r = store_reader_new(s);
	struct store_account acc;
	CHECK_INT(store_account_lookup(r, "U@Example.com", &acc), 1);
	int64_t account = acc.id;
	store_account_deinit(&acc);

	struct store_mailbox_entry *list = NULL;
	size_t nlist = 0;
	CHECK_INT(store_mailbox_list(r, account, &list, &nlist), 0);
	CHECK_INT(nlist, 5);
	CHECK_STR(list[0].name, "INBOX");
	CHECK(list[0].special_use == NULL);
	store_mailbox_list_free(&list, nlist);

	struct store_mailbox_info info;
	CHECK_INT(store_mailbox_get(r, account, "INBOX", &info), 1);
	CHECK_INT(store_mailbox_get(r, account, "Nope", &info), 0);
	uint64_t modseq0 = info.highestmodseq;

	deliver(s, account, "one");
	deliver(s, account, "two");
	deliver(s, account, "three");

	struct store_msg *msgs = NULL;
	size_t n = 0;
	CHECK_INT(store_mailbox_messages(r, info.id, &msgs, &n), 0);
	CHECK_INT(n, 3);
	CHECK_INT(msgs[0].uid, 1);
	CHECK_INT(msgs[2].uid, 3);
	CHECK(msgs[0].modseq > modseq0);
	/* what a reader gets: the per-recipient prefix, then the body file */
	CHECK_INT(msgs[0].size, msgs[0].prefix_len +
		  strlen("Subject: one\r\nFrom: a@b.example\r\n\r\nbody\r\n"));
	CHECK(strncmp(msgs[0].prefix, "Return-Path: <a@b.example>\r\n", 28) == 0);
	/* the listing a session holds: the same without the prefixes, each
	 * read when needed */
	struct store_msg *lean = NULL;
	size_t ln = 0;
	CHECK_INT(store_mailbox_listing(r, info.id, &lean, &ln), 0);
	CHECK_INT(ln, 3);
	for (size_t i = 0; i < ln && i < n; i++) {
		CHECK(lean[i].prefix == NULL);
		CHECK_INT(lean[i].uid, msgs[i].uid);
		CHECK_INT(lean[i].size, msgs[i].size);
		CHECK_INT(lean[i].prefix_len, msgs[i].prefix_len);
		CHECK(lean[i].emailid == msgs[i].emailid && lean[i].emailid != 0);
		struct buf p;
		buf_init(&p, 0);
		CHECK_INT(store_msg_prefix(r, info.id, lean[i].uid, &p), 1);
		CHECK(p.len == msgs[i].prefix_len && memcmp(p.data, msgs[i].prefix, p.len) == 0);
		buf_deinit(&p);
	}
	store_msgs_free(&lean, ln);
	struct buf none;
	buf_init(&none, 0);
	CHECK_INT(store_msg_prefix(r, info.id, 99, &none), 0);
	CHECK_INT(none.len, 0);
	buf_deinit(&none);
	char *body2 = xstrdup(msgs[1].body);
	uint64_t after_delivery = msgs[2].modseq;
	store_msgs_free(&msgs, n);

	/* flags: one new modseq for the whole STORE */
	uint32_t uids13[] = { 1, 3, 42 };
	store_flags_update(s, info.id, uids13, 3, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
			   "$Label1 $label2", STORE_UNCHANGEDSINCE_NONE, NULL, loop, done, NULL);
	wait_done();
	CHECK_INT(last_result, 0);
	struct store_changes ch;
	CHECK_INT(store_mailbox_changes(r, info.id, after_delivery, &ch), 0);
	CHECK_INT(ch.msg_count, 2);
	if (ch.msg_count == 2) {
		CHECK_INT(ch.msgs[0].uid, 1);
		CHECK_INT(ch.msgs[1].uid, 3);
		CHECK_INT(ch.msgs[0].flags, STORE_FLAG_SEEN);
		CHECK_STR(ch.msgs[0].keywords, "$Label1 $label2");
		CHECK(ch.msgs[0].modseq == ch.msgs[1].modseq);
		CHECK(ch.msgs[0].modseq == ch.highestmodseq);
	}
	uint64_t after_flags = ch.highestmodseq;
	store_changes_deinit(&ch);

	/* a STORE that changes nothing does not move the modseq */
	store_flags_update(s, info.id, uids13, 2, STORE_FLAGS_ADD, STORE_FLAG_SEEN,
			   "$LABEL1", STORE_UNCHANGEDSINCE_NONE, NULL, loop, done, NULL);
	wait_done();
	CHECK_INT(store_mailbox_changes(r, info.id, after_flags, &ch), 0);
	CHECK_INT(ch.msg_count, 0);
	CHECK(ch.highestmodseq == after_flags);
	store_changes_deinit(&ch);

	/* remove one keyword, case-insensitively; set replaces */
	store_flags_update(s, info.id, uids13, 1, STORE_FLAGS_REMOVE, 0, "$LABEL2",
			   STORE_UNCHANGEDSINCE_NONE, NULL, loop, done, NULL);
	wait_done();
	uint32_t uid3[] = { 3 };
	store_flags_update(s, info.id, uid3, 1, STORE_FLAGS_SET, STORE_FLAG_FLAGGED, NULL,
			   STORE_UNCHANGEDSINCE_NONE, NULL, loop, done, NULL);
	wait_done();

	/* UNCHANGEDSINCE (RFC 7162 3.1.3): UID 3 changed after UID 1 did;
	 * only 1 is changed, 3 is reported as modified (42 does not exist). */
	CHECK_INT(store_mailbox_messages(r, info.id, &msgs, &n), 0);
	uint64_t m1 = msgs[0].modseq, m3 = msgs[2].modseq;
	store_msgs_free(&msgs, n);
	struct store_flags_result res;
	store_flags_update(s, info.id, uids13, 3, STORE_FLAGS_ADD, STORE_FLAG_DRAFT, NULL,
			   m1, &res, loop, done, NULL);
	wait_done();
	CHECK_INT(last_result, 0);
	CHECK(m3 > m1);
	CHECK_INT(res.modified_count, 1);
	if (res.modified_count == 1)
		CHECK_INT(res.modified[0], 3);
	CHECK_INT(res.updated_count, 1);
	if (res.updated_count == 1) {
		CHECK_INT(res.updated[0], 1);
		CHECK(res.prior[0] == m1);
	}
	CHECK(res.modseq > m3);
	store_flags_result_deinit(&res);
	/* 0 always fails (a system flag always exists) */
	store_flags_update(s, info.id, uids13, 1, STORE_FLAGS_REMOVE, STORE_FLAG_DRAFT, NULL,
			   0, &res, loop, done, NULL);
	wait_done();
	CHECK_INT(res.modified_count, 1);
	CHECK_INT(res.updated_count, 0);
	CHECK(res.modseq == 0);
	store_flags_result_deinit(&res);
	store_flags_update(s, info.id, uids13, 1, STORE_FLAGS_REMOVE, STORE_FLAG_DRAFT, NULL,
			   STORE_UNCHANGEDSINCE_NONE, NULL, loop, done, NULL);
	wait_done();
	CHECK_INT(store_mailbox_messages(r, info.id, &msgs, &n), 0);
	CHECK_STR(msgs[0].keywords, "$Label1");
	CHECK_INT(msgs[2].flags, STORE_FLAG_FLAGGED);
	CHECK(msgs[2].keywords == NULL);
	store_msgs_free(&msgs, n);

	struct store_status st;
	CHECK_INT(store_mailbox_status(r, info.id, &st), 0);
	CHECK_INT(st.messages, 3);
	CHECK_INT(st.unseen, 2);
	CHECK_INT(st.uidnext, 4);

	/* expunge: tombstone, body file gone */
	CHECK(file_exists(data, body2));
	uint64_t before_expunge = st.highestmodseq;
	uint32_t uid2[] = { 2 };
	store_expunge(s, info.id, uid2, 1, loop, done, NULL);
	wait_done();
	CHECK_INT(last_result, 0);
	/* the remover thread unlinks it after the answer */
	for (int i = 0; i < 500 && file_exists(data, body2); i++)
		usleep(10000);
	CHECK(!file_exists(data, body2));
	CHECK_INT(store_mailbox_changes(r, info.id, before_expunge, &ch), 0);
	CHECK_INT(ch.expunged_count, 1);
	if (ch.expunged_count)
		CHECK_INT(ch.expunged[0], 2);
	CHECK_INT(ch.msg_count, 0);
	store_changes_deinit(&ch);
	CHECK_INT(store_mailbox_status(r, info.id, &st), 0);
	CHECK_INT(st.messages, 2);
	/* the tombstone, for QRESYNC */
	uint32_t *gone;
	size_t ngone;
	CHECK_INT(store_mailbox_expunged(r, info.id, before_expunge, &gone, &ngone), 0);
	CHECK_INT(ngone, 1);
	if (ngone == 1)
		CHECK_INT(gone[0], 2);
	free(gone);
	CHECK_INT(store_mailbox_expunged(r, info.id, st.highestmodseq, &gone, &ngone), 0);
	CHECK_INT(ngone, 0);
	free(gone);

	free(body2);
	store_reader_free(&r);
	store_close(&s);
	char *cmd = xasprintf("rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	free(data);
}

int main(void)
{
	loop_global_init();
	loop = loop_new();
	RUN(test_mailbox_flow);
	loop_free(&loop);
	return test_done();
}
