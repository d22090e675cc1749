"""A right pediatric ankle: calcaneus, talus and distal tibia (labelled), fibula, navicular, cuboid, tendons.

Adult-size anatomical frame (mm): x lateral, y anterior, z superior, origin at the centre of the tibial
plafond on the joint line. The foot bones sit in a *foot frame* rotated about the ankle axis by the
subject's dorsi/plantar-flexion. Joints are built by carving (see :func:`.shapes.carve`): the talus is made
first; tibia, fibula, calcaneus and navicular are cut by its surface grown by the joint gap.
"""

from __future__ import annotations

import numpy as np

from spar_core.data.phantoms.scene import Bone, Joint, Part, Scene, Tissue
from spar_core.data.phantoms.shapes import (
    Points,
    SmoothNoise,
    capsule,
    elliptic_cylinder,
    ellipsoid,
    plane,
    rotation,
    round_box,
    smooth_intersection,
    smooth_subtraction,
    smooth_union,
    swept,
    to_local,
)

LABELS = {"background": 0, "calcaneus": 1, "talus": 2, "tibia": 3}
DEFAULT_SUBJECTS = 17
PATHOLOGIES = ("clubfoot", "talocalcaneal_coalition", "short_calcaneus")
# Adult-size box (anatomical mm) the field of view must hold: heel pad to well above the tibial physis.
EXTENT = ((-44.0, -70.0, -82.0), (44.0, 62.0, 36.0))
PIVOT = (0.0, -4.0, -22.0)  # centre of the talar dome's curvature: the ankle's flexion axis runs through it


