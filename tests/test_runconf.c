/*
 * Tests of configuration generations: a generation shares the CA of the
 * one before when its files are unchanged and loads its own otherwise,
 * always has leaves of its own, and a CA that does not load fails it; a
 * generation for upstreams only has neither CA nor leaves; a retired one
 * resumes and keeps no upstream TLS session.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf_parse.h"
#include "diag.h"
#include "keydecode.h"
#include "pincheck.h"
#include "runconf.h"
#include "testpki.h"
#include "trust.h"
#include "xmalloc.h"

struct fixture {
	char	 dir[64];
	char	 cert[128];
	char	 key[128];
	char	 cert2[128];
	char	 key2[128];
	char	*trust;		/* one root of the fixture's own */
};

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

/*
 * A trust file in dir with one root. Upstream trust is not what these
 * tests are about, and the system's store, parsed for every generation,
 * was most of their time.
 */
static char *
trust_file(const char *dir)
{
	EVP_PKEY	*key = testpki_key(TESTPKI_EC);
	X509		*root = testpki_root("Runconf Test Root", key);
	char		*path;

	path = testpki_write_cert(dir, "trust.pem", root);
	X509_free(root);
	EVP_PKEY_free(key);
	return path;
}

static int
setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/pinproxy-test-runconf.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->cert, sizeof(fx->cert), "%s/ca.pem", fx->dir);
	snprintf(fx->key, sizeof(fx->key), "%s/ca.key", fx->dir);
	snprintf(fx->cert2, sizeof(fx->cert2), "%s/ca2.pem", fx->dir);
	snprintf(fx->key2, sizeof(fx->key2), "%s/ca2.key", fx->dir);
	fx->trust = trust_file(fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(fx->trust);
	free(fx);
	return 0;
}

/* The default configuration with the CA files cert and key. */
static struct conf *
conf_with_ca(const struct fixture *fx, const char *cert, const char *key)
{
	struct conf	*conf = conf_new_default();

	free(conf->ca_cert);
	free(conf->ca_key);
	free(conf->trust);
	conf->ca_cert = xstrdup(cert);
	conf->ca_key = xstrdup(key);
	conf->trust = xstrdup(fx->trust);
	return conf;
}

/* Generation gen of conf after prev, which must build. */
static struct runconf *
build_ok(struct conf *conf, unsigned long gen, const struct runconf *prev)
{
	struct runconf	*rc;
	char		 err[512] = "";

	if ((rc = runconf_new(conf, gen, prev, err, sizeof(err))) == NULL)
		fail_msg("runconf_new: %s", err);
	return rc;
}

static void
test_runconf_shares_the_ca_of_unchanged_files(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct runconf	*one, *two;
	X509		*leaf;

	one = build_ok(conf, 1, NULL);
	two = build_ok(conf, 2, one);
	assert_ptr_equal(two->ca, one->ca);
	assert_ptr_not_equal(two->leaves, one->leaves);
	assert_int_equal(two->generation, 2);
	runconf_unref(one);
	/* The CA outlives the generation that loaded it. */
	leaf = leafcert_get(two->leaves, two->ca, "api.test");
	assert_non_null(leaf);
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(ca_cert(two->ca))),
	    1);
	X509_free(leaf);
	runconf_unref(two);
	conf_unref(conf);
}

/* The store of rc's upstream contexts without a CA file of their own. */
static X509_STORE *
base_store(struct runconf *rc)
{
	X509_STORE	*store;
	SSL		*ssl;

	ssl = tls_upstream_ssl(rc->tls, NULL, false, "api.test", 443, NULL, 0);
	assert_non_null(ssl);
	store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	SSL_free(ssl);
	return store;
}

/* The first trust anchor of rc's upstream contexts (not a reference). */
static X509 *
first_anchor(struct runconf *rc)
{
	STACK_OF(X509_OBJECT)	*objs;

	objs = X509_STORE_get0_objects(base_store(rc));
	assert_true(sk_X509_OBJECT_num(objs) > 0);
	return X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, 0));
}

