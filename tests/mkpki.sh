#!/bin/sh
# A throw-away PKI for the end-to-end tests, made with the openssl command.
# Keys are EC P-256 unless said otherwise, so that a full PKI takes well
# under a second.
#
# mkpki.sh DIR
#	Create DIR (if needed) and fill it with:
#	  root.pem root.key		root CA "pinproxy test root"
#	  inter.pem inter.key		intermediate CA issued by root
#	  leaf.pem leaf.key		server certificate issued by inter for
#					DNS:api.test, DNS:localhost,
#					IP:127.0.0.1, IP:::1
#	  chain.pem			leaf + inter (what a server sends)
#	  bundle.pem			leaf + inter + root
#	  rsa.pem rsa.key rsa-chain.pem	RSA-2048 server certificate issued by
#					inter for DNS:rsa.test, DNS:localhost,
#					IP:127.0.0.1, IP:::1 (+ inter)
#	  selfsigned.pem selfsigned.key	self-signed server certificate for
#					DNS:self.test, DNS:localhost,
#					IP:127.0.0.1, IP:::1
#	  foreign-root.pem .key		another, unrelated root CA
#	  foreign-leaf.pem .key		issued by foreign-root for the same names
#					as leaf; foreign-leaf-chain.pem adds
#					foreign-root
#	The appended-intermediate attack is foreign-leaf served with the
#	genuine intermediate appended:
#	  openssl s_server -cert foreign-leaf.pem -key foreign-leaf.key \
#	      -cert_chain inter.pem ...
#
# mkpki.sh leaf DIR NAME SANS [ISSUER [ec|rsa]]
#	Add NAME.pem, NAME.key and NAME-chain.pem (NAME + ISSUER) to DIR: a
#	server certificate for SANS, an openssl subjectAltName value such as
#	"DNS:a.test,IP:127.0.0.1", issued by ISSUER (a CA of DIR, known by
#	the name of its .pem/.key pair; default inter). Its CN is the first
#	name of SANS.
#
# mkpki.sh ca DIR NAME [ISSUER]
#	Add a CA NAME.pem/NAME.key to DIR: a self-signed root without
#	ISSUER, otherwise an intermediate issued by ISSUER.
#
# mkpki.sh chainca DIR NAME ISSUER
#	Add an intermediate CA NAME.pem/NAME.key issued by ISSUER without a
#	path length limit, a link of a long chain.
#
# mkpki.sh nosan DIR NAME CN [ISSUER]
#	Add NAME.pem, NAME.key and NAME-chain.pem to DIR: a server certificate
#	whose only name is its subject CN (no subjectAltName), issued by
#	ISSUER (default inter).
#
# mkpki.sh weakca DIR NAME KIND
#	Add a self-signed CA NAME.pem/NAME.key to DIR that an interception
#	CA should not be: KIND rsa1024 (an RSA key of 1024 bits), sha1
#	(signed with SHA-1) or 30y (valid for 30 years).
#
# mkpki.sh pin FILE
#	Print the pin of the first certificate of FILE (PEM or DER) computed
#	with the openssl pipeline that pinproxy-pin replaces.
#
# Every certificate is valid from now for several years. Exit status is
# non-zero, with openssl's message, when anything fails.

set -eu

LEAF_DAYS=825
CA_DAYS=3650

usage()
{
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# The openssl configuration: one section per kind of certificate. SAN
# must be in the environment whenever openssl reads it, even where the
# section does not use it.
write_cnf()
{
	cat >"$1/mkpki.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[root_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[chain_ext]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[inter_ext]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = $ENV::SAN
[nosan_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[self_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = $ENV::SAN
EOF
}

# newkey FILE ALG: a private key, EC P-256, RSA-2048 or RSA-1024.
newkey()
{
	case $2 in
	ec)
		openssl genpkey -algorithm EC \
		    -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null ;;
	rsa)
		openssl genpkey -algorithm RSA \
		    -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null ;;
	rsa1024)
		openssl genpkey -algorithm RSA \
		    -pkeyopt rsa_keygen_bits:1024 -out "$1" 2>/dev/null ;;
	*)
		echo "mkpki.sh: unknown key type: $2" >&2
		exit 2 ;;
	esac
	chmod 600 "$1"
}

serial()
{
	echo "0x$(openssl rand -hex 8)"
}

# selfsign DIR NAME SUBJECT SECTION SAN [DIGEST [DAYS]]: a self-signed
# certificate, signed with DIGEST (default sha256), valid for DAYS.
selfsign()
{
	SAN=$5
	export SAN
	openssl req -x509 -new -config "$1/mkpki.cnf" \
	    -extensions "$4" -key "$1/$2.key" -subj "$3" \
	    -"${6:-sha256}" -set_serial "$(serial)" -days "${7:-$CA_DAYS}" \
	    -out "$1/$2.pem"
}

