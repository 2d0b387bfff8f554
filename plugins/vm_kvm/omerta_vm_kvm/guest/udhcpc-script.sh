#!/bin/busybox sh
# busybox udhcpc's hook: apply the lease (address, router, DNS and the MTU
# option), report it on the serial console and announce the address (ARP).
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ;;
    bound|renew)
        # address, netmask and MTU in one program (each one started costs a TCG guest tens of ms)
        ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" ${mtu:+mtu "$mtu"}
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        echo "omerta-guest-lease ip=$ip mtu=${mtu:-none} router=$router" > /dev/ttyS0
        : > /tmp/leased  # init prints a rented guest's ready line only after this
        # tell the gateway at once: a connection it started before the lease waits on this address's ARP
        arping -q -U -c 1 -I "$interface" "$ip" &
        ;;
esac
exit 0
