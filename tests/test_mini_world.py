"""The miniature world: task verifier, tokenizers, world files, a tiny built model, filtered traces."""

from __future__ import annotations

import json
import random

import pytest

from tgpo.mini import task
from tgpo.mini.task import Problem


# ------------------------------------------------------------------------------------------- task
@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("7+5+0=12;4+8+1=13;3+2+1=06;#632.", "632", 1.0),
        ("#632.", "632", 1.0),
        ("#632.", "632.0", 1.0),
        ("#632.\n", "632", 1.0),
        ("#633.", "632", 0.0),
        ("#632", "632", 0.0),  # no final '.'
        ("632.", "632", 0.0),  # no '#'
        ("#100.;#632.", "632", 1.0),  # the last '#' counts
        ("#632.;#100.", "632", 0.0),
        ("#6#32.", "632", 0.0),
        ("6G.", "632", 0.0),  # a multiple-choice answer is a digit and its label, not the sum
        ("", "632", 0.0),
    ],
)
def test_reward_hand_cases(response, gold, expected):
    assert task.reward(response, gold) == expected


def test_reward_rejects_non_numeric_gold():
    with pytest.raises(ValueError, match="not a number"):
        task.reward("#632.", "six")


def test_solutions_are_rewarded_and_columns_are_right():
    problem = Problem(347, 285)
    assert task.chain_of_thought(problem) == "7+5+0=12;4+8+1=13;3+2+1=06;"
    assert task.solution(problem, "direct") == "#632."
    assert task.solution(problem, "cot", think_markers=True) == "7+5+0=12;4+8+1=13;3+2+1=06;#632."
    assert task.solution(problem, "think", think_markers=True) == "#7+5+0=12;4+8+1=13;3+2+1=06;</think>#632."
    assert task.solution(problem, "think") == "#7+5+0=12;4+8+1=13;3+2+1=06;#632."
    assert [task.response_style(task.solution(problem, s)) for s in task.STYLES] == list(task.STYLES)
    assert task.choice_solution(problem, "cot").endswith("3+2+1=06;6G.")
    assert task.choice_solution(problem, "think", think_markers=True) == "#7+5+0=12;4+8+1=13;3+2+1=06;</think>6G."
    assert task.choice_reward("...;06;6G.", "G") == 1.0 and task.choice_reward("6F.", "G") == 0.0
    assert task.choice_reward("...;#632.", "G") == 0.0  # a sum is not a label
    with pytest.raises(ValueError, match="below 1000"):
        task.choice_digit(Problem(647, 585))
    rng = random.Random(0)
    for _ in range(200):
        p = task.random_problem(rng)
        assert task.reward(task.solution(p, "cot"), str(p.answer)) == 1.0
        assert task.parse_prompt(p.prompt) == p


def test_difficulty():
    assert not Problem(347, 285).is_hard  # totals 12, 13, 6
    assert Problem(199, 199).is_hard  # 18
    assert Problem(159, 155).column_totals == [14, 11, 3] and Problem(159, 155).is_hard
    assert Problem(945, 468).column_totals == [13, 11, 14] and Problem(945, 468).is_hard
    assert Problem(945, 358).column_totals == [13, 10, 13] and not Problem(945, 358).is_hard
    rng = random.Random(1)
    assert all(not task.random_problem(rng, hard=False).is_hard for _ in range(100))
    assert all(task.random_problem(rng, hard=True).is_hard for _ in range(100))


def test_choice_problems_sum_below_1000_and_render_every_digit():
    rng = random.Random(0)
    problems = [task.choice_problem(rng, hard=hard) for hard in (None, True, False) for _ in range(100)]
    assert all(p.answer < 1000 for p in problems)
    assert all(p.is_hard for p in problems[100:200]) and not any(p.is_hard for p in problems[200:])
    prompt = task.render_choice_prompt("347+285=", list(task.CHOICE_OPTIONS), list(task.CHOICE_LABELS))
    assert prompt == "347+285=|0A|1B|2C|3D|4E|5F|6G|7H|8I|9J|"


# --------------------------------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_and_teacher_extras(tmp_path):
    from transformers import AutoTokenizer

    from tgpo.mini.tokenizer import build_student_tokenizer, build_teacher_tokenizer, encode

    student, teacher = build_student_tokenizer(), build_teacher_tokenizer()
    student.save_pretrained(tmp_path / "s")
    teacher.save_pretrained(tmp_path / "t")
    student, teacher = AutoTokenizer.from_pretrained(tmp_path / "s"), AutoTokenizer.from_pretrained(tmp_path / "t")
    text = "347+285=|0A|1B|7+5+0=12;4+8+1=13;3+2+1=06;6G.#632."
    ids = encode(student, text)
    assert len(ids) == len(text)  # one token per character
    assert student.decode(ids + [student.eos_token_id], skip_special_tokens=True) == text
    assert encode(teacher, text) == ids  # shared ids for the shared vocabulary
    marked = "<think>1+2+0=03;</think>#3."
    teacher_ids = encode(teacher, marked)
    assert teacher_ids[0] >= len(student) and teacher_ids[-4] >= len(student)  # extras appended at the end
    assert max(teacher_ids[1:-4]) < len(student)
    assert teacher.decode(teacher_ids) == marked
    with pytest.raises(ValueError, match="outside the miniature vocabulary"):
        encode(student, marked)


