/*
 * CONNECT: the port check, the TCP connection to the target, the bare
 * "200 Connection established", the ClientHello, and then either a blind
 * tunnel or TLS interception with pins, as the policy for the host says.
 */
#ifndef PINPROXY_TUNNEL_H
#define PINPROXY_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct tunnel;
struct tunnel_env;

/*
 * What interception shares across generations: the TLS server context for
 * clients (the certificates are set per connection, from its generation's
 * CA and leaves) and the throttle of client_tls_failed lines.
 */
struct tunnel_env *tunnel_env_new(char *err, size_t errlen);
/* Free it (NULL ok). */
void		 tunnel_env_free(struct tunnel_env *te);
/*
 * Run a CONNECT to host:port for the client of c. The tunnel registers
 * itself with conn_set_tunnel(); the connection ends in conn_close().
 */
void		 tunnel_start(struct conn *c, const char *host, uint16_t port);
/* Free a tunnel (NULL ok); called by conn_close only. */
void		 tunnel_free(struct tunnel *t);

#endif
