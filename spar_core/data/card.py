"""A data card drafted from what ``spar check`` learned: the *Structure* table filled with the dataset's facts,
every human section of ``data_cards/TEMPLATE.md`` kept as its prompt for the person who knows the data.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from spar_core.data.integrity import DatasetSummary
from spar_core.errors import SparError

TEMPLATE = Path(__file__).resolve().parents[2] / "data_cards" / "TEMPLATE.md"
_FILL = "*To fill:* "


def _range(values: list[tuple], unit: str = "") -> str:
    arr = np.asarray(values, dtype=float)
    lo, hi = arr.min(axis=0), arr.max(axis=0)
    fmt = (lambda v: f"{v:.3g}") if unit else (lambda v: f"{int(v)}")
    if np.allclose(lo, hi):
        return " × ".join(fmt(v) for v in lo) + f"{unit} (all cases)"
    return " × ".join(f"{fmt(a)}–{fmt(b)}" for a, b in zip(lo, hi)) + f"{unit} (range per axis)"


def structure_rows(s: DatasetSummary) -> list[tuple[str, str]]:
    """The facts of the *Structure* table, as (item, value)."""
    labels = ", ".join(f"{v} {name}" for name, v in s.labels.items())
    absent = [name for name, v in s.labels.items() if v and s.cases_with_label.get(name, 0) < s.n_labeled]
    presence = ("every structure in every labeled case" if not absent else
                "; ".join(f"{name} in {s.cases_with_label.get(name, 0)} of {s.n_labeled} labeled cases"
                          for name in absent))
    twins = s.twins.lines()
    dtypes = Counter(s.image_dtypes)
    if s.slice_axis_declared is not None:
        axis = f"{s.slice_axis_declared} (declared as `slice_axis` in `dataset.json`)"
    else:
        axis = "largest spacing per volume: " + ", ".join(f"axis {a} in {n} cases"
                                                          for a, n in sorted(Counter(s.slice_axes).items()))
    return [
        ("layout", "Medical Segmentation Decathlon / nnU-Net (`dataset.json`, `imagesTr/`, `labelsTr/`)"),
        ("cases", f"{s.n_cases} ({s.n_labeled} labeled)"
                  + (f"; twins kept in one fold by the splits: {'; '.join(twins)}" if twins else "; no twin exams")),
        ("array", f"{_range(s.shapes)} voxels, {_range(s.spacings, ' mm')}; image type "
                  + ", ".join(f"{t} ({n})" for t, n in dtypes.most_common())),
        ("orientation", s.orientation_text() + " (voxel axes, nibabel codes)"),
        ("labels", f"{labels} — {presence}"),
        ("slice axis", axis),
        ("voxels per label, all cases", "; ".join(f"{name} {s.voxel_counts.get(name, 0):,}" for name in s.labels)),
    ]


def draft_card(summary: DatasetSummary, template: str | None = None) -> str:
    """The template with its title and *Structure* table filled; the other sections' prompts marked to fill.

    Raises:
        SparError: the template is missing or has no ``## Structure`` section.
    """
    if template is None:
        if not TEMPLATE.is_file():
            raise SparError(f"{TEMPLATE}: data card template not found (it ships in the repository's data_cards/)")
        template = TEMPLATE.read_text(encoding="utf-8")
    sections = template.split("\n## ")
    if not any(sec.startswith("Structure") for sec in sections[1:]):
        raise SparError(f"{TEMPLATE}: no '## Structure' section; expected the data card template")
    out = [f"# Data card: {summary.name}\n\nDrafted by `spar check {summary.root} --card`: the *Structure* table "
           "holds what the check measured; every other section is for the people who know the data.\n"]
    for sec in sections[1:]:
        title, _, body = sec.partition("\n")
        if title.strip() == "Structure":
            table = ["| item | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in structure_rows(summary))]
            out.append("## Structure\n" + "\n".join(table) + "\n")
        else:
            prompt = " ".join(body.split())
            out.append(f"## {title.strip()}\n{_FILL}{prompt}\n")
    return "\n".join(out)
