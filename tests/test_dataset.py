"""Datasets on disk: a valid tiny dataset loads with the right geometry; every ill case fails with one line
naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest

from spar_core.data.dataset import Dataset, load_dataset, load_volume
from spar_core.data.nifti import load_image, read_nifti, resolve_slice_axis
from spar_core.data.integrity import DatasetSummary, check_dataset
from spar_core.errors import SparError

SHAPE = (12, 10, 6)
SPACING = (0.5, 0.5, 3.0)
LABELS = {"background": 0, "femur": 1, "tibia": 2}
CASES = ("c0", "c1", "c2")


def affine(spacing=SPACING) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = (-10.0, 5.0, 2.5)
    return a


def save(path: Path, data: np.ndarray, spacing=SPACING) -> Path:
    img = nib.Nifti1Image(data, affine(spacing))
    img.header.set_zooms((tuple(spacing) + (1.0,) * data.ndim)[: data.ndim])
    nib.save(img, path)
    return path


def label_volume(shape=SHAPE) -> np.ndarray:
    """Background, then a block of 1 and a block of 2: 12·10·6 = 720 voxels, 60 of each structure."""
    lab = np.zeros(shape, dtype=np.uint8)
    lab[0:2, 0:5, :] = 1
    lab[4:6, 0:5, :] = 2
    return lab


def write_dataset(root: Path, *, labels=LABELS, slice_axis: int | None = None, **extra) -> Path:
    """A valid 3-case dataset of 12×10×6 volumes, spacing (0.5, 0.5, 3) mm, labels 0..2."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    training = []
    for case in CASES:
        save(root / "imagesTr" / f"{case}.nii.gz", rng.normal(100, 20, SHAPE).astype(np.float32))
        save(root / "labelsTr" / f"{case}.nii.gz", label_volume())
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
    meta = {"name": "tiny knees", "labels": labels, "training": training, **extra}
    if slice_axis is not None:
        meta["slice_axis"] = slice_axis
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def edit_json(root: Path, change: Callable[[dict], None]) -> None:
    meta = json.loads((root / "dataset.json").read_text())
    change(meta)
    (root / "dataset.json").write_text(json.dumps(meta))


def image(root: Path, case: str = "c1") -> Path:
    return root / "imagesTr" / f"{case}.nii.gz"


def label(root: Path, case: str = "c1") -> Path:
    return root / "labelsTr" / f"{case}.nii.gz"


@pytest.fixture
def ds_root(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "knees")


# ------------------------------------------------------------------------------------------------ valid data


def test_load_dataset_reads_labels_cases_and_meta(ds_root: Path) -> None:
    ds = load_dataset(ds_root)
    assert isinstance(ds, Dataset)
    assert ds.name == "tiny knees"
    assert ds.root == ds_root
    assert list(ds.labels.items()) == [("background", 0), ("femur", 1), ("tibia", 2)]
    assert ds.structures == {"femur": 1, "tibia": 2}
    assert [c.case_id for c in ds.cases] == list(CASES)
    assert ds.case("c1").image_path == image(ds_root)
    assert ds.case("c1").label_path == label(ds_root)
    assert ds.slice_axis is None
    assert ds.meta["name"] == "tiny knees"
    with pytest.raises(SparError, match="'c9'"):
        ds.case("c9")


def test_load_dataset_accepts_the_dataset_json_path(ds_root: Path) -> None:
    assert load_dataset(ds_root / "dataset.json").root == ds_root


def test_load_volume_keeps_native_grid_spacing_and_affine(ds_root: Path) -> None:
    vol = load_volume(load_dataset(ds_root), "c1")
    assert vol.case_id == "c1"
    assert vol.image.shape == SHAPE and vol.image.dtype == np.float32
    assert vol.label is not None and vol.label.shape == SHAPE and vol.label.dtype == np.uint8
    np.testing.assert_array_equal(vol.label, label_volume())
    assert vol.spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(vol.affine, affine())
    assert vol.affine.dtype == np.float64
    assert isinstance(vol.header, nib.Nifti1Header)
    assert vol.slice_axis == 2  # inferred: the 3 mm axis
    assert load_volume(load_dataset(ds_root), "c1", with_label=False).label is None


def test_declared_slice_axis_wins_over_spacing(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "d", slice_axis=0))
    assert ds.slice_axis == 0
    assert load_volume(ds, ds.cases[0]).slice_axis == 0


@pytest.mark.parametrize(
    "spacing, declared, expected",
    [
        ((0.5, 0.5, 3.0), None, 2),
        ((3.0, 0.5, 0.5), None, 0),
        ((0.8, 2.0, 0.8), None, 1),
        ((1.0, 1.0, 1.0), None, 2),  # ties go to the last axis
        ((0.5, 0.5, 3.0), 0, 0),
        ((0.5, 0.5, 3.0), 1, 1),
    ],
)
def test_resolve_slice_axis(spacing, declared, expected) -> None:
    assert resolve_slice_axis(spacing, declared) == expected


