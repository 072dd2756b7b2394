"""Outputs are never lost: refusal of existing run folders, atomic stage folders and files, killed writers."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from arthoi_jax.errors import OutputExistsError
from arthoi_jax.io.outputs import atomic_dir, prepare_run_dir, write_atomic, write_json


def test_run_dir_refuses_existing_results(tmp_path):
    (tmp_path / "run" / "stage1").mkdir(parents=True)
    with pytest.raises(OutputExistsError, match=r"run already holds results; pass --resume .* or --overwrite"):
        prepare_run_dir(tmp_path / "run", resume=False, overwrite=False)
    assert prepare_run_dir(tmp_path / "run", resume=True, overwrite=False).exists()
    assert prepare_run_dir(tmp_path / "fresh", resume=False, overwrite=False).is_dir()


def test_atomic_dir_keeps_previous_result_when_the_stage_fails(tmp_path):
    target = tmp_path / "stage1"
    with atomic_dir(target, overwrite=False) as d:
        (d / "result.json").write_text("old")
    with pytest.raises(OutputExistsError, match="stage1 exists; pass --overwrite"):
        with atomic_dir(target, overwrite=False):
            pass
    with pytest.raises(RuntimeError):
        with atomic_dir(target, overwrite=True) as d:
            (d / "result.json").write_text("half")
            raise RuntimeError("crash mid-stage")
    assert (target / "result.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage1"]
    with atomic_dir(target, overwrite=True) as d:
        (d / "result.json").write_text("new")
    assert (target / "result.json").read_text() == "new"


def test_write_json_numpy_values(tmp_path):
    import json

    import numpy as np

    write_json(tmp_path / "m.json", {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1.5, "b": [0, 1, 2]}


def test_killed_writer_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "result.bin"
    write_atomic(target, b"previous")
    # A child process starts writing 200 MB through write_atomic and is killed part way.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        import os, pathlib, time
        from arthoi_jax.io import outputs
        real_fdopen = os.fdopen
        def slow_fdopen(*a, **k):  # writes in 1 MB pieces so the kill lands mid-file
            f = real_fdopen(*a, **k)
            w = f.write
            def write(data):
                print("writing", flush=True)
                for i in range(0, len(data), 1 << 20):
                    w(data[i:i + (1 << 20)])
                    time.sleep(0.01)
            f.write = write
            return f
        outputs.os.fdopen = slow_fdopen
        outputs.write_atomic(pathlib.Path({str(target)!r}), b"x" * (200 << 20))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"previous"
