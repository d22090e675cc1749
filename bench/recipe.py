"""Which training recipe gets the most out of a small budget? Variants of a preset trained on an inner split,
scored on exams that the reported cross-validation's test fold never sees.

    python bench/recipe.py --dataset DIR --out RUNS [--variants cpu,poly,...] [--seeds 0] [--method baseline]
        [--outer-folds 5|demo] [--outer-fold 0] [--inner-test 0.25]

The inner split: the training exams of outer fold ``--outer-fold`` of the ``--outer-folds``-fold split that
`spar crossval` makes (identical exams grouped), divided again into inner training and inner test exams. A
recipe chosen here has never seen the outer fold's test exams, so that fold's result in the full
cross-validation is an unbiased estimate (the other folds' test exams include inner test exams).

One run folder per (variant, seed) under RUNS, resumable; a table of exam-mean Dice, MSSD, exams with a
shifted structure and wall time per variant is printed and written to RUNS/recipe.csv. ``--outer-folds demo``
(the phantom ankle cohort): the outer split is the demo's hold-out, and the ``demo_*`` variants train as
``spar demo`` does; ``--check-degraded`` scores each run's inner test exams degraded as the cohort's own degraded
exams are (very low SNR, motion ghosts), which the demo's hold-out tests. With ``--check`` each
run's inner test exams are also predicted under the robustness check (``spar study robustness`` on the run:
field-of-view shifts of ±15, ±30, ±45 mm, γ 0.5 and 2, a coarser acquisition × 2), and the table gains
its figures: the exam-mean Dice at ±45 mm and at γ 0.5 / 2, the worst of the shifts, and how many (exam,
condition) pairs have a shifted structure. ``--rescore`` drops the checks' results and the fold's label facts
first (after a change of the post-processing: the models are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from pathlib import Path

import pandas as pd

from spar_core.data.augment import AugmentConfig
from spar_core.data.corruptions import severities_of
from spar_core.data.dataset import load_dataset
from spar_core.data.splits import Split, hold_out
from spar_core.pipeline.crossval import run_crossval
from spar_core.pipeline.demo import DEMO_AE_STEPS_PER_EPOCH, DEMO_STEPS_PER_EPOCH, demo_split
from spar_core.pipeline.experiment import dataset_splits, experiment_summary, run_summary
from spar_core.pipeline.shard import Shard
from spar_core.pipeline.robustness import CLEAN, run_robustness
from spar_core.postprocessing.folds import fold_label_facts
from spar_core.postprocessing.settings import CHAIN_PRIORS, DEFAULT_CHAIN_PRIOR, PostprocessSettings, check_resume
from spar_core.layout.run_folder import RunFolder
from spar_core.layout.study_folder import StudyFolder
from spar_core.training.device import pick_device
from spar_core.training.presets import Preset, get_preset

# name -> (preset, TrainConfig overrides, UNet overrides); no latent snapshots (the baseline then needs no
# shape auto-encoder, and a variant's wall time is its segmenter's)
POLY = {"lr_schedule": "poly", "snapshot_epochs": ()}
DEMO = {**POLY, "steps_per_epoch": DEMO_STEPS_PER_EPOCH, "ae_steps_per_epoch": DEMO_AE_STEPS_PER_EPOCH}
INTENSITY = AugmentConfig(gamma=0.5, contrast=0.25)
WIDE = AugmentConfig(scale=0.25, rotation_deg=15.0, shift=0.3)
WIDE_INT = dataclasses.replace(WIDE, gamma=0.5, contrast=0.25, brightness=0.25, low_res=1.0, blur=1.0, noise=0.05,
                               p_intensity=0.2)
# (corruptions, severities): field-of-view shifts of ±15, ±30, ±45 mm; γ 0.5 and 2 and a coarser acquisition × 2
CHECKS = ((("fov_shift",), (0, 2, 3, 4)), (("gamma", "low_res"), (0, 2)))
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "cpu": ("cpu", {"snapshot_epochs": ()}, {}),  # the cpu preset as it is (= narrow_int)
    "poly": ("cpu", POLY, {}),
    "cosine": ("cpu", {**POLY, "lr_schedule": "cosine"}, {}),
    "poly_1500": ("cpu", {**POLY, "steps_per_epoch": 125}, {}),
    "poly_1500_shift02": ("cpu", {**POLY, "steps_per_epoch": 125,
                                  "augment": AugmentConfig(scale=0.15, rotation_deg=10.0, shift=0.2)}, {}),
    "poly_1500_lr3": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3}, {}),  # = lr3_1500
    "poly_1500_e05": ("cpu", {**POLY, "steps_per_epoch": 125, "empty_fraction": 0.5}, {}),
    "lr3_1500_int": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3, "augment": INTENSITY}, {}),
    "lr3_3000": ("cpu", {**POLY, "steps_per_epoch": 250, "lr": 3e-3}, {}),
    "lr3_3000_w8": ("cpu", {**POLY, "steps_per_epoch": 250, "lr": 3e-3}, {"base_channels": 8}),
    "lr3_3000_s64": ("cpu", {**POLY, "steps_per_epoch": 250, "lr": 3e-3, "size": 64}, {}),
    "lr3_1500_ctx1": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3}, {"context": 1, "context_stride": 4}),
    "lr3_1500_ctx2": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3}, {"context": 2, "context_stride": 4}),
    "lr3_1500_ctx2mm": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3}, {}),  # = the cpu preset now
    "lr3_1500_ctx2mm_s128": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 3e-3, "size": 128}, {}),
    "lr5_1500": ("cpu", {**POLY, "steps_per_epoch": 125, "lr": 5e-3}, {}),
    "ctx_noaug": ("cpu", {**POLY, "augment": None}, {}),  # the cpu preset (2.5D) without the random affine
    "ctx_aug05": ("cpu", {**POLY, "augment": AugmentConfig(p=0.5)}, {}),  # half the slices left as they are
    "ctx_e005": ("cpu", {**POLY, "empty_fraction": 0.05}, {}),
    "ctx_lr5": ("cpu", {**POLY, "lr": 5e-3}, {}),
    "ctx_3000": ("cpu", {**POLY, "steps_per_epoch": 250}, {}),  # twice the updates
    "ctx_s192": ("cpu", {**POLY, "size": 192}, {}),  # 1.17 mm pixels on the spine: four times the pixels
    "ctx_w24": ("cpu", POLY, {"base_channels": 24}),  # twice the UNet's width
    "ctx_b16": ("cpu", {**POLY, "batch_size": 16, "steps_per_epoch": 83}, {}),  # ≈ 1,000 updates of 16
    # position carries no information: shifts of ±30 % of the side (one end of the row cut off), zoom ±25 %
    "narrow": ("cpu", {"snapshot_epochs": (), "augment": AugmentConfig()}, {}),  # spatial only (cpu until narrow_int)
    "wide": ("cpu", {**POLY, "augment": WIDE}, {}),
    "wide_int": ("cpu", {**POLY, "augment": WIDE_INT}, {}),  # + nnU-Net's intensity transforms (= cpu_fov)
    "wide_int_3000": ("cpu", {**POLY, "augment": WIDE_INT, "steps_per_epoch": 250}, {}),  # twice the updates
    # the narrow spatial range with nnU-Net's intensity transforms (another contrast, same placement): the cpu preset
    "narrow_int": ("cpu", {**POLY, "augment": dataclasses.replace(WIDE_INT, scale=0.1, rotation_deg=10.0,
                                                                  shift=0.1)}, {}),
    # the demo (phantoms, --outer-folds demo): 12 epochs of DEMO_STEPS_PER_EPOCH updates, as `spar demo` trains
    "demo_int": ("cpu", {**DEMO, "augment": dataclasses.replace(WIDE_INT, scale=0.1, rotation_deg=10.0, shift=0.1)},
                 {}),  # the cpu preset's augmentation (the demo until now)
    "demo_spatial": ("cpu", {**DEMO, "augment": AugmentConfig()}, {}),  # the random affine alone
    "demo_spatial_400": ("cpu", {**DEMO, "augment": AugmentConfig(), "epochs": 10}, {}),  # 400 updates
    "demo_spatial_600": ("cpu", {**DEMO, "augment": AugmentConfig(), "epochs": 15}, {}),  # 600 updates
    "demo_spatial_lr5": ("cpu", {**DEMO, "augment": AugmentConfig(), "lr": 5e-3}, {}),
    "demo_int_lr5": ("cpu", {**DEMO, "augment": dataclasses.replace(WIDE_INT, scale=0.1, rotation_deg=10.0, shift=0.1),
                             "lr": 5e-3}, {}),
}


def variant_preset(name: str, seed: int) -> Preset:
    base, overrides, unet = VARIANTS[name]
    preset = get_preset(base)
    size = overrides.get("size", preset.train.size)
    train = dataclasses.replace(preset.train, **{k: v for k, v in overrides.items() if k != "size"}, seed=seed)
    preset = dataclasses.replace(preset.with_size(size), segmenter=dataclasses.replace(preset.segmenter, **unet))
    return dataclasses.replace(preset, train=dataclasses.replace(train, size=size))


def inner_split(dataset, outer_folds: str, outer_fold: int, test_fraction: float) -> Split:
    """The inner split of the outer fold's training exams; ``outer_folds`` "demo": the demo's hold-out (its test
    exams never seen here), split again."""
    splits, twins = dataset_splits(dataset, "2" if outer_folds == "demo" else outer_folds, seed=0)
    outer = (demo_split(dataset.root, [c.case_id for c in dataset.cases], seed=0)[0] if outer_folds == "demo"
             else splits[outer_fold])
    inner = hold_out(outer.train, test_fraction=test_fraction, seed=1, groups=twins.groups())[0]
    return Split(fold=0, train=inner.train, test=inner.test)


def summarise(metrics: pd.DataFrame) -> dict:
    post = metrics[metrics["postprocessed"]]
    exams = post.groupby("case").agg(dice=("dice", "mean"), mssd=("mssd_mm", "mean"),
                                     shifted=("shifted_to", lambda s: s.notna().any()))
    return {"dice_pct": 100 * exams["dice"].mean(), "dice_min_pct": 100 * exams["dice"].min(),
            "mssd_mm": exams["mssd"].mean(), "shifted_exams": int(exams["shifted"].sum()), "n_exams": len(exams)}


def check(run: RunFolder, method: str, rescore: bool) -> dict:
    """The robustness check's figures for one run (its inner test exams)."""
    folder = StudyFolder.robustness(run)
    if rescore:  # the post-processing changed: its facts found again, every condition scored again
        run.label_facts_path(0).unlink(missing_ok=True)
        fold_label_facts(load_dataset(run.read_config()["dataset"]), run.read_split(0), run)
        shutil.rmtree(folder.root, ignore_errors=True)
    for kinds, severities in CHECKS:
        run_robustness(run, kinds, severities, [method])
    units = [folder.unit(0, kind, severity) for kinds, severities in CHECKS for kind in kinds
             for severity in severities_of(kind, severities) if severity]
    rows = pd.concat([pd.read_csv(p, dtype={"case": str}) for p in [folder.unit(0, CLEAN, 0), *units]],
                     ignore_index=True)
    rows = rows[rows["postprocessed"]] if "postprocessed" in rows else rows
    exams = rows.groupby(["corruption", "severity", "case"]).agg(
        dice=("dice", "mean"), shifted=("shifted_to", lambda v: v.notna().any() and (v.astype(str) != "").any()))
    cond = exams.groupby(["corruption", "severity"]).agg(dice=("dice", "mean"), shifted=("shifted", "sum"))
    fov = cond.loc["fov_shift"]
    return {"clean": 100 * cond.loc[("clean", 0), "dice"], "fov_m45": 100 * cond.loc[("fov_shift", -4), "dice"], "fov_p45": 100 * cond.loc[("fov_shift", 4), "dice"],
            "fov_worst": 100 * fov["dice"].min(), "fov_shifted": int(fov["shifted"].sum()),
            "g05": 100 * cond.loc[("gamma", -2), "dice"], "g2": 100 * cond.loc[("gamma", 2), "dice"],
            "lowres2": 100 * cond.loc[("low_res", 2), "dice"]}


