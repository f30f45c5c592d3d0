/*
 * The connections a listener's kernel queue holds when it is closed: see
 * backlog.h.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>

#include "backlog.h"

void
backlog_take(struct evconnlistener *l, evconnlistener_cb cb, void *arg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	evutil_socket_t		 lfd = evconnlistener_get_fd(l);
	size_t			 n = 0;
	int			 fd;

	while (n < BACKLOG_MAX) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		cb(l, fd, (struct sockaddr *)&ss, (int)len, arg);
		n++;
	}
}
