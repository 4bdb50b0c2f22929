#!/bin/sh
# Install the Debian packages yubin needs to build, run or test, only when
# some are missing, so a warm machine never touches the network.
# Usage: scripts/deps.sh build|test
set -e
pkgs="gcc clang make meson ninja-build pkg-config libevent-dev libssl-dev
libsqlite3-dev libsodium-dev libinih-dev libc-ares-dev zlib1g-dev libcrypt-dev
openssl netcat-openbsd telnet"
if [ "${1:-build}" = test ]; then
	pkgs="$pkgs python3 python3-pytest swaks libnet-ssleay-perl msmtp fetchmail libclang-rt-14-dev mutt isync"
	# the DNS tests' server and the relay rig's network namespaces
	pkgs="$pkgs python3-dnslib iproute2"
	# the systemd unit's check (systemd-analyze) and `make valgrind`
	pkgs="$pkgs systemd valgrind"
	# the SPF and DMARC unit tests read the community suites' YAML
	pkgs="$pkgs python3-yaml"
	# DKIM interop (tests/cli/test_cli_dkim.py): dkimpy and its Ed25519
	pkgs="$pkgs python3-dkim python3-nacl"
	# the imapflow interop test (tests/node): Debian's node and npm, unless
	# some node and npm are on the PATH already
	command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
	command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		SUDO=sudo
	else
		SUDO=
	fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ "${1:-build}" = test ]; then
	# tests/node's packages (package-lock.json, exact versions), fetched
	# only when node_modules is missing or was made from another lock file:
	# the stamp is the lock file npm ci last installed.
	node=$(dirname "$0")/../tests/node
	if ! cmp -s "$node/package-lock.json" "$node/node_modules/.yubin-lock" 2>/dev/null; then
		echo "npm ci in tests/node"
		(cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
		cp "$node/package-lock.json" "$node/node_modules/.yubin-lock"
	fi
fi
