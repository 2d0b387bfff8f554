#!/bin/busybox sh
# Init of the omerta test guest: load the virtio drivers, print the ready marker
# on the serial console, then ask for an address by DHCP (honouring the MTU
# option) on the TAP NIC, which is the guest's only network, and serve a shell
# on TCP port @AGENT_PORT@ for whoever is on that network (the consumer, through its VPN).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /etc /www
while read -r module; do insmod "/lib/modules/$module" 2>/dev/null; done < /lib/modules/order
vm=unknown
for word in $(cat /proc/cmdline); do
    case "$word" in omerta.vm=*) vm="${word#omerta.vm=}" ;; esac
done
ip link set lo up
ip link set eth0 up 2>/dev/null
echo "@READY_MARKER@ vm=$vm" > /dev/ttyS0
nc -ll -p @AGENT_PORT@ -e /bin/sh > /dev/null 2>&1 &
udhcpc -i eth0 -O mtu -s /bin/udhcpc-script -b -t 5 -T 1 -A 1 > /dev/null 2>&1
while true; do sleep 3600; done
