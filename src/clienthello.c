/*
 * ClientHello parsing in two steps: gather the handshake message from one or
 * more records of type 22 (a message may be split across records), then walk
 * its fields with a cursor that checks every length against what remains.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clienthello.h"
#include "xmalloc.h"

#define TLS_RECORD_HEADER	5
#define TLS_RECORD_MAX		16384
#define TLS_CT_CHANGE_CIPHER	20	/* the first of the record types */
#define TLS_CT_HANDSHAKE	22
#define TLS_CT_HEARTBEAT	24	/* the last */
#define TLS_HS_HEADER		4
#define TLS_HS_CLIENT_HELLO	1
#define TLS_RANDOM_LEN		32
#define TLS_SESSION_ID_MAX	32
#define TLS_EXT_SERVER_NAME	0
#define TLS_EXT_ALPN		16
#define TLS_SNI_HOST_NAME	0

/* A window on bytes still to be read; reads never move past its end. */
struct cursor {
	const unsigned char	*p;
	size_t			 left;
};

static const char *const clienthello_result_names[] = {
	[CH_NEED_MORE] =	"need_more",
	[CH_OK] =		"ok",
	[CH_NOT_TLS] =		"not_tls",
	[CH_MALFORMED] =	"malformed",
	[CH_TOO_LARGE] =	"too_large",
};

static bool
cursor_u8(struct cursor *c, uint8_t *out)
{
	if (c->left < 1)
		return false;
	*out = c->p[0];
	c->p++;
	c->left--;
	return true;
}

static bool
cursor_u16(struct cursor *c, uint16_t *out)
{
	if (c->left < 2)
		return false;
	*out = (uint16_t)(c->p[0] << 8 | c->p[1]);
	c->p += 2;
	c->left -= 2;
	return true;
}

static bool
cursor_skip(struct cursor *c, size_t n)
{
	if (c->left < n)
		return false;
	c->p += n;
	c->left -= n;
	return true;
}

/* Carve out a vector whose length prefix is lenbytes (1 or 2) long. */
static bool
cursor_vector(struct cursor *c, int lenbytes, struct cursor *sub)
{
	uint8_t		 len8;
	uint16_t	 len16;
	size_t		 n;

	if (lenbytes == 1) {
		if (!cursor_u8(c, &len8))
			return false;
		n = len8;
	} else {
		if (!cursor_u16(c, &len16))
			return false;
		n = len16;
	}
	if (c->left < n)
		return false;
	sub->p = c->p;
	sub->left = n;
	c->p += n;
	c->left -= n;
	return true;
}

/*
 * Check the record header at p, deciding with as few bytes as there are.
 * What a server could take for a TLS record is TLS: a handshake record of
 * any version (servers ignore the record version, or take any from 3.0
 * up, as Java's does, so a hello under 3.9 or 255.255 still names its
 * host), and a record of another type first (an alert, which a server may
 * skip, then the hello) is malformed, not "not TLS": either must never
 * pass for another protocol, which a CONNECT by address may tunnel blind.
 */
static enum clienthello_result
clienthello_record(const unsigned char *p, size_t len, bool first,
    size_t *rlen)
{
	enum clienthello_result	 bad = first ? CH_NOT_TLS : CH_MALFORMED;

	if (len < 1)
		return CH_NEED_MORE;
	if (p[0] < TLS_CT_CHANGE_CIPHER || p[0] > TLS_CT_HEARTBEAT)
		return bad;
	if (p[0] != TLS_CT_HANDSHAKE)
		return CH_MALFORMED;
	if (len < TLS_RECORD_HEADER)
		return CH_NEED_MORE;
	*rlen = (size_t)p[3] << 8 | p[4];
	/* RFC 8446 forbids empty handshake fragments. */
	if (*rlen == 0 || *rlen > TLS_RECORD_MAX)
		return CH_MALFORMED;
	return CH_OK;
}

/*
 * Copy the handshake message out of the records at buf into msg (of
 * CLIENTHELLO_MAX_MESSAGE bytes); on CH_OK, *msglen is its length and
 * *consumed the length of the records that carried it.
 */
static enum clienthello_result
clienthello_gather(const unsigned char *buf, size_t len, unsigned char *msg,
    size_t *msglen, size_t *consumed, size_t *more)
{
	enum clienthello_result	 r;
	const unsigned char	*frag;
	size_t			 pos = 0, have = 0, need = 0;
	size_t			 rlen, avail, take;

	for (;;) {
		r = clienthello_record(buf + pos, len - pos, pos == 0, &rlen);
		if (r == CH_NEED_MORE) {
			/* A record header, and what is left of the message. */
			*more = pos + TLS_RECORD_HEADER +
			    (need != 0 ? need - have : 1);
			return r;
		}
		if (r != CH_OK)
			return r;
		if (pos + TLS_RECORD_HEADER + rlen > CLIENTHELLO_MAX_INPUT)
			return CH_TOO_LARGE;
		frag = buf + pos + TLS_RECORD_HEADER;
		avail = len - pos - TLS_RECORD_HEADER;
		if (avail > rlen)
			avail = rlen;

		/* need stays 0 until the 4-byte message header is complete. */
		take = 0;
		if (need == 0) {
			take = TLS_HS_HEADER - have;
			if (take > avail)
				take = avail;
			memcpy(msg + have, frag, take);
			have += take;
			if (have > 0 && msg[0] != TLS_HS_CLIENT_HELLO)
				return CH_MALFORMED;
			if (have == TLS_HS_HEADER) {
				need = TLS_HS_HEADER + ((size_t)msg[1] << 16 |
				    (size_t)msg[2] << 8 | msg[3]);
				if (need > CLIENTHELLO_MAX_MESSAGE)
					return CH_TOO_LARGE;
			}
		}
		if (need != 0) {
			/* A client sends nothing after its hello unprompted. */
			if (rlen - take > need - have)
				return CH_MALFORMED;
			memcpy(msg + have, frag + take, avail - take);
			have += avail - take;
		}
		if (avail < rlen) {
			/* The end of this record, then the rest of the hello. */
			*more = pos + TLS_RECORD_HEADER + rlen;
			if (need != 0 && need > have + (rlen - avail))
				*more += TLS_RECORD_HEADER +
				    (need - have - (rlen - avail));
			return CH_NEED_MORE;
		}
		pos += TLS_RECORD_HEADER + rlen;
		if (need != 0 && have == need) {
			*msglen = have;
			*consumed = pos;
			return CH_OK;
		}
	}
}