# The demo's degraded exams, as the robustness study makes them: very low SNR (SNR 5) and motion ghosts (7 mm)
DEGRADED = ("noise", "ghosting")
DEGRADED_SEVERITY = 3


def check_degraded(run: RunFolder, method: str) -> dict:
    """The inner test exams clean and degraded as the phantoms' own degraded exams are (``DEGRADED``): exam-mean
    Dice of each, and their mean (what the demo's hold-out, which tests its degraded exams, asks of a recipe)."""
    folder = StudyFolder.robustness(run)
    run_robustness(run, DEGRADED, (0, DEGRADED_SEVERITY), [method])
    paths = [folder.unit(0, CLEAN, 0), *(folder.unit(0, kind, DEGRADED_SEVERITY) for kind in DEGRADED)]
    rows = pd.concat([pd.read_csv(p, dtype={"case": str}) for p in paths], ignore_index=True)
    rows = rows[rows["postprocessed"]] if "postprocessed" in rows else rows
    dice = 100 * rows.groupby(["corruption", "case"])["dice"].mean().groupby("corruption").mean()
    return {"clean": dice[CLEAN], **{kind: dice[kind] for kind in DEGRADED},
            "clean_and_degraded": float(dice[[CLEAN, *DEGRADED]].mean())}


def outer(dataset, args: argparse.Namespace) -> None:
    """Each variant and seed cross-validated on the outer folds, as `spar crossval` would with that preset."""
    splits, twins = dataset_splits(dataset, args.outer_folds, seed=0)
    settings = PostprocessSettings(chain_prior=args.chain_prior)
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = RunFolder(args.out / f"{name}_seed{seed}_outer")
            preset = variant_preset(name, seed)
            if not run.exists():
                run.write_config({**run_summary(dataset, splits, [args.method], preset, args.outer_folds, settings,
                                                twins), "variant": name})
            start = time.perf_counter()
            run_crossval(dataset, splits, [args.method], preset, run, device=pick_device(), settings=settings,
                         shard=Shard.parse(args.shard))
            print(f"{name} seed {seed}: shard {args.shard} in {time.perf_counter() - start:.0f} s; {run.root}",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--method", default="baseline")
    parser.add_argument("--outer-folds", default="5")
    parser.add_argument("--outer-fold", type=int, default=0)
    parser.add_argument("--inner-test", type=float, default=0.25)
    parser.add_argument("--check", action="store_true", help="the robustness check on each run's inner test exams")
    parser.add_argument("--check-degraded", action="store_true",
                        help="each run's inner test exams degraded as the phantoms' degraded exams are (noise, "
                             "ghosting at severity 3): the demo's criterion")
    parser.add_argument("--rescore", action="store_true", help="drop the checks' results first")
    parser.add_argument("--outer", action="store_true",
                        help="train each variant on every outer fold instead (all exams held out once): a run that "
                             "`spar report` and `spar study robustness` read; no --check")
    parser.add_argument("--shard", default="0/1", help="with --outer: i/n, this process's share of the folds")
    parser.add_argument("--chain-prior", choices=CHAIN_PRIORS, default=DEFAULT_CHAIN_PRIOR,
                        help="what orders the vertebrae beside the votes (recorded in each run; --rescore after a "
                             "change)")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    if args.outer:
        outer(dataset, args)
        return
    split = inner_split(dataset, args.outer_folds, args.outer_fold, args.inner_test)
    print(f"inner split: {len(split.train)} training exams, test {', '.join(split.test)}", flush=True)
    device, rows = pick_device(), []
    for name in args.variants.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = RunFolder(args.out / f"{name}_seed{seed}")
            preset = variant_preset(name, seed)
            if not run.exists():
                run.write_config({"kind": "recipe", "variant": name,
                                  **experiment_summary(dataset, preset, f"inner split of fold {args.outer_fold}")})
            # the check post-processes as run.json says (no mode recorded: the paper's steps), with the prior asked;
            # a run recorded with another prior is refused as spar crossval refuses it (--rescore after a change)
            settings = PostprocessSettings(chain_prior=args.chain_prior)
            if not args.rescore:
                check_resume({"postprocess": {"mode": settings.mode, **run.read_config().get("postprocess", {})}},
                             settings, str(run.config_path))
            run.update_config(postprocess={**run.read_config().get("postprocess", {}), "chain_prior": args.chain_prior})
            done = run.unit_metrics_path(0, args.method).is_file()
            start = time.perf_counter()
            metrics = run_crossval(dataset, [split], [args.method], preset, run, device=device, settings=settings)
            seconds = float("nan") if done else time.perf_counter() - start
            figures = check(run, args.method, args.rescore) if args.check else {}
            if args.check_degraded:
                figures.update(check_degraded(run, args.method))
            rows.append({"variant": name, "seed": seed, **summarise(metrics), "seconds": seconds, **figures})
            print(pd.DataFrame(rows[-1:]).round(2).to_string(index=False, header=len(rows) == 1), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "recipe.csv", index=False)
    print(table.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
