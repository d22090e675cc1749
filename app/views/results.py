"""Results of a run: the paper's Table 1, metric spreads per structure, paired tests and learning curves."""

import streamlit as st

import run_access
import state
from panels import studies
from spar_core.paths import runs_root
from spar_core.figures.results import learning_curves, metric_boxplot
from spar_core.evaluation.significance import METRICS

POST_KEY, METRIC_KEY = "results_post", "results_metric"

st.title("Results")
selection = state.current()
run = state.require_run(selection)
post = st.toggle("Post-processed masks", value=True, key=POST_KEY,
                 help=f"On: {run_access.postprocess_text(run)}. Off: the stacked 2D predictions without "
                      "post-processing.")
with state.shown_errors():
    metrics = run_access.get_metrics(run)
    has_rows = metrics is not None and bool((metrics["postprocessed"] == post).any())
    report = run_access.get_report(run, post) if has_rows else None

if metrics is None:
    st.info(f"Run {run.name!r} has no metrics.csv yet: it is written once the methods are trained and evaluated, "
            f"by `spar crossval --dataset DIR --out {run.root}` (resumes an unfinished run) or `spar demo`.")
elif report is None:
    st.info(f"{run.folder.metrics_csv} holds no {'post-processed' if post else 'raw'} rows; flip the toggle.")
else:
    st.subheader("Table 1")
    st.markdown(report.table1_md)

    st.subheader("Per structure")
    labels = {m.source: m.label for m in METRICS}
    metric = st.segmented_control("Metric", list(labels), format_func=labels.get, default="dice", key=METRIC_KEY,
                                  required=True)
    st.plotly_chart(metric_boxplot(metrics, metric or "dice", post), width="stretch")

    st.subheader("Paired comparison with the baseline")
    st.markdown(report.significance_md)

st.subheader("Learning curves")
histories, figure = {}, None
with state.shown_errors(stop=False):
    histories = run_access.get_histories(run)
    figure = learning_curves(histories) if histories else None
if figure is not None:
    st.caption("Mean over folds per epoch (the band spans the lowest to the highest fold when there are several).")
    st.plotly_chart(figure, width="stretch")
elif not histories:
    pattern = run_access.relative(run, run.folder.method_folder("<k>", "<method>").history)
    st.info(f"No {pattern} in {run.root} yet: the curves appear after the first epoch.")

st.subheader("Studies")
studies.studies_ui(run, selection.runs_folder, runs_root())
