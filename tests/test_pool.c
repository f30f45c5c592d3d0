/*
 * Tests of the upstream pool over real TCP connections on 127.0.0.1: a
 * host keeps idle as many connections as it had in use at once, idle ones
 * beyond its recent need are closed once the demand windows pass (the
 * test ends the windows itself, so nothing sleeps but the settling test),
 * the limit in all holds across hosts, and hosts are forgotten once they
 * have nothing; a settling connection serves only its own client.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <poll.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "metrics.h"
#include "pool.h"
#include "runconf.h"
#include "testpki.h"
#include "upstream.h"
#include "xmalloc.h"

/* The longest any test waits for its connections. */
#define DEADLINE_SEC	10
/* Listeners, each a host of its own (the port tells them apart). */
#define NHOSTS		2
/* Connections a test holds at most. */
#define MAX_UPS		320

struct fixture {
	struct event_base	*base;
	struct runconf		*rc;
	struct pool		*pool;
	struct metrics		*metrics;
	struct upstream_sinks	 sinks;
	int			 lfd[NHOSTS];
	uint16_t		 port[NHOSTS];
	struct upstream		*ups[MAX_UPS];
	struct pool_host	*uses[MAX_UPS];
	size_t			 dialled;
	size_t			 connected;
	bool			 late;
	char			 dir[64];	/* the generation's CA */
};

