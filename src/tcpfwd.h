/*
 * Pinned TCP forwarders, the [forward:NAME] sections: plaintext TCP
 * accepted on a local address is relayed over TLS to one upstream, and
 * only after its chain verified and held a pin. Not a byte of the client's
 * goes upstream before that verdict.
 */
#ifndef PINPROXY_TCPFWD_H
#define PINPROXY_TCPFWD_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "conn.h"

struct tcpfwd;

/*
 * Forwarders sharing env (borrowed) with the proxy's connections: its
 * generation, resolver, sinks and connection count. accepted(arg) is
 * called after each accepted connection, accept_failed(arg) when accept()
 * failed on a listener (errno says why).
 */
struct tcpfwd	*tcpfwd_new(struct conn_env *env, void (*accepted)(void *),
		    void (*accept_failed)(void *), void *arg);
/*
 * Bind every listen address of conf's forwarders that is not bound yet
 * (those already bound are kept); false with err, having bound nothing.
 */
bool		 tcpfwd_prepare(struct tcpfwd *t, const struct conf *conf,
		    char *err, size_t errlen);
/* Switch to the prepared listeners; close those no longer wanted. */
void		 tcpfwd_commit(struct tcpfwd *t);
/* Forget the prepared listeners (NULL ok, nothing prepared ok). */
void		 tcpfwd_abort(struct tcpfwd *t);
/* Pause or resume accepting on every listener. */
void		 tcpfwd_set_accepting(struct tcpfwd *t, bool on);
/*
 * Take what the kernel queued on every listener, as connections accepted
 * now (see backlog.h); before any listener of the daemon closes, as each
 * one taken may pause or resume them all.
 */
void		 tcpfwd_take_queued(struct tcpfwd *t);
/* Close every listener; open connections go on. */
void		 tcpfwd_stop_listening(struct tcpfwd *t);
/* Close every connection now. */
size_t		 tcpfwd_close_all(struct tcpfwd *t);
/*
 * After a reload: close every connection whose upstream passed with a
 * key the current generation denies (see conn_recheck_all()).
 */
void		 tcpfwd_recheck_all(struct tcpfwd *t);
/* Close everything and free (NULL ok). */
void		 tcpfwd_free(struct tcpfwd *t);

#endif