def test_nnunet_v1_labels_are_inverted(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", labels={"0": "background", "1": "femur", "2": "tibia"})
    assert load_dataset(root).labels == LABELS


@pytest.mark.parametrize(
    "variant",
    ["float_whole_labels", "trailing_singleton_4d", "uncompressed_nii", "scaled_int_image", "labels_over_255"],
)
def test_accepted_variants(tmp_path: Path, variant: str) -> None:
    root = write_dataset(tmp_path / "d")
    expected_label = label_volume()
    if variant == "float_whole_labels":
        save(label(root), label_volume().astype(np.float32))
    elif variant == "trailing_singleton_4d":
        save(image(root), np.ones(SHAPE + (1,), np.float32))
        save(label(root), label_volume()[..., None])
    elif variant == "uncompressed_nii":
        save(root / "imagesTr" / "c1.nii", np.ones(SHAPE, np.float32))
        edit_json(root, lambda m: m["training"][1].update(image="./imagesTr/c1.nii"))
    elif variant == "scaled_int_image":
        img = nib.Nifti1Image(np.full(SHAPE, 10, np.int16), affine())
        img.header.set_zooms(SPACING)
        img.header.set_slope_inter(0.5, 1.0)
        img.to_filename(image(root))  # nibabel keeps the header scaling of int data
    elif variant == "labels_over_255":
        # 301 consecutive classes, so that a value above 255 is a class (values must be 0..C-1)
        edit_json(root, lambda m: m["labels"].update({f"structure_{v}": v for v in range(2, 300)}, tibia=300))
        expected_label = label_volume().astype(np.int16)
        expected_label[expected_label == 2] = 300
        save(label(root), expected_label)
    vol = load_volume(load_dataset(root), "c1")
    assert vol.image.shape == SHAPE and vol.image.dtype == np.float32
    np.testing.assert_array_equal(vol.label, expected_label)
    assert vol.label.dtype == (np.int16 if variant == "labels_over_255" else np.uint8)
    if variant == "scaled_int_image":
        assert np.all(vol.image == 6.0)  # 10 · 0.5 + 1


def test_load_image_unlabeled_exam(ds_root: Path) -> None:
    vol = load_image(image(ds_root, "c2"))
    assert vol.case_id == "c2" and vol.label is None
    assert vol.spacing == pytest.approx(SPACING) and vol.slice_axis == 2
    assert load_image(image(ds_root, "c2"), slice_axis=1).slice_axis == 1


def test_read_nifti_holds_data_in_memory(ds_root: Path) -> None:
    img = read_nifti(image(ds_root))
    assert isinstance(img.dataobj, np.ndarray) and img.shape == SHAPE


def test_check_dataset_summary_counts_voxels_and_reports_progress(ds_root: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = check_dataset(ds_root, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert summary.n_cases == 3 and summary.n_labeled == 3
    assert summary.voxel_counts == {"background": 3 * 600, "femur": 3 * 60, "tibia": 3 * 60}
    assert summary.shapes == [SHAPE] * 3
    assert summary.slice_axes == [2, 2, 2]
    text = summary.format()
    for phrase in ("tiny knees", "3 (3 labeled)", "femur", "180", "12×10×6 (all cases)", "0.5 × 0.5 × 3 mm",
                   "axis 2: 3 cases"):
        assert phrase in text


def test_summary_format_of_mixed_shapes_spacings_and_axes() -> None:
    summary = DatasetSummary(
        name="mixed", root=Path("/data/mixed"), n_cases=3, labels=LABELS,
        voxel_counts={"background": 1000, "femur": 20, "tibia": 0},
        shapes=[(12, 10, 6), (12, 10, 6), (14, 8, 6)],
        spacings=[(0.5, 0.5, 3.0), (0.5, 0.5, 3.0), (0.7, 0.6, 3.0)],
        slice_axes=[2, 2, 0], n_labeled=3,
    )
    text = summary.format()
    for phrase in ("2 distinct, from 12×8×6 to 14×10×6", "12×10×6: 2 cases", "0.5–0.7 × 0.5–0.6 × 3–3 mm",
                   "axis 0: 1 cases, axis 2: 2 cases", "(absent from every case)"):
        assert phrase in text


# ------------------------------------------------------------------------------------------------ ill cases


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def not_json(root: Path) -> None:
    (root / "dataset.json").write_text('{"labels": {"background": 0},\n "training": [,]}')


# (id, mutation of the valid dataset, offending file, phrase the message must hold)
ILL_CASES: list[tuple[str, Callable[[Path], None], Callable[[Path], Path], str]] = [
    ("missing dataset.json", lambda r: (r / "dataset.json").unlink(), lambda r: r / "dataset.json",
     "file not found"),
    ("missing image", lambda r: image(r).unlink(), image, "file not found"),
    ("missing label", lambda r: label(r).unlink(), label, "file not found"),
    ("truncated image", lambda r: cut_in_half(image(r)), image, "unreadable or truncated"),
    ("truncated label", lambda r: cut_in_half(label(r)), label, "unreadable or truncated"),
    ("random bytes", lambda r: image(r).write_bytes(np.random.default_rng(1).bytes(4000)), image,
     "unreadable or truncated"),
    ("shape mismatch", lambda r: save(label(r), np.zeros((12, 10, 5), np.uint8)), label,
     "label shape 12×10×5 differs from image shape 12×10×6"),
    ("spacing mismatch", lambda r: save(label(r), label_volume(), spacing=(1.0, 1.0, 3.0)), label,
     "voxel size"),
    ("2D image", lambda r: save(image(r), np.ones((12, 10), np.float32)),
     image, "2D data of shape 12×10"),
    ("true 4D image", lambda r: save(image(r), np.ones(SHAPE + (2,), np.float32)), image,
     "4D data of shape 12×10×6×2"),
    ("label values absent", lambda r: save(label(r), label_volume() * 7 // 2), label,
     "label values [3, 7] are not in dataset.json"),
    ("negative label", lambda r: save(label(r), -label_volume().astype(np.int8)), label,
     "label values [-2, -1] are not in dataset.json"),
    ("fractional labels", lambda r: save(label(r), label_volume() / np.float32(2)), label, "non-integer values"),
    ("NaN intensities", lambda r: save(image(r), np.full(SHAPE, np.nan, np.float32)), image, "720 NaN/inf"),
    ("inf intensities", lambda r: save(image(r), np.full(SHAPE, np.inf, np.float32)), image, "NaN/inf"),
    ("not JSON", not_json, lambda r: r / "dataset.json", "not valid JSON: Expecting value at line 2, column 15"),
    ("no labels", lambda r: edit_json(r, lambda m: m.pop("labels")), lambda r: r / "dataset.json",
     'no "labels" key'),
    ("no training", lambda r: edit_json(r, lambda m: m.pop("training")), lambda r: r / "dataset.json",
     'no "training" list'),
    ("no background", lambda r: edit_json(r, lambda m: m["labels"].pop("background")),
     lambda r: r / "dataset.json", "no background"),
    ("slice_axis 3", lambda r: edit_json(r, lambda m: m.update(slice_axis=3)), lambda r: r / "dataset.json",
     '"slice_axis" is 3; expected 0, 1 or 2'),
    ("entry without image", lambda r: edit_json(r, lambda m: m["training"][1].pop("image")),
     lambda r: r / "dataset.json", '"training" entry 1 has no "image"'),
    ("shared label value", lambda r: edit_json(r, lambda m: m["labels"].update(tibia=1)),
     lambda r: r / "dataset.json", "share the value"),
]


@pytest.mark.parametrize("mutate, offender, phrase", [c[1:] for c in ILL_CASES], ids=[c[0] for c in ILL_CASES])
def test_ill_dataset_raises_one_line_naming_the_file(ds_root: Path, mutate, offender, phrase) -> None:
    mutate(ds_root)
    with pytest.raises(SparError) as info:
        check_dataset(ds_root)
    message = str(info.value)
    assert str(offender(ds_root)) in message
    assert phrase in message
    assert "\n" not in message


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SparError, match="no such folder"):
        load_dataset(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------ real data


def test_spine_dataset_loads_as_it_is(spine_dir: Path) -> None:
    ds = load_dataset(spine_dir)
    assert len(ds.cases) == 40
    assert list(ds.structures) == ["L1", "L2", "L3", "L4", "L5"]
    assert ds.slice_axis == 2
    vol = load_volume(ds, ds.cases[0])
    assert vol.image.shape == (224, 224, 77) and vol.label.shape == (224, 224, 77)
    assert vol.spacing == pytest.approx((1.0, 1.0, 1.0))
    assert vol.slice_axis == 2
    assert set(np.unique(vol.label)) <= set(range(6))


def test_check_dataset_on_the_whole_spine(spine_dir: Path) -> None:
    summary = check_dataset(spine_dir)
    assert summary.n_cases == 40 and summary.n_labeled == 40
    assert set(summary.shapes) == {(224, 224, 77)}
    assert all(summary.voxel_counts[f"L{i}"] > 0 for i in range(1, 6))
