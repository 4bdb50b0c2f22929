/* A tiny table-friendly unit test harness.
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); CHECK_STR(a, "b"); }
 *   int main(void) { RUN(test_x); return test_done(); }
 *
 * Prints "N passed, N failed" at the end and exits non-zero on failure. */
#ifndef YUBIN_TEST_H
#define YUBIN_TEST_H

#include <stdio.h>
#include <string.h>

#define UNUSED_T __attribute__((unused))

static int test_failures UNUSED_T, test_checks UNUSED_T, test_passed_fns UNUSED_T, test_failed_fns UNUSED_T;

#define CHECK(cond) do { \
	test_checks++; \
	if (!(cond)) { \
		test_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *a_ = (a), *b_ = (b); \
	test_checks++; \
	if (a_ == NULL || b_ == NULL ? a_ != b_ : strcmp(a_, b_) != 0) { \
		test_failures++; \
		fprintf(stderr, "%s:%d: CHECK_STR failed: %s is \"%s\", want \"%s\"\n", \
			__FILE__, __LINE__, #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
	} \
} while (0)

#define CHECK_INT(a, b) do { \
	long long a_ = (long long)(a), b_ = (long long)(b); \
	test_checks++; \
	if (a_ != b_) { \
		test_failures++; \
		fprintf(stderr, "%s:%d: CHECK_INT failed: %s is %lld, want %lld\n", \
			__FILE__, __LINE__, #a, a_, b_); \
	} \
} while (0)

#define RUN(fn) do { \
	int before_ = test_failures; \
	fn(); \
	if (test_failures == before_) { test_passed_fns++; } \
	else { test_failed_fns++; fprintf(stderr, "FAIL %s\n", #fn); } \
} while (0)

static inline int test_done(void)
{
	printf("%d passed, %d failed\n", test_passed_fns, test_failed_fns);
	return test_failures ? 1 : 0;
}

#endif
