/*
 * Trust anchors for upstream verification: the system store, a PEM file or
 * a directory of hashed roots, plus a pin set's extra CA file. A source is
 * read once and copied into each store made from it, so that many pin sets
 * with a CA file of their own do not parse the same roots again, nor does
 * a reload when the source's file is unchanged. Every error names the
 * file and the reason.
 */
#include "config.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "regfile.h"
#include "trust.h"
#include "xmalloc.h"

/* The reason of OpenSSL's latest error, for a message. */
static const char *
trust_ssl_reason(void)
{
	const char	*r;

	r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : "unknown error";
}

/* Add every certificate of a PEM (or DER) file to the store. */
static bool
trust_add_file(X509_STORE *store, const char *path, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*certs;
	int		 i;
	bool		 ok;

	if ((certs = certfile_load(path, true, err, errlen)) == NULL)
		return false;
	ok = true;
	ERR_clear_error();
	for (i = 0; i < sk_X509_num(certs) && ok; i++) {
		if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1) {
			snprintf(err, errlen, "cannot use %s: %s", path,
			    trust_ssl_reason());
			ok = false;
		}
	}
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	return ok;
}

/*
 * The subject hash a certificate's name in a hashed directory gives
 * ("HASH.N": eight lower-case hex digits, as OpenSSL looks them up, a dot
 * and a number; CRLs, "HASH.rN", are not read); false for other names.
 */
static bool
trust_hashed_name(const char *name, unsigned long *hash)
{
	size_t	 i;

	*hash = 0;
	for (i = 0; i < 8; i++) {
		if (!isdigit((unsigned char)name[i]) &&
		    (name[i] < 'a' || name[i] > 'f'))
			return false;
		*hash = *hash * 16 + (unsigned long)(isdigit((unsigned char)
		    name[i]) ? name[i] - '0' : name[i] - 'a' + 10);
	}
	if (name[8] != '.' || name[9] == '\0')
		return false;
	for (i = 9; name[i] != '\0'; i++)
		if (!isdigit((unsigned char)name[i]))
			return false;
	return true;
}

