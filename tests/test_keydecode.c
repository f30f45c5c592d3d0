/*
 * Tests of the short way for the keys of a server's certificates: it is
 * taken while a handshake parses the server's Certificate message and at
 * no other time, the keys it gives verify the server's handshake
 * signature and encode to the same pins, and a key type it does not claim
 * is decoded as before.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "keydecode.h"
#include "testpki.h"

#define HOST	"api.keydecode.test"

/* What the client's verification callback saw. */
struct seen {
	int	 calls;
	bool	 open;		/* the short way was on at the call */
	bool	 leaf_provided;	/* the leaf's key came from a provider */
	bool	 ca_provided;	/* the intermediate's too */
	bool	 leave_open;	/* do not close the short way */
};

static int
verify_cb(X509_STORE_CTX *sctx, void *arg)
{
	struct seen		*seen = arg;
	STACK_OF(X509)		*untrusted;

	seen->calls++;
	seen->open = keydecode_is_open();
	if (!seen->leave_open)
		keydecode_close();
	seen->leaf_provided = EVP_PKEY_get0_provider(
	    X509_get0_pubkey(X509_STORE_CTX_get0_cert(sctx))) != NULL;
	untrusted = X509_STORE_CTX_get0_untrusted(sctx);
	if (untrusted != NULL && sk_X509_num(untrusted) > 1)
		seen->ca_provided = EVP_PKEY_get0_provider(
		    X509_get0_pubkey(sk_X509_value(untrusted, 1))) != NULL;
	return X509_verify_cert(sctx);
}

/* Whether cert, written and parsed again now, has a provider's key. */
static bool
parsed_by_provider(X509 *cert)
{
	unsigned char		*der = NULL;
	const unsigned char	*p;
	X509			*copy;
	bool			 provided;
	int			 len;

	len = i2d_X509(cert, &der);
	assert_true(len > 0);
	p = der;
	copy = d2i_X509(NULL, &p, len);
	assert_non_null(copy);
	provided = EVP_PKEY_get0_provider(X509_get0_pubkey(copy)) != NULL;
	X509_free(copy);
	OPENSSL_free(der);
	return provided;
}

/* Whether two certificates' SubjectPublicKeyInfo encode the same. */
static bool
same_spki(X509 *a, X509 *b)
{
	unsigned char	*da = NULL, *db = NULL;
	int		 la, lb;
	bool		 same;

	la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(a), &da);
	lb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(b), &db);
	same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

/*
 * A handshake with a server that sends leaf (its key leaf_key) and the
 * chain's intermediate, its client trusting trusted (NULL: nothing), at
 * most TLS version max. Whether it completed; *seen says what the
 * client's verification saw.
 */
static bool
handshake(struct testpki_chain *c, X509 *leaf, EVP_PKEY *leaf_key,
    X509 *trusted, int max, struct seen *seen)
{
	SSL_CTX		*cctx, *sctx;
	SSL		*client, *server;
	X509		*peer;
	bool		 ok;

	sctx = SSL_CTX_new(TLS_server_method());
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(sctx);
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_use_certificate(sctx, leaf), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, leaf_key), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(sctx, c->ca), 1);
	SSL_CTX_set_max_proto_version(sctx, max);
	SSL_CTX_set_cert_store(cctx, trusted != NULL ?
	    testpki_store(trusted, NULL) : X509_STORE_new());
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(cctx, verify_cb, seen);
	keydecode_watch(cctx);
	client = SSL_new(cctx);
	server = SSL_new(sctx);
	assert_non_null(client);
	assert_non_null(server);
	SSL_set_connect_state(client);
	SSL_set_accept_state(server);
	seen->calls = 0;
	seen->open = seen->leaf_provided = seen->ca_provided = false;
	ok = testpki_handshake(client, server);
	assert_false(keydecode_is_open());
	if (ok) {
		peer = SSL_get0_peer_certificate(client);
		assert_non_null(peer);
		assert_true(same_spki(peer, leaf));
		assert_int_equal(SSL_version(client), max);
	}
	SSL_free(client);
	SSL_free(server);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return ok;
}

