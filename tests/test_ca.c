/*
 * Tests of the interception CA: creation on first start, reuse on the next,
 * and the refusals (one file missing, a foreign key, a certificate that is
 * no CA or has expired), each in a scratch directory under /tmp.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "ca.h"

#define DAY	(24 * 60 * 60)

struct paths {
	char	 dir[64];
	char	 cert[128];
	char	 key[128];
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
setup_dir(void **state)
{
	struct paths	*p;

	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	strcpy(p->dir, "/tmp/pinproxy-test-ca.XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(p->cert, sizeof(p->cert), "%s/state/ca.pem", p->dir);
	snprintf(p->key, sizeof(p->key), "%s/state/ca.key", p->dir);
	*state = p;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct paths	*p = *state;

	nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(p);
	return 0;
}

/* Create the directory the CA files go into, as an earlier start would. */
static void
make_state_dir(const struct paths *p)
{
	char	 dir[128];

	snprintf(dir, sizeof(dir), "%s/state", p->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
}

static X509 *
read_cert(const char *path)
{
	FILE	*fp;
	X509	*cert;

	fp = fopen(path, "r");
	assert_non_null(fp);
	cert = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(cert);
	return cert;
}

static void
write_file(const char *path, const char *text)
{
	FILE	*fp;

	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void
write_key_and_cert(const char *key_path, EVP_PKEY *key, const char *cert_path,
    X509 *cert)
{
	FILE	*fp;

	fp = fopen(key_path, "w");
	assert_non_null(fp);
	/* As an operator is told to: only the daemon's user reads the key. */
	assert_int_equal(fchmod(fileno(fp), 0600), 0);
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(fp);
	fp = fopen(cert_path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	fclose(fp);
}

/*
 * A self-signed certificate for key, valid from now+from to now+until
 * seconds, with the given basicConstraints (or none when NULL), signed
 * with md.
 */
static X509 *
self_signed_md(EVP_PKEY *key, const char *constraints, long from, long until,
    const EVP_MD *md)
{
	X509		*cert;
	X509_NAME	*name;
	X509_EXTENSION	*ext;
	X509V3_CTX	 ctx;

	cert = X509_new();
	assert_non_null(cert);
	assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_gmtime_adj(X509_getm_notBefore(cert), from);
	X509_gmtime_adj(X509_getm_notAfter(cert), until);
	X509_set_pubkey(cert, key);
	if (constraints != NULL) {
		X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
		    constraints);
		assert_non_null(ext);
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
	assert_true(X509_sign(cert, key, md) > 0);
	return cert;
}

/* self_signed_md() with SHA-256. */
static X509 *
self_signed(EVP_PKEY *key, const char *constraints, long from, long until)
{
	return self_signed_md(key, constraints, from, until, EVP_sha256());
}

static struct ca *
create_ok(const struct paths *p)
{
	struct ca	*ca;
	char		 err[512] = "";
	bool		 created = false;

	ca = ca_load_or_create(p->cert, p->key, &created, err, sizeof(err));
	if (ca == NULL)
		fail_msg("ca_load_or_create: %s", err);
	assert_true(created);
	return ca;
}

/* Load an existing CA, which must succeed without creating anything. */
static struct ca *
load_ok(const struct paths *p)
{
	struct ca	*ca;
	char		 err[512] = "";
	bool		 created = true;

	ca = ca_load_or_create(p->cert, p->key, &created, err, sizeof(err));
	if (ca == NULL)
		fail_msg("ca_load_or_create: %s", err);
	assert_false(created);
	return ca;
}

/* Expect ca_load_or_create() to fail with a message containing want. */
static void
assert_refused(const struct paths *p, const char *want)
{
	char	 err[512] = "", warn[512];
	bool	 created = true;

	assert_null(ca_load_or_create(p->cert, p->key, &created, err,
	    sizeof(err)));
	assert_false(created);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	assert_false(ca_check(p->cert, p->key, warn, sizeof(warn), err,
	    sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("ca_check error \"%s\" lacks \"%s\"", err, want);
}

static bool
ext_critical(X509 *cert, int nid)
{
	int	 i;

	i = X509_get_ext_by_NID(cert, nid, -1);
	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(cert, i)) == 1;
}

static void
test_ca_creates_key_and_cert_on_first_start(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	struct stat	 st;
	X509		*cert;
	EVP_PKEY	*pub;
	BIGNUM		*serial;
	char		 cn[256];
	char		 dir[128];
	time_t		 now = time(NULL);

	ca = create_ok(p);
	assert_int_equal(stat(p->key, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_null(ca_warning(ca));
	assert_int_equal(stat(p->cert, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	snprintf(dir, sizeof(dir), "%s/state", p->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	cert = read_cert(p->cert);
	assert_int_equal(X509_cmp(cert, ca_cert(ca)), 0);
	assert_true((X509_get_extension_flags(cert) & EXFLAG_CA) != 0);
	assert_int_equal(X509_get_pathlen(cert), 0);
	assert_true(ext_critical(cert, NID_basic_constraints));
	assert_int_equal(X509_get_key_usage(cert),
	    KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_true(ext_critical(cert, NID_key_usage));
	assert_non_null(X509_get0_subject_key_id(cert));
	assert_int_equal(X509_self_signed(cert, 1), 1);
	assert_int_equal(X509_get_signature_nid(cert),
	    NID_ecdsa_with_SHA256);

	pub = X509_get0_pubkey(cert);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);

	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
	    cn, sizeof(cn));
	assert_true(strncmp(cn, "pinproxy interception CA ", 25) == 0);
	assert_true(strlen(cn) > 25);
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_organizationName, cn, sizeof(cn));
	assert_string_equal(cn, "pinproxy");

	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	assert_non_null(serial);
	assert_false(BN_is_negative(serial));
	assert_true(BN_num_bits(serial) > 120);
	BN_free(serial);

	assert_true(ca_not_after(ca) > now + 9 * 365 * (time_t)DAY);
	assert_true(ca_not_after(ca) < now + 11 * 365 * (time_t)DAY);
	X509_free(cert);
	ca_unref(ca);
}

static void
test_ca_reuses_the_existing_ca_on_the_next_start(void **state)
{
	struct paths	*p = *state;
	struct ca	*first, *second;
	unsigned char	 id[CA_ID_LEN];
	char		 err[512] = "", warn[512];
	bool		 created = true;

	first = create_ok(p);
	memcpy(id, ca_id(first), CA_ID_LEN);
	ca_unref(first);

	second = ca_load_or_create(p->cert, p->key, &created, err,
	    sizeof(err));
	if (second == NULL)
		fail_msg("second load: %s", err);
	assert_false(created);
	assert_memory_equal(ca_id(second), id, CA_ID_LEN);
	assert_true(ca_check(p->cert, p->key, warn, sizeof(warn), err,
	    sizeof(err)));
	assert_string_equal(warn, "");
	ca_unref(second);
}

/* Give path a modification time of when, as a rewrite would. */
static void
set_mtime(const char *path, time_t when)
{
	struct timespec	 ts[2] = { { when, 0 }, { when, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_ca_is_unchanged_until_its_files_change(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	char		 other[160];

	ca = create_ok(p);
	assert_true(ca_unchanged(ca, p->cert, p->key));
	snprintf(other, sizeof(other), "%s/other.pem", p->dir);
	assert_false(ca_unchanged(ca, other, p->key));
	assert_false(ca_unchanged(ca, p->cert, other));
	ca_unref(ca);

	ca = load_ok(p);
	assert_true(ca_unchanged(ca, p->cert, p->key));
	set_mtime(p->cert, time(NULL) - DAY);
	assert_false(ca_unchanged(ca, p->cert, p->key));
	ca_unref(ca);

	ca = load_ok(p);
	assert_true(ca_unchanged(ca, p->cert, p->key));
	/* A chmod changes no content, but the key must be checked again. */
	assert_int_equal(chmod(p->key, 0400), 0);
	assert_false(ca_unchanged(ca, p->cert, p->key));
	ca_unref(ca);
}

static void
test_ca_two_installs_differ(void **state)
{
	struct paths	*p = *state;
	struct ca	*one, *two;
	char		 cert2[160], key2[160], err[512] = "";
	bool		 created;

	one = create_ok(p);
	snprintf(cert2, sizeof(cert2), "%s/other.pem", p->dir);
	snprintf(key2, sizeof(key2), "%s/other.key", p->dir);
	two = ca_load_or_create(cert2, key2, &created, err, sizeof(err));
	assert_non_null(two);
	assert_true(created);
	assert_int_not_equal(X509_NAME_cmp(
	    X509_get_subject_name(ca_cert(one)),
	    X509_get_subject_name(ca_cert(two))), 0);
	assert_memory_not_equal(ca_id(one), ca_id(two), CA_ID_LEN);
	ca_unref(one);
	ca_unref(two);
}

static void
test_ca_refuses_to_create_when_only_the_cert_exists(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;

	ca_unref(create_ok(p));
	assert_int_equal(unlink(p->key), 0);
	assert_refused(p, "ca_key");
	assert_refused(p, "refusing to create a new CA over an existing one");
	assert_int_equal(stat(p->key, &st), -1);
}

static void
test_ca_refuses_to_create_when_only_the_key_exists(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;

	ca_unref(create_ok(p));
	assert_int_equal(unlink(p->cert), 0);
	assert_refused(p, "refusing to create a new CA over an existing one");
	assert_int_equal(stat(p->cert, &st), -1);
}

/*
 * A stop between the key and the certificate's name leaves the key and
 * ca_cert.new: the next start checks them as a CA and finishes, with the
 * same CA.
 */
static void
test_ca_finishes_an_interrupted_creation(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	struct stat	 st;
	unsigned char	 id[CA_ID_LEN];
	char		 pending[160], warn[512], err[512] = "";

	ca = create_ok(p);
	memcpy(id, ca_id(ca), CA_ID_LEN);
	ca_unref(ca);
	snprintf(pending, sizeof(pending), "%s.new", p->cert);
	assert_int_equal(rename(p->cert, pending), 0);
	if (!ca_check(p->cert, p->key, warn, sizeof(warn), err, sizeof(err)))
		fail_msg("ca_check: %s", err);
	/* Counted as a creation: event=ca_created says it was finished. */
	ca = create_ok(p);
	assert_memory_equal(ca_id(ca), id, CA_ID_LEN);
	ca_unref(ca);
	assert_int_equal(stat(p->cert, &st), 0);
	assert_int_equal(stat(pending, &st), -1);
	ca_unref(load_ok(p));
}

/* A ca_cert.new of another key finishes nothing, and stays. */
static void
test_ca_refuses_a_pending_cert_of_another_key(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;
	char		 pending[160], cert2[160], key2[160], err[512] = "";
	bool		 created;

	ca_unref(create_ok(p));
	snprintf(cert2, sizeof(cert2), "%s/other.pem", p->dir);
	snprintf(key2, sizeof(key2), "%s/other.key", p->dir);
	ca_unref(ca_load_or_create(cert2, key2, &created, err, sizeof(err)));
	snprintf(pending, sizeof(pending), "%s.new", p->cert);
	assert_int_equal(rename(cert2, pending), 0);
	assert_int_equal(unlink(p->cert), 0);
	assert_refused(p, "does not match");
	assert_int_equal(stat(p->cert, &st), -1);
	assert_int_equal(stat(pending, &st), 0);
}

/* A ca_cert.new without a key (a stop before the key) is written over. */
static void
test_ca_creates_over_a_stale_pending_cert(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;
	char		 pending[160];

	make_state_dir(p);
	snprintf(pending, sizeof(pending), "%s.new", p->cert);
	write_file(pending, "left by a stop\n");
	ca_unref(create_ok(p));
	assert_int_equal(stat(pending, &st), -1);
	ca_unref(load_ok(p));
}

/*
 * A key cut short by a stop while it was written stays under its .new
 * name, never the key's: the next start creates a CA over it.
 */
static void
test_ca_creates_over_a_stale_pending_key(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;
	char		 pending[160], key_pending[160];
	int		 fd;

	make_state_dir(p);
	snprintf(pending, sizeof(pending), "%s.new", p->cert);
	snprintf(key_pending, sizeof(key_pending), "%s.new", p->key);
	write_file(pending, "left by a stop\n");
	fd = open(key_pending, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	ca_unref(create_ok(p));
	assert_int_equal(stat(pending, &st), -1);
	assert_int_equal(stat(key_pending, &st), -1);
	assert_int_equal(stat(p->key, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	ca_unref(load_ok(p));
}

/*
 * -t with neither file: the start would create them, and makes only the
 * last directory of each path; ca_check() says when that cannot work.
 */
static void
test_ca_check_finds_a_directory_the_start_cannot_make(void **state)
{
	struct paths	*p = *state;
	char		 cert[160], key[160], warn[512], err[512] = "";

	/* p's paths: their directory is missing, its parent is there. */
	if (!ca_check(p->cert, p->key, warn, sizeof(warn), err, sizeof(err)))
		fail_msg("ca_check: %s", err);
	snprintf(cert, sizeof(cert), "%s/a/b/ca.pem", p->dir);
	snprintf(key, sizeof(key), "%s/a/b/ca.key", p->dir);
	assert_false(ca_check(cert, key, warn, sizeof(warn), err,
	    sizeof(err)));
	assert_non_null(strstr(err, "creates only the last directory"));
}

/*
 * Starts that create the same CA at once: one creates it, the others
 * wait for it and load it; none fails, none removes another's file.
 */
static void
test_ca_concurrent_creations_make_one_ca(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	unsigned char	 id[CA_ID_LEN], got[CA_ID_LEN];
	pid_t		 pid[8];
	int		 go[2], out[2], i, status;
	char		 c, err[512];
	bool		 created;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(out), 0);
	for (i = 0; i < 8; i++) {
		assert_true((pid[i] = fork()) != -1);
		if (pid[i] != 0)
			continue;
		/* A child: wait for the start, create, report the CA. */
		close(go[1]);
		if (read(go[0], &c, 1) != 0)
			_exit(2);
		ca = ca_load_or_create(p->cert, p->key, &created, err,
		    sizeof(err));
		if (ca == NULL) {
			fprintf(stderr, "child: %s\n", err);
			_exit(1);
		}
		if (write(out[1], ca_id(ca), CA_ID_LEN) != CA_ID_LEN)
			_exit(3);
		_exit(0);
	}
	close(go[0]);
	close(out[1]);
	/* Closing the pipe lets all eight go at once. */
	close(go[1]);
	for (i = 0; i < 8; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	ca = load_ok(p);
	memcpy(id, ca_id(ca), CA_ID_LEN);
	ca_unref(ca);
	for (i = 0; i < 8; i++) {
		assert_int_equal(read(out[0], got, CA_ID_LEN), CA_ID_LEN);
		assert_memory_equal(got, id, CA_ID_LEN);
	}
	close(out[0]);
}

static void
test_ca_refuses_a_key_that_does_not_match_the_cert(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*other;
	X509		*cert;

	ca_unref(create_ok(p));
	other = EVP_EC_gen("P-256");
	assert_non_null(other);
	cert = read_cert(p->cert);
	assert_int_equal(unlink(p->key), 0);
	assert_int_equal(unlink(p->cert), 0);
	write_key_and_cert(p->key, other, p->cert, cert);
	assert_refused(p, "does not match");
	X509_free(cert);
	EVP_PKEY_free(other);
}

static void
test_ca_refuses_a_cert_that_is_not_a_ca(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, "critical,CA:FALSE", -DAY, 30 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "not a CA certificate");
	X509_free(cert);

	cert = self_signed(key, NULL, -DAY, 30 * DAY);
	assert_int_equal(unlink(p->cert), 0);
	assert_int_equal(unlink(p->key), 0);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "not a CA certificate");
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_ca_refuses_an_expired_ca(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, "critical,CA:TRUE", -30 * DAY, -DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "expired on");
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* A CA not valid yet: clients would refuse every leaf it issues. */
static void
test_ca_refuses_a_ca_not_valid_yet(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, "critical,CA:TRUE", DAY, 30 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "is not valid yet");
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* A self-signed CA whose signature was broken (or the cert swapped). */
static void
test_ca_refuses_a_self_signed_ca_whose_signature_fails(void **state)
{
	struct paths		*p = *state;
	EVP_PKEY		*key;
	X509			*cert;
	const ASN1_BIT_STRING	*sig;
	const X509_ALGOR	*alg;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 30 * DAY);
	X509_get0_signature(&sig, &alg, cert);
	/* The last byte of the DER signature: one of s's. */
	((ASN1_BIT_STRING *)sig)->data[sig->length - 1] ^= 0x01;
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "signature does not verify");
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_ca_refuses_files_that_hold_no_pem(void **state)
{
	struct paths	*p = *state;
	char		 saved[4096];
	FILE		*fp;
	size_t		 n;

	ca_unref(create_ok(p));
	fp = fopen(p->key, "r");
	assert_non_null(fp);
	n = fread(saved, 1, sizeof(saved) - 1, fp);
	saved[n] = '\0';
	fclose(fp);

	write_file(p->key, "not a key\n");
	assert_refused(p, "no PEM private key");
	write_file(p->key, saved);
	write_file(p->cert, "not a certificate\n");
	assert_refused(p, "no PEM certificate");
}

static void
test_ca_reports_a_directory_it_cannot_create(void **state)
{
	struct paths	*p = *state;
	char		 err[512] = "";
	bool		 created = true;

	snprintf(p->cert, sizeof(p->cert), "%s/a/b/ca.pem", p->dir);
	snprintf(p->key, sizeof(p->key), "%s/a/b/ca.key", p->dir);
	assert_null(ca_load_or_create(p->cert, p->key, &created, err,
	    sizeof(err)));
	assert_false(created);
	assert_non_null(strstr(err, "cannot create directory"));
}

static void
test_ca_check_does_not_create_missing_files(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;
	char		 err[512] = "", warn[512];

	assert_true(ca_check(p->cert, p->key, warn, sizeof(warn), err,
	    sizeof(err)));
	assert_string_equal(warn, "");
	assert_int_equal(stat(p->cert, &st), -1);
	assert_int_equal(stat(p->key, &st), -1);
}

static void
test_ca_discard_removes_only_the_files_it_made(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	struct stat	 st;
	FILE		*fp;

	ca = create_ok(p);
	ca_discard(ca);
	assert_int_equal(stat(p->cert, &st), -1);
	assert_int_equal(stat(p->key, &st), -1);
	ca_unref(ca);
	/* A certificate written over since is someone else's: it stays. */
	ca = create_ok(p);
	assert_non_null(fp = fopen(p->cert, "a"));
	fputs("\n", fp);
	fclose(fp);
	ca_discard(ca);
	assert_int_equal(stat(p->cert, &st), 0);
	assert_int_equal(stat(p->key, &st), -1);
	ca_unref(ca);
}

static void
test_ca_signs_certificates_as_their_issuer(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;

	ca = create_ok(p);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, NULL, 0, DAY);
	assert_true(ca_set_random_serial(cert));
	assert_true(ca_sign(ca, cert));
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert),
	    X509_get_subject_name(ca_cert(ca))), 0);
	assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca_cert(ca))), 1);
	assert_int_equal(X509_verify(cert, key), 0);
	assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
	X509_free(cert);
	EVP_PKEY_free(key);
	ca_unref(ca);
}

static void
test_ca_stays_alive_while_a_reference_is_held(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca, *ref;

	ca = create_ok(p);
	ref = ca_ref(ca);
	assert_ptr_equal(ref, ca);
	ca_unref(ca);
	assert_non_null(X509_get_subject_name(ca_cert(ref)));
	ca_unref(ref);
	ca_unref(NULL);
}

/* Write a fresh EC CA (valid for a year) with its key at mode 0600. */
static void
write_good_ca(const struct paths *p)
{
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 365 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_ca_refuses_a_key_that_group_or_others_can_access(void **state)
{
	struct paths	*p = *state;
	static const mode_t modes[] = { 0644, 0640, 0604, 0620, 0602, 0610 };
	char		 want[64];
	size_t		 i;

	write_good_ca(p);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(p->key, modes[i]), 0);
		snprintf(want, sizeof(want), "has mode %04o", modes[i]);
		assert_refused(p, want);
		assert_refused(p, p->key);
		assert_refused(p, "chmod 600");
	}
	assert_int_equal(chmod(p->key, 0400), 0);
	ca_unref(load_ok(p));
}

static void
test_ca_refuses_a_key_owned_by_another_user(void **state)
{
	struct paths	*p = *state;

	if (geteuid() != 0)
		skip();
	write_good_ca(p);
	assert_int_equal(chown(p->key, 65534, 65534), 0);
	assert_refused(p, "is owned by uid 65534, not by the user pinproxy "
	    "runs as (uid 0)");
	assert_int_equal(chown(p->key, 0, 0), 0);
	ca_unref(load_ok(p));
}

static void
test_ca_refuses_symbolic_links_and_other_files(void **state)
{
	struct paths	*p = *state;
	char		 real[160];

	write_good_ca(p);
	snprintf(real, sizeof(real), "%s/real.key", p->dir);
	assert_int_equal(rename(p->key, real), 0);
	assert_int_equal(symlink(real, p->key), 0);
	assert_refused(p, "ca_key");
	assert_refused(p, "is a symbolic link");
	assert_int_equal(unlink(p->key), 0);
	assert_int_equal(rename(real, p->key), 0);

	snprintf(real, sizeof(real), "%s/real.pem", p->dir);
	assert_int_equal(rename(p->cert, real), 0);
	assert_int_equal(symlink(real, p->cert), 0);
	assert_refused(p, "ca_cert");
	assert_refused(p, "is a symbolic link");
	assert_int_equal(unlink(p->cert), 0);
	/* A dangling link is no missing file: nothing is created over it. */
	assert_int_equal(symlink("nowhere", p->cert), 0);
	assert_refused(p, "is a symbolic link");
	assert_int_equal(unlink(p->cert), 0);

	assert_int_equal(mkdir(p->cert, 0700), 0);
	assert_refused(p, "is a directory");
	assert_int_equal(rmdir(p->cert), 0);
	assert_int_equal(rename(real, p->cert), 0);
	ca_unref(load_ok(p));
}

static void
test_ca_refuses_an_rsa_key_under_2048_bits(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_RSA_gen(1024);
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 365 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "is an RSA key of 1024 bits: at least 2048");
	X509_free(cert);
	EVP_PKEY_free(key);

	key = EVP_RSA_gen(2048);
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 365 * DAY);
	assert_int_equal(unlink(p->cert), 0);
	assert_int_equal(unlink(p->key), 0);
	write_key_and_cert(p->key, key, p->cert, cert);
	ca_unref(load_ok(p));
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_ca_refuses_a_sha1_signed_certificate(void **state)
{
	struct paths	*p = *state;
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = self_signed_md(key, "critical,CA:TRUE", -DAY, 365 * DAY,
	    EVP_sha1());
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "is signed with SHA1: too weak");
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_ca_warns_about_a_ca_valid_over_ten_years(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;
	char		 err[512] = "", warn[512] = "";

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY,
	    30L * 365 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	ca = load_ok(p);
	assert_non_null(ca_warning(ca));
	assert_non_null(strstr(ca_warning(ca), "more than 10 years"));
	assert_non_null(strstr(ca_warning(ca), p->cert));
	ca_unref(ca);
	assert_true(ca_check(p->cert, p->key, warn, sizeof(warn), err,
	    sizeof(err)));
	assert_non_null(strstr(warn, "is valid for 10951 days"));
	X509_free(cert);
	EVP_PKEY_free(key);
}

/*
 * A directory any user may write to (not sticky): another user could swap
 * the certificate, or remove both files for a new CA to be made. Refused,
 * before a CA is made there too.
 */
static void
test_ca_refuses_a_directory_every_user_may_write(void **state)
{
	struct paths	*p = *state;
	struct stat	 st;
	char		 dir[128];
	EVP_PKEY	*key;
	X509		*cert;

	make_state_dir(p);
	snprintf(dir, sizeof(dir), "%s/state", p->dir);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_refused(p, "writable by every user and not sticky");
	assert_int_equal(stat(p->key, &st), -1);
	key = EVP_EC_gen("P-256");
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 30 * DAY);
	write_key_and_cert(p->key, key, p->cert, cert);
	assert_refused(p, "writable by every user and not sticky");
	/* Sticky, as /tmp: no user may rename or remove another's file. */
	assert_int_equal(chmod(dir, 01777), 0);
	ca_unref(load_ok(p));
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* A CA that expires within 30 days: warned about at load and by -t. */
static void
test_ca_warns_about_a_ca_that_expires_soon(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;
	char		 err[512] = "", warn[512] = "";

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 10 * DAY + 3600);
	write_key_and_cert(p->key, key, p->cert, cert);
	ca = load_ok(p);
	assert_non_null(ca_warning(ca));
	assert_non_null(strstr(ca_warning(ca), "expires in 10 days"));
	ca_unref(ca);
	assert_true(ca_check(p->cert, p->key, warn, sizeof(warn), err,
	    sizeof(err)));
	assert_non_null(strstr(warn, "expires in 10 days"));
	X509_free(cert);
	EVP_PKEY_free(key);
}

/*
 * The daily check's words for a CA loaded earlier: none while its end is
 * 30 days away or more, the days left within them, and once it has
 * passed, the date it expired on.
 */
static void
test_ca_expiry_warning_follows_the_clock(void **state)
{
	struct paths	*p = *state;
	struct ca	*ca;
	EVP_PKEY	*key;
	X509		*cert;
	char		 text[512];
	time_t		 now = time(NULL);

	make_state_dir(p);
	key = EVP_EC_gen("P-256");
	assert_non_null(key);
	cert = self_signed(key, "critical,CA:TRUE", -DAY, 10 * DAY + 3600);
	write_key_and_cert(p->key, key, p->cert, cert);
	ca = load_ok(p);
	assert_false(ca_expiry_warning(ca, "ca.pem", now - 21 * DAY, text,
	    sizeof(text)));
	assert_true(ca_expiry_warning(ca, "ca.pem", now - 19 * DAY, text,
	    sizeof(text)));
	assert_non_null(strstr(text, "ca_cert ca.pem expires in 29 days"));
	assert_true(ca_expiry_warning(ca, "ca.pem", now + 10 * DAY, text,
	    sizeof(text)));
	assert_non_null(strstr(text, "expires in 0 days"));
	assert_true(ca_expiry_warning(ca, "ca.pem", now + 11 * DAY, text,
	    sizeof(text)));
	assert_non_null(strstr(text, "ca_cert ca.pem expired on 20"));
	assert_non_null(strstr(text, " UTC: clients refuse every "));
	ca_unref(ca);
	X509_free(cert);
	EVP_PKEY_free(key);
}

#define DIR_TEST(f)	cmocka_unit_test_setup_teardown(f, setup_dir, \
			    teardown_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		DIR_TEST(test_ca_creates_key_and_cert_on_first_start),
		DIR_TEST(test_ca_reuses_the_existing_ca_on_the_next_start),
		DIR_TEST(test_ca_is_unchanged_until_its_files_change),
		DIR_TEST(test_ca_two_installs_differ),
		DIR_TEST(test_ca_refuses_to_create_when_only_the_cert_exists),
		DIR_TEST(test_ca_refuses_to_create_when_only_the_key_exists),
		DIR_TEST(test_ca_finishes_an_interrupted_creation),
		DIR_TEST(test_ca_refuses_a_pending_cert_of_another_key),
		DIR_TEST(test_ca_creates_over_a_stale_pending_cert),
		DIR_TEST(
		    test_ca_check_finds_a_directory_the_start_cannot_make),
		DIR_TEST(test_ca_concurrent_creations_make_one_ca),
		DIR_TEST(test_ca_refuses_a_key_that_does_not_match_the_cert),
		DIR_TEST(test_ca_refuses_a_cert_that_is_not_a_ca),
		DIR_TEST(test_ca_refuses_an_expired_ca),
		DIR_TEST(test_ca_refuses_a_directory_every_user_may_write),
		DIR_TEST(test_ca_warns_about_a_ca_that_expires_soon),
		DIR_TEST(test_ca_expiry_warning_follows_the_clock),
		DIR_TEST(test_ca_creates_over_a_stale_pending_key),
		DIR_TEST(test_ca_refuses_a_ca_not_valid_yet),
		DIR_TEST(test_ca_refuses_a_self_signed_ca_whose_signature_fails),
		DIR_TEST(test_ca_refuses_files_that_hold_no_pem),
		DIR_TEST(test_ca_reports_a_directory_it_cannot_create),
		DIR_TEST(test_ca_check_does_not_create_missing_files),
		DIR_TEST(test_ca_discard_removes_only_the_files_it_made),
		DIR_TEST(test_ca_signs_certificates_as_their_issuer),
		DIR_TEST(test_ca_stays_alive_while_a_reference_is_held),
		DIR_TEST(test_ca_refuses_a_key_that_group_or_others_can_access),
		DIR_TEST(test_ca_refuses_a_key_owned_by_another_user),
		DIR_TEST(test_ca_refuses_symbolic_links_and_other_files),
		DIR_TEST(test_ca_refuses_an_rsa_key_under_2048_bits),
		DIR_TEST(test_ca_refuses_a_sha1_signed_certificate),
		DIR_TEST(test_ca_warns_about_a_ca_valid_over_ten_years),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
