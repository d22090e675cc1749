"""spar predict: a folder in, labels and uncertainty maps out, fold models ensembled (with TTA), each exam
written on its own grid whatever its axis order; bad files reported in one line while the others go on."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest

from spar_core.cli import main
from spar_core.layout.run_folder import RunFolder
from spar_core.data.nifti import case_id_of


@pytest.fixture()
def exams(ankle_small: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted((ankle_small / "imagesTr").glob("*.nii.gz"))[:2]:
        shutil.copy(p, folder / p.name)
    return folder


def test_folder_in_ensemble_and_maps_out(two_fold_run: Path, exams: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(exams), "-o", str(out),
                 "--tta", "--save-probabilities", "--postprocess", "none"]) == 0
    printed = capsys.readouterr().out
    assert "2 exam(s) segmented" in printed and "folds 0,1, 10 member(s)" in printed  # 2 folds × 5 shifts
    # the top level holds label maps only, named after the case (nnU-Net's evaluation globs it)
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{case_id_of(p)}.nii.gz" for p in exams.iterdir())
    for image in sorted(exams.iterdir()):
        case = case_id_of(image)
        source = nibabel.load(image)
        labels = nibabel.load(out / f"{case}.nii.gz")
        entropy = nibabel.load(out / "uncertainty" / f"{case}_entropy.nii.gz").get_fdata()
        disagreement = nibabel.load(out / "uncertainty" / f"{case}_disagreement.nii.gz").get_fdata()
        assert labels.shape == entropy.shape == source.shape and np.allclose(labels.affine, source.affine)
        with np.load(out / "probabilities" / f"{case}.npz") as z:
            probs = z["probabilities"]
            assert list(z["labels"]) == ["background", "calcaneus", "talus", "tibia"]
        assert probs.dtype == np.float16 and probs.shape == (4, *source.shape)
        assert np.allclose(probs.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)
        p32 = probs.astype(np.float32)
        top2 = np.sort(p32, axis=0)[-2:]
        differ = np.asanyarray(labels.dataobj) != p32.argmax(axis=0)
        assert not differ[top2[1] - top2[0] > 2e-3].any()  # the labels are the argmax, up to float16 rounding
        assert entropy.min() >= 0 and entropy.max() <= np.log(4) + 1e-3
        assert disagreement.min() >= 0 and disagreement.max() <= entropy.max() + 1e-3


def test_exam_with_permuted_flipped_axes_gives_the_same_labels(two_fold_run: Path, exams: Path,
                                                                tmp_path: Path) -> None:
    image = sorted(exams.iterdir())[0]
    original = nibabel.load(image)
    permuted = original.as_reoriented([[2, -1], [0, 1], [1, -1]])  # same anatomy, another array order
    other = tmp_path / "permuted"
    other.mkdir()
    nibabel.save(permuted, other / image.name)
    for folder, out in ((exams, tmp_path / "a"), (other, tmp_path / "b")):
        assert main(["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(folder),
                     "-o", str(out), "--models", "0,1"]) == 0
    a = nibabel.load(tmp_path / "a" / f"{case_id_of(image)}.nii.gz")  # named after the case, no channel suffix
    b = nibabel.load(tmp_path / "b" / f"{case_id_of(image)}.nii.gz")
    assert b.shape == permuted.shape and np.allclose(b.affine, permuted.affine)
    moved_back = b.as_reoriented(nibabel.orientations.ornt_transform(
        nibabel.orientations.io_orientation(b.affine), nibabel.orientations.io_orientation(a.affine)))
    assert np.array_equal(np.asanyarray(moved_back.dataobj), np.asanyarray(a.dataobj))
    assert np.asanyarray(a.dataobj).any()


def test_bad_file_is_one_line_others_go_on_and_done_ones_are_skipped(two_fold_run: Path, exams: Path,
                                                                   tmp_path: Path, capsys) -> None:
    (exams / "broken.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "out"
    argv = ["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(exams), "-o", str(out),
            "--fold", "1"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "broken.nii.gz" in err[0] and "Traceback" not in captured.err
    assert "2 exam(s) segmented" in captured.out and "1 failed" in captured.out
    (exams / "broken.nii.gz").unlink()
    assert main(argv) == 0
    assert "0 exam(s) segmented" in capsys.readouterr().out and not list(out.glob("broken*"))
    assert main(argv + ["--overwrite"]) == 0
    assert "2 exam(s) segmented" in capsys.readouterr().out


def test_corrupt_or_foreign_checkpoint_is_one_line_without_torch_advice(two_fold_run: Path, exams: Path,
                                                                       tmp_path: Path, capsys) -> None:
    import torch

    run = tmp_path / "run"
    shutil.copytree(two_fold_run, run)
    model = RunFolder(run).model_path(0, "baseline")
    torch.save({"code": np.dtype}, model)  # a pickle that needs more than weights: refused, not run
    argv = ["predict", "--run", str(run), "--method", "baseline", "-i", str(exams), "-o", str(tmp_path / "o"),
            "--fold", "0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(model) in err and "weights_only" not in err and "Traceback" not in err
    model.write_bytes(b"\x00" * 100)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(model) in err and "weights_only" not in err


def test_bad_fold_choice(two_fold_run: Path, exams: Path, tmp_path: Path, capsys) -> None:
    for folds in ("7", "x,y"):
        assert main(["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(exams), "-o",
                     str(tmp_path / "o"), "--models", folds]) == 2
        assert "--models" in capsys.readouterr().err


def test_a_full_disk_is_one_line_and_a_rerun_completes_the_exam(two_fold_run: Path, exams: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import errno

    import spar_core.inference.folder as folder  # where the maps are written

    out = tmp_path / "out"
    write = folder.write_map_volume
    second = case_id_of(sorted(exams.iterdir())[1])

    def full_disk(values, source, path):
        if Path(path).name == f"{second}_disagreement.nii.gz":  # in OUT/uncertainty/
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write(values, source, path)

    monkeypatch.setattr(folder, "write_map_volume", full_disk)
    argv = ["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(exams), "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert not (out / f"{second}.nii.gz").exists()  # not done: its labels are written last
    assert not list(out.rglob(".*"))  # nothing half-written
    monkeypatch.setattr(folder, "write_map_volume", write)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 exam(s) segmented" in printed and "1 already there" in printed
    for name in (f"{second}.nii.gz", f"uncertainty/{second}_entropy.nii.gz",
                 f"uncertainty/{second}_disagreement.nii.gz"):
        assert (out / name).is_file()


def test_an_output_path_that_is_a_file_is_one_line(two_fold_run: Path, exams: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "taken").write_text("")
    assert main(["predict", "--run", str(two_fold_run), "--method", "baseline", "-i", str(exams),
                 "-o", str(tmp_path / "taken")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_the_run_is_named_first_as_in_every_command(two_fold_run: Path, exams: Path, tmp_path: Path,
                                                    capsys) -> None:
    image = sorted(exams.iterdir())[0]
    assert main(["predict", str(two_fold_run), "--method", "baseline", "-i", str(image),
                 "-o", str(tmp_path / "p.nii.gz")]) == 0
    assert (tmp_path / "p.nii.gz").is_file()
    assert main(["predict", "--method", "baseline", "-i", str(image), "-o", str(tmp_path / "q.nii.gz")]) == 2
    assert "RUN: expected the run folder once" in capsys.readouterr().err
