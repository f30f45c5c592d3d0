#!/bin/bash
# The PKI the end-to-end tests of one make check share: tests/mkpki.sh's
# default set, made once per run in tests/pki of the build tree before the
# tests that use it start (Makefile.am orders them), with the pin of each
# of its certificates beside it in NAME.pin. A test run by itself, or after
# this one failed, makes its own as before.

. "${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}/tests/lib.sh"

DIR=${PINPROXY_TEST_PKI:-$top_builddir/tests/pki}
rm -rf "$DIR" "$DIR.new"
if sh "$MKPKI" "$DIR.new" >"$TMP/mkpki.log" 2>&1; then
	ok "mkpki.sh builds the PKI the tests share"
else
	not_ok "mkpki.sh builds the PKI the tests share"
	diag "$(cat "$TMP/mkpki.log")"
	done_testing
fi

# The pins, by the openssl pipeline of the product contract; written after
# the certificates, so that a test can tell a pin from before a change to
# its certificate by the times of the files.
missing=""
for pem in "$DIR.new"/*.pem; do
	case $pem in
	*-chain.pem|*/chain.pem|*/bundle.pem) continue ;;
	esac
	pin=$(sh "$MKPKI" pin "$pem")
	case $pin in
	sha256/?*) printf '%s\n' "$pin" >"${pem%.pem}.pin" ;;
	*) missing="$missing $(basename "$pem")" ;;
	esac
done
check_eq "the pin of every certificate of the shared PKI" "" "$missing"

# Complete: lib.sh takes a shared PKI only with this mark.
if [ -z "$missing" ] && touch "$DIR.new/complete" &&
    mv "$DIR.new" "$DIR"; then
	ok "the shared PKI is in place"
else
	not_ok "the shared PKI is in place"
fi
done_testing
