/*
 * The peer's progress on a TCP socket. Only <linux/tcp.h> has the
 * tcp_info of today's kernels (tcpi_bytes_acked, Linux 4.1); it clashes
 * with <netinet/tcp.h>, so it lives alone here.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/tcp.h>

#include <stddef.h>
#include <string.h>

#include "sockprog.h"

uint64_t
sockprog_acked(int fd)
{
	struct tcp_info	 ti;
	socklen_t	 len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) +
	    sizeof(ti.tcpi_bytes_acked))
		return 0;
	return ti.tcpi_bytes_acked;
}

bool
sockprog_moved(int fd, uint64_t *seen)
{
	uint64_t	 now = sockprog_acked(fd);
	bool		 moved = now > *seen;

	*seen = now;
	return moved;
}
