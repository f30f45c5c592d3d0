/*
 * The interception CA: loading and checking an existing CA (regular files
 * only, a key that only the daemon's user can read, no weak key or
 * signature), creating a new EC P-256 one on first start (key written
 * 0600, created exclusively and synced), and signing certificates without
 * ever exposing the key.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "certfile.h"
#include "monotime.h"
#include "regfile.h"
#include "xmalloc.h"

#define CA_CN_PREFIX		"pinproxy interception CA"
#define CA_ORGANIZATION		"pinproxy"
#define CA_VALID_DAYS		3650
#define CA_BACKDATE_SECONDS	(24 * 60 * 60)
#define CA_SERIAL_BYTES		16
/* Keys and signatures weaker than this (RSA under 2048 bits, SHA-1). */
#define CA_MIN_SECURITY_BITS	112
/*
 * How long a start (or a reload, on the event loop) waits for another
 * one creating the same CA, which takes milliseconds.
 */
#define CA_LOCK_WAIT_MS		1000

/* A longer-lived CA is warned about: about ten years, leap days included. */
#define CA_MAX_VALID_DAYS	3660
/* A CA expiring within this many days is warned about. */
#define CA_EXPIRY_WARN_DAYS	30

/* A file a CA came from, to tell whether a reload must read it again. */
struct ca_source {
	char		*path;
	struct fileid	 id;
};

struct ca {
	int		 refs;
	X509		*cert;
	EVP_PKEY	*key;
	const EVP_MD	*md;		/* NULL when the key type fixes it */
	time_t		 not_after;
	unsigned char	 id[CA_ID_LEN];
	char		 warning[256];	/* empty: none */
	struct ca_source cert_src;
	struct ca_source key_src;
};

/*
 * Whether path exists (a symbolic link counts, so that it is refused rather
 * than replaced): 1 yes, 0 no, -1 on another error (err filled).
 */
static int
ca_exists(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat	 st;

	if (lstat(path, &st) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

/* Refuse a passphrase prompt: the daemon cannot ask anyone for one. */
static int
ca_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/*
 * Open what (ca_cert or ca_key) at path for reading, with its status in
 * *st; only a regular file (regfile_open).
 */
static FILE *
ca_open(const char *what, const char *path, struct stat *st, char *err,
    size_t errlen)
{
	FILE	*fp;
	int	 fd;

	if ((fd = regfile_open(what, path, O_RDONLY, 0, st, err, errlen)) ==
	    -1)
		return NULL;
	if ((fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		close(fd);
	}
	return fp;
}

static X509 *
ca_read_cert(const char *path, struct stat *st, char *err, size_t errlen)
{
	FILE		*fp;
	X509		*cert;

	if ((fp = ca_open("ca_cert", path, st, err, errlen)) == NULL)
		return NULL;
	cert = PEM_read_X509(fp, NULL, ca_no_passphrase, NULL);
	fclose(fp);
	if (cert == NULL)
		snprintf(err, errlen, "ca_cert %s: no PEM certificate in the "
		    "file", path);
	return cert;
}

/*
 * Read the CA key, which only the daemon's user may own and access: a key
 * that others can read may already have been copied.
 */
static EVP_PKEY *
ca_read_key(const char *path, struct stat *st, char *err, size_t errlen)
{
	FILE		*fp;
	EVP_PKEY	*key;

	if ((fp = ca_open("ca_key", path, st, err, errlen)) == NULL)
		return NULL;
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen, "ca_key %s is owned by uid %lu, not by "
		    "the user pinproxy runs as (uid %lu): refused", path,
		    (unsigned long)st->st_uid, (unsigned long)geteuid());
		fclose(fp);
		return NULL;
	}
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "ca_key %s has mode %04o: group and "
		    "others must have no access (chmod 600 it): refused", path,
		    (unsigned int)(st->st_mode & 07777));
		fclose(fp);
		return NULL;
	}
	key = PEM_read_PrivateKey(fp, NULL, ca_no_passphrase, NULL);
	fclose(fp);
	if (key == NULL)
		snprintf(err, errlen, "ca_key %s: no PEM private key in the "
		    "file (encrypted keys are not supported)", path);
	return key;
}

