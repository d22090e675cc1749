"""Regenerate the data cards' figures from the phantom generator (deterministic: seed 0).

    python data_cards/make_figures.py

One row per exam (a teenager, a young child, a pathological exam, a degraded exam); columns are three axial
slices and one coronal reformat, with each bone's label contour in its own colour.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage.segmentation import find_boundaries
from skimage.transform import resize

from spar_core.data.phantoms import plan_cohort, simulate_exam

OUT = Path(__file__).parent / "figures"
COLORS = np.array([[0, 0, 0], [230, 159, 0], [86, 180, 233], [0, 158, 115]], np.uint8)  # Okabe–Ito
TILE = 200


def panel(image: np.ndarray, label: np.ndarray, aspect: float = 1.0) -> np.ndarray:
    """A grey 2D slice with label contours, first axis horizontal, second vertical (up), as TILE×TILE."""
    grey = np.clip(image / (np.percentile(image, 99.5) or 1) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, -1)
    for value in range(1, int(label.max()) + 1):
        rgb[find_boundaries(label == value, mode="inner")] = COLORS[value]
    rgb = np.flipud(np.transpose(rgb, (1, 0, 2)))
    h, w = rgb.shape[0] * aspect, rgb.shape[1]
    scale = TILE / max(h, w)
    small = resize(rgb, (max(1, round(h * scale)), max(1, round(w * scale))), order=1, preserve_range=True)
    tile = np.zeros((TILE, TILE, 3), np.uint8)
    tile[: small.shape[0], : small.shape[1]] = small.astype(np.uint8)
    return tile


def sheet(anatomy: str) -> Path:
    plans = plan_cohort(anatomy, seed=0)
    teen = max((p for p in plans if not p.pathology and not p.degraded), key=lambda p: p.age_years)
    child = min((p for p in plans if not p.pathology and not p.degraded), key=lambda p: p.age_years)
    patho = next(p for p in plans if p.pathology)
    degraded = next(p for p in plans if p.degraded == "motion")
    rows = []
    for plan in (teen, child, patho, degraded):
        exam = simulate_exam(plan)
        z = np.flatnonzero(exam.label.any(axis=(0, 1)))
        ks = np.linspace(z[0], z[-1], 5).round().astype(int)[1:4]
        y = int(np.median(np.nonzero(exam.label)[1]))
        aspect = plan.spacing[2] / plan.spacing[0]
        tiles = [panel(exam.image[:, :, k], exam.label[:, :, k]) for k in ks]
        tiles.append(panel(exam.image[:, y, :], exam.label[:, y, :], aspect))
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{anatomy}: {plan.case} age {plan.age_years} pathology {plan.pathology} degraded {plan.degraded}")
    path = OUT / f"phantoms_{anatomy}.png"
    OUT.mkdir(exist_ok=True)
    iio.imwrite(path, np.concatenate(rows, axis=0))
    return path


if __name__ == "__main__":
    for anatomy in ("ankle", "shoulder"):
        print(sheet(anatomy))
