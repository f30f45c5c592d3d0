/*
 * Trust anchors for upstream verification: the system store or a PEM file
 * or directory of roots, read once per configuration generation, plus a
 * pin set's optional extra CA file.
 */
#ifndef PINPROXY_TRUST_H
#define PINPROXY_TRUST_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>

struct trust;

/*
 * Read trust ("system", a PEM file or a directory of hashed roots) once,
 * for the stores made from it. NULL with err filled on failure.
 */
struct trust	*trust_new(const char *trust, char *err, size_t errlen);
/*
 * A new store with the anchors of tr plus extra (a PEM file, or NULL).
 * NULL with err filled on failure.
 */
X509_STORE	*trust_store(const struct trust *tr, const char *extra,
		    char *err, size_t errlen);
/*
 * The store of tr's anchors alone, with a reference for the caller: for a
 * PEM file, one for every context (and every generation, see
 * trust_again()) that has no extra file; for the system's roots, whose
 * directory is looked up lazily, a new one each time. NULL with err
 * filled on failure.
 */
X509_STORE	*trust_store_plain(struct trust *tr, char *err, size_t errlen);
/*
 * tr again, with a reference more, when trust names the same source and
 * the file it read is unchanged (the system's bundle, or the PEM file;
 * never a directory, which is read again); else NULL: read it anew. A
 * reload reuses the anchors it parsed instead of keeping a copy for each
 * generation that connections still hold.
 */
struct trust	*trust_again(struct trust *tr, const char *trust);
/*
 * Drop a reference to what trust_new() read (NULL ok); its stores keep
 * their anchors.
 */
void		 trust_free(struct trust *tr);
/* trust_store() from a trust_new() of its own: for a single store. */
X509_STORE	*trust_store_new(const char *trust, const char *extra,
		    char *err, size_t errlen);
/* Whether a trust source can be loaded: for configuration checks. */
bool		 trust_check(const char *trust, char *err, size_t errlen);

#endif