/*
 * Refuse a key or a certificate signature weaker than CA_MIN_SECURITY_BITS:
 * anyone who breaks either can issue certificates the clients trust.
 */
static bool
ca_strong_enough(X509 *cert, EVP_PKEY *key, const char *cert_path,
    const char *key_path, char *err, size_t errlen)
{
	uint32_t	 flags;
	int		 mdnid, pknid, secbits;

	if (EVP_PKEY_get_security_bits(key) < CA_MIN_SECURITY_BITS) {
		if (EVP_PKEY_is_a(key, "RSA"))
			snprintf(err, errlen, "ca_key %s is an RSA key of %d "
			    "bits: at least 2048 are required", key_path,
			    EVP_PKEY_get_bits(key));
		else
			snprintf(err, errlen, "ca_key %s is a %s key of %d "
			    "bits: too weak (less than %d bits of security)",
			    key_path, EVP_PKEY_get0_type_name(key),
			    EVP_PKEY_get_bits(key), CA_MIN_SECURITY_BITS);
		return false;
	}
	if (X509_get_signature_info(cert, &mdnid, &pknid, &secbits,
	    &flags) != 1) {
		snprintf(err, errlen, "ca_cert %s: unknown signature algorithm",
		    cert_path);
		return false;
	}
	if (secbits < CA_MIN_SECURITY_BITS) {
		snprintf(err, errlen, "ca_cert %s is signed with %s: too weak "
		    "(SHA-256 or better is required)", cert_path,
		    mdnid != NID_undef ? OBJ_nid2sn(mdnid) : "a weak digest");
		return false;
	}
	return true;
}

bool
ca_expiry_warning(const struct ca *ca, const char *cert_path, time_t now,
    char *buf, size_t len)
{
	char		 date[32];
	struct tm	 tm;
	time_t		 left = ca->not_after - now;

	if (left >= (time_t)CA_EXPIRY_WARN_DAYS * 86400)
		return false;
	if (left > 0) {
		snprintf(buf, len, "ca_cert %s expires in %lld days: clients "
		    "will refuse every certificate it issued then; make a new "
		    "CA and have clients trust it", cert_path,
		    (long long)(left / 86400));
		return true;
	}
	if (gmtime_r(&ca->not_after, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(date, sizeof(date), "%lld",
		    (long long)ca->not_after);
	snprintf(buf, len, "ca_cert %s expired on %s: clients refuse every "
	    "certificate it issues (a reload or a restart refuses it); make a "
	    "new CA and have clients trust it", cert_path, date);
	return true;
}

/*
 * Note in ca a warning when cert is valid for more than about ten years,
 * or expires within CA_EXPIRY_WARN_DAYS.
 */
static void
ca_check_lifetime(struct ca *ca, X509 *cert, const char *cert_path)
{
	int	 days, secs;

	if (ca_expiry_warning(ca, cert_path, time(NULL), ca->warning,
	    sizeof(ca->warning)))
		return;
	if (ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert),
	    X509_get0_notAfter(cert)) != 1 || days <= CA_MAX_VALID_DAYS)
		return;
	snprintf(ca->warning, sizeof(ca->warning), "ca_cert %s is valid for "
	    "%d days, more than 10 years: a leaked CA key stays usable that "
	    "long; consider a new CA", cert_path, days);
}

/*
 * Build a struct ca from cert and key (taking ownership of both, also on
 * failure) after checking that they belong together and form a usable CA.
 */
