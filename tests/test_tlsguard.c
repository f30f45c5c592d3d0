/*
 * Tests of the second-ClientHello guard of blind tunnels: a further
 * ClientHello naming another server (or one where the first named none)
 * is refused, one naming the same passes, in any cut; records of other
 * kinds go on as they come; the server's first ServerHello that is not a
 * HelloRetryRequest ends the look, a retry request does not.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/ssl.h>

#include <stdlib.h>
#include <string.h>

#include "tlsguard.h"

/* A real ClientHello naming sni (NULL: none), its length in *len. */
static unsigned char *
hello(const char *sni, size_t *len)
{
	SSL_CTX		*ctx = SSL_CTX_new(TLS_client_method());
	SSL		*ssl;
	BIO		*rbio, *wbio;
	unsigned char	*out;
	char		*p;
	long		 n;

	assert_non_null(ctx);
	ssl = SSL_new(ctx);
	rbio = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rbio, wbio);
	if (sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
	assert_true(SSL_connect(ssl) <= 0);
	n = BIO_get_mem_data(wbio, &p);
	assert_true(n > 0);
	out = malloc((size_t)n);
	assert_non_null(out);
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return out;
}

/* a then b in one buffer; its length in *len. */
static unsigned char *
cat(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen, size_t *len)
{
	unsigned char	*out = malloc(alen + blen);

	assert_non_null(out);
	memcpy(out, a, alen);
	memcpy(out + alen, b, blen);
	*len = alen + blen;
	return out;
}

/* A ServerHello record (a retry request when hrr) into out: its length. */
static size_t
server_hello(unsigned char *out, bool hrr)
{
	static const unsigned char magic[32] = {
		0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11,
		0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
		0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e,
		0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c
	};
	size_t	 body = 2 + 32 + 1 + 2 + 1 + 2 + 6;

	out[0] = 22;
	out[1] = 3;
	out[2] = 3;
	out[3] = 0;
	out[4] = (unsigned char)(4 + body);
	out[5] = 2;
	out[6] = 0;
	out[7] = 0;
	out[8] = (unsigned char)body;
	out[9] = 3;
	out[10] = 3;
	if (hrr)
		memcpy(out + 11, magic, 32);
	else
		memset(out + 11, 0x5a, 32);
	/* session id (empty), cipher, compression, extensions: filler. */
	memset(out + 43, 0, body - 34);
	out[47] = 6;
	return 5 + 4 + body;
}

static void
test_tlsguard_refuses_a_second_hello_naming_another_server(void **state)
{
	struct tlsguard	 g;
	unsigned char	*a, *b, *n, *ab, *na, *nn, *aa;
	size_t		 alen, blen, nlen, len, pass;

	(void)state;
	a = hello("a.test", &alen);
	b = hello("pinned.test", &blen);
	n = hello(NULL, &nlen);
	ab = cat(a, alen, b, blen, &len);
	tlsguard_init(&g, "a.test", alen);
	assert_int_equal(tlsguard_client(&g, ab, len, &pass), TLSGUARD_REFUSE);
	free(ab);
	na = cat(n, nlen, b, blen, &len);
	tlsguard_init(&g, "", nlen);
	assert_int_equal(tlsguard_client(&g, na, len, &pass), TLSGUARD_REFUSE);
	free(na);
	/* The same server again (in any case), or none again: it goes. */
	aa = cat(a, alen, a, alen, &len);
	tlsguard_init(&g, "A.Test", alen);
	assert_int_equal(tlsguard_client(&g, aa, len, &pass), TLSGUARD_OK);
	assert_int_equal(pass, len);
	free(aa);
	nn = cat(n, nlen, n, nlen, &len);
	tlsguard_init(&g, "", nlen);
	assert_int_equal(tlsguard_client(&g, nn, len, &pass), TLSGUARD_OK);
	assert_int_equal(pass, len);
	free(nn);
	free(a);
	free(b);
	free(n);
}

/*
 * Cut anywhere, the first hello goes at once and the second is held
 * until it is whole, then judged.
 */
static void
test_tlsguard_holds_a_second_hello_until_whole(void **state)
{
	struct tlsguard	 g;
	unsigned char	*a, *b, *ab;
	size_t		 alen, blen, len, pass, cut, off;
	enum tlsguard_verdict v;

	(void)state;
	a = hello("a.test", &alen);
	b = hello("pinned.test", &blen);
	ab = cat(a, alen, b, blen, &len);
	for (cut = 1; cut < len; cut += 7) {
		tlsguard_init(&g, "a.test", alen);
		/* The first cut bytes arrive, then all: held from off on. */
		assert_int_equal(tlsguard_client(&g, ab, cut, &pass),
		    TLSGUARD_OK);
		assert_true(pass <= alen);
		assert_true(cut <= alen || pass == alen);
		off = pass;
		v = tlsguard_client(&g, ab + off, len - off, &pass);
		assert_int_equal(v, TLSGUARD_REFUSE);
	}
	free(ab);
	free(a);
	free(b);
}

