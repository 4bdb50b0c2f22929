/* libFuzzer target: SMTP paths and addresses (src/smtp/address.c).
 *
 * The input is parsed as a MAIL/RCPT argument under all four flag sets, as a
 * bare address and as a bare domain. The invariants checked:
 *   - success leaves sane results within the RFC 5321 limits, and anything
 *     needing a flag (null path, 8-bit) was allowed by the flags;
 *   - the canonical form (address_to_string) parses again to the very same
 *     address, so what we store and compare is stable;
 *   - failure always says why and leaves nothing allocated.
 * Run with fuzz/address.dict and the seeds in fuzz/corpus/address/. */
#include "smtp/address.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned flag_sets[] = {
	0,
	ADDRESS_ALLOW_NULL,
	ADDRESS_ALLOW_UTF8,
	ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8,
};

static bool same_address(const struct address *a, const struct address *b)
{
	return strcmp(a->local, b->local) == 0 && strcmp(a->domain, b->domain) == 0 &&
		a->is_null == b->is_null && a->domain_literal == b->domain_literal &&
		a->utf8 == b->utf8;
}

static void check_address(const struct address *a, unsigned flags)
{
	if (a->local == NULL || a->domain == NULL)
		abort();
	if (strlen(a->local) > ADDRESS_LOCAL_MAX || strlen(a->domain) > ADDRESS_DOMAIN_MAX)
		abort();
	if (a->is_null && ((flags & ADDRESS_ALLOW_NULL) == 0 || a->local[0] || a->domain[0]))
		abort();
	if (a->utf8 && (flags & ADDRESS_ALLOW_UTF8) == 0)
		abort();
	if (!a->is_null && a->local[0] == '\0')
		abort();
	if (!utf8_valid(a->local, strlen(a->local)) || !utf8_valid(a->domain, strlen(a->domain)))
		abort();
	for (const char *p = a->domain; *p; p++) {
		if (*p >= 'A' && *p <= 'Z' && !a->domain_literal)
			abort();
	}
}

static void fuzz_path(const char *in, size_t len, unsigned flags)
{
	struct smtp_path_args args;
	const char *error = NULL;

	if (smtp_path_parse(in, len, flags, &args, &error) < 0) {
		if (error == NULL || args.addr.local != NULL || args.addr.domain != NULL ||
		    args.param_count != 0)
			abort();
		return;
	}
	check_address(&args.addr, flags);
	if (args.param_count > SMTP_PARAMS_MAX)
		abort();
	for (size_t i = 0; i < args.param_count; i++) {
		if (args.params[i].keyword == NULL || args.params[i].keyword[0] == '\0')
			abort();
		if (args.params[i].value != NULL && args.params[i].value[0] == '\0')
			abort();
	}

	/* Canonical form, inside brackets, parses to the same address. */
	char *s = address_to_string(&args.addr);
	char *path = xasprintf("<%s>", s);
	struct smtp_path_args again;
	if (smtp_path_parse(path, strlen(path), flags, &again, &error) < 0)
		abort();
	if (!same_address(&args.addr, &again.addr) || again.param_count != 0)
		abort();
	smtp_path_args_deinit(&again);

	/* And the copy is a deep, equal copy. */
	struct address copy;
	address_copy(&copy, &args.addr);
	smtp_path_args_deinit(&args);
	char *s2 = address_to_string(&copy);
	if (strcmp(s, s2) != 0)
		abort();
	address_deinit(&copy);
	free(s2);
	free(path);
	free(s);
}

static void fuzz_address(const char *in, unsigned flags)
{
	struct address a, b;
	const char *error = NULL;

	if (address_parse(in, flags, &a, &error) < 0) {
		if (error == NULL || a.local != NULL || a.domain != NULL)
			abort();
		return;
	}
	check_address(&a, flags);
	char *s = address_to_string(&a);
	if (address_parse(s, flags, &b, &error) < 0 || !same_address(&a, &b))
		abort();
	address_deinit(&b);
	address_deinit(&a);
	free(s);
}

static void fuzz_domain(const char *in, unsigned flags)
{
	char *d = NULL, *d2 = NULL;
	const char *error = NULL;

	if (address_parse_domain(in, flags, &d, &error) < 0) {
		if (error == NULL || d != NULL)
			abort();
		return;
	}
	if (strlen(d) != strlen(in) || !str_ieq(d, in) || strlen(d) > ADDRESS_DOMAIN_MAX)
		abort();
	if (address_parse_domain(d, flags, &d2, &error) < 0 || strcmp(d, d2) != 0)
		abort();
	/* A domain is a valid domain part of an address. */
	char *addr = xasprintf("u@%s", d);
	struct address a;
	if (strlen(addr) + 2 <= ADDRESS_PATH_MAX) {
		if (address_parse(addr, flags, &a, &error) < 0 || strcmp(a.domain, d) != 0)
			abort();
		address_deinit(&a);
	}
	free(addr);
	free(d2);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The path parser gets the exact bytes; the string parsers a
	 * NUL-terminated copy (which ends at the first NUL, as C strings do). */
	char *str = xmalloc(size + 1);
	memcpy(str, data, size);
	str[size] = '\0';

	for (size_t i = 0; i < ARRAY_SIZE(flag_sets); i++) {
		fuzz_path((const char *)data, size, flag_sets[i]);
		fuzz_address(str, flag_sets[i]);
		fuzz_domain(str, flag_sets[i]);
	}
	free(str);
	return 0;
}
