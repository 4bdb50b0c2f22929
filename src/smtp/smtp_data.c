#include "smtp/smtp_data.h"

void smtp_data_init(struct smtp_data_parser *p, bool normalize)
{
	p->state = SMTP_DATA_BOL;
	p->normalize = normalize;
	p->bare_cr = p->bare_lf = p->nul = 0;
}

static void emit(struct buf *out, const char *s, size_t n)
{
	(void)buf_append(out, s, n);
}

/* A bare CR or LF: counted, and written as CR LF when normalising. The line
 * does not end here as far as the SMTP framing goes. */
static void bare(struct smtp_data_parser *p, struct buf *out, bool lf)
{
	if (lf)
		p->bare_lf++;
	else
		p->bare_cr++;
	if (p->normalize)
		emit(out, "\r\n", 2);
}

/* One byte of line text (state TEXT). */
static void text(struct smtp_data_parser *p, char c, struct buf *out)
{
	switch (c) {
	case '\r':
		p->state = SMTP_DATA_CR;
		break;
	case '\n':
		bare(p, out, true);
		break;
	case '\0':
		p->nul++;
		break;
	default:
		emit(out, &c, 1);
		break;
	}
}

size_t smtp_data_feed(struct smtp_data_parser *p, const char *in, size_t len,
		      struct buf *out)
{
	size_t i = 0;
	while (i < len && p->state != SMTP_DATA_DONE) {
		char c = in[i++];
		switch (p->state) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				p->state = SMTP_DATA_DOT;
				break;
			}
			p->state = SMTP_DATA_TEXT;
			text(p, c, out);
			break;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				p->state = SMTP_DATA_DOT_CR;
				break;
			}
			/* 4.5.2: a leading dot with more on the line is removed. */
			p->state = SMTP_DATA_TEXT;
			text(p, c, out);
			break;
		case SMTP_DATA_DOT_CR:
			if (c == '\n') {
				p->state = SMTP_DATA_DONE;
				break;
			}
			/* "." CR x: the stuffed dot goes, the CR was bare. */
			bare(p, out, false);
			p->state = SMTP_DATA_TEXT;
			text(p, c, out);
			break;
		case SMTP_DATA_TEXT: {
			/* Fast path: copy the run of plain bytes at once. */
			if (c == '\r' || c == '\n' || c == '\0') {
				text(p, c, out);
				break;
			}
			size_t start = i - 1;
			while (i < len && in[i] != '\r' && in[i] != '\n' && in[i] != '\0')
				i++;
			emit(out, in + start, i - start);
			break;
		}
		case SMTP_DATA_CR:
			if (c == '\n') {
				emit(out, "\r\n", 2);
				p->state = SMTP_DATA_BOL;
				break;
			}
			bare(p, out, false);
			p->state = SMTP_DATA_TEXT;
			text(p, c, out);
			break;
		case SMTP_DATA_DONE:
			break;
		}
	}
	return i;
}
