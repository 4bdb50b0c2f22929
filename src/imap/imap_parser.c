#include "imap/imap_parser.h"
#include "core/buf.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

enum state {
	S_TAG,
	S_NAME,
	S_AFTER_ARG,	/* after an argument: SP, ")" or CR LF */
	S_ARG,		/* at the start of an argument */
	S_ATOM,
	S_QUOTED,
	S_QUOTED_ESC,
	S_LIT_TILDE,	/* "~" read, "{" must follow */
	S_LIT_LEN,
	S_LIT_CLOSE,	/* "+" or "-" read, "}" must follow */
	S_LIT_CR,
	S_LIT_LF,
	S_LIT_DATA,
	S_LF,		/* CR read at the end of the line */
	S_SKIP,		/* skipping a bad line up to LF */
	S_SKIP_LITERAL,	/* skipping a refused non-synchronizing literal */
	S_DONE,		/* a command is ready */
	S_ABORTED,	/* the line ended in an error: start afresh */
};

struct list_frame {
	struct imap_arg *items;
	size_t count, cap;
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum state state;
	size_t line_len;
	size_t args_total;
	struct buf tok;		/* the token being read */
	bool in_bracket;
	bool literal8;
	bool literal_sync;
	uint64_t literal_size;
	bool literal_digits;	/* the size has at least one digit */
	uint64_t literal_left;
	struct list_frame stack[64];
	size_t depth;		/* 0: top-level arguments */
	struct imap_command cmd;
	const char *error;
	bool have_tag;
	struct imap_literal_sink sink;
	bool streaming;		/* the literal being read goes to the sink */
	/* While a bad line is skipped: does it end in "{n+}"? Then the client
	 * sends n more octets, which are skipped too, not read as commands. */
	uint8_t skip_lit;	/* 0, or how far into "{digits+}\r" */
	uint8_t skip_digits;
	uint64_t skip_size;
};

void imap_parser_set_sink(struct imap_parser *p, const struct imap_literal_sink *sink)
{
	p->sink = *sink;
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));
	p->lim = *limits;
	if (p->lim.depth_max >= ARRAY_SIZE(p->stack))
		p->lim.depth_max = ARRAY_SIZE(p->stack) - 1;
	buf_init(&p->tok, 0);
	return p;
}

static void free_args(struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].type == IMAP_ARG_LIST)
			free_args(a[i].list, a[i].len);
		else
			free(a[i].str);
	}
	free(a);
}

void imap_parser_reset(struct imap_parser *p)
{
	for (size_t i = 0; i <= p->depth; i++) {
		free_args(p->stack[i].items, p->stack[i].count);
		memset(&p->stack[i], 0, sizeof(p->stack[i]));
	}
	p->depth = 0;
	xfree(&p->cmd.tag);
	xfree(&p->cmd.name);
	free_args(p->cmd.args, p->cmd.argc);
	p->cmd.args = NULL;
	p->cmd.argc = 0;
	buf_reset(&p->tok);
	p->state = S_TAG;
	p->line_len = 0;
	p->args_total = 0;
	p->in_bracket = false;
	p->error = NULL;
	p->have_tag = false;
}

void imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;
	if (p == NULL)
		return;
	imap_parser_reset(p);
	buf_deinit(&p->tok);
	free(p);
	*pp = NULL;
}

bool imap_parser_idle(struct imap_parser *p)
{
	return p->state == S_TAG && p->tok.len == 0;
}

const struct imap_command *imap_parser_command(struct imap_parser *p)
{
	return &p->cmd;
}

const char *imap_parser_error_tag(struct imap_parser *p)
{
	return p->have_tag && p->cmd.tag ? p->cmd.tag : "*";
}

const char *imap_parser_error(struct imap_parser *p)
{
	return p->error ? p->error : "syntax error";
}

uint64_t imap_parser_literal_size(struct imap_parser *p)
{
	return p->literal_size;
}

bool imap_arg_is_string(const struct imap_arg *a)
{
	return a->type != IMAP_ARG_LIST;
}

bool imap_arg_is_nil(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && str_ieq(a->str, "NIL");
}

/* RFC 9051 9: ATOM-CHAR = any CHAR except atom-specials; we also take "\",
 * "%" and "*" (see the header). "]" only inside a "[...]" section. */
static bool atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"' && c != ']';
}

/* ASTRING-CHAR minus "+" (RFC 9051 9: tag). */
static bool tag_char(unsigned char c)
{
	return (atom_char(c) && c != '+' && c != '\\' && c != '%' && c != '*') || c == ']';
}

static enum imap_parse_result fail(struct imap_parser *p, const char *why)
{
	p->error = why;
	p->state = S_SKIP;
	p->skip_lit = 0;
	return IMAP_PARSE_ERROR;
}

