"""The README's promises: the test command is the one CI runs, and the documented API works."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fenced_commands(text):
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line.strip())
    return lines


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_commands = [c for c in _fenced_commands(readme) if "pytest" in c and "pip install" in c]
    assert len(test_commands) == 1, test_commands
    assert test_commands[0] in ci.splitlines()


def test_readme_main_job_command_is_a_real_cli_command():
    from keras_cnn.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    main_job = [c for c in _fenced_commands(readme) if c.startswith("python -m pip install") and "keras-cnn" in c]
    assert main_job, "README lost its main-job command"
    subcommand = main_job[0].split("keras-cnn", 1)[1].split()[0]
    assert subcommand in build_parser()._subparsers._group_actions[0].choices


def test_nothing_committed_points_outside_the_repository():
    """The package, README, docs, benchmarks and tests stand on their own: no machine's folders (a run's
    absolute ``run_dir``, a checkout path) and no files outside the repository (the project's shared folder)."""
    import re
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        import pytest

        pytest.skip("not a git checkout")
    pattern = re.compile(r"(?<![\w.])(/work/|/root/|/home/|/tmp/|/Users/|[A-Z]:\\\\)|\.\./shared")
    found = []
    for name in tracked.stdout.splitlines():
        path = ROOT / name
        if path.suffix in (".png", ".keras", ".npy", ".gz") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line) and "pattern = re.compile" not in line:
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found)
