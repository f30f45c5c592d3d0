/*
 * Reading a configuration file: inih fed through a line-counting reader,
 * a table of keys per section, and checks across sections. Every problem
 * is recorded as FILE:LINE: message; none stops the parse early.
 */
#ifndef PINPROXY_CONF_PARSE_H
#define PINPROXY_CONF_PARSE_H

#include <stdio.h>
#include <time.h>

#include "conf.h"
#include "diag.h"

/*
 * Parse the file at path. Returns a new configuration (refs = 1), or NULL
 * when it has any error; d receives every error and warning. Warnings that
 * depend on the date (expired or soon-expiring pin sets) are judged at now.
 */
struct conf	*conf_parse_file(const char *path, time_t now, struct diag *d);
/* The same from an open stream; name is used in messages. */
struct conf	*conf_parse_stream(FILE *fp, const char *name, time_t now,
		    struct diag *d);

#endif
