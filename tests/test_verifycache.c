/*
 * Tests of the chains verified lately: a hit stands only for the same
 * certificates, name and store, within every certificate's validity and
 * the cache's own time; failures are never kept; the least recently used
 * chain goes first.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testpki.h"
#include "verifycache.h"

#define HOST	"api.example.test"

struct fixture {
	struct testpki_chain	 a;	/* root -> intermediate -> leaf HOST */
	X509			*other_leaf;	/* HOST too, another key */
	EVP_PKEY		*other_key;
	STACK_OF(X509)		*served;	/* leaf, intermediate */
	STACK_OF(X509)		*served_other;
	X509_STORE		*store;		/* trusts the root */
	X509_STORE		*empty;		/* trusts nothing */
	struct verifycache	*vc;
	long long		 mono;		/* the monotonic clock */
};

/* What one verification gave. */
struct result {
	int		 ok;
	int		 error;
	STACK_OF(X509)	*chain;		/* the verified chain, or NULL */
};

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	assert_non_null(f);
	testpki_chain_make(&f->a, "vc", HOST);
	f->other_key = testpki_key(TESTPKI_EC);
	f->other_leaf = testpki_leaf(HOST, f->other_key, f->a.ca,
	    f->a.ca_key);
	f->served = testpki_stack(f->a.leaf, f->a.ca, NULL);
	f->served_other = testpki_stack(f->other_leaf, f->a.ca, NULL);
	f->store = testpki_store(f->a.root, NULL);
	f->empty = X509_STORE_new();
	assert_non_null(f->empty);
	f->vc = verifycache_new();
	assert_non_null(f->vc);
	f->mono = 1000;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	verifycache_free(f->vc);
	X509_STORE_free(f->store);
	X509_STORE_free(f->empty);
	testpki_stack_free(f->served);
	testpki_stack_free(f->served_other);
	X509_free(f->other_leaf);
	EVP_PKEY_free(f->other_key);
	testpki_chain_free(&f->a);
	free(f);
	return 0;
}

/*
 * Verify served for host against store through the cache, at now by the
 * wall clock and f->mono by the monotonic one.
 */
static struct result
verify(struct fixture *f, X509_STORE *store, STACK_OF(X509) *served,
    const char *host, time_t now)
{
	X509_STORE_CTX	*ctx;
	struct result	 r;

	ctx = X509_STORE_CTX_new();
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, store,
	    sk_X509_value(served, 0), served), 1);
	assert_int_equal(X509_STORE_CTX_set_default(ctx, "ssl_server"), 1);
	assert_int_equal(X509_VERIFY_PARAM_set1_host(
	    X509_STORE_CTX_get0_param(ctx), host, 0), 1);
	r.ok = verifycache_verify(f->vc, ctx, host, now, f->mono);
	r.error = X509_STORE_CTX_get_error(ctx);
	r.chain = r.ok == 1 ? X509_STORE_CTX_get1_chain(ctx) : NULL;
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

/* The same, for its outcome alone. */
static int
verify_ok(struct fixture *f, X509_STORE *store, STACK_OF(X509) *served,
    const char *host, time_t now)
{
	struct result	 r = verify(f, store, served, host, now);

	testpki_stack_free(r.chain);
	return r.ok;
}

/* The error of a verification that must fail. */
static int
verify_fails(struct fixture *f, X509_STORE *store, STACK_OF(X509) *served,
    const char *host, time_t now)
{
	struct result	 r = verify(f, store, served, host, now);

	assert_int_not_equal(r.ok, 1);
	return r.error;
}

/* served verifies for HOST against store at when, from the cache or not. */
#define VERIFIES(store, served, when) \
	assert_int_equal(verify_ok(f, (store), (served), HOST, (when)), 1)

static void
assert_counts(struct fixture *f, unsigned long hits, unsigned long misses)
{
	unsigned long	 h, m;

	verifycache_counts(f->vc, &h, &m);
	assert_int_equal(h, hits);
	assert_int_equal(m, misses);
}

/* Whether two chains hold the same certificates in the same order. */
static void
assert_same_chain(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
	int	 i;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(sk_X509_num(a), sk_X509_num(b));
	for (i = 0; i < sk_X509_num(a); i++)
		assert_int_equal(X509_cmp(sk_X509_value(a, i),
		    sk_X509_value(b, i)), 0);
}

static void
test_verifycache_second_verification_is_a_hit_with_the_same_chain(
    void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);
	struct result	 first, second;

	first = verify(f, f->store, f->served, HOST, now);
	assert_int_equal(first.ok, 1);
	assert_counts(f, 0, 1);
	second = verify(f, f->store, f->served, HOST, now);
	assert_int_equal(second.ok, 1);
	assert_int_equal(second.error, X509_V_OK);
	assert_counts(f, 1, 1);
	/* leaf, intermediate, root: what X509_verify_cert built. */
	assert_int_equal(sk_X509_num(second.chain), 3);
	assert_same_chain(first.chain, second.chain);
	assert_int_equal(X509_cmp(sk_X509_value(second.chain, 2), f->a.root),
	    0);
	testpki_stack_free(first.chain);
	testpki_stack_free(second.chain);
}

static void
test_verifycache_another_name_is_verified_and_fails(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);

	VERIFIES(f->store, f->served, now);
	/* The same certificates for a name they do not cover: no hit. */
	assert_int_equal(verify_fails(f, f->store, f->served,
	    "other.example.test", now), X509_V_ERR_HOSTNAME_MISMATCH);
	/* A failure is not kept: it is verified, and fails, again. */
	assert_int_equal(verify_fails(f, f->store, f->served,
	    "other.example.test", now), X509_V_ERR_HOSTNAME_MISMATCH);
	assert_counts(f, 0, 3);
}

