"""Built-in synthetic pediatric MR exams ("phantoms") of the ankle and the shoulder.

Users who cannot download or share pediatric data get a realistic default: bones built as smooth
signed-distance shapes (subject-specific, growing with age, with growth plates and pathologies), rendered
into MR-like 2D multi-slice images (partial volume, bias field, Gibbs ringing, Rician noise, outliers) and
written in the Medical Segmentation Decathlon / nnU-Net layout.

    >>> from spar_core.data.phantoms import generate_cohort
    >>> generate_cohort("ankle", "data/phantom_ankle")        # 17 exams, ≈ 15 s on two cores

Modules, in build order: :mod:`.shapes` (distance primitives, smooth noise), :mod:`.grid` (voxel grids),
:mod:`.scene` (structures → tissue classes and labels), :mod:`.ankle` and :mod:`.shoulder` (anatomy),
:mod:`.appearance` (MR simulation), :mod:`.cohort` (subjects, dataset on disk).
"""

from spar_core.data.phantoms.cohort import (
    ANATOMIES,
    Exam,
    SubjectPlan,
    generate_cohort,
    plan_cohort,
    plan_subject,
    simulate_exam,
)
from spar_core.data.phantoms.scene import Tissue

__all__ = [
    "ANATOMIES",
    "Exam",
    "SubjectPlan",
    "Tissue",
    "generate_cohort",
    "plan_cohort",
    "plan_subject",
    "simulate_exam",
]