static int
trust_hash_cmp(const void *a, const void *b)
{
	unsigned long	 x = *(const unsigned long *)a;
	unsigned long	 y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/*
 * Add the roots of hash from dir as OpenSSL's lookup of a hashed
 * directory finds them: HASH.0, HASH.1 and on until the first that is
 * missing or unusable, each one's certificates of that subject hash. A
 * file that is not regular (a FIFO) ends the search, never blocks it.
 */
static bool
trust_add_hash(X509_STORE *store, const char *dir, unsigned long hash,
    size_t *added, char *err, size_t errlen)
{
	STACK_OF(X509)	*certs;
	X509		*x;
	char		*file, why[256];
	int		 i, k;
	bool		 ok = true;

	for (k = 0; ok; k++) {
		file = xasprintf("%s/%08lx.%d", dir, hash, k);
		certs = certfile_load(file, true, why, sizeof(why));
		free(file);
		if (certs == NULL)
			break;
		ERR_clear_error();
		for (i = 0; i < sk_X509_num(certs) && ok; i++) {
			x = sk_X509_value(certs, i);
			if (X509_subject_name_hash(x) != hash)
				continue;
			if (X509_STORE_add_cert(store, x) != 1) {
				snprintf(err, errlen, "cannot use a root of "
				    "%s: %s", dir, trust_ssl_reason());
				ok = false;
			} else
				(*added)++;
		}
		ERR_clear_error();
		sk_X509_pop_free(certs, X509_free);
	}
	return ok;
}

/*
 * Add the roots of a hashed directory, read now rather than by OpenSSL
 * during a verification (which opened its files on the event loop, where
 * a FIFO stopped the daemon), and found as that lookup finds them. One
 * that holds none (empty, or certificates never hashed) is an error, as
 * a file without a certificate is: every verification would fail.
 */
static bool
trust_add_dir(X509_STORE *store, const char *path, char *err, size_t errlen)
{
	DIR		*dir;
	struct dirent	*de;
	unsigned long	*hashes = NULL, hash;
	size_t		 n = 0, i, added = 0;
	bool		 ok = true;

	if ((dir = opendir(path)) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return false;
	}
	while ((de = readdir(dir)) != NULL) {
		if (!trust_hashed_name(de->d_name, &hash))
			continue;
		hashes = xappendarray(hashes, n, sizeof(*hashes));
		hashes[n++] = hash;
	}
	closedir(dir);
	if (n > 0)
		qsort(hashes, n, sizeof(*hashes), trust_hash_cmp);
	for (i = 0; i < n && ok; i++)
		if (i == 0 || hashes[i] != hashes[i - 1])
			ok = trust_add_hash(store, path, hashes[i], &added,
			    err, errlen);
	free(hashes);
	if (ok && added == 0) {
		snprintf(err, errlen, "no root certificate found in %s, "
		    "under names HASH.0 as \"openssl rehash\" makes them",
		    path);
		ok = false;
	}
	return ok;
}

/* What a trust source is: it decides the lookups of each store. */
enum trust_kind {
	TRUST_SYSTEM,
	TRUST_DIR,
	TRUST_FILE,
};

struct trust {
	int		 refs;
	enum trust_kind	 kind;
	char		*source;	/* as configured */
	X509_STORE	*loaded;	/* what was read at once */
	X509_STORE	*plain;		/* trust_store(tr, NULL), shared */
	/* The file read at once (not for a directory): reused unchanged. */
	bool		 have_id;
	struct fileid	 id;
};

/* The file a source of kind reads at once, or NULL (a directory). */
static const char *
trust_file(enum trust_kind kind, const char *source)
{
	const char	*env;

	switch (kind) {
	case TRUST_SYSTEM:
		env = getenv(X509_get_default_cert_file_env());
		return env != NULL ? env : X509_get_default_cert_file();
	case TRUST_FILE:
		return source;
	case TRUST_DIR:
		break;
	}
	return NULL;
}

/* Record what the file of tr is, before it is read. */
static void
trust_note_file(struct trust *tr)
{
	const char	*file = trust_file(tr->kind, tr->source);
	struct stat	 st;

	tr->have_id = file != NULL && stat(file, &st) == 0;
	if (tr->have_id)
		fileid_set(&tr->id, &st);
}

/* Whether the file of tr is still the one its identity records. */
static bool
trust_file_unchanged(const struct trust *tr)
{
	const char	*file = trust_file(tr->kind, tr->source);
	struct stat	 st;

	return tr->have_id && file != NULL && stat(file, &st) == 0 &&
	    fileid_same(&tr->id, &st);
}

/*
 * After it was read: a file that changed meanwhile may have given other
 * roots than its recorded identity says, and is never reused.
 */
static void
trust_confirm_file(struct trust *tr)
{
	tr->have_id = trust_file_unchanged(tr);
}

struct trust *
trust_new(const char *trust, char *err, size_t errlen)
{
	struct trust	*tr;
	struct stat	 st;
	bool		 ok;

	if (trust == NULL || *trust == '\0') {
		snprintf(err, errlen, "no trust source: use \"system\" or a "
		    "file or directory of roots");
		return NULL;
	}
	tr = xcalloc(1, sizeof(*tr));
	tr->refs = 1;
	tr->source = xstrdup(trust);
	if ((tr->loaded = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "cannot create a trust store: out of "
		    "memory");
		goto fail;
	}
	if (strcmp(trust, "system") == 0) {
		tr->kind = TRUST_SYSTEM;
		trust_note_file(tr);
		ERR_clear_error();
		/* The default file now, the default directory lazily. */
		if (X509_STORE_set_default_paths(tr->loaded) != 1) {
			snprintf(err, errlen, "cannot load the system trust "
			    "store: %s", trust_ssl_reason());
			ERR_clear_error();
			goto fail;
		}
		trust_confirm_file(tr);
		return tr;
	}
	if (stat(trust, &st) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", trust,
		    strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		tr->kind = TRUST_DIR;
		ok = trust_add_dir(tr->loaded, trust, err, errlen);
	} else {
		tr->kind = TRUST_FILE;
		trust_note_file(tr);
		ok = trust_add_file(tr->loaded, trust, err, errlen);
		trust_confirm_file(tr);
	}
	if (ok)
		return tr;
fail:
	trust_free(tr);
	return NULL;
}

/*
 * Give store the lookups of X509_STORE_set_default_paths() that read
 * nothing until a verification asks: the default directory, by hash and
 * as an OSSL_STORE. Its default file is read once, in trust_new().
 */
static bool
trust_add_default_dirs(X509_STORE *store)
{
	X509_LOOKUP	*lookup;

	if ((lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir())) ==
	    NULL)
		return false;
	X509_LOOKUP_add_dir(lookup, NULL, X509_FILETYPE_DEFAULT);
	if ((lookup = X509_STORE_add_lookup(store, X509_LOOKUP_store())) ==
	    NULL)
		return false;
	X509_LOOKUP_add_store_ex(lookup, NULL, NULL, NULL);
	ERR_clear_error();
	return true;
}

