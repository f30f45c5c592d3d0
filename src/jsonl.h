/*
 * JSON Lines files (report_file, observe_file): a growing buffer that
 * builds one line of JSON, and a file opened for appending (a regular
 * file only, reopened on SIGHUP) that takes each line in one write.
 */
#ifndef PINPROXY_JSONL_H
#define PINPROXY_JSONL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* One line being built; start it zeroed, free its data afterwards. */
struct jsonl_buf {
	char		*data;
	size_t		 len;
	size_t		 cap;
};

struct jsonl_file;

/* Append len bytes. */
void		 jsonl_add(struct jsonl_buf *b, const char *s, size_t len);
/* Append a C string as it is. */
void		 jsonl_puts(struct jsonl_buf *b, const char *s);
/*
 * Append a JSON string of len bytes, or null for NULL. Bytes outside
 * printable ASCII are escaped, so the line is valid JSON whatever a peer
 * sent.
 */
void		 jsonl_string(struct jsonl_buf *b, const char *s, size_t len);
/* jsonl_string of a C string (NULL: null). */
void		 jsonl_str(struct jsonl_buf *b, const char *s);
/* "key": with the comma that separates it from a previous member. */
void		 jsonl_key(struct jsonl_buf *b, const char *key);

/* Open path for appending; what names the setting in errors. */
struct jsonl_file *jsonl_open(const char *what, const char *path, char *err,
		    size_t errlen);
/* Open the same path again (log rotation); the old one stays on failure. */
bool		 jsonl_reopen(struct jsonl_file *f, char *err, size_t errlen);
/* Close and free (NULL ok). */
void		 jsonl_close(struct jsonl_file *f);
/*
 * As jsonl_close(), and remove the file when the open made it and nothing
 * was written (the open was for a reload that failed).
 */
void		 jsonl_discard(struct jsonl_file *f);
/* The path it was opened with. */
const char	*jsonl_path(const struct jsonl_file *f);
/* The UTC day of t, in days since the epoch: what the budgets count by. */
long long	 jsonl_day(time_t t);
/*
 * Whether another line may be written at now under a budget of max lines
 * a UTC day (limit names the setting). The first refusal of a day is
 * logged, naming the file; a new day, or a reload that raised max, gives
 * room again.
 */
bool		 jsonl_room(struct jsonl_file *f, const char *limit,
		    unsigned long max, time_t now);
/*
 * Append the line in b in one write, first ending a line that an earlier
 * short write left cut; a line written counts against the day's budget.
 * False with err on any failure.
 */
bool		 jsonl_write(struct jsonl_file *f, const struct jsonl_buf *b,
		    char *err, size_t errlen);
/*
 * Log a failure of f (err, from jsonl_write or the caller) at now as
 * event=report_error, at most once a minute per file: the next line that
 * is logged counts those left out (count=N). A full disk fails every
 * write and would otherwise add a line for each.
 */
void		 jsonl_log_error(struct jsonl_file *f, const char *err,
		    time_t now);

#endif
