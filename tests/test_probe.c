/*
 * Tests of the pin tool's prober over real sockets on 127.0.0.1: it
 * refuses, as loops, exactly the addresses the daemon counts as its own
 * under the configuration it was given (none without one), a wildcard
 * listener taking only the families its socket takes, and a server
 * that never answers ends the run after connect_timeout.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "probe.h"
#include "runconf.h"
#include "upstream.h"
#include "xmalloc.h"

struct fixture {
	struct conf	*conf;
	int		 fd;		/* bound to port; listening or not */
	uint16_t	 port;
	char		 addr[32];	/* "127.0.0.1:port" */
};

/* A socket bound to a free port of 127.0.0.1, listening when asked. */
static int
bound(bool listening, uint16_t *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (listening)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* The default configuration, with a bound socket that refuses. */
static int
setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->conf = conf_new_default();
	fx->conf->connect_timeout_ms = 200;
	fx->fd = bound(false, &fx->port);
	snprintf(fx->addr, sizeof(fx->addr), "127.0.0.1:%u", fx->port);
	/* The upstream code's warnings are not what is tested. */
	log_set_level(LL_ERROR);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	close(fx->fd);
	conf_unref(fx->conf);
	free(fx);
	return 0;
}

/* Set a, an address of the configuration, from text. */
static void
set_addr(struct conf_addr *a, const char *text)
{
	char	 err[128];

	if (!cv_addr(text, a, err, sizeof(err)))
		fail_msg("cv_addr %s: %s", text, err);
}

/*
 * Dial 127.0.0.1:port with a prober for probe_conf (NULL: none), under a
 * generation of fx->conf; the status, and the reason into reason.
 */
static enum upstream_status
dial(struct fixture *fx, const struct conf *probe_conf, char *reason,
    size_t len)
{
	struct probe_target	 t;
	struct runconf		*rc;
	struct probe		*p;
	struct upstream		*u;
	enum upstream_status	 st;
	char			 err[256] = "";

	rc = runconf_new_upstream(fx->conf, 1, err, sizeof(err));
	if (rc == NULL)
		fail_msg("runconf_new_upstream: %s", err);
	p = probe_new(probe_conf, err, sizeof(err));
	if (p == NULL)
		fail_msg("probe_new: %s", err);
	memset(&t, 0, sizeof(t));
	t.host = "127.0.0.1";
	t.port = fx->port;
	u = probe_run(p, rc, &t, &st);
	assert_non_null(u);
	snprintf(reason, len, "%s", upstream_reason(u));
	upstream_free(u);
	probe_free(p);
	runconf_unref(rc);
	return st;
}

static void
test_probe_refuses_a_listen_address_as_a_loop(void **state)
{
	struct fixture	*fx = *state;
	char		 reason[256];

	set_addr(&fx->conf->listen[0], fx->addr);
	assert_int_equal(dial(fx, fx->conf, reason, sizeof(reason)),
	    UPSTREAM_LOOP);
	assert_non_null(strstr(reason, "the proxy's own listening address"));
}

static void
test_probe_refuses_transparent_and_stats_listen_as_loops(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*c = fx->conf;
	char		 reason[256];

	c->transparent = xcalloc(1, sizeof(*c->transparent));
	c->ntransparent = 1;
	set_addr(&c->transparent[0], fx->addr);
	assert_int_equal(dial(fx, c, reason, sizeof(reason)), UPSTREAM_LOOP);
	set_addr(&c->transparent[0], "127.0.0.1:1");
	c->has_stats_listen = true;
	set_addr(&c->stats_listen, fx->addr);
	assert_int_equal(dial(fx, c, reason, sizeof(reason)), UPSTREAM_LOOP);
}

/*
 * A wildcard listener takes its own family only, an IPv6 one IPv4 too
 * unless its socket is IPv6-only (as stats_listen's is): a loopback
 * address of the other family on its port is another server.
 */
static void
test_wildcard_listener_takes_its_families_only(void **state)
{
	struct conf_addr	 self, dial;

	(void)state;
	set_addr(&self, "0.0.0.0:8080");
	set_addr(&dial, "127.0.0.2:8080");
	assert_true(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	set_addr(&dial, "127.0.0.1:8081");
	assert_false(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	set_addr(&dial, "[::1]:8080");
	assert_false(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	set_addr(&dial, "[::ffff:127.0.0.1]:8080");
	assert_true(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));

	set_addr(&self, "[::]:8080");
	set_addr(&dial, "[::1]:8080");
	assert_true(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	set_addr(&dial, "127.0.0.1:8080");
	assert_true(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	self.v6only = true;
	assert_false(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
	set_addr(&dial, "[::1]:8080");
	assert_true(upstream_addr_is_self((struct sockaddr *)&dial.ss, &self,
	    1));
}

/* The prober knows stats_listen's socket is IPv6-only. */
static void
test_probe_dials_ipv4_beside_an_ipv6_stats_wildcard(void **state)
{
	struct fixture	*fx = *state;
	struct conf	*c = fx->conf;
	char		 reason[256], text[32];

	snprintf(text, sizeof(text), "[::]:%u", fx->port);
	c->has_stats_listen = true;
	set_addr(&c->stats_listen, text);
	assert_int_equal(dial(fx, c, reason, sizeof(reason)),
	    UPSTREAM_CONNECT_FAILED);
	assert_non_null(strstr(reason, "Connection refused"));
	set_addr(&c->listen[0], text);
	assert_int_equal(dial(fx, c, reason, sizeof(reason)), UPSTREAM_LOOP);
}

static void
test_probe_without_a_conf_dials_any_address(void **state)
{
	struct fixture	*fx = *state;
	char		 reason[256];

	set_addr(&fx->conf->listen[0], fx->addr);
	/* The socket is bound, not listening: the kernel refuses. */
	assert_int_equal(dial(fx, NULL, reason, sizeof(reason)),
	    UPSTREAM_CONNECT_FAILED);
	assert_non_null(strstr(reason, "Connection refused"));
}

static void
test_probe_ends_a_silent_handshake_after_connect_timeout(void **state)
{
	struct fixture	*fx = *state;
	char		 reason[256];

	close(fx->fd);
	fx->fd = bound(true, &fx->port);
	assert_int_equal(dial(fx, fx->conf, reason, sizeof(reason)),
	    UPSTREAM_TIMEOUT);
	assert_string_equal(reason, "no TLS handshake within 200ms");
}

#define FX_TEST(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_probe_refuses_a_listen_address_as_a_loop),
		FX_TEST(test_probe_refuses_transparent_and_stats_listen_as_loops),
		cmocka_unit_test(test_wildcard_listener_takes_its_families_only),
		FX_TEST(test_probe_dials_ipv4_beside_an_ipv6_stats_wildcard),
		FX_TEST(test_probe_without_a_conf_dials_any_address),
		FX_TEST(test_probe_ends_a_silent_handshake_after_connect_timeout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
