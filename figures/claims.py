"""The paper's claims, checked by stated rules in one or several results folders (draws of the base models).

    python -m figures.claims --results results/mini results/mini-build1 results/mini-build2

prints, per results folder, every claim of the claims table in docs/results.md with its verdict and the numbers
behind it, then a table of how many folders each verdict holds in. The verdicts come from rules fixed
here, before any draw was looked at, so that no verdict is worded after the numbers:

- A score is the mean over seeds with its 95 % interval (`figures.results.average_estimate`, as the
  tables): ID = mean of the six in-distribution stand-ins, OOD = of the three multiple-choice ones,
  Table 2's average over its four benchmarks.
- "A above B" when A's interval lies wholly above B's, "A below B" when wholly below, else "A ties B"
  (the intervals overlap).
- A run "collapses" when its ID score is below half of its untrained student's.
- Training dynamics (Figure 2): the training score `critic/score/mean` over the first 10 and the last
  20 steps, the mean `actor/grad_norm` and the response length `response_length/mean` (first 10 -> last
  20 steps), mean over seeds.

Each claim holds when every comparison it names comes out the paper's way (listed per claim below).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from figures.results import _read_jsonl, average_estimate, discover_seeds, load_summary, metrics_path
from figures.stats import Estimate

ID_BENCHMARKS = ("aime24", "aime25", "amc", "math500", "minerva", "olympiadbench")
OOD_BENCHMARKS = ("arc_c", "gpqa_diamond", "mmlu_pro")
TABLE2_BENCHMARKS = ("amc", "math500", "olympiadbench", "gpqa_diamond")


@dataclass(frozen=True)
class Claim:
    key: str
    text: str
    holds: bool
    verdict: str
    evidence: str


def compare(a: Estimate, b: Estimate) -> str:
    """ "above" / "below" when the 95 % intervals are disjoint, else "ties"."""
    if a.ci_low is not None and b.ci_high is not None and a.ci_low > b.ci_high:
        return "above"
    if a.ci_high is not None and b.ci_low is not None and a.ci_high < b.ci_low:
        return "below"
    return "ties"


def fmt(e: Estimate) -> str:
    return f"{e.score:.1f} ± {e.half_width:.1f}" if e.half_width is not None else f"{e.score:.1f}"


class Draw:
    """One results folder: summary.parquet and runs/."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.summary = load_summary(self.root / "summary.parquet")

    def score(self, experiment: str, benchmarks: Sequence[str] = ID_BENCHMARKS) -> Estimate:
        rows = self.summary[self.summary["experiment"] == experiment]
        if rows.empty:
            raise KeyError(f"{self.root}/summary.parquet: no rows for experiment {experiment!r}")
        return average_estimate(rows, experiment, benchmarks)

    def per_seed(self, experiment: str, benchmarks: Sequence[str] = ID_BENCHMARKS) -> list[float]:
        rows = self.summary[(self.summary["experiment"] == experiment) & self.summary["benchmark"].isin(benchmarks)]
        return [float(value) for value in rows.groupby("seed")["score"].mean().sort_index()]

    def dynamics(self, experiment: str) -> dict[str, float]:
        """Mean over seeds: score_first / score_last, length_first / length_last, grad_norm, grad_norm_max."""
        frames = []
        for seed in discover_seeds(self.root / "runs", experiment):
            frames.append(pd.DataFrame.from_records(_read_jsonl(metrics_path(self.root / "runs", experiment, seed))))
        if not frames:
            raise KeyError(f"{self.root}/runs/{experiment}: no metrics.jsonl")

        def mean_of(metric: str, part: str) -> float:
            values = []
            for frame in frames:
                column = frame.sort_values("step")[metric].dropna()
                values.append(float({"first": column.head(10), "last": column.tail(20), "all": column}[part].mean()))
            return sum(values) / len(values)

        return {
            "score_first": mean_of("critic/score/mean", "first"),
            "score_last": mean_of("critic/score/mean", "last"),
            "length_first": mean_of("response_length/mean", "first"),
            "length_last": mean_of("response_length/mean", "last"),
            "grad_norm": mean_of("actor/grad_norm", "all"),
            "grad_norm_max": max(float(frame["actor/grad_norm"].max()) for frame in frames),
        }


def collapses(draw: Draw, experiment: str, base: str) -> bool:
    return draw.score(experiment).score < 0.5 * draw.score(base).score


def describe_dynamics(d: dict[str, float]) -> str:
    return (
        f"score {d['score_first']:.2f} → {d['score_last']:.2f}, length {d['length_first']:.0f} → "
        f"{d['length_last']:.0f}, grad norm {d['grad_norm']:.1f} (max {d['grad_norm_max']:.0f})"
    )


