"""Outlier triage: the run's held-out exams ranked by how suspicious their predictions look (no label needed),
then for one exam its worst slices, its shape codes in the latent map and its bones in 3D against the truth."""

import pandas as pd
import streamlit as st

import data_access
import state
import triage_access
from spar_core.errors import SparError
from spar_core.figures.triage import SCORES, latent_exam_figure, ranking_figure, worst_slice_figures
from spar_core.methods import SPAR, display_name

EXAM_KEY, POST_KEY, SURFACE_KEY, BONES_KEY = "triage_exam", "triage_post", "triage_3d", "triage_bones"
MAP_KEY, RUN_NOW_KEY = "triage_map", "triage_run_now"
SMALL_RUN = 40  # held-out exams: up to this many, the app offers to run the triage itself (a minute or so)
MAP_KINDS = ("aligned", "umap", "tsne")

st.title("Outlier triage")
selection = state.current()
run = state.require_run(selection)

methods = triage_access.triage_methods(run)
if not methods:
    st.info(f"Run {run.name!r} has no triage yet. From a terminal, `spar triage {run.root}` ranks its held-out "
            "exams by outlier scores of their predictions (`--images DIR` ranks new, unlabeled exams).")
    if 0 < len(run.tested) <= SMALL_RUN and st.button(f"Run the triage here ({len(run.tested)} held-out exams)",
                                                      key=RUN_NOW_KEY):
        try:
            with st.spinner("Scoring the held-out exams…"):
                triage_access.run_triage(run)
        except (SparError, OSError, RuntimeError, ValueError) as err:
            st.error(f"The triage failed: {err}")
        else:
            st.rerun()
    st.stop()

# The sidebar's method when it has been triaged, else SPAR, else the first triaged one.
method = next(m for m in (selection.method, SPAR, *methods) if m in methods)
try:
    table = triage_access.get_triage(run, method)
    spearman = triage_access.get_spearman(run, method)
except SparError as err:
    st.error(str(err))
    st.stop()
if table.empty:
    st.info(f"{triage_access.triage_methods(run)[method]} ranks no exam; run `spar triage {run.root}` again.")
    st.stop()
try:
    per_exam = triage_access.exam_metrics(run, method)
except SparError as err:
    st.error(str(err))
    per_exam = None

folds = sorted({int(f) for f in table["fold"]})
st.caption(f"{display_name(method)} predictions of {len(table)} held-out exams (fold{'s' if len(folds) > 1 else ''} "
           f"{', '.join(map(str, folds))} of {run.config.get('n_folds', run.config.get('folds', '?'))}, preset "
           f"{run.config.get('preset', '?')}), scored without labels. Rank 1 is the exam to open first.")
if selection.method and selection.method != method:
    st.caption(f"No triage of {display_name(selection.method)} in this run (`spar triage {run.root} --method "
               f"{selection.method}` makes one); showing {display_name(method)}.")

st.plotly_chart(ranking_figure(table, title="Exams by triage score (mean of the five scores' robust z)"),
                width="stretch")

shown = table.merge(per_exam, on="case", how="left") if per_exam is not None else table.copy()
columns = ["rank", "case", "fold", "triage_score", *(["dice_pct", "mssd_mm"] if per_exam is not None else []),
           *(s for s in SCORES if s in shown), "degraded", "worst_slices"]
number = st.column_config.NumberColumn
st.dataframe(shown[columns], hide_index=True, column_config={
    "triage_score": number("triage score", format="%.2f", help="Mean of the oriented, clipped robust z's"),
    "dice_pct": number("Dice (%)", format="%.1f", help="Post-processed, mean over bones (from metrics.csv)"),
    "mssd_mm": number("MSSD (mm)", format="%.2f", help="Post-processed, mean over bones (from metrics.csv)"),
    **{s: number(s, format="%.3g") for s in SCORES},
    "worst_slices": st.column_config.TextColumn("worst slices", help="Native slice indices, worst first"),
})

