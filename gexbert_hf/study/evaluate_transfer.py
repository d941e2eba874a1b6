"""Transfer checks of `gexbert adapt` (reports/adapt/<check>/): does a checkpoint adapted to a cohort from another
platform beat KNN and SoftImpute tuned on that cohort?

A check takes the TEST split of a committed folder (samples the checkpoint never trained on), applies a seeded,
simulated platform shift (per-gene offsets and scales, a detection floor that zeroes low values, noise; for the mRNA
check also a compressed dynamic range, a share of genes the platform lacks and scattered missing cells), then splits
those shifted samples by sample into an adapt part and an eval part: the checkpoint is adapted, and the baselines are
tuned and fitted, on the adapt part only; every method is scored on the same masks of the eval part. A recipe search
(several recipes, each adapted on 80% of the adapt part and scored on the other 20%) picks the recipe; the eval part
is never used to choose anything.

Run: `python -m gexbert_hf.study.evaluate_transfer --check tcga31_mirna_shift --output reports/adapt/...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.readers import load_split, read_expression
from ..loading import load_model_and_tokenizer
from ..training.adapt import AdaptationRecipe, adapt_model, refit_level_statistics
from .baselines import IMPUTER_GRIDS, edge_note
from .benchmark_verdicts import mean_finite, outcome
from .imputation_benchmark import prepare_imputers, run_scenario
from .reports import atomic_write, bar_plot, fmt, markdown_table, write_json

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BASELINES = ("column mean", "KNN", "SoftImpute")
ADAPT_SHARE = 0.6  # of the shifted test samples: adapted and tuned on; the rest is scored


@dataclasses.dataclass
class Check:
    model: str
    folder: str
    kind: str  # "log" (log2 RPM) or "zscore"
    gene_share: float = 1.0  # genes the simulated platform measures
    scattered_nan: float = 0.0  # cells missing at random in the shifted cohort


CHECKS = {
    "tcga31_mirna_shift": Check("tcga31-mirna", "tcga31_mirna_log2rpm", "log"),
    "tcga13_mrna_shift": Check("tcga13-mrna", "tcga13_cbioportal_zscore", "zscore", gene_share=0.7,
                               scattered_nan=0.03),
}
RECIPES = {
    "lr2e-4 all g256": AdaptationRecipe(learning_rate=2e-4, max_genes=256),
    "lr5e-4 all g256": AdaptationRecipe(learning_rate=5e-4, max_genes=256),
    "lr2e-4 top g256": AdaptationRecipe(learning_rate=2e-4, trainable="top", max_genes=256),
    "lr1e-3 heads g256": AdaptationRecipe(learning_rate=1e-3, trainable="heads", max_genes=256),
    "lr2e-4 all full": AdaptationRecipe(learning_rate=2e-4, max_genes=None),
    "lr5e-4 all g128 b16": AdaptationRecipe(learning_rate=5e-4, max_genes=128, batch_size=16),
}


def simulate_platform_shift(frame: pd.DataFrame, check: Check, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The cohort as another platform would have measured it (seeded), and the shift's parameters."""
    rng = np.random.default_rng([seed, 2026])
    values = frame.to_numpy(dtype=np.float64).copy()
    n_genes = values.shape[1]
    offset = rng.normal(0.0, 0.7 if check.kind == "log" else 0.3, n_genes)
    slope = np.exp(rng.normal(0.0, 0.25, n_genes))
    noise = 0.35 if check.kind == "log" else 0.3
    per_sample = rng.normal(0.0, 0.3, (values.shape[0], 1))  # library size / labelling efficiency per sample
    shifted = values * slope + offset + per_sample + rng.normal(0.0, noise, values.shape)
    if check.kind == "log":
        floor = float(np.nanpercentile(shifted, 55))  # a detection floor: everything below reads 0
        shifted = np.where(shifted < floor, 0.0, shifted)
    else:
        shifted = 2.0 * np.tanh(shifted / 2.0)  # a compressed dynamic range (saturating probes)
        floor = float(np.nanpercentile(shifted, 15))
        shifted = np.where(shifted < floor, floor, shifted)  # the floor as a flat lowest reading
    kept = np.sort(rng.choice(n_genes, size=int(round(check.gene_share * n_genes)), replace=False))
    if check.scattered_nan:
        shifted[rng.random(shifted.shape) < check.scattered_nan] = np.nan
    out = pd.DataFrame(shifted, index=frame.index, columns=frame.columns).iloc[:, kept]
    record = {"offset_sd": 0.7 if check.kind == "log" else 0.3, "log_scale_sd": 0.25, "noise_sd": noise,
              "per_sample_offset_sd": 0.3, "detection_floor": floor,
              "floor_share": float(np.mean(shifted <= floor) if check.kind != "log" else np.mean(shifted == 0.0)),
              "compressed": check.kind != "log", "genes_measured": len(kept), "genes_total": n_genes,
              "scattered_nan": check.scattered_nan, "seed": seed}
    return out, record


