/* IMAP sequence sets (RFC 9051 9: sequence-set), for message numbers and
 * UIDs: "1:4,7,10:*". "*" stands for the largest number in use; "n:m" and
 * "m:n" are the same range. */
#ifndef YUBIN_IMAP_SEQSET_H
#define YUBIN_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEQSET_RANGES_MAX 10000

struct seqset {
	size_t count;
	struct { uint32_t lo, hi; } *r;	/* with "*" already replaced */
};

/* Parses s, replacing "*" by star. Returns 0 or -1 (syntax, or a 0). */
int seqset_parse(const char *s, uint32_t star, struct seqset *set_r);
bool seqset_has(const struct seqset *set, uint32_t n);
void seqset_deinit(struct seqset *set);

#endif
