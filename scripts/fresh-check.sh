#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tries the README as a new user would, on a fresh Debian 12: builds a
# minimal root with debootstrap, clones this checkout (its committed HEAD)
# into it, runs the README's two commands there (`make demo`, stopped once
# it has made its first call, then `make test`), then builds the Debian
# package and checks that it installs, serves by hand and purges cleanly.
# Prints the tail of each step and one verdict line. Needs root; takes
# 15 to 30 minutes; not part of `make test`.
#
#   scripts/fresh-check.sh [--keep] [--no-deb]
#
# The root goes in $FRESH_ROOT (default: a new folder under /var/tmp) and
# is removed afterwards unless --keep. Ports 7700 and 8080 must be free:
# the root shares the host's network, which is how it reaches the package
# registries. A user who clones has git and make; debootstrap adds those
# two (and the CA certificates) and nothing else.
set -u

KEEP=0
DEB=1
for a in "$@"; do
    case "$a" in
    --keep) KEEP=1 ;;
    --no-deb) DEB=0 ;;
    -h | --help)
        sed -n '3,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "fresh-check: unknown argument '$a'" >&2
        exit 2
        ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "fresh-check: needs root (debootstrap, chroot, mounts)" >&2
    exit 2
fi

REPO=$(cd "$(dirname "$0")/.." && git rev-parse --show-toplevel) || exit 2
HEAD=$(git -C "$REPO" rev-parse --short HEAD)
R=${FRESH_ROOT:-$(mktemp -d /var/tmp/ferry-fresh-XXXXXX)}
LOG=$R.logs
mkdir -p "$R" "$LOG"
# mktemp made it 0700; as the root of a Debian system it is 0755, or no
# other user could reach anything (test_unix_socket connects as uid 65534).
chmod 0755 "$R"
MOUNTS=()
DEMO_PGID=

cleanup() {
    local i
    if [ -n "$DEMO_PGID" ]; then
        kill -TERM -- "-$DEMO_PGID" 2>/dev/null
    fi
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTS[$i]}" 2>/dev/null
    done
    if [ "$KEEP" -eq 0 ]; then
        rm -rf "$R"
    fi
}
trap cleanup EXIT

step() { echo "== fresh-check: $*"; }

# In the root, as root with a clean environment; the host's CA bundle is
# the only one that knows the registries' TLS proxy (npm needs it).
in_root() {
    chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt \
        npm_config_cafile=/etc/ssl/certs/host-ca.crt \
        DEBIAN_FRONTEND=noninteractive \
        bash -c "$1"
}

step "root $R, checkout $REPO at $HEAD"
if ! command -v debootstrap >/dev/null; then
    apt-get update -q >/dev/null && apt-get install -y -q debootstrap \
        >/dev/null || exit 1
fi
if [ ! -x "$R/bin/bash" ]; then
    step "debootstrap --variant=minbase bookworm"
    if ! debootstrap --variant=minbase --include=git,make,ca-certificates \
        bookworm "$R" http://deb.debian.org/debian >"$LOG/debootstrap.log" 2>&1; then
        tail -20 "$LOG/debootstrap.log"
        echo "fresh-check: FAIL (debootstrap)"
        exit 1
    fi
fi
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/host-ca.crt"
for m in proc sys dev dev/pts run tmp; do
    mkdir -p "$R/$m"
done
mount -t proc proc "$R/proc" && MOUNTS+=("$R/proc")
mount -t sysfs sys "$R/sys" && MOUNTS+=("$R/sys")
mount --bind /dev "$R/dev" && MOUNTS+=("$R/dev")
mount -t devpts devpts "$R/dev/pts" && MOUNTS+=("$R/dev/pts")
mount -t tmpfs tmpfs "$R/run" && MOUNTS+=("$R/run")
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp" && MOUNTS+=("$R/tmp")

rm -rf "$R/root/ferry"
git clone -q "$REPO" "$R/root/ferry" || exit 1
# ../shared beside the checkout, as CI has it, when the host has one.
if [ -d "$REPO/../shared" ]; then
    rm -rf "$R/root/shared" && cp -r "$REPO/../shared" "$R/root/shared"
fi
in_root 'node --version 2>/dev/null || echo "no node yet"' \
    >"$LOG/node-before.txt"

