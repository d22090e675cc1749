"""Structures in a row (vertebrae L1–L5, ribs, fingers' phalanges): one label per body, in a fixed order along
one axis. A 2D network that sees one slice at a time often labels a body with its neighbour's label in some
slices and with its own in others, or counts one level off in a lateral slice; the order constrains that.

:func:`find_chain` reads the order from the training labels: the labels whose centroids follow the label order
along one voxel axis, in the same direction, in every training exam, and which never touch (vertebral bodies
apart from their discs; not the bones of a joint). :func:`relabel_chain` then treats each
3D connected body of the predicted foreground as one structure, orders the bodies along that axis, and gives
them consecutive labels of the chain: of all the shifts of the chain along the bodies, the one that agrees
with most of the network's voxel labels. A body the chain leaves out (a vertebra above L1, a sacrum taken for
L5) becomes background.

Votes alone cannot undo a shift that the network makes consistently in every slice (the sacrum called L5, L5
called L4, …). :func:`find_chain` records two priors from the training labels, and the shifts are scored by the
votes and by one of them (:meth:`Chain.with_prior`; ``--chain-prior``, where ``none`` leaves the votes alone;
:data:`VOTE_WEIGHT` weighs the two):

- ``position``: *where* each structure sits: each label's mean position along the axis from the first voxel and
  how much the whole row moves from exam to exam (``offset_sd``); a Gaussian prior on how far a shift moves the
  row from where the training exams hold it. Strong where the exams share one protocol (one field-of-view
  placement); a row placed 30 mm higher than in any training exam makes it vote for a shift (the row one level
  up), and a protocol whose row moves freely has a large ``offset_sd``, so the prior fades by itself.
- ``volume``: what each structure looks like *relative to the row itself*, wherever the field of view puts it:
  each label's volume relative to the mean of the row's bodies in its exam (log ratio: L3 and L4 about 8 % above
  the row's mean, L1 and L5 about 9 % below, spreads of 4–8 %), and how well the relative volumes of the bodies
  fit the labels a shift gives them. A body the field of view cuts along the row (it reaches the volume's first
  or last plane along the row's axis) has lost part of its volume and says nothing of its size, in the training
  labels and in a prediction alike. The prior fades by itself when the exam's bodies are, as a whole, larger or
  smaller than the training exams' (another age, another anatomy or a mis-scaled header): beyond
  :data:`RANGE_Z` spreads of the training exams' mean body volume, its weight falls as a Gaussian. Weaker than
  the position where the field of view never moves (relative volumes differ by a few per cent between
  neighbours, within a prediction's volume errors): on the spine 5-fold it did worse than the votes alone
  (``bench/results/spine_cv5_fov/``).

Records of earlier versions hold one of the two; they load and apply the one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import ndimage

from spar_core.data.checks import check_3d
from spar_core.data.voxels import bounding_box
from spar_core.errors import SparError
from spar_core.postprocessing.levels import LevelCall, LevelEvidence, level_call, level_shift
from spar_core.postprocessing.settings import check_chain_prior

BODY_FRACTION = 0.25  # a component smaller than this fraction of the largest one is not a body (a stray island)
CHAIN_MODES = ("majority", "ordered")
MERGED_RATIO = 1.8  # a body this many times the median body is two structures grown together
TOUCH_FRACTION = 1e-3  # structures whose contact faces exceed this fraction of their voxels touch: no chain
VOTE_WEIGHT = 3.0  # log-prior units per unit of agreeing-vote fraction when the chain knows its positions
SD_FLOOR = 0.2  # offset_sd is at least this fraction of the mean gap between consecutive structures
VOLUME_SD_FLOOR = 0.08  # a relative volume's spread is at least this (log): predictions are rougher than truth
RANGE_Z = 2.0  # the volume prior is whole while the exam's mean body volume lies within this many spreads


@dataclass(frozen=True)
class Chain:
    """Labels in their order along voxel ``axis`` (increasing index when ``ascending``, else decreasing).

    ``positions``: each label's mean centroid along the axis in mm from the first voxel's centre, over the
    training exams; ``offset_sd``: the spread (mm) of the whole row's offset from those positions. Both or
    neither.

    ``volumes``: each label's mean log volume relative to the mean of its exam's row (the log of the geometric
    mean), over the training exams; ``volume_sd``: their spreads (at least :data:`VOLUME_SD_FLOOR`);
    ``body_ml``: the mean and the spread (log) of an exam's mean body volume in ml. All three or none.

    Without either prior the order is decided by the votes alone; with both, :func:`relabel_chain` applies the
    position (:meth:`with_prior` keeps one). ``level``: the level model's evidence orders the row
    (:mod:`spar_core.postprocessing.levels`), neither prior (set by :meth:`with_prior`, never recorded).
    """

    labels: tuple[int, ...]
    axis: int
    ascending: bool = True
    positions: tuple[float, ...] | None = None
    offset_sd: float | None = None
    volumes: tuple[float, ...] | None = None
    volume_sd: tuple[float, ...] | None = None
    body_ml: tuple[float, float] | None = None
    level: bool = False

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels) or min(self.labels) < 1:
            raise SparError(f"chain labels {self.labels}: expected two or more distinct labels ≥ 1")
        if self.axis not in (0, 1, 2):
            raise SparError(f"chain axis {self.axis}: expected 0, 1 or 2")
        if (self.positions is None) != (self.offset_sd is None):
            raise SparError("chain positions and offset_sd: expected both or neither")
        if self.positions is not None and (len(self.positions) != len(self.labels)
                                           or not np.all(np.isfinite(self.positions))
                                           or not (np.isfinite(self.offset_sd) and self.offset_sd > 0)):
            raise SparError(f"chain positions {self.positions} / offset_sd {self.offset_sd}: expected one finite "
                            "position per label and a positive spread")
        given = [v is not None for v in (self.volumes, self.volume_sd, self.body_ml)]
        if any(given) and not all(given):
            raise SparError("chain volumes, volume_sd and body_ml: expected all three or none")
        if all(given):
            values = np.array([*self.volumes, *self.volume_sd, *self.body_ml], dtype=float)
            if len(self.volumes) != len(self.labels) or len(self.volume_sd) != len(self.labels) \
                    or len(self.body_ml) != 2 or not np.all(np.isfinite(values)) \
                    or min(*self.volume_sd, self.body_ml[1]) <= 0:
                raise SparError(f"chain volumes {self.volumes} / volume_sd {self.volume_sd} / body_ml "
                                f"{self.body_ml}: expected one finite value and one positive spread per label, "
                                "and a finite mean and positive spread of the body volume")

    def as_dict(self) -> dict:
        out = {"labels": list(self.labels), "axis": self.axis, "ascending": self.ascending}
        if self.positions is not None:
            out.update(positions_mm=[round(p, 3) for p in self.positions], offset_sd_mm=round(self.offset_sd, 3))
        if self.volumes is not None:
            out.update(volumes_log=[round(v, 4) for v in self.volumes],
                       volume_sd_log=[round(v, 4) for v in self.volume_sd],
                       body_ml_log=[round(v, 4) for v in self.body_ml])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Chain":
        def floats(key: str) -> tuple[float, ...] | None:
            return None if data.get(key) is None else tuple(float(v) for v in data[key])

        try:
            body = floats("body_ml_log")
            return cls(tuple(int(v) for v in data["labels"]), int(data["axis"]), bool(data["ascending"]),
                       floats("positions_mm"), None if data.get("offset_sd_mm") is None else float(data["offset_sd_mm"]),
                       floats("volumes_log"), floats("volume_sd_log"),
                       None if body is None else body)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SparError(f"chain {data!r}: expected labels, axis and ascending ({err})") from None

    def with_prior(self, prior: str) -> "Chain":
        """The chain with the one prior ``prior`` names (``position`` or ``volume``) when it holds it, else with the
        one it holds (a record of an earlier version holds one); ``none``: the order alone; ``level``: the level
        model's evidence (no prior of its own)."""
        if check_chain_prior(prior, "chain prior") == "none":
            return Chain(self.labels, self.axis, self.ascending)
        if prior == "level":  # the positions kept: they order a row whose crops the level model cannot explain
            return Chain(self.labels, self.axis, self.ascending, self.positions, self.offset_sd, level=True)
        position = self.positions is not None and (prior == "position" or self.volumes is None)
        volume = self.volumes is not None and not position
        return Chain(self.labels, self.axis, self.ascending,
                     self.positions if position else None, self.offset_sd if position else None,
                     self.volumes if volume else None, self.volume_sd if volume else None,
                     self.body_ml if volume else None)