/* Add to store the certificates and CRLs that tr read. */
static bool
trust_copy_loaded(const struct trust *tr, X509_STORE *store)
{
	STACK_OF(X509_OBJECT)	*objs;
	X509_OBJECT		*o;
	int			 i, ok = 1;

	objs = X509_STORE_get0_objects(tr->loaded);
	for (i = 0; i < sk_X509_OBJECT_num(objs) && ok == 1; i++) {
		o = sk_X509_OBJECT_value(objs, i);
		if (X509_OBJECT_get_type(o) == X509_LU_X509)
			ok = X509_STORE_add_cert(store,
			    X509_OBJECT_get0_X509(o));
		else if (X509_OBJECT_get_type(o) == X509_LU_CRL)
			ok = X509_STORE_add_crl(store,
			    X509_OBJECT_get0_X509_CRL(o));
	}
	return ok == 1;
}

X509_STORE *
trust_store(const struct trust *tr, const char *extra, char *err,
    size_t errlen)
{
	X509_STORE	*store;

	if ((store = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "cannot create a trust store: out of "
		    "memory");
		return NULL;
	}
	ERR_clear_error();
	if (!trust_copy_loaded(tr, store) || (tr->kind == TRUST_SYSTEM &&
	    !trust_add_default_dirs(store))) {
		snprintf(err, errlen, "cannot fill a trust store: %s",
		    trust_ssl_reason());
		ERR_clear_error();
		goto fail;
	}
	if (extra != NULL && *extra != '\0' &&
	    !trust_add_file(store, extra, err, errlen))
		goto fail;
	return store;

fail:
	X509_STORE_free(store);
	return NULL;
}

X509_STORE *
trust_store_plain(struct trust *tr, char *err, size_t errlen)
{
	/*
	 * The system's store looks up its directory lazily and keeps what
	 * it found: a root removed there must not stay trusted in a store
	 * that outlives a reload. A file's or a directory's store holds
	 * only what was read at once.
	 */
	if (tr->kind == TRUST_SYSTEM)
		return trust_store(tr, NULL, err, errlen);
	if (tr->plain == NULL &&
	    (tr->plain = trust_store(tr, NULL, err, errlen)) == NULL)
		return NULL;
	X509_STORE_up_ref(tr->plain);
	return tr->plain;
}

struct trust *
trust_again(struct trust *tr, const char *trust)
{
	if (tr == NULL || trust == NULL || strcmp(tr->source, trust) != 0 ||
	    !trust_file_unchanged(tr))
		return NULL;
	tr->refs++;
	return tr;
}

void
trust_free(struct trust *tr)
{
	if (tr == NULL || --tr->refs > 0)
		return;
	X509_STORE_free(tr->loaded);
	X509_STORE_free(tr->plain);
	free(tr->source);
	free(tr);
}

X509_STORE *
trust_store_new(const char *trust, const char *extra, char *err,
    size_t errlen)
{
	struct trust	*tr;
	X509_STORE	*store;

	if ((tr = trust_new(trust, err, errlen)) == NULL)
		return NULL;
	store = trust_store(tr, extra, err, errlen);
	trust_free(tr);
	return store;
}

bool
trust_check(const char *trust, char *err, size_t errlen)
{
	X509_STORE	*store;

	if ((store = trust_store_new(trust, NULL, err, errlen)) == NULL)
		return false;
	X509_STORE_free(store);
	return true;
}