# ------------------------------------------------------------------------------------------ world
@pytest.fixture(scope="module")
def ci_world(tmp_path_factory):
    from tgpo.mini.world import build_world

    out = tmp_path_factory.mktemp("mini") / "world"
    build_world(out, seed=0, size="ci")
    return out


def test_world_files_have_the_right_fields(ci_world):
    import pandas as pd

    from tgpo.mini.benchmarks import BENCHMARKS

    train = pd.read_parquet(ci_world / "train.parquet")
    assert list(train.columns) == ["prompt_id", "prompt", "answer"] and len(train) == 64
    assert all(
        task.reward(task.solution(task.parse_prompt(p), "cot"), a) == 1.0
        for p, a in zip(train["prompt"], train["answer"])
    )
    held_out = set()
    for name, spec in BENCHMARKS.items():
        rows = [json.loads(line) for line in (ci_world / "benchmarks" / f"{name}.jsonl").read_text().splitlines()]
        assert rows, name
        for row in rows:
            if spec.kind == "math":
                assert set(row) == {"id", "problem", "answer"}
                problem = task.parse_prompt(row["problem"])
                assert row["answer"] == str(problem.answer)
            else:
                assert set(row) == {"id", "question", "choices", "labels", "answer"}
                problem = task.parse_prompt(row["question"])
                assert row["choices"] == list(task.CHOICE_OPTIONS) and row["labels"] == list(task.CHOICE_LABELS)
                assert row["choices"][row["labels"].index(row["answer"])] == str(problem.answer // 100)
            held_out.add((problem.a, problem.b))
        hard = sum(task.parse_prompt(r.get("problem") or r["question"]).is_hard for r in rows)
        assert hard == round(spec.hard_share * len(rows)), name
    assert not held_out & {(p.a, p.b) for p in map(task.parse_prompt, train["prompt"])}
    student = pd.read_parquet(ci_world / "corpora" / "student.parquet")
    assert not student["hard"].any()  # the students never see a hard problem
    assert 0.8 < (student["style"] == "cot").mean() < 0.97
    cross = pd.read_parquet(ci_world / "corpora" / "teacher_cross.parquet")
    assert cross["hard"].mean() > 0.3 and 0.6 < (cross["style"] == "think").mean() < 0.8
    assert not held_out & {(p.a, p.b) for p in map(task.parse_prompt, cross["prompt"])}
    summary = json.loads((ci_world / "world.json").read_text())
    assert summary["answer_regex"] == task.ANSWER_REGEX


# ------------------------------------------------------------------------------- models and traces
@pytest.fixture(scope="module")
def ci_teacher(ci_world, tmp_path_factory):
    import torch

    from tgpo.mini.models import build_model, resolve_kind

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("models") / "teacher_cross"
    build_model(ci_world, resolve_kind("teacher_cross", size="ci", steps=3), out, seed=0, probe=False)
    return out


def test_built_model_loads_with_auto_classes(ci_world, ci_teacher):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ci_teacher)
    tokenizer = AutoTokenizer.from_pretrained(ci_teacher)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tokenizer) == len(AutoTokenizer.from_pretrained(ci_world / "tokenizer")) + 2
    build = json.loads((ci_teacher / "build.json").read_text())
    assert build["kind"]["name"] == "teacher_cross" and build["pretrain"]["loss_last"] > 0


def test_pretraining_lowers_the_loss(ci_world):
    import torch
    from transformers import AutoModelForCausalLM

    from tgpo.mini.models import load_corpus, load_world_tokenizer, model_config, resolve_kind
    from tgpo.mini.pretrain import pretrain

    torch.set_num_threads(1)
    kind = resolve_kind("student_large", size="ci")
    tokenizer = load_world_tokenizer(ci_world, kind.tokenizer)
    corpus = load_corpus(ci_world, kind.corpus)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(model_config(kind, tokenizer))
    stats = pretrain(
        model,
        tokenizer,
        corpus["prompt"].tolist(),
        corpus["response"].tolist(),
        steps=40,
        batch_size=32,
        lr=3e-3,
        warmup=5,
        seed=0,
    )
    assert stats["loss_last"] < 0.85 * stats["loss_first"]