# issue DIR NAME SUBJECT SECTION SAN ISSUER DAYS: a certificate for
# NAME.key signed by ISSUER.
issue()
{
	SAN=$5
	export SAN
	openssl req -new -config "$1/mkpki.cnf" -key "$1/$2.key" -subj "$3" |
	openssl x509 -req -CA "$1/$6.pem" -CAkey "$1/$6.key" \
	    -set_serial "$(serial)" -days "$7" -extfile "$1/mkpki.cnf" \
	    -extensions "$4" -out "$1/$2.pem" 2>/dev/null
}

# make_ca DIR NAME [ISSUER]
make_ca()
{
	newkey "$1/$2.key" ec
	if [ $# -lt 3 ] || [ -z "$3" ]; then
		selfsign "$1" "$2" "/O=pinproxy test/CN=pinproxy $2" \
		    root_ext "DNS:unused"
	else
		issue "$1" "$2" "/O=pinproxy test/CN=pinproxy $2" \
		    inter_ext "DNS:unused" "$3" "$CA_DAYS"
	fi
}

# make_leaf DIR NAME SANS ISSUER ALG
make_leaf()
{
	cn=$(echo "$3" | sed 's/^[A-Za-z]*://; s/,.*//')
	newkey "$1/$2.key" "$5"
	issue "$1" "$2" "/O=pinproxy test/CN=$cn" leaf_ext "$3" "$4" \
	    "$LEAF_DAYS"
	cat "$1/$2.pem" "$1/$4.pem" >"$1/$2-chain.pem"
}

make_default()
{
	names="DNS:api.test,DNS:localhost,IP:127.0.0.1,IP:::1"

	make_ca "$1" root
	make_ca "$1" inter root
	make_leaf "$1" leaf "$names" inter ec
	cp "$1/leaf-chain.pem" "$1/chain.pem"
	cat "$1/leaf.pem" "$1/inter.pem" "$1/root.pem" >"$1/bundle.pem"
	make_leaf "$1" rsa \
	    "DNS:rsa.test,DNS:localhost,IP:127.0.0.1,IP:::1" inter rsa

	newkey "$1/selfsigned.key" ec
	selfsign "$1" selfsigned "/O=pinproxy test/CN=self.test" self_ext \
	    "DNS:self.test,DNS:localhost,IP:127.0.0.1,IP:::1"

	make_ca "$1" foreign-root
	make_leaf "$1" foreign-leaf "$names" foreign-root ec
}

# make_nosan DIR NAME CN ISSUER
make_nosan()
{
	newkey "$1/$2.key" ec
	issue "$1" "$2" "/O=pinproxy test/CN=$3" nosan_ext "DNS:unused" "$4" \
	    "$LEAF_DAYS"
	cat "$1/$2.pem" "$1/$4.pem" >"$1/$2-chain.pem"
}

# make_weakca DIR NAME KIND
make_weakca()
{
	subj="/O=pinproxy test/CN=pinproxy $2"
	case $3 in
	rsa1024)
		newkey "$1/$2.key" rsa1024
		selfsign "$1" "$2" "$subj" root_ext "DNS:unused" ;;
	sha1)
		newkey "$1/$2.key" ec
		selfsign "$1" "$2" "$subj" root_ext "DNS:unused" sha1 ;;
	30y)
		newkey "$1/$2.key" ec
		selfsign "$1" "$2" "$subj" root_ext "DNS:unused" sha256 \
		    10958 ;;
	*)
		echo "mkpki.sh: unknown weak CA kind: $3" >&2
		exit 2 ;;
	esac
}

# pin FILE: the SPKI SHA-256 pipeline of the product contract.
pin()
{
	if grep -q -- '-----BEGIN CERTIFICATE-----' "$1"; then
		form=PEM
	else
		form=DER
	fi
	b64=$(openssl x509 -inform "$form" -in "$1" -pubkey -noout |
	    openssl pkey -pubin -outform der |
	    openssl dgst -sha256 -binary |
	    openssl enc -base64)
	echo "sha256/$b64"
}

[ $# -ge 1 ] || usage
case $1 in
leaf)
	[ $# -ge 4 ] && [ $# -le 6 ] || usage
	write_cnf "$2"
	make_leaf "$2" "$3" "$4" "${5:-inter}" "${6:-ec}"
	;;
ca)
	[ $# -ge 3 ] && [ $# -le 4 ] || usage
	write_cnf "$2"
	make_ca "$2" "$3" "${4:-}"
	;;
chainca)
	[ $# -eq 4 ] || usage
	write_cnf "$2"
	newkey "$2/$3.key" ec
	issue "$2" "$3" "/O=pinproxy test/CN=pinproxy $3" chain_ext \
	    "DNS:unused" "$4" "$CA_DAYS"
	;;
nosan)
	[ $# -ge 4 ] && [ $# -le 5 ] || usage
	write_cnf "$2"
	make_nosan "$2" "$3" "$4" "${5:-inter}"
	;;
weakca)
	[ $# -eq 4 ] || usage
	write_cnf "$2"
	make_weakca "$2" "$3" "$4"
	;;
pin)
	[ $# -eq 2 ] || usage
	pin "$2"
	;;
-*)
	usage
	;;
*)
	[ $# -eq 1 ] || usage
	mkdir -p "$1"
	write_cnf "$1"
	make_default "$1"
	;;
esac
