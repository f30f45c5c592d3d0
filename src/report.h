/*
 * The report_file: one JSON object per line for every pin failure, with the
 * fields of an RFC 7469 section 3 report plus enforced, pinset and client.
 * Identical reports within an hour are written once, and at most
 * report_max lines a UTC day; a failed write is returned to the caller and
 * never stops the daemon.
 */
#ifndef PINPROXY_REPORT_H
#define PINPROXY_REPORT_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "pincheck.h"

/* Certificates written per chain; deeper ones are left out. */
#define REPORT_MAX_CHAIN	10
/* PEM bytes written per chain; the certificate that would pass it is not. */
#define REPORT_CHAIN_BYTES_MAX	(64 * 1024)
/* A report equal to one written less than this long ago is suppressed. */
#define REPORT_DEDUP_SECONDS	3600
/* Reports remembered for suppression; the oldest is forgotten first. */
#define REPORT_DEDUP_ENTRIES	256

/* One pin failure; every pointer is borrowed for the call. */
struct report_event {
	time_t			 time;		/* when it happened */
	const char		*hostname;	/* normalised host name */
	uint16_t		 port;
	const struct pinset	*ps;		/* the pin set applied */
	bool			 enforced;	/* false: report-only */
	/* The verdict's matched depth and candidates; NULL: none. */
	const struct pincheck_result *pins;
	const char		*client;	/* the client's address text */
	const char		*server_address; /* who answered; NULL: none */
	STACK_OF(X509)		*served_chain;	/* as the server sent it */
	STACK_OF(X509)		*validated_chain; /* as OpenSSL built it */
};

enum report_outcome {
	REPORT_WRITTEN,		/* one line was appended */
	REPORT_DUPLICATE,	/* written less than an hour ago: suppressed */
	REPORT_FULL,		/* the day's max lines were written */
	REPORT_FAILED		/* the write failed; err says why */
};

struct report;

/*
 * Open path for appending (created with mode 0640); NULL with err filled
 * when it cannot be opened or is not a regular file (a symbolic link is
 * never followed).
 */
struct report		*report_open(const char *path, char *err,
			    size_t errlen);
/*
 * Open the path again, e.g. after log rotation renamed the file (SIGHUP),
 * under the rules of report_open(). On failure the old file stays in use
 * and err says why.
 */
bool			 report_reopen(struct report *r, char *err,
			    size_t errlen);
/* Close the file and free (NULL is fine). */
void			 report_close(struct report *r);
/* As report_close(), removing the file if the open made it, still empty. */
void			 report_discard(struct report *r);
/* The path the report was opened with. */
const char		*report_path(const struct report *r);
/* Log a failure to write a report (see jsonl_log_error()). */
void			 report_log_error(struct report *r, const char *err);
/*
 * Append the report of one pin failure, unless it is a duplicate or max
 * lines were written on its UTC day.
 */
enum report_outcome	 report_pin_failure(struct report *r,
			    const struct report_event *ev, unsigned long max,
			    char *err, size_t errlen);
/* How many duplicates were suppressed since the last line written. */
unsigned long		 report_suppressed(const struct report *r);
/*
 * The pattern of ps that covers host (the most specific one), for the
 * noted-hostname field; NULL when none does.
 */
const char		*report_noted_hostname(const struct pinset *ps,
			    const char *host);

#endif
