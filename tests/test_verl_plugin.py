"""The verl plugin's TGPO / TGPO_R loss, run through verl 0.9.1's own engine path on CPU, equals
tgpo.objectives.compose.compute_loss (loss and gradient) on the same tensors; the teacher-token log-prob shares
verl's single pass over the vocabulary; registrations are idempotent."""

from __future__ import annotations

import os
import types
from functools import partial

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import tgpo.verl.register as plugin  # noqa: E402
from tgpo.methods import get_method  # noqa: E402
from tgpo.objectives.compose import LossInputs, compute_loss  # noqa: E402

torch.set_num_threads(1)
PROMPT_LENS, RESPONSE_LENS, VOCAB, STUDENT_VOCAB = [2, 3, 2], [4, 2, 5], 11, 9


def verl_configs(loss_mode: str, entropy_coeff: float):
    from pathlib import Path

    import verl
    from verl.utils.config import omega_conf_to_dataclass

    overrides = [
        "algorithm.adv_estimator=grpo",
        "critic.enable=false",
        "distillation.enabled=true",
        f"distillation.distillation_loss.loss_mode={loss_mode}",
        "distillation.distillation_loss.topk=1",
        "distillation.distillation_loss.use_task_rewards=true",
        "distillation.distillation_loss.use_policy_gradient=false",
        "distillation.distillation_loss.loss_max_clamp=null",
        "distillation.distillation_loss.log_prob_min_clamp=null",
        "distillation.distillation_loss.distillation_loss_coef=1.0",
        "actor_rollout_ref.actor.loss_agg_mode=token-mean",
        f"actor_rollout_ref.actor.entropy_coeff={entropy_coeff}",
        "actor_rollout_ref.actor.calculate_entropy=true",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.actor.use_dynamic_bsz=true",
        "distillation.teacher_models.teacher_model.model_path=/nonexistent/teacher",
        "distillation.teacher_models.teacher_model.inference.max_model_len=20000",
        "distillation.teacher_models.teacher_model.inference.name=vllm",
    ]
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=overrides)
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    distillation = omega_conf_to_dataclass(cfg.distillation)
    return actor, distillation


def nested(rows):
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def make_batch(generator, coef, shaping_lambda, logits_dtype=torch.float64, vocab=VOCAB, shaping_signal="prob"):
    """Packed logits [N, V] (leaf), the verl micro-batch and the padded response view of the same data."""
    from verl.utils import tensordict_utils as tu

    seq_lens = [p + r for p, r in zip(PROMPT_LENS, RESPONSE_LENS)]
    input_ids = [torch.randint(0, STUDENT_VOCAB, (n,), generator=generator) for n in seq_lens]
    teacher_ids = [torch.randint(0, vocab, (n, 1), generator=generator) for n in seq_lens]  # ids 9, 10 are OOV
    teacher_ids[0][PROMPT_LENS[0] - 1, 0] = vocab - 1  # at least one OOV position inside a response
    logits = (
        torch.randn(sum(seq_lens), vocab, generator=generator, dtype=torch.float64)
        .to(logits_dtype)
        .requires_grad_(True)
    )
    old = [torch.randn(r, generator=generator, dtype=torch.float64) * 0.3 - 2.0 for r in RESPONSE_LENS]
    adv = [torch.full((r,), float(torch.randn(1, generator=generator))) for r in RESPONSE_LENS]
    adv = [a.to(torch.float64) for a in adv]
    total_tokens = sum(RESPONSE_LENS)
    data = tu.get_tensordict(
        {
            "input_ids": nested(input_ids),
            "position_ids": nested([torch.arange(n) for n in seq_lens]),
            "prompts": nested([ids[:p] for ids, p in zip(input_ids, PROMPT_LENS)]),
            "responses": nested([ids[p:] for ids, p in zip(input_ids, PROMPT_LENS)]),
            "response_mask": nested([torch.ones(r, dtype=torch.int64) for r in RESPONSE_LENS]),
            "old_log_probs": nested(old),
            "advantages": nested(adv),
            "teacher_ids": nested(teacher_ids),
            "teacher_logprobs": nested([torch.zeros(n, 1, dtype=torch.float64) for n in seq_lens]),
        },
        {
            "dp_size": 1,
            "batch_num_tokens": total_tokens,
            "global_batch_size": len(seq_lens),
            "distillation_use_topk": True,
            "distillation_only": False,
            "calculate_entropy": True,
            "use_remove_padding": True,
            "tgpo_coef": coef,
            "tgpo_shaping_lambda": shaping_lambda,
            "tgpo_shaping_signal": shaping_signal,
            "tgpo_student_vocab_size": STUDENT_VOCAB,
            "temperature": 1.0,
        },
    )
    return logits, data, input_ids, teacher_ids, old, adv