def _centroids(volume: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """(len(labels), 3) voxel centroids, NaN for a label absent from ``volume``."""
    with np.errstate(invalid="ignore", divide="ignore"):  # an absent label: 0 / 0, NaN below
        found = ndimage.center_of_mass(np.ones(volume.shape, dtype=np.uint8), volume, labels)
    return np.array([c if np.all(np.isfinite(c)) else (np.nan,) * 3 for c in found], dtype=float)


def _cut_labels(volume: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """(3, len(labels)) bool: whether each label reaches the volume's first or last plane along each axis (the
    field of view cuts it there)."""
    return np.array([np.isin(np.asarray(labels), np.moveaxis(volume, axis, 0)[[0, -1]]) for axis in range(3)])


def _apart(volume: np.ndarray, labels: tuple[int, ...]) -> bool:
    """True when the structures of ``labels`` (almost) never touch: the voxel faces between two different
    ones are at most ``TOUCH_FRACTION`` of their voxels (a few from the annotation are tolerated)."""
    inside = np.isin(volume, labels)
    faces = 0
    for axis in range(3):
        a, b = np.moveaxis(volume, axis, 0), np.moveaxis(inside, axis, 0)
        faces += int(np.count_nonzero((a[1:] != a[:-1]) & b[1:] & b[:-1]))
    return faces <= TOUCH_FRACTION * max(1, int(np.count_nonzero(inside)))


def find_chain(truths: Iterable[np.ndarray], labels: Iterable[int], minimum: int = 3,
               spacings: Iterable[tuple[float, float, float]] | None = None) -> Chain | None:
    """The chain the training labels form, or None.

    ``labels`` (in their order, e.g. L1..L5) form a chain along an axis when, in every exam, no two of them
    touch (vertebral bodies apart from their discs, unlike the bones of a joint) and
    the centroids of the labels it holds are strictly monotonic along the axis in that order, in one direction
    for all exams; of the axes that qualify the one with the widest mean spacing of consecutive centroids is
    taken. Fewer than ``minimum`` labels, or no exam, is no chain. With ``spacings`` (one per exam) the chain
    also records both priors: where the labels sit (:class:`Chain` ``positions``, ``offset_sd``) and their
    relative volumes (``volumes``, ``volume_sd``, ``body_ml``).
    """
    order = tuple(int(v) for v in labels)
    if len(order) < minimum:
        return None
    truths = list(truths)
    spacings = None if spacings is None else [tuple(float(v) for v in s) for s in spacings]
    if spacings is not None and len(spacings) != len(truths):
        raise SparError(f"find_chain: {len(spacings)} spacings for {len(truths)} label volumes")
    per_exam, counts, cuts = [], [], []
    for truth in truths:
        truth = check_3d(truth, "label volume")
        if not _apart(truth, order):
            return None
        per_exam.append(_centroids(truth, order))
        counts.append(np.bincount(truth.ravel().astype(np.int64), minlength=max(order) + 1)[list(order)])
        cuts.append(_cut_labels(truth, order))
    if not per_exam:
        return None
    best: tuple[float, int, bool] | None = None
    for axis in range(3):
        signs, gaps = set(), []
        for cents in per_exam:
            coords = cents[:, axis][np.isfinite(cents[:, axis])]
            steps = np.diff(coords)
            if len(coords) >= 2:
                signs.add(1 if np.all(steps > 0) else -1 if np.all(steps < 0) else 0)
                gaps.append(np.abs(steps).mean())
        if len(signs) == 1 and 0 not in signs and (best is None or np.mean(gaps) > best[0]):
            best = (float(np.mean(gaps)), axis, signs == {1})
    if best is None:
        return None
    if spacings is None:
        return Chain(order, best[1], best[2])
    # a structure the field of view cuts along the row: its volume unknown (count 0)
    volumes = _volumes([np.where(cut[best[1]], 0, c) for c, cut in zip(counts, cuts)], spacings)
    return Chain(order, best[1], best[2], *_positions(per_exam, spacings, best[1], best[0]),
                 *(volumes or (None, None, None)))


def _positions(per_exam: list[np.ndarray], spacings: list[tuple[float, ...]], axis: int,
               gap: float) -> tuple[tuple[float, ...] | None, float | None]:
    """Each label's mean position (mm) along ``axis`` and the spread of the row's offset between exams (at
    least ``SD_FLOOR`` of the mean gap): an exam's offset is the mean of its labels' deviations from the means
    (labels it lacks left out). (None, None) when some label is in no training exam."""
    mm = np.array([cents[:, axis] * spacing[axis] for cents, spacing in zip(per_exam, spacings)])
    means = np.nanmean(mm, axis=0) if np.isfinite(mm).any(axis=0).all() else None
    if means is None:  # a label that no training exam holds: where it sits is unknown, so no positions
        return None, None
    offsets = np.array([np.nanmean(row - means) for row in mm if np.isfinite(row).any()])
    floor = SD_FLOOR * gap * float(np.mean(spacings, axis=0)[axis])
    spread = float(np.std(offsets, ddof=1)) if len(offsets) > 1 else 0.0
    return tuple(float(m) for m in means), max(spread, floor)


def _volumes(counts: list[np.ndarray], spacings: list[tuple[float, ...]]) \
        -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, float]] | None:
    """Each label's mean log volume relative to its exam's row (the log of the geometric mean of the labels it
    holds), their spreads (at least :data:`VOLUME_SD_FLOOR`), and the mean and spread of an exam's log mean body
    volume (ml). Exams holding all the labels, none cut by the field of view (count 0), only (a partial row's
    mean is another row's); None without two."""
    whole = [(c.astype(float), s) for c, s in zip(counts, spacings) if np.all(c > 0)]
    if len(whole) < 2:
        return None
    logs = np.array([np.log(c) for c, _ in whole])
    relative = logs - logs.mean(axis=1, keepdims=True)
    body = np.array([np.log(np.exp(row).mean() * float(np.prod(s)) / 1000.0) for row, (_, s) in zip(logs, whole)])
    spread = np.maximum(relative.std(axis=0, ddof=1), VOLUME_SD_FLOOR)
    return (tuple(float(v) for v in relative.mean(axis=0)), tuple(float(v) for v in spread),
            (float(body.mean()), float(max(body.std(ddof=1), VOLUME_SD_FLOOR))))


