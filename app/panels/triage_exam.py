"""The Outlier triage page's one-exam panel: the exam and mask pickers, then three tabs: its worst slices, its
shape codes in the latent map, and its predicted bones in 3D against the truth."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import run_access
import scene_access
import triage_access
from panels.volume_viewer import volume_viewer_ui
from run_access import Run
from spar_core.errors import SparError
from spar_core.figures.triage import latent_exam_figure, worst_slice_figures
from spar_core.methods import display_name
from triage_access import ExamView

EXAM_KEY, POST_KEY, SURFACE_KEY = "triage_exam", "triage_post", "triage_3d"
BONES_KEY, MAP_KEY = "triage_bones", "triage_map"
MAP_KINDS = ("aligned", "umap", "tsne")


def pickers_ui(table: pd.DataFrame) -> tuple[str, bool]:
    """The exam picker (rank 1 first, each with its rank, fold, score and degraded flag) and the mask toggle;
    returns (case, post-processed)."""
    cases = list(table["case"])
    if st.session_state.get(EXAM_KEY) not in cases:
        st.session_state[EXAM_KEY] = cases[0]  # rank 1
    rows = table.set_index("case")

    def label(case: str) -> str:
        row = rows.loc[case]
        flag = f" · degraded: {row['degraded']}" if row["degraded"] else ""
        return f"#{int(row['rank'])} {case} (fold {int(row['fold'])}, score {row['triage_score']:.2f}){flag}"

    pick_col, post_col = st.columns([3, 1])
    with pick_col:
        case = st.selectbox("Exam", cases, key=EXAM_KEY, format_func=label)
    with post_col:
        post = st.toggle("Post-processed masks", value=False, key=POST_KEY,
                         help=f"Off: the masks triage scored (the raw stacked 2D predictions, "
                              f"{run_access.pred_folder(raw=True)}). On: after post-processing "
                              f"({run_access.pred_folder(raw=False)}).")
    return case, post


def _unavailable(run: Run, view: ExamView) -> bool:
    """Say why the view's image or prediction cannot be shown; True when so."""
    if view.error:
        st.error(view.error)
    elif view.volume is None:
        st.info(f"No {run_access.relative(run, view.where)} in this run: flip the post-processing toggle.")
    return bool(view.error) or view.volume is None


def worst_slices_ui(run: Run, view: ExamView, case: str, worst_slices: str, masks: str) -> None:
    """The slices triage found worst (``worst_slices`` as the table writes them), prediction over the truth."""
    if _unavailable(run, view):
        return
    exam = view.exam
    axis = exam.slice_axis
    slices = [k for k in triage_access.parse_slices(worst_slices) if 0 <= k < exam.image.shape[axis]]
    if not slices:
        st.info(f"{case}: no worst slice recorded (no structure predicted on any slice).")
        return
    figures = worst_slice_figures(exam.image, exam.label, view.volume, slices, axis=axis, spacing=exam.spacing,
                                  names=view.names, label=masks)
    for column, figure in zip(st.columns(len(figures)), figures):
        with column:
            st.plotly_chart(figure, width="stretch")
    st.caption(f"The slices whose predicted shapes the shape auto-encoder reproduces worst or the discriminator "
               f"finds least plausible, worst first (0-based slice index along axis {axis}). Filled: the prediction; "
               "white outline: the ground truth.")