def padded_response(rows_fn, pad=0):
    width = max(RESPONSE_LENS)
    return torch.stack([torch.nn.functional.pad(r, (0, width - r.shape[0]), value=pad) for r in rows_fn])


def stub_engine():
    """The attributes of FSDPEngineWithLMHead that prepare_model_inputs / prepare_model_outputs read (no model)."""
    from verl.utils import torch_functional as verl_F
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    engine = types.SimpleNamespace(
        use_ulysses_sp=False,
        pad_to_length=False,
        engine_config=types.SimpleNamespace(entropy_checkpointing=False, entropy_from_logits_with_chunking=False),
    )
    for method in ("_gather_and_unpad_packed", "_get_packed_pad_size"):
        setattr(engine, method, types.MethodType(getattr(FSDPEngineWithLMHead, method), engine))
    engine.compute_entropy_from_logits = verl_F.entropy_from_logits  # as FSDPEngine.__init__ without torch.compile
    return engine


def engine_forward(
    loss_mode,
    entropy_coeff,
    coef,
    shaping_lambda,
    seed=0,
    logits_dtype=torch.float64,
    vocab=VOCAB,
    shaping_signal="prob",
):
    """verl's prepare_model_inputs (labels) and prepare_model_outputs (logits processor, log-probs, entropy)
    on given packed logits; returns (model_output, loss_fn, data, logits, tensors)."""
    from verl.trainer.distillation.losses import distillation_ppo_loss
    from verl.utils import tensordict_utils as tu
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead
    from verl.workers.utils.losses import ppo_loss

    actor, distillation = verl_configs(loss_mode or "tgpo_d", entropy_coeff)  # the actor config is the same
    generator = torch.Generator().manual_seed(seed)
    logits, data, input_ids, teacher_ids, old, adv = make_batch(
        generator, coef, shaping_lambda, logits_dtype, vocab, shaping_signal
    )
    if loss_mode is None:  # GRPO: verl's plain actor loss, no logits processor
        tu.assign_non_tensor(data, distillation_use_topk=False)
        loss_fn = partial(ppo_loss, config=actor)
    else:
        loss_fn = partial(distillation_ppo_loss, config=actor, distillation_config=distillation)
    engine = stub_engine()
    _, output_args = FSDPEngineWithLMHead.prepare_model_inputs(engine, data)  # verl's own labels
    output = types.SimpleNamespace(logits=logits.unsqueeze(0))
    model_output = FSDPEngineWithLMHead.prepare_model_outputs(engine, output, output_args, data, loss_fn)
    return model_output, loss_fn, data, logits, (logits, input_ids, teacher_ids, old, adv)


def run_through_verl(loss_mode, entropy_coeff, coef, shaping_lambda, seed=0, shaping_signal="prob"):
    model_output, loss_fn, data, logits, tensors = engine_forward(
        loss_mode, entropy_coeff, coef, shaping_lambda, seed, shaping_signal=shaping_signal
    )
    loss, metrics = loss_fn(model_output=model_output, data=data, dp_group=None)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad, metrics, tensors


def response_rows(packed, seq_lens):
    """Rows of a packed [N, ...] tensor that predict each response token, padded to [B, T, ...]."""
    rows, start = [], 0
    for p, r in zip(PROMPT_LENS, RESPONSE_LENS):
        rows.append(packed[start + p - 1 : start + p - 1 + r])
        start += p + r
    return rows


def run_through_objective(method_name, hparams, step, tensors):
    logits, input_ids, teacher_ids, old, adv = tensors
    logits = logits.detach().to(torch.float64).requires_grad_(True)
    seq_lens = [p + r for p, r in zip(PROMPT_LENS, RESPONSE_LENS)]
    width = max(RESPONSE_LENS)

    def pad(rows, value=0):
        return torch.stack(
            [torch.nn.functional.pad(x, (0, 0) * (x.dim() - 1) + (0, width - x.shape[0]), value=value) for x in rows]
        )

    student_logits = pad(response_rows(logits, seq_lens))
    teacher = pad(response_rows(torch.cat(teacher_ids)[:, 0], seq_lens))
    inputs = LossInputs(
        logits=student_logits,
        response_ids=pad([ids[p:] for ids, p in zip(input_ids, PROMPT_LENS)]),
        response_mask=pad([torch.ones(r, dtype=torch.float64) for r in RESPONSE_LENS]),
        old_log_probs=pad(old),
        advantages=pad(adv),
        teacher_token_ids=teacher,
        teacher_valid_mask=(teacher < STUDENT_VOCAB).to(torch.float64),
    )
    method = get_method(method_name)
    loss, metrics = compute_loss(
        method, inputs, hparams, step, total_tokens=float(sum(RESPONSE_LENS)), total_sequences=3
    )
    (grad,) = torch.autograd.grad(loss, logits)
    return loss, grad, metrics