/* A listener on 127.0.0.1 that never accepts: the kernel does. */
static int
listener(uint16_t *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1024), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
setup(void **state)
{
	struct fixture	*f;
	struct conf	*c;
	EVP_PKEY	*key;
	X509		*root;
	char		 err[256];
	size_t		 i;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	c = conf_new_default();
	/* A generation loads (or makes) a CA: a scratch one, not the system's. */
	snprintf(f->dir, sizeof(f->dir), "/tmp/pinproxy-pool.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	free(c->ca_cert);
	free(c->ca_key);
	c->ca_cert = xasprintf("%s/ca.pem", f->dir);
	c->ca_key = xasprintf("%s/ca.key", f->dir);
	/*
	 * And trusts one root of its own: the pool does not verify, and the
	 * system's store, parsed for every case, was most of their time.
	 */
	key = testpki_key(TESTPKI_EC);
	root = testpki_root("Pool Test Root", key);
	free(c->trust);
	c->trust = testpki_write_cert(f->dir, "trust.pem", root);
	X509_free(root);
	EVP_PKEY_free(key);
	f->rc = runconf_new(c, 1, NULL, err, sizeof(err));
	assert_non_null(f->rc);
	conf_unref(c);
	f->metrics = metrics_new();
	f->sinks.metrics = f->metrics;
	f->pool = pool_new(f->base);
	pool_set_generation(f->pool, 1);
	for (i = 0; i < NHOSTS; i++)
		f->lfd[i] = listener(&f->port[i]);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	size_t		 i;

	pool_free(f->pool);
	for (i = 0; i < NHOSTS; i++)
		close(f->lfd[i]);
	runconf_unref(f->rc);
	metrics_free(f->metrics);
	event_base_free(f->base);
	for (i = 0; i < 3; i++) {
		static const char	*const names[] = {
			"ca.pem", "ca.key", "trust.pem"
		};
		char			 path[96];

		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

static void
dial_cb(struct upstream *u, enum upstream_status st, void *arg)
{
	struct fixture	*f = arg;

	assert_int_equal(st, UPSTREAM_OK);
	upstream_start_plain(u);
	f->connected++;
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*f = arg;

	f->late = true;
}

/* Run the event loop until cond(f) holds, for DEADLINE_SEC at most. */
static void
run_until(struct fixture *f, bool (*cond)(struct fixture *))
{
	struct timeval	 tv = { DEADLINE_SEC, 0 };
	struct event	*deadline;

	deadline = evtimer_new(f->base, deadline_cb, f);
	evtimer_add(deadline, &tv);
	f->late = false;
	while (!cond(f) && !f->late)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(deadline);
	assert_false(f->late);
}

static bool
all_connected(struct fixture *f)
{
	return f->connected == f->dialled;
}

/*
 * Open n uses of host h at once, in f->ups[from..from+n): an idle upstream
 * from the pool or, when it has none, a new connection. How many came from
 * the pool.
 */
static size_t
take(struct fixture *f, size_t h, size_t from, size_t n)
{
	struct upstream_params	 p;
	size_t			 i, hits = 0;
	unsigned		 how;

	assert_true(from + n <= MAX_UPS);
	memset(&p, 0, sizeof(p));
	p.base = f->base;
	p.rc = f->rc;
	p.host = "127.0.0.1";
	p.port = f->port[h];
	p.client = "test";
	p.sinks = &f->sinks;
	f->dialled = f->connected = 0;
	for (i = from; i < from + n; i++) {
		f->ups[i] = pool_get(f->pool, f->rc, "127.0.0.1", f->port[h],
		    false, 1, &f->uses[i], &how);
		assert_non_null(f->uses[i]);
		if (f->ups[i] != NULL) {
			hits++;
			continue;
		}
		f->ups[i] = upstream_connect(&p, dial_cb, f);
		f->dialled++;
	}
	run_until(f, all_connected);
	return hits;
}

/*
 * End the uses f->ups[from..from+n) cleanly: the pool may keep them (the
 * pointers stay, to be compared with later ones).
 */
static void
put(struct fixture *f, size_t from, size_t n)
{
	size_t	 i;

	for (i = from; i < from + n; i++)
		pool_put(f->pool, f->uses[i], f->ups[i], 1, 0);
}

/* Whether u is one of f->ups[from..from+n). */
static bool
among(struct fixture *f, const struct upstream *u, size_t from, size_t n)
{
	size_t	 i;

	for (i = from; i < from + n; i++)
		if (f->ups[i] == u)
			return true;
	return false;
}

static void
test_pool_keeps_as_many_idle_as_a_host_had_in_use_at_once(void **state)
{
	struct fixture	*f = *state;

	assert_int_equal(take(f, 0, 0, 40), 0);
	assert_int_equal(pool_in_use(f->pool), 40);
	assert_int_equal(pool_host_limit(f->pool, f->uses[0]), 40);
	put(f, 0, 40);
	assert_int_equal(pool_count(f->pool), 40);
	assert_int_equal(pool_in_use(f->pool), 0);
	/* The same burst again dials nothing. */
	assert_int_equal(take(f, 0, 0, 40), 40);
	assert_int_equal(pool_count(f->pool), 0);
	put(f, 0, 40);
	assert_int_equal(pool_count(f->pool), 40);
}

static void
test_pool_counts_a_dial_in_progress_as_in_use(void **state)
{
	struct fixture		*f = *state;
	struct pool_host	*use;
	unsigned		 how;

	assert_null(pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false,
	    1, &use, &how));
	assert_int_equal(pool_in_use(f->pool), 1);
	assert_int_equal(pool_hosts(f->pool), 1);
	pool_drop(f->pool, use, NULL);
	assert_int_equal(pool_in_use(f->pool), 0);
	assert_int_equal(pool_hosts(f->pool), 0);
}

static void
test_pool_closes_idle_beyond_the_recent_need_after_the_window(void **state)
{
	struct fixture		*f = *state;
	struct upstream		*u;
	struct pool_host	*use;
	unsigned		 how;
	size_t			 i;

	/* A burst of 40, then 10 at once in the next window. */
	take(f, 0, 0, 40);
	put(f, 0, 40);
	pool_tick(f->pool);
	assert_int_equal(pool_count(f->pool), 40);
	assert_int_equal(take(f, 0, 0, 10), 10);
	put(f, 0, 10);
	/* The burst's window is over: the need is 10, the oldest go. */
	pool_tick(f->pool);
	assert_int_equal(pool_host_limit(f->pool, f->uses[0]), 10);
	assert_int_equal(pool_count(f->pool), 10);
	/* Nothing in use for two windows: the floor is left. */
	pool_tick(f->pool);
	assert_int_equal(pool_count(f->pool), POOL_MIN_PER_HOST);
	assert_int_equal(pool_hosts(f->pool), 1);
	/* Those kept are among the ten used last. */
	for (i = 0; i < POOL_MIN_PER_HOST; i++) {
		u = pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false,
		    1, &use, &how);
		assert_non_null(u);
		assert_true(among(f, u, 0, 10));
		pool_drop(f->pool, use, u);
	}
	assert_int_equal(pool_count(f->pool), 0);
	assert_int_equal(pool_hosts(f->pool), 0);
}

static void
test_pool_limit_in_all_holds_across_hosts(void **state)
{
	struct fixture	*f = *state;

	pool_set_max_idle(f->pool, 24);
	take(f, 0, 0, 20);
	take(f, 1, 20, 20);
	put(f, 0, 20);
	put(f, 20, 20);
	assert_int_equal(pool_count(f->pool), 24);
	/* The oldest went first: those of the first host. */
	assert_int_equal(take(f, 0, 0, 20), 4);
	put(f, 0, 20);
	assert_int_equal(pool_count(f->pool), 24);
	pool_set_max_idle(f->pool, 10);
	assert_int_equal(pool_count(f->pool), 10);
	pool_flush(f->pool);
	assert_int_equal(pool_hosts(f->pool), 0);
}

static void
test_pool_keeps_at_most_pool_max_idle_in_all(void **state)
{
	struct fixture	*f = *state;

	pool_set_max_idle(f->pool, 100000);
	take(f, 0, 0, 150);
	take(f, 1, 150, 150);
	put(f, 0, 300);
	assert_int_equal(pool_count(f->pool), POOL_MAX_IDLE);
	assert_int_equal(pool_hosts(f->pool), 2);
}

static void
test_pool_closes_connections_of_an_older_generation(void **state)
{
	struct fixture	*f = *state;

	take(f, 0, 0, 5);
	pool_set_generation(f->pool, 2);
	put(f, 0, 5);
	assert_int_equal(pool_count(f->pool), 0);
	assert_int_equal(pool_in_use(f->pool), 0);
	assert_int_equal(pool_hosts(f->pool), 0);
}

static bool
pool_empty(struct fixture *f)
{
	return pool_count(f->pool) == 0;
}

static void
test_pool_forgets_idle_connections_the_server_closes(void **state)
{
	struct fixture	*f = *state;
	int		 fd, n = 0;

	take(f, 0, 0, 6);
	put(f, 0, 6);
	assert_int_equal(pool_count(f->pool), 6);
	fcntl(f->lfd[0], F_SETFL, O_NONBLOCK);
	while ((fd = accept(f->lfd[0], NULL, NULL)) != -1) {
		close(fd);
		n++;
	}
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(n, 6);
	run_until(f, pool_empty);
	assert_int_equal(pool_hosts(f->pool), 0);
}

/* The port of a socket's own end, or of its peer's. */
static uint16_t
port_of(int fd, bool peer)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	assert_int_equal((peer ? getpeername : getsockname)(fd,
	    (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

/*
 * Bytes an idle connection got before the loop saw them (a body a broken
 * server sent after a HEAD): the next use must not take them for its
 * answer, so the pool does not hand that connection out, but a quiet one.
 */
static void
test_pool_never_hands_out_a_connection_with_bytes_waiting(void **state)
{
	struct fixture		*f = *state;
	struct pool_host	*use;
	unsigned		 how;
	struct upstream		*u;
	struct pollfd		 pfd;
	int			 sfd[2], stray;

	take(f, 0, 0, 2);
	put(f, 0, 2);
	assert_int_equal(pool_count(f->pool), 2);
	sfd[0] = accept(f->lfd[0], NULL, NULL);
	sfd[1] = accept(f->lfd[0], NULL, NULL);
	assert_true(sfd[0] != -1 && sfd[1] != -1);
	/* The pool hands out the newest first: f->ups[1] gets the bytes. */
	stray = port_of(sfd[0], true) == port_of(upstream_fd(f->ups[1]),
	    false) ?
	    sfd[0] : sfd[1];
	assert_int_equal(write(stray, "stray", 5), 5);
	pfd.fd = upstream_fd(f->ups[1]);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	/* No turn of the loop: the pool's read callback has not run. */
	u = pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false, 1,
	    &use, &how);
	assert_ptr_equal(u, f->ups[0]);
	assert_int_equal(pool_count(f->pool), 0);
	pool_drop(f->pool, use, u);
	close(sfd[0]);
	close(sfd[1]);
}

/*
 * Given back after an answer without a body by rule, a connection serves
 * its own client at once, another one only after POOL_SETTLE_MS: what the
 * server sends meanwhile (a body anyway) closes it while it is idle.
 */
static void
test_pool_lets_a_settling_connection_serve_only_its_client(void **state)
{
	struct fixture		*f = *state;
	struct pool_host	*use;
	unsigned		 how;
	struct upstream		*u;
	struct timespec		 pause = { 0, (POOL_SETTLE_MS + 20) * 1000000L };
	int			 sfd;

	take(f, 0, 0, 1);
	pool_put(f->pool, f->uses[0], f->ups[0], 7, POOL_SETTLE);
	assert_null(pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false,
	    8, &use, &how));
	pool_drop(f->pool, use, NULL);
	assert_int_equal(pool_count(f->pool), 1);
	/* Its own client has it, told that it still settles. */
	u = pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false, 7, &use,
	    &how);
	assert_ptr_equal(u, f->ups[0]);
	assert_true(how & POOL_SETTLE);
	pool_put(f->pool, use, u, 7, POOL_SETTLE);
	nanosleep(&pause, NULL);
	u = pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false, 8, &use,
	    &how);
	assert_ptr_equal(u, f->ups[0]);
	assert_false(how & POOL_SETTLE);

	/* Settling again, and the server sends a body after all. */
	pool_put(f->pool, use, u, 8, POOL_SETTLE);
	sfd = accept(f->lfd[0], NULL, NULL);
	assert_true(sfd != -1);
	assert_int_equal(write(sfd, "late body", 9), 9);
	run_until(f, pool_empty);
	assert_int_equal(pool_count(f->pool), 0);
	close(sfd);
}

