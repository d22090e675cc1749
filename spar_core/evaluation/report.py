"""The paper's Table 1 from ``RUN/metrics.csv``, and the paired significance tests the paper could not run.

Everything here is a pure function of the metrics frame except :func:`write_report`, which writes
``RUN/report/``. Numbers are in display units: Dice in % (91.9, as in the paper), RAVD in %, ASSD and MSSD in mm.

Averaging, as in the paper (metrics averaged over bones and patients): Table 1 is the mean ± sample std
(ddof 1) over (exam, structure) pairs, each structure of each test exam counting once.

Undefined values (nan; see the empty-mask policy in :mod:`spar_core.scoring.metrics`: e.g. ASSD of an empty
prediction) are left out of that metric's mean and counted, never hidden.

Each method's paired comparison with the baseline (bootstrap CI over exams, Wilcoxon on per-exam
means, Holm across the family) is computed in :mod:`spar_core.evaluation.significance`; this module puts it in
the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from spar_core.errors import SparError
from spar_core.evaluation.significance import (
    METRICS,
    PAIR,
    Metric,
    markdown_table,
    significance,
    significance_markdown,
    significance_reading,
)

from spar_core.scoring.identity import identity_table, is_true
from spar_core.methods import BASELINE, display_name, method_order
from spar_core.paths import read_table, write_csv, write_text
from spar_core.postprocessing.levels import LEVEL_CALL_COLUMNS
from spar_core.postprocessing.settings import describe, run_settings

if TYPE_CHECKING:  # only for the annotation: importing the run folder (or the registry) pulls in torch
    from spar_core.layout.run_folder import RunFolder

REQUIRED_COLUMNS: tuple[str, ...] = ("case", "fold", "method", "structure", "postprocessed",
                                     *(m.source for m in METRICS))


def check_metrics(frame: pd.DataFrame, source: str = "metrics") -> pd.DataFrame:
    """A validated copy of a metrics frame, ``postprocessed`` as bool and metric columns as float.

    Raises:
        SparError: missing columns (named), no rows, or an (exam, structure, method, postprocessed) twice.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SparError(f"{source}: missing column(s) {', '.join(missing)} (expected {', '.join(REQUIRED_COLUMNS)})")
    if frame.empty:
        raise SparError(f"{source}: no rows")
    keys = ["case", "fold", "method", "structure", "postprocessed"]
    blank = frame[keys].isna().any(axis=1)
    if blank.any():
        raise SparError(f"{source}: {int(blank.sum())} row(s) without {', '.join(keys)} (a truncated table?); "
                        "expected every row complete")
    out = frame.copy()
    flags = out["postprocessed"].map(is_true)
    out["postprocessed"] = flags.astype(bool)
    out["case"] = out["case"].astype(str)
    out["structure"] = out["structure"].astype(str)
    for m in METRICS:
        values = pd.to_numeric(out[m.source], errors="coerce").astype(float)
        bad = values.isna() & out[m.source].notna()  # text that is not a number (empty cells are nan already)
        if bad.any():
            raise SparError(f"{source}: column {m.source} has non-numeric value {out.loc[bad, m.source].iloc[0]!r} "
                            f"({int(bad.sum())} row(s)); expected numbers, empty or nan for undefined")
        out[m.source] = values
    dup = out.duplicated(["case", "structure", "method", "postprocessed"])
    if dup.any():
        first = out[dup].iloc[0]
        raise SparError(f"{source}: {int(dup.sum())} duplicated row(s), e.g. case {first['case']}, structure "
                        f"{first['structure']}, method {first['method']} appears twice")
    return out


def load_metrics(path: str | Path) -> pd.DataFrame:
    """Read and validate ``RUN/metrics.csv``."""
    path = Path(path)
    if not path.is_file():
        raise SparError(f"{path}: no metrics.csv in this run folder; run spar crossval first")
    frame = read_table(path, (), "a metrics table (one row per exam × structure × method)",
                       text=("case", "structure"))
    return check_metrics(frame, str(path))


