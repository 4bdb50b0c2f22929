/* Internals of the MIME part tree, shared by mime.c (which builds it) and
 * mime_imap.c (which writes ENVELOPE and BODYSTRUCTURE from it). Nothing
 * outside src/mime/ includes this file.
 *
 * Every string of the tree lives in one arena (msg->arena) and is named by
 * a struct mstr, an offset and a length, so that growing the arena never
 * leaves a dangling pointer and a message costs a handful of allocations,
 * not one per string. */
#ifndef YUBIN_MIME_MIME_PRIVATE_H
#define YUBIN_MIME_MIME_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "mime/mime.h"

#define MSTR_NIL UINT32_MAX

/* A string in msg->arena; off == MSTR_NIL is NIL (absent). The arena keeps
 * a NUL after each string, so arena + off is also a C string. */
struct mstr {
	uint32_t off;
	uint32_t len;
};

struct mime_param {
	struct mstr name, value;
};

/* RFC 3501 7.4.2 address: group start is (NIL NIL "name" NIL), group end
 * all NIL. */
struct mime_addr {
	struct mstr name, route, mailbox, domain;
};

enum mime_env_addr {
	MIME_ENV_FROM,
	MIME_ENV_SENDER,
	MIME_ENV_REPLY_TO,
	MIME_ENV_TO,
	MIME_ENV_CC,
	MIME_ENV_BCC,
	MIME_ENV_ADDR_COUNT
};

struct mime_envelope {
	struct mstr date, subject, in_reply_to, message_id;
	/* Each list is a run in msg->addrs; count 0 with present false is
	 * NIL (no such field, or a field without addresses). */
	uint32_t addr_start[MIME_ENV_ADDR_COUNT];
	uint32_t addr_count[MIME_ENV_ADDR_COUNT];
};

/* Internal structure flags, as Dovecot's message parser keeps them: they
 * decide how the body was parsed. */
enum mime_pflag {
	MIME_PF_MULTIPART = 1 << 0,
	MIME_PF_RFC822 = 1 << 1,	/* message/rfc822 with a parsed child */
	MIME_PF_TEXT = 1 << 2,
	MIME_PF_IS_MIME = 1 << 3,	/* Content-* fields count (MIME-Version,
					   Content-Type, or inside a multipart) */
	MIME_PF_DIGEST = 1 << 4,	/* multipart/digest */
	MIME_PF_OVERFLOW = 1 << 5,	/* a limit stopped the parse of its body */
};

/* A position in the input with the counts of LF and of bare LF before it. */
struct cpos {
	uint64_t pos, lf, bare;
};

struct mime_part {
	struct mime_message *msg;
	uint32_t index;
	uint32_t parent, first_child, last_child, next;	/* UINT32_MAX: none */
	uint32_t depth;			/* root 0 */
	uint32_t pflags;		/* enum mime_pflag */
	uint32_t flags;			/* enum mime_flag: what was wrong */

	uint64_t header_start, body_start, body_end;
	/* LF count and bare-LF count of the input before body_start and
	 * before body_end, for the line count and the CRLF size. */
	uint64_t lf_start, bare_start, lf_end, bare_end;
	struct cpos min_end;	/* the body reaches at least here */

	/* Content-* fields; type NIL means no (valid) Content-Type. */
	struct mstr type, subtype, id, description, cte, md5, disposition, location;
	uint32_t params_start, params_count;	/* in msg->params */
	uint32_t dparams_start, dparams_count;
	uint32_t lang_start, lang_count;	/* in msg->langs */
	uint32_t envelope;			/* in msg->envelopes, or UINT32_MAX */
};

struct mime_message {
	struct mime_part *parts;
	uint32_t count, cap;
	struct buf arena;
	struct mime_param *params;
	uint32_t params_count, params_cap;
	struct mstr *langs;
	uint32_t langs_count, langs_cap;
	struct mime_addr *addrs;
	uint32_t addrs_count, addrs_cap;
	struct mime_envelope *envelopes;
	uint32_t envelopes_count, envelopes_cap;
	uint64_t size;		/* bytes fed */
	uint64_t bare_lf;	/* LFs without a CR before them */
	uint32_t flags;		/* every part's flags, or-ed */
	struct mime_search_fields search;
};

static inline const char *mstr_ptr(const struct mime_message *msg, struct mstr s)
{
	return s.off == MSTR_NIL ? NULL : msg->arena.data + s.off;
}

static inline bool mstr_is_nil(struct mstr s)
{
	return s.off == MSTR_NIL;
}

#endif