def latent_ui(run: Run, view: ExamView, case: str, fold: int, method: str) -> None:
    """The exam's predicted codes against its true codes in the fold's latent map (the last snapshot epoch)."""
    try:
        embeddings = run_access.get_embeddings(run, fold)
    except SparError as err:
        st.error(str(err))
        embeddings = None
    kinds = [] if embeddings is None else [k for k in MAP_KINDS if k in set(embeddings["embedding"])]
    if embeddings is None:
        st.info(f"No latent map of fold {fold} yet: `spar embed {run.root}` draws the codes of the snapshot "
                "slices (the Latent convergence page shows them over the epochs).")
        return
    if method not in set(embeddings["method"]) or not kinds:
        st.info(f"{run.folder.embeddings_path(fold)} holds no map of {display_name(method)}; run "
                f"`spar embed {run.root}` again.")
        return
    kind = st.segmented_control("Map", kinds, default=kinds[0], key=MAP_KEY, required=True) or kinds[0]
    order = [view.names[v] for v in sorted(view.names)]  # bone colours in label order, as on the slices
    st.plotly_chart(latent_exam_figure(embeddings, case, method, kind, structures=order), width="stretch")
    if embeddings[(embeddings["case"] == case) & (embeddings["method"] == method)].empty:
        st.info(f"{case} has no slice among fold {fold}'s snapshot slices (a fixed random choice of the fold's "
                "test slices): only the other exams' codes are shown.")
    else:
        st.caption("Gray: the codes of every snapshot slice at the last epoch (light: true masks, dark: "
                   "predictions). Coloured: this exam's predicted codes, joined to its true codes (open circles). "
                   "A prediction far from the true codes has an implausible shape.")


def surface_ui(run: Run, view: ExamView, case: str, masks: str) -> list[str]:
    """The predicted bones in 3D, coloured by their distance to the true surface, behind a toggle (it takes a
    second or two); returns the bones chosen."""
    bones = [view.names[v] for v in sorted(view.names)]
    on_col, bones_col = st.columns([1, 3])
    with on_col:
        surface_on = st.toggle("Show the 3D surface", value=False, key=SURFACE_KEY,
                               help="Meshes each predicted bone and measures every vertex's distance to the true "
                                    "surface: a second or two per exam, then cached.")
    with bones_col:
        chosen = st.multiselect("Bones", bones, default=bones, key=BONES_KEY)
    if not surface_on:
        st.caption("Turn on to see the predicted bones in 3D, coloured by their distance to the true surface.")
    elif _unavailable(run, view):
        pass
    elif not chosen:
        st.info("Pick at least one bone.")
    else:
        figure = triage_access.surface_figure(view, [v for v in sorted(view.names) if view.names[v] in chosen])
        figure.update_layout(title=f"{case}, {masks}: {figure.layout.title.text}")
        st.plotly_chart(figure, width="stretch")
        if figure.data and view.exam.label is not None:
            st.caption("Colour: distance of each predicted surface point to the nearest border voxel of the "
                       "truth (mm), as the metrics' ASSD / MSSD measure it; a perfect mask reads about half a "
                       "voxel. Drag to rotate, scroll to zoom, click a bone in the legend to hide it.")
        elif not figure.data:
            st.info(f"{case}: none of the chosen bones is in the prediction.")
    return chosen


def uncertainty_ui(run: Run, view: ExamView, case: str, fold: int, method: str, worst_slices: str) -> None:
    """Where the model hesitated: the exam in the volume viewer, the prediction over the truth beside its entropy
    and disagreement maps (the prediction outlined), all on one cursor, starting on the worst slice."""
    if _unavailable(run, view):
        return
    exam = view.exam
    worst = [k for k in triage_access.parse_slices(worst_slices) if 0 <= k < exam.image.shape[exam.slice_axis]]
    try:
        scene, missing = scene_access.triage_scene(run, exam, view.names, view.volume, view.where, method, fold,
                                                   worst[0] if worst else None)
    except SparError as err:
        st.error(str(err))
        return
    volume_viewer_ui(scene, key="triage_viewer")
    if missing:
        st.info(f"No {' or '.join(missing)} map of {case} in this run: `spar triage {run.root}` writes them "
                "(test-time shifts of the fold's model).")
    st.caption("Heat: the predictive entropy of the averaged test-time shifts (0: certain; ln of the number of "
               "classes: no idea) and the mutual information between the five shifted predictions (where they "
               "disagree, beyond what each is unsure of), each on its own scale for the whole exam. Thin bands "
               "along borders are normal; a whole structure glowing is not.")
