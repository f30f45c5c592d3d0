/*
 * Deny pins: keys refused for every host, pinned or not. The deny_file is
 * read here (one pin a line, '#' comments), and a verified chain is
 * searched for a denied key.
 */
#ifndef PINPROXY_DENY_H
#define PINPROXY_DENY_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "pin.h"

/* Lines of this many bytes (without the newline) or more are errors. */
#define DENY_LINE_MAX		199
/* The most pins a deny_file may hold. */
#define DENY_FILE_MAX_PINS	10000
/* A deny_file larger than this is refused unread (its pins fit in far less). */
#define DENY_FILE_MAX_BYTES	(4 * 1024 * 1024)
/* Reading stops at this many bad lines: the file is refused anyway. */
#define DENY_FILE_MAX_BAD	100

/*
 * Append the pins of the deny file at path to *pins (*npins of them).
 * Only a regular file is read; a symbolic link is never followed. Each bad
 * line is recorded in d as PATH:LINE; false, with err saying why, when
 * the file cannot be read or has bad lines (then *pins is unchanged).
 */
bool		 deny_file_read(const char *path, struct pin **pins,
		    size_t *npins, struct diag *d, char *err, size_t errlen);
/*
 * Sort pins by digest, as the lookups below require of every list of
 * deny pins they are given (a configuration's are sorted when read).
 */
void		 deny_sort(struct pin *pins, size_t npins);
/*
 * The depth of the first certificate of chain, leaf first, whose key is
 * one of pins, with that pin in *which; -1 when none is.
 */
int		 deny_match(const struct pin *pins, size_t npins,
		    STACK_OF(X509) *chain, struct pin *which);
/*
 * The same for keys already hashed (nkeys of them, leaf first, as
 * pincheck recorded them): the depth of the first denied one, or -1.
 */
int		 deny_match_keys(const struct pin *pins, size_t npins,
		    const struct pin *keys, size_t nkeys, struct pin *which);
/* Whether pins holds a pin that old (nold of them, sorted) does not. */
bool		 deny_adds(const struct pin *pins, size_t npins,
		    const struct pin *old, size_t nold);

#endif
