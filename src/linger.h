/*
 * A lingering close, as httpd and nginx do it: once everything for a
 * client is written, its write side is shut, so that it reads its end of
 * file, and what it still sends is read and dropped until it closes too,
 * or LINGER_MS passed, however much it sends (bytes left unread when the
 * time is up make the close a reset all the same). Closing a socket with
 * unread bytes (a pipelined request, the rest of an upload, what the
 * client sent as its tunnel ended) sends a RST, and a RST makes the
 * client's kernel drop what it received and had not read yet: the end of
 * the response. What the kernel still holds for the client is then waited
 * for while the client takes it (linger_start).
 */
#ifndef PINPROXY_LINGER_H
#define PINPROXY_LINGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

/*
 * Long enough for a client on a slow link to read its end of file and
 * close, or to send the rest of an upload or of what it pipelined. At
 * most LINGER_TURN_BYTES are dropped in a turn of the event loop, so
 * that a fast sender does not hold it.
 */
#define LINGER_MS		2000
#define LINGER_TURN_BYTES	(64 * 1024)
/*
 * What linger_drain() drops at most: more than a socket's receive buffer
 * holds by default.
 */
#define LINGER_DRAIN_BYTES	(1024 * 1024)

/* Not "struct linger": <sys/socket.h> has one, for SO_LINGER. */
struct linger_close;

/* Called once when the lingering is over; the caller then closes fd. */
typedef void (*linger_done_cb)(void *arg);

/*
 * Shut fd's write side and drop what comes until the client's end of
 * file or a bound. Then, while the kernel still holds bytes for the client
 * (its send queue: a client that does not read), wait as long as the
 * client takes some within every stall_ms (sockprog.h) and is still
 * there (a client that reset holds nothing); one that took none for that
 * long is reset, which frees them: closed, the socket
 * would keep them, outside any count of the daemon's, for as long as the
 * client answers the kernel's window probes. Then cb(arg). NULL when the
 * shutdown failed (the client is gone): close at once. fd stays the
 * caller's.
 */
struct linger_close	*linger_start(struct event_base *base,
			    evutil_socket_t fd, uint64_t stall_ms,
			    linger_done_cb cb, void *arg);
/* Whether linger_start's client was reset for taking nothing. */
bool			 linger_stalled(const struct linger_close *l);
/* Whether the kernel still holds bytes for fd's peer (SIOCOUTQ). */
bool			 linger_queued(evutil_socket_t fd);
/* Stop it (NULL ok); cb is not called. */
void			 linger_free(struct linger_close *l);
/*
 * For a client whose stream was cut upstream (a relay's server that ended
 * unproven or failed): it must see a reset, not a FIN that would pass for
 * the end of a whole stream, but may read up to the cut. fd's close is
 * made a reset now; cb(arg) comes once the client acknowledged all the
 * kernel held for it (Linux lets it read what it received before the
 * reset), or once that stopped moving for LINGER_MS, or after 30 s at
 * most (a bound on the slot a slow reader holds). NULL when the
 * kernel cannot tell: reset at once. fd stays the caller's.
 */
struct linger_close	*linger_start_cut(struct event_base *base,
			    evutil_socket_t fd, linger_done_cb cb, void *arg);
/*
 * The opposite: make fd's close a reset (a TCP RST, whatever is queued
 * dropped), for a client whose answer was cut short: an orderly close
 * could pass for the end of a stream that only the close delimits.
 */
void			 linger_reset(evutil_socket_t fd);
/*
 * The same wait for a server: close fd, a socket towards an upstream that
 * pinproxy is done with (a relay that ended, an exchange's upstream),
 * now when the kernel holds nothing for the server or a reset was asked
 * for (linger_reset()), else once the server took it, or once it took
 * none for stall_ms (then with a reset), owned
 * here: its connection is gone. At most linger_set_servers_max() wait
 * (none until it is called: a plain close); past that, a close with
 * bytes still held is a reset.
 */
void			 linger_close_server(struct event_base *base,
			    evutil_socket_t fd, uint64_t stall_ms);
void			 linger_set_servers_max(size_t n);
/* Close every server socket still waiting (the daemon exits). */
void			 linger_close_servers(void);
/*
 * For a close that cannot linger (the daemon is about to exit): drop
 * what the client sent that is queued now, up to LINGER_DRAIN_BYTES, so
 * the close is a FIN after what was written, which the kernel goes on
 * delivering, and not a reset that drops it.
 */
void			 linger_drain(evutil_socket_t fd);

#endif
