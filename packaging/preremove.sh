#!/bin/sh
# preremove of the mailfront package (.deb prerm, .rpm %preun).
#
# When the package is removed (not upgraded), stops a running mailfront and
# disables the unit, so that no link to a unit file that is about to go is
# left behind. An upgrade leaves the service alone; postinstall restarts it.
#
# dpkg calls it as "prerm remove", "prerm upgrade NEW-VERSION" and others;
# rpm as "%preun N", N being the number of instances left afterwards (0:
# erase, 1: upgrade).
set -e

case "${1:-}" in
remove | 0) ;;
*) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop mailfront.service || true
	fi
	# Works without a running systemd too (a container, a chroot).
	systemctl --no-reload disable --quiet mailfront.service >/dev/null 2>&1 || true
fi
exit 0
