"""The Debian package step: only what is missing is asked for, and the check fails on a
conflict with apt's own message (apt-get -s: nothing is installed by these tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from twin import system

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="not a Debian machine")


def run_check(*extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twin.system", "check", "--no-update",
                           "--extra", *extra], capture_output=True, text=True, timeout=300)


def test_the_projects_packages_install_together_here() -> None:
    res = subprocess.run([sys.executable, "-m", "twin.system", "check", "--no-update"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "apt accepts all" in res.stdout


def test_a_conflicting_package_list_fails_loudly_with_apts_message() -> None:
    res = run_check("exim4-daemon-light", "exim4-daemon-heavy")  # two MTAs conflict
    assert res.returncode == 1
    assert "Conflicts" in res.stderr and "cannot be installed together" in res.stderr


def test_a_good_node_is_never_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """nodesource's nodejs bundles npm and conflicts with Debian's npm: when a Node.js ≥ 18
    with npm is there, neither package is asked for, in the install or in the check."""
    monkeypatch.setattr(system, "_node_ok", lambda: True)
    monkeypatch.setattr(system, "_npm_ok", lambda: True)
    needs = tuple(
        system.Need(n.what, (lambda: True) if n.only_when_missing else (lambda: False),
                    n.packages, n.only_when_missing) for n in system.NEEDS)
    monkeypatch.setattr(system, "NEEDS", needs)
    assert not {"nodejs", "npm"} & set(system.packages_to_install())
    assert not {"nodejs", "npm"} & set(system.packages_to_check([]))
    assert "postgresql-15-postgis-3" in system.packages_to_install()
    assert "mosquitto-clients" in system.packages_to_check([])


def test_only_missing_packages_are_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    needs = tuple(system.Need(n.what, (lambda w=n.what: w != "Chromium"), n.packages,
                              n.only_when_missing) for n in system.NEEDS)
    monkeypatch.setattr(system, "NEEDS", needs)
    assert system.packages_to_install() == ["chromium"]


def test_without_node_debian_node_and_npm_are_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "_node_ok", lambda: False)
    monkeypatch.setattr(system, "_npm_ok", lambda: False)
    needs = tuple(system.Need(n.what, (lambda w=n.what: not w.startswith(("Node", "npm"))),
                              n.packages, n.only_when_missing) for n in system.NEEDS)
    monkeypatch.setattr(system, "NEEDS", needs)
    assert system.packages_to_install() == ["nodejs", "npm"]
