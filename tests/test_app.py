"""The app driven headless with AppTest: frame, sidebar, slice browser, errors, and the first-start phantoms."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nibabel
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest_support import viewer_scenes

REPO = Path(__file__).resolve().parents[1]
MAIN = str(REPO / "app" / "main.py")
SPACING = (0.8, 0.8, 3.0)  # anisotropic, thick slices along axis 2
LABELS = {"background": 0, "femur": 1, "tibia": 2}


def _write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(data, np.diag([*SPACING, 1.0])), path)


def write_tiny_dataset(folder: Path, n_cases: int = 3) -> Path:
    """``n_cases`` exams of 40×32×6 voxels with two box-shaped structures that move from slice to slice."""
    rng = np.random.default_rng(0)
    training = []
    for c in range(n_cases):
        image = rng.normal(100.0, 10.0, (40, 32, 6)).astype(np.float32)
        label = np.zeros((40, 32, 6), dtype=np.uint8)
        for k in range(6):
            label[5 + k : 15 + k, 4:12, k] = 1
            label[20:30, 10 + 2 * k : 18 + 2 * k, k] = 2
        image[label > 0] += 80.0
        case = f"tiny_{c:03d}"
        _write(folder / "imagesTr" / f"{case}.nii.gz", image)
        _write(folder / "labelsTr" / f"{case}.nii.gz", label)
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
    meta = {"name": "tiny", "labels": LABELS, "training": training, "slice_axis": 2}
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data_root")
    write_tiny_dataset(root / "tiny")
    return root


@pytest.fixture
def app(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SPAR_DATA_ROOT", str(tiny_root))
    monkeypatch.delenv("SPAR_PHANTOM_SUBJECTS", raising=False)
    return AppTest.from_file(MAIN, default_timeout=60).run()


def _scene(at: AppTest) -> tuple[dict, dict]:
    scenes = viewer_scenes(at)
    assert len(scenes) == 1
    return scenes[0]


def test_browser_renders_the_exam_in_the_viewer(app: AppTest, tiny_root: Path) -> None:
    assert not app.exception
    assert not app.error
    assert app.selectbox(key="dataset").value == "tiny"
    assert app.selectbox(key="exam").options == ["tiny_000", "tiny_001", "tiny_002"]
    header, arrays = _scene(app)
    assert [s["name"] for s in header["structures"]] == ["femur", "tibia"]
    assert header["spacing"] == pytest.approx(SPACING)
    assert header["shape"] == [40, 32, 6] and header["plane"] == "axial"  # sliced along k
    assert header["panels"] == [{"title": "tiny_000", "fill": "truth", "outline": None, "heat": None}]
    # A dataset is there, so no phantoms were generated into the user's data root.
    assert sorted(p.name for p in tiny_root.iterdir()) == ["tiny"]


def test_viewer_gets_the_exam_voxels_and_starts_on_its_busiest_slice(app: AppTest, tiny_root: Path) -> None:
    header, arrays = _scene(app)
    label = np.asarray(nibabel.load(tiny_root / "tiny" / "labelsTr" / "tiny_000.nii.gz").dataobj)
    np.testing.assert_array_equal(arrays[("layer", "truth")], label)  # RAS+ already: nothing moved
    stored = np.asarray(nibabel.load(tiny_root / "tiny" / "imagesTr" / "tiny_000.nii.gz").dataobj, np.float32)
    step = header["intensity"]["step"]
    assert np.abs(arrays[("image", "image")] - stored).max() <= step  # the file's intensities, to one level
    assert header["window"] == pytest.approx(list(np.percentile(stored, [0.5, 99.5])))  # as the figures normalize
    counts = (label > 0).sum(axis=(0, 1))
    assert header["cursor"][2] == int(np.argmax(counts))


def test_exam_table_shows_geometry_and_volumes(app: AppTest) -> None:
    info, volumes = (frame.value for frame in app.dataframe)
    assert list(info["value"]) == ["40 × 32 × 6", "0.8 × 0.8 × 3", "2 (k)"]
    ml = 10 * 8 * 6 * 0.8 * 0.8 * 3.0 / 1000  # both boxes hold 10×8 voxels on each of the 6 slices
    assert list(volumes["structure"]) == ["femur", "tibia"]
    assert list(volumes["volume (mL)"]) == pytest.approx([ml, ml])


def test_switching_exam_hands_the_viewer_the_new_exam(app: AppTest) -> None:
    app.selectbox(key="exam").set_value("tiny_002").run()
    assert not app.exception
    header, _ = _scene(app)
    assert header["exam"] == "tiny_002" and header["panels"][0]["title"] == "tiny_002"


@pytest.mark.parametrize("typed", ["/", "..", "tiny/../.."])
def test_folder_outside_the_data_root_is_a_message(app: AppTest, typed: str) -> None:
    app.text_input(key="data_root").input(typed).run()
    assert not app.exception
    assert any("outside the data root" in e.value for e in app.error)
    assert not viewer_scenes(app)


def test_unreadable_dataset_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_tiny_dataset(tmp_path / "broken", n_cases=1)
    (folder / "imagesTr" / "tiny_000.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    monkeypatch.setenv("SPAR_DATA_ROOT", str(tmp_path))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert any("unreadable or truncated NIfTI" in e.value for e in at.error)


def test_dataset_listing_files_outside_the_root_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = write_tiny_dataset(tmp_path / "outside", n_cases=1)
    root = tmp_path / "root"
    sneaky = root / "sneaky"
    sneaky.mkdir(parents=True)
    meta = json.loads((outside / "dataset.json").read_text())
    for entry in meta["training"]:
        entry["image"] = "../../outside/" + entry["image"][2:]
        entry["label"] = "../../outside/" + entry["label"][2:]
    (sneaky / "dataset.json").write_text(json.dumps(meta))
    monkeypatch.setenv("SPAR_DATA_ROOT", str(root))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert any("outside the dataset folder" in e.value or "outside the data root" in e.value for e in at.error)
    assert not viewer_scenes(at)


def test_first_start_generates_the_phantom_cohorts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "fresh" / "data"  # does not exist yet
    monkeypatch.setenv("SPAR_DATA_ROOT", str(root))
    monkeypatch.setenv("SPAR_PHANTOM_SUBJECTS", "1")
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception and not at.error
    # generated in the background: the page says so and stops; another page (a rerun) follows the same job
    assert any("writing its built-in phantom exams" in i.value for i in at.info)
    import data_access

    job = data_access.phantom_job(root, start=False)
    assert job is not None
    at.run()
    assert data_access.phantom_job(root, start=False) is job  # not started again
    deadline = time.monotonic() + 120
    while not job.done:
        assert time.monotonic() < deadline, "the phantoms were not generated in two minutes"
        time.sleep(0.2)
    assert job.error is None and job.fraction == 1.0 and "exam 1 of 1" in job.text
    at.run()
    assert not at.exception and not at.error
    assert sorted(p.name for p in root.iterdir()) == ["phantoms_ankle", "phantoms_shoulder"]
    assert all((root / name / "dataset.json").is_file() for name in ("phantoms_ankle", "phantoms_shoulder"))
    assert at.selectbox(key="dataset").options == ["phantoms_ankle", "phantoms_shoulder"]
    assert [s["name"] for s in _scene(at)[0]["structures"]] == ["calcaneus", "talus", "tibia"]
    # Second start: the cohorts are there, nothing is generated again.
    again = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not again.exception and not any("phantom exams" in i.value for i in again.info)
    assert data_access.phantom_job(root, start=False) is job


def test_progress_lines_say_what_runs() -> None:
    import demo_offer

    event = {"stage": "phantoms", "epoch": 2, "epochs": 2, "step": 3, "steps": 15, "label": "phantoms shoulder"}
    assert demo_offer.progress_text(event) == "phantoms shoulder: exam 3 of 15"
    assert demo_offer.progress_text({**event, "stage": "crossval", "label": "fold 0 spar"}) == "unit 2/2: fold 0 spar"
