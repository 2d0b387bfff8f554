#!/bin/busybox sh
# Init of the omerta test guest: load the virtio drivers, configure the TAP NIC
# with a lab address, print the ready marker on the serial console, then idle.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "/lib/modules/$module" 2>/dev/null; done < /lib/modules/order
vm=unknown
for word in $(cat /proc/cmdline); do
    case "$word" in omerta.vm=*) vm="${word#omerta.vm=}" ;; esac
done
ip link set lo up
ip link set eth0 up 2>/dev/null && ip addr add 198.18.0.2/24 dev eth0 2>/dev/null
echo "@READY_MARKER@ vm=$vm" > /dev/ttyS0
while true; do sleep 3600; done
