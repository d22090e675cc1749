"""A corpus of faults behind spar's front door, generated in code: every file of a run folder made truncated,
empty, binary or of the wrong type; every header field spar parses (NIfTI and DICOM) made missing, text, zero,
negative, huge or NaN; output paths that exist as the wrong kind or fail while written. Each case is a row of a
table: what to break, the command that meets it, and what a user should get — ``refused`` (exit 2 and one line
naming the file or field), ``accepted`` (exit 0: the value is one spar reads right), or ``redone`` (exit 0 and a
note saying an unreadable output was made again).

``tests/test_faults.py`` runs every row; ``bench/faults.py`` prints how many are handled.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import nibabel
import numpy as np
import pydicom
import torch

from spar_core.cli import main

FAULTS = ("truncated", "empty", "binary", "wrong type")
VALUES = ("missing", "text", "zero", "negative", "huge", "nan")
TIMEOUT_S = 120  # a case that takes longer hangs


@dataclass(frozen=True)
class Case:
    """One fault: ``make(work)`` breaks a copy of the material in the folder ``work`` and returns the command line
    that meets it; ``expect`` is refused, accepted or redone; ``names`` must appear in a refusal's line."""

    kind: str
    name: str
    make: Callable[[Path], list[str]]
    expect: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: it raised (a traceback) or hung
    err: str
    problem: str  # "" when the case was handled as expected

    @property
    def handled(self) -> bool:
        return not self.problem


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang()