def build(rng: np.random.Generator, age: float, scale: float, pathology: str | None) -> Scene:
    """The ankle of one subject; ``rng`` draws every shape and pose variation (±10 % sizes, a few degrees)."""

    def vary(v, rel=0.1):
        return tuple(np.asarray(v, float) * rng.uniform(1 - rel, 1 + rel, size=len(v)))

    def move(c, mm=1.5):
        return tuple(np.asarray(c, float) + rng.uniform(-mm, mm, size=3))

    grown = float(np.clip((age - 4) / 13, 0, 1))  # 0 at 4 years, 1 at 17
    flexion = rng.uniform(-12, 10) - (12 if pathology == "clubfoot" else 0)
    foot_rot = rotation(rx=flexion).astype(np.float32)

    def foot(P: Points) -> Points:
        # Rᵀ(p − pivot) + pivot: foot-frame coordinates of leg-frame points.
        X, Y, Z = to_local(P, PIVOT, foot_rot)
        return X + PIVOT[0], Y + PIVOT[1], Z + PIVOT[2]

    # --- talus -------------------------------------------------------------------------------------------
    dome_r = rng.uniform(18.5, 21.5)
    body_half = vary((14.5, 17.0, 14.0))
    head_c, head_r = move((-8.0, 31.0, -20.0)), vary((13.0, 10.0, 11.0))
    neck_rot = rotation(rz=rng.uniform(-6, 6))
    talus_size = 1.0
    if pathology == "clubfoot":
        # Flat-topped, small talus whose neck points medially and plantarward.
        dome_r, talus_size, neck_rot = 34.0, 0.84, rotation(rx=-14, rz=28)
    lat_c, post_c = move((13.5, -3.0, -19.0), 1), move((1.0, -22.0, -21.0), 1)

    def talus(P: Points) -> np.ndarray:
        X, Y, Z = foot(P)
        top = (0.0, -4.0, -2.0)  # the dome's top stays under the plafond whatever the size
        X, Y, Z = ((c - t) / talus_size + t for c, t in zip((X, Y, Z), top))
        Q = (X, Y, Z)
        W = (X / (1 + 0.006 * (Y + 4)), Y, Z)  # the trochlea is a wedge, wider in front
        dome = capsule(W, (-17, -4, -2 - dome_r), (17, -4, -2 - dome_r), dome_r)
        body = smooth_intersection(dome, round_box(W, (0, -5, -13), body_half, 5), 3)
        N = to_local(Q, (0, -4, -14), neck_rot)
        N = (N[0], N[1] + 4, N[2] - 14)  # neck frame re-centred on the body
        neck = capsule(N, (-1, 8, -17), (head_c[0] + 1, head_c[1] - 3, head_c[2]), 8.5, 9.5)
        head = ellipsoid(N, head_c, head_r, rotation(rz=25))
        out = smooth_union(body, smooth_union(neck, head, 4), 5)
        out = smooth_union(out, ellipsoid(Q, lat_c, (5, 9, 7)), 3)
        out = smooth_union(out, ellipsoid(Q, post_c, (6, 6, 5)), 3)
        return out * talus_size

    # --- calcaneus ---------------------------------------------------------------------------------------
    length = 0.74 if pathology == "short_calcaneus" else 1.0
    calc_body_c, calc_body_h = (3.0, -10.0 + 8 * (1 - length), -41.0), vary((15.0, 29.0 * length, 14.5))
    pitch = rng.uniform(10, 20) + (8 if pathology == "short_calcaneus" else 0)
    tuber_c = move((3.0, -11.0 - 27.0 * length, -52.0))
    tuber_r = vary((15.0, 13.0, 19.0))
    varus = rotation(ry=-10, rx=-8) if pathology == "clubfoot" else rotation(ry=rng.uniform(-4, 4))

    def calcaneus(P: Points) -> np.ndarray:
        Q = foot(P)
        Q = to_local(Q, (3, -10, -41), varus)
        Q = (Q[0] + 3, Q[1] - 10, Q[2] - 41)
        # Taller behind than in front: heights shrink towards the anterior process.
        T = (Q[0], Q[1], (Q[2] - calc_body_c[2]) / (1 - 0.005 * (Q[1] - calc_body_c[1])) + calc_body_c[2])
        out = round_box(T, calc_body_c, calc_body_h, 7, rotation(rx=pitch))
        out = smooth_union(out, ellipsoid(Q, (5, -8, -28), (12, 14, 5)), 4)  # posterior facet
        out = smooth_union(out, ellipsoid(Q, tuber_c, tuber_r), 6)
        out = smooth_union(out, round_box(Q, (7, 22, -33), (11, 12, 9), 4), 5)  # anterior process
        out = smooth_union(out, round_box(Q, (-13, 4, -27), (8, 11, 4), 3), 3)  # sustentaculum tali
        return smooth_subtraction(out, capsule(Q, (22, 12, -24), (-4, -2, -27), 4.5), 2)  # sinus tarsi

    def coalition(P: Points) -> np.ndarray:
        return capsule(foot(P), (-13, 3, -24), (-13, 3, -31), 5.5)

    def apophysis(P: Points) -> np.ndarray:
        X, Y, Z = foot(P)
        return (Y - tuber_c[1] + 3) - 0.012 * ((X - 3) ** 2 + (Z + 51) ** 2)

    # --- tibia and fibula (leg frame) --------------------------------------------------------------------
    shaft_r = rng.uniform(14.5, 17.0)
    meta_h = vary((17.0, 16.0, 9.0))
    mall_c, mall_h = move((-19.0, -2.0, -7.0), 1), vary((5.5, 10.0, 12.0))
    physis_z = rng.uniform(12, 16)
    bump = rng.uniform(1.0, 2.5)

    def tibia(P: Points) -> np.ndarray:
        shaft = capsule(P, (-1, -3, 12), (-1, -5, 170), shaft_r, shaft_r * 0.78, squash=(1, 0.86, 1))
        out = smooth_union(shaft, round_box(P, (-1, -4, 5), meta_h, 6), 10)
        out = smooth_union(out, round_box(P, mall_c, mall_h, 4), 4)
        out = smooth_subtraction(out, capsule(P, (27, -15, -10), (26, -14, 60), 11), 4)  # fibular notch
        return smooth_intersection(out, plane(P, (0, -17, 0), (0, -1, 0.1)), 6)  # flatter posterior face

    def tibial_physis(P: Points) -> np.ndarray:
        X, Y, Z = P
        kump = bump * np.exp(-((X + 8) ** 2 + (Y - 4) ** 2) / 120.0)  # Kump's bump, anteromedial
        return Z - physis_z - 0.8 * np.sin(0.15 * X + 0.1 * Y) - kump

    fib_pts = [move((21, -9, -24), 1), (22, -8, -4), (21, -11, 40), (20, -12, 170)]
    fib_r = vary((5.0, 8.5, 7.0, 7.0))

    def fibula(P: Points) -> np.ndarray:
        return swept(P, fib_pts, fib_r, k=3)

    def fibular_physis(P: Points) -> np.ndarray:
        return P[2] - 1.0

    # --- midfoot (foot frame, unlabelled) ----------------------------------------------------------------
    nav_c, nav_r = move((-9.0, 44.0, -20.0)), vary((15.0, 7.0, 12.0))
    cub_c, cub_h = move((11.0, 40.0, -36.0)), vary((10.5, 10.0, 10.0))

    def navicular(P: Points) -> np.ndarray:
        return ellipsoid(foot(P), nav_c, nav_r, rotation(rz=-20))

    def cuboid(P: Points) -> np.ndarray:
        return round_box(foot(P), cub_c, cub_h, 4)

    # --- bones, physes, joints ---------------------------------------------------------------------------
    cortex = 0.9 + 0.7 * grown
    plate = _physis_width(rng, age)
    shape_noise = lambda: SmoothNoise(rng, rng.uniform(0.5, 1.5) * scale, (25, 60))  # noqa: E731
    g_tt, g_st = rng.uniform(1.5, 2.0), rng.uniform(1.0, 1.9)
    leg_box, foot_box = ((-30, -26, -24), (34, 20, 200)), ((-30, -56, -76), (30, 60, 2))
    calc = Bone("calcaneus", 1, calcaneus, ((-28, -56, -76), (24, 40, -16)), (("talus", g_st),),
                shape_noise(), cortex, apophysis if 7 <= age < 14 else None, plate, Tissue.EPIPHYSIS)
    if pathology == "talocalcaneal_coalition":
        calc.bridge = (coalition, "talus")
    bones = [
        Bone("talus", 2, talus, ((-24, -30, -34), (22, 48, 2)), (), shape_noise(), cortex, marrow=Tissue.EPIPHYSIS),
        calc,
        Bone("tibia", 3, tibia, leg_box, (("talus", g_tt),), shape_noise(), cortex, tibial_physis, plate),
        Bone("fibula", 0, fibula, ((6, -26, -34), (34, 4, 200)), (("talus", 1.8), ("tibia", 2.5)),
             shape_noise(), cortex, fibular_physis, plate),
        Bone("navicular", 0, navicular, ((-30, 32, -36), (10, 56, -4)), (("talus", 1.6),), shape_noise(), cortex,
             marrow=Tissue.EPIPHYSIS),
        Bone("cuboid", 0, cuboid, ((-4, 26, -50), (26, 54, -20)), (("calcaneus", 1.6), ("navicular", 2.0)),
             shape_noise(), cortex, marrow=Tissue.EPIPHYSIS),
    ]
    cart = 0.8 + 1.0 * (1 - grown)
    joints = [
        Joint("talus", "tibia", max(cart, g_tt / 2 + 0.1), rng.uniform(1.0, 3.0)),
        Joint("talus", "calcaneus", max(cart, g_st / 2 + 0.1), rng.uniform(0.5, 2.0)),
        Joint("talus", "fibula", max(cart, 1.0), 1.0),
        Joint("talus", "navicular", max(cart, 0.9), 1.0),
        Joint("calcaneus", "cuboid", max(cart, 0.9), 0.5),
    ]
    pose = rotation(rx=rng.uniform(-5, 5), ry=rng.uniform(-5, 5), rz=rng.uniform(-12, 12))
    return Scene(bones, _soft_tissue(rng, foot, foot_rot, foot_box), joints, scale, pose,
                 fat_thickness=rng.uniform(2.5, 6.0), body_noise=SmoothNoise(rng, 2.0 * scale, (40, 90)))