def test_registrations_are_active_and_idempotent():
    plugin.assert_registered()
    plugin.register_all()  # a second import of the plugin (entry point + direct import) must not fail
    plugin.assert_registered()


@pytest.mark.parametrize("step", [0, 150])
def test_tgpo_loss_and_gradient_equal_objective_library(step):
    w_init, delta, entropy = 0.5, 2e-3, 1e-3  # large weight so a wrong guidance term cannot hide
    hparams = {"w_init": w_init, "delta": delta, "entropy_coef": entropy}
    from tgpo.objectives.annealing import guidance_weight

    coef = guidance_weight(step, w_init, delta)
    loss, grad, metrics, tensors = run_through_verl("tgpo_d", entropy, coef, 0.0)
    ref_loss, ref_grad, ref_metrics = run_through_objective("tgpo_annealing", hparams, step, tensors)
    assert torch.allclose(loss, ref_loss, atol=1e-10), (loss, ref_loss)
    assert torch.allclose(grad, ref_grad, atol=1e-10), (grad - ref_grad).abs().max()
    assert metrics["tgpo/teacher_oov_frac"] == pytest.approx(ref_metrics["tgpo/teacher_oov_frac"])
    assert metrics["tgpo/teacher_oov_frac"] > 0


@pytest.mark.parametrize("signal", ["prob", "log_prob"])
def test_tgpo_r_loss_and_gradient_equal_objective_library_with_clipping_active(signal):
    hparams = {"shaping_lambda": 0.7, "delta": 0.0, "shaping_signal": signal, "entropy_coef": 0.0}
    loss, grad, _, tensors = run_through_verl("tgpo_r", 0.0, 0.0, 0.7, shaping_signal=signal)
    ref_loss, ref_grad, ref_metrics = run_through_objective("tgpo_r", hparams, 0, tensors)
    assert ref_metrics["actor/pg_clipfrac"] > 0, "the fixture must exercise clipping"
    assert torch.allclose(loss, ref_loss, atol=1e-10), (loss, ref_loss)
    assert torch.allclose(grad, ref_grad, atol=1e-10), (grad - ref_grad).abs().max()


