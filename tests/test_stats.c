/*
 * Tests of the metrics endpoint over real sockets on 127.0.0.1: the server
 * and a raw client share one event loop, which runs until the server has
 * answered and closed the connection.
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

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_value.h"
#include "metrics.h"
#include "stats.h"
#include "xmalloc.h"

/* A server on 127.0.0.1 with an ephemeral port and its metrics. */
struct fixture {
	struct event_base	*base;
	struct metrics		*metrics;
	struct stats		*stats;
	struct conf_addr	 addr;
	uint16_t		 port;
	int			 refreshes;
};

/* One exchange: what the client received, and whether it finished. */
struct exchange {
	struct evbuffer	*in;
	bool		 closed;
	bool		 timed_out;
};

static void
loopback_addr(struct conf_addr *a, uint16_t port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a->ss;

	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sslen = sizeof(*sin);
	snprintf(a->text, sizeof(a->text), "127.0.0.1:%u", port);
}

static void
count_refresh(struct metrics *m, void *arg)
{
	struct fixture	*f = arg;

	f->refreshes++;
	metrics_set(m, METRIC_LEAFCERT_CACHE_HITS, 99);
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[256];

	f = xcalloc(1, sizeof(*f));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->metrics = metrics_new();
	loopback_addr(&f->addr, 0);
	f->stats = stats_new(f->base, &f->addr, f->metrics, err, sizeof(err));
	if (f->stats == NULL)
		fail_msg("%s", err);
	f->port = stats_port(f->stats);
	assert_int_not_equal(f->port, 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	stats_free(f->stats);
	metrics_free(f->metrics);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct exchange	*x = arg;

	evbuffer_add_buffer(x->in, bufferevent_get_input(bev));
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct exchange	*x = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		evbuffer_add_buffer(x->in, bufferevent_get_input(bev));
		x->closed = true;
		event_base_loopbreak(bufferevent_get_base(bev));
	}
}

static void
client_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct exchange	*x = arg;

	(void)fd;
	(void)what;
	x->timed_out = true;
}

/*
 * Send request as is and return everything the server sent until it
 * closed the connection (free it). A stuck exchange fails after 10 s.
 */
static char *
fetch(struct fixture *f, const char *request)
{
	struct exchange		 x = { NULL, false, false };
	struct bufferevent	*bev;
	struct event		*guard;
	struct sockaddr_in	 sin;
	struct timeval		 tv = { 10, 0 };
	char			*out;
	size_t			 len;

	x.in = evbuffer_new();
	bev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(bev);
	bufferevent_setcb(bev, client_read_cb, NULL, client_event_cb, &x);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bufferevent_socket_connect(bev,
	    (struct sockaddr *)&sin, sizeof(sin)), 0);
	bufferevent_write(bev, request, strlen(request));
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	guard = evtimer_new(f->base, client_timeout_cb, &x);
	evtimer_add(guard, &tv);
	while (!x.closed && !x.timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(guard);
	bufferevent_free(bev);
	assert_false(x.timed_out);
	len = evbuffer_get_length(x.in);
	out = xmalloc(len + 1);
	evbuffer_remove(x.in, out, len);
	out[len] = '\0';
	evbuffer_free(x.in);
	return out;
}

/* The response starts with status, e.g. "HTTP/1.0 404 ". */
static void
assert_status(const char *response, const char *status)
{
	if (strncmp(response, status, strlen(status)) != 0)
		fail_msg("expected \"%s\", got: %s", status, response);
}

/* The body of a response: what follows the blank line. */
static const char *
body_of(const char *response)
{
	const char	*p;

	p = strstr(response, "\r\n\r\n");
	assert_non_null(p);
	return p + 4;
}

static char *
rendered(const struct metrics *m)
{
	struct evbuffer	*b;
	char		*text;
	size_t		 len;

	b = evbuffer_new();
	metrics_render(m, b);
	len = evbuffer_get_length(b);
	text = xmalloc(len + 1);
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	evbuffer_free(b);
	return text;
}

