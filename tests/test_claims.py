"""The claims' rules (figures/claims.py): interval comparisons and the per-draw count."""

from __future__ import annotations

from figures.claims import Claim, compare, render
from figures.stats import Estimate


def est(score, half):
    return Estimate(score, score - half, score + half, 3)


def test_compare_needs_disjoint_intervals():
    assert compare(est(46.3, 5.3), est(36.6, 2.9)) == "above"
    assert compare(est(46.3, 5.3), est(43.5, 1.7)) == "ties"
    assert compare(est(6.3, 2.3), est(36.6, 2.9)) == "below"
    assert compare(Estimate(50.0, None, None, 1), est(10.0, 1.0)) == "ties"


def test_render_counts_the_draws_a_claim_holds_in():
    draws = {
        "mini": [Claim("b", "(b) x", True, "above y", "...")],
        "mini-build1": [Claim("b", "(b) x", False, "ties y", "...")],
    }
    text = render(draws)
    assert "| (b) x | 1 of 2 | above y | ties y |" in text
    assert "#### mini-build1" in text


def fake_draw(root, scores: dict[str, float]):
    """A results folder with summary.parquet and metrics.jsonl for every experiment of config/default.yaml:
    every benchmark of an experiment scores `scores[experiment]` (default 40) +- 1 across seeds."""
    import json
    from pathlib import Path

    import pandas as pd

    from tgpo.config import experiment_seeds, load_config, training_experiments

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "default.yaml")
    rows = []
    for experiment in config["experiments"]:
        for index, seed in enumerate(experiment_seeds(config, experiment)):
            for benchmark in config["benchmarks"]:
                score = scores.get(experiment, 40.0) + (index - 1.0)
                rows.append(
                    {
                        "experiment": experiment,
                        "benchmark": benchmark,
                        "domain": "ood" if benchmark in ("arc_c", "gpqa_diamond", "mmlu_pro") else "id",
                        "metric": "pass@1",
                        "seed": seed,
                        "score": score,
                        "ci_low": score - 5,
                        "ci_high": score + 5,
                        "n_problems": 100,
                        "n_samples": 100,
                    }
                )
    for experiment in training_experiments(config):
        for seed in experiment_seeds(config, experiment):
            run = root / "runs" / experiment / f"seed{seed}"
            run.mkdir(parents=True)
            records = [
                {
                    "step": step,
                    "critic/score/mean": 0.3,
                    "response_length/mean": 28.0,
                    "actor/grad_norm": 3.0 if "cross" not in experiment and experiment != "s_op_distill" else 12.0,
                }
                for step in range(1, 61)
            ]
            (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pd.DataFrame(rows).to_parquet(root / "summary.parquet")
    return root


def test_check_gives_every_claim_its_verdict_by_the_rules(tmp_path):
    from figures.claims import Draw, check

    root = fake_draw(
        tmp_path,
        {
            "base_1p5b": 30,
            "s_op_distill": 5,
            "s_op_distill_in_family": 29,
            "rkl_cross": 25,
            "rkl_in_family": 28,
            "tgpo_annealing": 50,
            "grpo_pp": 36,
            "op_distill": 6,
            "kdrl": 48,
            "tgpo": 47,
            "tgpo_r": 36,
            "anneal_constant": 5,
            "sft": 90,
        },
    )
    claims = {claim.key: claim for claim in check(Draw(root))}
    assert list(claims) == ["a_token", "a_seq", "b", "c", "d", "t2", "t3", "ood", "sft"]
    assert claims["a_token"].holds and claims["a_token"].verdict.startswith("yes; cross-family worse in: gradient norm")
    assert not claims["a_seq"].holds  # 25 is not below half of 30
    assert not claims["b"].holds and claims["b"].verdict == "above grpo_pp, above op_distill, ties kdrl"
    assert claims["c"].verdict == "tgpo above TGPO_R, tgpo_annealing above TGPO_R" and claims["c"].holds
    assert claims["d"].holds
    assert not claims["sft"].holds and claims["sft"].verdict.startswith("ID above GRPO++")
