"""Triage figures: distances to the true surface in mm, meshes in mm, one trace per bone, ranking in rank order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spar_core.errors import SparError
from spar_core.figures.surface import bone_mesh, distance_to_surface, downsample_factors, surface_mesh_figure
from spar_core.figures.triage import SCORES, latent_exam_figure, ranking_figure, score_shares, worst_slice_figures

SPACING = (0.5, 1.0, 2.0)  # anisotropic on purpose: a mix-up of axes changes every number below
NAMES = {1: "calcaneus", 2: "talus", 3: "tibia"}


def _cube(lo: tuple[int, int, int], hi: tuple[int, int, int], shape=(60, 50, 40)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return mask


TRUTH = _cube((20, 15, 10), (40, 35, 30))  # border voxels at indices 20/39, 15/34, 10/29


def _ball(radius_mm: float, spacing: tuple[float, float, float], shape=(64, 48, 28)) -> np.ndarray:
    centre = (np.asarray(shape) - 1) / 2 * spacing
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij"), -1)
    return np.linalg.norm(grid - centre, axis=-1) <= radius_mm


# ---------------------------------------------------------------------------------------------- distances


@pytest.mark.parametrize("index, expected_mm", [
    ((16.0, 25.0, 20.0), 4 * 0.5),  # 4 voxels before the axis-0 face
    ((15.5, 25.0, 20.0), 4.5 * 0.5),  # between voxel centres: interpolated exactly on a straight face
    ((30.0, 37.0, 20.0), 3 * 1.0),  # beyond the axis-1 face
    ((30.0, 25.0, 8.0), 2 * 2.0),  # two thick slices beyond the axis-2 face
    ((30.0, 25.0, 20.0), 9 * 0.5),  # inside: the nearest border voxel (39, 25, 20) is along the finest axis
    ((18.0, 13.0, 9.0), 3.0),  # off a corner: sqrt(1.0² + 2.0² + 2.0²) to voxel (20, 15, 10)
    ((20.0, 25.0, 20.0), 0.0),  # on a border voxel
])
def test_distance_to_surface_in_mm(index: tuple[float, float, float], expected_mm: float) -> None:
    point = np.asarray(index) * SPACING
    assert distance_to_surface(point[None], TRUTH, SPACING)[0] == pytest.approx(expected_mm, abs=1e-9)


def test_distance_to_an_empty_truth_is_nan_and_no_point_is_empty() -> None:
    assert np.isnan(distance_to_surface(np.zeros((2, 3)), np.zeros((5, 5, 5), bool), SPACING)).all()
    assert distance_to_surface(np.zeros((0, 3)), TRUTH, SPACING).shape == (0,)


@pytest.mark.parametrize("kwargs", [dict(spacing=(1.0, 0.0, 1.0)), dict(spacing=(1.0, 1.0)),
                                    dict(truth=np.zeros((4, 4), bool))])
def test_distance_to_surface_refuses_bad_input(kwargs: dict) -> None:
    args = dict(points_mm=np.zeros((1, 3)), truth=TRUTH, spacing=SPACING) | kwargs
    with pytest.raises(SparError):
        distance_to_surface(**args)


def test_offset_cube_reads_its_offset_on_its_faces() -> None:
    # The prediction is 4, 2 and 1 voxels larger per side (2 mm along every axis); its iso-surface lies half a
    # voxel further out, so a face vertex is 2 mm + half a voxel of that axis from the true border voxels.
    pred = _cube((16, 13, 9), (44, 37, 31))
    figure = surface_mesh_figure(pred.astype(np.uint8), SPACING, {1: "bone"}, TRUTH.astype(np.uint8),
                                 max_voxels=10**9)
    (mesh,) = figure.data
    verts, dist = np.stack([mesh.x, mesh.y, mesh.z], 1), np.asarray(mesh.intensity)
    for axis, expected in enumerate([2.25, 2.5, 3.0]):
        others = [a for a in range(3) if a != axis]
        on_face = np.isclose(verts[:, axis], verts[:, axis].min())
        # Only vertices facing the true face itself (not past its edges) are at exactly that distance.
        for a in others:
            lo, hi = np.flatnonzero(TRUTH.any(axis=tuple(b for b in range(3) if b != a)))[[0, -1]] * SPACING[a]
            on_face &= (verts[:, a] >= lo) & (verts[:, a] <= hi)
        assert on_face.sum() > 20
        np.testing.assert_allclose(dist[on_face], expected, atol=1e-9)
    corner = np.sqrt(2.25**2 + 2.5**2 + 3.0**2)
    assert dist.min() == pytest.approx(2.25) and dist.max() <= corner + 1e-9
    assert figure.layout.coloraxis.cmin == 0 and figure.layout.coloraxis.cmax == pytest.approx(dist.max())
    assert "mm" in figure.layout.coloraxis.colorbar.title.text


def test_concentric_spheres_read_their_gap_within_a_voxel() -> None:
    spacing = (0.5, 0.7, 1.5)
    truth, pred = _ball(8.0, spacing), _ball(10.0, spacing)
    (mesh,) = surface_mesh_figure(pred.astype(np.uint8), spacing, {1: "ball"}, truth.astype(np.uint8)).data
    dist = np.asarray(mesh.intensity)
    assert abs(np.median(dist) - 2.0) <= max(spacing)
    assert np.percentile(dist, 5) >= 2.0 - max(spacing) and np.percentile(dist, 95) <= 2.0 + max(spacing)
    # The same sphere against itself: about half a voxel (the iso-surface lies between voxel centres).
    (same,) = surface_mesh_figure(truth.astype(np.uint8), spacing, {1: "ball"}, truth.astype(np.uint8)).data
    assert np.median(same.intensity) < max(spacing) / 2 + 1e-9 < 2.0


# ---------------------------------------------------------------------------------------------- meshes


def test_mesh_vertices_are_in_mm() -> None:
    verts, faces = bone_mesh(TRUTH, SPACING, max_voxels=10**9)
    # Iso-surface at 0.5 between the first/last voxel (index 20 / 39 on axis 0...) and the background beside it.
    np.testing.assert_allclose(verts.min(axis=0), np.array([19.5, 14.5, 9.5]) * SPACING)
    np.testing.assert_allclose(verts.max(axis=0), np.array([39.5, 34.5, 29.5]) * SPACING)
    assert faces.shape[1] == 3 and faces.max() < len(verts)


def test_downsampled_mesh_keeps_its_place_within_a_block() -> None:
    verts, _ = bone_mesh(TRUTH, SPACING, max_voxels=1000)
    factors = np.asarray(downsample_factors((20, 20, 20), SPACING, 1000))
    assert (factors > 1).any()
    block = factors * np.asarray(SPACING)
    assert np.all(np.abs(verts.min(axis=0) - np.array([19.5, 14.5, 9.5]) * SPACING) <= block)
    assert np.all(np.abs(verts.max(axis=0) - np.array([39.5, 34.5, 29.5]) * SPACING) <= block)
    assert bone_mesh(np.zeros((4, 4, 4), bool), SPACING)[0].shape == (0, 3)


@pytest.mark.parametrize("shape, spacing, budget, expected", [
    ((100, 100, 10), (0.5, 0.5, 3.0), 10**6, (1, 1, 1)),  # under budget: untouched
    ((400, 400, 20), (0.5, 0.5, 3.0), 150_000, (5, 5, 1)),  # 80 × 80 × 20: thick slices are kept
    ((60, 60, 60), (1.0, 1.0, 1.0), 27_000, (2, 2, 2)),  # isotropic: every axis alike
])
def test_downsample_factors(shape, spacing, budget, expected) -> None:
    factors = downsample_factors(shape, spacing, budget)
    assert factors == expected
    assert np.prod(-(-np.asarray(shape) // factors)) <= budget


def _three_bones() -> np.ndarray:
    labels = np.zeros((60, 50, 40), dtype=np.uint8)
    labels[5:15, 5:15, 5:15] = 1
    labels[20:30, 20:30, 5:15] = 2
    labels[40:55, 30:45, 20:35] = 3
    return labels


def test_one_trace_per_bone_and_a_shared_colour_axis() -> None:
    labels = _three_bones()
    truth = labels.copy()
    truth[truth == 2] = 0
    truth[24:34, 20:30, 5:15] = 2  # the talus 4 voxels (2 mm) further along axis 0
    figure = surface_mesh_figure(labels, SPACING, NAMES, truth)
    assert [t.type for t in figure.data] == ["mesh3d"] * 3
    assert [t.name for t in figure.data] == ["calcaneus", "talus", "tibia"]
    assert all(t.coloraxis == "coloraxis" and len(t.intensity) == len(t.x) for t in figure.data)
    assert figure.layout.scene.aspectmode == "data"
    # Each bone is measured against its own true surface: the exact ones within half a voxel (at most half of
    # 2 mm), the shifted talus 2 mm + half a voxel (0.25 mm) away on its far face.
    far = [float(np.max(t.intensity)) for t in figure.data]
    assert far[0] <= 1.0 + 1e-9 and far[2] <= 1.0 + 1e-9 and far[1] >= 2.25 - 1e-9
    chosen = surface_mesh_figure(labels, SPACING, NAMES, truth, structures=[3, 1])
    assert [t.name for t in chosen.data] == ["calcaneus", "tibia"]
    labels[labels == 2] = 0  # a bone the prediction misses is left out
    assert [t.name for t in surface_mesh_figure(labels, SPACING, NAMES, truth).data] == ["calcaneus", "tibia"]
    with pytest.raises(SparError, match="structures"):
        surface_mesh_figure(labels, SPACING, NAMES, truth, structures=[7])
    with pytest.raises(SparError, match="truth has shape"):
        surface_mesh_figure(labels, SPACING, NAMES, truth[:-1])


def test_without_truth_bones_are_coloured_by_bone_and_the_title_says_so() -> None:
    figure = surface_mesh_figure(_three_bones(), SPACING, NAMES)
    assert len(figure.data) == 3
    assert all(t.intensity is None and t.color for t in figure.data)
    assert len({t.color for t in figure.data}) == 3
    assert "no ground truth" in figure.layout.title.text
    assert figure.layout.coloraxis.colorbar.title.text is None


# ---------------------------------------------------------------------------------------------- ranking


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, len(SCORES)))
    z[1, 4] = np.nan  # an exam without volume_z
    table = pd.DataFrame({"case": [f"c{i}" for i in range(5)], **{f"z_{s}": z[:, k] for k, s in enumerate(SCORES)},
                          **{s: z[:, k] * 10 for k, s in enumerate(SCORES)},
                          "degraded": ["", "motion", np.nan, "", "low_snr"]})
    table["triage_score"] = np.nanmean(z, axis=1)
    table["rank"] = table["triage_score"].rank(ascending=False).astype(int)
    return table.sample(frac=1.0, random_state=1)  # rows in no particular order


def test_ranking_chart_is_in_rank_order_with_shares_adding_up() -> None:
    table = _table()
    figure = ranking_figure(table)
    by_rank = table.sort_values("rank")
    categories = list(figure.layout.yaxis.categoryarray)
    assert [c.split(". ")[1].split()[0] for c in categories] == list(by_rank["case"])
    assert [int(c.split(".")[0]) for c in categories] == [1, 2, 3, 4, 5]
    assert figure.layout.yaxis.autorange == "reversed"  # rank 1 on top
    titled = ranking_figure(table, title="t")
    assert titled.layout.legend.x > 1 and titled.layout.legend.y <= 1  # beside the plot, not over its title
    bars = [t for t in figure.data if t.type == "bar"]
    assert [b.name for b in bars] == list(SCORES)
    assert all(list(b.y) == categories for b in bars)
    total = np.nansum(np.stack([np.asarray(b.x, dtype=float) for b in bars]), axis=0)
    np.testing.assert_allclose(total, by_rank["triage_score"])
    np.testing.assert_allclose(score_shares(by_rank).sum(axis=1), by_rank["triage_score"])
    marker = next(t for t in figure.data if t.name == "triage score")
    np.testing.assert_allclose(marker.x, by_rank["triage_score"])


def test_degraded_exams_are_marked() -> None:
    table = _table()
    figure = ranking_figure(table)
    flagged = next(t for t in figure.data if t.name == "degraded exam")
    expected = table[table["degraded"].isin(["motion", "low_snr"])].sort_values("rank")
    assert [y.split(". ")[1].split()[0] for y in flagged.y] == list(expected["case"])
    assert all("⚠" in y for y in flagged.y)
    clean = ranking_figure(table.assign(degraded=""))
    assert "degraded exam" not in {t.name for t in clean.data}


def test_ranking_needs_a_triage_table() -> None:
    with pytest.raises(SparError, match="rank"):
        ranking_figure(pd.DataFrame({"case": ["a"], "triage_score": [0.0]}))


# ---------------------------------------------------------------------------------------------- slices, codes


def test_worst_slices_reuse_the_compare_panels() -> None:
    labels = _three_bones()
    image = np.random.default_rng(0).random(labels.shape).astype(np.float32)
    figures = worst_slice_figures(image, labels, np.roll(labels, 1, 0), [12, 7], axis=2, spacing=SPACING,
                                  names=NAMES, label="SPAR, raw")
    assert len(figures) == 2
    assert [f.layout.annotations[0].text for f in figures] == ["<b>#1: slice 12 · SPAR, raw</b>",
                                                                "<b>#2: slice 7 · SPAR, raw</b>"]
    np.testing.assert_array_equal(figures[0].data[0].z, image[:, :, 12].T)
    assert any(t.name == "truth (outline)" for t in figures[0].data)
    assert len(worst_slice_figures(image, None, labels, [3], axis=0, spacing=SPACING, names=NAMES)) == 1
    with pytest.raises(SparError, match="index"):
        worst_slice_figures(image, labels, labels, [40], axis=2, spacing=SPACING, names=NAMES)


def _embeddings() -> pd.DataFrame:
    rows = []
    for epoch in (1, 3):
        for origin in ("true", "predicted"):
            for case, slices in (("a", [2, 5]), ("b", [1, 4, 6])):
                for s in slices:
                    for structure in ("calcaneus", "tibia"):
                        rows.append(dict(fold=0, embedding="aligned", method="spar", epoch=epoch,
                                         structure=structure, origin=origin, case=case, slice=s,
                                         x=epoch * 10 + s + (origin == "predicted"), y=float(len(rows))))
    return pd.DataFrame(rows)


def test_latent_map_highlights_the_exam_at_the_last_epoch() -> None:
    emb = _embeddings()
    figure = latent_exam_figure(emb, "b", "spar", structures=["calcaneus", "talus", "tibia"])
    assert "epoch 3" in figure.layout.title.text and "b: 6 predicted codes" in figure.layout.title.text
    background = [t for t in figure.data if t.name.endswith("(all)")]
    assert sum(len(t.x) for t in background) == 2 * 5 * 2  # every code of the last epoch, both origins
    mine = {t.name: t for t in figure.data if t.name.endswith(": this exam")}
    assert set(mine) == {"calcaneus: this exam", "tibia: this exam"}
    assert sorted(mine["tibia: this exam"].x) == [31 + 1, 34 + 1, 36 + 1]  # exam b's predicted x at epoch 3
    lines = next(t for t in figure.data if t.name == "tibia: predicted → true")
    assert list(lines.x[:2]) == [32, 31]  # each predicted code joined to its own true code
    assert mine["calcaneus: this exam"].marker.color != mine["tibia: this exam"].marker.color
    other = latent_exam_figure(emb, "zz", "spar")
    assert "no slice among" in other.layout.title.text
    with pytest.raises(SparError, match="umap"):
        latent_exam_figure(emb, "b", "spar", "umap")


def test_scores_are_the_ones_an_exam_gets() -> None:
    from spar_core.triage.scores import ExamScores, score_exam  # noqa: F401  (the module that computes them)
    from spar_core.triage.ranking import ORIENTATION, SCORES as CORE

    assert SCORES is CORE and list(ORIENTATION) == list(CORE)


def test_uncertainty_figure_layers_the_map_over_the_slice() -> None:
    from spar_core.figures.uncertainty import uncertainty_figure

    image = np.linspace(0, 1, 12 * 10).reshape(12, 10)
    label = np.zeros((12, 10), np.uint8)
    label[3:7, 2:6] = 1
    heat = np.zeros((12, 10))
    heat[3, 2:6] = 0.5  # a border band
    fig = uncertainty_figure(image, heat, label, spacing2d=(1.0, 2.0), names={1: "talus"}, vmax=1.0)
    layer = fig.data[-1]
    assert layer.name == "entropy" and layer.zmax == 1.0
    z = np.asarray(layer.z, dtype=float)
    assert z.shape == (10, 12) and np.isnan(z).sum() == 12 * 10 - 4 and np.nanmax(z) == 0.5
    with pytest.raises(SparError, match="map2d"):
        uncertainty_figure(image, heat[:5], label, spacing2d=(1.0, 1.0), names={1: "talus"})
    with pytest.raises(SparError, match="negative"):
        uncertainty_figure(image, -np.ones((12, 10)), label, spacing2d=(1.0, 1.0), names={1: "talus"})
