"""The local engine on tiny random HF models: sampling, teacher signals, verifiers, the training loop,
checkpoints and resume, determinism, divergence handling, and every registered method for 5 steps."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tgpo.engine import checkpoint as ckpt
from tgpo.engine.batch import build_batch, response_logits
from tgpo.engine.run_spec import RunSpec, RunSpecError
from tgpo.engine.sampling import sample
from tgpo.engine.teacher import student_vocab_limit, teacher_signals
from tgpo.engine.trainer import Trainer, TrainingDiverged, train

torch.set_num_threads(1)

PROMPTS = ["12+34=", "5+6=", "99+1="]


def load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32), AutoTokenizer.from_pretrained(path)


def no_timing(records):
    return [{k: v for k, v in r.items() if not k.startswith("timing_s/")} for r in records]


@pytest.fixture
def make_spec(tiny_models, tiny_data, digit_verifier, tmp_path):
    """RunSpec factory for the tiny fixtures: small batches, 2 updates per step, 2 micro-batches each."""
    from tgpo.methods import get_method

    def factory(method: str = "tgpo", name: str = "run", **overrides) -> RunSpec:
        spec = get_method(method)
        fields = dict(
            experiment=f"{method}-{name}",
            method=method,
            hparams={},
            seed=0,
            output_dir=tmp_path / name,
            student_path=tiny_models["student"],
            teacher_path=tiny_models["teacher"] if spec.teacher_signal != "none" else None,
            train_data=tiny_data["train"],
            traces_data=tiny_data["traces"] if spec.uses_teacher_traces else None,
            verifier=digit_verifier,
            steps=5,
            prompts_per_step=4,
            group_size=4,
            max_new_tokens=12,
            updates_per_step=2,
            micro_batch_size=4,
            lr=1e-3,
            warmup_steps=2,
            save_every=2,
            sft_epochs=2,
        )
        fields.update(overrides)
        return RunSpec(**fields)

    return factory


# ------------------------------------------------------------------------------------------ sampling
def test_sample_is_seeded_prompt_major_and_leaves_global_rng(tiny_models):
    model, tokenizer = load(tiny_models["student"])
    before = torch.get_rng_state()
    first = sample(model, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=10, seed=3)
    assert torch.equal(before, torch.get_rng_state())
    again = sample(model, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=10, seed=3)
    other = sample(model, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=10, seed=4)
    assert [r.response_ids for r in first] == [r.response_ids for r in again]
    assert [r.response_ids for r in first] != [r.response_ids for r in other]
    assert [(r.prompt_index, r.sample_index) for r in first] == [(p, s) for p in range(3) for s in range(4)]
    eos = tokenizer.eos_token_id
    for rollout in first:
        assert rollout.prompt_ids == tokenizer(PROMPTS[rollout.prompt_index], add_special_tokens=False)["input_ids"]
        assert eos not in rollout.response_ids[:-1]
        if rollout.finish_reason == "stop":
            assert rollout.response_ids[-1] == eos
        else:
            assert rollout.finish_reason == "length" and len(rollout.response_ids) == 10
        assert rollout.response_text == tokenizer.decode(rollout.response_ids, skip_special_tokens=True)
    assert {r.finish_reason for r in first} == {"stop", "length"}  # the fixture model produces both


def test_sampling_ignores_the_checkpoint_generation_config(tiny_models):
    """Pure sampling at the given temperature: a checkpoint's top_k / repetition penalty must not leak in."""
    model, tokenizer = load(tiny_models["student"])
    plain = sample(model, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=10, seed=5)
    model.generation_config.top_k = 2
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.temperature = 0.1
    model.generation_config.top_p = 0.5
    model.generation_config.min_p = 0.2
    constrained = sample(model, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=10, seed=5)
    assert [r.response_ids for r in plain] == [r.response_ids for r in constrained]
    assert model.generation_config.top_k == 2  # restored after the call


def test_first_token_frequencies_follow_the_model_distribution(tiny_models):
    model, tokenizer = load(tiny_models["student"])
    rollouts = sample(model, tokenizer, ["12+3="], 3000, temperature=1.0, max_new_tokens=1, seed=0)
    counts = torch.bincount(torch.tensor([r.response_ids[0] for r in rollouts]), minlength=model.config.vocab_size)
    with torch.no_grad():
        prompt = torch.tensor([tokenizer("12+3=", add_special_tokens=False)["input_ids"]])
        probs = torch.softmax(model(prompt).logits[0, -1], -1)
    assert float((counts / 3000 - probs).abs().max()) < 0.04


