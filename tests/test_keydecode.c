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

/*
 * The engine's uses that a verification left on purpose (leave_open)
 * made itself: not counted against the callbacks that close.
 */
static unsigned long	forgiven;

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
	unsigned long		 uses;
	int			 ok;

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
	uses = keydecode_engine_uses();
	ok = X509_verify_cert(sctx);
	forgiven += keydecode_engine_uses() - uses;
	return ok;
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

/* Move what one BIO holds into another. */
static void
move(BIO *from, BIO *to)
{
	char	buf[4096];
	int	n;

	while ((n = BIO_read(from, buf, sizeof(buf))) > 0)
		assert_int_equal(BIO_write(to, buf, n), n);
}

/* An empty memory BIO that says "retry", not "end", when read empty. */
static BIO *
membio(void)
{
	BIO	*b = BIO_new(BIO_s_mem());

	assert_non_null(b);
	BIO_set_mem_eof_return(b, -1);
	return b;
}

/*
 * Run the handshake of client and server over memory, the server's bytes
 * given to the client at most chunk at a time (0: a TLS record at a
 * time, so that a read ends where a record does), the first byte of the DER
 * of corrupt (NULL: none) changed on the way. After every step of the
 * client the short way must be off and the engine unused. Whether both
 * ends completed.
 */
static bool
drive(SSL *client, SSL *server, size_t chunk, X509 *corrupt)
{
	unsigned char	*der = NULL, *pending = NULL, *hit;
	unsigned long	 uses = keydecode_engine_uses() - forgiven;
	size_t		 npending = 0, n;
	BIO		*cr = membio(), *cw = membio();
	BIO		*sr = membio(), *sw = membio();
	char		*data;
	long		 len;
	int		 derlen = 0, crc = 0, src = 0, i;
	bool		 ok = false;

	if (corrupt != NULL)
		assert_true((derlen = i2d_X509(corrupt, &der)) > 0);
	SSL_set_bio(client, cr, cw);
	SSL_set_bio(server, sr, sw);
	for (i = 0; i < 10000; i++) {
		if (crc != 1) {
			crc = SSL_do_handshake(client);
			assert_false(keydecode_is_open());
			assert_int_equal(keydecode_engine_uses() - forgiven,
			    uses);
			if (crc <= 0 && SSL_get_error(client, crc) !=
			    SSL_ERROR_WANT_READ)
				break;
		}
		move(cw, sr);
		if (src != 1) {
			src = SSL_do_handshake(server);
			if (src <= 0 && SSL_get_error(server, src) !=
			    SSL_ERROR_WANT_READ)
				break;
		}
		if ((len = BIO_get_mem_data(sw, &data)) > 0) {
			pending = realloc(pending, npending + (size_t)len);
			assert_non_null(pending);
			assert_int_equal(BIO_read(sw, pending + npending,
			    (int)len), len);
			npending += (size_t)len;
			if (der != NULL && (hit = memmem(pending, npending,
			    der, (size_t)derlen)) != NULL)
				hit[0] ^= 0x01;
		}
		if (crc == 1 && src == 1 && npending == 0) {
			ok = true;
			break;
		}
		if (chunk == 0 && npending >= 5)
			n = 5 + ((size_t)pending[3] << 8 | pending[4]);
		else
			n = chunk == 0 ? npending : chunk;
		if (n > npending)
			n = npending;
		assert_int_equal(BIO_write(cr, pending, (int)n), (int)n);
		memmove(pending, pending + n, npending - n);
		npending -= n;
	}
	free(pending);
	OPENSSL_free(der);
	return ok;
}

/*
 * A client of a server that sends leaf (its key leaf_key) and the chain's
 * intermediate at most at TLS version max, the client trusting trusted
 * (NULL: nothing) and telling seen what its verification saw; free both
 * with SSL_CTX_free(SSL_get_SSL_CTX()) and SSL_free().
 */
static void
pair(struct testpki_chain *c, X509 *leaf, EVP_PKEY *leaf_key,
    X509 *trusted, int max, struct seen *seen, SSL **client, SSL **server)
{
	SSL_CTX		*cctx, *sctx;

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
	*client = SSL_new(cctx);
	*server = SSL_new(sctx);
	assert_non_null(*client);
	assert_non_null(*server);
	SSL_set_connect_state(*client);
	SSL_set_accept_state(*server);
	/* The SSLs hold their contexts. */
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	seen->calls = 0;
	seen->open = seen->leaf_provided = seen->ca_provided = false;
}

/*
 * A handshake with a server that sends leaf (its key leaf_key) and the
 * chain's intermediate, its client trusting trusted (NULL: nothing), at
 * most TLS version max, the whole flight at once. Whether it completed;
 * *seen says what the client's verification saw.
 */
static bool
handshake(struct testpki_chain *c, X509 *leaf, EVP_PKEY *leaf_key,
    X509 *trusted, int max, struct seen *seen)
{
	SSL		*client, *server;
	X509		*peer;
	bool		 ok;

	pair(c, leaf, leaf_key, trusted, max, seen, &client, &server);
	ok = drive(client, server, SIZE_MAX, NULL);
	if (ok) {
		peer = SSL_get0_peer_certificate(client);
		assert_non_null(peer);
		/* The key decoded is the server's own. */
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(peer), leaf_key),
		    1);
		assert_int_equal(SSL_version(client), max);
	}
	SSL_free(client);
	SSL_free(server);
	return ok;
}

