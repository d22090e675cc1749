"""One exam of a run as a PNG: the image, the truth and every method's post-processed prediction on three slices
(the one with the most structure, and one a third of the way to each side), for a report.

    python bench/exam_figure.py RUN CASE OUT.png [--compare CASE2]

With ``--compare`` a second exam's image and truth are added below (e.g. a typical exam beside a failed one),
and the intensity statistics of both are printed. Static, dependency-light (Pillow, which Streamlit brings).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from spar_core.data.dataset import load_dataset, load_volume
from spar_core.data.nifti import read_label_volume
from spar_core.data.slicing import normalize_intensity, to_slices
from spar_core.methods import display_name, method_order
from spar_core.layout.run_folder import RunFolder

PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240]], dtype=np.float32)


def overlay(gray: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    rgb = np.repeat(gray[..., None] * 255, 3, axis=-1)
    if labels is not None:
        m = labels > 0
        rgb[m] = 0.45 * rgb[m] + 0.55 * PALETTE[labels[m] % len(PALETTE)]
    return rgb.astype(np.uint8)


def tile(pixels: np.ndarray, caption: str) -> Image.Image:
    img = Image.fromarray(pixels)
    ImageDraw.Draw(img).text((4, 4), caption, fill=(255, 255, 255))
    return img


def exam_rows(run: RunFolder, dataset, case: str, with_methods: bool) -> list[list[Image.Image]]:
    vol = load_volume(dataset, case)
    image = to_slices(normalize_intensity(vol.image), vol.slice_axis)
    truth = to_slices(vol.label, vol.slice_axis)
    area = (truth > 0).reshape(len(truth), -1).sum(1)
    centre = int(np.argmax(area))
    filled = np.flatnonzero(area)
    chosen = [int(filled[len(filled) // 6]), centre, int(filled[-1 - len(filled) // 6])] if len(filled) else [centre]
    preds = {}
    if with_methods:
        for fold in run.folds():
            if case in run.read_split(fold).test:
                for method in method_order(run.methods(fold)):
                    path = run.prediction_path(fold, method, case)
                    if path.is_file():
                        preds[method] = to_slices(read_label_volume(path)[0], vol.slice_axis)
    rows = []
    for z in chosen:
        row = [tile(overlay(image[z], None), f"{case} slice {z}"), tile(overlay(image[z], truth[z]), "truth")]
        row += [tile(overlay(image[z], p[z]), display_name(m)) for m, p in preds.items()]
        rows.append(row)
    stats = vol.image[vol.label > 0]
    print(f"{case}: mean intensity {vol.image.mean():.1f}, median inside the structures {np.median(stats):.1f}, "
          f"99.5th percentile {np.percentile(vol.image, 99.5):.1f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("case")
    parser.add_argument("out", type=Path)
    parser.add_argument("--compare")
    args = parser.parse_args()
    run = RunFolder(args.run)
    dataset = load_dataset(run.read_config()["dataset"])
    rows = exam_rows(run, dataset, args.case, True)
    if args.compare:
        rows += exam_rows(run, dataset, args.compare, False)
    w, h = rows[0][0].size
    sheet = Image.new("RGB", (w * max(len(r) for r in rows), h * len(rows)))
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            sheet.paste(im, (j * w, i * h))
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.size[0]}×{sheet.size[1]})")


if __name__ == "__main__":
    main()