def select(metrics: pd.DataFrame, postprocessed: bool = True) -> pd.DataFrame:
    """Rows of one post-processing setting, metrics in display units, non-finite values set to nan.

    Columns: method, display, case, fold, structure, dice_pct, ravd_pct, assd_mm, mssd_mm, and the level call's
    (``level_anchor``, ``level_margin``, ``level_unknown``) where the rows hold it.
    """
    rows = metrics[metrics["postprocessed"] == postprocessed]
    order = ["label", "structure"] if "label" in rows.columns else ["structure"]
    structures = list(dict.fromkeys(rows.sort_values(order, kind="stable")["structure"]))
    out = pd.DataFrame({"method": rows["method"].astype(str), "case": rows["case"], "fold": rows["fold"],
                        "structure": pd.Categorical(rows["structure"], categories=structures, ordered=True)})
    for m in METRICS:
        values = rows[m.source].to_numpy(float) * m.scale
        out[m.name] = np.where(np.isfinite(values), values, np.nan)
    for column in LEVEL_CALL_COLUMNS:
        if column in rows:
            out[column] = rows[column].to_numpy()
    out["method"] = pd.Categorical(out["method"], categories=method_order(out["method"].unique()), ordered=True)
    out.insert(1, "display", out["method"].map(display_name).astype(str))
    return out.sort_values(["method", "case", "structure"], kind="stable").reset_index(drop=True)


