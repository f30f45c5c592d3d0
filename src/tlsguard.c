/*
 * The second ClientHello of a blind tunnel: see tlsguard.h. The server's
 * stream is only looked at (its bytes go on at once); the client's is
 * held, a record at a time, while a ClientHello in it is incomplete.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "tlsguard.h"

#define TG_CT_CHANGE_CIPHER	20
#define TG_CT_ALERT		21
#define TG_CT_HANDSHAKE		22
#define TG_HS_SERVER_HELLO	2
#define TG_RECORD_HEADER	5

/* The random of a HelloRetryRequest (RFC 8446, 4.1.3). */
static const unsigned char tlsguard_hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11,
	0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e,
	0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c
};

void
tlsguard_init(struct tlsguard *g, const char *sni, size_t hello_len)
{
	memset(g, 0, sizeof(*g));
	(void)strncpy(g->sni, sni, sizeof(g->sni) - 1);
	g->skip = hello_len;
}

/* Copy into buf (have of want bytes there) what *p holds, up to want. */
static void
tlsguard_gather(unsigned char *buf, size_t *have, size_t want,
    const unsigned char **p, size_t *len)
{
	size_t	 take = want - *have;

	if (take > *len)
		take = *len;
	memcpy(buf + *have, *p, take);
	*have += take;
	*p += take;
	*len -= take;
}

/*
 * len more bytes of the server's handshake messages: each header and the
 * start of a ServerHello's body are gathered; the first ServerHello that
 * is no retry request, or another message first, ends the look.
 */
static void
tlsguard_messages(struct tlsguard *g, const unsigned char *p, size_t len)
{
	size_t	 take;

	while (len > 0 && !g->done) {
		if (g->msg_left > 0) {
			take = len < g->msg_left ? len : g->msg_left;
			g->msg_left -= take;
			p += take;
			len -= take;
			continue;
		}
		tlsguard_gather(g->msg, &g->msg_have, sizeof(g->msg), &p, &len);
		if (g->msg_have >= 1 && g->msg[0] != TG_HS_SERVER_HELLO) {
			g->done = true;
			break;
		}
		if (g->msg_have < sizeof(g->msg))
			break;
		if (memcmp(g->msg + 6, tlsguard_hrr_random,
		    sizeof(tlsguard_hrr_random)) != 0) {
			g->done = true;
			break;
		}
		/* A retry request: skip its rest; the next one decides. */
		g->msg_left = ((size_t)g->msg[1] << 16 | (size_t)g->msg[2] << 8 |
		    g->msg[3]);
		g->msg_left = g->msg_left > sizeof(g->msg) - 4 ?
		    g->msg_left - (sizeof(g->msg) - 4) : 0;
		g->msg_have = 0;
	}
}

void
tlsguard_server(struct tlsguard *g, const unsigned char *p, size_t len)
{
	size_t	 take;

	while (len > 0 && !g->done) {
		if (g->rec_have < TG_RECORD_HEADER) {
			tlsguard_gather(g->rec, &g->rec_have, TG_RECORD_HEADER, &p,
			    &len);
			if (g->rec_have < TG_RECORD_HEADER)
				break;
			/*
			 * A ChangeCipherSpec or an alert (a warning a client
			 * may ignore) may come between; anything else is no
			 * TLS server's first flight.
			 */
			if (g->rec[0] != TG_CT_HANDSHAKE &&
			    g->rec[0] != TG_CT_CHANGE_CIPHER &&
			    g->rec[0] != TG_CT_ALERT) {
				g->done = true;
				break;
			}
			g->rec_left = (size_t)g->rec[3] << 8 | g->rec[4];
		}
		take = len < g->rec_left ? len : g->rec_left;
		if (g->rec[0] == TG_CT_HANDSHAKE)
			tlsguard_messages(g, p, take);
		g->rec_left -= take;
		p += take;
		len -= take;
		if (g->rec_left == 0)
			g->rec_have = 0;
	}
}

enum tlsguard_verdict
tlsguard_client(struct tlsguard *g, const unsigned char *data, size_t len,
    size_t *pass)
{
	struct clienthello	 ch;
	enum clienthello_result	 r;
	size_t			 pos, rlen;
	bool			 same;

	*pass = 0;
	if (g->done) {
		*pass = len;
		return TLSGUARD_OK;
	}
	pos = g->skip < len ? g->skip : len;
	g->skip -= pos;
	while (pos < len) {
		if (g->pass_left > 0) {
			rlen = len - pos < g->pass_left ? len - pos :
			    g->pass_left;
			g->pass_left -= rlen;
			pos += rlen;
			continue;
		}
		if (len - pos < TG_RECORD_HEADER)
			break;
		/* A record of another kind (early data, a CCS) goes on. */
		if (data[pos] != TG_CT_HANDSHAKE) {
			g->pass_left = TG_RECORD_HEADER +
			    ((size_t)data[pos + 3] << 8 | data[pos + 4]);
			continue;
		}
		/* Not gathered again before the bytes it needs are there. */
		if (len - pos < g->need)
			break;
		r = clienthello_parse(data + pos, len - pos, &ch);
		if (r == CH_NEED_MORE) {
			g->need = ch.need;
			break;
		}
		g->need = 0;
		if (r != CH_OK)
			return TLSGUARD_REFUSE;
		same = strcasecmp(ch.sni, g->sni) == 0;
		pos += ch.consumed;
		clienthello_clear(&ch);
		if (!same)
			return TLSGUARD_REFUSE;
	}
	if (len - pos > TLSGUARD_HOLD_MAX)
		return TLSGUARD_REFUSE;
	*pass = pos;
	return TLSGUARD_OK;
}
