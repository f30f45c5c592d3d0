/*
 * What of a held handshake flight may go early, and the fatal alert record
 * in its place, in the clear or sealed for TLS 1.3 (RFC 8446 §5.2: the
 * inner plaintext is the alert followed by its content type, the outer
 * type is application_data, the header is the additional data, the nonce
 * is the IV XOR'ed with the sequence number).
 */
#include "config.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <string.h>

#include "tlsflight.h"

#define TLSFLIGHT_FATAL		2
#define TLSFLIGHT_TYPE_CCS	20	/* change_cipher_spec */
#define TLSFLIGHT_TYPE		21	/* alert */
#define TLSFLIGHT_TYPE_APPDATA	23
/* The longest record: 2^14 bytes and an expansion of 256 (RFC 8446 §5.2). */
#define TLSFLIGHT_RECORD_LEN_MAX	(16384 + 256)
#define TLSFLIGHT_IV_LEN		12
#define TLSFLIGHT_TAG_LEN	16
#define TLSFLIGHT_KEY_MAX	32
/* "tls13 " and the longest label used here, "key". */
#define TLSFLIGHT_LABEL_MAX	16

size_t
tlsflight_early(const unsigned char *p, size_t len, bool tls13,
    unsigned int *sealed)
{
	size_t		 off = 0, last = 0, rlen;
	unsigned int	 n = 0, before_last = 0;

	*sealed = 0;
	while (len - off >= 5) {
		rlen = (size_t)p[off + 3] << 8 | p[off + 4];
		if (p[off] < TLSFLIGHT_TYPE_CCS ||
		    p[off] > TLSFLIGHT_TYPE_APPDATA || p[off + 1] != 0x03 ||
		    rlen > TLSFLIGHT_RECORD_LEN_MAX)
			return 0;
		/* TLS 1.2: from a ChangeCipherSpec on, the client needs keys. */
		if (!tls13 && p[off] == TLSFLIGHT_TYPE_CCS) {
			*sealed = n;
			return off;
		}
		if (rlen > len - off - 5)
			break;
		last = off;
		before_last = n;
		if (p[off] == TLSFLIGHT_TYPE_APPDATA)
			n++;
		off += 5 + rlen;
	}
	/* A record not whole yet is the last one: it stays. */
	if (off < len) {
		*sealed = n;
		return off;
	}
	*sealed = before_last;
	return last;
}

size_t
tlsflight_plain(unsigned char alert, unsigned char *rec)
{
	const unsigned char	 head[] = { TLSFLIGHT_TYPE, 0x03, 0x03, 0x00,
				    0x02, TLSFLIGHT_FATAL };

	memcpy(rec, head, sizeof(head));
	rec[sizeof(head)] = alert;
	return sizeof(head) + 1;
}

bool
tlsflight_expand_label(const EVP_MD *md, const unsigned char *secret,
    size_t secret_len, const char *label, unsigned char *out, size_t outlen)
{
	unsigned char	 info[2 + 1 + TLSFLIGHT_LABEL_MAX + 1];
	size_t		 llen = strlen("tls13 ") + strlen(label), n = 0;
	int		 mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM	 params[5];
	EVP_KDF		*kdf;
	EVP_KDF_CTX	*kctx;
	bool		 ok;

	if (llen > TLSFLIGHT_LABEL_MAX || outlen > 0xffff)
		return false;
	/* struct HkdfLabel: length, "tls13 " label, an empty context. */
	info[n++] = (unsigned char)(outlen >> 8);
	info[n++] = (unsigned char)outlen;
	info[n++] = (unsigned char)llen;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, llen - 6);
	n += llen;
	info[n++] = 0;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)EVP_MD_get0_name(md), 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    (void *)secret, secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    info, n);
	params[4] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL)) == NULL)
		return false;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	ok = kctx != NULL && EVP_KDF_derive(kctx, out, outlen, params) == 1;
	EVP_KDF_CTX_free(kctx);
	return ok;
}

/* The AEAD cipher of a TLS 1.3 suite that this seals with; or NULL. */
static const EVP_CIPHER *
tlsflight_aead(const SSL_CIPHER *cipher)
{
	const EVP_CIPHER	*c;
	int			 nid = SSL_CIPHER_get_cipher_nid(cipher);

	if ((c = EVP_get_cipherbynid(nid)) == NULL)
		return NULL;
	if (EVP_CIPHER_get_mode(c) != EVP_CIPH_GCM_MODE &&
	    nid != NID_chacha20_poly1305)
		return NULL;
	if (EVP_CIPHER_get_key_length(c) > TLSFLIGHT_KEY_MAX)
		return NULL;
	return c;
}

bool
tlsflight_can_seal(const SSL_CIPHER *cipher)
{
	return cipher != NULL && tlsflight_aead(cipher) != NULL &&
	    SSL_CIPHER_get_handshake_digest(cipher) != NULL;
}

size_t
tlsflight_sealed(const SSL_CIPHER *cipher, const unsigned char *secret,
    size_t secret_len, uint64_t seq, unsigned char alert,
    unsigned char rec[TLSFLIGHT_RECORD_MAX])
{
	const unsigned char	 inner[3] = { TLSFLIGHT_FATAL, alert,
				    TLSFLIGHT_TYPE };
	unsigned char		 key[TLSFLIGHT_KEY_MAX], iv[TLSFLIGHT_IV_LEN];
	const EVP_CIPHER	*c;
	const EVP_MD		*md;
	EVP_CIPHER_CTX		*cc = NULL;
	size_t			 len = 0, i;
	int			 n, keylen;

	if (cipher == NULL || (c = tlsflight_aead(cipher)) == NULL ||
	    (md = SSL_CIPHER_get_handshake_digest(cipher)) == NULL)
		return 0;
	keylen = EVP_CIPHER_get_key_length(c);
	if (!tlsflight_expand_label(md, secret, secret_len, "key", key,
	    (size_t)keylen) || !tlsflight_expand_label(md, secret, secret_len,
	    "iv", iv, sizeof(iv)))
		goto out;
	for (i = 0; i < 8; i++)
		iv[TLSFLIGHT_IV_LEN - 1 - i] ^= (unsigned char)(seq >> (8 * i));
	rec[0] = TLSFLIGHT_TYPE_APPDATA;
	rec[1] = 0x03;
	rec[2] = 0x03;
	rec[3] = 0;
	rec[4] = sizeof(inner) + TLSFLIGHT_TAG_LEN;
	if ((cc = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(cc, c, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_SET_IVLEN, sizeof(iv),
	    NULL) != 1 ||
	    EVP_EncryptInit_ex(cc, NULL, NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(cc, NULL, &n, rec, 5) != 1 ||
	    EVP_EncryptUpdate(cc, rec + 5, &n, inner, sizeof(inner)) != 1 ||
	    n != sizeof(inner) ||
	    EVP_EncryptFinal_ex(cc, rec + 5 + n, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(cc, EVP_CTRL_AEAD_GET_TAG, TLSFLIGHT_TAG_LEN,
	    rec + 5 + sizeof(inner)) != 1)
		goto out;
	len = 5 + sizeof(inner) + TLSFLIGHT_TAG_LEN;
out:
	EVP_CIPHER_CTX_free(cc);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	return len;
}
