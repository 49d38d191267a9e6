"""`twin` and `layers` are plain Python: importing them loads no web framework."""

import subprocess
import sys


def test_model_and_layers_do_not_import_fastapi():
    code = (
        "import sys, twin, layers, twin.models, twin.db, twin.localdb\n"
        "import importlib.util\n"
        "for m in ('layers.catalog', 'layers.mvt', 'layers.features'):\n"
        "    if importlib.util.find_spec(m): importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
