/*
 * Tests of the daemon's event loop: without a window it sleeps whenever
 * nothing is ready; with one it polls on after a pass that ran a
 * callback, for as long as callbacks keep coming and then for the window,
 * and then sleeps again; the window is read before every pass (a reload
 * changes it); it stops where event_base_dispatch() would.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "evloop.h"

struct fixture {
	struct event_base	*base;
	struct event		*tick;
	struct event		*stop;
	uint64_t		 window_us;
	int			 ticks;
	int			 ticks_max;	/* the tick stops after these */
	bool			 window_off_after_tick;
	bool			 stop_breaks;	/* loopbreak, not loopexit */
	long			 tick_exits_ms;	/* > 0: the tick asks an exit */
	long			 tick_stops_ms;	/* > 0: the tick moves the stop */
	struct event		*guard;		/* pending after the stop */
	bool			 guard_fired;
};

static uint64_t
window(void *arg)
{
	struct fixture	*f = arg;

	return f->window_us;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*f = arg;

	if (++f->ticks >= f->ticks_max)
		event_del(f->tick);
	if (f->window_off_after_tick)
		f->window_us = 0;
	if (f->tick_exits_ms > 0) {
		struct timeval	 tv = { 0, f->tick_exits_ms * 1000 };

		event_base_loopexit(f->base, &tv);
	}
	if (f->tick_stops_ms > 0) {
		struct timeval	 tv = { 0, f->tick_stops_ms * 1000 };

		evtimer_add(f->stop, &tv);
	}
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*f = arg;

	if (f->stop_breaks)
		event_base_loopbreak(f->base);
	else
		event_base_loopexit(f->base, NULL);
}

/* A loop that missed its stop ends here, its test failing. */
static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture	*f = arg;

	f->guard_fired = true;
	event_base_loopexit(f->base, NULL);
}

static struct timeval
ms(long n)
{
	struct timeval	 tv = { n / 1000, (n % 1000) * 1000 };

	return tv;
}

/* A tick every tick_ms, ticks_max times, and the stop at stop_ms. */
static void
setup(struct fixture *f, uint64_t window_us, long tick_ms, int ticks_max,
    long stop_ms)
{
	struct timeval	 tv;

	memset(f, 0, sizeof(*f));
	f->base = event_base_new();
	assert_non_null(f->base);
	f->window_us = window_us;
	f->ticks_max = ticks_max;
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, f);
	f->stop = evtimer_new(f->base, stop_cb, f);
	tv = ms(tick_ms);
	event_add(f->tick, &tv);
	tv = ms(stop_ms);
	event_add(f->stop, &tv);
}

static void
teardown(struct fixture *f)
{
	if (f->guard != NULL)
		event_free(f->guard);
	event_free(f->tick);
	event_free(f->stop);
	event_base_free(f->base);
}

static uint64_t
clock_ms(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t
cpu_ms(void)
{
	return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

static void
test_evloop_without_a_window_never_polls(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };

	setup(&f, 0, 5, 3, 200);
	assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
	assert_int_equal(f.ticks, 3);
	assert_int_equal(st.polls, 0);
	/* Three ticks and the stop, each after a sleep. */
	assert_int_equal(st.waits, 4);
	teardown(&f);
}

static void
test_evloop_polls_for_the_window_after_work_then_sleeps(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };
	uint64_t		 cpu;

	setup(&f, 20000, 5, 1, 300);
	cpu = cpu_ms();
	assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
	cpu = cpu_ms() - cpu;
	assert_int_equal(f.ticks, 1);
	/* 20 ms of passes that did not sleep... */
	assert_true(st.polls > 10);
	/* ...then one sleep until the stop, not 280 ms of polling. */
	assert_int_equal(st.waits, 2);
	assert_true(cpu < 150);
	teardown(&f);
}

static void
test_evloop_work_while_polling_keeps_it_polling(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };

	/*
	 * Ticks at 20, 40, ... 200 ms, each within the 100 ms window of the
	 * one before (80 ms to spare for a loaded machine): only the first
	 * and the stop come after a sleep. A window counted from the first
	 * tick alone would end at 120 ms, and the tick at 140 would come
	 * after a sleep too.
	 */
	setup(&f, 100000, 20, 10, 600);
	assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
	assert_int_equal(f.ticks, 10);
	assert_true(st.polls > 0);
	assert_int_equal(st.waits, 2);
	teardown(&f);
}

static void
test_evloop_reads_the_window_before_every_pass(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };

	/* As a reload to busy_poll = 0 would, the tick turns polling off. */
	setup(&f, 20000, 5, 1, 200);
	f.window_off_after_tick = true;
	assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
	assert_int_equal(st.polls, 0);
	assert_int_equal(st.waits, 2);
	teardown(&f);
}

static void
test_evloop_stops_on_an_exit_or_a_break_while_polling(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };
	int			 i;

	/*
	 * The tick at 5 ms starts polling and moves the stop to 7 ms after
	 * itself, within its window; the stop ends the loop with the guard
	 * at 1 s still pending.
	 */
	for (i = 0; i < 2; i++) {
		struct timeval	 tv = ms(1000);

		setup(&f, 20000, 5, 1, 900);
		f.tick_stops_ms = 7;
		f.stop_breaks = i == 1;
		f.guard = evtimer_new(f.base, guard_cb, &f);
		evtimer_add(f.guard, &tv);
		assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
		assert_false(f.guard_fired);
		assert_int_equal(f.ticks, 1);
		assert_true(st.polls > 0);
		teardown(&f);
		memset(&st, 0, sizeof(st));
	}
}

static void
test_evloop_stops_on_an_exit_after_a_delay(void **state)
{
	struct fixture		 f;
	struct evloop_stats	 st = { 0, 0 };
	uint64_t		 t;

	/*
	 * The tick at 5 ms asks for an exit 30 ms later, after its 20 ms
	 * of polling: the loop sleeps until then and stops, long before the
	 * stop timer at 1 s.
	 */
	setup(&f, 20000, 5, 1, 1000);
	f.tick_exits_ms = 30;
	t = clock_ms(CLOCK_MONOTONIC);
	assert_int_equal(evloop_run(f.base, window, &f, &st), 0);
	t = clock_ms(CLOCK_MONOTONIC) - t;
	assert_int_equal(f.ticks, 1);
	assert_true(t >= 34 && t < 500);
	assert_true(st.polls > 0);
	/* The first tick's and the exit's (one, if the exit came polling). */
	assert_true(st.waits <= 2);
	teardown(&f);
}

static void
test_evloop_returns_when_no_event_is_left(void **state)
{
	struct event_base	*base = event_base_new();
	struct evloop_stats	 st = { 0, 0 };
	struct fixture		 f;

	memset(&f, 0, sizeof(f));
	f.window_us = 20000;
	assert_non_null(base);
	assert_int_equal(evloop_run(base, window, &f, &st), 0);
	assert_int_equal(st.waits, 1);
	assert_int_equal(evloop_run(base, NULL, NULL, NULL), 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evloop_without_a_window_never_polls),
		cmocka_unit_test(
		    test_evloop_polls_for_the_window_after_work_then_sleeps),
		cmocka_unit_test(test_evloop_work_while_polling_keeps_it_polling),
		cmocka_unit_test(test_evloop_reads_the_window_before_every_pass),
		cmocka_unit_test(
		    test_evloop_stops_on_an_exit_or_a_break_while_polling),
		cmocka_unit_test(test_evloop_stops_on_an_exit_after_a_delay),
		cmocka_unit_test(test_evloop_returns_when_no_event_is_left),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
