/*
 * CONNECT: the port check, the TCP connection to the target, the bare
 * "200 Connection established", the ClientHello, and then either a blind
 * tunnel or TLS interception with pins, as the policy for the host says.
 */
#ifndef PINPROXY_TUNNEL_H
#define PINPROXY_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "conf.h"

struct conn;
struct tunnel;
struct tunnel_env;

/* The interception CA (created when both files are missing) and leaves. */
struct tunnel_env *tunnel_env_new(const struct conf *conf, char *err,
		    size_t errlen);
/*
 * Follow a reload: load (or create) the CA named by conf when its paths
 * changed, and flush the forged leaves. False with err: keep the old one.
 */
bool		 tunnel_env_reload(struct tunnel_env *te, const struct conf *conf,
		    char *err, size_t errlen);
/* Hits and misses of the forged-leaf cache. */
void		 tunnel_env_leaf_stats(const struct tunnel_env *te,
		    uint64_t *hits, uint64_t *misses);
/* Free it (NULL ok). */
void		 tunnel_env_free(struct tunnel_env *te);
/* The interception CA certificate in use, borrowed from te. */
X509		*tunnel_env_ca_cert(const struct tunnel_env *te);
/*
 * Run a CONNECT to host:port for the client of c. The tunnel registers
 * itself with conn_set_tunnel(); the connection ends in conn_close().
 */
void		 tunnel_start(struct conn *c, const char *host, uint16_t port);
/* Free a tunnel (NULL ok); called by conn_close only. */
void		 tunnel_free(struct tunnel *t);

#endif