def summarize(sel: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, sample std, number of defined values and of undefined (excluded) values per group and metric."""
    def one(group: pd.DataFrame) -> pd.Series:
        out: dict[str, float] = {"n": len(group)}
        for m in METRICS:
            v = group[m.name].dropna()
            out[f"{m.name}_mean"] = v.mean() if len(v) else math.nan
            out[f"{m.name}_std"] = v.std(ddof=1) if len(v) > 1 else math.nan
            out[f"{m.name}_n_excluded"] = len(group) - len(v)
        return pd.Series(out)

    table = sel.groupby(list(by), observed=True).apply(one, include_groups=False).reset_index()
    table["n"] = table["n"].astype(int)
    for m in METRICS:
        table[f"{m.name}_n_excluded"] = table[f"{m.name}_n_excluded"].astype(int)
    table.insert(1, "display", table["method"].map(display_name).astype(str))
    table["method"] = table["method"].astype(str)
    return table


def mean_std(mean: float, std: float, decimals: int) -> str:
    """Display string such as ``91.9 ± 2.3``; "–" for an undefined mean, or std (a single value)."""
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{decimals}f} ± " + (f"{std:.{decimals}f}" if np.isfinite(std) else "–")


def best_rows(summary: pd.DataFrame, metric: Metric) -> pd.Series:
    """True where the mean is the best *as printed* (ties all win): highest Dice, lowest others."""
    printed = summary[f"{metric.name}_mean"].map(lambda x: float(f"{x:.{metric.decimals}f}"))
    if printed.isna().all():
        return pd.Series(False, index=summary.index)
    best = printed.max() if metric.higher_is_better else printed.min()
    return printed == best


def formatted(summary: pd.DataFrame, bold: tuple[str, str] = ("**", "**"), pm: str = "±",
              group: str | None = None) -> pd.DataFrame:
    """Display strings "mean ± std" per metric, best per column (within ``group``) wrapped in ``bold``."""
    out = pd.DataFrame({"Method": summary["display"]})
    if group:
        out[group.capitalize()] = summary[group].astype(str)
    groups = [summary.index] if group is None else list(summary.groupby(group, observed=True).groups.values())
    for m in METRICS:
        text = [mean_std(a, b, m.decimals).replace("±", pm)
                for a, b in zip(summary[f"{m.name}_mean"], summary[f"{m.name}_std"])]
        col = pd.Series(text, index=summary.index)
        for idx in groups:
            wins = best_rows(summary.loc[idx], m)
            col.loc[wins[wins].index] = bold[0] + col.loc[wins[wins].index] + bold[1]
        out[m.label] = col
    return out


def _counts(sel: pd.DataFrame) -> tuple[int, int]:
    return sel["case"].nunique(), sel["structure"].nunique()


def table1_caption(sel: pd.DataFrame, summary: pd.DataFrame, postprocessed: bool,
                   config: Mapping[str, Any] | None = None) -> str:
    """What is averaged, over how many values, what is bold, what was excluded; the post-processing as the run's
    ``config`` (run.json) records it."""
    n_exams, n_struct = _counts(sel)
    ns = dict(zip(summary["display"], summary["n"]))
    n_text = (f"{next(iter(ns.values()))} values per method" if len(set(ns.values())) == 1
              else "values per method: " + ", ".join(f"{k} {v}" for k, v in ns.items()))
    masks = _masks(config or {}, postprocessed)
    excluded = []
    for m in METRICS:
        per = {d: int(k) for d, k in zip(summary["display"], summary[f"{m.name}_n_excluded"]) if k}
        if per:
            excluded.append(f"{m.label.split()[0]} {sum(per.values())} ("
                            + ", ".join(f"{d} {k}" for d, k in per.items()) + ")")
    excl = ("Undefined values (nan: e.g. ASSD/MSSD of an empty prediction, RAVD of an empty truth) left out of "
            "the means: " + "; ".join(excluded) + "." if excluded else "No undefined values.")
    return (f"Mean ± sample standard deviation over (exam, structure) pairs: each of the {n_struct} structures "
            f"of each of the {n_exams} test exams counts once ({n_text}), as the paper averages over bones and "
            f"patients; {masks}. Dice and RAVD in %, ASSD and MSSD in mm. Best per column in bold (highest "
            f"Dice, lowest RAVD, ASSD, MSSD, judged on the printed values; ties all bold). {excl}")


def _masks(config: Mapping[str, Any], postprocessed: bool) -> str:
    """The masks a table is computed on: raw, or post-processed as run.json records it."""
    if not postprocessed:
        return "raw masks (stacked 2D predictions, no post-processing)"
    return f"masks after {describe(run_settings(config))}" if config else "post-processed masks"


def table1_latex(summary: pd.DataFrame, caption: str) -> str:
    """Table 1 as a booktabs LaTeX table (needs ``\\usepackage{booktabs}``)."""
    def esc(text: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("%", r"\%"), ("&", r"\&"), ("_", r"\_"), ("#", r"\#"),
                     ("±", r"$\pm$"), ("×", r"$\times$"), ("–", "--")):
            text = text.replace(a, b)
        return text

    cells = formatted(summary, bold=("\\textbf{", "}"), pm="$\\pm$")
    header = " & ".join(esc(c) for c in cells.columns) + r" \\"
    body = [" & ".join([esc(str(r[0]))] + [str(v).replace("–", "--") for v in r[1:]]) + r" \\"
            for r in cells.itertuples(index=False)]
    return "\n".join([r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(caption)}}}",
                      r"\label{tab:spar-table1}", r"\begin{tabular}{l" + "c" * len(METRICS) + "}", r"\toprule",
                      header, r"\midrule", *body, r"\bottomrule", r"\end{tabular}", r"\end{table}", ""])


def per_exam(sel: pd.DataFrame) -> pd.DataFrame:
    """Method × exam: mean over the exam's structures (undefined values left out), with n_structures, and the level
    model's call (which anchor fixed the level, the margin, whether the level is unknown) where the rows hold it."""
    agg = {"fold": ("fold", "first"), "n_structures": ("structure", "size"),
           **{m.name: (m.name, "mean") for m in METRICS},
           **{c: (c, "first") for c in LEVEL_CALL_COLUMNS if c in sel}}
    table = sel.groupby(["method", "case"], observed=True).agg(**agg).reset_index()
    table.insert(1, "display", table["method"].map(display_name).astype(str))
    table["method"] = table["method"].astype(str)
    return table


def coverage_notes(sel: pd.DataFrame) -> list[str]:
    """Plain sentences about a partial grid: which method lacks which exams (and folds)."""
    pairs = {m: set(map(tuple, g[PAIR].astype(str).to_numpy())) for m, g in sel.groupby("method", observed=True)}
    every = set().union(*pairs.values()) if pairs else set()
    notes = []
    for m, have in pairs.items():
        if len(have) < len(every):
            lost = sorted({c for c, _ in every - have})
            folds = sorted(set(sel.loc[sel["case"].isin(lost), "fold"].astype(str)))
            notes.append(f"{display_name(m)} has {len(have)} of {len(every)} (exam, structure) pairs (missing for "
                         f"exam(s) {', '.join(lost)}; fold(s) {', '.join(folds)}).")
    if notes:
        notes.append("Partial grid: Table 1 averages each method over the pairs it has, so its rows are not over "
                     "identical exams; the paired tests use only the (exam, structure) pairs present in both "
                     "methods.")
    return notes


@dataclass
class Report:
    """Everything ``report.md`` shows, as frames (numbers in display units) and markdown strings."""

    postprocessed: bool
    table1: pd.DataFrame  # one row per method: n, <metric>_mean / _std / _n_excluded
    table1_raw: pd.DataFrame | None  # the same without post-processing (None when absent)
    per_structure: pd.DataFrame  # method × structure summary
    per_exam: pd.DataFrame  # method × exam, mean over structures
    significance: pd.DataFrame  # see significance.SIGNIFICANCE_COLUMNS; empty without baseline rows
    table1_md: str
    table1_raw_md: str
    table1_tex: str
    significance_md: str
    per_structure_md: str
    markdown: str  # the whole report.md
    notes: list[str] = field(default_factory=list)
    identity: pd.DataFrame | None = None  # per method, shifted (exam, structure) pairs (identity.identity_table)


def _table1_md(sel: pd.DataFrame, summary: pd.DataFrame, postprocessed: bool,
               config: Mapping[str, Any] | None) -> str:
    return (f"**Table 1.** {table1_caption(sel, summary, postprocessed, config)}\n\n"
            + markdown_table(formatted(summary)) + "\n")


def build_report(metrics: pd.DataFrame, *, postprocessed: bool = True, n_boot: int = 10_000, seed: int = 0,
                 baseline: str = BASELINE, config: Mapping[str, Any] | None = None) -> Report:
    """All tables and texts of the report, without writing anything.

    Args:
        metrics: rows of ``metrics.csv`` (see ``REQUIRED_COLUMNS``).
        postprocessed: use post-processed masks (the paper's setting) or the raw stacked predictions.
        n_boot, seed: bootstrap resamples and their seed.
        config: ``run.json`` contents for the header (missing keys tolerated).

    Raises:
        SparError: missing columns, duplicated rows, or no rows for the chosen setting.
    """
    metrics = check_metrics(metrics)
    sel = select(metrics, postprocessed)
    if sel.empty:
        raise SparError("metrics: no " + ("post-processed rows; try --raw" if postprocessed else
                                          "raw (postprocessed = False) rows; drop --raw"))
    summary = summarize(sel, ["method"])
    raw_sel = select(metrics, False)
    raw_summary = summarize(raw_sel, ["method"]) if not raw_sel.empty else None
    structure = summarize(sel, ["method", "structure"])
    structure["structure"] = structure["structure"].astype(str)
    sig = significance(sel, baseline, n_boot=n_boot, seed=seed)
    notes = coverage_notes(sel)
    if sig.empty:
        notes.append(f"No {baseline!r} rows (or no other method): significance tests skipped." if
                     not (sel["method"] == baseline).any() else "Only the baseline: nothing to compare.")
    t1_md = _table1_md(sel, summary, postprocessed, config)
    raw_md = _table1_md(raw_sel, raw_summary, False, config) if raw_summary is not None else ""
    sig_md = "" if sig.empty else significance_markdown(sig) + "\n\n" + significance_reading(sig, n_boot, baseline)
    sig_md = "\n\n".join(filter(None, [sig_md, *notes])) + "\n"
    ps_md = markdown_table(formatted(structure, group="structure")) + "\n"
    identity = identity_table(metrics, postprocessed)
    md = _assemble(config or {}, sel, postprocessed, t1_md, raw_md, sig_md, ps_md, metrics)
    if not identity.empty:
        md += "\n" + _identity_md(identity)
    return Report(postprocessed, summary, raw_summary, structure, per_exam(sel), sig, t1_md, raw_md,
                  table1_latex(summary, table1_caption(sel, summary, postprocessed, config)), sig_md, ps_md, md, notes,
                  identity if not identity.empty else None)


def _identity_md(identity: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "Method": identity["method"].map(display_name),
        "Shifted structures": [f"{s} of {n} ({p:.1f} %)" for s, n, p in
                               zip(identity["shifted"], identity["pairs"], identity["shifted_pct"])],
        "Exams with a shift": [f"{e} of {n}" for e, n in zip(identity["exams_with_shift"], identity["exams"])],
        "Where": [w or "–" for w in identity["shifted_exams"]],
    })
    if "level_unknown" in identity:  # the level model's flag: a shifted exam flagged is said, not hidden
        shown.insert(3, "Level unknown (of them shifted)",
                     [f"{u} ({f})" for u, f in zip(identity["level_unknown"], identity["shifted_flagged"])])
    return ("## Structure identity\n\nA structure is shifted when its prediction overlaps another structure's "
            "truth more than its own (a right shape in the wrong place: L3 predicted on the true L2).\n\n"
            + markdown_table(shown) + "\n")


