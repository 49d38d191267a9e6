"""The Debian packages the project needs: what is missing, installing only that, and a check.

Runs with the machine's own ``python3`` before the virtual environment exists, so it uses
the standard library only::

    python3 -m twin.system install    # apt-get install only what is missing (make run / make test)
    python3 -m twin.system check      # apt-get install -s of everything, fails on any conflict

Each requirement is judged by what the machine has, not by a package name: a Node.js of
18 or newer with its npm is good enough whoever packaged it (nodesource's ``nodejs``
bundles npm and conflicts with Debian's ``npm``), so apt is never asked to replace it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PG_MAJOR = 15
PG_EXT = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension")
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
PG_LIB = Path(f"/usr/lib/postgresql/{PG_MAJOR}/lib")
NODE_MIN = 18
GDAL_MIN = (3, 6)


def _version(cmd: list[str]) -> tuple[int, ...] | None:
    """The first dotted version number a command prints, or None when it cannot run."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def _node_ok() -> bool:
    v = _version(["node", "--version"]) if shutil.which("node") else None
    return v is not None and v[0] >= NODE_MIN


def _npm_ok() -> bool:
    return shutil.which("npm") is not None and _version(["npm", "--version"]) is not None


def _gdal_ok() -> bool:
    v = _version(["ogrinfo", "--version"]) if shutil.which("ogrinfo") else None
    return v is not None and v[:2] >= GDAL_MIN


def _extension(name: str, major: int, library: str) -> Callable[[], bool]:
    """The extension is installed for our PostgreSQL with this major version or newer:
    its control file (the ``-scripts`` package) and its shared library (the main one)."""
    def ok() -> bool:
        control = PG_EXT / f"{name}.control"
        if not control.exists() or not any(PG_LIB.glob(f"{library}*.so")):
            return False
        m = re.search(r"default_version\s*=\s*'(\d+)", control.read_text())
        return m is not None and int(m.group(1)) >= major
    return ok


def _exists(*paths: str | Path) -> Callable[[], bool]:
    return lambda: all(Path(p).exists() for p in paths)


@dataclass(frozen=True)
class Need:
    """One thing the project needs, how to tell the machine has it, and its Debian packages."""

    what: str
    present: Callable[[], bool]
    packages: tuple[str, ...]
    # Asked of apt only when absent: a good-enough one from elsewhere must not be replaced.
    only_when_missing: bool = False


def _venv_ok() -> bool:
    """Debian's own python3 makes virtual environments only with python3-venv."""
    if not sys.executable.startswith("/usr/bin/"):
        return True  # a Python built elsewhere (pyenv, the image's) ships venv and ensurepip
    import importlib.util

    return importlib.util.find_spec("ensurepip") is not None


NEEDS: tuple[Need, ...] = (
    Need("Python venv", _venv_ok, ("python3-venv",), only_when_missing=True),
    Need(f"PostgreSQL {PG_MAJOR}", _exists(PG_BIN / "initdb", PG_BIN / "pg_ctl"),
         (f"postgresql-{PG_MAJOR}",)),
    Need("PostGIS 3 (with raster)",
         lambda: (_extension("postgis", 3, "postgis-3")()
                  and _extension("postgis_raster", 3, "postgis_raster-3")()),
         (f"postgresql-{PG_MAJOR}-postgis-3", f"postgresql-{PG_MAJOR}-postgis-3-scripts")),
    Need("pgRouting ≥ 3", _extension("pgrouting", 3, "libpgrouting"),
         (f"postgresql-{PG_MAJOR}-pgrouting",)),
    Need("GDAL ≥ 3.6 (ogrinfo, ogr2ogr)", _gdal_ok, ("gdal-bin",)),
    Need("Mosquitto broker", _exists("/usr/sbin/mosquitto"), ("mosquitto",)),
    Need("Mosquitto clients (mosquitto_pub, mosquitto_sub, mosquitto_passwd)",
         lambda: all(shutil.which(c) for c in ("mosquitto_pub", "mosquitto_sub")),
         ("mosquitto-clients",)),
    Need("Chromium", _exists("/usr/bin/chromium"), ("chromium",)),
    Need(f"Node.js ≥ {NODE_MIN}", _node_ok, ("nodejs",), only_when_missing=True),
    Need("npm", _npm_ok, ("npm",), only_when_missing=True),
    Need("wrk (benchmarks)", lambda: shutil.which("wrk") is not None, ("wrk",)),
    Need("nginx (the HTTP cache in front, tested)", _exists("/usr/sbin/nginx"), ("nginx",)),
    Need("Redis (the notify bus past one machine, tested)", _exists("/usr/bin/redis-server"),
         ("redis-server",)),
)