@dataclass(frozen=True)
class RowBodies:
    """The bodies of a predicted row: the 6-connected components of the voxels holding a chain label, at least
    :data:`BODY_FRACTION` of the largest, in the row's order along the chain's axis.

    ``components``: the component map of the chain's bounding box ``box``; ``ids``: the bodies' component ids;
    ``votes[b, j]``: voxels of body b holding the chain's j-th label; ``centroids``: (bodies, 3) voxel centroids in
    the whole volume; ``merged``: bodies :data:`MERGED_RATIO` times the median (two grown together);
    ``sizes``: every component's voxels (index id − 1).
    """

    components: np.ndarray
    box: tuple[slice, ...]
    ids: np.ndarray
    votes: np.ndarray
    centroids: np.ndarray
    merged: np.ndarray
    sizes: np.ndarray


def row_bodies(labels: np.ndarray, chain: Chain) -> RowBodies | None:
    """The bodies of the chain's labels in ``labels``, in the row's order; None when no voxel holds one."""
    labels = check_3d(labels, "labels")
    values = np.array(chain.labels)
    inside = np.isin(labels, values)
    if not inside.any():
        return None
    box = bounding_box(inside)  # the chain's bounding box: every step below works on it alone
    crop = labels[box]
    components, n = ndimage.label(inside[box], structure=ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(components.ravel())[1:]
    bodies = np.flatnonzero(sizes >= BODY_FRACTION * sizes.max()) + 1
    # votes[b, j]: voxels of body b that the network gave the chain's j-th label (one pass over the volume)
    top = int(max(crop.max(), values.max())) + 1
    joint = np.bincount(components.ravel().astype(np.int64) * top + crop.ravel().astype(np.int64),
                        minlength=(n + 1) * top).reshape(n + 1, top)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = np.array(ndimage.center_of_mass(np.ones(components.shape, np.uint8), components, bodies),
                             dtype=float).reshape(-1, 3) + np.array([b.start for b in box], dtype=float)
    rank = np.argsort(centroids[:, chain.axis] * (1 if chain.ascending else -1), kind="stable")
    body_sizes = sizes[bodies - 1]
    return RowBodies(components, box, bodies[rank], joint[bodies][:, values][rank], centroids[rank],
                     (body_sizes > MERGED_RATIO * np.median(body_sizes))[rank], sizes)


def _shifts(bodies: RowBodies, chain: Chain) -> range:
    """The shifts of the chain along the bodies that give at least one body a label: shift k puts the chain's
    j-th label on body j + k."""
    return range(-(len(chain.labels) - 1), len(bodies.ids))


def relabel_chain(labels: np.ndarray, chain: Chain, mode: str = "ordered",
                  spacing: tuple[float, float, float] | None = None, vote_weight: float = VOTE_WEIGHT,
                  evidence: LevelEvidence | None = None) -> np.ndarray:
    """``labels`` with each body of the chain's foreground given one chain label (a new array).

    Bodies are those of :func:`row_bodies`; smaller islands and other labels are left as they are. ``mode``
    ``"majority"`` gives each body the chain label most of its voxels hold; ``"ordered"`` gives the bodies,
    in their order along the chain's axis, consecutive chain labels (the shift of the chain that most voxels
    agree with; bodies outside it become background). A body ``MERGED_RATIO`` times the median body (two
    structures grown together) keeps its labels in ``"majority"``, and leaves the volume unchanged in
    ``"ordered"``. In ``"ordered"``, a chain with ``level`` and the row's ``evidence`` chooses the shift by the level
    model (:func:`~spar_core.postprocessing.levels.level_shift`; where its crops disagree, by the votes and the
    positions it keeps); else a chain with ``positions`` and a ``spacing`` also weighs where each shift
    puts the row; else a chain with ``volumes`` how the bodies' relative volumes fit each shift, faded by the
    exam's mean body volume when a ``spacing`` is given (see the module's docstring; ``vote_weight`` weighs the
    votes against the prior).

    Raises:
        SparError: ``evidence`` of other bodies than these.
    """
    if mode not in CHAIN_MODES:
        raise SparError(f"chain mode {mode!r}: expected one of {', '.join(CHAIN_MODES)}")
    labels = check_3d(labels, "labels")
    result = np.array(labels, copy=True)
    values = np.array(chain.labels)
    found = row_bodies(labels, chain)
    if found is None:
        return result
    out = result[found.box]  # a view of result
    bodies, votes, merged = found.ids, found.votes, found.merged
    if mode == "majority":
        bodies, votes = bodies[~merged], votes[~merged]  # a merged body keeps the network's labels
        assigned = values[votes.argmax(axis=1)]
    else:
        if len(bodies) < 2 or merged.any():
            return result
        best = _best_shift(found, chain, spacing, vote_weight, evidence, result.shape)
        assigned = np.array([values[b - best] if 0 <= b - best < len(values) else 0 for b in range(len(bodies))])
    lut = np.full(len(found.sizes) + 1, -1, dtype=np.int64)  # component -> its new label; -1: left as it was
    lut[bodies] = assigned
    new = lut[found.components]
    changed = new >= 0
    out[changed] = new[changed].astype(out.dtype, copy=False)
    return result


def _best_shift(found: RowBodies, chain: Chain, spacing: tuple[float, float, float] | None, vote_weight: float,
                evidence: LevelEvidence | None, shape: tuple[int, ...]) -> int:
    """The shift of the chain along the bodies that the votes and the chain's prior (or its level evidence) favour
    most (ties: the smallest shift)."""
    shifts = _shifts(found, chain)
    votes = found.votes
    agree = np.array([sum(votes[j + k, j] for j in range(len(chain.labels)) if 0 <= j + k < len(votes))
                      for k in shifts], dtype=float)
    scores = agree
    if chain.positions is not None and spacing is not None:
        where = found.centroids[:, chain.axis] * float(spacing[chain.axis])
        scores = np.array([vote_weight * score / max(1, int(votes.sum())) - 0.5 * (_offset(where, chain, k)
                                                                                 / chain.offset_sd) ** 2
                           for score, k in zip(agree, shifts)])
    elif chain.volumes is not None:
        # a body the field of view cuts has lost part of its volume: it says nothing of its size (NaN)
        cut = _touch_border(found.components, found.box, shape, chain.axis)
        sized = np.where(cut[found.ids], np.nan, np.log(found.sizes[found.ids - 1].astype(float)))
        weight = _volume_weight(sized, chain, spacing)
        scores = np.array([vote_weight * score / max(1, int(votes.sum())) + weight * _volume_fit(sized, chain, k)
                           for score, k in zip(agree, shifts)])
    if chain.level and evidence is not None:  # the level model, or where its crops disagree the prior above
        check_evidence(found, evidence, chain.axis)
        return level_shift(evidence, list(shifts), agree / max(1, int(votes.sum())), np.asarray(scores, float))
    return max(zip(scores, shifts), key=lambda sk: (sk[0], -abs(sk[1])))[1]


def check_evidence(found: RowBodies, evidence: LevelEvidence, axis: int) -> None:
    """SparError unless ``evidence`` was made for these bodies (its positions along the chain's ``axis``)."""
    where = found.centroids[:, axis]
    if len(evidence.positions) != len(where) or not np.allclose(evidence.positions, where, atol=0.51):
        raise SparError(f"level evidence for {len(evidence.positions)} bodies at {list(evidence.positions)}; the "
                        f"prediction has {len(where)} at {[round(float(w), 3) for w in where]}: evidence of "
                        "another prediction")


def call_row_level(labels: np.ndarray, chain: Chain, evidence: LevelEvidence,
                   spacing: tuple[float, float, float] | None = None) -> LevelCall:
    """What the level model's ``evidence`` says of the row in ``labels`` (raw, as the evidence was made for it): the
    shift :func:`relabel_chain` chooses, its margin and its anchor (:func:`~spar_core.postprocessing.levels.
    level_call`). A row of fewer than two bodies, or with two grown together, is not ordered: its level is
    unknown."""
    found = row_bodies(labels, chain)
    if found is None or len(found.ids) < 2 or found.merged.any():
        return LevelCall(0, 0.0, "none", True, False)
    level = chain if chain.level else chain.with_prior("level")
    best = _best_shift(found, level, spacing, VOTE_WEIGHT, evidence, labels.shape)
    return level_call(evidence, list(_shifts(found, chain)), best)


def _touch_border(components: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...], axis: int) -> np.ndarray:
    """(n + 1,) bool: whether each component of ``components`` (cropped to ``box`` of a volume of ``shape``)
    reaches the volume's first or last plane along ``axis``, i.e. the field of view cuts it along the row (index 0:
    background). Along the other axes a body may reach the border without it saying anything of the row (a
    sagittal slab that ends inside the bodies cuts them all alike)."""
    touch = np.zeros(int(components.max()) + 1, dtype=bool)
    for label, where in enumerate(ndimage.find_objects(components), start=1):
        if where is not None:
            start = box[axis].start + where[axis].start
            touch[label] = start == 0 or start + (where[axis].stop - where[axis].start) == shape[axis]
    return touch


