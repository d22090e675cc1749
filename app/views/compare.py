"""Four-method comparison: one tested exam, one slice, every method's prediction over the truth (paper Fig. 2)."""

import streamlit as st

import compare_access
import data_access
import run_access
import state
from spar_core.errors import SparError
from spar_core.evaluation.significance import METRICS
from spar_core.figures import extract_slice, in_plane_spacing
from spar_core.figures.compare import compare_figure
from spar_core.figures.uncertainty import uncertainty_figure
from spar_core.methods import display_name

EXAM_KEY, SLICE_KEY, POST_KEY, UNCERTAINTY_KEY = "compare_exam", "compare_slice", "compare_post", "compare_uncertainty"

st.title("Compare methods")
selection = state.current()
run = state.require_run(selection)
if not run.tested:
    st.info(f"Run {run.name!r} has no fold with a test set yet: nothing to compare.")
    st.stop()
# The sidebar follows the run to its dataset; read it again only when the sidebar shows another one.
same_dataset = run_access.is_run_dataset(run, selection.dataset)
try:
    dataset = run_access.run_dataset(run, selection.root, selection.dataset)
except SparError as err:
    st.error(str(err))
    st.stop()


def _sidebar_follows(same_dataset: bool) -> None:
    """The sidebar's exam follows this page's pick (a callback: it runs before the sidebar is drawn)."""
    if same_dataset:
        st.session_state[state.EXAM_KEY] = st.session_state[EXAM_KEY]


# Only tested exams have predictions; the sidebar's exam is taken when it is one of them.
if same_dataset and selection.exam in run.tested:
    st.session_state[EXAM_KEY] = selection.exam
elif st.session_state.get(EXAM_KEY) not in run.tested:
    st.session_state[EXAM_KEY] = next(iter(run.tested))

exam_col, slice_col, post_col = st.columns([1, 3, 1])
with exam_col:
    case_id = st.selectbox("Tested exam", list(run.tested), key=EXAM_KEY, on_change=_sidebar_follows,
                           args=(same_dataset,), format_func=lambda c: f"{c} (fold {run.tested[c]})")
try:
    exam = data_access.get_exam(dataset, case_id)
except SparError as err:
    st.error(str(err))
    st.stop()
fold, axis = run.tested[case_id], exam.slice_axis
n_slices = exam.image.shape[axis]
shown = (str(run.root), case_id)
if st.session_state.get("_compare_shown") != shown or SLICE_KEY not in st.session_state:
    st.session_state[SLICE_KEY] = exam.first_slice  # a new exam starts on its most labelled slice
    st.session_state["_compare_shown"] = shown
with slice_col:
    index = st.slider(f"Slice (axis {axis})", 0, n_slices - 1, key=SLICE_KEY) if n_slices > 1 else 0
with post_col:
    post = st.toggle("Post-processing", value=True, key=POST_KEY,
                     help="On: the main connected component of each bone, then 3D closing "
                          f"({run_access.pred_folder(raw=False)}). Off: the stacked 2D predictions as the network "
                          f"gave them ({run_access.pred_folder(raw=True)}).")

try:  # each method's metrics on this exam, with the setting of the toggle
    rows = compare_access.exam_metric_rows(run, case_id, post)
except SparError as err:
    st.error(str(err))
    rows = None
panels, missing = {}, []
for method in run.methods:
    try:
        volume = run_access.get_prediction(run, fold, method, case_id, raw=not post, shape=exam.image.shape)
    except SparError as err:
        st.error(str(err))
        volume = None
    if volume is None:
        missing.append(method)
    panels[compare_access.panel_title(rows, method)] = None if volume is None else extract_slice(volume, axis, index)

figure = compare_figure(
    extract_slice(exam.image, axis, index),
    None if exam.label is None else extract_slice(exam.label, axis, index),
    panels,
    spacing2d=in_plane_spacing(exam.spacing, axis),
    names={value: name for name, value in dataset.structures.items()},
    title=f"{case_id}, fold {fold}: slice {index} of {n_slices - 1}, {'post-processed' if post else 'raw'} "
          "predictions (white outline: ground truth)",
    axis=axis,
    index=index,
)
st.plotly_chart(figure, width="stretch")
if missing:
    name = run_access.prediction_name(run, fold, missing[0], case_id, raw=not post)
    st.caption(f"No {name} yet for: {', '.join(map(display_name, missing))} (fold {fold}).")

if st.toggle("Uncertainty maps", value=False, key=UNCERTAINTY_KEY,
             help="Each method's predictive entropy on this slice (test-time shifts of its fold model), where "
                  "`spar triage RUN --method M` has written it; prediction outlined."):
    names = {value: name for name, value in dataset.structures.items()}
    shown_maps, absent = [], []
    for method in run.methods:
        try:
            entropy = run_access.get_uncertainty(run, fold, method, case_id, "entropy", shape=exam.image.shape)
            labels = run_access.get_prediction(run, fold, method, case_id, raw=True, shape=exam.image.shape)
        except SparError as err:
            st.error(str(err))
            continue
        (absent if entropy is None or labels is None else shown_maps).append((method, entropy, labels))
    top = max((float(e.max()) for _, e, _ in shown_maps), default=1.0)  # one scale for every method
    for column, (method, entropy, labels) in zip(st.columns(max(len(shown_maps), 1)), shown_maps):
        with column:
            st.plotly_chart(uncertainty_figure(extract_slice(exam.image, axis, index),
                                               extract_slice(entropy, axis, index),
                                               extract_slice(labels, axis, index),
                                               spacing2d=in_plane_spacing(exam.spacing, axis), names=names,
                                               vmax=top, axis=axis, index=index, height=360,
                                               title=f"{display_name(method)}: entropy"), width="stretch")
    if absent:
        st.caption(f"No entropy map of {case_id} yet for: {', '.join(display_name(m) for m, _, _ in absent)} "
                   f"(`spar triage {run.root} --method M` writes them).")

if rows is None and not run.folder.metrics_csv.is_file():
    st.info(f"Run {run.name!r} has no metrics.csv yet: the metrics appear when its evaluation has run.")
elif rows is not None and rows.empty:
    st.info(f"metrics.csv holds no {'post-processed' if post else 'raw'} rows for {case_id}.")
elif rows is not None:
    st.dataframe(compare_access.metric_table(rows), hide_index=True,
                 column_config={m.label: st.column_config.NumberColumn(format=f"%.{m.decimals}f") for m in METRICS})
