#!/bin/sh
# First start of `make run`: a demo domain and two accounts with random
# passwords, printed once. Later starts only print how to talk to the server.
set -e
yubin=$1
conf=$2
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

yubin is starting on 127.0.0.1 (config: $conf, data: var/).
Talk to it from another terminal:
  telnet 127.0.0.1 2525      (or: nc -C 127.0.0.1 2525; -C sends CR LF line ends)
      then type: EHLO me / MAIL FROM:<you@example.org> /
                 RCPT TO:<kuroyagi@example.com> / DATA / your text / . / QUIT
  $yubin -c $conf mail list kuroyagi@example.com
Stop it with Ctrl-C.

MSG
