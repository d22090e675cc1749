"""``spar report``: Table 1 strings and bold, NaN counts, paired bootstrap / Wilcoxon / Holm, files and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import spar_core.cli as cli
from spar_core.errors import SparError
from spar_core.evaluation.report import (
    METRICS,
    REQUIRED_COLUMNS,
    build_report,
    mean_std,
    select,
    write_report,
)
from spar_core.layout.run_folder import RunFolder
from spar_core.evaluation.significance import exams_needed, holm

STRUCTURES = (("calcaneus", 1), ("talus", 2), ("tibia", 3))
METHODS = ("baseline", "adversarial", "shape", "spar")
N_BOOT = 2_000  # enough for the tests, and fast


def synthetic(n_exams: int = 6, effect: dict[str, float] | None = None, noise: float = 0.003,
              seed: int = 0) -> pd.DataFrame:
    """Exams × structures × methods × {raw, post}; a method's Dice = baseline + effect[method] + noise.

    RAVD, ASSD and MSSD fall as Dice rises, so "better" agrees across metrics. Raw rows are 1 point worse.
    """
    effect = {"baseline": 0.0, "adversarial": 0.0, "shape": 0.005, "spar": 0.02} if effect is None else effect
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_exams):
        exam_level = rng.normal(0, 0.02)
        for name, label in STRUCTURES:
            base = 0.88 + exam_level + rng.normal(0, 0.01)
            for method in METHODS:
                dice = base + effect[method] + (rng.normal(0, noise) if method != "baseline" else 0.0)
                for post in (False, True):
                    d = dice - (0.0 if post else 0.01)
                    rows.append({"case": f"c{e:02d}", "fold": e, "method": method, "structure": name,
                                 "label": label, "dice": d, "ravd_pct": (1 - d) * 60, "assd_mm": (1 - d) * 8,
                                 "mssd_mm": (1 - d) * 80, "true_ml": 10.0, "pred_ml": 10.0,
                                 "postprocessed": post, "n_components_raw": 1})
    return pd.DataFrame(rows)


def exact(values: dict[str, list[float]]) -> pd.DataFrame:
    """Post-processed rows with given Dice fractions per method (one exam per value, one structure)."""
    rows = []
    for method, dices in values.items():
        for i, d in enumerate(dices):
            rows.append({"case": f"c{i}", "fold": i, "method": method, "structure": "talus", "label": 1,
                         "dice": d, "ravd_pct": 10.0 * (i + 1), "assd_mm": 1.0, "mssd_mm": 5.0,
                         "postprocessed": True})
    return pd.DataFrame(rows)


def row(report, method: str, metric: str) -> pd.Series:
    sig = report.significance
    return sig[(sig["method"] == method) & (sig["metric"] == metric)].iloc[0]


@pytest.fixture(scope="module")
def report():
    return build_report(synthetic(), n_boot=N_BOOT)


# --- Table 1 -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mean, std, decimals, expected", [
    (91.94, 2.26, 1, "91.9 ± 2.3"),
    (0.8449, 0.1251, 2, "0.84 ± 0.13"),
    (7.0, np.nan, 1, "7.0 ± –"),
    (np.nan, np.nan, 2, "–"),
])
def test_mean_std_strings(mean, std, decimals, expected) -> None:
    assert mean_std(mean, std, decimals) == expected


def test_table1_dice_in_percent_sample_std_and_registry_order() -> None:
    # Dice 0.90 and 0.92: mean 91.0 %, sample std sqrt(2) = 1.414 → "91.0 ± 1.4"
    rep = build_report(exact({"spar": [0.95, 0.97], "baseline": [0.90, 0.92]}), n_boot=100)
    assert list(rep.table1["display"]) == ["Base. UNet", "SPAR"]
    lines = rep.table1_md.splitlines()
    # equal RAVD, ASSD and MSSD: a tie on the printed value bolds both rows
    assert "| Base. UNet | 91.0 ± 1.4 | **15.0 ± 7.1** | **1.00 ± 0.00** | **5.00 ± 0.00** |" in lines
    assert "| SPAR | **96.0 ± 1.4** | **15.0 ± 7.1** | **1.00 ± 0.00** | **5.00 ± 0.00** |" in lines


def test_bold_marks_highest_dice_and_lowest_distances(report) -> None:
    body = [line for line in report.table1_md.splitlines() if line.startswith("| ") and "Method" not in line]
    by_method = {line.split(" | ")[0][2:]: line for line in body}
    assert by_method["SPAR"].count("**") == 2 * len(METRICS)  # best everywhere by construction
    for other in ("Base. UNet", "Adv. Reg.", "Sh. Reg."):
        assert "**" not in by_method[other]


def test_table1_means_match_the_data(report) -> None:
    data = synthetic()
    post = data[data["postprocessed"]]
    t = report.table1.set_index("method")
    for method in METHODS:
        d = post.loc[post["method"] == method, "dice"] * 100
        assert t.loc[method, "dice_pct_mean"] == pytest.approx(d.mean())
        assert t.loc[method, "dice_pct_std"] == pytest.approx(d.std(ddof=1))
        assert t.loc[method, "n"] == 18
    raw = report.table1_raw.set_index("method")
    assert raw.loc["spar", "dice_pct_mean"] == pytest.approx(t.loc["spar", "dice_pct_mean"] - 1.0)
    assert "18 values per method" in report.table1_md and "6 test exams" in report.table1_md


def test_raw_option_selects_rows_without_postprocessing() -> None:
    rep = build_report(synthetic(), postprocessed=False, n_boot=100)
    assert rep.table1.equals(rep.table1_raw)
    assert "raw masks" in rep.table1_md


def test_nan_values_are_excluded_and_counted() -> None:
    data = synthetic()
    hit = (data["method"] == "spar") & data["postprocessed"] & data["case"].isin(["c01", "c02"])
    data.loc[hit & (data["structure"] == "talus"), "assd_mm"] = np.nan
    data.loc[hit & (data["structure"] == "tibia") & (data["case"] == "c01"), "mssd_mm"] = np.inf
    rep = build_report(data, n_boot=N_BOOT)
    t = rep.table1.set_index("method")
    assert t.loc["spar", "assd_mm_n_excluded"] == 2 and t.loc["spar", "mssd_mm_n_excluded"] == 1
    assert t.loc["baseline", "assd_mm_n_excluded"] == 0
    kept = data[(data["method"] == "spar") & data["postprocessed"]]["assd_mm"].dropna()
    assert t.loc["spar", "assd_mm_mean"] == pytest.approx(kept.mean())
    assert "ASSD 2 (SPAR 2); MSSD 1 (SPAR 1)" in rep.table1_md
    assd = row(rep, "spar", "assd_mm")
    assert (assd["n_pairs"], assd["n_excluded_undefined"]) == (16, 2)
    assert row(rep, "spar", "mssd_mm")["n_excluded_undefined"] == 1  # inf counts as undefined
    assert "3 paired values were left out" in rep.significance_md


def test_latex_has_booktabs_and_textbf(report) -> None:
    tex = report.table1_tex
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lcccc}"):
        assert rule in tex
    assert r"\textbf{90." in tex and r"$\pm$" in tex and "±" not in tex
    assert r"Dice (\%)" in tex


def test_per_structure_and_per_exam_tables(report) -> None:
    ps = report.per_structure
    assert len(ps) == len(METHODS) * len(STRUCTURES) and set(ps["n"]) == {6}
    assert list(ps.loc[ps["method"] == "baseline", "structure"]) == ["calcaneus", "talus", "tibia"]
    pe = report.per_exam
    assert len(pe) == len(METHODS) * 6 and set(pe["n_structures"]) == {3}
    data = synthetic()
    one = data[(data["method"] == "spar") & data["postprocessed"] & (data["case"] == "c03")]
    got = pe[(pe["method"] == "spar") & (pe["case"] == "c03")].iloc[0]
    assert got["dice_pct"] == pytest.approx(one["dice"].mean() * 100)


# --- significance --------------------------------------------------------------------------------------------

def test_bootstrap_ci_contains_true_effect_and_excludes_zero(report) -> None:
    dice = row(report, "spar", "dice_pct")  # true effect: +2.0 points of Dice
    assert dice["ci_low"] < 2.0 < dice["ci_high"] and dice["ci_low"] > 0
    assert dice["ci_low"] <= dice["mean_diff"] <= dice["ci_high"]
    assert dice["direction"] == "better"
    assd = row(report, "spar", "assd_mm")  # ASSD = (1 − Dice)·8 mm: true effect −0.16 mm, lower is better
    assert assd["ci_low"] < -0.16 < assd["ci_high"] < 0 and assd["direction"] == "better"


def test_bootstrap_ci_includes_zero_without_effect(report) -> None:
    for metric in METRICS:
        r = row(report, "adversarial", metric.name)
        assert r["ci_low"] < 0 < r["ci_high"], metric.name


def test_mean_difference_equals_difference_of_table1_means(report) -> None:
    t = report.table1.set_index("method")
    d = t.loc["spar", "dice_pct_mean"] - t.loc["baseline", "dice_pct_mean"]
    assert row(report, "spar", "dice_pct")["mean_diff"] == pytest.approx(d)


def test_wilcoxon_matches_scipy_on_per_exam_means(report) -> None:
    sel = select(synthetic(), True)
    for method in ("adversarial", "shape", "spar"):
        per_exam = sel.groupby(["method", "case"], observed=True)["dice_pct"].mean().unstack(0)
        expected = stats.wilcoxon(per_exam[method] - per_exam["baseline"])
        got = row(report, method, "dice_pct")
        assert got["n_exams"] == 6 and got["n_pairs"] == 18
        assert got["p_value"] == pytest.approx(expected.pvalue)
        assert got["wilcoxon_stat"] == pytest.approx(expected.statistic)


@pytest.mark.parametrize("p", [
    [0.01, 0.04, 0.03, 0.5],
    [0.03125] * 12,
    [0.2, np.nan, 0.001, 0.04, 0.9],
])
def test_holm_is_monotone_and_not_below_raw(p) -> None:
    p = np.asarray(p)
    adj = holm(p)
    ok = np.isfinite(p)
    assert np.isnan(adj[~ok]).all()
    assert (adj[ok] >= p[ok]).all() and (adj[ok] <= 1).all()
    order = np.argsort(p[ok])
    assert (np.diff(adj[ok][order]) >= 0).all()


def test_holm_known_values() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])


def test_family_is_three_methods_by_four_metrics(report) -> None:
    sig = report.significance
    assert len(sig) == 12
    np.testing.assert_allclose(sig["p_holm"], holm(sig["p_value"]))
    # six exams: the smallest two-sided p is 1/32, times 12 tests → nothing survives Holm
    assert sig["p_value"].min() == pytest.approx(2 / 2 ** 6)
    assert not sig["significant"].any()
    assert "at least 9 exams" in report.significance_md
    assert exams_needed(12) == 9 and exams_needed(1) == 6


def test_large_cohort_reaches_significance_in_the_right_direction() -> None:
    rep = build_report(synthetic(n_exams=12), n_boot=N_BOOT)
    spar = rep.significance[rep.significance["method"] == "spar"]
    assert spar["significant"].all() and (spar["direction"] == "better").all()
    assert "SPAR is significantly better on Dice" in rep.significance_md


def test_five_exams_say_p_below_005_is_unreachable() -> None:
    rep = build_report(synthetic(n_exams=5), n_boot=N_BOOT)
    assert "smallest two-sided p is 0.0625" in row(rep, "spar", "dice_pct")["note"]
    assert "cannot reach p < 0.05" in rep.significance_md


def test_partial_grid_pairs_only_common_exams() -> None:
    data = synthetic()
    data = data[~((data["method"] == "shape") & (data["fold"] == 2))]
    rep = build_report(data, n_boot=N_BOOT)
    r = row(rep, "shape", "dice_pct")
    assert (r["n_exams"], r["n_pairs"], r["n_unpaired"]) == (5, 15, 3)
    assert row(rep, "spar", "dice_pct")["n_pairs"] == 18
    assert "Sh. Reg. has 15 of 18 (exam, structure) pairs" in rep.markdown
    assert "present in both" in rep.significance_md
    assert "values per method: Base. UNet 18, Adv. Reg. 18, Sh. Reg. 15, SPAR 18" in rep.table1_md


def test_method_without_common_exams_is_not_compared() -> None:
    data = synthetic()
    early, late = data["fold"] < 3, data["fold"] >= 3
    data = data[~((data["method"] == "spar") & early) & ~((data["method"] == "baseline") & late)]
    rep = build_report(data, n_boot=N_BOOT)
    r = row(rep, "spar", "dice_pct")
    assert r["n_pairs"] == 0 and np.isnan(r["p_value"]) and np.isnan(r["p_holm"])
    assert len(rep.significance["p_holm"].dropna()) == 8  # the family counts only the tests made
    assert "SPAR has no (exam, structure) pair in common" in rep.significance_md and "nan" not in rep.significance_md


def test_single_exam_has_no_interval() -> None:
    rep = build_report(synthetic(n_exams=1), n_boot=N_BOOT)
    r = row(rep, "spar", "dice_pct")
    assert np.isnan(r["ci_low"]) and r["p_value"] == 1.0 and "descriptive only" in rep.significance_md


def test_no_baseline_skips_significance_with_a_note() -> None:
    data = synthetic()
    rep = build_report(data[data["method"] != "baseline"], n_boot=N_BOOT)
    assert rep.significance.empty
    assert "significance tests skipped" in rep.significance_md
    assert "Base. UNet" not in rep.table1_md


@pytest.mark.parametrize("drop", [["dice"], ["assd_mm", "postprocessed"]])
def test_missing_columns_are_named(drop) -> None:
    with pytest.raises(SparError, match="missing column.*" + ".*".join(drop)):
        build_report(synthetic().drop(columns=drop))


def test_non_numeric_metric_values_are_refused() -> None:
    data = synthetic().astype({"assd_mm": object})
    data.loc[3, "assd_mm"] = "n/a"
    with pytest.raises(SparError, match="assd_mm has non-numeric value 'n/a'"):
        build_report(data)


def test_duplicated_rows_are_refused() -> None:
    data = synthetic()
    with pytest.raises(SparError, match="duplicated"):
        build_report(pd.concat([data, data.iloc[:1]]))


# --- files and command line ----------------------------------------------------------------------------------

FILES = ("table1.md", "table1.csv", "table1.tex", "per_structure.csv", "per_exam.csv", "significance.csv",
         "significance.md", "report.md")


def make_run(tmp_path: Path, frame: pd.DataFrame | None = None, config: dict | None = None) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    (root / "run.json").write_text(json.dumps(config if config is not None else
                                              {"dataset_name": "ankle phantoms", "preset": "tiny", "folds": "loo",
                                               "n_folds": 6}))
    if frame is not None:
        frame.to_csv(root / "metrics.csv", index=False)
    return root


def test_write_report_files_and_header(tmp_path: Path) -> None:
    root = make_run(tmp_path, synthetic(), config={"preset": "tiny"})  # missing keys are tolerated
    path = write_report(RunFolder(root), n_boot=200)
    assert path == root / "report" / "report.md"
    for name in FILES:
        assert (root / "report" / name).is_file(), name
    text = path.read_text()
    assert "- Preset: tiny" in text and "- Dataset: ?" in text and "- Exams: 6" in text
    assert "## Table 1 without post-processing" in text and "## Per structure" in text
    sig = pd.read_csv(root / "report" / "significance.csv")
    assert len(sig) == 12 and {"p_holm", "ci_low", "ci_high", "direction"} <= set(sig.columns)
    assert not list((root / "report").glob(".*"))  # no temporary files left


def test_cli_writes_files_and_prints_tables(tmp_path: Path, capsys) -> None:
    root = make_run(tmp_path, synthetic())
    assert cli.main(["report", str(root), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    assert "**Table 1.**" in out and "| SPAR | **" in out and "p (Holm)" in out
    assert all((root / "report" / n).is_file() for n in FILES)
    assert "- Dataset: ankle phantoms" in (root / "report" / "report.md").read_text()


@pytest.mark.parametrize("flag", [["--postprocess", "none"], ["--raw"]], ids=["postprocess none", "earlier --raw"])
def test_cli_raw_predictions(tmp_path: Path, capsys, flag: list[str]) -> None:
    root = make_run(tmp_path, synthetic())
    assert cli.main(["report", str(root), *flag, "--bootstrap", "200"]) == 0
    assert "raw masks" in capsys.readouterr().out
    assert "## Table 1 with post-processing" in (root / "report" / "report.md").read_text()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("spar report: error: ")
    return lines[0]


def test_cli_missing_metrics_csv(tmp_path: Path, capsys) -> None:
    root = make_run(tmp_path)
    assert cli.main(["report", str(root)]) == 2
    line = one_error_line(capsys)
    assert "metrics.csv" in line and "run spar crossval first" in line


def test_cli_missing_run_folder(tmp_path: Path, capsys) -> None:
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in one_error_line(capsys)


def test_cli_missing_columns_named(tmp_path: Path, capsys) -> None:
    root = make_run(tmp_path, synthetic().drop(columns=["mssd_mm", "fold"]))
    assert cli.main(["report", str(root)]) == 2
    line = one_error_line(capsys)
    assert "fold" in line and "mssd_mm" in line and "metrics.csv" in line


def test_cli_without_baseline_is_not_an_error(tmp_path: Path, capsys) -> None:
    data = synthetic()
    root = make_run(tmp_path, data[data["method"] != "baseline"])
    assert cli.main(["report", str(root), "--bootstrap", "200"]) == 0
    assert "significance tests skipped" in capsys.readouterr().out


def test_required_columns_cover_the_metrics() -> None:
    assert {m.source for m in METRICS} <= set(REQUIRED_COLUMNS)


def test_structure_identity_counts_shifted_pairs_and_exams() -> None:
    metrics = synthetic(n_exams=4)
    metrics["shifted_to"] = ""
    post = metrics["postprocessed"]
    metrics.loc[post & (metrics["method"] == "spar") & (metrics["case"] == "c01") & (metrics["structure"] == "talus"),
                "shifted_to"] = "calcaneus"
    metrics.loc[post & (metrics["method"] == "spar") & (metrics["case"] == "c03") & (metrics["structure"] == "tibia"),
                "shifted_to"] = "talus"
    metrics.loc[~post & (metrics["method"] == "baseline"), "shifted_to"] = "tibia"  # raw rows: not counted
    rep = build_report(metrics, n_boot=N_BOOT)
    table = rep.identity.set_index("method")
    assert table.loc["spar", "shifted"] == 2 and table.loc["spar", "pairs"] == 12
    assert table.loc["spar", "exams_with_shift"] == 2 and table.loc["baseline", "shifted"] == 0
    assert table.loc["baseline", "shifted_exams"] == ""
    assert table.loc["spar", "shifted_exams"] == "c01: talus→calcaneus; c03: tibia→talus"
    assert "## Structure identity" in rep.markdown and "2 of 12 (16.7 %)" in rep.markdown
    assert build_report(metrics.drop(columns="shifted_to"), n_boot=N_BOOT).identity is None  # an older run


@pytest.mark.parametrize("recorded, words", [
    ({"mode": "auto", "closing_mm": 2.0, "connectivity": 3, "chain": True}, "decided per fold and method"),
    ({"mode": "largest", "closing_mm": 0.0, "connectivity": 3, "chain": False}, "no closing"),
    (None, "the paper's post-processing"),  # a run of an earlier version recorded none
])
def test_table1_says_what_post_processing_the_run_applied(recorded, words) -> None:
    config = {"dataset": "/x/ankle", "preset": "tiny"} | ({"postprocess": recorded} if recorded else {})
    rep = build_report(synthetic(), n_boot=100, config=config)
    assert words in rep.table1_md and words in rep.markdown
    if recorded and not recorded["chain"]:
        assert "in a row" not in rep.table1_md