static struct ca *
ca_new(X509 *cert, EVP_PKEY *key, const char *cert_path, const char *key_path,
    char *err, size_t errlen)
{
	struct ca	*ca;
	struct tm	 tm;
	unsigned int	 idlen = CA_ID_LEN;
	uint32_t	 flags;
	time_t		 not_after;
	int		 nid;
	char		 date[32];

	if (X509_check_private_key(cert, key) != 1) {
		snprintf(err, errlen, "ca_key %s does not match ca_cert %s",
		    key_path, cert_path);
		goto fail;
	}
	if (!ca_strong_enough(cert, key, cert_path, key_path, err, errlen))
		goto fail;
	flags = X509_get_extension_flags(cert);
	if ((flags & EXFLAG_INVALID) != 0) {
		snprintf(err, errlen, "ca_cert %s has invalid extensions",
		    cert_path);
		goto fail;
	}
	if ((flags & EXFLAG_CA) == 0) {
		snprintf(err, errlen, "ca_cert %s is not a CA certificate "
		    "(no basicConstraints CA:TRUE)", cert_path);
		goto fail;
	}
	if ((flags & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) {
		snprintf(err, errlen, "ca_cert %s may not sign certificates "
		    "(keyUsage lacks keyCertSign)", cert_path);
		goto fail;
	}
	if (!certfile_asn1_time(X509_get0_notAfter(cert), &not_after)) {
		snprintf(err, errlen, "ca_cert %s has an invalid notAfter",
		    cert_path);
		goto fail;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
		gmtime_r(&not_after, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
		snprintf(err, errlen, "ca_cert %s expired on %s", cert_path,
		    date);
		goto fail;
	}
	/* Clients refuse every leaf of a CA not valid yet. */
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
		snprintf(err, errlen, "ca_cert %s is not valid yet (its "
		    "notBefore is in the future)", cert_path);
		goto fail;
	}
	/*
	 * A self-issued CA signs itself: a certificate changed since (one
	 * of the same key, swapped in) would be served as it is.
	 */
	if (X509_check_issued(cert, cert) == X509_V_OK &&
	    X509_verify(cert, key) != 1) {
		snprintf(err, errlen, "ca_cert %s is self-issued but its "
		    "signature does not verify with ca_key %s", cert_path,
		    key_path);
		ERR_clear_error();
		goto fail;
	}

	ca = xcalloc(1, sizeof(*ca));
	ca->refs = 1;
	ca->cert = cert;
	ca->key = key;
	ca->not_after = not_after;
	ca_check_lifetime(ca, cert, cert_path);
	ca->md = EVP_sha256();
	/* Ed25519 and Ed448 sign without a separate digest. */
	if (EVP_PKEY_get_default_digest_nid(key, &nid) == 2 &&
	    nid == NID_undef)
		ca->md = NULL;
	if (X509_digest(cert, EVP_sha256(), ca->id, &idlen) != 1 ||
	    idlen != CA_ID_LEN) {
		snprintf(err, errlen, "ca_cert %s: cannot compute its digest",
		    cert_path);
		ca_unref(ca);
		return NULL;
	}
	return ca;

fail:
	X509_free(cert);
	EVP_PKEY_free(key);
	return NULL;
}

/* Remember path and what st says of it in src. */
static void
ca_source_set(struct ca_source *src, const char *path, const struct stat *st)
{
	free(src->path);
	src->path = xstrdup(path);
	fileid_set(&src->id, st);
}

/* Whether path is still the file src describes, unchanged. */
static bool
ca_source_same(const struct ca_source *src, const char *path)
{
	struct stat	 st;

	if (src->path == NULL || strcmp(src->path, path) != 0 ||
	    lstat(path, &st) == -1)
		return false;
	return fileid_same(&src->id, &st);
}

static struct ca *
ca_load(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	struct stat	 cert_st, key_st;
	struct ca	*ca;
	X509		*cert;
	EVP_PKEY	*key;

	if ((cert = ca_read_cert(cert_path, &cert_st, err, errlen)) == NULL)
		return NULL;
	if ((key = ca_read_key(key_path, &key_st, err, errlen)) == NULL) {
		X509_free(cert);
		return NULL;
	}
	if ((ca = ca_new(cert, key, cert_path, key_path, err, errlen)) ==
	    NULL)
		return NULL;
	ca_source_set(&ca->cert_src, cert_path, &cert_st);
	ca_source_set(&ca->key_src, key_path, &key_st);
	return ca;
}

bool
ca_set_random_serial(X509 *cert)
{
	unsigned char	 buf[CA_SERIAL_BYTES];
	BIGNUM		*bn;
	bool		 ok;

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return false;
	/* Positive, non-zero and always of the same encoded length. */
	buf[0] = (buf[0] & 0x7f) | 0x40;
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL)
		return false;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

bool
ca_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION	*ext;
	bool		 ok;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL)
		return false;
	ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A fresh self-signed CA certificate for key. */
