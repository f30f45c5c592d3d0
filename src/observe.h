/*
 * The observe_file: for every verified upstream chain of a host that no pin
 * set covers, one JSON line per distinct host, port and chain a day, so
 * that an operator learns which hosts an app talks to before pinning them.
 */
#ifndef PINPROXY_OBSERVE_H
#define PINPROXY_OBSERVE_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Certificates written per chain; deeper ones are left out. */
#define OBSERVE_MAX_CHAIN	10
/* Distinct host, port and chain triples remembered for the day. */
#define OBSERVE_DEDUP_ENTRIES	4096
/* Slots probed from a triple's hash before the oldest one is reused. */
#define OBSERVE_DEDUP_PROBES	16
/* Domains whose lines of the day are counted (observe.c). */
#define OBSERVE_DOMAINS		1024

struct observe;

/*
 * Open path for appending (created with mode 0640); NULL with err filled
 * when it cannot be opened or is not a regular file (a symbolic link is
 * never followed).
 */
struct observe	*observe_open(const char *path, char *err, size_t errlen);
/*
 * Open the path again after log rotation (SIGHUP); the day's memory of
 * what was written stays. On failure the old file stays in use.
 */
bool		 observe_reopen(struct observe *o, char *err, size_t errlen);
/* Close the file and free (NULL is fine). */
void		 observe_close(struct observe *o);
/* As observe_close(), removing the file if the open made it, still empty. */
void		 observe_discard(struct observe *o);
/* The path the file was opened with. */
const char	*observe_path(const struct observe *o);
/*
 * Append the verified chain of host:port seen for client at now, unless
 * the same host, port and chain was written earlier the same UTC day, or
 * max lines were written that day already (logged once a day: hosts no
 * pin set covers are the network's to choose, and a page that makes a
 * browser fetch ever new names would fill the disk). Returns true when a
 * line was written; a failed write is logged here. o may be NULL (no
 * observe_file): nothing happens.
 */
bool		 observe_chain(struct observe *o, unsigned long max,
		    const char *host, uint16_t port, const char *client,
		    STACK_OF(X509) *chain, time_t now);

#endif