enum { SKIP_BRACE = 1, SKIP_DIGITS, SKIP_PLUS, SKIP_CLOSE, SKIP_CR };

/* Follows the tail of a line being skipped for a "{n+}" at its end. */
static void skip_track(struct imap_parser *p, unsigned char c)
{
	if (c == '{') {
		p->skip_lit = SKIP_BRACE;
		p->skip_size = 0;
		p->skip_digits = 0;
	} else if (c >= '0' && c <= '9' && (p->skip_lit == SKIP_BRACE || p->skip_lit == SKIP_DIGITS) &&
		   p->skip_digits < 19) {
		p->skip_size = p->skip_size * 10 + (c - '0');
		p->skip_digits++;
		p->skip_lit = SKIP_DIGITS;
	} else if (c == '+' && p->skip_lit == SKIP_DIGITS) {
		p->skip_lit = SKIP_PLUS;
	} else if (c == '}' && p->skip_lit == SKIP_PLUS) {
		p->skip_lit = SKIP_CLOSE;
	} else if (c == '\r' && p->skip_lit == SKIP_CLOSE) {
		p->skip_lit = SKIP_CR;
	} else {
		p->skip_lit = 0;
	}
}

/* An error found on the LF that ends the line: nothing left to skip. */
static enum imap_parse_result fail_at_eol(struct imap_parser *p, const char *why,
					  unsigned char c)
{
	enum imap_parse_result r = fail(p, why);
	if (c == '\n')
		p->state = S_ABORTED;
	return r;
}

