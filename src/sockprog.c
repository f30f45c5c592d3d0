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

/*
 * The kernel's TCP states that follow the peer's FIN or a reset, as
 * tcpi_state reports them (<netinet/tcp.h> names them, but cannot be
 * included beside <linux/tcp.h>).
 */
enum {
	SOCKPROG_TCP_CLOSE = 7,
	SOCKPROG_TCP_CLOSE_WAIT = 8,
	SOCKPROG_TCP_LAST_ACK = 9,
	SOCKPROG_TCP_CLOSING = 11
};

/* How much of struct tcp_info a kernel must fill, up to and with field. */
#define SOCKPROG_UPTO(field) \
	(offsetof(struct tcp_info, field) + sizeof(((struct tcp_info *)0)->field))

/* fd's TCP_INFO, or false when the kernel gives fewer than need bytes. */
static bool
sockprog_info(int fd, struct tcp_info *ti, size_t need)
{
	socklen_t	 len = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
	    len >= need;
}

bool
sockprog_moved(int fd, uint64_t *seen)
{
	struct tcp_info	 ti;
	bool		 moved;

	if (!sockprog_info(fd, &ti, SOCKPROG_UPTO(tcpi_notsent_bytes)))
		return false;
	moved = ti.tcpi_bytes_acked > *seen &&
	    (ti.tcpi_unacked > 0 || ti.tcpi_notsent_bytes > 0);
	*seen = ti.tcpi_bytes_acked;
	return moved;
}

uint64_t
sockprog_look_ms(uint64_t wait_ms)
{
	return wait_ms / SOCKPROG_LOOKS > 0 ? wait_ms / SOCKPROG_LOOKS : 1;
}

bool
sockprog_failed(int fd)
{
	int		 err = 0;
	socklen_t	 len = sizeof(err);

	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
	    err != 0;
}

bool
sockprog_peer_ended(int fd)
{
	struct tcp_info	 ti;

	if (!sockprog_info(fd, &ti, SOCKPROG_UPTO(tcpi_state)))
		return false;
	switch (ti.tcpi_state) {
	case SOCKPROG_TCP_CLOSE:
	case SOCKPROG_TCP_CLOSE_WAIT:
	case SOCKPROG_TCP_LAST_ACK:
	case SOCKPROG_TCP_CLOSING:
		return true;
	default:
		return false;
	}
}

bool
sockprog_gone(int fd)
{
	struct tcp_info	 ti;

	/*
	 * The state, not SO_ERROR: that may hold a soft error (an ICMP
	 * message) of a connection that goes on.
	 */
	return sockprog_info(fd, &ti, SOCKPROG_UPTO(tcpi_state)) &&
	    ti.tcpi_state == SOCKPROG_TCP_CLOSE;
}
