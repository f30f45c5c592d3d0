#!/bin/bash
# The systemd unit: substituted with the paths of this build tree, it must
# pass "systemd-analyze verify", carry the options SPEC promises, and rate
# "OK" or better in "systemd-analyze security". Checks that need
# systemd-analyze are skipped where it is not installed.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

UNIT_IN="$top_srcdir/systemd/pinproxy.service.in"
UNIT="$TMP/pinproxy.service"
SBINDIR="$TMP/sbin"
SYSCONFDIR="$TMP/etc"

# The unit's ExecStart= must name an existing binary: point @sbindir@ at a
# directory holding the daemon just built.
mkdir -p "$SBINDIR" "$SYSCONFDIR/pinproxy"
ln -s "$PINPROXY" "$SBINDIR/pinproxy"
: > "$SYSCONFDIR/pinproxy/pinproxy.conf"
sed -e "s|@sbindir[@]|$SBINDIR|g" \
    -e "s|@sysconfdir[@]|$SYSCONFDIR|g" \
    -e "s|@statedir[@]|/var/lib/pinproxy|g" \
    "$UNIT_IN" > "$UNIT"

check "every placeholder of the unit is substituted" \
    sh -c "! grep -q '@[a-z]*@' '$UNIT'"

# unit_has KEY=VALUE: the unit sets KEY to exactly VALUE.
unit_has()
{
	grep -qxF -- "$1" "$UNIT"
}

for kv in \
    "Type=notify" \
    "ExecStartPre=$SBINDIR/pinproxy -t -c $SYSCONFDIR/pinproxy/pinproxy.conf" \
    "ExecStart=$SBINDIR/pinproxy -c $SYSCONFDIR/pinproxy/pinproxy.conf" \
    "ExecReload=$SBINDIR/pinproxy -t -c $SYSCONFDIR/pinproxy/pinproxy.conf" \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    "Restart=on-failure" \
    "DynamicUser=yes" \
    "StateDirectory=pinproxy" \
    "StateDirectoryMode=0700" \
    "CapabilityBoundingSet=" \
    "AmbientCapabilities=" \
    "NoNewPrivileges=yes" \
    "ProtectSystem=strict" \
    "ProtectHome=yes" \
    "PrivateTmp=yes" \
    "PrivateDevices=yes" \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
    "SystemCallFilter=@system-service" \
    "SystemCallArchitectures=native" \
    "MemoryDenyWriteExecute=yes" \
    "UMask=0077" \
    "LimitNOFILE=65536" \
    "TimeoutStopSec=30"; do
	check "the unit sets $kv" unit_has "$kv"
done

# The stop timeout must leave room for the default shutdown_timeout.
stop=$(sed -n 's/^TimeoutStopSec=//p' "$UNIT")
shutdown=$(sed -n 's/^shutdown_timeout *= *\([0-9]*\)s.*/\1/p' \
    "$top_builddir/etc/pinproxy.conf")
if [ -n "$shutdown" ]; then
	check "TimeoutStopSec=$stop exceeds shutdown_timeout=${shutdown}s" \
	    test "$stop" -gt "$shutdown"
else
	skip "etc/pinproxy.conf sets no shutdown_timeout in seconds"
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "systemd-analyze verify: systemd-analyze is not installed"
	skip "systemd-analyze security: systemd-analyze is not installed"
	done_testing
fi

# verify also looks up the Documentation= pages with man(1): offer it the
# pages of this build, or skip that part where man is not installed.
man=--man=no
if command -v man >/dev/null 2>&1; then
	for page in "$top_builddir"/man/*.[0-9]; do
		mkdir -p "$TMP/man/man${page##*.}"
		ln -s "$page" "$TMP/man/man${page##*.}/"
	done
	man=--man=yes
fi
if MANPATH="$TMP/man" systemd-analyze verify "$man" "$UNIT" \
    > "$TMP/verify.out" 2>&1 && ! grep -q . "$TMP/verify.out"; then
	ok "systemd-analyze verify $man accepts the unit without a warning"
else
	not_ok "systemd-analyze verify $man accepts the unit without a warning"
	diag "$(cat "$TMP/verify.out")"
fi

if systemd-analyze security --offline=true "$UNIT" \
    > "$TMP/security.out" 2>&1; then
	# The last line: "→ Overall exposure level for pinproxy.service:
	# 1.9 OK 🙂"; the rating is the word after the number.
	rating=$(sed -n 's/.*Overall exposure level for [^:]*: *[0-9.]* *\([A-Z]*\).*/\1/p' \
	    "$TMP/security.out")
	score=$(sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p' \
	    "$TMP/security.out")
	case $rating in
	OK|SAFE|PERFECT)
		ok "systemd-analyze security rates the unit $score $rating" ;;
	*)
		not_ok "systemd-analyze security rates the unit OK or better"
		diag "$(grep '✗' "$TMP/security.out")"
		diag "$(tail -n 1 "$TMP/security.out")" ;;
	esac
else
	not_ok "systemd-analyze security --offline=true runs"
	diag "$(cat "$TMP/security.out")"
fi

done_testing