/* Appends an argument at the current depth. */
static int add_arg(struct imap_parser *p, enum imap_arg_type type)
{
	if (++p->args_total > p->lim.args_max)
		return -1;
	struct list_frame *f = &p->stack[p->depth];
	if (f->count == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->items = xrealloc(f->items, f->cap * sizeof(*f->items));
	}
	struct imap_arg *a = &f->items[f->count++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	if (type != IMAP_ARG_LIST) {
		a->len = p->tok.len;
		a->str = xmalloc(p->tok.len + 1);
		if (p->tok.len)
			memcpy(a->str, p->tok.data, p->tok.len);
		a->str[p->tok.len] = '\0';
		a->literal8 = type == IMAP_ARG_LITERAL && p->literal8;
		if (type == IMAP_ARG_LITERAL && p->streaming) {
			a->streamed = true;
			a->len = (size_t)p->literal_size;
			p->streaming = false;
		}
	}
	buf_reset(&p->tok);
	return 0;
}

/* The end of the line: the command is complete. */
static enum imap_parse_result finish(struct imap_parser *p)
{
	if (p->depth != 0) {
		fail(p, "unbalanced parenthesis");
		p->state = S_ABORTED;
		return IMAP_PARSE_ERROR;
	}
	p->cmd.args = p->stack[0].items;
	p->cmd.argc = p->stack[0].count;
	memset(&p->stack[0], 0, sizeof(p->stack[0]));
	p->state = S_DONE;
	return IMAP_PARSE_COMMAND;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const char *data,
					size_t len, size_t *used_r)
{
	size_t i = 0;
	enum imap_parse_result res = IMAP_PARSE_NEED_MORE;

	if (p->state == S_DONE || p->state == S_ABORTED) {
		/* The last command (or error) has been handled. */
		imap_parser_reset(p);
	}
	while (i < len && res == IMAP_PARSE_NEED_MORE) {
		unsigned char c = (unsigned char)data[i];

		if (p->state == S_LIT_DATA) {
			size_t n = len - i;
			if (n > p->literal_left)
				n = (size_t)p->literal_left;
			if (p->streaming)
				(void)p->sink.write(p->sink.ctx, data + i, n);
			else
				buf_append(&p->tok, data + i, n);
			i += n;
			p->literal_left -= n;
			if (p->literal_left == 0) {
				/* RFC 9051 9: a literal is CHAR8 (no NUL); only
				 * literal8 may carry one. Taken as a string, a
				 * NUL would cut it short ("a\0b" read as "a"). */
				if (!p->streaming && !p->literal8 &&
				    memchr(p->tok.data ? p->tok.data : "", '\0', p->tok.len) != NULL)
					res = fail(p, "NUL in a literal");
				else if (add_arg(p, IMAP_ARG_LITERAL) < 0)
					res = fail(p, "too many arguments");
				else
					p->state = S_AFTER_ARG;
			}
			continue;
		}
		if (p->state == S_SKIP_LITERAL) {
			size_t n = len - i;
			if (n > p->literal_left)
				n = (size_t)p->literal_left;
			i += n;
			p->literal_left -= n;
			if (p->literal_left == 0) {
				p->state = S_SKIP;
				p->skip_lit = 0;
			}
			continue;
		}
		i++;
		if (p->state == S_SKIP) {
			if (c != '\n') {
				skip_track(p, c);
			} else if (p->skip_lit == SKIP_CLOSE || p->skip_lit == SKIP_CR) {
				p->skip_lit = 0;
				p->literal_left = p->skip_size;
				if (p->literal_left)
					p->state = S_SKIP_LITERAL;
			} else {
				imap_parser_reset(p);
			}
			continue;
		}
		if (++p->line_len > p->lim.line_max) {
			res = fail(p, "line too long");
			continue;
		}

		switch (p->state) {
		case S_TAG:
			if (c == ' ' && p->tok.len > 0) {
				p->cmd.tag = buf_steal(&p->tok, NULL);
				p->have_tag = true;
				p->state = S_NAME;
			} else if (tag_char(c)) {
				buf_append_c(&p->tok, (char)c);
			} else if ((c == '\r' || c == '\n') && p->tok.len == 0) {
				/* An empty line: ignored, as deployed servers do. */
				if (c == '\n')
					p->line_len = 0;
			} else {
				if (p->tok.len > 0) {
					p->cmd.tag = buf_steal(&p->tok, NULL);
					p->have_tag = true;
				}
				res = fail(p, c == '\r' || c == '\n' ? "missing command" :
					   "invalid tag");
				if (c == '\n')
					p->state = S_ABORTED;
			}
			break;
		case S_NAME:
			if (atom_char(c) && c != '[' && c != '\\' && c != '%' && c != '*') {
				buf_append_c(&p->tok, (char)c);
			} else if ((c == ' ' || c == '\r' || c == '\n') && p->tok.len > 0) {
				p->cmd.name = buf_steal(&p->tok, NULL);
				if (c == ' ')
					p->state = S_ARG;
				else if (c == '\r')
					p->state = S_LF;
				else
					res = finish(p);
			} else {
				res = fail(p, "invalid command name");
				if (c == '\n')
					p->state = S_ABORTED;
			}
			break;
		case S_AFTER_ARG:
			if (c == ' ') {
				p->state = S_ARG;
			} else if (c == ')') {
				if (p->depth == 0) {
					res = fail(p, "unbalanced parenthesis");
					break;
				}
				/* Close the list: it becomes an argument one level up. */
				struct list_frame inner = p->stack[p->depth];
				memset(&p->stack[p->depth], 0, sizeof(inner));
				p->depth--;
				struct list_frame *f = &p->stack[p->depth];
				struct imap_arg *a = &f->items[f->count - 1];
				a->list = inner.items;
				a->len = inner.count;
			} else if (c == '\r') {
				p->state = S_LF;
			} else if (c == '\n') {
				res = finish(p);
			} else {
				res = fail_at_eol(p, "expected a space between arguments", c);
			}
			break;
		case S_ARG:
			if (c == '(') {
				if (p->depth >= p->lim.depth_max) {
					res = fail(p, "lists nested too deep");
					break;
				}
				if (add_arg(p, IMAP_ARG_LIST) < 0) {
					res = fail(p, "too many arguments");
					break;
				}
				p->depth++;
				memset(&p->stack[p->depth], 0, sizeof(p->stack[p->depth]));
				/* "()" is an empty list. */
				if (i < len && data[i] == ')') {
					p->state = S_AFTER_ARG;
				} else {
					p->state = S_ARG;
				}
			} else if (c == ')' && p->depth > 0 && p->stack[p->depth].count == 0) {
				/* "()" arriving split: close the empty list. */
				p->state = S_AFTER_ARG;
				i--;
				p->line_len--;
			} else if (c == '"') {
				p->state = S_QUOTED;
			} else if (c == '{') {
				p->literal8 = false;
				p->literal_size = 0;
				p->literal_digits = false;
				p->state = S_LIT_LEN;
			} else if (c == '~') {
				p->literal8 = true;
				p->state = S_LIT_TILDE;
			} else if (atom_char(c)) {
				buf_append_c(&p->tok, (char)c);
				p->in_bracket = c == '[';
				p->state = S_ATOM;
			} else {
				res = fail_at_eol(p, "expected an argument", c);
			}
			break;
		case S_ATOM:
			if (p->in_bracket) {
				if (c == '\r' || c == '\n' || c == '\0') {
					res = fail_at_eol(p, "unterminated [", c);
					break;
				}
				buf_append_c(&p->tok, (char)c);
				if (c == ']')
					p->in_bracket = false;
			} else if (atom_char(c)) {
				buf_append_c(&p->tok, (char)c);
				p->in_bracket = c == '[';
			} else if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
				if (add_arg(p, IMAP_ARG_ATOM) < 0) {
					res = fail(p, "too many arguments");
					break;
				}
				p->state = S_AFTER_ARG;
				i--;	/* let S_AFTER_ARG see it */
				p->line_len--;
			} else {
				res = fail(p, "invalid character in atom");
			}
			break;
		case S_QUOTED:
			if (c == '"') {
				if (add_arg(p, IMAP_ARG_QUOTED) < 0)
					res = fail(p, "too many arguments");
				else
					p->state = S_AFTER_ARG;
			} else if (c == '\\') {
				p->state = S_QUOTED_ESC;
			} else if (c == '\r' || c == '\n' || c == '\0') {
				res = fail_at_eol(p, "unterminated quoted string", c);
			} else {
				/* 8-bit: UTF-8 is allowed in quoted strings by RFC 9051. */
				buf_append_c(&p->tok, (char)c);
			}
			break;
		case S_QUOTED_ESC:
			/* quoted-specials only */
			if (c == '"' || c == '\\') {
				buf_append_c(&p->tok, (char)c);
				p->state = S_QUOTED;
			} else {
				res = fail_at_eol(p, "invalid escape in quoted string", c);
			}
			break;
		case S_LIT_TILDE:
			if (c == '{') {
				p->literal_size = 0;
				p->literal_digits = false;
				p->state = S_LIT_LEN;
			} else {
				res = fail(p, "expected { after ~");
			}
			break;
		case S_LIT_LEN:
			if (c >= '0' && c <= '9') {
				/* Overflow-proof: stop far below UINT64_MAX. */
				if (p->literal_size > (UINT64_MAX / 10) - 10) {
					res = fail(p, "literal size too large");
					break;
				}
				p->literal_size = p->literal_size * 10 + (c - '0');
				p->literal_digits = true;
			} else if (!p->literal_digits) {
				/* RFC 9051 9: number64 = 1*DIGIT; "{}" is no
				 * literal. */
				res = fail(p, "invalid literal");
			} else if (c == '+' || c == '-') {
				/* RFC 7888: "{n+}" (LITERAL+); "-" is not in the
				 * grammar, but tolerated as "+" is not: refuse it. */
				if (c == '-') {
					res = fail(p, "invalid literal");
					break;
				}
				p->literal_sync = false;
				p->state = S_LIT_CLOSE;
			} else if (c == '}') {
				p->literal_sync = true;
				p->state = S_LIT_CR;
			} else {
				res = fail(p, "invalid literal");
			}
			break;
		case S_LIT_CLOSE:
			if (c == '}')
				p->state = S_LIT_CR;
			else
				res = fail(p, "invalid literal");
			break;
		case S_LIT_CR:
			if (c == '\r') {
				p->state = S_LIT_LF;
				break;
			}
			/* a bare LF after "}" is taken too */
			__attribute__((fallthrough));
		case S_LIT_LF:
			if (c != '\n') {
				res = fail(p, "expected CRLF after literal size");
				break;
			}
			p->line_len = 0;
			p->streaming = false;
			if (!p->literal_sync && p->lim.nonsync_max != 0 &&
			    p->literal_size > p->lim.nonsync_max) {
				/* RFC 7888 5: the client had to send it
				 * synchronizing; the bytes it sent anyway are
				 * read and dropped (section 4, choice 1). */
				p->literal_left = p->literal_size;
				p->state = S_SKIP_LITERAL;
				p->skip_lit = 0;
				p->error = "non-synchronizing literal too big";
				res = IMAP_PARSE_NONSYNC_TOO_BIG;
				break;
			}
			if (p->literal_size > p->lim.literal_max && p->sink.want != NULL &&
			    p->literal_size <= p->sink.stream_max && p->depth == 0 &&
			    p->sink.want(p->sink.ctx, p->cmd.name, p->literal_size))
				p->streaming = true;
			if (p->literal_size > p->lim.literal_max && !p->streaming) {
				if (p->literal_sync) {
					/* The client sends nothing until "+":
					 * the command ends here. */
					p->state = S_ABORTED;
				} else {
					p->literal_left = p->literal_size;
					p->state = p->literal_left ? S_SKIP_LITERAL : S_SKIP;
					p->skip_lit = 0;
				}
				p->error = "literal too big";
				res = IMAP_PARSE_LITERAL_TOO_BIG;
				break;
			}
			p->literal_left = p->literal_size;
			p->state = S_LIT_DATA;
			if (p->literal_size == 0) {
				if (add_arg(p, IMAP_ARG_LITERAL) < 0) {
					res = fail(p, "too many arguments");
					break;
				}
				p->state = S_AFTER_ARG;
			}
			if (p->literal_sync)
				res = IMAP_PARSE_LITERAL_SYNC;
			break;
		case S_LF:
			if (c == '\n')
				res = finish(p);
			else
				res = fail(p, "CR without LF");
			break;
		default:
			break;
		}
		/* the octet that made the error may begin a "{n+}" */
		if (res == IMAP_PARSE_ERROR && p->state == S_SKIP)
			skip_track(p, c);
	}
	*used_r = i;
	return res;
}