def count_vocabulary_passes(monkeypatch) -> list[str]:
    """Record every call of verl's log-prob kernels (each one pass over the [N, V] logits)."""
    from verl.utils import torch_functional as verl_F

    calls: list[str] = []
    for name in (
        "logprobs_from_logits_v2",
        "logprobs_from_logits_naive",
        "logprobs_from_logits_flash_attn",
        "logprobs_from_logits_torch_npu",
    ):
        original = getattr(verl_F, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(verl_F, name, spy)
    return calls


@pytest.mark.parametrize("loss_mode", ["tgpo_d", "tgpo_r"])
def test_teacher_token_log_prob_shares_verls_single_pass_over_the_vocabulary(monkeypatch, loss_mode):
    calls = count_vocabulary_passes(monkeypatch)
    model_output, loss_fn, data, logits, _ = engine_forward(loss_mode, 1e-3, 0.5, 0.7)
    loss_fn(model_output=model_output, data=data, dp_group=None)
    assert len(calls) == 1, f"log-prob passes over the vocabulary: {calls} (verl's sampled-token pass only)"


WIDE_VOCAB = 23  # differs from every other extent of the fixture (tokens, responses), so width = vocabulary


def vocabulary_wide_saved_bytes(loss_mode) -> int:
    """Bytes the engine's output stage and the actor loss save for backward in tensors as wide as the
    vocabulary (bf16 logits: verl's CPU path keeps a log-softmax row per token), counted per storage."""
    saved: list[torch.Tensor] = []

    def keep(tensor):
        if tensor.dim() and tensor.shape[-1] == WIDE_VOCAB:
            saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model_output, loss_fn, data, logits, _ = engine_forward(
            loss_mode, 1e-3, 0.5, 0.0, logits_dtype=torch.bfloat16, vocab=WIDE_VOCAB
        )
        loss_fn(model_output=model_output, data=data, dp_group=None)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    return sum(storages.values())


def test_tgpo_saves_no_more_vocabulary_wide_state_than_grpo():
    grpo_bytes = vocabulary_wide_saved_bytes(None)
    assert grpo_bytes > 0, "the probe must see verl's own saved log-softmax / softmax rows"
    assert vocabulary_wide_saved_bytes("tgpo_d") == grpo_bytes


def test_logit_gap_gradient_is_added_in_place_without_a_vocabulary_wide_buffer():
    """The gap's gradient, 1[first] - 1[second], is written into the logits' dense gradient in place."""
    from tgpo.verl.losses import logit_gaps

    rows = 5
    generator = torch.Generator().manual_seed(3)
    leaf = torch.randn(rows, VOCAB, generator=generator, dtype=torch.float64, requires_grad=True)
    pair = torch.randint(0, VOCAB, (1, rows, 2), generator=generator)
    pair[0, 0, 1] = pair[0, 0, 0]  # teacher id = sampled id: gap 0, gradient 0
    weights = torch.randn(1, rows, generator=generator, dtype=torch.float64)
    logits_rmpad = leaf * 1.0  # as the engine's packed logits: computed by autograd
    gaps = logit_gaps(logits_rmpad.unsqueeze(0), pair)  # verl hands the processor this view
    assert torch.equal(gaps, logits_rmpad.gather(1, pair[0, :, :1]).T - logits_rmpad.gather(1, pair[0, :, 1:]).T)
    dense_buffers: list[torch.Tensor] = []
    logits_rmpad.register_hook(lambda grad: dense_buffers.append(grad))  # the gradient the correction receives
    sampled = torch.log_softmax(logits_rmpad, -1)[:, 0].sum()  # stands for verl's sampled-token log-prob
    (grad,) = torch.autograd.grad((gaps * weights).sum() + sampled, leaf)
    (sampled_grad,) = torch.autograd.grad(torch.log_softmax(leaf, -1)[:, 0].sum(), leaf)
    expected = sampled_grad.clone()
    expected.scatter_add_(1, pair[0, :, :1], weights[0, :, None]).scatter_add_(1, pair[0, :, 1:], -weights[0, :, None])
    assert torch.allclose(grad, expected, atol=1e-12)
    # the buffer that held the dense gradient before the correction ran now holds the corrected one: in place
    assert len(dense_buffers) == 1 and torch.allclose(dense_buffers[0], expected, atol=1e-12)
    with pytest.raises(ValueError, match="unsqueeze"):
        logit_gaps(logits_rmpad.view(1, rows, VOCAB), pair)  # not the processor's input as verl 0.9.1 builds it
    with pytest.raises(RuntimeError, match="no dense gradient"):
        torch.autograd.grad(logit_gaps((leaf * 1.0).unsqueeze(0), pair).sum(), leaf)


def test_invalid_teacher_ids_and_distillation_only_are_rejected_or_masked():
    from tgpo.verl.losses import teacher_logit_gaps, teacher_top1_outputs

    logits = torch.randn(1, 4, VOCAB, dtype=torch.float64)
    teacher = torch.tensor([[0, STUDENT_VOCAB, -1, VOCAB + 3]])
    sampled = torch.tensor([[1, 2, 3, 4]])
    gaps, valid = teacher_logit_gaps(logits, teacher, sampled, STUDENT_VOCAB)
    assert valid.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert gaps[0, 0] == logits[0, 0, 0] - logits[0, 0, 1] and gaps[0, 1:].abs().max() == 0
    _, data, *_ = make_batch(torch.Generator().manual_seed(0), 0.5, 0.0)
    from verl.utils import tensordict_utils as tu

    tu.assign_non_tensor(data, distillation_only=True)
    with pytest.raises(ValueError, match="use_task_rewards"):
        teacher_top1_outputs(None, None, data, torch.zeros(1, sum(PROMPT_LENS) + sum(RESPONSE_LENS), VOCAB), "thd")


def test_step_info_anneals_from_global_step_one():
    from tgpo.verl.trainer import tgpo_step_info

    info = tgpo_step_info({"w_init": 2e-3, "delta": 1e-5}, global_steps=1, tokenizer_size=151665)
    assert info["tgpo_coef"] == pytest.approx(2e-3) and info["tgpo_student_vocab_size"] == 151665
    assert tgpo_step_info({"w_init": 2e-3, "delta": 1e-5}, 201, 10)["tgpo_coef"] == 0.0
    with pytest.raises(KeyError, match="tgpo"):
        tgpo_step_info(None, 1, 10)
