"""A real package index on loopback (pypiserver), and a stranger's fresh venv that installs from it.

The rehearsal of a release: distributions are uploaded with twine as to the public index, then
installed by name into a venv that sees only this index plus the public one (for third-party
dependencies). It fails when an uploaded wheel depends on the kernel's former name or on an Omerta
distribution that was not uploaded, and when anything Omerta's came from elsewhere than this index.
Touches the directories it is given, one loopback port, and the processes it starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path
from typing import Any, Self

from packaging.utils import canonicalize_name

from omerta_core.plugin_api import FORMER_KERNEL_DISTRIBUTION

from .distributions import BuiltWheel

START_TIMEOUT_S = 60.0
PIP_TIMEOUT_S = 900
POLL_INTERVAL_S = 0.1
#: pip settings of the machine that would let it see more than the two indexes of the rehearsal.
PIP_VARIABLES_DROPPED = ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONSTRAINT", "PIP_REQUIREMENT")


class RehearsalError(AssertionError):
    """The release would not install for a stranger; the message says which distribution and why."""


def is_ours(name: str) -> bool:
    return canonicalize_name(name).startswith("omerta")


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PackageIndex:
    """``pypi-server`` on 127.0.0.1 serving ``packages_dir``; uploads go through twine."""

    def __init__(self, packages_dir: Path, log_path: Path) -> None:
        self.packages_dir = packages_dir
        self.log_path = log_path
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.simple_url = f"{self.url}simple/"
        self.uploaded: dict[str, BuiltWheel] = {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            *(str(Path(sys.executable).with_name("pypi-server")), "run"),
            *("--host", "127.0.0.1", "--port", str(self.port)),
            # Anyone on loopback may upload; names the index lacks are not redirected to the public index.
            *("--authenticate", ".", "--passwords", ".", "--disable-fallback"),
            str(self.packages_dir),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RehearsalError(f"pypi-server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.simple_url, timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RehearsalError(f"pypi-server never answered on {self.url}") from None
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def upload(self, files: list[Path]) -> None:
        """``twine upload`` the files (sdists and wheels) as a release would."""
        subprocess.run(
            [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar"]
            + ["--repository-url", self.url, "--username", "rehearsal", "--password", "unused"]
            + [str(f) for f in files],
            check=True,
            capture_output=True,
            timeout=PIP_TIMEOUT_S,
        )
        for wheel in (BuiltWheel(f) for f in files if f.suffix == ".whl"):
            self.uploaded[wheel.name] = wheel

    def check_closure(self) -> None:
        """Every Omerta requirement of every uploaded wheel names a distribution uploaded here."""
        for wheel in self.uploaded.values():
            for requirement in wheel.requirements():
                name = canonicalize_name(requirement.name)
                if name == FORMER_KERNEL_DISTRIBUTION:
                    raise RehearsalError(
                        f"{wheel.path.name} depends on {requirement}: the kernel's former name, "
                        "which on the public index is an unrelated project"
                    )
                if is_ours(name) and name not in self.uploaded:
                    raise RehearsalError(f"{wheel.path.name} depends on {requirement}, which was not uploaded")


class StrangerVenv:
    """A fresh venv whose pip sees the rehearsal's index and the public index, nothing else."""

    def __init__(self, path: Path, index: PackageIndex) -> None:
        self.path = path
        self.index = index
        venv.create(path, with_pip=True, clear=True)
        self.bin = path / "bin"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PIP_VARIABLES_DROPPED and not k.startswith("OMERTA_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", VIRTUAL_ENV=str(self.path))
        env.pop("PYTHONPATH", None)
        return env

    def install(self, *names: str) -> dict[str, str]:
        """``pip install NAMES``; return ``{distribution: where it came from}`` for what was installed."""
        self.index.check_closure()
        report = self.path / "install-report.json"
        result = subprocess.run(
            [
                str(self.bin / "python"),
                "-m",
                "pip",
                "install",
                "--extra-index-url",
                self.index.simple_url,
                "--report",
                str(report),
                *names,
            ],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=PIP_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            raise RehearsalError(f"pip install {' '.join(names)} failed: {last}")
        origins = self.origins(json.loads(report.read_text()))
        for name, url in origins.items():
            if is_ours(name) and not url.startswith(self.index.url):
                raise RehearsalError(f"{name} was installed from {url}, not from the rehearsal's index")
        return origins

    @staticmethod
    def origins(report: dict[str, Any]) -> dict[str, str]:
        return {
            canonicalize_name(item["metadata"]["name"]): str(item["download_info"]["url"]) for item in report["install"]
        }

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one of the venv's commands (``omerta``, ``python``, ...)."""
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
