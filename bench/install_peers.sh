#!/bin/sh
# `make bench-peers`, after LiteLLM: the other peers of `make bench`, each bounded in time and
# skipped with a printed reason when it cannot be installed (never an error: `make bench` reports
# a peer that is not there as not measured).
#   nginx    Debian's package, unpacked into bench/.peers/nginx (no service, no root needed when
#            the package lists are there; as root, one `apt-get update` when they are not)
#   Portkey  @portkey-ai/gateway from npm into bench/.peers/portkey, run with the machine's Node
#   pyreqwest into .venv, for bench/bench_clients.py (the upstream client candidates)
set -u
cd "$(dirname "$0")/.." || exit 0
PEERS=bench/.peers
PORTKEY_SPEC=${PORTKEY_SPEC:-@portkey-ai/gateway@1.15.2}
mkdir -p "$PEERS"

nginx_peer() {
    if [ -x "$PEERS/nginx/usr/sbin/nginx" ] || command -v nginx >/dev/null 2>&1; then
        echo "bench-peers: nginx already there"; return
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
        echo "bench-peers: nginx skipped: no apt-get/dpkg on this machine"; return
    fi
    tmp=$(mktemp -d) || return
    ( cd "$tmp" && timeout 300 apt-get download -q nginx >/dev/null 2>&1 ) \
        || { [ "$(id -u)" = 0 ] && timeout 300 apt-get update -qq >/dev/null 2>&1 \
             && ( cd "$tmp" && timeout 300 apt-get download -q nginx >/dev/null 2>&1 ); }
    deb=$(ls "$tmp"/nginx_*.deb 2>/dev/null | head -n 1)
    if [ -n "$deb" ] && dpkg -x "$deb" "$PEERS/nginx" && "$PEERS/nginx/usr/sbin/nginx" -v 2>/dev/null; then
        echo "bench-peers: $("$PEERS/nginx/usr/sbin/nginx" -v 2>&1) unpacked into $PEERS/nginx"
    else
        rm -rf "$PEERS/nginx"
        echo "bench-peers: nginx skipped: the Debian package could not be downloaded or run"
    fi
    rm -rf "$tmp"
}

portkey_peer() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "bench-peers: Portkey skipped: no node/npm on this machine"; return
    fi
    if timeout 600 npm install --no-audit --no-fund --loglevel=error --prefix "$PEERS/portkey" \
        "$PORTKEY_SPEC" >/dev/null 2>&1; then
        echo "bench-peers: $PORTKEY_SPEC installed into $PEERS/portkey (node $(node --version))"
    else
        echo "bench-peers: Portkey skipped: npm install $PORTKEY_SPEC failed or timed out"
    fi
}

pyreqwest_peer() {
    if [ ! -x .venv/bin/pip ]; then
        echo "bench-peers: pyreqwest skipped: no .venv (make setup)"; return
    fi
    if timeout 300 .venv/bin/pip install -q --disable-pip-version-check pyreqwest >/dev/null 2>&1; then
        echo "bench-peers: pyreqwest installed into .venv (bench/bench_clients.py)"
    else
        echo "bench-peers: pyreqwest skipped: pip install failed or timed out"
    fi
}

nginx_peer
portkey_peer
pyreqwest_peer
exit 0
