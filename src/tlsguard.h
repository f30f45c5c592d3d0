/*
 * The second ClientHello of a blind tunnel. A tunnel goes blind on the
 * verdict of the client's first ClientHello (no SNI, or an unpinned one),
 * but a TLS 1.3 server that answers with a HelloRetryRequest reads the
 * server name again from the second, still in the clear: a client could
 * name a pinned host there and get its server unchecked. Until the
 * server's first ServerHello that is not a retry request, every further
 * ClientHello of the client's is read and must name the first one's
 * server (or none, as it did); anything else refuses the tunnel.
 */
#ifndef PINPROXY_TLSGUARD_H
#define PINPROXY_TLSGUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "clienthello.h"

/* The most of the client's stream held while a ClientHello is read. */
#define TLSGUARD_HOLD_MAX	CLIENTHELLO_MAX_INPUT

struct tlsguard {
	char		 sni[CLIENTHELLO_SNI_MAX + 1];	/* the first's */
	size_t		 skip;		/* of the first ClientHello, to pass */
	size_t		 pass_left;	/* of a record of another kind */
	size_t		 need;		/* held bytes a parse waits for */
	bool		 done;		/* nothing more to look at */
	/* The server's stream: the record and handshake message it is in. */
	unsigned char	 rec[5];
	size_t		 rec_have;
	size_t		 rec_left;	/* of the record's payload */
	unsigned char	 msg[4 + 2 + 32];	/* header, version, random */
	size_t		 msg_have;
	size_t		 msg_left;	/* of the message's body, past msg */
};

enum tlsguard_verdict {
	TLSGUARD_OK,		/* *pass bytes may go, the rest is held */
	TLSGUARD_REFUSE		/* another server named, or no hello */
};

/*
 * Start looking at a client stream that begins with a ClientHello of
 * hello_len bytes naming sni ("" for none).
 */
void	 tlsguard_init(struct tlsguard *g, const char *sni,
	    size_t hello_len);
/*
 * The server sent len more bytes; g->done once its first ServerHello
 * that is not a HelloRetryRequest came, or anything that is not a TLS
 * handshake.
 */
void	 tlsguard_server(struct tlsguard *g, const unsigned char *data,
	    size_t len);
/*
 * The client's held bytes, from the first not passed yet: how many of
 * them may go to the server now (*pass), the rest held for more; or a
 * refusal. Once g->done, everything may go.
 */
enum tlsguard_verdict tlsguard_client(struct tlsguard *g,
	    const unsigned char *data, size_t len, size_t *pass);

#endif
