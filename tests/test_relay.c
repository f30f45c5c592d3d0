/*
 * Tests of the socket relay used for blind tunnels, over real TCP
 * connections on 127.0.0.1: bytes the bufferevents held go first, bulk data
 * crosses intact both ways through pipes that are closed afterwards, a
 * close is delivered, and idle time and resets end the relay with a reason.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

/* The longest any test waits for the relay. */
#define DEADLINE_SEC	10

/*
 * app <-> [client bev | relay | server bev] <-> origin: app and origin are
 * the test's own non-blocking ends.
 */
struct fixture {
	struct event_base	*base;
	struct bufferevent	*client;
	struct bufferevent	*server;
	int			 app;
	int			 origin;
	struct relay		*relay;
	const char		*why;		/* set when the relay ended */
	uint64_t		 up;
	uint64_t		 down;
};

/* A connected pair of TCP sockets on 127.0.0.1, both non-blocking. */
static void
tcp_pair(int *a, int *b)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 l;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((l = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	assert_true((*a = socket(AF_INET, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(*a, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_true((*b = accept(l, NULL, NULL)) != -1);
	close(l);
	assert_int_equal(evutil_make_socket_nonblocking(*a), 0);
	assert_int_equal(evutil_make_socket_nonblocking(*b), 0);
}

static int
setup(void **state)
{
	struct fixture	*f;
	int		 c, s;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->base = event_base_new();
	tcp_pair(&f->app, &c);
	tcp_pair(&s, &f->origin);
	f->client = bufferevent_socket_new(f->base, c, BEV_OPT_CLOSE_ON_FREE);
	f->server = bufferevent_socket_new(f->base, s, BEV_OPT_CLOSE_ON_FREE);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	relay_free(f->relay);
	bufferevent_free(f->client);
	bufferevent_free(f->server);
	close(f->app);
	close(f->origin);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void
done_cb(struct relay *r, const char *why, void *arg)
{
	struct fixture	*f = arg;

	f->why = why;
	relay_counts(r, &f->up, &f->down);
	event_base_loopbreak(f->base);
}

static void
start(struct fixture *f, uint64_t idle_ms)
{
	f->relay = relay_new(f->base, f->client, f->server, idle_ms,
	    done_cb, f);
	assert_non_null(f->relay);
}

static double
now(void)
{
	struct timeval	 tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/*
 * Write out[0..outlen) into src while reading what arrives at dst into
 * in (up to inlen bytes), running the loop in between, until all of it
 * arrived or the deadline passes. Returns the bytes read.
 */
static size_t
transfer(struct fixture *f, int src, const unsigned char *out, size_t outlen,
    int dst, unsigned char *in, size_t inlen)
{
	size_t	 sent = 0, got = 0;
	ssize_t	 n;
	double	 end = now() + DEADLINE_SEC;

	while (got < inlen && now() < end && f->why == NULL) {
		if (sent < outlen) {
			n = send(src, out + sent, outlen - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		n = recv(dst, in + got, inlen - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

/* Run the loop until the relay ends or the deadline passes. */
static void
run_until_end(struct fixture *f)
{
	struct timeval	 tv = { DEADLINE_SEC, 0 };

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

/* How many of this process's descriptors are pipes. */
static int
pipe_count(void)
{
	DIR		*d;
	struct dirent	*e;
	struct stat	 st;
	char		 path[300];
	int		 n = 0;

	assert_non_null(d = opendir("/proc/self/fd"));
	while ((e = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
			n++;
	}
	closedir(d);
	return n;
}

static void
fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 131 + seed) % 251);
}

static void
test_relay_sockets_sends_the_bytes_the_bufferevents_held_first(
    void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[64];
	size_t		 n;

	/* Read by the bufferevents before the relay. */
	assert_int_equal(send(f->app, "hello ", 6, 0), 6);
	assert_int_equal(send(f->origin, "banner ", 7, 0), 7);
	bufferevent_enable(f->client, EV_READ);
	bufferevent_enable(f->server, EV_READ);
	while (evbuffer_get_length(bufferevent_get_input(f->client)) < 6 ||
	    evbuffer_get_length(bufferevent_get_input(f->server)) < 7)
		event_base_loop(f->base, EVLOOP_ONCE);
	/* Queued and not yet written (a 200 for the app). */
	bufferevent_disable(f->client, EV_WRITE);
	bufferevent_disable(f->server, EV_WRITE);
	bufferevent_write(f->server, "early ", 6);
	bufferevent_write(f->client, "200 ", 4);
	start(f, 60000);

	n = transfer(f, f->app, (const unsigned char *)"world", 5, f->origin,
	    buf, 17);
	assert_int_equal(n, 17);
	assert_memory_equal(buf, "early hello world", 17);
	n = transfer(f, f->origin, (const unsigned char *)"ok", 2, f->app,
	    buf, 13);
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "200 banner ok", 13);
	assert_null(f->why);
	relay_counts(f->relay, &f->up, &f->down);
	/* Bytes read from each side count; bytes queued before do not. */
	assert_int_equal(f->up, 11);
	assert_int_equal(f->down, 9);
}

static void
test_relay_sockets_moves_8_mib_each_way_intact_through_pipes(void **state)
{
	struct fixture	*f = *state;
	size_t		 len = 8 << 20;
	unsigned char	*out, *in;
	int		 pipes;

	out = malloc(len);
	in = malloc(len);
	assert_non_null(out);
	assert_non_null(in);
	pipes = pipe_count();
	start(f, 60000);

	fill(out, len, 7);
	assert_int_equal(transfer(f, f->app, out, len, f->origin, in, len),
	    len);
	assert_memory_equal(in, out, len);
	fill(out, len, 11);
	assert_int_equal(transfer(f, f->origin, out, len, f->app, in, len),
	    len);
	assert_memory_equal(in, out, len);
	relay_counts(f->relay, &f->up, &f->down);
	assert_int_equal(f->up, len);
	assert_int_equal(f->down, len);
	/* Bulk data went through one pipe each way... */
	assert_int_equal(pipe_count(), pipes + 4);
	/* ...which the relay closes. */
	relay_free(f->relay);
	f->relay = NULL;
	assert_int_equal(pipe_count(), pipes);
	free(out);
	free(in);
}

static void
test_relay_sockets_keeps_small_exchanges_off_pipes(void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[512];
	int		 i, pipes;

	pipes = pipe_count();
	start(f, 60000);
	for (i = 0; i < 20; i++) {
		fill(buf, sizeof(buf), (unsigned int)i);
		assert_int_equal(transfer(f, f->app, buf, sizeof(buf),
		    f->origin, buf, sizeof(buf)), sizeof(buf));
		assert_int_equal(transfer(f, f->origin, buf, sizeof(buf),
		    f->app, buf, sizeof(buf)), sizeof(buf));
	}
	assert_int_equal(pipe_count(), pipes);
}

static void
test_relay_sockets_delivers_what_the_closing_side_sent_then_ends(
    void **state)
{
	struct fixture	*f = *state;
	unsigned char	 buf[8];
	ssize_t		 n;
	size_t		 got = 0;
	double		 end = now() + DEADLINE_SEC;

	start(f, 60000);
	assert_int_equal(send(f->app, "bye", 3, 0), 3);
	assert_int_equal(shutdown(f->app, SHUT_WR), 0);
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "closed");
	assert_int_equal(f->up, 3);
	while (got < 3 && now() < end) {
		n = recv(f->origin, buf + got, sizeof(buf) - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "bye", 3);
}

static void
test_relay_sockets_ends_after_idle_time_without_traffic(void **state)
{
	struct fixture	*f = *state;
	double		 t0;

	/* 300 ms: cut to 0 s or rounded to 1 s, it would end out of range. */
	start(f, 300);
	t0 = now();
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "idle timeout");
	assert_true(now() - t0 >= 0.29);
	assert_true(now() - t0 < 0.9);
}

static void
test_relay_sockets_reports_a_reset_by_the_server(void **state)
{
	struct fixture	*f = *state;
	struct linger	 lin = { 1, 0 };

	start(f, 60000);
	assert_int_equal(setsockopt(f->origin, SOL_SOCKET, SO_LINGER, &lin,
	    sizeof(lin)), 0);
	close(f->origin);
	f->origin = -1;
	run_until_end(f);
	assert_non_null(f->why);
	assert_string_equal(f->why, "server error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_sends_the_bytes_the_bufferevents_held_first,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_moves_8_mib_each_way_intact_through_pipes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_keeps_small_exchanges_off_pipes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_delivers_what_the_closing_side_sent_then_ends,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_ends_after_idle_time_without_traffic,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_relay_sockets_reports_a_reset_by_the_server,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
