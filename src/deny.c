/*
 * Deny pins. A deny file is read like report_file is opened: never through
 * a symbolic link, never anything but a regular file, so that a FIFO cannot
 * block a start or a reload. Every bad line is reported, not just the first.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deny.h"
#include "regfile.h"
#include "xmalloc.h"

/* Open path for reading: a regular file only (regfile_open). */
static FILE *
deny_open(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	FILE		*fp;
	int		 fd;

	if ((fd = regfile_open("deny_file", path, O_RDONLY, 0, &st, err,
	    errlen)) == -1)
		return NULL;
	if (st.st_size > DENY_FILE_MAX_BYTES) {
		snprintf(err, errlen, "deny_file %s is %lld bytes, more than "
		    "the %d a deny_file may have: refused", path,
		    (long long)st.st_size, DENY_FILE_MAX_BYTES);
		close(fd);
		return NULL;
	}
	if ((fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		close(fd);
	}
	return fp;
}

/*
 * Read one line into buf (cut at len - 1 bytes); its full length in
 * *total, which stops counting past DENY_FILE_MAX_BYTES. False at the end
 * of the file.
 */
static bool
deny_line(FILE *fp, char *buf, size_t len, size_t *total)
{
	size_t	 n = 0;
	int	 ch;

	*total = 0;
	while (*total <= DENY_FILE_MAX_BYTES && (ch = getc(fp)) != EOF &&
	    ch != '\n') {
		if (n < len - 1)
			buf[n++] = (char)ch;
		(*total)++;
	}
	buf[n] = '\0';
	return ch != EOF || *total > 0;
}

/* The pin text of a line: comments and surrounding white space removed. */
static char *
deny_trim(char *line)
{
	char	*end;

	line[strcspn(line, "#")] = '\0';
	while (isspace((unsigned char)*line))
		line++;
	end = line + strlen(line);
	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return line;
}

bool
deny_file_read(const char *path, struct pin **pins, size_t *npins,
    struct diag *d, char *err, size_t errlen)
{
	struct pin	*got = NULL;
	char		 buf[DENY_LINE_MAX + 1], perr[128], *text;
	size_t		 ngot = 0, total, bad = 0, bytes = 0;
	int		 lineno = 0;
	FILE		*fp;

	if ((fp = deny_open(path, err, errlen)) == NULL)
		return false;
	while (bad < DENY_FILE_MAX_BAD &&
	    deny_line(fp, buf, sizeof(buf), &total)) {
		lineno++;
		/* Checked at the open, but a file may grow as it is read. */
		if ((bytes += total + 1) > DENY_FILE_MAX_BYTES + 1) {
			diag_error(d, path, lineno, "the file grew past %d "
			    "bytes while it was read", DENY_FILE_MAX_BYTES);
			bad++;
			break;
		}
		if (total >= DENY_LINE_MAX) {
			diag_error(d, path, lineno, "line is %zu bytes long; "
			    "the limit is %d", total, DENY_LINE_MAX - 1);
			bad++;
			continue;
		}
		if (strlen(buf) != total) {
			diag_error(d, path, lineno, "line contains a NUL "
			    "byte");
			bad++;
			continue;
		}
		/* (Only the CR of a CR LF line end may be there.) */
		if (total > 0 && memchr(buf, '\r', total - 1) != NULL) {
			diag_error(d, path, lineno, DIAG_BARE_CR);
			bad++;
			continue;
		}
		if (*(text = deny_trim(buf)) == '\0')
			continue;
		if (ngot == DENY_FILE_MAX_PINS) {
			diag_error(d, path, lineno, "more than %d pins",
			    DENY_FILE_MAX_PINS);
			bad++;
			break;
		}
		got = xreallocarray(got, ngot + 1, sizeof(*got));
		if (!pin_parse(text, &got[ngot], perr, sizeof(perr))) {
			diag_error(d, path, lineno, "bad pin \"%s\": %s", text,
			    perr);
			bad++;
			continue;
		}
		ngot++;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		bad++;
	} else if (bad > 0)
		snprintf(err, errlen, "%zu bad line%s in %s", bad,
		    bad == 1 ? "" : "s", path);
	fclose(fp);
	if (bad > 0) {
		free(got);
		return false;
	}
	*pins = xreallocarray(*pins, *npins + ngot + 1, sizeof(**pins));
	if (ngot > 0)
		memcpy(*pins + *npins, got, ngot * sizeof(*got));
	*npins += ngot;
	free(got);
	return true;
}

void
deny_sort(struct pin *pins, size_t npins)
{
	if (npins > 1)
		qsort(pins, npins, sizeof(*pins), pin_cmp);
}

/*
 * Whether key is one of pins (sorted): a few comparisons for a deny_file
 * of 10,000 pins, on every verdict and for every connection a reload
 * checks. Deny pins are public keys' digests: no secret to time.
 */
static bool
deny_has(const struct pin *pins, size_t npins, const struct pin *key)
{
	return npins > 0 &&
	    bsearch(key, pins, npins, sizeof(*pins), pin_cmp) != NULL;
}

int
deny_match(const struct pin *pins, size_t npins, STACK_OF(X509) *chain,
    struct pin *which)
{
	struct pin	 seen;
	int		 i, n;

	if (npins == 0 || chain == NULL)
		return -1;
	n = sk_X509_num(chain);
	/* Every certificate counts: a key that cannot be hashed is skipped. */
	for (i = 0; i < n; i++) {
		if (pin_from_cert(sk_X509_value(chain, i), &seen) &&
		    deny_has(pins, npins, &seen)) {
			*which = seen;
			return i;
		}
	}
	return -1;
}

bool
deny_adds(const struct pin *pins, size_t npins, const struct pin *old,
    size_t nold)
{
	size_t		 i;

	for (i = 0; i < npins; i++)
		if (!deny_has(old, nold, &pins[i]))
			return true;
	return false;
}

int
deny_match_keys(const struct pin *pins, size_t npins, const struct pin *keys,
    size_t nkeys, struct pin *which)
{
	size_t	 i;

	for (i = 0; i < nkeys; i++) {
		if (deny_has(pins, npins, &keys[i])) {
			*which = keys[i];
			return (int)i;
		}
	}
	return -1;
}
