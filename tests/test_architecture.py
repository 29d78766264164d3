"""The package's shape: the import contract holds (.importlinter), every module imports in a fresh
process, ``python -m keras_cnn.cli`` works, and ``ruff check`` passes (pyproject.toml).

Each check runs in a subprocess, so nothing this test session already imported can hide a broken import.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
       "TF_CPP_MIN_LOG_LEVEL": "3"}


def _tool(name):
    """The console script ``name`` next to this interpreter (the test extra installs it there), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _run(args, timeout):
    return subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)


def test_import_contract_holds():
    """cli > training > analysis > deploy > registry > weights > models > blocks > layers > data | atomic."""
    lint_imports = _tool("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    result = _run([lint_imports, "--no-cache"], timeout=120)  # from ROOT, as CI runs it: it reads ROOT/.importlinter
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_imports_in_a_fresh_process():
    script = textwrap.dedent("""
        import importlib, importlib.util, pkgutil, sys, traceback

        failed = []
        location = importlib.util.find_spec("keras_cnn").submodule_search_locations
        names = ["keras_cnn"] + [info.name for info in pkgutil.walk_packages(
            location, "keras_cnn.", onerror=lambda name: failed.append((name, traceback.format_exc(limit=-2))))
            if info.name.rsplit(".", 1)[-1] != "__main__"]
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                failed.append((name, traceback.format_exc(limit=-2)))
        for name, trace in failed:
            print(f"FAILED {name}\\n{trace}")
        print(len(names), "modules:", " ".join(names))
        sys.exit(1 if failed else 0)
    """)
    result = _run([sys.executable, "-c", script], timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    imported = result.stdout.split("modules:", 1)[1].split()
    for name in ("keras_cnn.registry", "keras_cnn.models.spec", "keras_cnn.cli.demo", "keras_cnn.deploy.tflite",
                 "keras_cnn.training.tune", "keras_cnn.analysis.speed", "keras_cnn.layers.repvgg"):
        assert name in imported, f"walk_packages missed {name}: {imported}"


def test_python_dash_m_keras_cnn_cli():
    result = _run([sys.executable, "-m", "keras_cnn.cli", "list", "lenet*"], timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert "lenet5" in names and all(name.startswith("lenet") for name in names), result.stdout


def test_ruff_check_passes():
    ruff = _tool("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    result = _run([ruff, "check", "--no-cache", "--output-format", "concise", "."], timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