static X509 *
ca_generate_cert(EVP_PKEY *key)
{
	X509		*cert;
	X509_NAME	*name;
	X509V3_CTX	 ctx;
	unsigned char	 rnd[4];
	char		 cn[64];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return NULL;
	snprintf(cn, sizeof(cn), "%s %02x%02x%02x%02x", CA_CN_PREFIX,
	    rnd[0], rnd[1], rnd[2], rnd[3]);
	if ((cert = X509_new()) == NULL)
		return NULL;
	name = X509_get_subject_name(cert);
	if (X509_set_version(cert, X509_VERSION_3) != 1 ||
	    !ca_set_random_serial(cert) ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)CA_ORGANIZATION, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(cert, name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert),
	    -CA_BACKDATE_SECONDS) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), CA_VALID_DAYS, 0,
	    NULL) == NULL ||
	    X509_set_pubkey(cert, key) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	if (!ca_add_ext(cert, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE,pathlen:0") ||
	    !ca_add_ext(cert, &ctx, NID_key_usage,
	    "critical,keyCertSign,cRLSign") ||
	    !ca_add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
	    X509_sign(cert, key, EVP_sha256()) <= 0)
		goto fail;
	return cert;

fail:
	X509_free(cert);
	return NULL;
}

/* Create the directory holding path (one level) if it is missing. */
static bool
ca_make_parent(const char *path, char *err, size_t errlen)
{
	char	*dir, *slash;
	bool	 ok = true;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s",
			    dir, strerror(errno));
			ok = false;
		}
	}
	free(dir);
	return ok;
}

/*
 * Whether ca_create() could make path: its directory exists, or can be
 * made (ca_make_parent() makes one level) in one that exists; err filled
 * when not. For -t, which creates nothing.
 */
static bool
ca_creatable(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	char		*dir, *up;
	bool		 ok;

	/* (Not a directory: ca_files() said so already.) */
	dir = regfile_dirname(path);
	if (stat(dir, &st) == 0) {
		ok = regfile_writable_dir(what, path, dir, err, errlen);
		free(dir);
		return ok;
	}
	up = regfile_dirname(dir);
	ok = stat(up, &st) == 0 && S_ISDIR(st.st_mode);
	if (!ok)
		snprintf(err, errlen, "%s %s: neither %s nor %s exists, and "
		    "pinproxy creates only the last directory of the path",
		    what, path, dir, up);
	else
		ok = regfile_writable_dir(what, path, up, err, errlen);
	free(up);
	free(dir);
	return ok;
}

/* Flush the directory entry of a freshly created path to disk. */
static void
ca_sync_parent(const char *path)
{
	char	*dir;
	int	 fd;

	dir = regfile_dirname(path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/*
 * Write len bytes to a new file (never an existing one) with mode, and sync
 * it; a partly written file is removed.
 */
static bool
ca_write_new(const char *path, mode_t mode, const char *data, size_t len,
    char *err, size_t errlen)
{
	ssize_t	 n = -1;
	size_t	 off = 0;
	int	 fd, saved;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		return false;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	ca_sync_parent(path);
	return true;

fail:
	saved = n == 0 ? EIO : errno;
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
	if (fd != -1)
		close(fd);
	unlink(path);
	return false;
}

/*
 * Write the PEM of key or cert to path. The key's PEM lives in secure-heap
 * memory, which OpenSSL wipes when the BIO is freed.
 */
static bool
ca_write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert,
    char *err, size_t errlen)
{
	BIO	*bio;
	char	*data;
	long	 len;
	bool	 ok;

	if ((bio = BIO_new(BIO_s_secmem())) == NULL) {
		snprintf(err, errlen, "cannot allocate a buffer for %s", path);
		return false;
	}
	if (key != NULL)
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
		    NULL) == 1;
	else
		ok = PEM_write_bio_X509(bio, cert) == 1;
	if (!ok || (len = BIO_get_mem_data(bio, &data)) <= 0) {
		snprintf(err, errlen, "cannot encode %s", path);
		BIO_free(bio);
		return false;
	}
	ok = ca_write_new(path, mode, data, (size_t)len, err, errlen);
	BIO_free(bio);
	return ok;
}

