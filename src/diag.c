/*
 * Collected diagnostics, kept sorted by line so that output reads like the
 * file whatever order the checks ran in.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "xmalloc.h"

struct diag_msg {
	enum diag_severity	 severity;
	int			 line;	/* where it sorts */
	size_t			 seq;
	char			*text;
};

/*
 * The most messages kept: a file of garbage (a binary, a huge file) makes
 * one per line, and the rest only count.
 */
#define DIAG_MAX	1000

struct diag {
	struct diag_msg		*msgs;
	size_t			 left_out;	/* past DIAG_MAX */
	size_t			 count;
	size_t			 cap;
	size_t			 errors;
	bool			 sorted;
	int			 anchor;	/* 0: none */
};

struct diag *
diag_new(void)
{
	return xcalloc(1, sizeof(struct diag));
}

void
diag_free(struct diag *d)
{
	size_t	 i;

	if (d == NULL)
		return;
	for (i = 0; i < d->count; i++)
		free(d->msgs[i].text);
	free(d->msgs);
	free(d);
}

/*
 * A message with its control bytes as \xHH: it quotes values from the
 * file, and an escape sequence there must not reach a terminal. Bytes
 * from 0x80 are escaped too: 0x9b is CSI to a terminal that reads 8-bit
 * controls, and UTF-8 can spell the same control (c2 9b).
 */
static char *
diag_escape(const char *msg)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0, len = strlen(msg);
	unsigned char		 c;
	char			*out;

	out = xmalloc(len * 4 + 1);
	for (i = 0; i < len; i++) {
		c = (unsigned char)msg[i];
		if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
			continue;
		}
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 0xf];
	}
	out[o] = '\0';
	return out;
}

/* Record one message. */
static void
diag_add(struct diag *d, enum diag_severity sev, const char *file, int line,
    const char *fmt, va_list ap)
{
	struct diag_msg	*m;
	char		*msg, *raw;

	if (d->count == DIAG_MAX) {
		d->left_out++;
		if (sev == DIAG_ERROR)
			d->errors++;
		return;
	}
	if (vasprintf(&raw, fmt, ap) < 0)
		raw = xstrdup("(out of memory formatting a message)");
	msg = diag_escape(raw);
	free(raw);
	if (d->count == d->cap) {
		d->cap = d->cap == 0 ? 8 : d->cap * 2;
		d->msgs = xreallocarray(d->msgs, d->cap, sizeof(*d->msgs));
	}
	m = &d->msgs[d->count];
	m->severity = sev;
	m->line = d->anchor > 0 ? d->anchor : line;
	m->seq = d->count;
	if (line > 0)
		m->text = xasprintf("%s:%d: %s%s", file,
		    line, sev == DIAG_WARNING ? "warning: " : "", msg);
	else
		m->text = xasprintf("%s: %s%s", file,
		    sev == DIAG_WARNING ? "warning: " : "", msg);
	free(msg);
	d->count++;
	if (sev == DIAG_ERROR)
		d->errors++;
	d->sorted = false;
}

void
diag_error(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	diag_add(d, DIAG_ERROR, file, line, fmt, ap);
	va_end(ap);
}

void
diag_warn(struct diag *d, const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	diag_add(d, DIAG_WARNING, file, line, fmt, ap);
	va_end(ap);
}

/* Order by line, then by the order the messages were recorded. */
static int
diag_cmp(const void *a, const void *b)
{
	const struct diag_msg	*x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort lazily: messages are added in check order, read in file order. */
static void
diag_sort(const struct diag *cd)
{
	struct diag	*d = (struct diag *)cd;

	if (d->sorted || d->count == 0)
		return;
	qsort(d->msgs, d->count, sizeof(*d->msgs), diag_cmp);
	d->sorted = true;
}

void
diag_anchor(struct diag *d, int line)
{
	d->anchor = line;
}

size_t
diag_errors(const struct diag *d)
{
	return d->errors;
}

size_t
diag_count(const struct diag *d)
{
	return d->count;
}

const char *
diag_text(const struct diag *d, size_t i)
{
	diag_sort(d);
	return i < d->count ? d->msgs[i].text : NULL;
}

enum diag_severity
diag_severity(const struct diag *d, size_t i)
{
	diag_sort(d);
	return d->msgs[i].severity;
}

const char *
diag_first_error(const struct diag *d)
{
	size_t	 i;

	diag_sort(d);
	for (i = 0; i < d->count; i++)
		if (d->msgs[i].severity == DIAG_ERROR)
			return d->msgs[i].text;
	return NULL;
}

void
diag_print(const struct diag *d, FILE *fp)
{
	size_t	 i;

	diag_sort(d);
	for (i = 0; i < d->count; i++)
		fprintf(fp, "%s\n", d->msgs[i].text);
	if (d->left_out > 0)
		fprintf(fp, "(and %zu more messages, left out)\n",
		    d->left_out);
}
