"""Cohorts of synthetic exams: who the subjects are, one exam's simulation, and the dataset on disk.

Subject ``i`` of seed ``s`` depends on ``(s, i)`` only — through ``np.random.SeedSequence([s, i])`` — so it
is the same exam whatever the cohort size. Pathologies and degraded (outlier) exams are placed by a
seed-fixed permutation of each block of ``DEFAULT_SUBJECTS`` indices: the default cohort has exactly one
exam of each pathology, one with motion ghosts and one with very low SNR.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from spar_core.errors import SparError
from spar_core.paths import DATASET_JSON
from spar_core.data.nifti import image_file, label_file, write_nifti
from spar_core.paths import write_json
from spar_core.data.nnunet_raw import v2_keys
from spar_core.data.phantoms import ankle, shoulder
from spar_core.data.phantoms.appearance import acquire, draw_acquisition
from spar_core.data.phantoms.grid import Grid
from spar_core.data.phantoms.scene import render

ANATOMIES = {"ankle": ankle, "shoulder": shoulder}
DEGRADATIONS = ("motion", "low_snr")


@dataclass(frozen=True)
class SubjectPlan:
    """Everything decided about one exam before simulating it (cheap: no volume is made)."""

    anatomy: str
    seed: int
    index: int
    case: str
    age_years: float
    sex: str
    scale: float  # growth factor of the bones: ≈ 0.55 at 4 years, 1.0 at 17
    pathology: str | None
    degraded: str | None  # None, "motion" or "low_snr"
    snr: float
    spacing: tuple[float, float, float]  # mm; axis 2 is the slice axis
    shape: tuple[int, int, int]
    origin: tuple[float, float, float]  # world mm of voxel (0, 0, 0)

    def metadata(self) -> dict:
        """The subject's entry in dataset.json."""
        return {"case": self.case, "age_years": self.age_years, "sex": self.sex, "pathology": self.pathology,
                "degraded": self.degraded, "spacing": list(self.spacing), "snr": self.snr, "shape": list(self.shape)}


@dataclass
class Exam:
    """One simulated exam. ``tissue`` holds the :class:`~spar_core.data.phantoms.scene.Tissue` class of each
    voxel at its slice centre: the ground truth of appearance (physis, cartilage...) that labels omit."""

    plan: SubjectPlan
    image: np.ndarray  # (nx, ny, nz) int16
    label: np.ndarray  # (nx, ny, nz) uint8
    tissue: np.ndarray  # (nx, ny, nz) uint8
    affine: np.ndarray  # (4, 4) voxel → world mm


def _module(anatomy: str):
    if anatomy not in ANATOMIES:
        raise SparError(f"anatomy: expected one of {', '.join(ANATOMIES)}, got {anatomy!r}")
    return ANATOMIES[anatomy]


def _streams(anatomy: str, seed: int, index: int) -> list[np.random.Generator]:
    """Independent generators of subject ``index``: plan, anatomy, acquisition.

    All come from ``SeedSequence([seed, index])``; each anatomy takes its own children of it, so that ankle
    ``i`` and shoulder ``i`` are different children.
    """
    first = 3 * list(ANATOMIES).index(anatomy)
    children = np.random.SeedSequence([seed, index]).spawn(3 * len(ANATOMIES))[first : first + 3]
    return [np.random.default_rng(s) for s in children]


def _role(anatomy: str, seed: int, index: int) -> tuple[str | None, str | None]:
    mod = _module(anatomy)
    block, pos = divmod(index, mod.DEFAULT_SUBJECTS)
    perm = np.random.default_rng([seed, block, 0x5BA2]).permutation(mod.DEFAULT_SUBJECTS)
    rank = int(np.flatnonzero(perm == pos)[0])
    if rank < len(mod.PATHOLOGIES):
        return mod.PATHOLOGIES[rank], None
    rank -= len(mod.PATHOLOGIES)
    return None, DEGRADATIONS[rank] if rank < len(DEGRADATIONS) else None


def plan_subject(anatomy: str, seed: int, index: int) -> SubjectPlan:
    """Age, sex, role, field of view and sampling of subject ``index``."""
    mod = _module(anatomy)
    rng = _streams(anatomy, seed, index)[0]
    pathology, degraded = _role(anatomy, seed, index)
    age = round(float(rng.uniform(4, 17)), 1)
    sex = "M" if rng.random() < 0.5 else "F"
    scale = (0.55 + 0.45 * (age - 4) / 13) * rng.uniform(0.95, 1.05) * (1.04 if sex == "M" and age > 12 else 1.0)
    snr = rng.uniform(4, 5) if degraded == "low_snr" else rng.uniform(12, 40)
    lo, hi = np.asarray(mod.EXTENT[0]) * scale, np.asarray(mod.EXTENT[1]) * scale
    fov = float(max(hi[:2] - lo[:2])) * rng.uniform(1.0, 1.1)
    inplane = float(np.clip(fov / rng.uniform(176, 224), 0.45, 0.6))
    n = int(np.clip(2 * round(fov / inplane / 2), 160, 224))
    z_cover = hi[2] - lo[2] + rng.uniform(4, 12)
    dz = round(float(np.clip(z_cover / rng.uniform(30, 45), 2.0, 3.0)), 2)
    nz = int(np.clip(np.ceil(z_cover / dz), 25, 45))
    spacing = (round(inplane, 4), round(inplane, 4), dz)
    shape = (n, n, nz)
    centre = 0.5 * (lo + hi) + rng.uniform(-4, 4, size=3)
    origin = tuple(round(float(c - (k - 1) / 2 * s), 3) for c, k, s in zip(centre, shape, spacing))
    return SubjectPlan(anatomy, seed, index, f"{anatomy}_{index:03d}", age, sex, round(float(scale), 4),
                       pathology, degraded, round(float(snr), 1), spacing, shape, origin)  # type: ignore[arg-type]