if spearman is not None and (spearman["n"] > 0).any():
    st.subheader("How well each score finds bad exams")
    agrees = [None if pd.isna(r) else bool(r < 0 if e == "negative" else r > 0)
              for r, e in zip(spearman["rho"], spearman["expected"])]
    st.dataframe(spearman[["score", "metric", "expected", "rho", "p_value", "n"]].assign(as_expected=agrees),
                 hide_index=True, column_config={"rho": number("Spearman ρ", format="%.2f"),
                                                 "p_value": number("p", format="%.3f"),
                                                 "as_expected": st.column_config.CheckboxColumn("sign as expected")})
    n = int(spearman["n"].max())
    st.caption(f"Over the {n} held-out exams with metrics: a useful score correlates negatively with Dice and "
               "positively with MSSD. Blank ρ: the score or the metric is constant (or fewer than 3 exams). "
               "With few exams, read the signs, not the p-values.")

for other, path in triage_access.image_tables(run).items():
    with st.expander(f"New exams ranked by {display_name(other)} (`spar triage --images`, {path.name})"):
        try:
            images = triage_access.get_images_triage(run, other)
        except SparError as err:
            st.error(str(err))
            continue
        if images is None or images.empty:
            continue
        st.plotly_chart(ranking_figure(images), width="stretch")
        st.caption(f"Their predictions are in {path.parent / ('images_' + other)}; open them with the images in "
                   "ITK-SNAP or 3D Slicer.")

# ---------------------------------------------------------------------------------------------- one exam

st.subheader("One exam")
cases = list(table["case"])
if st.session_state.get(EXAM_KEY) not in cases:
    st.session_state[EXAM_KEY] = cases[0]  # rank 1
rows = table.set_index("case")


def _exam_label(case: str) -> str:
    row = rows.loc[case]
    flag = f" · degraded: {row['degraded']}" if row["degraded"] else ""
    return f"#{int(row['rank'])} {case} (fold {int(row['fold'])}, score {row['triage_score']:.2f}){flag}"


pick_col, post_col = st.columns([3, 1])
with pick_col:
    case = st.selectbox("Exam", cases, key=EXAM_KEY, format_func=_exam_label)
with post_col:
    post = st.toggle("Post-processed masks", value=False, key=POST_KEY,
                     help="Off: the masks triage scored (the raw stacked 2D predictions, pred_raw/). "
                          "On: after post-processing (pred/).")
row, fold = rows.loc[case], int(rows.loc[case]["fold"])

# The images and truth come from the run's dataset; the latent map needs neither.
exam, names, exam_error = None, {int(v): str(k) for k, v in (run.config.get("labels") or {}).items() if int(v)}, None
same_dataset = selection.dataset is not None and selection.dataset.root.resolve() == run.dataset
try:
    dataset = selection.dataset if same_dataset else data_access.run_dataset(run, selection.root)
    exam = data_access.get_exam(dataset, case)
    names = {value: name for name, value in dataset.structures.items()}
except SparError as err:
    exam_error = str(err)
try:
    volume = data_access.get_prediction(run, fold, method, case, raw=not post)
except SparError as err:
    volume, exam_error = None, str(err)
where = data_access.prediction_path(run, fold, method, case, raw=not post)
if volume is not None and exam is not None and volume.shape != exam.image.shape:
    exam_error, volume = f"{where}: shape {volume.shape}, expected the exam's {exam.image.shape}", None
masks = f"{display_name(method)}, {'post-processed' if post else 'raw'}"

slices_tab, latent_tab, surface_tab = st.tabs(["Worst slices", "Latent map", "3D surface"])