def _physis_width(rng: np.random.Generator, age: float) -> float:
    """Growth-plate thickness (mm): 1.4–2 mm in children, thinning from 12 years, closed at 14.5–16.5."""
    closure = rng.uniform(14.5, 16.5)
    full = rng.uniform(1.4, 2.0)
    return float(full * np.clip((closure - age) / (closure - 12.0), 0, 1))


def _soft_tissue(rng: np.random.Generator, foot, foot_rot, foot_box) -> list[Part]:
    leg_r = (rng.uniform(31, 36), rng.uniform(35, 41))

    def body(P: Points) -> np.ndarray:
        leg = elliptic_cylinder(P, (0, -9, 0), leg_r, (-30, 400))
        Q = foot(P)
        sole = round_box(Q, (1, 5, -44), (31, 72, 36), 22)
        dorsum = plane(Q, (0, 25, -8), (0, 0.45, 1))  # the dorsum slopes down towards the toes
        return smooth_union(leg, smooth_intersection(sole, dorsum, 10), 18)

    def leg_muscles(P: Points) -> np.ndarray:
        out = elliptic_cylinder(P, (7, -20, 0), (11, 7), (-6, 400))  # flexor hallucis longus
        out = np.minimum(out, elliptic_cylinder(P, (0, -29, 0), (22, 7), (30, 400)))  # soleus
        out = np.minimum(out, elliptic_cylinder(P, (-8, -19, 0), (9, 7), (32, 400)))  # tibialis post., FDL
        out = np.minimum(out, elliptic_cylinder(P, (8, 20, 0), (12, 7), (18, 400)))  # anterior compartment
        return np.minimum(out, elliptic_cylinder(P, (25, -18, 0), (7, 8), (8, 400)))  # peroneus brevis

    def foot_muscles(P: Points) -> np.ndarray:
        Q = foot(P)
        out = capsule(Q, (-22, -25, -56), (-24, 70, -50), 9)  # abductor hallucis
        out = np.minimum(out, capsule(Q, (3, -28, -65), (3, 80, -60), 8))  # flexor digitorum brevis
        out = np.minimum(out, capsule(Q, (-4, -25, -54), (-2, 35, -52), 7))  # quadratus plantae
        out = np.minimum(out, capsule(Q, (22, -30, -62), (24, 70, -58), 7))  # abductor digiti minimi
        return np.minimum(out, capsule(Q, (16, 25, -22), (12, 70, -25), 5))  # extensor digitorum brevis

    parts = [
        Part("body", body, ((-60, -90, -100), (60, 90, 400))),
        Part("muscle", leg_muscles, ((-34, -46, -8), (36, 30, 400))),
        Part("muscle", foot_muscles, foot_box),
    ]
    # Tendons: (points in leg frame above the ankle, then in foot frame), radius.
    tendons = [
        ([(0, -38, 200), (0, -40, 0), (2, -44, -40)], 7.0, (1, 0.45, 1)),  # Achilles, flat
        ([(-16, -20, 200), (-17, -16, 0), (-25, -6, -22), (-20, 32, -28)], 3.0, (1, 1, 1)),  # tibialis post.
        ([(-11, -24, 200), (-13, -21, 0), (-23, -12, -27), (-18, 32, -40)], 2.3, (1, 1, 1)),  # FDL
        ([(4, -25, 40), (-1, -25, -20), (-13, -7, -40), (-12, 60, -58)], 2.6, (1, 1, 1)),  # FHL
        ([(25, -22, 200), (26, -19, -10), (23, -8, -38), (20, 30, -50)], 2.8, (1, 1, 1)),  # peroneus longus
        ([(29, -16, 200), (29, -14, -8), (27, -2, -30), (24, 40, -36)], 2.6, (1, 1, 1)),  # peroneus brevis
        ([(-5, 20, 200), (-6, 19, 0), (-13, 35, -12), (-17, 60, -26)], 3.3, (1, 1, 1)),  # tibialis anterior
        ([(2, 22, 200), (1, 21, 0), (-2, 45, -14), (-4, 90, -26)], 2.3, (1, 1, 1)),  # ext. hallucis longus
        ([(12, 20, 200), (12, 19, 0), (15, 50, -18), (18, 90, -30)], 2.3, (1, 1, 1)),  # ext. digitorum longus
        ([(2, -42, -70), (2, 80, -68)], 4.0, (1, 1, 0.3)),  # plantar fascia
    ]
    for pts, radius, squash in tendons:
        pts = [tuple(np.asarray(p, float) + rng.uniform(-1, 1, 3)) for p in pts]
        parts.append(Part("tendon", _tendon(foot, foot_rot, pts, radius * rng.uniform(0.9, 1.1), squash), _box(pts, radius)))
    return parts


def _tendon(foot, foot_rot, pts, radius, squash):
    """A tendon along ``pts`` (leg frame): the part above the joint line stays with the leg, the part below
    follows the foot, starting where the leg part ends so that the tendon bends at the ankle."""
    split = next((i for i, p in enumerate(pts) if p[2] <= 0), len(pts))
    leg_pts = pts[: split + 1]
    foot_pts = pts[split:]
    if len(foot_pts) > 1:
        first = np.asarray(foot_pts[0]) - PIVOT
        foot_pts = [tuple(foot_rot.T @ first + PIVOT)] + foot_pts[1:]

    def sdf(P: Points) -> np.ndarray:
        out = swept(P, leg_pts, [radius] * len(leg_pts), 2, squash) if len(leg_pts) > 1 else None
        if len(foot_pts) > 1:
            low = swept(foot(P), foot_pts, [radius] * len(foot_pts), 2, squash)
            out = low if out is None else np.minimum(out, low)
        return out

    return sdf


def _box(pts, radius):
    a = np.asarray(pts, float)
    return tuple(a.min(0) - radius - 12), tuple(a.max(0) + radius + 12)