/*
 * Remember the files of a CA this start wrote or named, as they are now
 * (not recorded: the next reload reads them, which is harmless).
 */
static void
ca_record_sources(struct ca *ca, const char *cert_path, const char *key_path)
{
	struct stat	 st;

	if (lstat(cert_path, &st) == 0)
		ca_source_set(&ca->cert_src, cert_path, &st);
	if (lstat(key_path, &st) == 0)
		ca_source_set(&ca->key_src, key_path, &st);
}

/* Where a new CA's certificate waits for its key: see ca_create(). */
static char *
ca_pending_path(const char *cert_path)
{
	return xasprintf("%s.new", cert_path);
}

/*
 * Give the pending certificate its name, never over an existing file;
 * false with err filled.
 */
static bool
ca_name_pending(const char *pending, const char *cert_path, char *err,
    size_t errlen)
{
	/*
	 * A file system without hard links renames, without replacing
	 * where it can; one that cannot even do that renames plainly (the
	 * files were looked at under the lock).
	 */
	if (link(pending, cert_path) == 0)
		(void)unlink(pending);
	else if ((errno != EPERM && errno != EOPNOTSUPP) ||
	    (renameat2(AT_FDCWD, pending, AT_FDCWD, cert_path,
	    RENAME_NOREPLACE) == -1 && ((errno != EINVAL && errno != ENOSYS) ||
	    rename(pending, cert_path) == -1))) {
		snprintf(err, errlen, "cannot create %s: %s", cert_path,
		    strerror(errno));
		return false;
	}
	ca_sync_parent(cert_path);
	return true;
}

/*
 * Create a new CA: its certificate to cert_path.new, its key to
 * key_path.new, then the key to key_path and the certificate to
 * cert_path, each whole when it gets its name. A stop in between leaves
 * either no key (the next start creates a CA again, over the stale .new
 * files) or the key and the certificate's .new, which the next start
 * finishes (ca_finish()); never a part of a key.
 */
static struct ca *
ca_create(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;
	char		*pending, *key_pending;

	if (!ca_make_parent(key_path, err, errlen) ||
	    !ca_make_parent(cert_path, err, errlen))
		return NULL;
	if ((key = EVP_EC_gen("P-256")) == NULL) {
		snprintf(err, errlen, "cannot generate the CA key");
		return NULL;
	}
	if ((cert = ca_generate_cert(key)) == NULL) {
		snprintf(err, errlen, "cannot build the CA certificate");
		EVP_PKEY_free(key);
		return NULL;
	}
	pending = ca_pending_path(cert_path);
	key_pending = ca_pending_path(key_path);
	(void)unlink(pending);
	(void)unlink(key_pending);
	if (!ca_write_pem(pending, 0644, NULL, cert, err, errlen)) {
		free(pending);
		free(key_pending);
		goto fail;
	}
	if (!ca_write_pem(key_pending, 0600, key, NULL, err, errlen) ||
	    !ca_name_pending(key_pending, key_path, err, errlen)) {
		/* (A key that was there is not this call's to remove.) */
		unlink(key_pending);
		unlink(pending);
		free(pending);
		free(key_pending);
		goto fail;
	}
	free(key_pending);
	if (!ca_name_pending(pending, cert_path, err, errlen)) {
		/* Leaving the key alone would block the next start. */
		unlink(key_path);
		unlink(pending);
		free(pending);
		goto fail;
	}
	free(pending);
	if ((ca = ca_new(cert, key, cert_path, key_path, err, errlen)) ==
	    NULL)
		return NULL;
	ca_record_sources(ca, cert_path, key_path);
	return ca;

fail:
	X509_free(cert);
	EVP_PKEY_free(key);
	return NULL;
}

