/*
 * The sd_notify protocol without libsystemd: one datagram to the socket
 * named by NOTIFY_SOCKET (a path, or an abstract name starting with '@').
 */
#ifndef PINPROXY_NOTIFY_H
#define PINPROXY_NOTIFY_H

#include <stdbool.h>

/* Send a state string such as "READY=1"; false when it was not sent. */
bool	 notify_send(const char *state);
/* notify_send with a formatted state. */
bool	 notify_sendf(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
