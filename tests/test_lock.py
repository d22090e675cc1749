"""One job at a time on a run folder: a second job is refused in one line naming the first; shards of one grid run
side by side; the kernel frees the folder when the holder dies, however it dies."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spar_core.cli import main
from spar_core.errors import SparError
from spar_core.runs import jobs
from spar_core.runs.lock import hold, holder


def test_a_second_job_is_refused_and_the_folder_is_free_after(tmp_path: Path) -> None:
    with hold(tmp_path, "spar crossval"):
        assert "spar crossval" in holder(tmp_path)
        with pytest.raises(SparError, match=r"another job is writing this run folder \(process \d+ \(spar crossval"):
            with hold(tmp_path, "spar train"):
                pass
        with pytest.raises(SparError, match="another job"):  # nor may a shard start beside a whole-grid job
            with hold(tmp_path, "spar crossval", (0, 2)):
                pass
    assert holder(tmp_path) is None
    with hold(tmp_path, "spar train"):
        pass


def test_shards_of_one_grid_run_side_by_side_but_not_twice(tmp_path: Path) -> None:
    with hold(tmp_path, "shard 0", (0, 2)), hold(tmp_path, "shard 1", (1, 2)):
        assert "shard 0" in holder(tmp_path) and "shard 1" in holder(tmp_path)
        with pytest.raises(SparError, match="shard 1"):
            with hold(tmp_path, "shard 1 again", (1, 2)):
                pass
        with pytest.raises(SparError, match="another job"):
            with hold(tmp_path, "the whole grid"):
                pass
    assert holder(tmp_path) is None


def test_the_kernel_frees_the_folder_when_the_holder_is_killed(tmp_path: Path) -> None:
    code = (f"from spar_core.runs.lock import hold\nimport time\n"
            f"with hold({str(tmp_path)!r}, 'spar crossval'):\n    print('held', flush=True)\n    time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert f"process {proc.pid}" in holder(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert holder(tmp_path) is None


def test_a_second_crossval_on_a_held_folder_is_one_line(ankle_small: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    with hold(out, "spar crossval"):
        assert main(["crossval", "--dataset", str(ankle_small), "--methods", "baseline", "--folds", "holdout",
                     "--preset", "tiny", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another job is writing this run folder" in err
    assert not (out / "run.json").exists()  # nothing written by the refused job


def test_the_app_does_not_start_a_job_on_a_folder_a_terminal_job_holds(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "mine"
    with hold(out, "spar crossval"):
        with pytest.raises(SparError, match="spar crossval.*is writing this run folder"):
            jobs.start(["report", str(out)], run_dir=out, root=tmp_path / "runs")
    assert not list((tmp_path / "runs").glob(".jobs/*"))