def plan_cohort(anatomy: str, subjects: int | None = None, seed: int = 0) -> list[SubjectPlan]:
    """The subjects of a cohort, without simulating them.

    Args:
        anatomy: "ankle" or "shoulder".
        subjects: number of exams; default 17 (ankle) or 15 (shoulder), the paper's cohort sizes.
        seed: cohort seed; subject ``i`` depends only on ``(seed, i)``.

    Raises:
        SparError: unknown ``anatomy`` or ``subjects`` < 1.
    """
    mod = _module(anatomy)
    subjects = mod.DEFAULT_SUBJECTS if subjects is None else subjects
    if not isinstance(subjects, (int, np.integer)) or subjects < 1:
        raise SparError(f"subjects: expected an integer ≥ 1, got {subjects!r}")
    return [plan_subject(anatomy, int(seed), i) for i in range(int(subjects))]


def simulate_exam(plan: SubjectPlan) -> Exam:
    """Build, render and acquire one exam (≈ 1 s on one core)."""
    mod = _module(plan.anatomy)
    _, anatomy_rng, mr_rng = _streams(plan.anatomy, plan.seed, plan.index)
    scene = mod.build(anatomy_rng, plan.age_years, plan.scale, plan.pathology)
    grid = Grid(plan.shape, plan.spacing, plan.origin)
    rendered = render(scene, grid)
    acq = draw_acquisition(mr_rng, plan.age_years, plan.snr, plan.degraded == "motion")
    image = acquire(rendered.tissue, grid.subslices, plan.spacing, acq, mr_rng)
    centre = rendered.tissue[..., grid.subslices // 2 :: grid.subslices]
    return Exam(plan, image, rendered.label, np.ascontiguousarray(centre), grid.affine())


def _simulate_and_write(plan: SubjectPlan, out_dir: Path) -> None:
    exam = simulate_exam(plan)
    write_nifti(exam.image, exam.affine, out_dir / "imagesTr" / image_file(plan.case))
    write_nifti(exam.label, exam.affine, out_dir / "labelsTr" / label_file(plan.case))


def generate_cohort(anatomy: str, out_dir: str | Path, subjects: int | None = None, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> Path:
    """Write a synthetic pediatric cohort in the Medical Segmentation Decathlon / nnU-Net layout.

    Args:
        anatomy: "ankle" (calcaneus 1, talus 2, tibia 3) or "shoulder" (humerus 1, scapula 2).
        out_dir: dataset folder; ``imagesTr/``, ``labelsTr/`` and ``dataset.json`` (written last) go there.
        subjects: number of exams (default: the paper's cohort size, 17 ankles / 15 shoulders).
        seed: the same (anatomy, subjects, seed) gives identical arrays and files.
        progress: called with (exams done, total) after each exam.
        workers: exams simulated in parallel threads; default min(2, CPU count).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        SparError: unknown ``anatomy``, ``subjects`` < 1 or ``workers`` < 1.
    """
    mod = _module(anatomy)
    plans = plan_cohort(anatomy, subjects, seed)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise SparError(f"workers: expected an integer ≥ 1, got {workers!r}")
    out = Path(out_dir)
    # Threads suffice: the work is large numpy / FFT / zlib calls that release the GIL.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, _ in enumerate(pool.map(lambda p: _simulate_and_write(p, out), plans), start=1):
            if progress is not None:
                progress(done, len(plans))
    bones = ", ".join(name for name in mod.LABELS if name != "background")
    description = (f"Synthetic pediatric {anatomy} MR exams ({bones}) generated by spar_core.data.phantoms "
                   f"(seed {seed}). Not real patients.")
    dataset = {
        "name": f"spar_phantom_{anatomy}",
        "description": description,
        "reference": "spar_core.data.phantoms; anatomy after Boutillon et al., ISBI 2021 (SPAR)",
        "licence": "CC0-1.0",
        "tensorImageSize": "3D",
        **v2_keys(mod.LABELS, len(plans)),
        "slice_axis": 2,
        "seed": int(seed),
        "training": [{"image": f"./imagesTr/{image_file(p.case)}", "label": f"./labelsTr/{label_file(p.case)}"}
                     for p in plans],
        "subjects": [p.metadata() for p in plans],
    }
    write_json(out / DATASET_JSON, dataset)
    return out

