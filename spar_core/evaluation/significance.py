"""Paired significance of each method against the baseline, beyond the paper's Table 1.

Per method ≠ baseline and metric, on the (exam, structure) pairs both methods have, a pair dropped when
either value is undefined:

- Δ = mean over pairs of (method − baseline); "better" = Δ > 0 for Dice, Δ < 0 for RAVD, ASSD, MSSD;
- 95 % percentile bootstrap CI of Δ resampling *exams* with replacement (structures of one exam are not
  independent, so they stay together), ``n_boot`` resamples from a fixed seed;
- Wilcoxon signed-rank test (two-sided, scipy's defaults) on one mean difference per exam, so its
  independence assumption holds; its smallest two-sided p with n exams is 2 / 2**n (0.0625 for n = 5);
- Holm's correction over every test made (methods × metrics).

Pure functions of the frame :func:`spar_core.evaluation.report.select` returns. The metric vocabulary both modules use
(:class:`Metric`, ``METRICS``, the pairing keys, markdown tables) is defined here,
so that :mod:`spar_core.evaluation.report` imports this module and never the other way round.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from spar_core.errors import SparError
from spar_core.methods import BASELINE, display_name


@dataclass(frozen=True)
class Metric:
    """One column of Table 1: where it comes from, its unit and which way is better."""

    source: str  # column of metrics.csv
    name: str  # column in the report's frames, in display units
    label: str  # header in tables
    scale: float  # source → display units
    higher_is_better: bool
    decimals: int  # printed precision of mean and std


METRICS: tuple[Metric, ...] = (
    Metric("dice", "dice_pct", "Dice (%)", 100.0, True, 1),
    Metric("ravd_pct", "ravd_pct", "RAVD (%)", 1.0, False, 1),
    Metric("assd_mm", "assd_mm", "ASSD (mm)", 1.0, False, 2),
    Metric("mssd_mm", "mssd_mm", "MSSD (mm)", 1.0, False, 2),
)
ALPHA = 0.05
PAIR = ["case", "structure"]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub markdown table, first column left-aligned, others right-aligned."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join([":---"] + ["---:"] * (len(cols) - 1)) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (nan stays nan and is not counted in the family)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = (len(ok) - np.arange(len(ok))) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def bootstrap_ci(exam_sums: np.ndarray, exam_counts: np.ndarray, n_boot: int, seed: int,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the pair-weighted mean, resampling exams (clusters of pairs) with replacement.

    Args:
        exam_sums: (E,) sum of the paired differences of each exam.
        exam_counts: (E,) number of pairs of each exam.
    """
    if len(exam_sums) < 2:  # one exam resampled is always itself: no interval to speak of
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(exam_sums), size=(n_boot, len(exam_sums)))  # (B, E)
    means = exam_sums[idx].sum(1) / exam_counts[idx].sum(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_test(sel: pd.DataFrame, method: str, metric: Metric, baseline: str = BASELINE, *,
                n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Δ (method − baseline), bootstrap CI and Wilcoxon on per-exam means, over pairs both methods have."""
    cols = ["case", "structure", metric.name]
    a = sel.loc[sel["method"] == method, cols]
    b = sel.loc[sel["method"] == baseline, cols]
    both = a.merge(b, on=PAIR, suffixes=("_m", "_b"))
    defined = both.dropna(subset=[f"{metric.name}_m", f"{metric.name}_b"])
    diff = defined[f"{metric.name}_m"] - defined[f"{metric.name}_b"]
    per_exam_diff = diff.groupby(defined["case"]).agg(["sum", "size"])
    d_exam = (per_exam_diff["sum"] / per_exam_diff["size"]).to_numpy()
    row: dict[str, Any] = {
        "method": method, "display": display_name(method), "metric": metric.name, "label": metric.label,
        "n_exams": len(d_exam), "n_pairs": len(defined), "n_excluded_undefined": len(both) - len(defined),
        "n_unpaired": len(a) + len(b) - 2 * len(both),
        "mean_baseline": defined[f"{metric.name}_b"].mean(), "mean_method": defined[f"{metric.name}_m"].mean(),
        "mean_diff": diff.mean() if len(diff) else math.nan,
    }
    row["ci_low"], row["ci_high"] = bootstrap_ci(per_exam_diff["sum"].to_numpy(float),
                                                 per_exam_diff["size"].to_numpy(float), n_boot, seed)
    d = row["mean_diff"]
    row["direction"] = ("–" if not np.isfinite(d) else "same" if d == 0
                        else "better" if (d > 0) == metric.higher_is_better else "worse")
    n_nonzero = int(np.count_nonzero(d_exam))
    notes = ["one exam: no bootstrap interval"] if len(d_exam) == 1 else []
    if n_nonzero == 0:
        stat, p = (math.nan, math.nan) if len(d_exam) == 0 else (0.0, 1.0)
        notes.append("no exam with a non-zero difference" if len(d_exam) else "no paired values")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about small samples; the note below says it plainly
            res = stats.wilcoxon(d_exam)
        stat, p = float(res.statistic), float(res.pvalue)
    if 0 < n_nonzero < 6:
        notes.append(f"n = {n_nonzero} exams: the smallest two-sided p is {2.0 ** (1 - n_nonzero):.4g}, so "
                     "p < 0.05 is out of reach whatever the effect")
    row.update(wilcoxon_n=n_nonzero, wilcoxon_stat=stat, p_value=p, note="; ".join(notes))
    return row


SIGNIFICANCE_COLUMNS = ["method", "display", "metric", "label", "n_exams", "n_pairs", "n_excluded_undefined",
                        "n_unpaired", "mean_baseline", "mean_method", "mean_diff", "ci_low", "ci_high",
                        "direction", "wilcoxon_n", "wilcoxon_stat", "p_value", "p_holm", "significant", "note"]


def significance(sel: pd.DataFrame, baseline: str = BASELINE, *, n_boot: int = 10_000,
                 seed: int = 0) -> pd.DataFrame:
    """One row per (method ≠ baseline, metric); empty when there are no baseline rows."""
    if n_boot < 1:
        raise SparError(f"--bootstrap: expected a positive number of resamples, got {n_boot}")
    methods = [str(m) for m in sel["method"].cat.categories if m != baseline and (sel["method"] == m).any()]
    if not (sel["method"] == baseline).any() or not methods:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS)
    table = pd.DataFrame([paired_test(sel, m, metric, baseline, n_boot=n_boot, seed=seed)
                          for m in methods for metric in METRICS])
    table["p_holm"] = holm(table["p_value"])
    table["significant"] = table["p_holm"] < ALPHA
    return table[SIGNIFICANCE_COLUMNS]


def _signed(x: float, decimals: int) -> str:
    return f"{x:+.{decimals}f}" if np.isfinite(x) else "–"


def _p(p: float) -> str:
    return "–" if not np.isfinite(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def significance_markdown(sig: pd.DataFrame) -> str:
    """The table: Δ and CI one decimal finer than Table 1, p-values raw and Holm-corrected."""
    dec = {m.name: m.decimals + 1 for m in METRICS}
    rows = []
    for r in sig.itertuples(index=False):
        k = dec[r.metric]
        rows.append({"Method": r.display, "Metric": r.label, "Exams (pairs)": f"{r.n_exams} ({r.n_pairs})",
                     "Δ vs baseline": _signed(r.mean_diff, k),
                     "95 % CI": "–" if not np.isfinite(r.ci_low) else
                                f"[{_signed(r.ci_low, k)}, {_signed(r.ci_high, k)}]", "Direction": r.direction,
                     "W": "–" if not np.isfinite(r.wilcoxon_stat) else f"{r.wilcoxon_stat:g}",
                     "p": _p(r.p_value), "p (Holm)": _p(r.p_holm) + (" *" if r.significant else "")})
    return markdown_table(pd.DataFrame(rows))


def significance_reading(sig: pd.DataFrame, n_boot: int, baseline: str = BASELINE) -> str:
    """One paragraph in plain language: how the numbers were made and what they say."""
    base = display_name(baseline)
    text = (f"Each method is compared with {base} on the same (exam, structure) pairs. Δ is method − {base} in "
            f"the metric's unit (Dice in percentage points); \"better\" means a higher Dice and a lower RAVD, "
            f"ASSD and MSSD. The 95 % interval comes from resampling whole exams with replacement ({n_boot:,} "
            "times), since the structures of one exam are not independent. The p-value is the Wilcoxon "
            "signed-rank test on one mean difference per exam, and Holm's correction accounts for all "
            f"{int(sig['p_value'].notna().sum())} comparisons (* = Holm p < {ALPHA}). ")
    parts = []
    for display, g in sig.groupby("display", sort=False):
        sig_rows = g[g["significant"]]
        ci_rows = g[~g["significant"] & ((g["ci_low"] > 0) | (g["ci_high"] < 0))]
        if not g["n_pairs"].any():
            parts.append(f"{display} has no (exam, structure) pair in common with {base} and is not compared")
        elif len(sig_rows):
            s = ", ".join(f"{r.direction} on {r.label.split()[0]}" for r in sig_rows.itertuples())
            parts.append(f"{display} is significantly {s}")
        elif len(ci_rows):
            s = ", ".join(f"{r.label.split()[0]} ({r.direction})" for r in ci_rows.itertuples())
            parts.append(f"{display} shows no significant difference after correction, though its interval "
                         f"excludes 0 for {s}")
        else:
            parts.append(f"{display} shows no detectable difference")
    text += "; ".join(parts) + "."
    tested = sig.loc[sig["wilcoxon_n"] > 0, "wilcoxon_n"]
    n_min, m = (int(tested.min()), len(tested)) if len(tested) else (0, 0)
    if n_min == 1:
        text += " With a single exam there is nothing to test: the differences above are descriptive only."
    elif 0 < n_min < 6:
        text += (f" With only {n_min} exams the test cannot reach p < 0.05 whatever the effect (smallest "
                 f"two-sided p = {2.0 ** (1 - n_min):.4g}); read the intervals, which are themselves rough "
                 "with so few exams.")
    elif n_min and m * 2.0 ** (1 - n_min) >= ALPHA:
        text += (f" With {n_min} exams and {m} tests even a perfectly consistent effect gets a Holm p of at "
                 f"least {min(1.0, m * 2.0 ** (1 - n_min)):.3g} (smallest two-sided p {2.0 ** (1 - n_min):.4g} "
                 f"× {m}), so nothing can be significant after correction; that needs at least "
                 f"{exams_needed(m)} exams. Read the intervals, which are themselves rough with so few exams.")
    n_left = int(sig["n_excluded_undefined"].sum())
    if n_left:
        text += (f" {n_left} paired value{'s were' if n_left > 1 else ' was'} left out because one side was "
                 "undefined (a missed structure has Dice 0 and RAVD 100 % but no ASSD/MSSD, which flatters the "
                 "distances of the method that misses it).")
    return text


def exams_needed(n_tests: int, alpha: float = ALPHA) -> int:
    """Fewest exams for which Holm over ``n_tests`` Wilcoxon tests can reach ``alpha`` (n_tests · 2/2**n < alpha)."""
    n = 1
    while n_tests * 2.0 ** (1 - n) >= alpha:
        n += 1
    return n
