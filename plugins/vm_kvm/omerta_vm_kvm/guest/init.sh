#!/bin/busybox sh
# Init of the omerta test guest: load the virtio drivers; when the kernel command
# line carries the consumer's SSH key (@SSH_KEY_PARAM@=TYPE:BASE64), serve SSH
# (dropbear, that key only, account omerta) with the host key the provider put in
# this VM's initramfs (/etc/dropbear/host_key; the provider told the consumer its
# public half, who pins it) and print the ready marker once dropbear listens and the
# lease is applied (at most 5 s each); serve a
# shell on TCP port @AGENT_PORT@ (tests) to whoever is on the guest's only network,
# its consumer's VPN. DHCP (honouring the MTU option) on the TAP NIC starts first,
# in the background, and asks every second until it has a lease: a rented guest's
# gateway is normally up before it boots, so the lease comes while dropbear starts.
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
    umask 077  # (no chmod: every program started costs the emulated CPU tens of ms)
    echo "${key%%:*} ${key#*:}" > /home/omerta/.ssh/authorized_keys
    umask 022
    # -s -g: no passwords at all; the authorized key is the only way in
    dropbear -r /etc/dropbear/host_key -p 22 -s -g -E > /tmp/dropbear.log 2>&1
    # dropbear listens in its background child: wait for it (10 ms steps, at most 5 s), so that a
    # login right after the ready line finds it (port 22 is 0016 in /proc/net/tcp, 0A is LISTEN)
    tries=500
    while [ "$tries" -gt 0 ]; do
        while read -r _ local _ state _; do
            [ "$state" = 0A ] && [ "${local#*:}" = 0016 ] && tries=0
        done < /proc/net/tcp
        [ "$tries" -gt 0 ] && usleep 10000 && tries=$((tries - 1))
    done
    # ready means its consumer can log in: wait for the DHCP lease too (50 ms steps, at most 5 s), else a
    # login started at the ready line waits on ARP for an address the guest does not have yet
    tries=100
    while [ ! -e /tmp/leased ] && [ "$tries" -gt 0 ]; do usleep 50000; tries=$((tries - 1)); done
fi
echo "@READY_MARKER@ vm=$vm" > /dev/ttyS0
nc -ll -p @AGENT_PORT@ -e /bin/sh > /dev/null 2>&1 &
while true; do sleep 3600; done
