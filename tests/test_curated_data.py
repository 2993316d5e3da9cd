"""The curated set of App. B.1 (issue 9, items 4 and 5): teacher-traces keeps exactly the prompts with a
correct teacher trace, every RL experiment and SFT train on it, and LUFFY replays that trace after the
student's `<think>` template with exactly one `<think>` in the sequence."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")

from tgpo import config as tgpo_config  # noqa: E402
from tgpo.config import load_config  # noqa: E402
from tgpo.verl import teacher_traces  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER_7B = ROOT / "config" / "paper-7b.yaml"
RESPONSES = {  # prompt_id -> (question, gold, teacher response, finish reason)
    0: ("1+1?", "2", "<think>\nadd</think>\nThe answer is \\boxed{2}.", "stop"),  # correct
    1: ("3*4?", "12", "<think>\nmultiply</think>\n\\boxed{13}", "stop"),  # wrong
    2: ("half?", "\\frac{1}{2}", "<think>\nhalf</think>\n\\boxed{0.5}", "stop"),  # correct
    3: ("2+5?", "7", "<think>\n2+5 is \\boxed{7} but", "length"),  # cut at the token limit
    4: ("9-3?", "6", "<think>\nsubtract</think>\n\\boxed{6}", "stop"),  # correct
}
CORRECT = [0, 2, 4]


def run_teacher_traces(tmp_path, monkeypatch) -> dict:
    """`python -m tgpo teacher-traces` on the paper-7b config with vLLM replaced by fixed responses;
    returns the config (outputs land under tmp_path, the working directory)."""
    from transformers import PreTrainedTokenizerFast

    config = load_config(PAPER_7B)
    monkeypatch.chdir(tmp_path)
    train = pd.DataFrame([{"prompt_id": i, "prompt": q, "answer": a} for i, (q, a, _, _) in RESPONSES.items()])
    train_path = tmp_path / "train.parquet"
    train.to_parquet(train_path, index=False)
    from tokenizers import Tokenizer, models

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")))
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    tokenizer.save_pretrained(tmp_path / "teacher")

    def fixed_generate(model, prompts, **_):
        assert len(prompts) == len(RESPONSES)
        return [(response, reason) for _, _, response, reason in RESPONSES.values()]

    monkeypatch.setattr(teacher_traces, "require_vllm", lambda: None)
    monkeypatch.setattr(teacher_traces, "generate", fixed_generate)
    args = argparse.Namespace(
        config=PAPER_7B,
        out=tmp_path / "traces.parquet",
        train=train_path,
        teacher_source=str(tmp_path / "teacher"),
        student_tokenizer=str(tmp_path / "teacher"),
        verl_dir=None,
        tensor_parallel=1,
        max_model_len=None,
        seed=None,
        grading_workers=1,
    )
    assert teacher_traces.run(args) == 0
    return config


def test_curation_keeps_exactly_the_prompts_with_a_correct_trace(tmp_path, monkeypatch):
    config = run_teacher_traces(tmp_path, monkeypatch)
    curated = pd.read_parquet(tgpo_config.curated_rl_path(config))  # relative: under tmp_path
    assert curated["prompt_id"].tolist() == CORRECT
    for row in curated.to_dict("records"):
        question, gold, response, _ = RESPONSES[row["prompt_id"]]
        assert row["prompt"][-1]["content"] == question and row["reward_model"]["ground_truth"] == gold
        target = [dict(message) for message in row["extra_info"]["target"]]
        assert target == [{"role": "assistant", "content": response.removeprefix("<think>\n")}]  # the teacher's own
    sft = pd.read_parquet(tgpo_config.curated_sft_path(config))
    assert sft["prompt_id"].tolist() == CORRECT
    assert [m[-1]["content"] for m in sft["messages"]] == [RESPONSES[i][2].removeprefix("<think>\n") for i in CORRECT]


def test_every_rl_experiment_and_sft_train_on_the_curated_set():
    pytest.importorskip("verl")
    from tgpo.verl.translate import NOT_TRAINED_ON_VERL, experiment_overrides, sft_overrides

    for name in ("paper-7b.yaml", "paper-1.5b.yaml"):
        config = load_config(ROOT / "config" / name)
        curated, curated_sft = str(tgpo_config.curated_rl_path(config)), str(tgpo_config.curated_sft_path(config))
        assert curated != str(tgpo_config.verl_train_path(config))
        trained = [e for e in tgpo_config.training_experiments(config)]
        assert any(config["experiments"][e]["method"] == "luffy" for e in trained)
        for experiment in trained:
            method = config["experiments"][experiment]["method"]
            if method == "sft":
                overrides = dict(o.split("=", 1) for o in sft_overrides(config, experiment, 0))
                assert overrides["data.train_files"] == curated_sft, experiment
            elif method not in NOT_TRAINED_ON_VERL:
                overrides = dict(o.split("=", 1) for o in experiment_overrides(config, experiment, 0))
                assert overrides["data.train_files"] == curated, experiment
    # without teacher re-sampling (no data.traces) RL trains on all prompts
    config = load_config(PAPER_7B)
    config["data"].pop("traces")
    assert tgpo_config.rl_train_path(config) == tgpo_config.verl_train_path(config)


def test_snakemake_runs_teacher_traces_before_rl_training():
    from test_pipeline_dryrun import dry_run, jobs_of

    output = dry_run(
        "--configfile", "config/paper-7b.yaml", "--forceall", "-p", "results/paper-7b/runs/grpo_pp/seed0/run.json"
    )
    assert len(jobs_of(output, "teacher_traces")) == 1 and len(jobs_of(output, "prepare_data")) == 1
    (train,) = jobs_of(output, "train")
    assert "results/paper-7b/data/verl/curated.parquet" in train


# ------------------------------------------------------------------ LUFFY: one <think>
@pytest.mark.parametrize(
    "trace",
    [
        "<think>\n1+1=2</think>\n2.",  # as shipped with the source dataset
        "1+1=2</think>\n2.",
    ],  # as teacher-traces writes it
    ids=["with-leading-think", "curated"],
)
def test_luffy_sequence_holds_exactly_one_think(trace):
    pytest.importorskip("verl")
    from test_vocab_alignment import STUDENT_ADDED, STUDENT_SPECIAL, tokenizer_with

    from tgpo.models.chat_template import think_chat_template
    from tgpo.verl import luffy

    tokenizer = tokenizer_with(STUDENT_SPECIAL, STUDENT_ADDED)  # <think> is a token, as in the prepared student
    tokenizer.chat_template = think_chat_template(tokenizer)  # prepare-model's template
    think_id = tokenizer.convert_tokens_to_ids("<think>")

    loop = luffy.LuffyAgentLoop.__new__(luffy.LuffyAgentLoop)  # no servers: the trace path needs none
    loop.tokenizer, loop.response_length, loop.off_policy_per_group, loop.mm_processor_kwargs = tokenizer, 64, 1, {}
    loop.processor = None

    async def prompt_tokens(messages, **_):  # what verl's continuous-token builder does for text-only prompts
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)

    loop.ct_build_initial_tokens = prompt_tokens
    row = {
        "raw_prompt": [{"role": "user", "content": "1+1"}],
        "global_steps": 1,
        "extra_info": {"target": [{"role": "assistant", "content": trace}]},
    }
    output = asyncio.run(loop.run({}, session_id=0, **row)).as_dict()
    prompt, response = output["prompts"].tolist(), output["responses"].tolist()
    assert prompt[-2:] == tokenizer.encode("<think>\n", add_special_tokens=False)
    assert (prompt + response).count(think_id) == 1
    assert response == tokenizer.encode("1+1=2</think>\n2.", add_special_tokens=False) + [tokenizer.eos_token_id]


def test_trace_engine_context_is_the_longest_prompt_plus_the_budget():
    """Left to vLLM, max_model_len is the teacher's whole context (262,144 tokens for the Thinking-2507
    layout), whose KV cache for one sequence did not fit the CPU engine (the paper-1.5b overlay run)."""
    assert teacher_traces.trace_context_length([120, 340, 95], 8192) == 340 + 8192
    with pytest.raises(ValueError, match="no prompts"):
        teacher_traces.trace_context_length([], 8192)