with slices_tab:
    if exam_error:
        st.error(exam_error)
    elif volume is None:
        st.info(f"No {where.relative_to(run.root)} in this run: flip the post-processing toggle.")
    else:
        axis = exam.slice_axis
        slices = [k for k in triage_access.parse_slices(row["worst_slices"]) if 0 <= k < exam.image.shape[axis]]
        if not slices:
            st.info(f"{case}: no worst slice recorded (no structure predicted on any slice).")
        else:
            figures = worst_slice_figures(exam.image, exam.label, volume, slices, axis=axis, spacing=exam.spacing,
                                          names=names, label=masks)
            for column, figure in zip(st.columns(len(figures)), figures):
                with column:
                    st.plotly_chart(figure, width="stretch")
            st.caption(f"The slices whose predicted shapes the shape auto-encoder reproduces worst or the "
                       f"discriminator finds least plausible, worst first (0-based slice index along axis {axis}). "
                       "Filled: the prediction; white outline: the ground truth.")

with latent_tab:
    try:
        embeddings = triage_access.get_embeddings(run, fold)
    except SparError as err:
        st.error(str(err))
        embeddings = None
    kinds = [] if embeddings is None else [k for k in MAP_KINDS if k in set(embeddings["embedding"])]
    if embeddings is None:
        st.info(f"No latent map of fold {fold} yet: `spar embed {run.root}` draws the codes of the snapshot "
                "slices (the Latent convergence page shows them over the epochs).")
    elif method not in set(embeddings["method"]) or not kinds:
        st.info(f"{run.root / 'embeddings' / f'fold_{fold}.csv'} holds no map of {display_name(method)}; run "
                f"`spar embed {run.root}` again.")
    else:
        kind = st.segmented_control("Map", kinds, default=kinds[0], key=MAP_KEY, required=True) or kinds[0]
        mine = embeddings[(embeddings["case"] == case) & (embeddings["method"] == method)]
        order = [names[v] for v in sorted(names)]  # bone colours in label order, as on the slices
        st.plotly_chart(latent_exam_figure(embeddings, case, method, kind, structures=order), width="stretch")
        if mine.empty:
            st.info(f"{case} has no slice among fold {fold}'s snapshot slices (a fixed random choice of the "
                    "fold's test slices): only the other exams' codes are shown.")
        else:
            st.caption("Gray: the codes of every snapshot slice at the last epoch (light: true masks, dark: "
                       "predictions). Coloured: this exam's predicted codes, joined to its true codes (open "
                       "circles). A prediction far from the true codes has an implausible shape.")

with surface_tab:
    bones = [names[v] for v in sorted(names)]
    on_col, bones_col = st.columns([1, 3])
    with on_col:
        surface_on = st.toggle("Show the 3D surface", value=False, key=SURFACE_KEY,
                               help="Meshes each predicted bone and measures every vertex's distance to the true "
                                    "surface: a second or two per exam, then cached.")
    with bones_col:
        chosen = st.multiselect("Bones", bones, default=bones, key=BONES_KEY)
    if not surface_on:
        st.caption("Turn on to see the predicted bones in 3D, coloured by their distance to the true surface.")
    elif exam_error:
        st.error(exam_error)
    elif volume is None:
        st.info(f"No {where.relative_to(run.root)} in this run: flip the post-processing toggle.")
    elif not chosen:
        st.info("Pick at least one bone.")
    else:
        label_path = dataset.case(case).label_path
        values = [v for v in sorted(names) if names[v] in chosen]
        figure = triage_access.surface_figure(volume, exam.label, exam.spacing, names, values,
                                              triage_access.file_key(where, label_path))
        figure.update_layout(title=f"{case}, {masks}: {figure.layout.title.text}")
        st.plotly_chart(figure, width="stretch")
        if figure.data and exam.label is not None:
            st.caption("Colour: distance of each predicted surface point to the nearest border voxel of the "
                       "truth (mm), as the metrics' ASSD / MSSD measure it; a perfect mask reads about half a "
                       "voxel. Drag to rotate, scroll to zoom, click a bone in the legend to hide it.")
        elif not figure.data:
            st.info(f"{case}: none of the chosen bones is in the prediction.")