/*
 * A reload whose trust file is unchanged shares the anchors parsed before
 * (a generation that long connections hold keeps no copy of its own); a
 * changed file is read again.
 */
static void
test_runconf_reads_an_unchanged_trust_file_once(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct runconf	*one, *two, *three;
	struct timespec	 times[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	one = build_ok(conf, 1, NULL);
	two = build_ok(conf, 2, one);
	assert_ptr_equal(first_anchor(two), first_anchor(one));
	assert_ptr_equal(base_store(two), base_store(one));
	/* Touched: it may hold other roots now. */
	assert_int_equal(utimensat(AT_FDCWD, fx->trust, times, 0), 0);
	three = build_ok(conf, 3, two);
	assert_ptr_not_equal(first_anchor(three), first_anchor(two));
	runconf_unref(one);
	runconf_unref(two);
	/* What it shared outlives the generations that read it. */
	assert_non_null(first_anchor(three));
	runconf_unref(three);
	conf_unref(conf);
}

/*
 * The system's store looks its directory up lazily and keeps what it
 * found: each generation gets a store of its own, so that a root removed
 * from the directory is not trusted after a reload.
 */
static void
test_runconf_gives_each_generation_its_own_system_store(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct runconf	*one, *two;

	free(conf->trust);
	conf->trust = xstrdup("system");
	one = build_ok(conf, 1, NULL);
	two = build_ok(conf, 2, one);
	assert_ptr_not_equal(base_store(two), base_store(one));
	runconf_unref(one);
	runconf_unref(two);
	conf_unref(conf);
}

/* Whether the store verifies a leaf for host issued by root. */
static bool
store_verifies(X509_STORE *store, X509 *root, EVP_PKEY *key, const char *host)
{
	X509		*leaf = testpki_leaf(host, key, root, key);
	STACK_OF(X509)	*served = testpki_stack(leaf, NULL), *chain;

	chain = testpki_verify(store, served, host, NULL, 0);
	testpki_stack_free(chain);
	testpki_stack_free(served);
	X509_free(leaf);
	return chain != NULL;
}

/* Write root to dir as HASH.n of its subject (in upper case: upper). */
static void
write_hashed(const char *dir, X509 *root, int n, bool upper)
{
	char	 name[32];

	if (upper)
		snprintf(name, sizeof(name), "%08lX.%d",
		    X509_subject_name_hash(root), n);
	else
		snprintf(name, sizeof(name), "%08lx.%d",
		    X509_subject_name_hash(root), n);
	free(testpki_write_cert(dir, name, root));
}

/*
 * A directory of hashed roots is read when the trust is loaded, not by a
 * verification later (a FIFO opened then stopped the event loop), and
 * found as OpenSSL's lookup finds them: HASH.0, HASH.1... up to the first
 * missing or unusable file (a FIFO, no certificate), lower-case hashes,
 * and only the certificates whose subject gives the hash.
 */
static void
test_runconf_reads_a_trust_directory_at_once(void **state)
{
	struct fixture	*fx = *state;
	EVP_PKEY	*key = testpki_key(TESTPKI_EC);
	X509		*good = testpki_root("Trust Dir Root", key);
	X509		*second = testpki_root("Trust Dir Second", key);
	X509		*misnamed = testpki_root("Trust Dir Misnamed", key);
	X509		*gap = testpki_root("Trust Dir Gap", key);
	X509		*upper = testpki_root("Trust Dir Upper", key);
	X509		*behind = testpki_root("Trust Dir Behind", key);
	X509_STORE	*store;
	char		 dir[192], path[256], err[512] = "";
	FILE		*fp;

	snprintf(dir, sizeof(dir), "%s/roots", fx->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	write_hashed(dir, good, 0, false);
	write_hashed(dir, second, 0, false);
	/* Its own hash's .1 is a FIFO: the search of that hash ends there. */
	snprintf(path, sizeof(path), "%s/%08lx.1", dir,
	    X509_subject_name_hash(second));
	assert_int_equal(mkfifo(path, 0600), 0);
	free(testpki_write_cert(dir, "00000000.0", misnamed));
	write_hashed(dir, gap, 1, false);
	write_hashed(dir, upper, 0, true);
	/* Behind a file of no certificate at .0: not reached. */
	snprintf(path, sizeof(path), "%s/%08lx.0", dir,
	    X509_subject_name_hash(behind));
	assert_non_null(fp = fopen(path, "w"));
	fputs("not a certificate\n", fp);
	fclose(fp);
	write_hashed(dir, behind, 1, false);
	snprintf(path, sizeof(path), "%s/README", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("not a certificate\n", fp);
	fclose(fp);

	store = trust_store_new(dir, NULL, err, sizeof(err));
	if (store == NULL)
		fail_msg("trust_store_new: %s", err);
	assert_true(store_verifies(store, good, key, "dir.example"));
	assert_true(store_verifies(store, second, key, "dir.example"));
	assert_false(store_verifies(store, misnamed, key, "dir.example"));
	assert_false(store_verifies(store, gap, key, "dir.example"));
	assert_false(store_verifies(store, upper, key, "dir.example"));
	assert_false(store_verifies(store, behind, key, "dir.example"));
	X509_STORE_free(store);

	X509_free(good);
	X509_free(second);
	X509_free(misnamed);
	X509_free(gap);
	X509_free(upper);
	X509_free(behind);
	EVP_PKEY_free(key);
}

static void
test_runconf_loads_the_ca_named_by_other_paths(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct conf	*other = conf_with_ca(fx, fx->cert2, fx->key2);
	struct runconf	*one, *two, *three;

	one = build_ok(conf, 1, NULL);
	two = build_ok(other, 2, one);
	assert_ptr_not_equal(two->ca, one->ca);
	assert_memory_not_equal(ca_id(two->ca), ca_id(one->ca), CA_ID_LEN);
	assert_int_equal(access(fx->key2, F_OK), 0);
	/* Back to the first files: read again, the same CA. */
	three = build_ok(conf, 3, two);
	assert_memory_equal(ca_id(three->ca), ca_id(one->ca), CA_ID_LEN);
	runconf_unref(one);
	runconf_unref(two);
	runconf_unref(three);
	conf_unref(conf);
	conf_unref(other);
}

static void
test_runconf_fails_when_the_ca_does_not_load(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct conf	*broken = conf_with_ca(fx, fx->cert, fx->key2);
	struct runconf	*one;
	char		 err[512] = "";

	one = build_ok(conf, 1, NULL);
	assert_null(runconf_new(broken, 2, one, err, sizeof(err)));
	assert_non_null(strstr(err, fx->key2));
	/* The generation in use is untouched. */
	assert_non_null(ca_cert(one->ca));
	runconf_unref(one);
	conf_unref(conf);
	conf_unref(broken);
}

/*
 * A CA that expired after it was loaded is read again by a reload, its
 * files unchanged, and refused: the reload fails and says so, where
 * sharing it would leave every forged leaf refused by clients unseen.
 */
static void
test_runconf_reads_an_unchanged_ca_again_once_it_expired(void **state)
{
	struct fixture		*fx = *state;
	struct testpki_spec	 spec = { .cn = "Expiring CA", .ca = true,
				    .not_after = 3 };
	EVP_PKEY		*key = testpki_key(TESTPKI_EC);
	X509			*cert = testpki_issue(&spec, key, NULL, NULL);
	struct conf		*conf;
	struct runconf		*one, *two;
	char			 err[512] = "";

	free(testpki_write_cert(fx->dir, "ca.pem", cert));
	free(testpki_write_key(fx->dir, "ca.key", key));
	conf = conf_with_ca(fx, fx->cert, fx->key);
	one = build_ok(conf, 1, NULL);
	two = build_ok(conf, 2, one);
	assert_ptr_equal(two->ca, one->ca);
	while (time(NULL) < ca_not_after(one->ca))
		usleep(100 * 1000);
	assert_null(runconf_new(conf, 3, two, err, sizeof(err)));
	assert_non_null(strstr(err, "expired on"));
	assert_non_null(strstr(err, fx->cert));
	runconf_unref(one);
	runconf_unref(two);
	conf_unref(conf);
	X509_free(cert);
	EVP_PKEY_free(key);
}

static void
test_runconf_retire_empties_only_the_leaves(void **state)
{
	struct fixture		*fx = *state;
	struct conf		*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct runconf		*rc;
	struct leafcert_stats	 st;
	X509			*leaf;

	rc = build_ok(conf, 1, NULL);
	X509_free(leafcert_get(rc->leaves, rc->ca, "api.test"));
	leafcert_cache_stats(rc->leaves, &st);
	assert_int_equal(st.entries, 1);
	runconf_retire(rc);
	leafcert_cache_stats(rc->leaves, &st);
	assert_int_equal(st.entries, 0);
	leaf = leafcert_get(rc->leaves, rc->ca, "api.test");
	assert_non_null(leaf);
	X509_free(leaf);
	runconf_unref(rc);
	conf_unref(conf);
}

/*
 * A server context for api.test with a chain c made here, whose root conf
 * now trusts alone.
 */
static SSL_CTX *
upstream_server(const struct fixture *fx, struct conf *conf,
    struct testpki_chain *c)
{
	SSL_CTX	*sctx;

	testpki_chain_make(c, "Upstream", "api.test");
	free(conf->trust);
	conf->trust = testpki_write_cert(fx->dir, "upstream-root.pem",
	    c->root);
	sctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(sctx);
	assert_int_equal(SSL_CTX_use_certificate(sctx, c->leaf), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(sctx, c->ca), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, c->leaf_key), 1);
	return sctx;
}

/*
 * One upstream connection of rc to api.test with a server of sctx over
 * memory: its verdict passed (unpinned, checked at checked) and the
 * server's tickets read, as a relay would. Whether it resumed a kept
 * session; *got (NULL: not wanted) is when its verdict was checked.
 */
/* How long after its check the chain of upstream_once_at() still lasts. */
static time_t	chain_valid_for = 30 * 24 * 60 * 60;

static bool
upstream_once_at(struct runconf *rc, SSL_CTX *sctx, time_t checked,
    time_t *got)
{
	struct pincheck_result	 res;
	unsigned char		 byte;
	SSL			*client, *server;
	unsigned long		 uses;
	bool			 resumed;

	client = tls_upstream_ssl(rc->tls, NULL, false, "api.test", 443,
	    NULL, 0);
	server = SSL_new(sctx);
	assert_non_null(client);
	assert_non_null(server);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	uses = keydecode_engine_uses();
	assert_true(testpki_handshake(client, server));
	assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
	resumed = tls_upstream_resumed(client, &res);
	/* Nothing but the certificates' parsing ran in the short way. */
	assert_int_equal(keydecode_engine_uses(), uses);
	/* The upstream context decodes the server's keys the short way. */
	assert_false(keydecode_is_open());
	if (!resumed && keydecode_available())
		assert_null(EVP_PKEY_get0_provider(X509_get0_pubkey(
		    SSL_get0_peer_certificate(client))));
	if (!resumed) {
		memset(&res, 0, sizeof(res));
		res.verdict = PIN_UNPINNED;
		res.matched_depth = -1;
		res.checked = checked;
		res.valid_until = checked + chain_valid_for;
		tls_upstream_passed(client, &res);
	}
	if (got != NULL)
		*got = res.checked;
	/* TLS 1.3 tickets arrive after the handshake; no data follows. */
	assert_true(SSL_read(client, &byte, 1) <= 0);
	SSL_free(client);
	SSL_free(server);
	return resumed;
}

/* The same, checked now. */
static bool
upstream_once(struct runconf *rc, SSL_CTX *sctx)
{
	return upstream_once_at(rc, sctx, time(NULL), NULL);
}

static void
test_runconf_retire_drops_and_keeps_no_upstream_sessions(void **state)
{
	struct fixture		*fx = *state;
	struct conf		*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct testpki_chain	 c;
	struct runconf		*rc;
	SSL_CTX			*sctx;

	sctx = upstream_server(fx, conf, &c);
	rc = build_ok(conf, 1, NULL);

	assert_false(upstream_once(rc, sctx));
	/* The current generation resumes what its full handshake kept. */
	assert_true(upstream_once(rc, sctx));
	runconf_retire(rc);
	/* A connection set up before the reload: nothing to resume... */
	assert_false(upstream_once(rc, sctx));
	/* ...and the full handshake's sessions were not kept either. */
	assert_false(upstream_once(rc, sctx));

	runconf_unref(rc);
	conf_unref(conf);
	SSL_CTX_free(sctx);
	testpki_chain_free(&c);
}

/*
 * Full handshakes (the server keeps no session) take the chain verified
 * by the one before; a retired generation verifies each in full.
 */
static void
test_runconf_verified_chains_serve_the_current_generation(void **state)
{
	struct fixture		*fx = *state;
	struct conf		*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct testpki_chain	 c;
	struct runconf		*rc;
	SSL_CTX			*sctx;
	unsigned long		 hits, misses;

	sctx = upstream_server(fx, conf, &c);
	SSL_CTX_set_options(sctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
	rc = build_ok(conf, 1, NULL);

	assert_false(upstream_once(rc, sctx));
	assert_false(upstream_once(rc, sctx));
	tls_upstream_verified_counts(rc->tls, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 1);
	runconf_retire(rc);
	assert_false(upstream_once(rc, sctx));
	assert_false(upstream_once(rc, sctx));
	tls_upstream_verified_counts(rc->tls, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 1);

	runconf_unref(rc);
	conf_unref(conf);
	SSL_CTX_free(sctx);
	testpki_chain_free(&c);
}

static void
test_runconf_for_upstreams_only_reads_and_creates_no_ca(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct runconf	*rc;
	char		 err[512] = "";

	rc = runconf_new_upstream(conf, 7, err, sizeof(err));
	if (rc == NULL)
		fail_msg("runconf_new_upstream: %s", err);
	assert_non_null(rc->tls);
	assert_null(rc->ca);
	assert_null(rc->leaves);
	assert_int_equal(rc->generation, 7);
	assert_int_equal(access(fx->cert, F_OK), -1);
	assert_int_equal(access(fx->key, F_OK), -1);
	runconf_unref(rc);
	conf_unref(conf);
}

static void
test_runconf_for_upstreams_fails_on_a_missing_trust_file(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*conf = conf_with_ca(fx, fx->cert, fx->key);
	char		 err[512] = "";

	free(conf->trust);
	conf->trust = xstrdup(fx->cert2);
	assert_null(runconf_new_upstream(conf, 1, err, sizeof(err)));
	assert_non_null(strstr(err, fx->cert2));
	conf_unref(conf);
}

/*
 * A candidate's first sighting is told apart by whether the chain met the
 * pins: one in a chain that did not (another server's certificate with
 * the key, say) leaves the first one that did still to be logged, and
 * the reverse; each once per generation and candidate.
 */
static void
test_runconf_candidate_first_by_whether_the_pins_met(void **state)
{
	struct fixture	*fx = *state;
	struct diag	*d = diag_new();
	struct conf	*conf;
	struct runconf	*rc;
	const struct pinset *ps;
	char		 text[1024], err[512] = "";
	FILE		*fp;

	snprintf(text, sizeof(text), "[proxy]\ntrust = %s\n\n"
	    "[pins:api]\nhosts = api.test\n"
	    "pin = sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	    "pin = sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=\n"
	    "candidate = sha256/CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA=\n"
	    "candidate = sha256/DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDA=\n",
	    fx->trust);
	fp = fmemopen(text, strlen(text), "r");
	assert_non_null(fp);
	conf = conf_parse_stream(fp, "test.conf", 0, d);
	fclose(fp);
	assert_non_null(conf);
	rc = runconf_new_upstream(conf, 1, err, sizeof(err));
	if (rc == NULL)
		fail_msg("runconf_new_upstream: %s", err);
	ps = &conf->pinsets[0];
	assert_int_equal(ps->ncandidates, 2);

	assert_true(runconf_candidate_first(rc, ps, 0, false));
	assert_false(runconf_candidate_first(rc, ps, 0, false));
	assert_true(runconf_candidate_first(rc, ps, 0, true));
	assert_false(runconf_candidate_first(rc, ps, 0, true));
	assert_false(runconf_candidate_first(rc, ps, 0, false));
	/* The other candidate, and one past the last: their own. */
	assert_true(runconf_candidate_first(rc, ps, 1, true));
	assert_true(runconf_candidate_first(rc, ps, 1, false));
	assert_false(runconf_candidate_first(rc, ps, 2, true));
	runconf_unref(rc);
	conf_unref(conf);
	diag_free(d);
}

/*
 * A session goes back to the full handshake that checked the chain, and
 * its verdict stands for TLS_UPSTREAM_VERDICT_SECONDS: the tickets of a
 * resumed connection carry the first check's time, and once it is that
 * old, or the chain it checked has ended, the next connection makes a
 * full handshake.
 */
static void
test_runconf_a_verdict_stands_for_resumptions_an_hour(void **state)
{
	struct fixture		*fx = *state;
	struct conf		*conf = conf_with_ca(fx, fx->cert, fx->key);
	struct testpki_chain	 c;
	struct runconf		*rc;
	SSL_CTX			*sctx;
	time_t			 now = time(NULL), first, got = 0;
	bool			 resumed[2];

	sctx = upstream_server(fx, conf, &c);
	rc = build_ok(conf, 1, NULL);

	/* A check that old: its sessions are not offered. */
	assert_false(upstream_once_at(rc, sctx,
	    now - TLS_UPSTREAM_VERDICT_SECONDS, NULL));
	assert_false(upstream_once_at(rc, sctx, now, &got));
	assert_int_equal(got, now);
	assert_true(upstream_once_at(rc, sctx, now, &got));
	assert_int_equal(got, now);
	runconf_unref(rc);

	/* Resumed, twice over: each time the first check's time. */
	rc = build_ok(conf, 2, NULL);
	first = now - TLS_UPSTREAM_VERDICT_SECONDS + 60;
	assert_false(upstream_once_at(rc, sctx, first, NULL));
	assert_true(upstream_once_at(rc, sctx, now, &got));
	assert_int_equal(got, first);
	assert_true(upstream_once_at(rc, sctx, now, &got));
	assert_int_equal(got, first);
	runconf_unref(rc);

	/* Not past the end of the chain it checked, within the hour too. */
	rc = build_ok(conf, 3, NULL);
	chain_valid_for = 30;
	resumed[0] = upstream_once_at(rc, sctx, now - 60, NULL);
	resumed[1] = upstream_once_at(rc, sctx, now, NULL);
	chain_valid_for = 30 * 24 * 60 * 60;
	assert_false(resumed[0]);
	assert_false(resumed[1]);

	runconf_unref(rc);
	conf_unref(conf);
	SSL_CTX_free(sctx);
	testpki_chain_free(&c);
}

#define FX_TEST(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_runconf_shares_the_ca_of_unchanged_files),
		FX_TEST(test_runconf_candidate_first_by_whether_the_pins_met),
		FX_TEST(test_runconf_a_verdict_stands_for_resumptions_an_hour),
		FX_TEST(test_runconf_loads_the_ca_named_by_other_paths),
		FX_TEST(test_runconf_reads_an_unchanged_trust_file_once),
		FX_TEST(test_runconf_gives_each_generation_its_own_system_store),
		FX_TEST(test_runconf_reads_a_trust_directory_at_once),
		FX_TEST(test_runconf_fails_when_the_ca_does_not_load),
		FX_TEST(test_runconf_reads_an_unchanged_ca_again_once_it_expired),
		FX_TEST(test_runconf_retire_empties_only_the_leaves),
		FX_TEST(test_runconf_retire_drops_and_keeps_no_upstream_sessions),
		FX_TEST(test_runconf_verified_chains_serve_the_current_generation),
		FX_TEST(test_runconf_for_upstreams_only_reads_and_creates_no_ca),
		FX_TEST(test_runconf_for_upstreams_fails_on_a_missing_trust_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
