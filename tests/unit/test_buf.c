/* core/buf: the hard maximum holds on every path. */
#include "test.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdlib.h>

static void test_append_and_max(void)
{
	struct buf b;
	buf_init(&b, 10);
	CHECK_INT(buf_append(&b, "hello", 5), 0);
	CHECK_INT(buf_append_str(&b, "world"), 0);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "helloworld");
	/* one byte over the maximum: refused, nothing appended */
	CHECK_INT(buf_append_c(&b, '!'), -1);
	CHECK_INT(buf_printf(&b, "%d", 1), -1);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "helloworld");
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK_INT(buf_printf(&b, "%s-%d", "ab", 42), 0);
	CHECK_STR(b.data, "ab-42");
	/* a huge length cannot wrap around the check */
	CHECK_INT(buf_append(&b, "x", (size_t)-1), -1);
	buf_deinit(&b);
}

static void test_binary_and_growth(void)
{
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < 10000; i++)
		CHECK_INT(buf_append(&b, "\0a", 2), 0);
	CHECK_INT(b.len, 20000);
	CHECK(b.data[0] == '\0' && b.data[1] == 'a' && b.data[19999] == 'a');
	CHECK(b.data[20000] == '\0');
	size_t len;
	char *p = buf_steal(&b, &len);
	CHECK_INT(len, 20000);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
	buf_deinit(&b);
}

static void test_str_helpers(void)
{
	uint64_t v;
	CHECK_INT(str_to_u64("18446744073709551615", &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_INT(str_to_u64("18446744073709551616", &v), -1);
	CHECK_INT(str_to_u64("", &v), -1);
	CHECK_INT(str_to_u64("-1", &v), -1);
	CHECK_INT(str_to_u64(" 1", &v), -1);
	CHECK_INT(str_to_u64("007", &v), 0);
	CHECK_INT(v, 7);
	CHECK(str_ieq("EHLO", "ehlo"));
	CHECK(!str_ieq("EHLO", "ehl"));
	CHECK(str_istarts("FROM:<a>", "from:"));
	CHECK(!str_istarts("FRO", "from:"));
}

int main(void)
{
	RUN(test_append_and_max);
	RUN(test_binary_and_growth);
	RUN(test_str_helpers);
	return test_done();
}