def split_by_sample(frame: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng([seed, 7]).permutation(len(frame))
    cut = int(round(share * len(frame)))
    return frame.iloc[np.sort(order[:cut])], frame.iloc[np.sort(order[cut:])]


def score_variants(shipped, variants: dict, part_train: pd.DataFrame, part_eval: pd.DataFrame, rates: list[int],
                   seeds: list[int], baselines: bool = True, max_rows: int = 300) -> dict:
    """Per rate: every GexBERT variant (name -> (model, tokenizer)) and the baselines tuned on `part_train`, on the
    same MCAR masks of `part_eval`."""
    model, tokenizer = shipped
    validation = np.zeros(len(part_train), dtype=bool)
    validation[np.random.default_rng(11).permutation(len(part_train))[: max(10, len(part_train) // 5)]] = True
    methods = ("GexBERT", *BASELINES) if baselines else ("GexBERT",)
    imputers, center, scale, header = prepare_imputers(
        model, tokenizer, part_train, validation, part_eval, max_test_rows=max_rows, chunk=1024,
        knn_grid=IMPUTER_GRIDS["KNN"], soft_grid=IMPUTER_GRIDS["SoftImpute"], methods=methods)
    results = {"header": header, "per_rate": {}}
    for rate in rates:
        scenario = f"MCAR {rate}%"
        entry = run_scenario(imputers, scenario, seeds, methods, center, scale)
        entry["methods"]["GexBERT shipped"] = entry["methods"].pop("GexBERT")
        for name, (variant_model, variant_tokenizer) in variants.items():
            variant = dataclasses.replace(imputers, model=variant_model, tokenizer=variant_tokenizer)
            found = run_scenario(variant, scenario, seeds, ("GexBERT",), center, scale)
            entry["methods"][name] = found["methods"]["GexBERT"]
            entry["seconds"][name] = found["seconds"]["GexBERT"]
        results["per_rate"][str(rate)] = entry
    return results


def summary(per_rate: dict) -> dict:
    """Per rate and method: mean RMSE and per-gene r."""
    return {rate: {method: {"rmse": mean_finite(values["rmse"]), "per_gene_r": mean_finite(values["per_gene_r"])}
                   for method, values in entry["methods"].items()} for rate, entry in per_rate.items()}


def choose_recipe(shipped, adapt_part: pd.DataFrame, minutes: float, names: list[str], seed: int) -> dict:
    """Each recipe adapted on 80% of the adapt part, scored (GexBERT only, 50 and 90% MCAR, one mask) on the rest."""
    fit, held = split_by_sample(adapt_part, 0.8, seed + 1)
    scores = {}
    for name in names:
        say(f"recipe {name}: adapting on {len(fit)} samples for {minutes} min")
        result = adapt_model(*shipped, fit, RECIPES[name], minutes=minutes, progress=False, parent="search")
        found = score_variants((result.model, result.tokenizer), {}, fit, held, [50, 90], [0], baselines=False)
        means = summary(found["per_rate"])
        scores[name] = {"steps": result.record["steps"], "seconds": result.record["train_seconds"],
                        **{f"rmse_{rate}": means[rate]["GexBERT shipped"]["rmse"] for rate in means},
                        **{f"r_{rate}": means[rate]["GexBERT shipped"]["per_gene_r"] for rate in means}}
        scores[name]["mean_rmse"] = float(np.mean([scores[name]["rmse_50"], scores[name]["rmse_90"]]))
        say(f"recipe {name}: {scores[name]}")
    best = min(scores, key=lambda name: scores[name]["mean_rmse"])
    return {"scores": scores, "best": best, "fit_samples": len(fit), "held_samples": len(held)}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] transfer: {message}", flush=True)


def run_check(name: str, output: Path, minutes: float, search_minutes: float, recipes: list[str],
              rates: list[int], seeds: list[int], seed: int = 0, max_rows: int = 300, steps: int | None = None
              ) -> dict:
    torch.set_num_threads(1)
    check = CHECKS[name]
    started = time.perf_counter()
    shipped = load_model_and_tokenizer(check.model)
    folder = DATA / check.folder
    split = load_split(folder)
    expression = read_expression(folder / "expression.tsv.gz", orientation="genes_x_samples")
    test = expression.loc[expression.index.intersection(split.index[split == "test"])]
    shifted, shift = simulate_platform_shift(test, check, seed)
    adapt_part, eval_part = split_by_sample(shifted, ADAPT_SHARE, seed)
    say(f"{name}: {len(test)} test samples shifted; adapt part {len(adapt_part)}, eval part {len(eval_part)}")
    search = (choose_recipe(shipped, adapt_part, search_minutes, recipes, seed) if len(recipes) > 1
              else {"best": recipes[0], "scores": {}})
    recipe = RECIPES[search["best"]]
    say(f"adapting with {search['best']} on all {len(adapt_part)} adapt samples for {minutes} min")
    adapted = adapt_model(*shipped, adapt_part, recipe, minutes=minutes, steps=steps, progress=False,
                          parent=check.model,
                          source=f"{check.folder} test split, shifted, adapt part")
    refit_only, refitted = refit_level_statistics(shipped[1], adapt_part)
    variants = {"GexBERT adapted": (adapted.model, adapted.tokenizer),
                "GexBERT levels refitted only": (shipped[0], refit_only)}
    say("scoring on the eval part")
    scored = score_variants(shipped, variants, adapt_part, eval_part, rates, seeds, max_rows=max_rows)
    results = {"check": name, "model": check.model, "folder": check.folder, "shift": shift,
               "n_adapt": len(adapt_part), "n_eval": len(eval_part), "n_eval_scored": scored["header"]["n_test_rows"],
               "recipe_search": search, "adaptation": adapted.record, "rates": rates, "seeds": seeds,
               "tuning": scored["header"], "summary": summary(scored["per_rate"]), "per_rate": scored["per_rate"],
               "minutes_total": (time.perf_counter() - started) / 60, "threads": torch.get_num_threads()}
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "results.json", results)
    write_check_report(results, output)
    return results


def verdict_rows(results: dict) -> list[list[str]]:
    rows = []
    for rate, methods in results["summary"].items():
        ours = methods["GexBERT adapted"]
        for baseline in ("KNN", "SoftImpute"):
            theirs = methods[baseline]
            rows.append([f"{rate}%", baseline, f"{fmt(ours['rmse'])} vs {fmt(theirs['rmse'])}",
                         _shown(outcome(ours["rmse"], theirs["rmse"], higher_is_better=False)),
                         f"{fmt(ours['per_gene_r'])} vs {fmt(theirs['per_gene_r'])}",
                         _shown(outcome(ours["per_gene_r"], theirs["per_gene_r"]))])
    return rows


def _shown(result: str) -> str:
    return "LOSS" if result == "loss" else result


def write_check_report(results: dict, output: Path) -> None:
    methods = list(next(iter(results["summary"].values())))
    table = [[f"{rate}%", *[f"{fmt(m[method]['rmse'])} / {fmt(m[method]['per_gene_r'])}" for method in methods]]
             for rate, m in results["summary"].items()]
    shift, adaptation, search = results["shift"], results["adaptation"], results["recipe_search"]
    tuning = results["tuning"]
    notes = [note for method, key in (("KNN", "KNN_k"), ("SoftImpute", "SoftImpute_penalty"))
             if (note := edge_note(tuning["tuning"].get(method, {}), tuning["chosen"][key])) is not None]
    lines = [f"# Transfer check `{results['check']}`: `{results['model']}` adapted to a simulated platform\n",
             f"The test split of `{results['folder']}` (never seen by `{results['model']}` in training), shifted: "
             f"per-gene offsets (SD {shift['offset_sd']}) and log-scales (SD {shift['log_scale_sd']}), per-sample "
             f"offsets (SD {shift['per_sample_offset_sd']}), noise (SD "
             f"{shift['noise_sd']}), {'a compressed range and ' if shift['compressed'] else ''}a detection floor "
             f"({shift['floor_share']:.0%} of cells at it); {shift['genes_measured']} of {shift['genes_total']} genes "
             f"measured; {shift['scattered_nan']:.0%} scattered missing cells; seed {shift['seed']}. Split by sample "
             f"into an adapt part ({results['n_adapt']} samples: adaptation, baseline tuning and fitting) and an eval "
             f"part ({results['n_eval']} samples, {results['n_eval_scored']} scored). Nothing is chosen on the eval "
             "part. One torch thread on a shared 2-core CPU.\n",
             f"Adapted with `{search['best']}`: {adaptation['steps']} steps in {adaptation['train_seconds']:.0f} s "
             f"({adaptation['seconds']:.0f} s with the level refit; {adaptation['genes_refitted']} genes refitted). "
             f"Baselines tuned on the adapt part: KNN k = {tuning['chosen']['KNN_k']}, SoftImpute penalty = "
             f"{tuning['chosen']['SoftImpute_penalty']}"
             + (f" ({'; '.join(notes)})" if notes else " (both interior to their grids)") + ".\n",
             "## Verdicts: adapted GexBERT against each baseline (RMSE lower is better, per-gene r higher)\n",
             markdown_table(["MCAR", "baseline", "RMSE adapted vs baseline", "RMSE", "per-gene r adapted vs "
                             "baseline", "r"], verdict_rows(results)) + "\n",
             f"## All methods: RMSE / per-gene r (mean of seeds {results['seeds']}, working scale)\n",
             markdown_table(["MCAR", *methods], table) + "\n"]
    if search.get("scores"):
        rows = [[name, s["steps"], f"{s['seconds']:.0f}", fmt(s["rmse_50"]), fmt(s["rmse_90"]), fmt(s["r_50"]),
                 fmt(s["r_90"])] for name, s in search["scores"].items()]
        lines += [f"## Recipe search ({search['fit_samples']} adapt samples, scored on {search['held_samples']} "
                  "held-out adapt samples, one mask)\n",
                  markdown_table(["recipe", "steps", "seconds", "RMSE 50%", "RMSE 90%", "r 50%", "r 90%"], rows)
                  + "\n", f"Chosen: `{search['best']}` (lowest mean RMSE at 50 and 90%).\n"]
    lines.append(f"Total {results['minutes_total']:.1f} min. Numbers in results.json; plot rmse.png.\n")
    atomic_write(output / "report.md", "\n".join(lines))
    rates = list(results["summary"])
    bar_plot(output / "rmse.png", [f"{rate}%" for rate in rates],
             {method: [results["summary"][rate][method]["rmse"] for rate in rates] for method in methods},
             "RMSE of hidden values (lower is better)", f"{results['check']}: RMSE by MCAR rate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", choices=sorted(CHECKS), required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--search_minutes", type=float, default=2.5)
    parser.add_argument("--recipes", default="lr2e-4 all")
    parser.add_argument("--rates", default="30,50,70,90")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="Adapt this many steps instead of --minutes.")
    parser.add_argument("--max_rows", type=int, default=300, help="Eval samples scored (a seeded subset).")
    args = parser.parse_args(argv)
    results = run_check(args.check, Path(args.output), args.minutes, args.search_minutes,
                        [name.strip() for name in args.recipes.split(",")],
                        [int(rate) for rate in args.rates.split(",")], list(range(args.seeds)), max_rows=args.max_rows,
                        steps=args.steps)
    print(json.dumps(results["summary"], indent=1))


if __name__ == "__main__":
    main()
