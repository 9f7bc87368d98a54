#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages ferry builds and tests with. Safe to run again:
# it installs only what is missing. As root it runs apt-get; otherwise it
# prints the one command to run.
set -eu

PKGS=(
    build-essential pkg-config
    libuv1-dev libinih-dev libgmp-dev libjansson-dev libxxhash-dev
    libcmocka-dev clang libclang-rt-14-dev
    libh2o-dev wrk apache2-utils curl
    # The durable store (src/store/); mdb_stat and friends to inspect it.
    liblmdb-dev lmdb-utils
    python3
    # The Python client's benchmark peers (bench/clients/python_bench.py).
    python3-redis redis-server
    # sd_notify for Type=notify; systemd-analyze checks the unit file.
    libsystemd-dev systemd
    # The man pages are checked by mandoc and groff; make deb needs these.
    mandoc groff-base dpkg-dev debhelper fakeroot
    # clients/php: the client and worker (pcntl, posix are in php-cli), the
    # Fibonacci example (gmp; bcmath as fallback), its PHPUnit tests, and
    # the real frontend its FPM test and bench start (nginx, php-fpm).
    php-cli php-gmp php-bcmath phpunit php8.2-fpm nginx
    # The PHP client's peer in bench/clients/php_client_bench.sh (with
    # redis-server above).
    php-redis
    # The cache's peer in bench/cache_shift.sh (and, later, the memcached
    # face's differential tests).
    memcached
    # Real memcached clients the memcached face is tested with
    # (tests/integration/test_memcache_clients.py).
    python3-pymemcache php-memcached libmemcached-tools
    # The queue benchmark's peers (bench/queue_peers.sh; Redis above) and
    # the pub/sub benchmark's (NATS).
    beanstalkd nats-server
    # The cluster (src/cluster/): etcd's v3 JSON gateway through libcurl's
    # multi interface; its tests start a real etcd and put each ferryd in a
    # network namespace of its own (ip netns, veth, a bridge).
    etcd-server etcd-client libcurl4-openssl-dev iproute2
)

# The dashboard is bundled with npm at build time and its test drives
# Debian's chromium. Node.js is often installed some other way (NodeSource,
# nvm); ask for Debian's only when there is no node or npm at all.
PKGS+=(chromium)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
        | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ferry: missing packages: ${missing[*]}" >&2
    echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "ferry: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
