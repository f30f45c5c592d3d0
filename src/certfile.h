/* Reading certificates from PEM bundles and DER files. */
#ifndef PINPROXY_CERTFILE_H
#define PINPROXY_CERTFILE_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * Every certificate of a PEM file, in file order, or the one certificate
 * of a DER file. NULL with err filled when the file cannot be read or
 * holds no certificate; with regular_only, also when it is not a regular
 * file (a FIFO would block the reader). Free with
 * sk_X509_pop_free(s, X509_free).
 */
STACK_OF(X509)	*certfile_load(const char *path, bool regular_only, char *err,
		    size_t errlen);
/* A certificate's time (notBefore, notAfter) as seconds since the epoch. */
bool		 certfile_asn1_time(const ASN1_TIME *t, time_t *out);
/*
 * The window in which every certificate of chain is valid: the latest
 * notBefore and the earliest notAfter. False (both 0) when a time cannot
 * be read or the chain is empty.
 */
bool		 certfile_chain_window(STACK_OF(X509) *chain, time_t *from,
		    time_t *until);

#endif
