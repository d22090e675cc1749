"""The Outlier triage page's ranking panels: the offer to run the triage, the ranked exams (chart and table with
their metrics), how well each score finds bad exams (Spearman), and the new exams ``spar triage --images`` ranked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import run_access
import triage_access
from run_access import Run
from spar_core.errors import SparError
from spar_core.figures.triage import ranking_figure
from spar_core.triage.ranking import SCORES
from spar_core.methods import display_name

SMALL_RUN = 40  # held-out exams: up to this many, the app offers to run the triage itself (a minute or so)
number = st.column_config.NumberColumn


def no_triage_ui(run: Run) -> None:
    """Say how to triage the run and, for a small one, offer to run it here (then rerun the page)."""
    st.info(f"Run {run.name!r} has no triage yet. From a terminal, `spar triage {run.root}` ranks its held-out "
            "exams by outlier scores of their predictions (`--images DIR` ranks new, unlabeled exams).")
    if 0 < len(run.tested) <= SMALL_RUN and st.button(f"Run the triage here ({len(run.tested)} held-out exams)",
                                                      key="triage_run_now"):
        try:
            with st.spinner("Scoring the held-out exams…"):
                triage_access.run_triage(run)
        except (SparError, OSError, RuntimeError, ValueError) as err:
            st.error(f"The triage failed: {err}")
        else:
            st.rerun()


def summary_ui(run: Run, table: pd.DataFrame, method: str, sidebar_method: str | None) -> None:
    """What the ranking shows: which predictions, folds and preset; and why not the sidebar's method."""
    folds = sorted({int(f) for f in table["fold"]})
    st.caption(f"{display_name(method)} predictions of {len(table)} held-out exams (fold"
               f"{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))} of "
               f"{run.config.get('n_folds', run.config.get('folds', '?'))}, preset {run.config.get('preset', '?')}), "
               "scored without labels. Rank 1 is the exam to open first.")
    if sidebar_method and sidebar_method != method:
        st.caption(f"No triage of {display_name(sidebar_method)} in this run (`spar triage {run.root} --method "
                   f"{sidebar_method}` makes one); showing {display_name(method)}.")


def ranking_ui(run: Run, table: pd.DataFrame, method: str) -> None:
    """The exams by triage score: the stacked-bar chart, then the table with each exam's Dice and MSSD."""
    shown = sum(f"z_{s}" in table for s in SCORES)
    st.plotly_chart(ranking_figure(table, title=f"Exams by triage score (mean of the {shown} scores' robust z)"),
                    width="stretch")
    try:
        per_exam = triage_access.per_exam_means(run, method)
    except SparError as err:
        st.error(str(err))
        per_exam = None
    st.dataframe(triage_access.ranked_with_metrics(table, per_exam), hide_index=True, column_config={
        "triage_score": number("triage score", format="%.2f", help="Mean of the oriented, clipped robust z's"),
        "dice_pct": number("Dice (%)", format="%.1f", help="Post-processed, mean over bones (from metrics.csv)"),
        "mssd_mm": number("MSSD (mm)", format="%.2f", help="Post-processed, mean over bones (from metrics.csv)"),
        **{s: number(s, format="%.3g") for s in SCORES},
        "worst_slices": st.column_config.TextColumn("worst slices", help="Native slice indices, worst first"),
    })


def spearman_ui(spearman: pd.DataFrame | None) -> None:
    """Each score's Spearman ρ with Dice and MSSD over the held-out exams, flagged where its sign is as expected."""
    if spearman is None or not (spearman["n"] > 0).any():
        return
    st.subheader("How well each score finds bad exams")
    st.dataframe(triage_access.spearman_with_agreement(spearman), hide_index=True,
                 column_config={"rho": number("Spearman ρ", format="%.2f"), "p_value": number("p", format="%.3f"),
                                "as_expected": st.column_config.CheckboxColumn("sign as expected")})
    st.caption(f"Over the {int(spearman['n'].max())} held-out exams with metrics: a useful score correlates "
               "negatively with Dice and positively with MSSD. Blank ρ: the score or the metric is constant (or "
               "fewer than 3 exams). With few exams, read the signs, not the p-values.")


def new_exams_ui(run: Run) -> None:
    """One expander per method that ranked new exams (``spar triage --images``)."""
    for other, path in run_access.triage_tables(run, "images").items():
        with st.expander(f"New exams ranked by {display_name(other)} (`spar triage --images`, {path.name})"):
            try:
                images = run_access.get_triage_table(run, "images", other)
            except SparError as err:
                st.error(str(err))
                continue
            if images is None or images.empty:
                continue
            st.plotly_chart(ranking_figure(images), width="stretch")
            st.caption(f"Their predictions are in {run.folder.triage_images_dir(other)}; open them with the images "
                       "in ITK-SNAP or 3D Slicer.")
