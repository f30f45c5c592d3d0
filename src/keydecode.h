/*
 * The public keys of a server's certificates, decoded the short way.
 *
 * OpenSSL 3.0 decodes the public key of every certificate it parses through
 * a chain of decoders that it builds anew each time: about 115 µs a
 * certificate on the bench's machine, on the critical path of every full
 * upstream handshake. The key's own decoding, which that chain ends in, is
 * 8 µs of it for an RSA key and 20 µs for a P-256 key, and libcrypto goes
 * there directly when an ENGINE claims the key type. keydecode has such an
 * engine claim EC and RSA keys only while libssl parses a server's
 * Certificate message, and withdraws the claim before anything else runs;
 * the engine's methods are OpenSSL's own built-in ones and go unused:
 * every operation with the keys runs on the provider as before. With an
 * OpenSSL that keeps its decoders (3.2 on) or has no engines, keydecode
 * does nothing.
 */
#ifndef PINPROXY_KEYDECODE_H
#define PINPROXY_KEYDECODE_H

#include <openssl/ssl.h>

#include <stdbool.h>

/*
 * Decode the keys of the certificates that the peers of ctx's connections
 * send the short way (it sets ctx's message and info callbacks). A
 * certificate verification callback on ctx must call keydecode_close()
 * first.
 */
void		keydecode_watch(SSL_CTX *ctx);
/* End the short way now, if it is on. */
void		keydecode_close(void);
/* Whether the short way is on now (for tests). */
bool		keydecode_is_open(void);
/* Whether this OpenSSL has a short way to take. */
bool		keydecode_available(void);
/*
 * How often anything asked the engine for its key methods, which only an
 * operation with a key run while the short way is on does (for tests:
 * it stays 0).
 */
unsigned long	keydecode_engine_uses(void);

#endif
