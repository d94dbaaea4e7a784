#!/bin/sh
# wanwatch: keepalived's notify script (generated). Follows conntrackd's
# primary-backup.sh. $3 is the new state of the sync group.
case "$3" in
MASTER)
	# the peer's connections (NAT included) into the kernel, then own them
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -c
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -f
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -R
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -B
	;;
BACKUP)
	# the master's connections from now on, in full
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -n
	;;
FAULT)
	# keep the kernel's entries only until they would time out
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -t
	/usr/sbin/conntrackd -C /var/lib/wanwatch/conntrackd.conf -n
	;;
esac
echo "$3" > /var/lib/wanwatch/ha-role.new && mv /var/lib/wanwatch/ha-role.new /var/lib/wanwatch/ha-role
