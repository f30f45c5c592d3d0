/*
 * Fetching a live server's chain for pinproxy-pin: a blocking TLS client
 * with a timeout that reports both the chain OpenSSL verified and the
 * chain the server sent. Only the pin tool uses it; the daemon never
 * blocks.
 */
#ifndef PINPROXY_CHAINFETCH_H
#define PINPROXY_CHAINFETCH_H

#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chainfetch_opts {
	const char	*host;		/* the name checked in the certificate */
	uint16_t	 port;
	const char	*sni;		/* NULL: the host */
	const char	*dial;		/* host resolved and dialled; NULL: host */
	const char	*trust;		/* "system" or a path */
	const char	*ca_file;	/* extra anchors, or NULL */
	const char	*connect_to;	/* "ADDR:PORT" dialled instead, or NULL */
	uint64_t	 timeout_ms;	/* for connect, and for the handshake */
};

struct chainfetch_result {
	bool		 verified;
	char		 reason[256];		/* why verification failed */
	STACK_OF(X509)	*verified_chain;	/* leaf first; NULL unless verified */
	STACK_OF(X509)	*served_chain;		/* as the server sent it */
};

/*
 * Connect, handshake and collect the chains. Returns false with err filled
 * when no handshake could be completed (DNS, TCP, TLS); a chain that does
 * not verify is not an error here: res->verified says so.
 */
bool	 chainfetch(const struct chainfetch_opts *opts,
	    struct chainfetch_result *res, char *err, size_t errlen);
/* Free the chains of a result. */
void	 chainfetch_result_clear(struct chainfetch_result *res);

#endif
