"""The Latent convergence page's panels: the fold and map pickers, the animated scatter of the shape codes, the
slice behind a point, the offer to compute missing maps, and the mean latent distance per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd
import streamlit as st

import latent_access
import run_access
from run_access import Run
from state import Selection
from spar_core.errors import SparError
from spar_core.figures.latent import EMBEDDING_LABELS, convergence_figure, embedding_scatter
from spar_core.latent.embedding import EMBEDDINGS
from spar_core.methods import display_name, method_order
from spar_core.runs import jobs

FOLD_KEY, EMBEDDING_KEY, METHOD_KEY = "latent_fold", "latent_embedding", "latent_method"
STRUCTURES_KEY, POINT_KEY, SCATTER_KEY, POST_KEY = "latent_structures", "latent_point", "latent_scatter", "latent_post"
EPOCH_KEY, FOLLOWED_KEY = "_latent_epoch", "_latent_sidebar_method"


@dataclass(frozen=True)
class MapChoice:
    """What the map pickers chose."""

    kind: str  # "aligned", "umap" or "tsne"
    method: str
    structures: list[str]  # the run's, in label order (they fix the colours)
    shown: list[str]  # the structures drawn (all when none is picked)


@dataclass(frozen=True)
class Points:
    """The code pairs of one map and the one shown: ``point`` (case, slice, structure) at snapshot ``epoch``."""

    options: dict[str, tuple[str, int, str]]  # picker label -> pair
    point: tuple[str, int, str]
    epoch: int
    epochs: list[int]


def _keep(key: str, options: list, default: Any) -> None:
    """Point a widget's stored value at an option: ``default`` when it holds none of them."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default if default in options else options[0]


def _clicked() -> None:
    """A click on the scatter picks the point in the selectbox (a callback: before the page is drawn)."""
    picked = latent_access.clicked_point(st.session_state.get(SCATTER_KEY))
    if picked is not None:
        st.session_state[POINT_KEY], st.session_state[EPOCH_KEY] = picked


def fold_ui(run: Run, folds: list[int]) -> int:
    """The fold picker; starts on the first fold with maps."""
    with_maps = [f for f in folds if run.folder.embeddings_path(f).is_file()]
    _keep(FOLD_KEY, folds, with_maps[0] if with_maps else folds[0])
    return st.selectbox("Fold", folds, key=FOLD_KEY,
                        format_func=lambda f: f"fold {f}" + ("" if f in with_maps else " (no maps yet)"))


def no_maps_ui(run: Run, fold: int, can_compute: bool) -> None:
    """Say how to compute the fold's maps and, when it has snapshots (``can_compute``), offer a background job."""
    command = f"spar embed {run.root} --fold {fold}"
    st.info(f"No latent maps for fold {fold} of run {run.name!r} yet. Compute them with `{command}` (t-SNE, "
            "aligned t-SNE and UMAP of every snapshot epoch; under a minute for a tiny run, a few minutes for "
            "the demo), or start that command here as a background job (it shows on the Runs page).")
    if can_compute and st.button("Compute the maps in the background", key="latent_compute"):
        try:
            job = jobs.start(["embed", run.root, "--fold", str(fold)], title=f"Latent maps of {run.name}, fold {fold}",
                             run_dir=run.root)
        except SparError as err:
            st.warning(str(err))
        else:
            st.success(f"Started job {job.id}; reload this page when it has finished.")


def pickers_ui(table: pd.DataFrame, run: Run, sidebar_method: str | None, columns: Sequence[Any]) -> MapChoice:
    """Map, method and structure pickers, in three ``columns``; the method follows the sidebar's when it moves."""
    kinds = [k for k in EMBEDDINGS if k in set(table["embedding"])]
    methods = method_order([str(m) for m in table["method"].unique()])
    structures, options = latent_access.structure_options(table, run)
    _keep(EMBEDDING_KEY, kinds, "aligned")
    if st.session_state.get(FOLLOWED_KEY) != sidebar_method:  # the sidebar's method moved: follow it
        st.session_state[FOLLOWED_KEY] = sidebar_method
        if sidebar_method in methods:
            st.session_state[METHOD_KEY] = sidebar_method
    _keep(METHOD_KEY, methods, sidebar_method)
    kind_col, method_col, structure_col = columns
    with kind_col:
        kind = st.selectbox("Map", kinds, key=EMBEDDING_KEY, format_func=lambda k: EMBEDDING_LABELS.get(k, k),
                            help="Aligned t-SNE and UMAP: one map of the true codes, each epoch's predicted codes "
                                 "placed into it, so movement between epochs is real. t-SNE: refitted every "
                                 "epoch (the paper's figure); positions do not compare across epochs.")
    with method_col:
        method = st.selectbox("Method", methods, key=METHOD_KEY, format_func=display_name)
    if STRUCTURES_KEY in st.session_state:  # picks of another run's structures are dropped
        st.session_state[STRUCTURES_KEY] = [s for s in st.session_state[STRUCTURES_KEY] if s in options]
    with structure_col:
        shown = st.multiselect("Structures", options, key=STRUCTURES_KEY, placeholder="all structures")
    return MapChoice(kind, method, structures, shown or options)  # nothing picked: all