/*
 * A TLS 1.3 handshake with a server that sends the chain, the client's
 * verification leaving the short way on or not: it was on for the
 * verification, with the leaf's key decoded the short way, and it is off
 * again for every certificate parsed outside a handshake.
 */
static void
ec_chain_handshake(bool leave_open, struct seen *seen)
{
	struct testpki_chain	c;

	seen->leave_open = leave_open;
	testpki_chain_make(&c, "kd", HOST);
	assert_true(handshake(&c, c.leaf, c.leaf_key, c.root, TLS1_3_VERSION,
	    seen));
	assert_int_equal(seen->calls, 1);
	assert_true(seen->open);
	assert_false(seen->leaf_provided);
	assert_true(parsed_by_provider(c.leaf));
	testpki_chain_free(&c);
}

static void
test_keydecode_takes_the_short_way_for_an_ec_chain_in_tls13(void **state)
{
	struct seen	seen;

	(void)state;
	if (!keydecode_available())
		skip();
	ec_chain_handshake(false, &seen);
	assert_false(seen.ca_provided);
}

/*
 * A handshake at TLS version max with a server whose leaf has key (which
 * this frees) instead of the chain's; *seen says what the client saw.
 */
static void
leaf_handshake(struct testpki_chain *c, EVP_PKEY *key, int max,
    struct seen *seen)
{
	X509	*leaf;

	assert_non_null(key);
	leaf = testpki_leaf(HOST, key, c->ca, c->ca_key);
	assert_true(handshake(c, leaf, key, c->root, max, seen));
	assert_int_equal(seen->calls, 1);
	assert_true(seen->open);
	/* The intermediate's EC key in the same message is claimed. */
	assert_false(seen->ca_provided);
	assert_true(parsed_by_provider(leaf));
	X509_free(leaf);
	EVP_PKEY_free(key);
}

static void
test_keydecode_takes_the_short_way_for_an_rsa_leaf_in_tls12(void **state)
{
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = false };

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	/* TLS 1.2's ServerKeyExchange is signed with the RSA key. */
	leaf_handshake(&c, testpki_key(TESTPKI_RSA), TLS1_2_VERSION, &seen);
	assert_false(seen.leaf_provided);
	testpki_chain_free(&c);
}

static void
test_keydecode_closes_when_the_chain_fails(void **state)
{
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = true };

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
	struct testpki_chain	c;
	struct seen		seen = { .leave_open = false };

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	leaf_handshake(&c, EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
	    TLS1_3_VERSION, &seen);
	assert_true(seen.leaf_provided);
	testpki_chain_free(&c);
}

/*
 * A verification that leaves the short way on: the server's next record
 * (its CertificateVerify) closes it, and the signature checks.
 */
static void
test_keydecode_closes_at_the_next_record_by_itself(void **state)
{
	struct seen	seen;

	(void)state;
	if (!keydecode_available())
		skip();
	ec_chain_handshake(true, &seen);
}

/*
 * The server's flight a few bytes at a time, then a record at a time, the
 * verification leaving the short way on: every return of the client's
 * handshake (most of them waiting for more, some right after the
 * Certificate record) finds it off, in TLS 1.3 and 1.2.
 */
static void
test_keydecode_closes_at_every_return_of_a_trickled_handshake(void **state)
{
	struct testpki_chain	 c;
	struct seen		 seen = { .leave_open = true };
	SSL			*client, *server;
	int			 i, max;
	size_t			 chunk;

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	for (i = 0; i < 4; i++) {
		max = i < 2 ? TLS1_2_VERSION : TLS1_3_VERSION;
		chunk = i % 2 == 0 ? 7 : 0;
		pair(&c, c.leaf, c.leaf_key, c.root, max, &seen, &client,
		    &server);
		assert_true(drive(client, server, chunk, NULL));
		assert_int_equal(seen.calls, 1);
		assert_true(seen.open);
		assert_false(seen.leaf_provided);
		assert_int_equal(SSL_version(client), max);
		SSL_free(client);
		SSL_free(server);
	}
	testpki_chain_free(&c);
}

/*
 * A Certificate message whose leaf does not parse (TLS 1.2 sends it in
 * the clear, so one byte of it can be changed on the way): the handshake
 * fails before any verification, and the short way is off.
 */
static void
test_keydecode_closes_when_a_certificate_does_not_parse(void **state)
{
	struct testpki_chain	 c;
	struct seen		 seen = { .leave_open = true };
	SSL			*client, *server;

	(void)state;
	if (!keydecode_available())
		skip();
	testpki_chain_make(&c, "kd", HOST);
	pair(&c, c.leaf, c.leaf_key, c.root, TLS1_2_VERSION, &seen, &client,
	    &server);
	assert_false(drive(client, server, SIZE_MAX, c.leaf));
	assert_int_equal(seen.calls, 0);
	assert_false(keydecode_is_open());
	SSL_free(client);
	SSL_free(server);
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
		cmocka_unit_test(
		    test_keydecode_closes_at_every_return_of_a_trickled_handshake),
		cmocka_unit_test(
		    test_keydecode_closes_when_a_certificate_does_not_parse),
		cmocka_unit_test(test_keydecode_is_closed_outside_a_handshake),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