/*
 * Which of the two files exist: 2 both, 0 none, 1 the key and the pending
 * certificate of an interrupted ca_create(), -1 an error (only one, or one
 * cannot be looked at), with err filled.
 */
static int
ca_files(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	int	 have_cert, have_key, have_pending;
	char	*pending;

	if ((have_cert = ca_exists("ca_cert", cert_path, err, errlen)) == -1 ||
	    (have_key = ca_exists("ca_key", key_path, err, errlen)) == -1)
		return -1;
	if (have_cert && !have_key) {
		snprintf(err, errlen, "ca_key %s missing but ca_cert %s "
		    "exists: refusing to create a new CA over an existing one",
		    key_path, cert_path);
		return -1;
	}
	if (have_key && !have_cert) {
		pending = ca_pending_path(cert_path);
		have_pending = ca_exists("ca_cert", pending, err, errlen);
		free(pending);
		if (have_pending == 1)
			return 1;
		if (have_pending == -1)
			return -1;
		snprintf(err, errlen, "ca_cert %s missing but ca_key %s "
		    "exists: refusing to create a new CA over an existing one",
		    cert_path, key_path);
		return -1;
	}
	/* One file may hold both; a new CA is made as two. */
	if (!have_cert && regfile_same(cert_path, key_path)) {
		snprintf(err, errlen, "ca_cert and ca_key name one file, %s, "
		    "which does not exist: a new CA is made as two files, so "
		    "name two (or put a CA's certificate and key in that one)",
		    cert_path);
		return -1;
	}
	return have_cert ? 2 : 0;
}

/*
 * The CA of the key and the pending certificate a stopped ca_create()
 * left: when they make a valid CA (checked as any), the certificate gets
 * its name.
 */
static struct ca *
ca_finish(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	struct ca	*ca;
	char		*pending;

	pending = ca_pending_path(cert_path);
	if ((ca = ca_load(pending, key_path, err, errlen)) != NULL &&
	    !ca_name_pending(pending, cert_path, err, errlen)) {
		ca_unref(ca);
		ca = NULL;
	}
	free(pending);
	if (ca != NULL)
		ca_record_sources(ca, cert_path, key_path);
	return ca;
}

/*
 * Whether no other user may swap the CA's files, or remove them for a new
 * CA to be made, through their directories: a CA that clients trust is
 * as good as its key.
 */
static bool
ca_dirs_own(const char *cert_path, const char *key_path, char *err,
    size_t errlen)
{
	return regfile_dirs_own("ca_cert", cert_path, err, errlen) &&
	    regfile_dirs_own("ca_key", key_path, err, errlen);
}

/*
 * Lock the directory of key_path (made if missing) against another
 * pinproxy creating or finishing the same CA: the descriptor to close;
 * -2 when the directory cannot be locked at all (not readable, a file
 * system without flock: creation goes on unlocked, as it could before);
 * -1 with err filled when another process holds the lock for longer than
 * CA_LOCK_WAIT_MS.
 */
