"""A right pediatric shoulder: humerus and scapula (labelled), clavicle, deltoid, rotator cuff, tendons.

Adult-size anatomical frame (mm): x lateral, y anterior, z superior, origin at the centre of the humeral
head. The humerus is made first; the glenoid is cut by the head's surface grown by the joint gap, so its
shallow concavity always matches the head — also when the head is small, deformed or subluxed (OBPP).
"""

from __future__ import annotations

import numpy as np

from spar_core.data.phantoms.scene import Bone, Joint, Part, Scene
from spar_core.data.phantoms.shapes import (
    Points,
    SmoothNoise,
    capsule,
    elliptic_cylinder,
    ellipsoid,
    rotation,
    round_box,
    slab,
    smooth_intersection,
    smooth_subtraction,
    smooth_union,
    swept,
    to_local,
)

LABELS = {"background": 0, "humerus": 1, "scapula": 2}
DEFAULT_SUBJECTS = 15
# Sequelae of obstetric brachial plexus palsy, the paper's shoulder cohort.
PATHOLOGIES = ("glenoid_retroversion", "posterior_subluxation", "humeral_head_hypoplasia")
EXTENT = ((-68.0, -60.0, -62.0), (60.0, 60.0, 52.0))
BLADE_ANGLE = 35.0  # degrees between the scapular plane and the coronal plane


