/*
 * A server's first handshake flight to an intercepted client, held until
 * the upstream's verdict, and the alert that replaces what was held.
 *
 * Everything of the flight but its last record may go before the verdict,
 * so that the client verifies the forged certificate while pinproxy
 * verifies the upstream's: a client following the protocol waits for that
 * last record (the server's Finished in TLS 1.3, its ServerHelloDone in
 * TLS 1.2) before it finishes its handshake and sends a byte of its
 * request. One that computes the record itself and finishes anyway is
 * the caller's to refuse. In TLS 1.2 nothing from a ChangeCipherSpec on
 * goes early (an abbreviated handshake's).
 *
 * Refused, the client gets a fatal alert: in the clear while it has seen
 * no encrypted record, else, in TLS 1.3, sealed under the server's
 * handshake traffic key at the sequence number the held Finished would
 * have had (OpenSSL has no call for that: its write key moved on to the
 * application key with the Finished).
 */
#ifndef PINPROXY_TLSFLIGHT_H
#define PINPROXY_TLSFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* A header, the alert and its content type, and an AEAD tag of 16. */
#define TLSFLIGHT_RECORD_MAX	(5 + 2 + 1 + 16)
/* The longest traffic secret, that of a SHA-384 suite. */
#define TLSFLIGHT_SECRET_MAX	48

/*
 * Of len bytes of a held flight at p (whole records, the last possibly
 * not), how many may go before the verdict; *sealed is how many
 * encrypted records (TLS 1.3) those hold. 0 when the bytes are not TLS
 * records.
 */
size_t	tlsflight_early(const unsigned char *p, size_t len, bool tls13,
	    unsigned int *sealed);

/* The 7 bytes of a fatal alert in the clear; returns 7. */
size_t	tlsflight_plain(unsigned char alert, unsigned char *rec);

/* Whether tlsflight_sealed() can seal for cipher (NULL: no). */
bool	tlsflight_can_seal(const SSL_CIPHER *cipher);

/*
 * The fatal alert encrypted for TLS 1.3 with cipher under the traffic
 * secret at seq: its length, or 0 when the cipher is not one of the AEAD
 * suites this supports (AES-GCM, ChaCha20-Poly1305) or OpenSSL failed.
 */
size_t	tlsflight_sealed(const SSL_CIPHER *cipher, const unsigned char *secret,
	    size_t secret_len, uint64_t seq, unsigned char alert,
	    unsigned char rec[TLSFLIGHT_RECORD_MAX]);

/*
 * HKDF-Expand-Label of RFC 8446 §7.1 with an empty context, for the
 * record's key and IV (and for the tests). False on failure.
 */
bool	tlsflight_expand_label(const EVP_MD *md, const unsigned char *secret,
	    size_t secret_len, const char *label, unsigned char *out,
	    size_t outlen);

#endif
