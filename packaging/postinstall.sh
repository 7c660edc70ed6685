#!/bin/sh
# postinstall of the mailfront package (.deb postinst, .rpm %post).
#
# Creates the system user and group mailfront, its state directory
# /var/lib/mailfront (mailfront:mailfront 0700: the ACME account, keys and
# certificates), lets the group read /etc/mailfront/mailfront.yaml, and
# makes mailfront a member of the group ssl-cert when that exists. Then it
# tells a running systemd about the unit. It never enables or starts mailfront: the
# operator edits the configuration first. On an upgrade it restarts a
# mailfront that is running, so that the new binary serves.
#
# dpkg calls it as "postinst configure OLD-VERSION" (OLD-VERSION empty on a
# first install) or "postinst abort-*"; rpm as "%post N", N being the number
# of installed instances afterwards (1: install, 2: upgrade). Running it
# twice changes nothing.
set -e

user=mailfront
state=/var/lib/mailfront
config=/etc/mailfront/mailfront.yaml

upgrade=no
case "${1:-}" in
configure)
	[ -z "${2:-}" ] || upgrade=yes
	;;
abort-upgrade | abort-remove | abort-deconfigure) ;;
[0-9]*)
	[ "$1" -lt 2 ] || upgrade=yes
	;;
*)
	exit 0
	;;
esac

nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
[ -x "$nologin" ] || nologin=/bin/false

if ! getent group "$user" >/dev/null; then
	groupadd --system "$user"
fi
if ! getent passwd "$user" >/dev/null; then
	useradd --system --gid "$user" --home-dir "$state" --no-create-home \
		--shell "$nologin" --comment "mailfront TLS front" "$user"
fi

# A symbolic link here is systemd's (DynamicUser= once in force); systemd
# moves it back itself.
if [ ! -L "$state" ]; then
	install -d -o "$user" -g "$user" -m 0700 "$state"
fi

# The package ships the file as root:root 0640 (dpkg and rpm cannot give it
# a group that the package only now creates); an operator's own choice of
# group is kept.
if [ -f "$config" ] && [ "$(stat -c %G "$config")" = root ]; then
	chgrp "$user" "$config"
fi

# Debian's group for reading private keys (the ssl-cert package makes it):
# a key given to it, such as certbot's after a chgrp, is then readable by
# mailfront. Installed later, ssl-cert needs "usermod -aG ssl-cert mailfront".
if getent group ssl-cert >/dev/null && ! id -nG "$user" | tr ' ' '\n' | grep -qx ssl-cert; then
	usermod -a -G ssl-cert "$user"
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ "$upgrade" = yes ]; then
		systemctl try-restart mailfront.service || true
	fi
fi
exit 0