def build(rng: np.random.Generator, age: float, scale: float, pathology: str | None) -> Scene:
    """The shoulder of one subject; ``rng`` draws every shape and pose variation (±10 % sizes, a few degrees)."""

    def vary(v, rel=0.1):
        return tuple(np.asarray(v, float) * rng.uniform(1 - rel, 1 + rel, size=len(v)))

    def move(c, mm=1.5):
        return tuple(np.asarray(c, float) + rng.uniform(-mm, mm, size=3))

    grown = float(np.clip((age - 4) / 13, 0, 1))

    # --- humerus (arm frame: rotated about the vertical through the head centre) -------------------------
    head_r = np.asarray(vary((23.0, 22.0, 24.0), 0.06))
    head_flat = 1.0
    subluxation = np.zeros(3)
    version = rng.uniform(-8, 4)  # glenoid version (degrees, negative = retroverted)
    if pathology == "glenoid_retroversion":
        head_r, head_flat, version = head_r * 0.9, 0.9, rng.uniform(-24, -18)
    elif pathology == "posterior_subluxation":
        head_r, head_flat, version = head_r * 0.82, 0.8, rng.uniform(-32, -25)
        subluxation = np.array([-2.0, -rng.uniform(7, 10), 0.0])
    elif pathology == "humeral_head_hypoplasia":
        head_r, head_flat, version = head_r * 0.78, 0.75, rng.uniform(-14, -8)
    arm = rotation(ry=rng.uniform(-6, 6), rz=rng.uniform(-25, 25)).astype(np.float32)
    gt_c, gt_r = move((16.0, 5.0, 6.0)), vary((11.0, 13.0, 13.0))
    lt_c, lt_r = move((4.0, 19.0, -5.0)), vary((7.0, 7.0, 10.0))
    meta_r = vary((20.0, 19.0, 22.0))
    shaft_r = rng.uniform(11.5, 13.5)

    def arm_frame(P: Points) -> Points:
        return to_local(P, tuple(subluxation), arm)

    def humerus(P: Points) -> np.ndarray:
        Q = arm_frame(P)
        # The articular side (medial) is flattened in the dysplastic heads.
        H = (np.where(Q[0] < 0, Q[0] / head_flat, Q[0]), Q[1], Q[2])
        out = ellipsoid(H, (0, 0, 0), head_r)
        out = smooth_union(out, ellipsoid(Q, (8, 0, -14), meta_r), 6)
        out = smooth_union(out, ellipsoid(Q, gt_c, gt_r), 5)
        out = smooth_union(out, ellipsoid(Q, lt_c, lt_r), 4)
        out = smooth_union(out, capsule(Q, (8, -1, -20), (10, -2, -180), shaft_r + 3, shaft_r - 1), 12)
        return smooth_subtraction(out, capsule(Q, (12, 21, 12), (13, 20, -50), 3.5), 2)  # bicipital groove

    apex = move((2.0, -3.0, -3.0), 1)
    tent = rng.uniform(0.35, 0.55)

    def humeral_physis(P: Points) -> np.ndarray:
        X, Y, Z = arm_frame(P)
        r = np.sqrt((X - apex[0]) ** 2 + (Y - apex[1]) ** 2)
        return (apex[2] - tent * r) - Z  # a tent under the head, positive on the shaft side

    # --- scapula: glenoid, neck and coracoid follow the glenoid version; blade and spine are pieces -------
    gap = rng.uniform(1.5, 3.0)
    glen_rot = rotation(rz=version)  # about the head's vertical: the glenoid faces +x when version = 0
    glen = np.array([-head_r[0] * head_flat - 7.0, 0.0, -2.0])  # overlaps the head: carved into a socket
    glen_r = vary((9.0, 14.0, 20.0))
    theta = np.radians(BLADE_ANGLE + rng.uniform(-6, 6))
    d = np.array([-np.cos(theta), -np.sin(theta), 0.0])  # along the blade, medially and backwards
    n = np.array([-np.sin(theta), np.cos(theta), 0.0])  # blade normal, anteromedial (costal side)
    blade_o = np.array([-44.0, -4.0, 0.0])
    blade_t = rng.uniform(2.2, 3.5)
    spine_pts = [blade_o + 95 * d - 14 * n + [0, 0, 10], (-30, -30, 26), (-5, -29, 31),
                 move((14.0, -14.0, 32.0)), move((21.0, 8.0, 29.0))]
    spine_r = vary((8.0, 12.0, 11.0, 11.0, 10.0))
    cora_pts = [(-33, 4, 16), move((-30.0, 18.0, 26.0)), move((-13.0, 36.0, 18.0))]

    def glenoid(P: Points) -> np.ndarray:
        G = to_local(P, (0, 0, 0), glen_rot)
        out = ellipsoid(G, glen, glen_r)
        out = smooth_union(out, capsule(G, glen - [3, 0, 0], (-48, -6, -1), 11, 8), 6)  # neck
        return smooth_union(out, swept(G, cora_pts, (6.5, 6.0, 5.5), 3), 4)  # coracoid process

    def blade(P: Points) -> np.ndarray:
        u = (P[0] - blade_o[0]) * d[0] + (P[1] - blade_o[1]) * d[1]
        v = P[2] - blade_o[2]
        plate = slab(P, blade_o, n, blade_t, curvature=1 / 300)
        lateral = -0.861 * u - 0.509 * (v + 20)  # the lateral border, glenoid to inferior angle
        outline = np.maximum(np.maximum(-u - 2, u - 115), np.maximum(np.maximum(v - 22, -v - 140), lateral))
        out = smooth_intersection(plate, outline, 2)
        border = capsule(P, blade_o + [0, 0, -16], blade_o + 65 * d + [0, 0, -120], 5, 3)  # thick lateral border
        return smooth_union(out, border, 4)

    def spine(P: Points) -> np.ndarray:  # spine of the scapula arching laterally into the acromion
        return swept(P, spine_pts, spine_r, 4, squash=(1, 1, 0.45))

    blade_box = _plane_box(blade_o, d, n, (-6, 120), (-145, 26), (-6, 50))
    scapula = (glenoid, ((-62, -35, -25), (16, 46, 36)),
               ((blade, blade_box, 8.0), (spine, _polyline_box(spine_pts, 12), 5.0)))

    clav_pts = [move((22.0, 16.0, 34.0)), (-20, 26, 40), (-95, 34, 38)]

    def clavicle(P: Points) -> np.ndarray:
        return swept(P, clav_pts, (8.5, 9.0, 9.5), 4, squash=(1, 1, 0.8))

    cortex = 0.9 + 0.7 * grown
    plate_w = _physis_width(rng, age)
    shape_noise = lambda: SmoothNoise(rng, rng.uniform(0.5, 1.5) * scale, (25, 60))  # noqa: E731
    bones = [
        Bone("humerus", 1, humerus, ((-30, -40, -200), (38, 36, 30)), (), shape_noise(), cortex,
             humeral_physis, plate_w),
        Bone("scapula", 2, scapula[0], scapula[1], (("humerus", gap),), shape_noise(), cortex, pieces=scapula[2]),
        Bone("clavicle", 0, clavicle, _polyline_box(clav_pts, 10), (("scapula", 3.0),), shape_noise(), cortex),
    ]
    cart = 0.8 + 0.9 * (1 - grown)
    joints = [Joint("humerus", "scapula", max(cart, gap / 2 + 0.1), rng.uniform(1.5, 3.5)),
              Joint("scapula", "clavicle", 1.2, 0.5)]
    pose = rotation(rx=rng.uniform(-5, 5), ry=rng.uniform(-5, 5), rz=rng.uniform(-10, 10))
    parts = _soft_tissue(rng, arm_frame, blade_o, d, n)
    return Scene(bones, parts, joints, scale, pose, fat_thickness=rng.uniform(3.0, 7.0),
                 body_noise=SmoothNoise(rng, 2.5 * scale, (40, 100)))


def _physis_width(rng: np.random.Generator, age: float) -> float:
    """Proximal humeral physis (mm): 1.4–2 mm in children, thinning from 13 years, closed at 15.5–17."""
    closure = rng.uniform(15.5, 17.0)
    return float(rng.uniform(1.4, 2.0) * np.clip((closure - age) / (closure - 13.0), 0, 1))


