#!/bin/sh
# `make run`: the first start makes a demo domain and two accounts with
# random passwords, printed once; every start prints how to talk to the
# server, then becomes it (yubin serve in the foreground).
#
# Started as root, yubin drops to the config's `user` (nobody), which must
# be able to walk down to the data folder. A checkout under /root (mode
# 0700) does not let it: then the data goes to /var/lib/yubin-dev instead,
# with a copy of the config next to it (its relative paths then point
# there), and one line says so. Nothing in the checkout's modes changes.
set -e
yubin=$1
conf=$2
data=var
devdir=/var/lib/yubin-dev

if [ "$(id -u)" = 0 ]; then
	user=$(sed -n 's/^[[:space:]]*user[[:space:]]*=[[:space:]]*\([^[:space:];#]*\).*/\1/p' "$conf" | head -n 1)
	top=$(cd "$(dirname "$conf")/.." && pwd)
	if [ -n "$user" ] && ! setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
			test -x "$top" 2>/dev/null; then
		mkdir -p "$devdir/etc"
		chmod 0755 "$devdir" "$devdir/etc"
		cp "$conf" "$devdir/etc/yubin.conf"
		conf=$devdir/etc/yubin.conf
		data=$devdir/var
		echo "note: running as root and user $user cannot reach $top/var, so the data is in $data (config: $conf, a copy of $2)"
	fi
fi

if ! "$yubin" -c "$conf" domain list 2>/dev/null | grep -qx example.com; then
	"$yubin" -c "$conf" domain add example.com
	for user in shiroyagi kuroyagi; do
		pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
		printf '%s\n' "$pw" | "$yubin" -c "$conf" user add "$user@example.com"
		echo "created $user@example.com with password: $pw"
	done
	echo "(the passwords are shown only this once; change one with"
	echo " $yubin -c $conf user passwd ADDRESS)"
fi
cat <<MSG

yubin is starting on 127.0.0.1 (config: $conf, data: $data/).
Talk to it from another terminal:
  telnet 127.0.0.1 2525      (or: nc -C 127.0.0.1 2525; -C sends CR LF line ends)
      then type: EHLO me / MAIL FROM:<you@example.org> /
                 RCPT TO:<kuroyagi@example.com> / DATA / your text / . / QUIT
  $yubin -c $conf mail list kuroyagi@example.com
Stop it with Ctrl-C.

MSG
exec "$yubin" -c "$conf" serve