static void
test_verifycache_another_store_is_verified_and_fails(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);

	VERIFIES(f->store, f->served, now);
	assert_int_not_equal(verify_fails(f, f->empty, f->served, HOST, now),
	    X509_V_OK);
	assert_counts(f, 0, 2);
}

static void
test_verifycache_another_certificate_is_a_miss(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);
	struct result	 r;
	STACK_OF(X509)	*longer;

	VERIFIES(f->store, f->served, now);
	/* Another leaf for the same name, from the same CA. */
	r = verify(f, f->store, f->served_other, HOST, now);
	assert_int_equal(r.ok, 1);
	assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), f->other_leaf),
	    0);
	testpki_stack_free(r.chain);
	/* The same chain with one more certificate sent. */
	longer = testpki_stack(f->a.leaf, f->a.ca, f->a.root, NULL);
	r = verify(f, f->store, longer, HOST, now);
	assert_int_equal(r.ok, 1);
	testpki_stack_free(r.chain);
	testpki_stack_free(longer);
	assert_counts(f, 0, 3);
	/* Each is kept apart: all three hit now. */
	r = verify(f, f->store, f->served_other, HOST, now);
	assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), f->other_leaf),
	    0);
	testpki_stack_free(r.chain);
	r = verify(f, f->store, f->served, HOST, now);
	assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), f->a.leaf), 0);
	testpki_stack_free(r.chain);
	assert_counts(f, 2, 3);
}

static void
test_verifycache_stands_only_within_its_window(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);

	VERIFIES(f->store, f->served, now);
	/* Before every certificate's notBefore (an hour ago): no hit. */
	VERIFIES(f->store, f->served, now - 2 * TESTPKI_HOUR);
	assert_counts(f, 0, 2);
	/* Kept again; the wall clock stepped back or on: still a hit. */
	VERIFIES(f->store, f->served, now);
	VERIFIES(f->store, f->served, now - TESTPKI_HOUR / 2);
	VERIFIES(f->store, f->served, now + 2 * VERIFYCACHE_SECONDS);
	assert_counts(f, 2, 3);
	/* The cache's own time runs on the monotonic clock. */
	f->mono += VERIFYCACHE_SECONDS - 1;
	VERIFIES(f->store, f->served, now);
	assert_counts(f, 3, 3);
	f->mono += 1;
	VERIFIES(f->store, f->served, now);
	assert_counts(f, 3, 4);
	/* Past the leaf's notAfter (30 days): never from the cache. */
	VERIFIES(f->store, f->served, now + 31 * TESTPKI_DAY);
	VERIFIES(f->store, f->served, now + 31 * TESTPKI_DAY);
	assert_counts(f, 3, 6);
}

/* A chain larger than VERIFYCACHE_CHAIN_MAX verifies, and is not kept. */
static void
test_verifycache_keeps_no_large_chain(void **state)
{
	struct fixture		*f = *state;
	struct testpki_spec	 spec;
	STACK_OF(X509)		*served;
	EVP_PKEY		*key;
	X509			*big;
	char			*san, *p;
	time_t			 now = time(NULL);
	size_t			 i, n = 2000;

	/* 2000 names of 24 bytes: some 50 KiB of subjectAltName. */
	san = p = malloc(n * 32 + 64);
	assert_non_null(san);
	p += sprintf(p, "DNS:%s", HOST);
	for (i = 0; i < n; i++)
		p += sprintf(p, ",DNS:h%05zu.example.test", i);
	memset(&spec, 0, sizeof(spec));
	spec.cn = "big";
	spec.san = san;
	key = testpki_key(TESTPKI_EC);
	big = testpki_issue(&spec, key, f->a.ca, f->a.ca_key);
	assert_true(i2d_X509(big, NULL) > VERIFYCACHE_CHAIN_MAX);
	served = testpki_stack(big, f->a.ca, NULL);
	VERIFIES(f->store, served, now);
	VERIFIES(f->store, served, now);
	assert_counts(f, 0, 2);
	testpki_stack_free(served);
	X509_free(big);
	EVP_PKEY_free(key);
	free(san);
}

static void
test_verifycache_flush_forgets(void **state)
{
	struct fixture	*f = *state;
	time_t		 now = time(NULL);

	VERIFIES(f->store, f->served, now);
	verifycache_flush(f->vc);
	VERIFIES(f->store, f->served, now);
	assert_counts(f, 0, 2);
}

static void
test_verifycache_drops_the_least_recently_used(void **state)
{
	struct fixture	*f = *state;
	X509_STORE	*stores[VERIFYCACHE_SIZE + 1];
	time_t		 now = time(NULL);
	size_t		 i, last = VERIFYCACHE_SIZE;

	/* As many stores as slots, one more: one chain under each. */
	for (i = 0; i <= last; i++)
		stores[i] = testpki_store(f->a.root, NULL);
	for (i = 0; i < last; i++)
		VERIFIES(stores[i], f->served, now);
	/* The first is used again; the one more takes the second's slot. */
	VERIFIES(stores[0], f->served, now);
	VERIFIES(stores[last], f->served, now);
	assert_counts(f, 1, last + 1);
	VERIFIES(stores[0], f->served, now);
	VERIFIES(stores[last], f->served, now);
	assert_counts(f, 3, last + 1);
	VERIFIES(stores[1], f->served, now);
	assert_counts(f, 3, last + 2);
	for (i = 0; i <= last; i++)
		X509_STORE_free(stores[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_verifycache_second_verification_is_a_hit_with_the_same_chain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_another_name_is_verified_and_fails,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_another_store_is_verified_and_fails,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_another_certificate_is_a_miss,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_stands_only_within_its_window,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_keeps_no_large_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_flush_forgets, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_verifycache_drops_the_least_recently_used,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
