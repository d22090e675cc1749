"""Background jobs: real spar commands started, watched, and cancelled; the JSON progress file they write."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import nibabel
import numpy as np
import pytest

from spar_core.runs import jobs, uploads
from spar_core.layout.run_folder import run_folders
from spar_core.errors import SparError
from spar_core.progress import JsonProgress, ProgressEvent, combine, read_progress



def wait_done(job: jobs.Job, timeout: float) -> jobs.JobStatus:
    deadline = time.monotonic() + timeout
    while not (status := jobs.job_status(job)).done:
        assert time.monotonic() < deadline, f"job {job.id} still running after {timeout} s:\n{jobs.tail_log(job)}"
        time.sleep(0.2)
    return status


@pytest.fixture(scope="module")
def ankle_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from spar_core.data.phantoms import generate_cohort

    return generate_cohort("ankle", tmp_path_factory.mktemp("data") / "phantoms_ankle", subjects=2, seed=0)


# ---------------------------------------------------------------------------------------------- real jobs


@pytest.mark.slow
def test_crossval_then_predict_jobs_finish_ok(ankle_two: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    out = runs / "cv"
    job = jobs.start(["crossval", "--dataset", ankle_two, "--methods", "baseline", "--folds", "holdout",
                      "--preset", "tiny", "--out", out, "--device", "cpu"], run_dir=out, root=runs)
    assert [j.id for j in jobs.list_jobs(runs)] == [job.id]
    status = wait_done(job, 180)
    assert (status.state, status.exit_code) == (jobs.OK, 0), jobs.tail_log(job)
    event = read_progress(job.progress_file)
    assert event is not None and event["stage"] == "predict" and event["overall"] == 1.0
    assert "grid complete" in jobs.tail_log(job)
    log = job.log_file.read_text()
    assert "\r" not in log and "baseline epoch 1/" in log  # plain epoch lines, no progress-bar redraws
    assert (out / "metrics.csv").is_file() and run_folders(runs) == [out]
    info = job.info()
    assert info["exit_code"] == 0 and info["ended"] >= info["started"] and info["run_dir"] == str(out.resolve())

    image = sorted((ankle_two / "imagesTr").iterdir())[0]
    pred = tmp_path / "pred.nii.gz"
    job = jobs.start(["predict", "--run", out, "--method", "baseline", "--image", image, "--out", pred,
                      "--device", "cpu"], output=pred, root=runs)
    assert wait_done(job, 120).state == jobs.OK, jobs.tail_log(job)
    assert nibabel.load(pred).shape == nibabel.load(image).shape
    assert read_progress(job.progress_file)["fraction"] == 1.0


def test_failing_job_reports_its_exit_code_and_error_line(tmp_path: Path) -> None:
    job = jobs.start(["check", tmp_path / "missing"], root=tmp_path)
    status = wait_done(job, 60)
    assert (status.state, status.exit_code) == (jobs.FAILED, 2)
    assert "spar check: error:" in status.message
    assert not job.progress_file.exists()  # check has no --progress-file


@pytest.mark.slow
def test_cancel_ends_the_whole_process_group(tmp_path: Path) -> None:
    runs, empty = tmp_path / "runs", tmp_path / "empty"
    empty.mkdir()
    job = jobs.start_demo_job("cpu", runs, empty)  # minutes of work: phantoms, then training
    assert jobs.start_demo_job("cpu", runs, empty).id == job.id  # a running demo is not started twice
    with pytest.raises(SparError, match="still writing this run folder"):
        jobs.start(["demo", "--out", runs / jobs.DEMO_RUN], run_dir=runs / jobs.DEMO_RUN, root=runs)
    deadline = time.monotonic() + 60
    while not job.progress_file.exists():  # the command itself is up (first event: phantoms)
        assert time.monotonic() < deadline and not jobs.job_status(job).done, jobs.tail_log(job)
        time.sleep(0.1)
    pgid = job.info()["pid"]
    begin = time.monotonic()
    status = jobs.cancel(job, timeout=5.0)
    assert status.state == jobs.CANCELLED
    assert time.monotonic() - begin < 8.0
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert jobs.job_status(job).state == jobs.CANCELLED
    assert jobs.cancel(job).state == jobs.CANCELLED  # cancelling again changes nothing


def test_status_of_a_job_that_died_without_exit_code(tmp_path: Path) -> None:
    folder = jobs.jobs_root(tmp_path) / "20000101-000000-dead00"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"args": ["demo"], "started": 0.0, "pid": 2**22 + 7}))
    status = jobs.job_status(jobs.Job(folder))
    assert status.state == jobs.FAILED and status.exit_code is None


# ---------------------------------------------------------------------------------------------- log, uploads


def test_tail_log_collapses_progress_bar_redraws(tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    job = jobs.Job(folder)
    job.log_file.write_text("one\nbar 10%\rbar 50%\rbar 90%\r   \r\n\x1b[Atwo\nthree\n")
    assert jobs.tail_log(job, 10) == "one\nbar 90%\ntwo\nthree"
    assert jobs.tail_log(job, 2) == "two\nthree"
    assert jobs.tail_log(jobs.Job(tmp_path / "nothing")) == ""


def _nifti_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "exam.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 4), np.float32), np.eye(4)), path)
    return path.read_bytes()


def test_stage_upload_keeps_a_valid_exam(tmp_path: Path) -> None:
    path = uploads.stage_upload("../../my exam.nii.gz", _nifti_bytes(tmp_path), tmp_path / "runs")
    assert path.name == "my_exam.nii.gz" and path.parent.parent == tmp_path / "runs" / uploads.UPLOADS_FOLDER
    assert nibabel.load(path).shape == (8, 8, 4)


@pytest.mark.parametrize(
    "name, data, match",
    [
        ("exam.txt", b"", "expected a NIfTI file"),
        ("exam.nii.gz", b"not an image at all", "upload 'exam.nii.gz'"),
        ("exam.nii.gz", b"x" * 2048, "more than the limit"),
    ],
)
def test_stage_upload_rejects_bad_uploads(tmp_path: Path, name: str, data: bytes, match: str) -> None:
    with pytest.raises(SparError, match=match):
        uploads.stage_upload(name, data, tmp_path, max_bytes=1024)
    staged = tmp_path / uploads.UPLOADS_FOLDER
    assert not staged.exists() or not any(staged.iterdir())  # nothing left behind


# ---------------------------------------------------------------------------------------------- JsonProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def seg(epoch: int, step: int, steps: int = 10, epochs: int = 2, **values: float) -> ProgressEvent:
    return ProgressEvent("segmenter", epoch, epochs, step, steps, values, label="spar")


def test_json_progress_throttles_but_always_writes_epoch_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "p" / "progress.json"
    progress = JsonProgress(path, min_interval=0.5, clock=clock)
    # (time, event, step on disk afterwards)
    table = [(0.0, seg(1, 1), 1), (0.1, seg(1, 2), 1), (0.4, seg(1, 3), 1), (0.6, seg(1, 4), 4),
             (0.7, seg(1, 10), 10), (0.8, seg(2, 1), 10), (1.3, seg(2, 2), 2)]
    for now, event, on_disk in table:
        clock.now = now
        progress(event)
        assert read_progress(path)["step"] == on_disk, (now, event)
    clock.now = 1.4
    progress(seg(2, 3))
    progress.flush()
    assert read_progress(path)["step"] == 3


def test_json_progress_overall_fraction_over_crossval_units(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    progress = JsonProgress(path, min_interval=0.0)
    table = [
        (ProgressEvent("shape_ae", 1, 2, 3, 3), None),  # before the first unit: unknown
        (ProgressEvent("crossval", 1, 2, 0, 1), 0.0),
        (seg(1, 10), 0.9 * 0.5 / 2),
        (seg(2, 5), 0.9 * 0.75 / 2),
        (ProgressEvent("predict", 1, 1, 1, 2), (0.9 + 0.05) / 2),
        (ProgressEvent("crossval", 2, 2, 0, 1), 0.5),
        (seg(2, 10), (1 + 0.9) / 2),
        (ProgressEvent("predict", 1, 1, 2, 2), 1.0),
    ]
    for event, overall in table:
        progress(event)
        written = read_progress(path)
        assert written["overall"] == (None if overall is None else pytest.approx(overall)), event
        assert written["stage"] == event.stage and written["fraction"] == event.step / event.steps
        assert abs(written["time"] - time.time()) < 60


def test_json_progress_writes_non_finite_values_as_null(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    JsonProgress(path)(seg(1, 10, loss=math.nan, ce=1.5))
    assert json.loads(path.read_text(), parse_constant=pytest.fail)["values"] == {"loss": None, "ce": 1.5}


def test_json_progress_is_never_seen_half_written(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    progress = JsonProgress(path, min_interval=0.0)
    big = {f"value_{i}": float(i) for i in range(300)}
    progress(seg(1, 1, **big))
    bad: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            text = path.read_text()
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for step in range(1, 300):
            progress(seg(1, step, steps=300, **big))
    finally:
        stop.set()
        reader.join()
    assert not bad
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]  # no temporary file left


def test_combine_passes_every_event_to_each_callback_in_order() -> None:
    seen: list[tuple[str, int]] = []
    report = combine(lambda ev: seen.append(("a", ev.step)), lambda ev: seen.append(("b", ev.step)))
    report(seg(1, 1))
    report(seg(1, 2))
    assert seen == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]


def test_json_progress_rejects_a_negative_interval(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_interval"):
        JsonProgress(tmp_path / "p.json", min_interval=-1)
