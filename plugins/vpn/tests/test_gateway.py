"""The Linux consumer gateway on its own, built by ``nobody``: what each mode creates, and that nothing outlives it."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from lab import prepare_for_nobody, python_as_nobody

pytestmark = [pytest.mark.root]

#: Builds a gateway as nobody, reports what is inside it, then detaches (or crashes, with ``crash``).
SCRIPT = """
import asyncio, ipaddress, json, os, signal, subprocess, sys
from pathlib import Path
import structlog
from omerta_core.interfaces.common import PeerId
from omerta_core.interfaces.vpn import GatewayMode
from omerta_vpn.gateway import GatewaySpec
from omerta_vpn.gateway_linux import LinuxGateway

async def main() -> None:
    mode, directory, crash = GatewayMode(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "crash"
    spec = GatewaySpec("0123456789abcdef0123456789abcdef", PeerId.from_public_key(bytes(32)), mode,
                       ipaddress.IPv4Network("198.18.255.0/24"), 1229, directory, upstream_dns=False)
    gateway = LinuxGateway(spec, structlog.get_logger())
    await gateway.start()
    enter = list(gateway.info().enter)
    inside = lambda *argv: subprocess.run([*enter, *argv], capture_output=True, text=True).stdout
    report = {
        "uid": os.getuid(),
        "links": inside("ip", "-o", "link"),
        "addresses": inside("ip", "-o", "-4", "addr"),
        "routes": inside("ip", "route"),
        "ruleset": inside("nft", "list", "ruleset"),
        "ipv6_off": inside("sysctl", "-n", "net.ipv6.conf.all.disable_ipv6").strip(),
        "helper": gateway.helper_pid,
        "port_mtu": gateway.port.mtu,
    }
    print(json.dumps(report), flush=True)
    if crash:
        os.kill(os.getpid(), signal.SIGKILL)
    await gateway.stop()

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def processes_using(directory: Path) -> list[str]:
    """Command lines that mention ``directory`` (dnsmasq's and pasta's pid files live there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(cmdline)
    return found


def build(tmp_path: Path, mode: str, crash: bool = False) -> tuple[dict[str, object], Path]:
    directory = prepare_for_nobody(tmp_path / "work") / f"gateway-{mode}"
    argv = [*python_as_nobody(SCRIPT), mode, str(directory), "crash" if crash else "stop"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    reports = [line for line in done.stdout.splitlines() if line.startswith('{"uid"')]  # logs go to stdout too
    assert reports, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(reports[0]), directory


@pytest.mark.parametrize("crash", [False, True], ids=["detach", "kill-9"])
def test_internet_mode_is_built_without_root_and_leaves_nothing(tmp_path: Path, crash: bool) -> None:
    report, directory = build(tmp_path, "internet", crash)
    assert report["uid"] == 65534
    assert "omvm0" in str(report["links"]) and "uplink" in str(report["links"])
    assert "198.18.255.1/24" in str(report["addresses"]) and "default" in str(report["routes"])
    assert "masquerade" in str(report["ruleset"]) and "maxseg size set 1189" in str(report["ruleset"])
    assert report["ipv6_off"] == "1" and report["port_mtu"] == 1229
    assert "DHCP, IP range 198.18.255.2 -- 198.18.255.2" in (directory / "dnsmasq.log").read_text()
    assert _gone(int(str(report["helper"])), directory), processes_using(directory)


def test_isolated_mode_has_no_uplink_and_forwards_nothing(tmp_path: Path) -> None:
    report, directory = build(tmp_path, "isolated")
    assert "uplink" not in str(report["links"]) and "default" not in str(report["routes"])
    assert "masquerade" not in str(report["ruleset"]) and "policy drop" in str(report["ruleset"])
    assert _gone(int(str(report["helper"])), directory)


def _gone(helper: int, directory: Path) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(helper) and not processes_using(directory):
            return True
        time.sleep(0.1)
    return False