def test_traces_keep_only_verified_correct_responses(ci_world, ci_teacher, tmp_path, monkeypatch):
    """An untrained teacher answers almost nothing right; plant known responses to check the filter."""
    import pandas as pd

    import tgpo.engine.sampling as sampling
    from tgpo.mini import traces

    train = pd.read_parquet(ci_world / "train.parquet")

    def planted(model, tokenizer, prompts, n, **kwargs):
        out = []
        for index, prompt in enumerate(prompts):
            problem = task.parse_prompt(prompt)
            answer = problem.answer if index % 2 == 0 else problem.answer + 1
            text = (
                f"#{''.join(f'{t:02d};' for t in problem.column_totals)}</think>#{answer}."
                if index % 4 == 0
                else f"#{answer}."
            )
            finish = "length" if index % 3 == 0 else "stop"
            out.append(sampling.Rollout(index, 0, [], [], text, finish))
        return out

    monkeypatch.setattr(sampling, "sample", planted)
    stats = traces.write_traces(ci_world, ci_teacher, tmp_path / "traces.parquet", seed=0)
    kept = pd.read_parquet(tmp_path / "traces.parquet")
    assert list(kept.columns) == ["prompt_id", "prompt", "answer", "response"]
    expected = [i for i in range(len(train)) if i % 2 == 0 and i % 3 != 0]
    assert kept["prompt_id"].tolist() == train["prompt_id"].iloc[expected].tolist()
    assert all(task.reward(r, a) == 1.0 for r, a in zip(kept["response"], kept["answer"]))
    assert not kept["response"].str.contains("think").any()  # teacher-only tokens removed
    assert stats["kept_fraction"] == pytest.approx(len(expected) / len(train))


def test_math_verify_filter_on_hand_cases():
    from tgpo.mini.traces import math_verify_correct

    assert math_verify_correct("7+5+0=12;4+8+1=13;3+2+1=06;#632.", "632")
    assert math_verify_correct("#632.", "632.0")
    assert not math_verify_correct("#633.", "632")
    assert not math_verify_correct("#632", "632")


def test_verl_world_tokenizers_keep_newline_as_one_token_in_a_qwen2_checkpoint(tmp_path):
    """verl 0.9.1's Qwen continuous-token wiring needs "\\n" as one token; transformers 5 loads a Qwen2
    checkpoint's tokenizer as Qwen2Tokenizer (byte-level pre-tokenizer), which must agree with ours."""
    from transformers import AutoTokenizer, Qwen2Config

    from tgpo.mini.tokenizer import build_student_tokenizer, build_teacher_tokenizer

    text = "863+607=\n3+7+0=10;#1470.</s>"
    for tokenizer in (build_student_tokenizer(for_verl=True), build_teacher_tokenizer(for_verl=True)):
        tokenizer.save_pretrained(tmp_path / "checkpoint")
        Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, num_attention_heads=2).save_pretrained(
            tmp_path / "checkpoint"
        )
        loaded = AutoTokenizer.from_pretrained(tmp_path / "checkpoint")
        assert len(loaded.encode("\n", add_special_tokens=False)) == 1
        assert loaded.encode(text, add_special_tokens=False) == tokenizer.encode(text, add_special_tokens=False)
        assert loaded.decode(loaded.encode(text, add_special_tokens=False)) == text
        rendered = loaded.apply_chat_template(
            [{"role": "system", "content": "x"}, {"role": "user", "content": "1+2="}],
            tokenize=False,
            add_generation_prompt=True,
        )
        assert rendered == "1+2="
        # an SFT conversation renders as prompt + response + EOS (what the local engine trains on); verl's
        # SFT dataset renders each turn alone, so the assistant turn alone must give response + EOS
        conversation = [
            {"role": "system", "content": "x"},
            {"role": "user", "content": "1+2="},
            {"role": "assistant", "content": "#3."},
        ]
        assert loaded.apply_chat_template(conversation, tokenize=False) == f"1+2=#3.{tokenizer.eos_token}"
        assert loaded.apply_chat_template(conversation[2:], tokenize=False) == f"#3.{tokenizer.eos_token}"
        assert loaded.apply_chat_template(conversation[:1], tokenize=False) == ""


def test_verl_world_teacher_ends_with_an_eos_the_student_lacks():
    """The verl world's cross-family teacher closes answers with <|im_end|> (as Qwen3's chat EOS), so its
    argmax where a student response ends is outside the student's vocabulary (tgpo/teacher_oov_frac)."""
    from tgpo.mini.tokenizer import VERL_TEACHER_EOS, build_student_tokenizer, build_teacher_tokenizer

    student, teacher = build_student_tokenizer(for_verl=True), build_teacher_tokenizer(for_verl=True)
    assert teacher.eos_token == VERL_TEACHER_EOS and VERL_TEACHER_EOS not in student.get_vocab()
    assert build_teacher_tokenizer().eos_token == student.eos_token == "</s>"  # the default world: unchanged
