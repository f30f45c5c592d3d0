/*
 * A pure, bounds-checked parser of a TLS ClientHello: from the bytes a client
 * has sent so far (never consumed), it says whether a complete hello is there
 * and extracts the SNI host name and the ALPN list.
 */
#ifndef PINPROXY_CLIENTHELLO_H
#define PINPROXY_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

/* The largest handshake message accepted, its 4-byte header included. */
#define CLIENTHELLO_MAX_MESSAGE	16384
/* The most input bytes a hello may occupy: the message plus record headers. */
#define CLIENTHELLO_MAX_INPUT	(CLIENTHELLO_MAX_MESSAGE + 16 * 5)
/* The longest SNI host name (RFC 6066 allows at most 255 bytes). */
#define CLIENTHELLO_SNI_MAX	255

enum clienthello_result {
	CH_NEED_MORE,		/* a hello so far: read more bytes */
	CH_OK,			/* a complete hello, parsed */
	CH_NOT_TLS,		/* not a TLS handshake record at all */
	CH_MALFORMED,		/* TLS, but the hello is broken */
	CH_TOO_LARGE		/* past CLIENTHELLO_MAX_MESSAGE or _INPUT */
};

/* What a complete hello says; filled by clienthello_parse() on CH_OK. */
struct clienthello {
	char		 sni[CLIENTHELLO_SNI_MAX + 1];	/* "" when absent */
	size_t		 sni_len;
	unsigned char	*alpn;		/* owned; wire format; NULL if absent */
	size_t		 alpn_len;
	size_t		 alpn_count;
	uint16_t	 legacy_version;
	size_t		 consumed;	/* bytes of the records holding it */
	/*
	 * On CH_NEED_MORE: how many bytes the input must have at least
	 * before a parse can say more (from the lengths the records and the
	 * message announce). A client that sends its hello a byte at a time
	 * would otherwise have it gathered again at every byte.
	 */
	size_t		 need;
};

/*
 * Parse the len bytes a client has sent so far. out need not be initialised
 * (it is overwritten): on CH_OK it is filled and must be released with
 * clienthello_clear(); on CH_NEED_MORE only its need is set; on any other
 * result it is left empty.
 */
enum clienthello_result	 clienthello_parse(const void *buf, size_t len,
			    struct clienthello *out);
/* Free what a parsed hello owns and empty it (safe on an empty one). */
void			 clienthello_clear(struct clienthello *ch);
/* The name of a result, for logs: "need_more", "ok", "not_tls", ... */
const char		*clienthello_result_name(enum clienthello_result r);

#endif
