/*
 * JSON Lines: the buffer grows by doubling; the file is appended to with
 * O_APPEND so that each line lands whole, and a line cut short by a full
 * disk is ended before the next one, so that one bad write costs one line,
 * also when the cut line was left by an earlier run or before a reopen.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonl.h"
#include "log.h"
#include "regfile.h"
#include "xmalloc.h"

/* The first size of a line's buffer. */
#define JSONL_FIRST	2048
/* The budget of lines (report_max, observe_max) is counted per UTC day. */
#define JSONL_DAY_SECONDS	86400
/* A failing file (a full disk, say) is logged at most once this often. */
#define JSONL_ERROR_SECONDS	60

struct jsonl_file {
	const char	*what;		/* the setting, for errors */
	char		*path;
	int		 fd;
	bool		 created;	/* by the last (re)open */
	/* The last write stopped mid-line: end that line before the next. */
	bool		 partial;
	long long	 day;		/* days since the epoch, UTC */
	unsigned long	 written;	/* lines written that day */
	bool		 full;		/* the day's budget spent and logged */
	time_t		 error_logged;	/* the last failure logged, or 0 */
	unsigned long	 errors_unlogged;	/* failures since */
};

void
jsonl_add(struct jsonl_buf *b, const char *s, size_t len)
{
	size_t	 cap;

	if (b->len + len > b->cap) {
		cap = b->cap == 0 ? JSONL_FIRST : b->cap;
		while (cap < b->len + len)
			cap *= 2;
		b->data = xreallocarray(b->data, cap, 1);
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, len);
	b->len += len;
}

void
jsonl_puts(struct jsonl_buf *b, const char *s)
{
	jsonl_add(b, s, strlen(s));
}

void
jsonl_string(struct jsonl_buf *b, const char *s, size_t len)
{
	char		 esc[8];
	unsigned char	 c;
	size_t		 i, start;

	if (s == NULL) {
		jsonl_puts(b, "null");
		return;
	}
	jsonl_add(b, "\"", 1);
	start = 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			continue;
		jsonl_add(b, s + start, i - start);
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
		} else if (c == '\n')
			xstrlcpy(esc, "\\n", sizeof(esc));
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		jsonl_puts(b, esc);
		start = i + 1;
	}
	jsonl_add(b, s + start, len - start);
	jsonl_add(b, "\"", 1);
}

void
jsonl_str(struct jsonl_buf *b, const char *s)
{
	jsonl_string(b, s, s != NULL ? strlen(s) : 0);
}

void
jsonl_key(struct jsonl_buf *b, const char *key)
{
	if (b->len > 0 && b->data[b->len - 1] != '{' &&
	    b->data[b->len - 1] != '[')
		jsonl_add(b, ",", 1);
	jsonl_str(b, key);
	jsonl_add(b, ":", 1);
}

/*
 * Whether the file at path, opened for appending as out, ends mid-line: a
 * line cut short by an earlier run, or by this one before a reopen of the
 * same file. The descriptor appends only, so path is opened to read it,
 * and only when that is the same file; what cannot be read counts as a
 * whole line (the next one then starts on it).
 */
static bool
jsonl_ends_mid_line(const char *path, int out)
{
	struct stat	 st, ost;
	char		 last;
	bool		 mid = false;
	int		 fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC |
	    O_NONBLOCK);
	if (fd == -1)
		return false;
	if (fstat(fd, &st) == 0 && fstat(out, &ost) == 0 &&
	    st.st_dev == ost.st_dev && st.st_ino == ost.st_ino &&
	    S_ISREG(st.st_mode) && st.st_size > 0 &&
	    pread(fd, &last, 1, st.st_size - 1) == 1)
		mid = last != '\n';
	close(fd);
	return mid;
}

struct jsonl_file *
jsonl_open(const char *what, const char *path, char *err, size_t errlen)
{
	struct jsonl_file	*f;
	int			 fd;
	bool			 created;

	if ((fd = regfile_append(what, path, &created, err, errlen)) == -1)
		return NULL;
	f = xcalloc(1, sizeof(*f));
	f->created = created;
	f->what = what;
	f->path = xstrdup(path);
	f->fd = fd;
	f->partial = jsonl_ends_mid_line(path, fd);
	return f;
}

