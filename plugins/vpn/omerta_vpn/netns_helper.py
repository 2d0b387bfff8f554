"""The consumer gateway's anchor process, run inside a fresh user + network namespace.

The node starts ``unshare --user --map-root-user --net python -m
omerta_vpn.netns_helper SPEC_JSON`` with one end of a Unix socket pair as
the descriptor the spec names. Inside (root of its own user namespace, no real privilege) it:
brings up ``lo``; turns IPv6 off; creates the TAP that stands for the VM's NIC
with the gateway address; loads the gateway's nftables ruleset; passes the
TAP's descriptor back over the socket; starts dnsmasq; reports ``ready``; and
then lives until the socket closes (the node detached or died), when it stops
dnsmasq and exits, which removes the namespace. Touches only the namespace it runs in and the
gateway's directory. Standard library only (and this package's pure
modules), so any Python 3.11 the user can run will do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from omerta_vpn import ruleset
from omerta_vpn.tun import open_tap


def _run(*argv: str, stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])}: {done.stderr.strip() or done.stdout.strip()}")


def _dnsmasq_argv(spec: dict[str, Any]) -> list[str]:
    directory = Path(spec["directory"])
    argv = [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--user=root",
        "--group=",  # empty: keep the group (setgroups is denied in an unprivileged user namespace)
        f"--pid-file={directory / 'dnsmasq.pid'}",
        f"--dhcp-leasefile={directory / 'dnsmasq.leases'}",
        f"--interface={spec['tap']}",
        "--bind-interfaces",
        "--except-interface=lo",
        f"--dhcp-range={spec['vm_address']},{spec['vm_address']},{spec['netmask']},{spec['lease_s']}",
        f"--dhcp-option=option:router,{spec['gateway_address']}",
        f"--dhcp-option=option:dns-server,{spec['gateway_address']}",
        f"--dhcp-option=option:mtu,{spec['mtu']}",
        "--dhcp-authoritative",
        "--dhcp-rapid-commit",
        # no ping before an offer: the link has the VM alone, and the ping's 3 s wait held up every first lease
        "--no-ping",
        "--no-hosts",
        f"--log-facility={directory / 'dnsmasq.log'}",
        "--log-dhcp",
    ]
    if spec["mode"] == "isolated" or not spec["upstream_dns"]:
        argv.append("--no-resolv")
    return argv


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    control = socket.socket(fileno=int(spec["control_fd"]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    dnsmasq: subprocess.Popen[bytes] | None = None
    try:
        tap, cidr = spec["tap"], f"{spec['gateway_address']}/{spec['prefix_len']}"
        _run("ip", "link", "set", "lo", "up")
        _run("sysctl", "-q", "-w", *ruleset.sysctls(spec["mode"]))
        fd = open_tap(tap, vnet=True)  # takes the provider's TCP super-frames whole (GSO)
        _run("ip", "link", "set", tap, "mtu", str(spec["mtu"]), "address", spec["tap_mac"], "up")
        _run("ip", "addr", "add", cidr, "dev", tap)
        _run("nft", "-f", "-", stdin=ruleset.nft_ruleset(spec["mode"], tap, spec["mtu"], spec["subnet"]))
        socket.send_fds(control, [b"tap"], [fd])
        os.close(fd)
        dnsmasq = subprocess.Popen(_dnsmasq_argv(spec), stdin=subprocess.DEVNULL)
        control.sendall(json.dumps({"ready": True, "dnsmasq_pid": dnsmasq.pid}).encode() + b"\n")
        while control.recv(4096):
            pass
    except Exception as exc:
        message = json.dumps({"ready": False, "error": str(exc)[:500]}).encode() + b"\n"
        with contextlib.suppress(OSError):
            control.sendall(message)
        return 1
    finally:
        if dnsmasq is not None:
            dnsmasq.terminate()
            try:
                dnsmasq.wait(timeout=5)
            except subprocess.TimeoutExpired:
                dnsmasq.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
