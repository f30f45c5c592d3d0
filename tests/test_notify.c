/*
 * Tests of sd_notify: a message reaches an abstract socket whose name
 * fills sun_path (108 bytes, which needs no terminating NUL), a longer
 * name and one neither abstract nor absolute are refused, and an unset
 * NOTIFY_SOCKET sends nothing.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "notify.h"

/* An abstract datagram socket named "@" NAME of len bytes in all. */
static int
abstract_listener(char *env, size_t len)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(env, len + 1, "@pinproxy-test-notify-%ld-", (long)getpid());
	memset(env + strlen(env), 'x', len - strlen(env));
	env[len] = '\0';
	memcpy(sun.sun_path + 1, env + 1, len - 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void
test_notify_reaches_an_abstract_name_filling_sun_path(void **state)
{
	struct sockaddr_un	 sun;
	char			 env[sizeof(sun.sun_path) + 1], buf[64];
	ssize_t			 n;
	int			 fd;

	(void)state;
	fd = abstract_listener(env, sizeof(sun.sun_path));
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);
	assert_true(notify_send("READY=1"));
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "READY=1", 7);
	close(fd);
}

static void
test_notify_refuses_names_it_cannot_use(void **state)
{
	char	 env[256];

	(void)state;
	memset(env, 'x', sizeof(env) - 1);
	env[0] = '@';
	env[sizeof(env) - 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);
	assert_false(notify_send("READY=1"));
	env[0] = '/';
	env[108] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);
	assert_false(notify_send("READY=1"));
	assert_int_equal(setenv("NOTIFY_SOCKET", "relative/name", 1), 0);
	assert_false(notify_send("READY=1"));
	assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
	assert_false(notify_send("READY=1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_notify_reaches_an_abstract_name_filling_sun_path),
		cmocka_unit_test(test_notify_refuses_names_it_cannot_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