def rkl_claim(draw: Draw, key: str, form: str, in_family: str, cross: str) -> Claim:
    """(a): the cross-family run collapses, the in-family one does not (Student-S)."""
    din, dcross = draw.dynamics(in_family), draw.dynamics(cross)
    cross_collapses, in_collapses = collapses(draw, cross, "base_1p5b"), collapses(draw, in_family, "base_1p5b")
    holds = cross_collapses and not in_collapses
    signatures = [
        name
        for name, ok in (
            ("gradient norm", dcross["grad_norm"] > din["grad_norm"]),
            (
                "length drift",
                abs(dcross["length_last"] - dcross["length_first"]) > abs(din["length_last"] - din["length_first"]),
            ),
            ("score drop", dcross["score_first"] - dcross["score_last"] > din["score_first"] - din["score_last"]),
        )
        if ok
    ]
    verdict = ("yes" if holds else "no") + (
        f"; cross-family worse in: {', '.join(signatures)}"
        if signatures
        else "; cross-family worse in no training signature"
    )
    evidence = (
        f"base {fmt(draw.score('base_1p5b'))}; in-family ID {fmt(draw.score(in_family))} "
        f"({'collapses' if in_collapses else 'no collapse'}; {describe_dynamics(din)}); cross-family ID "
        f"{fmt(draw.score(cross))} ({'collapses' if cross_collapses else 'no collapse'}; {describe_dynamics(dcross)})"
    )
    return Claim(key, f"(a) RKL {form}: stable in-family, collapses cross-family", holds, verdict, evidence)


def versus(
    draw: Draw, subject: str, others: Sequence[str], benchmarks: Sequence[str] = ID_BENCHMARKS
) -> dict[str, str]:
    return {other: compare(draw.score(subject, benchmarks), draw.score(other, benchmarks)) for other in others}