static void
test_keydecode_takes_the_short_way_for_an_ec_chain_in_tls13(void **state)
{
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = false };

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	assert_true(handshake(&c, c.leaf, c.leaf_key, c.root, TLS1_3_VERSION,
	    &seen));
	assert_int_equal(seen.calls, 1);
	assert_true(seen.open);
	assert_false(seen.leaf_provided);
	assert_false(seen.ca_provided);
	/* Outside a handshake, certificates parse as they always did. */
	assert_true(parsed_by_provider(c.leaf));
	testpki_chain_free(&c);
}

static void
test_keydecode_takes_the_short_way_for_an_rsa_leaf_in_tls12(void **state)
{
	struct testpki_chain	 c;
	struct seen		 seen = { .leave_open = false };
	EVP_PKEY		*key;
	X509			*leaf;

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	key = testpki_key(TESTPKI_RSA);
	leaf = testpki_leaf(HOST, key, c.ca, c.ca_key);
	/* TLS 1.2's ServerKeyExchange is signed with the RSA key. */
	assert_true(handshake(&c, leaf, key, c.root, TLS1_2_VERSION, &seen));
	assert_int_equal(seen.calls, 1);
	assert_true(seen.open);
	assert_false(seen.leaf_provided);
	assert_false(seen.ca_provided);
	assert_true(parsed_by_provider(leaf));
	X509_free(leaf);
	EVP_PKEY_free(key);
	testpki_chain_free(&c);
}

static void
test_keydecode_closes_when_the_chain_fails(void **state)
{
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = false };

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	assert_false(handshake(&c, c.leaf, c.leaf_key, NULL, TLS1_3_VERSION,
	    &seen));
	assert_int_equal(seen.calls, 1);
	assert_true(seen.open);
	assert_true(parsed_by_provider(c.leaf));
	testpki_chain_free(&c);
}

static void
test_keydecode_leaves_an_ed25519_key_to_the_provider(void **state)
{
	struct testpki_chain	 c;
	struct seen		 seen = { .leave_open = false };
	EVP_PKEY		*key;
	X509			*leaf;

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(key);
	leaf = testpki_leaf(HOST, key, c.ca, c.ca_key);
	assert_true(handshake(&c, leaf, key, c.root, TLS1_3_VERSION, &seen));
	assert_true(seen.open);
	assert_true(seen.leaf_provided);
	/* The intermediate's EC key in the same message is claimed. */
	assert_false(seen.ca_provided);
	X509_free(leaf);
	EVP_PKEY_free(key);
	testpki_chain_free(&c);
}

/*
 * A verification that leaves the short way on: the server's next record
 * (its CertificateVerify) closes it, and the signature checks.
 */
static void
test_keydecode_closes_at_the_next_record_by_itself(void **state)
{
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = true };

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	assert_true(handshake(&c, c.leaf, c.leaf_key, c.root, TLS1_3_VERSION,
	    &seen));
	assert_true(seen.open);
	assert_false(seen.leaf_provided);
	assert_true(parsed_by_provider(c.leaf));
	testpki_chain_free(&c);
}

static void
test_keydecode_is_closed_outside_a_handshake(void **state)
{
	(void)state;
	assert_false(keydecode_is_open());
	keydecode_close();
	assert_false(keydecode_is_open());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_keydecode_takes_the_short_way_for_an_ec_chain_in_tls13),
		cmocka_unit_test(
		    test_keydecode_takes_the_short_way_for_an_rsa_leaf_in_tls12),
		cmocka_unit_test(test_keydecode_closes_when_the_chain_fails),
		cmocka_unit_test(
		    test_keydecode_leaves_an_ed25519_key_to_the_provider),
		cmocka_unit_test(
		    test_keydecode_closes_at_the_next_record_by_itself),
		cmocka_unit_test(test_keydecode_is_closed_outside_a_handshake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