def points(rows: pd.DataFrame) -> Points:
    """The code pairs of a map's rows and the one to show (the picked or clicked one, else the first, at the
    last epoch); no widget: the point picker is drawn beside the map by :func:`point_ui`."""
    options = latent_access.point_options(rows)
    _keep(POINT_KEY, list(options), next(iter(options)))
    epochs = sorted(int(e) for e in rows["epoch"].unique())
    if st.session_state.get(EPOCH_KEY) not in epochs:
        st.session_state[EPOCH_KEY] = epochs[-1]
    return Points(options, options[st.session_state[POINT_KEY]], st.session_state[EPOCH_KEY], epochs)


def scatter_ui(table: pd.DataFrame, choice: MapChoice, shown: Points, fold: int) -> None:
    """The animated map of the chosen method's codes, the shown pair ringed; a click picks a point."""
    figure = embedding_scatter(table, choice.kind, choice.method, structures=choice.structures, show=choice.shown,
                               epoch=shown.epoch, selected=shown.point)
    st.plotly_chart(figure, on_select=_clicked, selection_mode="points", key=SCATTER_KEY, width="stretch")
    st.caption(f"Fold {fold}: {len(shown.options)} (slice, structure) pairs of the fold's held-out exams, "
               f"{len(shown.epochs)} snapshot epochs ({', '.join(map(str, shown.epochs))}). Click a point, or pick "
               "it below, to see its slice; the ringed pair is the one shown.")


def point_ui(run: Run, shown: Points) -> bool:
    """The point picker and the mask toggle; returns whether the post-processed mask is shown."""
    st.selectbox("Point (exam · slice · structure)", list(shown.options), key=POINT_KEY)
    return st.toggle("Post-processed mask", value=False, key=POST_KEY,
                     help=f"Off: the stacked 2D outputs ({run_access.pred_folder(raw=True)}), what the codes were "
                          f"computed from. On: {run_access.postprocess_text(run)}.")


def pair_slice_ui(run: Run, selection: Selection, fold: int, method: str, point: tuple[str, int, str], post: bool,
                  distances: pd.DataFrame | None) -> None:
    """The slice behind the shown pair, with its latent distance at each epoch (``selection``: the sidebar's)."""
    try:
        figure, predicted = latent_access.pair_slice(run, selection.root, selection.dataset, fold, method, point, post)
    except SparError as err:
        st.error(str(err))
        return
    st.plotly_chart(figure, width="stretch", key="latent_slice")
    case = point[0]
    if not predicted:
        st.caption(f"No {run_access.prediction_name(run, fold, method, case, raw=not post)} for {display_name(method)} in "
                   f"fold {fold}: the true outline alone.")
    notes = [f"{display_name(method)}'s final model, {'post-processed' if post else 'raw'} (the run keeps "
             "no mask per epoch); white: the true outline."]
    by_epoch = latent_access.pair_distances_text(distances, method, point)
    if by_epoch:
        notes.append(f"‖ẑ − z‖ of this pair: {by_epoch}.")
    st.caption(" ".join(notes))


def convergence_ui(run: Run, fold: int, convergence: pd.DataFrame | None) -> None:
    """Mean latent distance per epoch and method, one panel per picked structure (all bones when none)."""
    if convergence is None:
        pattern = run_access.relative(run, run.folder.method_folder(fold, "<method>").snapshot("<e>"))
        st.info(f"Fold {fold} of run {run.name!r} has no latent snapshots ({pattern}) yet: they are written at the "
                "preset's snapshot epochs while the methods train.")
        return
    present = list(dict.fromkeys(convergence["structure"].astype(str)))
    picked = st.session_state.get(STRUCTURES_KEY) or []
    panels = [s for s in picked if s in present] or ["all"]
    st.plotly_chart(convergence_figure(convergence, panels, highlight=st.session_state.get(METHOD_KEY)),
                    width="stretch", key="latent_convergence")
    st.caption("Mean Euclidean distance ‖ẑ − z‖, in the shape auto-encoder's latent space, between the code of a "
               "predicted mask and the code of the true mask of the same slice and bone (the fold's held-out "
               "snapshot slices; band: ±1 SD over the pairs). A falling curve means the predictions converge to "
               "the true shapes. This number, not the 2D picture above, is the evidence: t-SNE and UMAP distort "
               "distances.")
