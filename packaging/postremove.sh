#!/bin/sh
# postremove of the mailfront package (.deb postrm, .rpm %postun).
#
# After a removal, tells a running systemd that the unit is gone.
#
# On a purge (dpkg only: "apt-get purge mailfront"), also deletes
# /var/lib/mailfront: the ACME account, keys and certificates, which
# mailfront obtains again on its next start. dpkg itself deletes the
# configuration file. The user and group mailfront are kept, as Debian
# advises: files they own may remain elsewhere (backups, certificate copies),
# and a new account given the freed ids would own them.
#
# "apt-get remove" (and "rpm -e", which has no purge) keeps the configuration
# and /var/lib/mailfront, so that installing the package again carries on
# where it stopped.
#
# dpkg calls it as "postrm remove", "postrm purge", "postrm upgrade
# NEW-VERSION" and others; rpm as "%postun N" (0: erase, 1: upgrade).
set -e

case "${1:-}" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac

if [ "${1:-}" = purge ]; then
	rm -rf /var/lib/mailfront
	# Empty once dpkg has deleted the configuration file and its
	# .dpkg-old/.dpkg-dist copies; anything else in it is the operator's.
	rmdir /etc/mailfront 2>/dev/null || true
fi
exit 0
