/*
 * Reading certificates from files: every certificate of a PEM bundle in
 * file order (keys and other blocks are skipped), or else the single
 * certificate of a DER file.
 */
#include "config.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "regfile.h"
#include "xmalloc.h"

/* Certificate bundles are small; anything larger is not one. */
#define CERTFILE_MAX_SIZE	(16L * 1024 * 1024)

/*
 * Read the whole file into memory; NULL with err filled on failure. The
 * daemon reads regular files only (regular_only): a FIFO would block it.
 */
static unsigned char *
certfile_read(const char *path, bool regular_only, size_t *lenp, char *err,
    size_t errlen)
{
	FILE		*fp;
	struct stat	 st;
	unsigned char	*data;
	size_t		 len, size, n;

	if (regular_only) {
		if ((fp = regfile_fopen(path, path, err, errlen)) == NULL)
			return NULL;
	} else if ((fp = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		fclose(fp);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(EISDIR));
		fclose(fp);
		return NULL;
	}

	size = 4096;
	len = 0;
	data = xmalloc(size);
	for (;;) {
		n = fread(data + len, 1, size - len, fp);
		len += n;
		if (len < size)
			break;
		if (size >= CERTFILE_MAX_SIZE) {
			snprintf(err, errlen, "cannot read %s: file too "
			    "large", path);
			goto fail;
		}
		size *= 2;
		data = xreallocarray(data, size, 1);
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	fclose(fp);
	*lenp = len;
	return data;

fail:
	free(data);
	fclose(fp);
	return NULL;
}

/*
 * Every PEM certificate of data, in order; an empty stack when there is
 * none, NULL with err filled when a certificate block is malformed.
 */
static STACK_OF(X509) *
certfile_pem(const char *path, const unsigned char *data, size_t len,
    char *err, size_t errlen)
{
	STACK_OF(X509)	*certs;
	BIO		*bio;
	X509		*x;
	unsigned long	 e;

	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL) {
		snprintf(err, errlen, "cannot read %s: out of memory", path);
		return NULL;
	}
	if ((certs = sk_X509_new_null()) == NULL) {
		snprintf(err, errlen, "cannot read %s: out of memory", path);
		BIO_free(bio);
		return NULL;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(certs, x) == 0) {
			X509_free(x);
			snprintf(err, errlen, "cannot read %s: out of memory",
			    path);
			goto fail;
		}
	}
	/* Running out of PEM blocks is how a good file ends. */
	e = ERR_peek_last_error();
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		snprintf(err, errlen, "cannot read %s: bad certificate: %s",
		    path, ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : "unknown error");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return certs;

fail:
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	BIO_free(bio);
	return NULL;
}

/* The one DER certificate that fills data exactly, or NULL. */
static X509 *
certfile_der(const unsigned char *data, size_t len)
{
	const unsigned char	*p;
	X509			*x;

	if (len > CERTFILE_MAX_SIZE)
		return NULL;
	p = data;
	x = d2i_X509(NULL, &p, (long)len);
	ERR_clear_error();
	if (x != NULL && p != data + len) {
		X509_free(x);
		return NULL;
	}
	return x;
}

STACK_OF(X509) *
certfile_load(const char *path, bool regular_only, char *err, size_t errlen)
{
	STACK_OF(X509)	*certs;
	unsigned char	*data;
	size_t		 len;
	X509		*x;

	if ((data = certfile_read(path, regular_only, &len, err,
	    errlen)) == NULL)
		return NULL;
	if ((certs = certfile_pem(path, data, len, err, errlen)) == NULL) {
		free(data);
		return NULL;
	}
	if (sk_X509_num(certs) == 0 && (x = certfile_der(data, len)) != NULL) {
		if (sk_X509_push(certs, x) == 0)
			X509_free(x);
	}
	free(data);
	if (sk_X509_num(certs) == 0) {
		snprintf(err, errlen, "no certificate found in %s", path);
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
}

bool
certfile_asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm	 tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*out = timegm(&tm);
	return true;
}

bool
certfile_chain_window(STACK_OF(X509) *chain, time_t *from, time_t *until)
{
	X509	*x;
	time_t	 t;
	int	 i;

	*from = *until = 0;
	for (i = 0; i < sk_X509_num(chain); i++) {
		x = sk_X509_value(chain, i);
		if (!certfile_asn1_time(X509_get0_notBefore(x), &t))
			goto fail;
		if (t > *from)
			*from = t;
		if (!certfile_asn1_time(X509_get0_notAfter(x), &t))
			goto fail;
		if (i == 0 || t < *until)
			*until = t;
	}
	return i > 0;
fail:
	*from = *until = 0;
	return false;
}