static void
test_stats_serve_the_metrics_as_prometheus_text(void **state)
{
	struct fixture	*f = *state;
	char		*resp, *expected;

	metrics_inc(f->metrics, METRIC_CONNECTIONS_TOTAL);
	metrics_add(f->metrics, METRIC_BYTES_UP, 512);
	resp = fetch(f, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n\r\n");
	assert_status(resp, "HTTP/1.1 200 OK\r\n");
	assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; "
	    "version=0.0.4; charset=utf-8\r\n"));
	expected = rendered(f->metrics);
	assert_string_equal(body_of(resp), expected);
	assert_non_null(strstr(body_of(resp),
	    "\npinproxy_connections_total 1\n"));
	assert_non_null(strstr(body_of(resp),
	    "\npinproxy_bytes_total{direction=\"up\"} 512\n"));
	free(expected);
	free(resp);
}

static void
test_stats_refresh_the_metrics_before_each_answer(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	stats_set_refresh(f->stats, count_refresh, f);
	resp = fetch(f, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_int_equal(f->refreshes, 1);
	assert_non_null(strstr(body_of(resp),
	    "\npinproxy_leafcert_cache_hits_total 99\n"));
	free(resp);
	resp = fetch(f, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_int_equal(f->refreshes, 2);
	free(resp);
}

static void
test_stats_ignore_the_query_string(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	resp = fetch(f, "GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 200 OK\r\n");
	free(resp);
}

static void
test_stats_answer_head_without_a_body(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	resp = fetch(f, "HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 200 OK\r\n");
	assert_string_equal(body_of(resp), "");
	free(resp);
}

static void
test_stats_answer_404_for_any_other_path(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	resp = fetch(f, "GET / HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 404 ");
	assert_null(strstr(resp, "pinproxy_"));
	free(resp);
	resp = fetch(f, "GET /metrics/ HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 404 ");
	free(resp);
	resp = fetch(f, "POST /other HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 404 ");
	free(resp);
}

static void
test_stats_answer_405_for_other_methods(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	resp = fetch(f, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\n"
	    "a=b");
	assert_status(resp, "HTTP/1.0 405 ");
	assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
	assert_null(strstr(resp, "pinproxy_"));
	free(resp);
	resp = fetch(f, "DELETE /metrics HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 405 ");
	free(resp);
	resp = fetch(f, "PATCH /metrics HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 405 ");
	free(resp);
}

static void
test_stats_refuse_a_request_head_over_the_limit(void **state)
{
	struct fixture	*f = *state;
	char		*req, *pad, *resp;

	pad = xmalloc(STATS_MAX_HEADERS + 1);
	memset(pad, 'a', STATS_MAX_HEADERS);
	pad[STATS_MAX_HEADERS] = '\0';
	req = xasprintf("GET /metrics HTTP/1.0\r\nX-Pad: %s\r\n\r\n", pad);
	resp = fetch(f, req);
	assert_null(strstr(resp, " 200 OK\r\n"));
	assert_null(strstr(resp, "pinproxy_"));
	free(resp);
	free(req);
	free(pad);
}

static void
test_stats_refuse_a_body_over_the_limit(void **state)
{
	struct fixture	*f = *state;
	char		*req, *resp;

	req = xasprintf("POST /metrics HTTP/1.0\r\nContent-Length: %d\r\n\r\n",
	    STATS_MAX_BODY * 4);
	resp = fetch(f, req);
	assert_status(resp, "HTTP/1.0 413 ");
	free(resp);
	free(req);
}

/* A filter that refuses everyone and remembers whom it was asked about. */
static bool
refuse_all(const struct sockaddr *sa, void *arg)
{
	struct sockaddr_in	*seen = arg;

	memcpy(seen, sa, sizeof(*seen));
	return false;
}

static bool
allow_all(const struct sockaddr *sa, void *arg)
{
	(void)sa;
	(void)arg;
	return true;
}

/* A blocking TCP connection to the server, left idle. */
static int
idle_client(struct fixture *f)
{
	struct sockaddr_in	 sin;
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Run the loop until the server holds n connections (10 s at most). */
static void
wait_nconns(struct fixture *f, size_t n)
{
	struct exchange	 x = { NULL, false, false };
	struct event	*guard;
	struct timeval	 tv = { 10, 0 };

	guard = evtimer_new(f->base, client_timeout_cb, &x);
	evtimer_add(guard, &tv);
	while (stats_nconns(f->stats) != n && !x.timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(guard);
	assert_int_equal(stats_nconns(f->stats), n);
}

static void
test_stats_close_a_client_the_filter_refuses(void **state)
{
	struct fixture		*f = *state;
	struct sockaddr_in	 seen;
	char			*resp;

	memset(&seen, 0, sizeof(seen));
	stats_set_allow(f->stats, refuse_all, &seen);
	resp = fetch(f, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_string_equal(resp, "");
	assert_int_equal(seen.sin_family, AF_INET);
	assert_int_equal(seen.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(stats_nconns(f->stats), 0);
	free(resp);
	stats_set_allow(f->stats, allow_all, NULL);
	resp = fetch(f, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 200 OK\r\n");
	free(resp);
}

/*
 * With STATS_MAX_CONNS open, a new connection closes the oldest still
 * reading its request: clients that send nothing cannot keep a scraper
 * out.
 */
static void
test_stats_make_room_by_closing_the_oldest_idle_one(void **state)
{
	struct fixture	*f = *state;
	int		 fds[STATS_MAX_CONNS];
	char		*resp, c;
	size_t		 i;

	for (i = 0; i < STATS_MAX_CONNS; i++)
		fds[i] = idle_client(f);
	wait_nconns(f, STATS_MAX_CONNS);
	resp = fetch(f, "GET /metrics HTTP/1.0\r\n\r\n");
	assert_status(resp, "HTTP/1.0 200 OK\r\n");
	assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
	free(resp);
	assert_true(stats_nconns(f->stats) <= STATS_MAX_CONNS);
	/* The oldest idle one was closed; the next oldest was not. */
	assert_int_equal(read(fds[0], &c, 1), 0);
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(read(fds[1], &c, 1), -1);
	assert_int_equal(errno, EAGAIN);
	for (i = 0; i < STATS_MAX_CONNS; i++)
		close(fds[i]);
	wait_nconns(f, 0);
}

static void
test_stats_answer_400_for_a_bad_request_line(void **state)
{
	struct fixture	*f = *state;
	char		*resp;

	resp = fetch(f, "GET /metrics\r\n\r\n");
	assert_status(resp, "HTTP/1.1 400 ");
	assert_null(strstr(resp, "pinproxy_"));
	free(resp);
	resp = fetch(f, "GET /metrics HTTP/2.0\r\n\r\n");
	assert_status(resp, "HTTP/1.1 400 ");
	free(resp);
}

static void
test_stats_report_an_address_in_use(void **state)
{
	struct fixture	*f = *state;
	struct conf_addr addr;
	char		 err[256], want[64];

	loopback_addr(&addr, f->port);
	assert_null(stats_new(f->base, &addr, f->metrics, err, sizeof(err)));
	snprintf(want, sizeof(want), "cannot listen on 127.0.0.1:%u: ",
	    f->port);
	assert_int_equal(strncmp(err, want, strlen(want)), 0);
	assert_non_null(strstr(err, "in use"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_stats_serve_the_metrics_as_prometheus_text, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_refresh_the_metrics_before_each_answer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_ignore_the_query_string, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_answer_head_without_a_body, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_answer_404_for_any_other_path, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_answer_405_for_other_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_refuse_a_request_head_over_the_limit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_refuse_a_body_over_the_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_close_a_client_the_filter_refuses, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_make_room_by_closing_the_oldest_idle_one, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_answer_400_for_a_bad_request_line, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_stats_report_an_address_in_use, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