bool
jsonl_reopen(struct jsonl_file *f, char *err, size_t errlen)
{
	int	 fd;
	bool	 created;

	if ((fd = regfile_append(f->what, f->path, &created, err, errlen)) ==
	    -1)
		return false;
	close(f->fd);
	f->fd = fd;
	f->created = created;
	f->partial = jsonl_ends_mid_line(f->path, fd);
	return true;
}

/* Log event=report_error for f, counting the failures left out since. */
static void
jsonl_error_line(struct jsonl_file *f, const char *err)
{
	struct logline	 l;

	log_begin(&l, EV_REPORT_ERROR);
	log_str(&l, LK_FILE, f->path);
	log_str(&l, LK_ERROR, err);
	if (f->errors_unlogged > 0)
		log_int(&l, LK_COUNT, (long long)f->errors_unlogged);
	log_end(&l);
	f->errors_unlogged = 0;
}

void
jsonl_discard(struct jsonl_file *f)
{
	if (f == NULL)
		return;
	if (f->created)
		regfile_discard(f->path, f->fd);
	jsonl_close(f);
}

void
jsonl_close(struct jsonl_file *f)
{
	if (f == NULL)
		return;
	/* Failures left out of the log since its last line are counted. */
	if (f->errors_unlogged > 0)
		jsonl_error_line(f, "failed writes not logged yet");
	close(f->fd);
	free(f->path);
	free(f);
}

void
jsonl_log_error(struct jsonl_file *f, const char *err, time_t now)
{
	if (f->error_logged != 0 && now >= f->error_logged &&
	    now - f->error_logged < JSONL_ERROR_SECONDS) {
		f->errors_unlogged++;
		return;
	}
	jsonl_error_line(f, err);
	f->error_logged = now;
}

const char *
jsonl_path(const struct jsonl_file *f)
{
	return f->path;
}

long long
jsonl_day(time_t t)
{
	return (long long)(t / JSONL_DAY_SECONDS);
}

bool
jsonl_room(struct jsonl_file *f, const char *limit, unsigned long max,
    time_t now)
{
	struct logline	 l;
	char		 err[128];
	long long	 day = jsonl_day(now);

	if (f->day != day) {
		f->day = day;
		f->written = 0;
	}
	if (f->written < max) {
		f->full = false;
		return true;
	}
	if (!f->full) {
		f->full = true;
		snprintf(err, sizeof(err), "%s (%lu new lines a UTC day) "
		    "reached: further lines are left out until 00:00 UTC",
		    limit, max);
		log_begin(&l, EV_REPORT_ERROR);
		log_str(&l, LK_FILE, f->path);
		log_str(&l, LK_ERROR, err);
		log_end(&l);
	}
	return false;
}

bool
jsonl_write(struct jsonl_file *f, const struct jsonl_buf *b, char *err,
    size_t errlen)
{
	struct iovec	 iov[2];
	size_t		 want;
	ssize_t		 n, ended;
	int		 i = 0;

	/* A line an earlier short write cut is ended in the same write. */
	if (f->partial) {
		iov[i].iov_base = (void *)"\n";
		iov[i++].iov_len = 1;
	}
	iov[i].iov_base = b->data;
	iov[i++].iov_len = b->len;
	ended = f->partial ? 1 : 0;
	want = b->len + (size_t)ended;
	do {
		n = writev(f->fd, iov, i);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		snprintf(err, errlen, "cannot write to %s: %s", f->path,
		    strerror(errno));
		return false;
	}
	if ((size_t)n != want) {
		/* Cut mid-line unless only the old line's end went out. */
		if (n > 0)
			f->partial = n > ended;
		snprintf(err, errlen, "short write to %s: %zd of %zu bytes",
		    f->path, n, want);
		return false;
	}
	f->partial = false;
	f->written++;
	return true;
}
