/* Version strings of pinproxy and of the libraries it runs with. */
#ifndef PINPROXY_VERSION_H
#define PINPROXY_VERSION_H

#include <stdio.h>

/* pinproxy's own version. */
const char	*version_string(void);
/* Print the program's version and the libevent and OpenSSL versions. */
void		 version_print(FILE *fp, const char *program);

#endif
