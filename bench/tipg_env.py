"""tipg, the peer: its own virtual environment (``bench/.tipg-venv``) and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".tipg-venv"
PYTHON = VENV / "bin" / "python"
REQUIREMENT = "tipg>=1.6,<1.7"


def ensure_venv(log=print) -> Path:  # type: ignore[no-untyped-def]
    """Create the tipg venv once (pip install tipg 1.6.x + uvicorn[standard])."""
    marker = VENV / ".installed"
    if marker.exists() and PYTHON.exists():
        return PYTHON
    log(f"creating {VENV} with {REQUIREMENT} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    REQUIREMENT, "uvicorn[standard]"], check=True)
    marker.write_text(version())
    return PYTHON


def version() -> str:
    out = subprocess.run([str(PYTHON), "-c", "import tipg; print(tipg.__version__)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def command(port: int) -> list[str]:
    """uvicorn serving tipg, one worker, no access log (as our server is run)."""
    return [str(PYTHON), "-m", "uvicorn", "tipg.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]


def environment(libpq_url: str, tables: list[str], pool_size: int,
                max_features_per_tile: int) -> dict[str, str]:
    """tipg settings: the same database, only the benchmark tables, the same pool and
    feature cap as ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "TWIN_"))}
    env.update({
        "DATABASE_URL": libpq_url,
        "TIPG_DB_SCHEMAS": json.dumps(["public"]),
        "TIPG_DB_TABLES": json.dumps(tables),
        "DB_MIN_CONN_SIZE": "1",
        "DB_MAX_CONN_SIZE": str(pool_size),
        "TIPG_MAX_FEATURES_PER_TILE": str(max_features_per_tile),
        "TIPG_DEBUG": "FALSE",
    })
    return env
