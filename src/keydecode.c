/*
 * The short way for the keys of a server's certificates (keydecode.h):
 * OpenSSL's X509_PUBKEY decoding asks the ENGINE table whether an engine
 * claims the key's type and, if one does, decodes the key with the type's
 * own method instead of building a provider decoder. The claim is made
 * when libssl hands us a peer's Certificate message, just before it parses
 * it, and withdrawn at the next callback of any kind: the verification of
 * the chain, the next record or message, an alert, or the handshake's
 * return.
 */
#include "config.h"

/* ENGINE is deprecated in OpenSSL 3; this file is its only user. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#endif

#include <stdbool.h>
#include <stddef.h>

#include "keydecode.h"

#ifndef OPENSSL_NO_ENGINE

enum keydecode_state {
	KEYDECODE_UNTRIED,
	KEYDECODE_READY,
	KEYDECODE_UNAVAILABLE
};

static enum keydecode_state	 keydecode_state = KEYDECODE_UNTRIED;
static ENGINE			*keydecode_engine;
static bool			 keydecode_open;
static unsigned long		 keydecode_uses;
static int			 keydecode_nids[2];
static int			 keydecode_nnids;

/*
 * The engine's key methods: OpenSSL's built-in ones, should anything ask
 * for them while the claim stands (nothing should: the window holds only
 * the certificates' parsing; the tests count the asking).
 */
static int
keydecode_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids,
    int nid)
{
	(void)e;
	if (pmeth == NULL) {
		*nids = keydecode_nids;
		return keydecode_nnids;
	}
	keydecode_uses++;
	*pmeth = (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(nid);
	return *pmeth != NULL;
}

/* Make the engine once; false when this OpenSSL needs or has none. */
static bool
keydecode_ready(void)
{
	static const int	 types[] = { EVP_PKEY_EC, EVP_PKEY_RSA };
	size_t			 i;

	if (keydecode_state != KEYDECODE_UNTRIED)
		return keydecode_state == KEYDECODE_READY;
	keydecode_state = KEYDECODE_UNAVAILABLE;
	/* OpenSSL 3.2 keeps the decoders it built; 1.1 had no others. */
	if (OpenSSL_version_num() >= 0x30200000L ||
	    OpenSSL_version_num() < 0x30000000L)
		return false;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (EVP_PKEY_meth_find(types[i]) != NULL)
			keydecode_nids[keydecode_nnids++] = types[i];
	if (keydecode_nnids == 0 || (keydecode_engine = ENGINE_new()) == NULL)
		return false;
	if (!ENGINE_set_id(keydecode_engine, "pinproxy-keydecode") ||
	    !ENGINE_set_name(keydecode_engine,
	    "pinproxy: certificate keys decoded by their type's method") ||
	    !ENGINE_set_pkey_meths(keydecode_engine, keydecode_pkey_meths)) {
		ENGINE_free(keydecode_engine);
		keydecode_engine = NULL;
		return false;
	}
	keydecode_state = KEYDECODE_READY;
	return true;
}

static void
keydecode_begin(void)
{
	if (keydecode_open || !keydecode_ready())
		return;
	if (ENGINE_register_pkey_meths(keydecode_engine))
		keydecode_open = true;
}

void
keydecode_close(void)
{
	if (!keydecode_open)
		return;
	ENGINE_unregister_pkey_meths(keydecode_engine);
	keydecode_open = false;
}

bool
keydecode_is_open(void)
{
	return keydecode_open;
}

bool
keydecode_available(void)
{
	return keydecode_ready();
}

unsigned long
keydecode_engine_uses(void)
{
	return keydecode_uses;
}

/*
 * Every message and record header that libssl reads or writes passes
 * here; a peer's Certificate message comes just before libssl parses it.
 * Anything else ends the short way: a second guard, since the info
 * callback comes before each message is read and at every return too.
 */
static void
keydecode_msg_cb(int write_p, int version, int content_type,
    const void *buf, size_t len, SSL *ssl, void *arg)
{
	const unsigned char	*p = buf;

	(void)version;
	(void)ssl;
	(void)arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    p[0] == SSL3_MT_CERTIFICATE)
		keydecode_begin();
	else
		keydecode_close();
}

/* State changes, alerts and the handshake's every return. */
static void
keydecode_info_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	(void)where;
	(void)ret;
	keydecode_close();
}

void
keydecode_watch(SSL_CTX *ctx)
{
	if (!keydecode_ready())
		return;
	SSL_CTX_set_msg_callback(ctx, keydecode_msg_cb);
	SSL_CTX_set_info_callback(ctx, keydecode_info_cb);
}

#else	/* OPENSSL_NO_ENGINE */

void
keydecode_watch(SSL_CTX *ctx)
{
	(void)ctx;
}

void
keydecode_close(void)
{
}

bool
keydecode_is_open(void)
{
	return false;
}

bool
keydecode_available(void)
{
	return false;
}

unsigned long
keydecode_engine_uses(void)
{
	return 0;
}

#endif
