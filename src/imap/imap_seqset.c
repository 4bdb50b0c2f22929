#include "imap/imap_seqset.h"
#include "core/util.h"

#include <stdlib.h>

static int number(const char **p, uint32_t star, uint32_t *n_r)
{
	if (**p == '*') {
		(*p)++;
		*n_r = star;
		return 0;
	}
	/* nz-number = digit-nz *DIGIT, within 32 bits */
	if (**p < '1' || **p > '9')
		return -1;
	uint64_t v = 0;
	while (**p >= '0' && **p <= '9') {
		v = v * 10 + (uint64_t)(**p - '0');
		if (v > UINT32_MAX)
			return -1;
		(*p)++;
	}
	*n_r = (uint32_t)v;
	return 0;
}

int seqset_parse(const char *s, uint32_t star, struct seqset *set)
{
	set->count = 0;
	set->r = NULL;
	const char *p = s;
	size_t cap = 0;
	for (;;) {
		uint32_t a, b;
		if (number(&p, star, &a) < 0)
			goto bad;
		b = a;
		if (*p == ':') {
			p++;
			if (number(&p, star, &b) < 0)
				goto bad;
		}
		if (set->count == cap) {
			if (cap >= SEQSET_RANGES_MAX)
				goto bad;
			cap = cap ? cap * 2 : 4;
			set->r = xrealloc(set->r, cap * sizeof(*set->r));
		}
		set->r[set->count].lo = a < b ? a : b;
		set->r[set->count].hi = a < b ? b : a;
		set->count++;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	seqset_deinit(set);
	return -1;
}

bool seqset_has(const struct seqset *set, uint32_t n)
{
	for (size_t i = 0; i < set->count; i++) {
		if (n >= set->r[i].lo && n <= set->r[i].hi)
			return true;
	}
	return false;
}

void seqset_deinit(struct seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->count = 0;
}