/*
 * One that carried a request body serves only its own client for as long
 * as it is kept, and goes when that client's connection ends.
 */
static void
test_pool_keeps_a_connection_that_carried_a_body_for_its_client(
    void **state)
{
	struct fixture		*f = *state;
	struct pool_host	*use;
	unsigned		 how;
	struct upstream		*u;
	struct timespec		 pause = { 0, (POOL_SETTLE_MS + 20) * 1000000L };

	take(f, 0, 0, 1);
	pool_put(f->pool, f->uses[0], f->ups[0], 7, POOL_OWNER_ONLY);
	/* Past any settling: still not another client's. */
	nanosleep(&pause, NULL);
	assert_null(pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false,
	    8, &use, &how));
	assert_int_equal(how, 0);
	pool_drop(f->pool, use, NULL);
	assert_int_equal(pool_count(f->pool), 1);
	u = pool_get(f->pool, f->rc, "127.0.0.1", f->port[0], false, 7, &use,
	    &how);
	assert_ptr_equal(u, f->ups[0]);
	assert_int_equal(how, POOL_OWNER_ONLY);
	pool_put(f->pool, use, u, 7, how);
	/* Another client's connection ending leaves it; its own does not. */
	pool_forget(f->pool, 8);
	assert_int_equal(pool_count(f->pool), 1);
	pool_forget(f->pool, 7);
	assert_int_equal(pool_count(f->pool), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_pool_keeps_as_many_idle_as_a_host_had_in_use_at_once,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_counts_a_dial_in_progress_as_in_use,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_closes_idle_beyond_the_recent_need_after_the_window,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_limit_in_all_holds_across_hosts,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_keeps_at_most_pool_max_idle_in_all,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_closes_connections_of_an_older_generation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_forgets_idle_connections_the_server_closes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_never_hands_out_a_connection_with_bytes_waiting,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_lets_a_settling_connection_serve_only_its_client,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pool_keeps_a_connection_that_carried_a_body_for_its_client,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