def _soft_tissue(rng: np.random.Generator, arm_frame, blade_o, d, n) -> list[Part]:
    cap_r = tuple(np.asarray((68.0, 62.0, 56.0)) * rng.uniform(0.92, 1.08, 3))
    arm_r = (rng.uniform(38, 44), rng.uniform(40, 46))

    def body(P: Points) -> np.ndarray:
        cap = ellipsoid(P, (-12, -2, -8), cap_r)
        arm = elliptic_cylinder(P, (9, -2, 0), arm_r, (-400, -10))
        trunk = round_box(P, (-125, -2, -90), (85, 82, 150), 40)
        return smooth_union(smooth_union(cap, arm, 20), trunk, 30)

    def deltoid(P: Points) -> np.ndarray:
        Q = arm_frame(P)
        shell = np.maximum(ellipsoid(Q, (5, -2, -14), (46, 48, 52)), -ellipsoid(Q, (2, -1, -8), (27, 28, 34)))
        shell = np.maximum(shell, -Q[0] - 16 + 0.25 * np.abs(Q[1]))  # wraps front, side and back, not medially
        return np.minimum(shell, elliptic_cylinder(Q, (9, -2, 0), (30, 32), (-400, -45)))

    frame = np.stack([d, [0, 0, 1.0], n], axis=1)  # columns: along the blade, up, blade normal

    def on_blade(u, v, w):
        return tuple(blade_o + u * d + v * np.array([0, 0, 1.0]) + w * n)

    def cuff(P: Points) -> np.ndarray:  # lens-shaped bellies in the fossae: behind and in front of the blade
        infraspinatus = ellipsoid(P, on_blade(50, -38, -13), (75, 62, 12), frame)
        subscapularis = ellipsoid(P, on_blade(50, -38, 14), (75, 62, 13), frame)
        return np.minimum(infraspinatus, subscapularis)

    def others(P: Points) -> np.ndarray:
        out = capsule(P, (-120, -22, 34), (-30, -12, 31), 15, 11)  # supraspinatus
        out = np.minimum(out, capsule(P, (-14, 34, 14), (-4, 26, -120), 8, 10))  # coracobrachialis, biceps
        out = np.minimum(out, ellipsoid(P, (-60, 46, -30), (70, 15, 48), rotation(rz=-12)))  # pectoralis major
        out = np.minimum(out, ellipsoid(P, (-45, -50, -60), (45, 14, 40), rotation(rz=20)))  # latissimus, teres
        out = np.minimum(out, round_box(P, (-150, 0, -60), (50, 90, 150), 20))  # chest wall
        out = np.minimum(out, ellipsoid(P, (-60, -22, 50), (70, 40, 13)))  # trapezius
        return np.maximum(out, -ellipsoid(P, (-52, 4, -40), (24, 24, 38)))  # axillary fat pad

    def vessels(P: Points) -> np.ndarray:  # axillary artery and vein: flow voids in the axillary fat
        out = capsule(P, (-90, 12, -10), (-45, 8, -40), 3.5)
        out = np.minimum(out, capsule(P, (-45, 8, -40), (-20, 6, -130), 3.0))
        return np.minimum(out, capsule(P, (-90, 18, -16), (-22, 12, -130), 4.5))

    def tendons(P: Points) -> np.ndarray:
        Q = arm_frame(P)
        out = capsule(P, (-30, -12, 31), (14, 4, 24), 5, 4, squash=(1, 1, 0.6))  # supraspinatus
        out = np.minimum(out, capsule(P, (-36, -30, 2), (10, -20, 6), 5, 4, squash=(1, 0.6, 1)))  # infraspinatus
        out = np.minimum(out, capsule(P, (-34, 16, -6), (4, 22, -4), 6, 4, squash=(1, 0.6, 1)))  # subscapularis
        biceps = swept(Q, [(-24, 2, 22), (-6, 14, 26), (12, 22, 8), (13, 22, -40), (12, 22, -120)], [2.6] * 5, 2)
        return np.minimum(out, biceps)

    return [
        Part("body", body, ((-220, -130, -300), (120, 130, 80))),
        Part("muscle", deltoid, ((-50, -60, -300), (60, 60, 45))),
        Part("muscle", cuff, _plane_box(blade_o, d, n, (-30, 130), (-105, 30), (-30, 32))),
        Part("muscle", others, ((-220, -110, -220), (20, 70, 70))),
        Part("tendon", tendons, ((-50, -40, -150), (30, 40, 45))),
        Part("tendon", vessels, ((-100, 0, -140), (-10, 30, 0))),
    ]


def _plane_box(o, d, n, u, v, w):
    """Axis-aligned box of the points o + u·d + v·z + w·n for u, v, w in the given ranges."""
    corners = np.array([o + a * d + b * np.array([0, 0, 1.0]) + c * n for a in u for b in v for c in w])
    return tuple(corners.min(0)), tuple(corners.max(0))


def _polyline_box(pts, radius):
    a = np.asarray([np.asarray(p, float) for p in pts])
    return tuple(a.min(0) - radius), tuple(a.max(0) + radius)