/*
 * The server_name extension: one host_name, printable ASCII, and no entry
 * of another type. None is defined, and OpenSSL refuses any; a server that
 * took the first entry whatever its type would serve a name this parse
 * never judged.
 */
static enum clienthello_result
clienthello_sni(struct cursor *ext, struct clienthello *out)
{
	struct cursor	 list, name;
	uint8_t		 type;
	size_t		 i;

	if (!cursor_vector(ext, 2, &list) || ext->left != 0 || list.left == 0)
		return CH_MALFORMED;
	while (list.left > 0) {
		if (!cursor_u8(&list, &type) ||
		    !cursor_vector(&list, 2, &name))
			return CH_MALFORMED;
		if (type != TLS_SNI_HOST_NAME || out->sni_len != 0 ||
		    name.left == 0 ||
		    name.left > CLIENTHELLO_SNI_MAX)
			return CH_MALFORMED;
		for (i = 0; i < name.left; i++) {
			if (name.p[i] <= 0x20 || name.p[i] >= 0x7f)
				return CH_MALFORMED;
		}
		memcpy(out->sni, name.p, name.left);
		out->sni[name.left] = '\0';
		out->sni_len = name.left;
	}
	return CH_OK;
}

/* The ALPN extension: a non-empty list of non-empty protocol names. */
static enum clienthello_result
clienthello_alpn(struct cursor *ext, struct clienthello *out)
{
	struct cursor	 list, walk, proto;
	size_t		 count = 0;

	if (!cursor_vector(ext, 2, &list) || ext->left != 0 || list.left == 0)
		return CH_MALFORMED;
	walk = list;
	while (walk.left > 0) {
		if (!cursor_vector(&walk, 1, &proto) || proto.left == 0)
			return CH_MALFORMED;
		count++;
	}
	out->alpn = xmalloc(list.left);
	memcpy(out->alpn, list.p, list.left);
	out->alpn_len = list.left;
	out->alpn_count = count;
	return CH_OK;
}

/* Walk the body of the hello message msg of len bytes. */
static enum clienthello_result
clienthello_body(const unsigned char *msg, size_t len,
    struct clienthello *out)
{
	enum clienthello_result	 r;
	struct cursor		 c, v, exts, ext;
	uint16_t		 version, type;
	bool			 seen_sni = false, seen_alpn = false;

	c.p = msg + TLS_HS_HEADER;
	c.left = len - TLS_HS_HEADER;
	if (!cursor_u16(&c, &version) || version >> 8 != 0x03)
		return CH_MALFORMED;
	out->legacy_version = version;
	if (!cursor_skip(&c, TLS_RANDOM_LEN))
		return CH_MALFORMED;
	if (!cursor_vector(&c, 1, &v) || v.left > TLS_SESSION_ID_MAX)
		return CH_MALFORMED;
	if (!cursor_vector(&c, 2, &v) || v.left == 0 || v.left % 2 != 0)
		return CH_MALFORMED;
	if (!cursor_vector(&c, 1, &v) || v.left == 0)
		return CH_MALFORMED;
	/* Hellos without extensions end here. */
	if (c.left == 0)
		return CH_OK;
	if (!cursor_vector(&c, 2, &exts) || c.left != 0)
		return CH_MALFORMED;
	while (exts.left > 0) {
		if (!cursor_u16(&exts, &type) ||
		    !cursor_vector(&exts, 2, &ext))
			return CH_MALFORMED;
		r = CH_OK;
		if (type == TLS_EXT_SERVER_NAME) {
			if (seen_sni)
				return CH_MALFORMED;
			seen_sni = true;
			r = clienthello_sni(&ext, out);
		} else if (type == TLS_EXT_ALPN) {
			if (seen_alpn)
				return CH_MALFORMED;
			seen_alpn = true;
			r = clienthello_alpn(&ext, out);
		}
		if (r != CH_OK)
			return r;
	}
	return CH_OK;
}

enum clienthello_result
clienthello_parse(const void *buf, size_t len, struct clienthello *out)
{
	unsigned char		 msg[CLIENTHELLO_MAX_MESSAGE];
	enum clienthello_result	 r;
	size_t			 msglen, consumed;

	memset(out, 0, sizeof(*out));
	/* out is zeroed: only CH_NEED_MORE sets its need. */
	r = clienthello_gather(buf, len, msg, &msglen, &consumed, &out->need);
	if (r != CH_OK)
		return r;
	r = clienthello_body(msg, msglen, out);
	if (r != CH_OK) {
		clienthello_clear(out);
		return r;
	}
	out->consumed = consumed;
	return CH_OK;
}

void
clienthello_clear(struct clienthello *ch)
{
	if (ch == NULL)
		return;
	free(ch->alpn);
	memset(ch, 0, sizeof(*ch));
}

const char *
clienthello_result_name(enum clienthello_result r)
{
	if ((size_t)r >= sizeof(clienthello_result_names) /
	    sizeof(clienthello_result_names[0]))
		return "unknown";
	return clienthello_result_names[r];
}
