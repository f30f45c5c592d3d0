/*
 * Diagnostics of a configuration file: every error and warning as
 * "FILE:LINE: message", collected so that all of them can be reported at
 * once rather than stopping at the first.
 */
#ifndef PINPROXY_DIAG_H
#define PINPROXY_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum diag_severity {
	DIAG_ERROR,
	DIAG_WARNING
};

struct diag;

/* An empty collection. */
struct diag	*diag_new(void);
/* Free a collection (NULL is fine). */
void		 diag_free(struct diag *d);
/*
 * The error of a line of a configuration file that holds a carriage
 * return before its end: lines end with LF or CR LF, and a file whose
 * lines end with CR alone would be read as one line, a comment maybe.
 */
#define DIAG_BARE_CR	"line holds a carriage return before its end; lines " \
			"end with LF or CR LF"

/* Record an error at file:line. */
void		 diag_error(struct diag *d, const char *file, int line,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Record a warning at file:line. */
void		 diag_warn(struct diag *d, const char *file, int line,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * Sort the messages recorded from now on at line (0: at their own line),
 * in the order they come: those of a file that line names.
 */
void		 diag_anchor(struct diag *d, int line);
/* How many errors were recorded. */
size_t		 diag_errors(const struct diag *d);
/* How many messages (errors and warnings) were recorded. */
size_t		 diag_count(const struct diag *d);
/* Message i in file and line order: "FILE:LINE: message" or "FILE:LINE: warning: message". */
const char	*diag_text(const struct diag *d, size_t i);
/* The severity of message i. */
enum diag_severity diag_severity(const struct diag *d, size_t i);
/* The first error in file order, or NULL. */
const char	*diag_first_error(const struct diag *d);
/* Print every message, one a line, in file and line order. */
void		 diag_print(const struct diag *d, FILE *fp);

#endif