def run_case(case: Case, work: Path) -> Outcome:
    """Break, run in this process (a hang is cut after ``TIMEOUT_S``), and judge the outcome."""
    work.mkdir(parents=True, exist_ok=True)
    argv = case.make(work)
    err = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except _Hang:
        return Outcome(None, err.getvalue(), f"hung for {TIMEOUT_S} s")
    except SystemExit as exit:  # argparse
        code = int(exit.code or 0)
    except BaseException as raised:  # a traceback is what the corpus is here to catch
        return Outcome(None, err.getvalue(), f"raised {type(raised).__name__}: {str(raised)[:200]}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    text = err.getvalue()
    errors = [line for line in text.splitlines() if ": error: " in line]
    notes = [line for line in text.splitlines() if ": note: " in line]
    if case.expect == "refused":
        if code != 2 or len(errors) != 1 or "Traceback" in text:
            return Outcome(code, text, f"expected exit 2 and one error line, got exit {code}: {text[-300:]!r}")
        missing = [n for n in case.names if n not in errors[0]]
        if missing:
            return Outcome(code, text, f"the error line does not name {missing}: {errors[0]!r}")
    elif code != 0 or errors:
        return Outcome(code, text, f"expected exit 0, got exit {code}: {text[-300:]!r}")
    elif case.expect == "redone" and not notes:
        return Outcome(code, text, "expected a note saying what was redone")
    return Outcome(code, text, "")


# ---------------------------------------------------------------------------------------------- run folders


def _damage(path: Path, fault: str) -> None:
    data = path.read_bytes()
    if fault == "truncated":
        path.write_bytes(data[: max(1, len(data) // 2)])
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "binary":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    elif path.suffix == ".json":  # wrong type: valid, of another shape
        path.write_text(json.dumps([1, 2, 3]))
    elif path.suffix == ".jsonl":
        path.write_text("[1, 2]\n")
    elif path.suffix == ".csv":
        path.write_text("a,b\n1,2\n")
    elif path.suffix == ".npz":
        np.savez(path.with_suffix(""), x=np.zeros(3))
    elif path.suffix == ".pt":
        torch.save({"x": torch.zeros(3)}, path)
    else:
        raise ValueError(f"no wrong type for {path.name}")


# (file below RUN, the command that reads it, the expected outcome): {run} is the copy's run folder, {image} an
# exam to predict, {dataset} the dataset it was trained on, {out} a fresh output folder.
RUN_FILES: tuple[tuple[str, str, str], ...] = (
    ("run.json", "report {run} --bootstrap 50", "refused"),
    ("metrics.csv", "report {run} --bootstrap 50", "refused"),
    ("folds/0/split.json", "triage {run} --method baseline --fold 0", "refused"),
    ("folds/0/label_facts.json", "predict --run {run} --method baseline -i {image} -o {out}", "refused"),
    ("folds/0/baseline/postprocess_decision.json", "predict --run {run} --method baseline -i {image} -o {out}",
     "refused"),
    ("folds/0/baseline/model.pt", "predict --run {run} --method baseline -i {image} -o {out}", "refused"),
    ("folds/0/shape_ae.pt", "triage {run} --method baseline --fold 0", "refused"),
    ("folds/0/baseline/latent/epoch_1.npz", "embed {run} --fold 0 --embeddings tsne", "refused"),
    ("folds/0/baseline/metrics.csv", "crossval --dataset {dataset} --methods baseline,spar --folds 2 --preset tiny "
                                     "--out {run} --device cpu", "redone"),
    ("folds/0/baseline/metrics_post.csv", "crossval --dataset {dataset} --methods baseline,spar --folds 2 "
                                          "--preset tiny --out {run} --device cpu", "redone"),
    ("folds/0/train_codes.npz", "triage {run} --method baseline --fold 0", "accepted"),  # a cache: made again
)


# The files a run ordering a row by its level model adds ({case}: a tested exam of fold 0): a broken level model is
# refused where it is only read (predict), trained again where the run's dataset is at hand (a study of the run),
# and a broken record of a level call is said and left out (triage's level_doubt).
LEVEL_FILES: tuple[tuple[str, str, str], ...] = (
    ("folds/0/level_model.pt", "predict --run {run} --method baseline -i {image} -o {out}", "refused"),
    ("folds/0/level_model.pt", "study robustness {run} --corruptions fov_mirror --severities 0 --device cpu",
     "redone"),
    ("folds/0/baseline/levels/{case}.json", "triage {run} --method baseline --fold 0", "accepted"),
)


def run_folder_cases(run: Path, dataset: Path, files: tuple[tuple[str, str, str], ...] = RUN_FILES) -> list[Case]:
    """Each file of a finished run (``run``: baseline and spar, two folds, ``--postprocess auto``, triaged; or, with
    ``files`` :data:`LEVEL_FILES`, the row run of tests/row_support.py) × each fault."""
    cases = []
    for rel, command, expect in files:
        for fault in FAULTS:
            def make(work: Path, rel: str = rel, command: str = command, fault: str = fault) -> list[str]:
                image = sorted((dataset / "imagesTr").glob("*.nii.gz"))[0]
                copy = work / "run"
                shutil.copytree(run, copy)
                if "{case}" in rel:
                    rel = rel.format(case=json.loads((copy / "folds/0/split.json").read_text())["test"][0])
                _damage(copy / rel, fault)
                return command.format(run=copy, image=image, dataset=dataset, out=work / "out").split()

            names = (Path(rel).name,) if expect == "refused" else ()
            if files is RUN_FILES:
                cases.append(Case("run folder", f"{rel} {fault}", make, expect, names))
            else:
                cases.append(Case("level model", f"{rel} {fault} ({command.split()[0]})", make, expect, names))
    return cases


# ---------------------------------------------------------------------------------------------- what a user hands in


def _label_value_case(dataset: Path, value: int) -> Callable[[Path], list[str]]:
    """A prediction whose label 1 is written as ``value`` (a 64-bit export), scored against the truth."""
    def make(work: Path) -> list[str]:
        truth = sorted((dataset / "labelsTr").glob("*.nii.gz"))[0]
        img = nibabel.load(truth)
        data = np.asarray(img.dataobj).astype(np.int64)
        data[data == 1] = value
        pred = work / "pred.nii.gz"
        nibabel.save(nibabel.Nifti1Image(data, img.affine, dtype=np.int64), pred)
        return ["evaluate", "--pred", str(pred), "--truth", str(truth)]
    return make


def _splits_case(dataset: Path, folds: Callable[[list[str]], list[dict]]) -> Callable[[Path], list[str]]:
    def make(work: Path) -> list[str]:
        cases = sorted(p.name.split(".")[0] for p in (dataset / "labelsTr").glob("*.nii.gz"))
        path = work / "splits_final.json"
        path.write_text(json.dumps(folds(cases)))
        return ["crossval", "--dataset", str(dataset), "--methods", "baseline", "--splits", str(path), "--preset",
                "tiny", "--out", str(work / "run"), "--device", "cpu"]
    return make


def _patients_case(dataset: Path, patients: object) -> Callable[[Path], list[str]]:
    def make(work: Path) -> list[str]:
        copy = work / "ds"
        shutil.copytree(dataset, copy)
        meta = json.loads((copy / "dataset.json").read_text())
        meta["patients"] = patients
        (copy / "dataset.json").write_text(json.dumps(meta))
        return ["check", str(copy)]
    return make


def input_cases(dataset: Path) -> list[Case]:
    """What a user hands in that reads as something else: label values past what spar holds (a cast would wrap
    2**40 + 1 to 1 and score a Dice of 1.000), a splits file that tests an exam twice or a fold that tests none,
    patients that name no case of the dataset or are not text, a flag's invalid choice (``dataset``: the ankle
    phantoms)."""
    return [
        Case("input", "prediction label value 2**40 + 1", _label_value_case(dataset, 2**40 + 1), "refused",
             ("pred.nii.gz", str(2**40 + 1))),
        Case("input", "prediction label value 2**40", _label_value_case(dataset, 2**40), "refused",
             ("pred.nii.gz", str(2**40))),
        Case("input", "splits: an exam tested by two folds",
             _splits_case(dataset, lambda c: [{"train": c[2:], "val": c[:2]}, {"train": c[1:], "val": c[:1]}]),
             "refused", ("splits_final.json", "folds 0 and 1")),
        Case("input", "splits: a fold testing no exam",
             _splits_case(dataset, lambda c: [{"train": c[1:], "val": c[:1]}, {"train": c, "val": []}]),
             "refused", ("splits_final.json", "fold 1")),
        Case("input", "patients: a case id not in the dataset",
             _patients_case(dataset, {"ankle_0000": "P1"}), "refused", ("dataset.json", "ankle_0000")),
        Case("input", "patients: a patient that is not text", _patients_case(dataset, {"ankle_000": 5}), "refused",
             ("dataset.json", "ankle_000")),
        Case("input", "patients: a patient that is null", _patients_case(dataset, {"ankle_000": None}), "refused",
             ("dataset.json", "null")),
        Case("input", "--chain-prior: an invalid choice",
             lambda work: ["crossval", "--dataset", str(dataset), "--out", str(work / "run"), "--chain-prior",
                           "bogus"], "refused", ("--chain-prior", "bogus")),
        Case("input", "--workers: not a number",
             lambda work: ["crossval", "--dataset", str(dataset), "--out", str(work / "run"), "--workers", "two"],
             "refused", ("--workers", "two")),
    ]


# ---------------------------------------------------------------------------------------------- NIfTI headers


def _nifti_case(dataset: Path, field: str, value: str, change: Callable[[nibabel.Nifti1Header], None]) -> Callable:
    def make(work: Path) -> list[str]:
        copy = work / "ds"
        shutil.copytree(dataset, copy)
        for folder in ("imagesTr", "labelsTr"):  # image and label alike: the header is what is tested
            path = sorted((copy / folder).glob("*.nii.gz"))[0]
            img = nibabel.load(path)
            data = np.asanyarray(img.dataobj)
            header = img.header.copy()
            header["vox_offset"] = 352  # the header, four bytes of extension flag, then the voxels
            change(header)
            raw = header.binaryblock + b"\0" * 4 + data.astype(header.get_data_dtype()).tobytes(order="F")
            path.with_suffix("").with_suffix("").with_suffix(".nii").write_bytes(raw)
            path.unlink()
            meta = json.loads((copy / "dataset.json").read_text())
            for entry in meta["training"]:
                for key in ("image", "label"):
                    if entry.get(key, "").endswith(path.name):
                        entry[key] = entry[key][: -len(".gz")]
            (copy / "dataset.json").write_text(json.dumps(meta))
        return ["check", str(copy)]

    return make


def _set(key: str, index: int | None, value: float) -> Callable[[nibabel.Nifti1Header], None]:
    def change(header: nibabel.Nifti1Header) -> None:
        if index is None:
            header[key] = value
        else:
            array = header[key].copy()
            array[index] = value
            header[key] = array

    return change


def _units(unit: str, spacing: float) -> Callable[[nibabel.Nifti1Header], None]:
    """The header in another spatial unit, its first voxel size ``spacing`` in it (pixdim and affine alike)."""
    def change(header: nibabel.Nifti1Header) -> None:
        zooms = list(header.get_zooms())
        scale = spacing / zooms[0]
        affine = header.get_best_affine()
        affine[:3] *= scale
        header.set_zooms([z * scale for z in zooms[:3]] + zooms[3:])
        header.set_sform(affine, code=1)
        header.set_qform(affine, code=1)
        header.set_xyzt_units(unit, "sec")

    return change


def _scaled(slope: float, inter: float) -> Callable[[nibabel.Nifti1Header], None]:
    def change(header: nibabel.Nifti1Header) -> None:
        header["scl_slope"], header["scl_inter"] = slope, inter

    return change


# (field, value kind, change, expected): the header fields spar reads (voxel sizes, their unit, the shape, the
# affine); "text" cannot be stored in a binary NIfTI field, so the unit's text code stands for it.
NIFTI_FIELDS: tuple[tuple[str, str, Callable, str], ...] = (
    # nibabel reads a zero voxel size as 1: a voxel size that disagrees with the affine's is refused
    ("pixdim", "missing", _set("pixdim", 1, 0.0), "refused"),
    ("pixdim", "zero", _set("pixdim", 2, 0.0), "refused"),
    ("pixdim", "negative", _set("pixdim", 1, -1.0), "refused"),
    ("pixdim", "huge", _set("pixdim", 1, 1e9), "refused"),
    ("pixdim", "nan", _set("pixdim", 1, math.nan), "refused"),
    ("xyzt_units", "metres", _units("meter", 0.0005), "accepted"),  # 0.5 mm, said in metres
    ("xyzt_units", "micrometres", _units("micron", 500.0), "accepted"),
    ("xyzt_units", "huge", _units("meter", 1.0), "refused"),  # 1 m voxels
    ("xyzt_units", "missing", _units("unknown", 0.5), "accepted"),  # read as mm, as ITK does
    ("dim", "zero", _set("dim", 3, 0), "refused"),
    ("dim", "negative", _set("dim", 2, -4), "refused"),
    ("dim", "huge", _set("dim", 1, 30000), "refused"),
    ("srow_x", "nan", _set("srow_x", 0, math.nan), "refused"),
    ("srow_x", "huge", _set("srow_x", 3, 1e30), "accepted"),  # an origin far away moves nothing spar measures
    ("qoffset_x", "nan", _set("qoffset_x", None, math.nan), "accepted"),  # the sform is the affine read
    ("scl_slope", "nan", _set("scl_slope", None, math.nan), "accepted"),  # NIfTI: no scaling
    ("scl_slope", "zero", _set("scl_slope", None, 0.0), "accepted"),  # NIfTI: no scaling
    ("scl_inter", "huge", _scaled(1.0, 1e39), "refused"),  # beyond float32: infinite intensities
)


def nifti_cases(dataset: Path) -> list[Case]:
    return [Case("NIfTI header", f"{field} {value}", _nifti_case(dataset, field, value, change), expect,
                 (".nii",) if expect == "refused" else ())
            for field, value, change, expect in NIFTI_FIELDS]


# ---------------------------------------------------------------------------------------------- DICOM headers


def _break_field(ds: pydicom.Dataset, keyword: str, kind: str) -> None:
    """``keyword`` of ``ds`` made ``kind``: removed, or its values zero, or stored as text (the way a header that
    holds text, a negative, a huge number or NaN in a numeric field is met: a string where a number should be)."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    n = len(ds[tag].value) if tag in ds and isinstance(ds[tag].value, pydicom.multival.MultiValue) else 1
    if kind == "missing":
        if tag in ds:
            del ds[tag]
    elif kind == "zero" and tag in ds:
        ds[tag].value = [0] * n if n > 1 else 0
    else:
        one = {"text": "abc", "zero": "0", "negative": "-5", "huge": "1e12", "nan": "nan"}[kind]
        ds[tag] = pydicom.DataElement(tag, "LO", "\\".join([one] * n))


# (keyword, expected per kind): missing, text, zero, negative, huge, nan. A geometry field spar cannot do without
# is refused whatever is wrong with it; SeriesNumber only orders series, NumberOfFrames defaults to 1.
DICOM_FIELDS: dict[str, dict[str, str]] = {
    "ImagePositionPatient": {"missing": "refused", "text": "refused", "zero": "refused", "negative": "refused",
                             "huge": "refused", "nan": "refused"},
    "ImageOrientationPatient": dict.fromkeys(VALUES, "refused"),
    "PixelSpacing": dict.fromkeys(VALUES, "refused"),
    "Rows": {"missing": "refused", "text": "refused", "zero": "refused", "negative": "refused", "huge": "refused",
             "nan": "refused"},
    "Columns": {"missing": "refused", "text": "refused", "zero": "refused", "negative": "refused",
                "huge": "refused", "nan": "refused"},
    "NumberOfFrames": {"missing": "accepted", "text": "refused", "zero": "refused", "negative": "refused",
                       "huge": "refused", "nan": "refused"},
    "SeriesNumber": {"missing": "accepted", "text": "refused", "zero": "accepted", "negative": "accepted",
                     "huge": "refused", "nan": "refused"},
}


def dicom_cases(write_series: Callable[[Path], object]) -> list[Case]:
    """Each parsed field of the first file of a regular MR series × each bad value; the command imports it."""
    cases = []
    for keyword, expected in DICOM_FIELDS.items():
        for kind in VALUES:
            def make(work: Path, keyword: str = keyword, kind: str = kind) -> list[str]:
                series = write_series(work / "dicom")
                path = sorted(series.paths)[0]
                ds = pydicom.dcmread(path)
                _break_field(ds, keyword, kind)
                ds.save_as(path, enforce_file_format=True)
                return ["import", str(work / "dicom"), "--out", str(work / "out")]

            # a position of zero or below is a place in space: it is refused for the stack it breaks (named by
            # its series), every other refusal names the field
            named = expected[kind] == "refused" and not (keyword == "ImagePositionPatient" and kind in ("zero",
                                                                                                       "negative"))
            cases.append(Case("DICOM header", f"{keyword} {kind}", make, expected[kind],
                              (keyword,) if named else ("series",) if expected[kind] == "refused" else ()))

    def fifo(work: Path) -> list[str]:
        write_series(work / "dicom")
        import os

        os.mkfifo(work / "dicom" / "a_pipe")
        return ["import", str(work / "dicom"), "--out", str(work / "out")]

    cases.append(Case("DICOM folder", "a named pipe among the files", fifo, "accepted"))
    return cases


# ---------------------------------------------------------------------------------------------- outputs


@contextlib.contextmanager
def _failing_writes(code: int) -> Iterator[None]:
    """Every file spar writes (they are all written through a temporary file beside the target) fails with
    ``code``: ENOSPC, a full disk; EROFS, a read-only mount."""
    import os
    import tempfile

    original = tempfile.mkstemp

    def failing(*args: object, dir: str | None = None, **kwargs: object) -> tuple[int, str]:
        raise OSError(code, os.strerror(code), str(dir))

    tempfile.mkstemp = failing  # type: ignore[assignment]
    try:
        yield
    finally:
        tempfile.mkstemp = original  # type: ignore[assignment]


def output_cases(dataset: Path, run: Path) -> list[Case]:
    commands = {
        "phantoms": "phantoms --anatomy ankle --subjects 1 --out {out}",
        "crossval": f"crossval --dataset {dataset} --methods baseline --folds holdout --preset tiny --out {{out}} "
                    "--device cpu",
        "predict": f"predict --run {run} --method baseline -i {dataset / 'imagesTr'} -o {{out}}",
        "demo": f"demo --out {{out}} --data {dataset.parent} --preset tiny --device cpu",
        "study": f"study data-efficiency --dataset {dataset} --train-exams 1 --folds 2 --preset tiny --out {{out}} "
                 "--device cpu",
        "import": "import {dicom} --out {out}",
    }
    cases = []
    for name, command in commands.items():
        def a_file(work: Path, command: str = command) -> list[str]:
            (work / "taken").write_text("")
            return command.format(out=work / "taken", dicom=work).split()

        def under_a_file(work: Path, command: str = command) -> list[str]:
            (work / "taken").write_text("")
            return command.format(out=work / "taken" / "sub", dicom=work).split()

        cases.append(Case("output", f"{name}: --out is a file", a_file, "refused", ("taken",)))
        cases.append(Case("output", f"{name}: --out is below a file", under_a_file, "refused", ("taken",)))
    for label, code in (("a full disk", errno.ENOSPC), ("a read-only folder", errno.EROFS)):
        for name in ("phantoms", "predict"):
            def failing(work: Path, command: str = commands[name], code: int = code) -> list[str]:
                argv = command.format(out=work / "out", dicom=work).split()
                return ["__failing__", str(code), *argv]

            cases.append(Case("output", f"{name}: {label}", failing, "refused", ("out",)))
    return cases


def run_output_case(case: Case, work: Path) -> Outcome:
    """As :func:`run_case`, with writes failing for the cases that ask for it."""
    work.mkdir(parents=True, exist_ok=True)
    argv = case.make(work)
    if argv[0] != "__failing__":
        return run_case(Case(case.kind, case.name, lambda _: argv, case.expect, case.names), work)
    with _failing_writes(int(argv[1])):
        return run_case(Case(case.kind, case.name, lambda _: argv[2:], case.expect, case.names), work)
