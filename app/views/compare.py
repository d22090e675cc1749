"""Four-method comparison: one tested exam in the volume viewer, the truth and every method's prediction over it,
linked on one cursor and window (paper Fig. 2, scrollable)."""

import streamlit as st

import compare_access
import data_access
import run_access
import scene_access
import state
from panels.volume_viewer import volume_viewer_ui
from spar_core.evaluation.significance import METRICS
from spar_core.methods import display_name

EXAM_KEY, POST_KEY, UNCERTAINTY_KEY = "compare_exam", "compare_post", "compare_uncertainty"

st.title("Compare methods")
selection = state.current()
run = state.require_run(selection)
if not run.tested:
    st.info(f"Run {run.name!r} has no fold with a test set yet: nothing to compare.")
    st.stop()
# The sidebar follows the run to its dataset; read it again only when the sidebar shows another one.
same_dataset = run_access.is_run_dataset(run, selection.dataset)
with state.shown_errors():
    dataset = run_access.run_dataset(run, selection.root, selection.dataset)


def _sidebar_follows(same_dataset: bool) -> None:
    """The sidebar's exam follows this page's pick (a callback: it runs before the sidebar is drawn)."""
    if same_dataset:
        st.session_state[state.EXAM_KEY] = st.session_state[EXAM_KEY]


# Only tested exams have predictions; the sidebar's exam is taken when it is one of them.
if same_dataset and selection.exam in run.tested:
    st.session_state[EXAM_KEY] = selection.exam
elif st.session_state.get(EXAM_KEY) not in run.tested:
    st.session_state[EXAM_KEY] = next(iter(run.tested))

exam_col, maps_col, post_col = st.columns([2, 1, 1])
with exam_col:
    case_id = st.selectbox("Tested exam", list(run.tested), key=EXAM_KEY, on_change=_sidebar_follows,
                           args=(same_dataset,), format_func=lambda c: f"{c} (fold {run.tested[c]})")
with state.shown_errors():
    exam = data_access.get_exam(dataset, case_id)
fold = run.tested[case_id]
with maps_col:
    uncertainty = st.toggle("Uncertainty maps", value=False, key=UNCERTAINTY_KEY,
                            help="Each method's predictive entropy (test-time shifts of its fold model), where "
                                 "`spar triage RUN --method M` has written it, its raw prediction outlined.")
with post_col:
    post = st.toggle("Post-processing", value=True, key=POST_KEY, disabled=uncertainty,
                     help=f"On: {run_access.postprocess_text(run)}. Off: the stacked 2D predictions as the "
                          f"network gave them ({run_access.pred_folder(raw=True)}).")

rows = None  # each method's metrics on this exam, with the setting of the toggle
with state.shown_errors(stop=False):
    rows = compare_access.exam_metric_rows(run, case_id, post)
titles = {method: compare_access.panel_title(rows, method) for method in run.methods}
with state.shown_errors():
    scene, missing = scene_access.compare_scene(run, dataset, exam, post, titles, uncertainty)
volume_viewer_ui(scene, key="compare_viewer")
# the level model's call beside the overlay: which end of the row fixed the labels, or that none did
for method_name, says, unknown in compare_access.level_lines(run, fold, case_id):
    (st.warning if unknown else st.caption)(f"{method_name}: {says}")
if missing and uncertainty:
    st.caption(f"No entropy map of {case_id} yet for: {', '.join(map(display_name, missing))} "
               f"(`spar triage {run.root} --method M` writes them).")
elif missing:
    name = run_access.prediction_name(run, fold, missing[0], case_id, raw=not post)
    st.caption(f"No {name} yet for: {', '.join(map(display_name, missing))} (fold {fold}).")

if rows is None and not run.folder.metrics_csv.is_file():
    st.info(f"Run {run.name!r} has no metrics.csv yet: the metrics appear when its evaluation has run.")
elif rows is not None and rows.empty:
    st.info(f"metrics.csv holds no {'post-processed' if post else 'raw'} rows for {case_id}.")
elif rows is not None:
    st.dataframe(compare_access.metric_table(rows), hide_index=True,
                 column_config={m.label: st.column_config.NumberColumn(format=f"%.{m.decimals}f") for m in METRICS})
