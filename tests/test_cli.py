"""The keras-cnn command: list, info, summary and their errors."""

import json

from keras_cnn.cli import main


def test_list_and_pattern(capsys):
    assert main(["list", "lenet*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["lenet", "lenet5"]
    assert "60,000" in out[1]
    assert main(["list", "nothing_matches*"]) == 1


def test_info_json(capsys):
    assert main(["info", "resnet50", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reference_params"] == 25_557_032 and info["family"] == "resnet"


def test_summary_reports_reference(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "trainable params: 60,000" in out and "matches" in out


def test_unknown_name_exits_2_with_suggestion(capsys):
    assert main(["info", "resnet5"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_the_executable_exits_quickly_with_the_code_and_runs_exit_handlers():
    """``keras_cnn.cli.run`` (the ``keras-cnn`` executable) skips the interpreter's teardown, not the exit
    handlers, the flushing of what the command printed, or its exit code: in a new process, a failing
    command exits 2 with its one line, after an ``atexit`` handler ran and what was printed before it."""
    import os
    import subprocess
    import sys

    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
            "print('printed before, unflushed', end='')\n"
            "sys.argv = ['keras-cnn', 'info', 'resnet5']\n"
            "from keras_cnn.cli import run\n"
            "run()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == "printed before, unflushed"
    lines = [line for line in result.stderr.splitlines() if line.startswith(("keras-cnn:", "handler"))]
    assert lines[0].startswith("keras-cnn: error: ") and "Did you mean" in lines[0], result.stderr[-2000:]
    assert lines[-1] == "handler ran", result.stderr[-2000:]
