"""Seconds per exam of spar's metrics against MedPy 0.5.2 at equal values, on phantom and real spine volumes.

    python bench/metrics.py [--repeats 3] [--spine-cases 3]

Per exam and structure MedPy computes ``dc``, ``hd`` and ``assd`` (each distance call recomputes both surfaces
and two distance transforms on the whole volume); spar computes the same numbers with
``evaluate_labels`` (one pass for the bounding boxes, each surface once, the feature transform on the box of
the structure only). Both sides include building the per-structure masks. The time of a side is the fastest of
``--repeats`` runs (other jobs share the machine). Target: ≥ 40× faster, max relative difference ≤ 1e-6.

Volumes: (a) two ankle phantoms from ``spar_core.data.phantoms`` (a synthetic 200×200×40 volume when that module is
absent); (b) spine exams from ``../shared/data/myosegmentum_spine``. Predictions are the truth perturbed: each
structure dilated or eroded (alternately), plus a small island.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import nibabel as nib
import numpy as np
from scipy import ndimage

from spar_core.scoring.metrics import evaluate_labels

REPO = Path(__file__).resolve().parents[1]
SPINE = REPO.parent / "shared" / "data" / "myosegmentum_spine"

Exam = tuple[str, np.ndarray, np.ndarray, tuple[float, float, float]]  # name, pred, truth, spacing


def perturb(truth: np.ndarray, seed: int) -> np.ndarray:
    """A plausible prediction: odd labels dilated (into background) by one voxel, even labels eroded by one,
    and a 3×3×2 island of every label somewhere in the background."""
    rng = np.random.default_rng(seed)
    pred = truth.copy()
    for value in np.unique(truth)[1:]:
        mask = truth == value
        if value % 2:
            pred[ndimage.binary_dilation(mask) & (pred == 0)] = value
        else:
            pred[mask & ~ndimage.binary_erosion(mask)] = 0
        for _ in range(100):
            x, y, z = (int(rng.integers(0, n - 3)) for n in truth.shape)
            if not pred[x:x + 3, y:y + 3, z:z + 2].any():
                pred[x:x + 3, y:y + 3, z:z + 2] = value
                break
    return pred


def synthetic(seed: int) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A 200×200×40 volume with 3 smooth structures, spacing (0.6, 0.6, 3) mm."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((200, 200, 40), dtype=np.uint8)
    grid = np.ogrid[:200, :200, :40]
    for value, centre in enumerate([(60, 70, 20), (120, 90, 18), (100, 150, 22)], start=1):
        radii = rng.uniform(15, 35, 3) / np.array([1, 1, 5])
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) < 1
        truth[inside] = value
    return truth, (0.6, 0.6, 3.0)


def phantom_exams(tmp: Path) -> Iterator[Exam]:
    try:
        from spar_core.data.phantoms import generate_cohort
    except ImportError:
        for seed in range(2):
            truth, spacing = synthetic(seed)
            yield f"synthetic_{seed}", perturb(truth, seed), truth, spacing
        return
    root = generate_cohort("ankle", tmp / "ankle", subjects=2, seed=0)
    for i, path in enumerate(sorted((root / "labelsTr").glob("*.nii.gz"))):
        yield _from_file(path, i)


def spine_exams(n: int) -> Iterator[Exam]:
    paths = sorted((SPINE / "labelsTr").glob("*.nii.gz"))[:n]
    if not paths:
        print(f"(spine data not found at {SPINE}; skipped)")
    for i, path in enumerate(paths):
        yield _from_file(path, 100 + i)


def _from_file(path: Path, seed: int) -> Exam:
    img = nib.load(path)
    truth = np.asarray(img.dataobj).astype(np.uint8)
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    return path.name.split(".")[0], perturb(truth, seed), truth, spacing  # type: ignore[return-value]


def spar_values(pred, truth, spacing, structures) -> list[tuple[float, float, float]]:
    rows = evaluate_labels(pred, truth, spacing, structures)
    return [(r["dice"], r["mssd_mm"], r["assd_mm"]) for r in rows]


def medpy_values(pred, truth, spacing, structures) -> list[tuple[float, float, float]]:
    from medpy.metric import binary

    out = []
    for value in structures.values():
        p, t = pred == value, truth == value
        out.append((binary.dc(p, t), binary.hd(p, t, spacing), binary.assd(p, t, spacing)))
    return out


def fastest(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench(title: str, exams: Iterator[Exam], repeats: int) -> tuple[float, float, float]:
    print(f"\n{title}")
    print(f"{'exam':<14} {'shape':<14} {'spacing mm':<16} {'n':>2} {'spar s':>8} {'medpy s':>8} {'ratio':>7} "
          f"{'max rel diff':>12}")
    total_spar = total_medpy = worst = 0.0
    for name, pred, truth, spacing in exams:
        structures = {f"label_{v}": int(v) for v in np.unique(truth)[1:]}
        t_spar, ours = fastest(lambda: spar_values(pred, truth, spacing, structures), repeats)
        t_medpy, theirs = fastest(lambda: medpy_values(pred, truth, spacing, structures), repeats)
        a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
        diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
        worst = max(worst, diff)
        total_spar += t_spar
        total_medpy += t_medpy
        shape = "×".join(map(str, truth.shape))
        sp = ",".join(f"{s:g}" for s in spacing)
        print(f"{name:<14} {shape:<14} {sp:<16} {len(structures):>2} {t_spar:>8.4f} {t_medpy:>8.3f} "
              f"{t_medpy / t_spar:>6.1f}× {diff:>12.2e}")
    if total_spar:
        ratio = total_medpy / total_spar
        print(f"{'total':<50} {total_spar:>8.4f} {total_medpy:>8.3f} {ratio:>6.1f}× {worst:>12.2e}")
    return total_spar, total_medpy, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per exam and side; the fastest counts")
    parser.add_argument("--spine-cases", type=int, default=3, help="spine exams to time")
    args = parser.parse_args()
    try:
        import medpy
    except ImportError:
        raise SystemExit("bench/metrics.py needs MedPy: pip install -r requirements-test.txt") from None

    print(f"MedPy {getattr(medpy, '__version__', '?')}; values compared: dc, hd, assd")
    with tempfile.TemporaryDirectory() as tmp:
        a = bench("(a) ankle phantoms (prediction = truth dilated/eroded + island)", phantom_exams(Path(tmp)),
                  args.repeats)
    b = bench("(b) spine, MyoSegmenTUM L1-L5 (prediction = truth dilated/eroded + island)",
              spine_exams(args.spine_cases), args.repeats)
    spar, medpy_s = a[0] + b[0], a[1] + b[1]
    print(f"\noverall: spar {spar:.3f} s, MedPy {medpy_s:.3f} s, ratio {medpy_s / spar:.1f}× (target ≥ 40×), "
          f"max relative difference {max(a[2], b[2]):.2e} (target ≤ 1e-6)")


if __name__ == "__main__":
    main()