/*
 * A second hello sent a byte at a time is held, byte after byte, and
 * judged at its last one (not gathered again at each: the parse waits
 * for the bytes its lengths announce).
 */
static void
test_tlsguard_judges_a_hello_sent_a_byte_at_a_time(void **state)
{
	struct tlsguard	 g;
	unsigned char	*a, *b;
	size_t		 alen, blen, pass, i;

	(void)state;
	a = hello("a.test", &alen);
	b = hello("pinned.test", &blen);
	tlsguard_init(&g, "a.test", 0);
	for (i = 1; i < blen; i++) {
		assert_int_equal(tlsguard_client(&g, b, i, &pass),
		    TLSGUARD_OK);
		assert_int_equal(pass, 0);
	}
	assert_int_equal(tlsguard_client(&g, b, blen, &pass), TLSGUARD_REFUSE);
	tlsguard_init(&g, "a.test", 0);
	for (i = 1; i < alen; i++)
		assert_int_equal(tlsguard_client(&g, a, i, &pass),
		    TLSGUARD_OK);
	assert_int_equal(tlsguard_client(&g, a, alen, &pass), TLSGUARD_OK);
	assert_int_equal(pass, alen);
	free(a);
	free(b);
}

/* Records of other kinds (early data, a CCS) go on as they come. */
static void
test_tlsguard_passes_other_records_as_they_come(void **state)
{
	struct tlsguard	 g;
	unsigned char	*a, *buf;
	size_t		 alen, pass, len;
	const size_t	 data = 20000;

	(void)state;
	a = hello("a.test", &alen);
	len = alen + 5 + data;
	buf = calloc(1, len);
	assert_non_null(buf);
	memcpy(buf, a, alen);
	buf[alen] = 23;
	buf[alen + 1] = 3;
	buf[alen + 2] = 3;
	buf[alen + 3] = (unsigned char)(data >> 8);
	buf[alen + 4] = (unsigned char)data;
	tlsguard_init(&g, "a.test", alen);
	assert_int_equal(tlsguard_client(&g, buf, alen + 100, &pass),
	    TLSGUARD_OK);
	assert_int_equal(pass, alen + 100);
	assert_int_equal(tlsguard_client(&g, buf + pass, len - pass, &pass),
	    TLSGUARD_OK);
	assert_int_equal(pass, len - (alen + 100));
	free(buf);
	free(a);
}

/*
 * The server's ServerHello ends the look; a HelloRetryRequest (with a
 * ChangeCipherSpec after it), fed a byte at a time, does not.
 */
static void
test_tlsguard_ends_at_a_server_hello_not_at_a_retry(void **state)
{
	struct tlsguard	 g;
	unsigned char	 sh[128], ccs[] = { 20, 3, 3, 0, 1, 1 };
	unsigned char	 warn[] = { 21, 3, 3, 0, 2, 1, 112 };
	unsigned char	*a, *b, *ab;
	size_t		 n, i, alen, blen, len, pass;

	(void)state;
	tlsguard_init(&g, "a.test", 10);
	/* A warning alert first ends nothing either. */
	tlsguard_server(&g, warn, sizeof(warn));
	assert_false(g.done);
	n = server_hello(sh, true);
	for (i = 0; i < n; i++)
		tlsguard_server(&g, sh + i, 1);
	assert_false(g.done);
	tlsguard_server(&g, ccs, sizeof(ccs));
	assert_false(g.done);
	/* After the retry request, a second hello naming another: refused. */
	a = hello("a.test", &alen);
	b = hello("pinned.test", &blen);
	ab = cat(a, alen, b, blen, &len);
	g.skip = alen;
	assert_int_equal(tlsguard_client(&g, ab, len, &pass), TLSGUARD_REFUSE);
	/* A ServerHello that is no retry ends it: everything goes. */
	tlsguard_init(&g, "a.test", alen);
	n = server_hello(sh, false);
	tlsguard_server(&g, sh, n);
	assert_true(g.done);
	assert_int_equal(tlsguard_client(&g, ab, len, &pass), TLSGUARD_OK);
	assert_int_equal(pass, len);
	/* So does a server that is not TLS (an alert, a banner). */
	tlsguard_init(&g, "a.test", alen);
	tlsguard_server(&g, (const unsigned char *)"SSH-2.0-x\r\n", 11);
	assert_true(g.done);
	free(ab);
	free(a);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_tlsguard_refuses_a_second_hello_naming_another_server),
		cmocka_unit_test(test_tlsguard_holds_a_second_hello_until_whole),
		cmocka_unit_test(
		    test_tlsguard_judges_a_hello_sent_a_byte_at_a_time),
		cmocka_unit_test(test_tlsguard_passes_other_records_as_they_come),
		cmocka_unit_test(
		    test_tlsguard_ends_at_a_server_hello_not_at_a_retry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