def _assemble(config: Mapping[str, Any], sel: pd.DataFrame, postprocessed: bool, t1_md: str, raw_md: str,
              sig_md: str, ps_md: str, metrics: pd.DataFrame) -> str:
    n_exams, n_struct = _counts(sel)
    name = config.get("dataset_name") or (Path(str(config["dataset"])).name if config.get("dataset") else "?")
    folds = config.get("folds", "?")
    if "n_folds" in config:
        folds = f"{folds} ({config['n_folds']} folds)"
    methods = ", ".join(display_name(str(m)) for m in sel["method"].cat.categories)
    header = ["# Results", "", f"- Dataset: {name}", f"- Preset: {config.get('preset', '?')}",
              f"- Folds: {folds}", f"- Exams: {n_exams} ({n_struct} structures: "
              f"{', '.join(map(str, sel['structure'].cat.categories))})", f"- Methods: {methods}",
              f"- Masks: {_masks(config, postprocessed)}"]
    if config.get("untested_exams"):  # a splits file that leaves exams out: said, never scored
        left = [str(c) for c in config["untested_exams"]]
        header.append(f"- Untested: the splits file tests no fold on {len(left)} exam(s), which no table holds: "
                      f"{', '.join(left)}")
    header.append("")
    parts = ["\n".join(header), "## Table 1\n\n" + t1_md]
    other = metrics[metrics["postprocessed"] != postprocessed]
    if postprocessed and raw_md:
        parts.append("## Table 1 without post-processing\n\n" + raw_md)
    elif not postprocessed and not other.empty:
        parts.append("## Table 1 with post-processing\n\n" + _table1_md(
            select(metrics, True), summarize(select(metrics, True), ["method"]), True, config))
    parts += ["## Paired comparison with the baseline\n\n" + sig_md,
              "## Per structure\n\nMean ± sample std over exams; best per structure in bold.\n\n" + ps_md]
    return "\n".join(parts)