def missing() -> list[Need]:
    return [n for n in NEEDS if not n.present()]


def packages_to_install() -> list[str]:
    out: list[str] = []
    for need in missing():
        pkgs = list(need.packages)
        if need.what == "npm" and not _node_ok() and shutil.which("node"):
            pkgs.insert(0, "nodejs")  # an old Node.js without npm: Debian's pair replaces it
        out.extend(p for p in pkgs if p not in out)
    return out


def packages_to_check(extra: list[str]) -> list[str]:
    """Every package the project asks apt for on some machine, as this machine would ask."""
    out: list[str] = []
    for need in NEEDS:
        if need.only_when_missing and need.present():
            continue
        out.extend(need.packages)
    return out + [p for p in extra if p not in out]


def _apt(args: list[str]) -> int:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("    $ apt-get " + " ".join(args), flush=True)
    return subprocess.run([*sudo, "apt-get", *args], env=env, stdin=subprocess.DEVNULL).returncode


def install() -> int:
    gone = missing()
    if not gone:
        print("    all present: " + ", ".join(n.what for n in NEEDS))
        return 0
    for need in gone:
        print(f"    missing: {need.what}")
    pkgs = packages_to_install()
    if _apt(["update", "-q"]) != 0:
        print("error: apt-get update failed", file=sys.stderr)
        return 1
    if _apt(["install", "-y", "-q", *pkgs]) != 0:
        print("error: apt-get could not install " + " ".join(pkgs), file=sys.stderr)
        return 1
    still = missing()
    if still:
        print("error: still missing after apt-get: " + ", ".join(n.what for n in still),
              file=sys.stderr)
        return 1
    print("    installed: " + " ".join(pkgs))
    return 0


def check(extra: list[str], update: bool = True) -> int:
    """Simulate installing every needed package beside what the machine has; apt decides."""
    pkgs = packages_to_check(extra)
    if update and _apt(["update", "-q"]) != 0:
        print("error: apt-get update failed", file=sys.stderr)
        return 1
    sim = subprocess.run(["apt-get", "install", "-s", "-y", *pkgs],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if sim.returncode != 0:
        sys.stderr.write(sim.stdout[-4000:] + sim.stderr)
        print("error: the project's system packages cannot be installed together on this "
              "machine (apt's message above): " + " ".join(pkgs), file=sys.stderr)
        return 1
    changes = [ln for ln in sim.stdout.splitlines() if ln.startswith(("Inst ", "Remv "))]
    removals = [ln for ln in changes if ln.startswith("Remv ")]
    if removals:
        sys.stderr.write("\n".join(removals) + "\n")
        print("error: installing the project's packages would remove installed ones",
              file=sys.stderr)
        return 1
    print(f"    apt accepts all {len(pkgs)} packages ({len(changes)} to install here): "
          + " ".join(pkgs))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m twin.system", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("install", help="install the missing Debian packages")
    chk = sub.add_parser("check", help="simulate installing every needed package")
    chk.add_argument("--extra", nargs="*", default=[], help="more packages to simulate with")
    chk.add_argument("--no-update", action="store_true", help="skip apt-get update")
    sub.add_parser("list", help="print what is needed and whether it is present")
    args = parser.parse_args(argv)
    if args.cmd == "install":
        return install()
    if args.cmd == "check":
        extra = args.extra + os.environ.get("TWIN_SYSTEM_EXTRA", "").split()
        return check(extra, update=not args.no_update)
    for need in NEEDS:
        print(f"{'ok ' if need.present() else 'MISSING'}  {need.what}  ({' '.join(need.packages)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