def test_batched_greedy_sampling_equals_one_prompt_at_a_time(tiny_models):
    """Left padding and position ids are right: a prompt's greedy response does not depend on its batch."""
    model, tokenizer = load(tiny_models["student"])
    batched = sample(model, tokenizer, PROMPTS, 1, temperature=0.0, max_new_tokens=12, seed=0)
    chunked = sample(model, tokenizer, PROMPTS, 1, temperature=0.0, max_new_tokens=12, seed=0, batch_size=1)
    assert [r.response_ids for r in batched] == [r.response_ids for r in chunked]


def test_response_logits_row_t_predicts_response_token_t(tiny_models):
    model, tokenizer = load(tiny_models["student"])
    prompts = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    responses = [[3, 4, 1], [5], [6, 7, 8, 9]]
    batch = build_batch(prompts, responses, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = response_logits(model, batch, temperature=2.0)
        for row, (prompt, response) in enumerate(zip(prompts, responses)):
            alone = model(input_ids=torch.tensor([prompt + response])).logits[0] / 2.0
            expected = alone[len(prompt) - 1 : len(prompt) - 1 + len(response)]
            torch.testing.assert_close(logits[row, : len(response)], expected, atol=1e-5, rtol=1e-5)
    assert batch.response_mask.sum(1).tolist() == [3.0, 1.0, 4.0]


# ------------------------------------------------------------------------------------------ teacher
def test_teacher_signals_mask_and_count_ids_outside_the_student_vocabulary(tiny_models):
    student, tokenizer = load(tiny_models["student"])
    teacher, _ = load(tiny_models["teacher"])
    vocab_limit = student_vocab_limit(student, tokenizer)
    assert vocab_limit == tiny_models["vocab_size"] < teacher.config.vocab_size
    rollouts = sample(student, tokenizer, PROMPTS, 4, temperature=1.0, max_new_tokens=12, seed=0)
    batch = build_batch([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], tokenizer.pad_token_id)
    signals = teacher_signals(teacher, batch, "argmax", vocab_limit)
    with torch.no_grad():
        expected_ids = response_logits(teacher, batch).argmax(-1)
    mask = batch.response_mask
    outside = (expected_ids >= vocab_limit).float() * mask
    assert outside.sum() > 0, "the fixture teacher must sometimes prefer an id the student lacks"
    assert signals.oov_frac == pytest.approx(float(outside.sum() / mask.sum()))
    torch.testing.assert_close(signals.teacher_valid_mask, mask - outside)
    valid = signals.teacher_valid_mask > 0
    assert torch.equal(signals.teacher_token_ids[valid], expected_ids[valid])
    assert int(signals.teacher_token_ids.max()) < vocab_limit
    assert signals.teacher_log_probs is None

    log_prob_signals = teacher_signals(teacher, batch, "sampled_log_prob", vocab_limit)
    with torch.no_grad():
        expected = torch.log_softmax(response_logits(teacher, batch), -1).gather(-1, batch.response_ids[..., None])[
            ..., 0
        ]
    torch.testing.assert_close(log_prob_signals.teacher_log_probs, expected, atol=1e-5, rtol=1e-5)
    assert log_prob_signals.teacher_token_ids is None


# ------------------------------------------------------------------------------------------ verifiers
def test_math_verify_verifier():
    from tgpo.verifiers import get_verifier

    verify = get_verifier("math_verify")
    assert verify("so the answer is \\boxed{46}", "46") == 1.0
    assert verify("<think>maybe \\boxed{45}</think> the answer is \\boxed{46}", "46") == 1.0
    assert verify("<think>\\boxed{46}</think> the answer is \\boxed{45}", "46") == 0.0
    assert verify("\\boxed{\\frac{1}{2}}", "0.5") == 1.0
    assert verify("no answer here", "46") == 0.0
    assert verify("\\boxed{46}", "\\frac{") == 0.0  # an unparsable gold answer scores 0, no exception


def test_get_verifier_unknown_name_lists_known_ones():
    from tgpo.verifiers import VERIFIERS, get_verifier

    with pytest.raises(KeyError, match="math_verify"):
        get_verifier("no_such_verifier")
    assert VERIFIERS["mini_arith"] == "tgpo.mini.task:reward"


# ------------------------------------------------------------------------------------------ RunSpec
def test_run_spec_validation_and_json_round_trip(make_spec, tmp_path):
    spec = make_spec("grpo_pp")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert RunSpec.from_json(path) == spec
    with pytest.raises(RunSpecError, match="group_size"):
        make_spec("grpo_pp", group_size=0)
    with pytest.raises(RunSpecError, match="updates_per_step"):
        make_spec("grpo_pp", updates_per_step=3)
    with pytest.raises(RunSpecError, match="unknown RunSpec field"):
        RunSpec.from_dict({**spec.to_dict(), "stpes": 3})
    with pytest.raises(RunSpecError, match="teacher_path"):
        Trainer(make_spec("tgpo", teacher_path=None), progress=False)


# ------------------------------------------------------------------------------------------ training
def test_luffy_replaces_the_last_samples_of_each_group_with_the_teacher_trace(make_spec):
    trainer = Trainer(make_spec("luffy", hparams={"off_policy_per_group": 2}), progress=False)
    rows = [0, 1, 2, 3]
    rollouts, off_policy_mask = trainer.rollouts_for(rows, step=1)
    assert off_policy_mask.tolist() == [0, 0, 1, 1] * 4
    for rollout, off in zip(rollouts, off_policy_mask.tolist()):
        if off:
            trace = trainer.prompt_table["response"][rows[rollout.prompt_index]]
            assert rollout.response_text == trace
            assert rollout.response_ids[-1] == trainer.models.tokenizer.eos_token_id


def test_micro_batches_sum_to_the_mini_batch_gradient(make_spec):
    """Same step with 1 and with 8 micro-batches per mini-batch: the same parameters afterwards."""
    finals, records = [], []
    for name, micro in (("whole", 8), ("micro", 1)):
        result = train(
            make_spec("tgpo", name=name, steps=1, micro_batch_size=micro, hparams={"w_init": 0.5}), progress=False
        )
        finals.append(load(result.final_checkpoint)[0].state_dict())
        records.append(result.metrics[0])
    for key in ("actor/grad_norm", "actor/pg_loss", "tgpo/guidance_loss"):  # Adam hides a gradient scale error
        assert records[0][key] == pytest.approx(records[1][key], rel=1e-4, abs=1e-7), key
    initial = load(make_spec().student_path)[0].state_dict()
    assert any(not torch.equal(finals[0][k], initial[k]) for k in initial)
    for key in initial:
        torch.testing.assert_close(finals[0][key], finals[1][key], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", __import__("tgpo.methods", fromlist=["list_methods"]).list_methods())
def test_every_method_trains_five_steps(make_spec, method):
    spec = make_spec(method, name=method)
    result = train(spec, progress=False)
    expected_steps = math.ceil(spec.sft_epochs * 16 / spec.prompts_per_step) if method == "sft" else 5
    assert result.steps_done == expected_steps
    lines = (spec.output_dir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == list(range(1, expected_steps + 1))
    for record in records:
        assert all(math.isfinite(value) for value in record.values()), record
        for key in (
            "response_length/mean",
            "actor/grad_norm",
            "actor/entropy",
            "timing_s/gen",
            "timing_s/teacher",
            "timing_s/update",
            "timing_s/step",
        ):
            assert key in record, (method, key)
        if method != "sft":
            assert "critic/score/mean" in record and "actor/pg_loss" in record
        if method == "prime_zero":  # trained on the groups of accuracy in [0.2, 0.8] only, at most a step's worth
            assert 0 < record["prime/kept_groups"] <= spec.prompts_per_step
    final = spec.output_dir / "checkpoint"
    assert (final / "config.json").is_file() and (final / "tokenizer_config.json").is_file()
    run_info = json.loads((spec.output_dir / "run.json").read_text())
    assert run_info["completed"] and run_info["method"] == method and run_info["steps"] == expected_steps
    assert set(run_info["versions"]) >= {"torch", "transformers", "python"}
    trained = load(final)[0].state_dict()
    initial = load(spec.student_path)[0].state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in initial), "training changed no parameter"


def test_same_run_twice_gives_identical_metrics(make_spec):
    first = train(make_spec("tgpo_annealing", name="a", steps=3), progress=False)
    second = train(make_spec("tgpo_annealing", name="b", steps=3), progress=False)
    assert no_timing(first.metrics) == no_timing(second.metrics)
    a, b = load(first.final_checkpoint)[0].state_dict(), load(second.final_checkpoint)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(make_spec):
    whole = train(make_spec("prime_zero", name="whole", steps=5), progress=False)
    interrupted_spec = make_spec("prime_zero", name="killed", steps=5)
    stopped = train(interrupted_spec, stop_after_step=3, progress=False)
    assert stopped.final_checkpoint is None and stopped.steps_done == 3
    assert [step for step, _ in ckpt.intermediate_checkpoints(interrupted_spec.output_dir)] == [2]
    resumed = train(interrupted_spec, progress=False)  # resumes from step_2; step 3 is redone
    assert no_timing(resumed.metrics) == no_timing(whole.metrics)
    a, b = load(whole.final_checkpoint)[0].state_dict(), load(resumed.final_checkpoint)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # PRIME's online reward model is resumed too: its last intermediate checkpoint matches
    rm_whole = load(whole.output_dir / "checkpoints" / "step_4" / "reward_model")[0].state_dict()
    rm_resumed = load(resumed.output_dir / "checkpoints" / "step_4" / "reward_model")[0].state_dict()
    assert all(torch.equal(rm_whole[k], rm_resumed[k]) for k in rm_whole)


def test_only_the_last_two_intermediate_checkpoints_are_kept(make_spec):
    spec = make_spec("grpo_pp", steps=7)
    train(spec, progress=False)
    assert [step for step, _ in ckpt.intermediate_checkpoints(spec.output_dir)] == [4, 6]
    state = ckpt.load_trainer_state(spec.output_dir / "checkpoints" / "step_6", spec.run_hash)
    assert state.step == 6 and state.metrics_lines == 6


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(make_spec, monkeypatch):
    import tgpo.objectives.compose

    real_compute_loss = tgpo.objectives.compose.compute_loss

    def poisoned(method, inputs, hparams, step, **kwargs):
        loss, metrics = real_compute_loss(method, inputs, hparams, step, **kwargs)
        if step == 2:  # 0-based: the third training step
            metrics = {**metrics, "tgpo/guidance_loss": float("nan")}
            loss = loss * float("nan")
        return loss, metrics

    monkeypatch.setattr(tgpo.objectives.compose, "compute_loss", poisoned)
    spec = make_spec("tgpo", name="nan")
    with pytest.raises(TrainingDiverged, match=r"'tgpo-nan'.*step 3.*tgpo/guidance_loss.*step_2"):
        train(spec, progress=False)
    assert [step for step, _ in ckpt.intermediate_checkpoints(spec.output_dir)] == [2]
    assert not (spec.output_dir / "checkpoint").exists()
    assert len((spec.output_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_cli_trains_from_a_run_spec_json(make_spec, tmp_path, capsys):
    from tgpo.cli import main

    spec = make_spec("grpo_pp", name="cli", steps=2)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec.to_dict()))
    assert main(["train", "--run-spec", str(path), "--no-progress"]) == 0
    assert (spec.output_dir / "checkpoint" / "config.json").is_file()
    assert "2 steps" in capsys.readouterr().out
    # a completed run is not trained again
    assert main(["train", "--run-spec", str(path), "--no-progress"]) == 0


@pytest.mark.parametrize(
    ("method", "hparams"),
    [("tgpo_annealing", {"w_init": 0.1, "delta": 0.05}), ("tgpo_r", {"shaping_lambda": 0.1, "delta": 0.05})],
)
def test_teacher_forward_is_skipped_once_its_weight_is_zero_and_nothing_else_changes(
    make_spec, monkeypatch, method, hparams
):
    """Issue 18, item 14: weight 0.1, 0.05, then 0 from the third step: the teacher runs on steps 1-2 only,
    and the run trains exactly as one that scores every step with the teacher."""
    import tgpo.engine.trainer as trainer_module

    calls = []
    original = trainer_module.teacher_signals

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "teacher_signals", counting)
    skipped = train(make_spec(method, name="skip", steps=4, hparams=hparams), progress=False)
    assert len(calls) == 2
    assert [r["tgpo/teacher_skipped"] for r in skipped.metrics] == [0.0, 0.0, 1.0, 1.0]
    assert ["tgpo/teacher_oov_frac" in r for r in skipped.metrics] == [True, True, False, False]
    monkeypatch.setattr(trainer_module, "teacher_idle", lambda *args: False)
    scored = train(make_spec(method, name="scored", steps=4, hparams=hparams), progress=False)
    assert len(calls) == 2 + 4

    def comparable(records):
        unmeasured = ("tgpo/teacher_skipped", "tgpo/teacher_oov_frac", "tgpo/guidance_loss")
        return [{k: v for k, v in r.items() if k not in unmeasured} for r in no_timing(records)]

    assert comparable(skipped.metrics) == comparable(scored.metrics)
    a, b = load(skipped.final_checkpoint)[0].state_dict(), load(scored.final_checkpoint)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
