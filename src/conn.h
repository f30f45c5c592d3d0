/*
 * A client connection: reads request heads, applies the policy, and runs
 * the phase each one needs (phase.h): forward for plaintext requests,
 * tunnel and then intercept for CONNECT. Every connection ends in
 * conn_close().
 */
#ifndef PINPROXY_CONN_H
#define PINPROXY_CONN_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include <stdbool.h>
#include <stdint.h>

#include "phase.h"

struct conn;

/*
 * Serve a freshly accepted client (takes over fd) under env->rc; each
 * later request on it takes the generation current when it arrives.
 */
struct conn	*conn_new(struct conn_env *env, evutil_socket_t fd,
		    const struct sockaddr *sa, socklen_t salen);
/*
 * Serve a client the kernel redirected to a transparent listener (takes
 * over fd): a CONNECT to its original destination whose 200 was sent.
 */
struct conn	*conn_new_transparent(struct conn_env *env, evutil_socket_t fd,
		    const struct sockaddr *sa, socklen_t salen);
/* Close now, whatever is in progress: the single teardown. */
void		 conn_close(struct conn *c);
/* Finish the current exchange, then close; close at once when idle. */
void		 conn_shutdown(struct conn *c);

/* Shut every connection down gracefully (conn_shutdown). */
void		 conn_shutdown_all(struct conn_env *env);
/* Close every connection now. */
size_t		 conn_close_all(struct conn_env *env);
/*
 * After a reload: end every connection whose upstream TLS connection
 * passed under an older generation with a key the current one denies
 * (upstream_denied_on_reload()); its client's connection is reset.
 */
void		 conn_recheck_all(struct conn_env *env);

#endif