# 1. make demo: wait for its first call, then stop it as a user would.
step "make demo"
setsid chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt \
    npm_config_cafile=/etc/ssl/certs/host-ca.crt \
    DEBIAN_FRONTEND=noninteractive \
    bash -c 'cd /root/ferry && exec make demo' >"$LOG/demo.log" 2>&1 &
DEMO_PID=$!
DEMO_PGID=$DEMO_PID
demo=FAIL
for _ in $(seq 1800); do
    if grep -q '^ferry is running' "$LOG/demo.log"; then
        demo=ok
        break
    fi
    kill -0 "$DEMO_PID" 2>/dev/null || break
    sleep 1
done
# SIGTERM, not SIGINT: a job started in the background has SIGINT ignored,
# and a shell cannot trap a signal ignored at its start. demo.sh stops on
# either (Ctrl-C at a terminal was tried by hand, in tmux).
kill -TERM -- "-$DEMO_PGID" 2>/dev/null
for _ in $(seq 30); do
    kill -0 "$DEMO_PID" 2>/dev/null || break
    sleep 1
done
kill -KILL -- "-$DEMO_PGID" 2>/dev/null
wait "$DEMO_PID" 2>/dev/null
DEMO_PGID=
if [ "$demo" = ok ] && { ! grep -q '0 1 1 2 3 5 8 13 21 34' "$LOG/demo.log" ||
    ! grep -q '^demo: stopping' "$LOG/demo.log"; }; then
    demo=FAIL
fi
tail -25 "$LOG/demo.log"
in_root 'node --version' >"$LOG/node-after.txt" 2>&1

# 2. make test, bounded well past its usual run.
step "make test"
in_root 'cd /root/ferry && timeout 3000 make test' >"$LOG/test.log" 2>&1
test_rc=$?
tail -25 "$LOG/test.log"
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG/test.log" | tail -1)
if [ "$test_rc" -eq 0 ] && [ -n "$summary" ] &&
    [ "${summary#* passed, }" = "0 failed" ]; then
    tests="ok ($summary)"
else
    tests="FAIL (${summary:-no summary line}, exit $test_rc)"
fi

# 3. The Debian package: build, install, run by hand, purge.
debv=skipped
if [ "$DEB" -eq 1 ]; then
    step "make deb; apt install; ferryd --config /etc/ferry/ferryd.conf; purge"
    in_root '
set -eux
cd /root/ferry
make deb
apt-get install -y -q ./build/ferry_*_amd64.deb
getent passwd ferry
test -f /etc/ferry/ferryd.conf
dpkg -L ferry | sort > /tmp/ferry-files
/usr/sbin/ferryd --config /etc/ferry/ferryd.conf > /tmp/ferryd.log 2>&1 &
pid=$!
for i in $(seq 50); do
    ferry call echo installed-deb > /tmp/call.out 2>&1 && break
    sleep 0.2
done
grep -qx installed-deb /tmp/call.out
ferry admin reload
man -w ferryd >/dev/null 2>&1 || test -f /usr/share/man/man8/ferryd.8.gz
kill -TERM "$pid"
wait "$pid"
apt-get purge -y -q ferry
left=""
while read -r f; do
    if [ -e "$f" ] && [ ! -d "$f" ]; then left="$left $f"; fi
done < /tmp/ferry-files
test -z "$left" || { echo "left after purge:$left"; exit 1; }
test ! -e /var/lib/ferry
test ! -e /etc/ferry/ferryd.conf
echo DEB-OK
' >"$LOG/deb.log" 2>&1
    deb_rc=$?
    tail -25 "$LOG/deb.log"
    if [ "$deb_rc" -eq 0 ] && grep -q '^DEB-OK$' "$LOG/deb.log"; then
        debv="ok (builds, installs, serves by hand, purges clean)"
    else
        debv="FAIL (exit $deb_rc)"
    fi
fi

node_before=$(cat "$LOG/node-before.txt")
node_after=$(cat "$LOG/node-after.txt")
verdict=PASS
case "$demo $tests $debv" in
*FAIL*) verdict=FAIL ;;
esac
echo "logs: $LOG"
echo "fresh-check: $verdict at $HEAD on Debian $(cat "$R/etc/debian_version")" \
    "(node $node_before -> $node_after): demo $demo; test $tests; deb $debv"
[ "$verdict" = PASS ]
