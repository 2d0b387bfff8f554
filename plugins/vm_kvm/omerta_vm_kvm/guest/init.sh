#!/bin/busybox sh
# Init of the omerta test guest: load the virtio drivers; when the kernel command
# line carries the consumer's SSH key (@SSH_KEY_PARAM@=TYPE:BASE64), make an ed25519
# host key and print it on the serial console (the provider reads it there and
# tells the consumer, who pins it); print the ready marker; serve SSH (dropbear,
# that key only, account omerta) and a shell on TCP port @AGENT_PORT@ (tests) to
# whoever is on the guest's only network, its consumer's VPN. DHCP (honouring the
# MTU option) on the TAP NIC starts first, in the background, and asks every
# second until it has a lease: a rented guest's gateway is normally up before it
# boots, so the lease comes while the host key is made.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /www /dev/pts /etc/dropbear /home/omerta/.ssh
mount -t devpts devpts /dev/pts
while read -r module; do insmod "/lib/modules/$module" 2>/dev/null; done < /lib/modules/order
vm=unknown
key=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        omerta.vm=*) vm="${word#omerta.vm=}" ;;
        @SSH_KEY_PARAM@=*) key="${word#@SSH_KEY_PARAM@=}" ;;
    esac
done
hostname "omerta-$(echo "$vm" | cut -c1-8)"
ip link set lo up
ip link set eth0 up 2>/dev/null
udhcpc -i eth0 -O mtu -s /bin/udhcpc-script -f -t 0 -T 1 > /dev/null 2>&1 &
if [ -n "$key" ]; then
    echo "${key%%:*} ${key#*:}" > /home/omerta/.ssh/authorized_keys
    chmod 700 /home/omerta/.ssh
    chmod 600 /home/omerta/.ssh/authorized_keys
    dropbearkey -t ed25519 -f /etc/dropbear/host_key > /dev/null 2>&1
    hostkey=$(dropbearkey -y -f /etc/dropbear/host_key | grep '^ssh-ed25519 ' | cut -d' ' -f1,2)
    echo "@HOST_KEY_MARKER@ vm=$vm $hostkey" > /dev/ttyS0
fi
echo "@READY_MARKER@ vm=$vm" > /dev/ttyS0
if [ -n "$key" ]; then
    # -s -g: no passwords at all; the authorized key is the only way in
    dropbear -r /etc/dropbear/host_key -p 22 -s -g -E > /tmp/dropbear.log 2>&1
fi
nc -ll -p @AGENT_PORT@ -e /bin/sh > /dev/null 2>&1 &
while true; do sleep 3600; done
