/*
 * Trust anchors for upstream verification: the system store, a PEM file or
 * a directory of hashed roots, plus a pin set's extra CA file. Every error
 * names the file and the reason.
 */
#include "config.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "certfile.h"
#include "trust.h"

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

	if ((certs = certfile_load(path, err, errlen)) == NULL)
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

/* Use a directory of hashed roots, looked up by OpenSSL when needed. */
static bool
trust_add_dir(X509_STORE *store, const char *path, char *err, size_t errlen)
{
	DIR	*dir;

	/* OpenSSL reads the directory lazily: find out now if it cannot. */
	if ((dir = opendir(path)) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return false;
	}
	closedir(dir);
	ERR_clear_error();
	if (X509_STORE_load_path(store, path) != 1) {
		snprintf(err, errlen, "cannot use %s: %s", path,
		    trust_ssl_reason());
		ERR_clear_error();
		return false;
	}
	return true;
}

/* Add a trust source: "system", a directory or a file. */
static bool
trust_add(X509_STORE *store, const char *trust, char *err, size_t errlen)
{
	struct stat	 st;

	if (strcmp(trust, "system") == 0) {
		ERR_clear_error();
		if (X509_STORE_set_default_paths(store) != 1) {
			snprintf(err, errlen, "cannot load the system trust "
			    "store: %s", trust_ssl_reason());
			ERR_clear_error();
			return false;
		}
		return true;
	}
	if (stat(trust, &st) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", trust,
		    strerror(errno));
		return false;
	}
	if (S_ISDIR(st.st_mode))
		return trust_add_dir(store, trust, err, errlen);
	return trust_add_file(store, trust, err, errlen);
}

X509_STORE *
trust_store_new(const char *trust, const char *extra, char *err,
    size_t errlen)
{
	X509_STORE	*store;

	if (trust == NULL || *trust == '\0') {
		snprintf(err, errlen, "no trust source: use \"system\" or a "
		    "file or directory of roots");
		return NULL;
	}
	if ((store = X509_STORE_new()) == NULL) {
		snprintf(err, errlen, "cannot create a trust store: out of "
		    "memory");
		return NULL;
	}
	if (!trust_add(store, trust, err, errlen))
		goto fail;
	if (extra != NULL && *extra != '\0' &&
	    !trust_add_file(store, extra, err, errlen))
		goto fail;
	return store;

fail:
	X509_STORE_free(store);
	return NULL;
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