def _volume_fit(log_sizes: np.ndarray, chain: Chain, shift: int) -> float:
    """Log prior of ``shift`` from the bodies' relative volumes (``log_sizes`` in chain order, NaN for a body
    whose volume says nothing): −½ Σ z² over the labels it gives a body of known volume, each relative to the
    mean of those assigned, and −½ for each other label (the expected z² of a label whose body is there), so
    that shifts assigning few bodies gain nothing. Fewer than two such labels: no information (−½ per label)."""
    pairs = [(log_sizes[j + shift], j) for j in range(len(chain.labels))
             if 0 <= j + shift < len(log_sizes) and np.isfinite(log_sizes[j + shift])]
    if len(pairs) < 2:
        return -0.5 * len(chain.labels)
    observed = np.array([v for v, _ in pairs])
    expected = np.array([chain.volumes[j] for _, j in pairs])
    sd = np.array([chain.volume_sd[j] for _, j in pairs])
    z = ((observed - observed.mean()) - (expected - expected.mean())) / sd
    return float(-0.5 * (np.sum(z**2) + len(chain.labels) - len(pairs)))


def _volume_weight(log_sizes: np.ndarray, chain: Chain, spacing: tuple[float, float, float] | None) -> float:
    """1 while the exam's mean body volume lies within :data:`RANGE_Z` spreads of the training exams', falling
    as a Gaussian beyond; 1 without a ``spacing`` (the volumes in ml unknown)."""
    known = log_sizes[np.isfinite(log_sizes)]
    if spacing is None or not known.size:
        return 1.0
    ml = float(np.log(np.exp(known).mean() * float(np.prod(spacing)) / 1000.0))
    z = abs(ml - chain.body_ml[0]) / chain.body_ml[1]
    return float(np.exp(-0.5 * max(0.0, z - RANGE_Z) ** 2))


def _offset(where: np.ndarray, chain: Chain, shift: int) -> float:
    """Mean distance (mm) from the training positions of the labels that ``shift`` gives to the bodies at
    ``where`` (in chain order)."""
    pairs = [(where[j + shift], chain.positions[j]) for j in range(len(chain.labels)) if 0 <= j + shift < len(where)]
    return float(np.mean([w - p for w, p in pairs]))