static int
ca_lock(const char *key_path, char *err, size_t errlen)
{
	struct timespec	 pause = { 0, 5 * 1000000L };
	uint64_t	 until = monotime_us() + CA_LOCK_WAIT_MS * 1000;
	char		*dir;
	int		 fd;

	if (!ca_make_parent(key_path, err, errlen))
		return -1;
	dir = regfile_dirname(key_path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd != -1 && flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			close(fd);
			fd = -1;
			break;
		}
		if (monotime_us() >= until) {
			snprintf(err, errlen, "cannot lock directory %s to "
			    "create the CA: another process holds it", dir);
			close(fd);
			free(dir);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	free(dir);
	return fd == -1 ? -2 : fd;
}

struct ca *
ca_load_or_create(const char *cert_path, const char *key_path,
    bool *created, char *err, size_t errlen)
{
	struct ca	*ca = NULL;
	int		 lock;

	*created = false;
	if (!ca_dirs_own(cert_path, key_path, err, errlen))
		return NULL;
	/*
	 * Both files: load them. Anything else is judged again under the
	 * lock, as the files are then: another start creating the CA may be
	 * between its steps (the key named, the certificate not yet).
	 */
	if (ca_files(cert_path, key_path, err, errlen) == 2)
		return ca_load(cert_path, key_path, err, errlen);
	if ((lock = ca_lock(key_path, err, errlen)) == -1)
		return NULL;
	switch (ca_files(cert_path, key_path, err, errlen)) {
	case 2:
		/* Created meanwhile: loading needs no lock. */
		if (lock >= 0)
			close(lock);
		return ca_load(cert_path, key_path, err, errlen);
	case 1:
		ca = ca_finish(cert_path, key_path, err, errlen);
		*created = ca != NULL;
		break;
	case 0:
		ca = ca_create(cert_path, key_path, err, errlen);
		*created = ca != NULL;
		break;
	}
	if (lock >= 0)
		close(lock);
	return ca;
}

bool
ca_check(const char *cert_path, const char *key_path, char *warn,
    size_t warnlen, char *err, size_t errlen)
{
	struct ca	*ca;
	char		*pending;
	int		 have;

	warn[0] = '\0';
	if (!ca_dirs_own(cert_path, key_path, err, errlen))
		return false;
	/* A creation between its steps: a second look sees it done. */
	if ((have = ca_files(cert_path, key_path, err, errlen)) == -1)
		have = ca_files(cert_path, key_path, err, errlen);
	switch (have) {
	case 2:
	case 1:
		/* The start finishes an interrupted creation: check it. */
		pending = have == 1 ? ca_pending_path(cert_path) : NULL;
		ca = ca_load(pending != NULL ? pending : cert_path, key_path,
		    err, errlen);
		free(pending);
		if (ca == NULL)
			return false;
		snprintf(warn, warnlen, "%s", ca->warning);
		ca_unref(ca);
		return true;
	case 0:
		return ca_creatable("ca_key", key_path, err, errlen) &&
		    ca_creatable("ca_cert", cert_path, err, errlen);
	default:
		return false;
	}
}

struct ca *
ca_ref(struct ca *ca)
{
	ca->refs++;
	return ca;
}

void
ca_unref(struct ca *ca)
{
	if (ca == NULL || --ca->refs > 0)
		return;
	/* EVP_PKEY_free wipes the private key material. */
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
	free(ca->cert_src.path);
	free(ca->key_src.path);
	free(ca);
}

bool
ca_unchanged(const struct ca *ca, const char *cert_path, const char *key_path)
{
	return ca_source_same(&ca->cert_src, cert_path) &&
	    ca_source_same(&ca->key_src, key_path);
}

void
ca_discard(const struct ca *ca)
{
	if (ca_source_same(&ca->key_src, ca->key_src.path))
		(void)unlink(ca->key_src.path);
	if (ca_source_same(&ca->cert_src, ca->cert_src.path))
		(void)unlink(ca->cert_src.path);
}

X509 *
ca_cert(const struct ca *ca)
{
	return ca->cert;
}

time_t
ca_not_after(const struct ca *ca)
{
	return ca->not_after;
}

const char *
ca_warning(const struct ca *ca)
{
	return ca->warning[0] != '\0' ? ca->warning : NULL;
}

const unsigned char *
ca_id(const struct ca *ca)
{
	return ca->id;
}

bool
ca_sign(struct ca *ca, X509 *cert)
{
	if (X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) != 1)
		return false;
	return X509_sign(cert, ca->key, ca->md) > 0;
}
