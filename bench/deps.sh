#!/bin/sh
# Installs the peers `make bench` compares yubin with (Postfix, with its
# smtp-source and smtp-sink load tools, and Dovecot), only when some are
# missing, so a warm machine never touches the network.
#
# Installing them must not leave a system-wide mail server running: the
# project's tests run on this machine too and expect ports 25/110/143/993
# free. So the install runs with a policy-rc.d that forbids starting
# services (exit 101, see /usr/share/doc/init-system-helpers/README.policy-rc.d),
# Postfix is preseeded to "No configuration", and afterwards any instance
# the packages started anyway is stopped and disabled. The benchmark runs
# its own private instances (bench/run.py).
set -e
pkgs="postfix dovecot-core dovecot-imapd dovecot-pop3d python3 procps"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "bench/deps.sh: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
rcd=/usr/sbin/policy-rc.d
made_rcd=
if [ ! -e "$rcd" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$rcd" >/dev/null
	$SUDO chmod 755 "$rcd"
	made_rcd=1
fi
cleanup() {
	[ -n "$made_rcd" ] && $SUDO rm -f "$rcd"
	return 0
}
trap cleanup EXIT INT TERM
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
# Belt and braces: nothing system-wide stays up or starts at boot.
for s in postfix dovecot; do
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		$SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
		$SUDO systemctl disable --now "$s.socket" >/dev/null 2>&1 || true
	fi
	command -v update-rc.d >/dev/null 2>&1 && $SUDO update-rc.d "$s" disable >/dev/null 2>&1 || true
done
[ -e /etc/postfix/main.cf ] && $SUDO postfix stop >/dev/null 2>&1 || true
$SUDO doveadm stop >/dev/null 2>&1 || true
exit 0