def write_report(run: RunFolder, *, postprocessed: bool = True, n_boot: int = 10_000, seed: int = 0) -> Path:
    """Write ``RUN/report/`` (table1.md/.csv/.tex, table1_raw.md/.csv, per_structure.csv, per_exam.csv,
    significance.csv/.md, report.md), each atomically; returns the path of ``report.md``."""
    if not run.root.is_dir():
        raise SparError(f"{run.root}: no such run folder")
    config = run.read_config() if run.exists() else {}
    report = build_report(load_metrics(run.metrics_csv), postprocessed=postprocessed, n_boot=n_boot, seed=seed,
                          config=config)
    out = run.report_dir
    texts = {"table1.md": report.table1_md, "table1.tex": report.table1_tex, "table1_raw.md": report.table1_raw_md,
             "significance.md": report.significance_md, "report.md": report.markdown}
    frames = {"table1.csv": report.table1, "table1_raw.csv": report.table1_raw,
              "per_structure.csv": report.per_structure, "per_exam.csv": report.per_exam,
              "significance.csv": report.significance, "identity.csv": report.identity}
    for name, text in texts.items():
        if text:
            write_text(out / name, text)
    for name, frame in frames.items():
        if frame is not None:
            write_csv(out / name, frame, float_format="%.6g")
    return out / "report.md"