def check(draw: Draw) -> list[Claim]:
    s = draw.score
    claims = [
        rkl_claim(draw, "a_token", "token-level (OP Distill advantage)", "s_op_distill_in_family", "s_op_distill"),
        rkl_claim(draw, "a_seq", "sequence-level (`rkl_only`)", "rkl_in_family", "rkl_cross"),
    ]

    b = versus(draw, "tgpo_annealing", ["grpo_pp", "op_distill", "kdrl"])
    claims.append(
        Claim(
            "b",
            "(b) TGPO-annealing above GRPO++, OP Distill and KDRL (ID)",
            all(v == "above" for v in b.values()),
            ", ".join(f"{v} {name}" for name, v in b.items()),
            ", ".join(f"{name} {fmt(s(name))}" for name in ["tgpo_annealing", "tgpo", *b])
            + f"; TGPO-annealing per seed {' / '.join(f'{x:.1f}' for x in draw.per_seed('tgpo_annealing'))}, "
            f"KDRL {' / '.join(f'{x:.1f}' for x in draw.per_seed('kdrl'))}",
        )
    )

    c = {name: compare(s(name), s("tgpo_r")) for name in ("tgpo", "tgpo_annealing")}
    claims.append(
        Claim(
            "c",
            "(c) TGPO and TGPO-annealing above TGPO_R (ID)",
            all(v == "above" for v in c.values()),
            ", ".join(f"{name} {v} TGPO_R" for name, v in c.items()),
            f"TGPO {fmt(s('tgpo'))}, TGPO-annealing {fmt(s('tgpo_annealing'))}, TGPO_R {fmt(s('tgpo_r'))}, "
            f"GRPO++ {fmt(s('grpo_pp'))}",
        )
    )

    d = versus(draw, "tgpo_annealing", ["anneal_constant"])
    seeds = {
        name: " / ".join(f"{x:.1f}" for x in draw.per_seed(name))
        for name in ("anneal_constant", "anneal_aggressive", "anneal_continuous", "tgpo_annealing")
    }
    claims.append(
        Claim(
            "d",
            "(d) annealed w above constant w (ID)",
            d["anneal_constant"] == "above",
            f"ours {d['anneal_constant']} constant",
            "ID per seed: " + "; ".join(f"{name} {value}" for name, value in seeds.items()),
        )
    )

    t2 = versus(draw, "tgpo_annealing", ["grpo_pp"], TABLE2_BENCHMARKS)["grpo_pp"]
    t2r1 = versus(draw, "tgpo_annealing_r1", ["grpo_pp"], TABLE2_BENCHMARKS)["grpo_pp"]
    claims.append(
        Claim(
            "t2",
            "Table 2: both teachers above no teacher",
            t2 == "above" and t2r1 == "above",
            f"teacher 1 {t2} no teacher, teacher 2 {t2r1} no teacher; teacher 1 "
            f"{compare(s('tgpo_annealing', TABLE2_BENCHMARKS), s('tgpo_annealing_r1', TABLE2_BENCHMARKS))} teacher 2",
            f"avg: no teacher {fmt(s('grpo_pp', TABLE2_BENCHMARKS))}, teacher 2 "
            f"{fmt(s('tgpo_annealing_r1', TABLE2_BENCHMARKS))}, teacher 1 {fmt(s('tgpo_annealing', TABLE2_BENCHMARKS))}",
        )
    )

    small = ["s_luffy", "s_grpo_pp", "s_kdrl", "s_op_distill", "s_tgpo_r", "s_tgpo_annealing"]
    t3_vs = versus(draw, "s_tgpo_annealing", ["s_grpo_pp"])["s_grpo_pp"]
    fails = {name: compare(s(name), s("base_1p5b")) == "below" for name in ("s_kdrl", "s_op_distill")}
    best = max(small, key=lambda name: s(name).score)
    claims.append(
        Claim(
            "t3",
            "Table 3: TGPO-annealing above GRPO++; KDRL and OP Distill below the base (Student-S)",
            t3_vs == "above" and all(fails.values()),
            f"TGPO-annealing {t3_vs} GRPO++; KDRL {'below' if fails['s_kdrl'] else 'not below'} base, "
            f"OP Distill {'below' if fails['s_op_distill'] else 'not below'} base; best mean: {best}",
            f"base {fmt(s('base_1p5b'))}; " + ", ".join(f"{name[2:]} {fmt(s(name))}" for name in small),
        )
    )

    o = {
        name: compare(s(name, OOD_BENCHMARKS), s("base_7b", OOD_BENCHMARKS))
        for name in ("tgpo_annealing", "op_distill", "sft")
    }
    claims.append(
        Claim(
            "ood",
            "OOD: TGPO-annealing not below the base; OP Distill and SFT below it",
            o["tgpo_annealing"] != "below" and o["op_distill"] == "below" and o["sft"] == "below",
            ", ".join(f"{name} {v} base" for name, v in o.items()),
            "OOD: "
            + ", ".join(
                f"{name} {fmt(s(name, OOD_BENCHMARKS))}"
                for name in (
                    "base_7b",
                    "teacher",
                    "tgpo_annealing",
                    "tgpo",
                    "grpo_pp",
                    "kdrl",
                    "op_distill",
                    "sft",
                    "prime_zero",
                )
            )
            + f"; SFT per seed {' / '.join(f'{x:.1f}' for x in draw.per_seed('sft', OOD_BENCHMARKS))}",
        )
    )

    sft_id, sft_ood = compare(s("sft"), s("grpo_pp")), compare(s("sft", OOD_BENCHMARKS), s("grpo_pp", OOD_BENCHMARKS))
    claims.append(
        Claim(
            "sft",
            "SFT below on-policy RL (GRPO++) in and out of distribution",
            sft_id == "below" and sft_ood == "below",
            f"ID {sft_id} GRPO++, OOD {sft_ood} GRPO++",
            f"ID: SFT {fmt(s('sft'))} (per seed {' / '.join(f'{x:.1f}' for x in draw.per_seed('sft'))}), "
            f"GRPO++ {fmt(s('grpo_pp'))}, teacher {fmt(s('teacher'))}",
        )
    )
    return claims


def render(draws: dict[str, list[Claim]]) -> str:
    lines = []
    for name, claims in draws.items():
        lines += [f"#### {name}", "", "| claim | holds | verdict | evidence |", "|---|---|---|---|"]
        lines += [f"| {c.text} | {'yes' if c.holds else 'no'} | {c.verdict} | {c.evidence} |" for c in claims]
        lines.append("")
    keys = [c.key for c in next(iter(draws.values()))]
    texts = {c.key: c.text for c in next(iter(draws.values()))}
    lines += ["| claim | holds in | " + " | ".join(draws) + " |", "|---|---|" + "---|" * len(draws)]
    for key in keys:
        row = [next(c for c in claims if c.key == key) for claims in draws.values()]
        lines.append(
            f"| {texts[key]} | {sum(c.holds for c in row)} of {len(row)} | " + " | ".join(c.verdict for c in row) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figures.claims", description=__doc__.split("\n")[0])
    parser.add_argument("--results", nargs="+", required=True, help="results folders (results/<name>)")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    args = parser.parse_args(argv)
    text = render({Path(root).name: check(Draw(root)) for root in args.results})
    if args.out:
        from tgpo.results.io import write_text

        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
