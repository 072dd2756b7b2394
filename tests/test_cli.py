"""run.py: user errors exit with status 2 and a one-line message naming the problem."""

import subprocess
import sys

import pytest

import run


@pytest.mark.parametrize(
    "args, match",
    [
        (["--config", "missing.yaml"], "cannot read config file missing.yaml"),
        (["--set", "stage1.lr=-1"], "stage1.lr: -1.0 is out of range"),
        (["--stage", "fly"], "--stage 'fly' is not a stage; allowed: all,"),
        (["--set", "scene.source=bundle"], "scene.bundle: required when scene.source is 'bundle'"),
    ],
)
def test_user_errors_exit_2(tmp_path, capsys, args, match):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("scene: {name: t}\n")
    argv = ["--config", str(cfg), "--out", str(tmp_path / "out")] + args
    assert run.main(argv) == 2
    assert match in capsys.readouterr().err


def test_existing_run_folder_is_refused(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("scene: {name: t}\n")
    (tmp_path / "out" / "generate").mkdir(parents=True)
    assert run.main(["--config", str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "already holds results; pass --resume" in capsys.readouterr().err


def test_help_runs():
    out = subprocess.run([sys.executable, "run.py", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--config" in out.stdout and "--overwrite" in out.stdout
