"""``spar check``: summary and exit 0 on a valid dataset; one stderr line and exit 2 on a bad one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spar_core.cli as cli
from test_dataset import cut_in_half, image, write_dataset


def test_check_valid_dataset_prints_summary(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    assert cli.main(["check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tiny knees" in out and "femur" in out and "12×10×6" in out
    assert out.strip().splitlines()[-1].startswith("OK: 3 cases valid")


def test_check_bad_dataset_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    cut_in_half(image(root))
    assert cli.main(["check", str(root)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("spar check: error: ") and str(image(root)) in lines[0]
    assert "Traceback" not in captured.err
    assert "OK:" not in captured.out


def test_check_help_mentions_the_layout(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["check", "--help"])
    assert info.value.code == 0
    assert "dataset.json" in capsys.readouterr().out


def test_python_m_spar_core_check_bad_dir(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "knees")
    cut_in_half(image(root))
    proc = subprocess.run(
        [sys.executable, "-m", "spar_core", "check", str(root)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert str(image(root)) in proc.stderr


def _relabel(root: Path, change) -> None:
    """Rewrite c1's label with its affine changed by ``change`` (same shape, same spacing)."""
    import nibabel as nib

    from test_dataset import label

    img = nib.load(label(root))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), change(img.affine.copy()), img.header), label(root))


def _flip_x(a):
    a[:, 0] *= -1
    return a


def _shift(a):
    a[:3, 3] += (3.0, -2.0, 0.0)
    return a


@pytest.mark.parametrize("change, words", [(_flip_x, "axis directions"), (_shift, "origin")])
def test_check_refuses_a_label_flipped_or_shifted_against_its_image(tmp_path: Path, capsys,
                                                                      change, words) -> None:
    from test_dataset import label

    root = write_dataset(tmp_path / "knees")
    _relabel(root, change)
    assert cli.main(["check", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(label(root)) in err[0] and words in err[0]


def test_check_refuses_a_non_finite_affine(tmp_path: Path, capsys) -> None:
    import nibabel as nib

    root = write_dataset(tmp_path / "knees")
    img = nib.load(image(root))
    affine = img.affine.copy()
    affine[0, 3] = np.nan
    header = img.header.copy()
    header.set_qform(None, code=0)
    bad = nib.Nifti1Image(np.asarray(img.dataobj), None, header)
    bad.header.set_sform(affine, code=1)
    nib.save(bad, image(root))
    assert cli.main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite" in err and str(image(root)) in err and "Traceback" not in err


@pytest.mark.parametrize("entry", ["../outside.nii.gz", "/tmp/outside.nii.gz"])
def test_check_refuses_entries_outside_the_dataset_folder(tmp_path: Path, capsys, entry) -> None:
    from test_dataset import edit_json

    root = write_dataset(tmp_path / "knees")
    (tmp_path / "outside.nii.gz").write_bytes(image(root).read_bytes())
    edit_json(root, lambda meta: meta["training"][0].update(image=entry))
    assert cli.main(["check", str(root)]) == 2
    assert "outside the dataset folder" in capsys.readouterr().err


def test_check_refuses_a_volume_larger_than_the_limit_before_reading_it(tmp_path: Path, capsys,
                                                                          monkeypatch) -> None:
    root = write_dataset(tmp_path / "knees")
    monkeypatch.setenv("SPAR_MAX_VOXELS", "100")  # the 12×10×6 exams hold 720
    assert cli.main(["check", str(root)]) == 2
    err = capsys.readouterr().err
    assert "12 × 10 × 6 = 720 voxels" in err and "SPAR_MAX_VOXELS" in err
    monkeypatch.setenv("SPAR_MAX_VOXELS", "720")
    assert cli.main(["check", str(root)]) == 0


def test_check_refuses_absurdly_nested_json_in_one_line(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    (root / "dataset.json").write_text("[" * 100_000 + "]" * 100_000)
    assert cli.main(["check", str(root)]) == 2
    captured = capsys.readouterr()
    assert "nested too deeply" in captured.err and "Traceback" not in captured.err


def test_check_drafts_a_data_card_and_never_overwrites_one(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "knees")
    card = tmp_path / "card.md"
    assert cli.main(["check", str(root), "--card", str(card)]) == 0
    text = card.read_text()
    assert text.startswith("# Data card: tiny knees")
    assert "| cases | 3 (3 labeled); no twin exams |" in text
    assert "| array | 12 × 10 × 6 (all cases) voxels" in text and "| orientation |" in text
    assert "femur" in text.split("| labels |")[1].splitlines()[0]
    for section in ("Description", "Intended uses", "Personal and sensitive information", "Citation"):
        assert f"## {section}\n*To fill:* " in text
    card.write_text("my edits")
    capsys.readouterr()
    assert cli.main(["check", str(root), "--card", str(card)]) == 2
    assert "never overwritten" in capsys.readouterr().err and card.read_text() == "my edits"


@pytest.mark.parametrize("value", [2**40, 2**40 + 1])
def test_a_label_value_past_what_spar_reads_is_one_line(tmp_path: Path, capsys, value: int) -> None:
    import nibabel as nib

    from test_dataset import label

    root = write_dataset(tmp_path / "knees")
    old = nib.load(label(root))
    data = np.asarray(old.dataobj).astype(np.int64)
    data[data == 1] = value  # cast to int32 it would wrap to 1 (or 0) and pass
    nib.save(nib.Nifti1Image(data, old.affine, old.header, dtype=np.int64), label(root))
    assert cli.main(["check", str(root)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(label(root)) in lines[0] and str(value) in lines[0]
