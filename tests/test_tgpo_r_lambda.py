"""TGPO_R's shaping as the authors ran it (issue 18, item 12).

Paper Eq. 5 prints A + lambda * sg[log pi(y^T)] and gives no lambda. The only lambda (0.02) comes from the
authors' reward-shaping algo `tipo_adv` (helldog-star/TGPO config/tasks.sh), whose advantage adds
lambda_t * pi(y^T), the probability, with lambda_t = max(0.02 - 1e-4 * (t - 1), 0)
(luffy/verl/verl/mix_src/mix_core_alg.py compute_tipo_advantage; mix_trainer.py). The defaults follow that
script; `shaping_signal: log_prob` keeps Eq. 5's printed form.
"""

from __future__ import annotations

import pytest
import torch

from tgpo.config import load_config
from tgpo.methods import get_method, with_overrides
from tgpo.objectives.compose import LossInputs, compute_loss
from tgpo.objectives.guidance import shaped_advantages
from tgpo.verl.losses import COEF_KEY, SHAPING_LAMBDA_KEY, SHAPING_SIGNAL_KEY
from tgpo.verl.trainer import tgpo_step_info


def test_defaults_are_the_authors_tipo_adv_script_with_sources():
    method = get_method("tgpo_r")
    assert method.defaults["shaping_lambda"] == 0.02
    assert method.defaults["delta"] == 1e-4
    assert method.defaults["shaping_signal"] == "prob"
    assert "mix_core_alg.py" in method.defaults_source["shaping_signal"]
    assert "decay_rate 1e-4" in method.defaults_source["delta"]
    from tgpo.verl.translate import hparam_overrides  # what verl receives: the defaults, mapped

    on_verl = hparam_overrides(method, method.defaults)
    assert on_verl["+tgpo.shaping_signal"] == "prob" and on_verl["+tgpo.delta"] == 1e-4


def test_prob_signal_adds_lambda_times_the_probability_in_unit_interval():
    log_probs = torch.log(torch.tensor([[0.9, 0.5, 1e-6]], dtype=torch.float64))
    advantages = torch.zeros(1, 3, dtype=torch.float64)
    prob = shaped_advantages(advantages, log_probs, 0.02, signal="prob")
    log_prob = shaped_advantages(advantages, log_probs, 0.02, signal="log_prob")
    torch.testing.assert_close(prob, 0.02 * torch.tensor([[0.9, 0.5, 1e-6]], dtype=torch.float64))
    torch.testing.assert_close(log_prob, 0.02 * log_probs)
    assert float(prob.min()) >= 0 and float(log_prob.min()) < -0.2  # the bounded vs the unbounded signal
    with pytest.raises(ValueError, match="signal"):
        shaped_advantages(advantages, log_probs, 0.02, signal="logit")


def _loss(step: int, method_name: str = "tgpo_r", seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    batch, length, vocab = 4, 6, 11
    logits = torch.randn(batch, length, vocab, generator=generator, dtype=torch.float64)
    response_ids = torch.randint(0, vocab, (batch, length), generator=generator)
    teacher_ids = torch.randint(0, vocab, (batch, length), generator=generator)
    mask = torch.ones(batch, length)
    old = torch.log_softmax(logits, -1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1) + 0.05
    advantages = torch.randn(batch, 1, generator=generator, dtype=torch.float64).expand(batch, length)
    inputs = LossInputs(logits, response_ids, mask, old, advantages, teacher_token_ids=teacher_ids)
    method = get_method(method_name)
    loss, metrics = compute_loss(
        method, inputs, {"entropy_coef": 0.0}, step, total_tokens=float(mask.sum()), total_sequences=batch
    )
    plain = with_overrides(method, guidance="none", teacher_signal="none")
    plain_inputs = LossInputs(logits, response_ids, mask, old, advantages)
    plain_loss, _ = compute_loss(
        plain, plain_inputs, {"entropy_coef": 0.0}, step, total_tokens=float(mask.sum()), total_sequences=batch
    )
    return float(loss), float(plain_loss), metrics


def test_local_engine_lambda_anneals_to_zero_at_step_200():
    loss_0, plain_0, metrics_0 = _loss(0)
    loss_200, plain_200, metrics_200 = _loss(200)
    assert metrics_0["tgpo/shaping_lambda"] == pytest.approx(0.02)
    assert metrics_200["tgpo/shaping_lambda"] == 0.0
    assert loss_0 != pytest.approx(plain_0, abs=1e-9)  # shaped at step 0 (1-based step 1)
    assert loss_200 == pytest.approx(plain_200, abs=1e-12)  # plain GRPO from step 201 on


def test_verl_step_info_anneals_lambda_and_passes_the_signal():
    hparams = {"shaping_lambda": 0.02, "delta": 1e-4, "shaping_signal": "prob"}
    first = tgpo_step_info(hparams, global_steps=1, tokenizer_size=10)
    late = tgpo_step_info(hparams, global_steps=201, tokenizer_size=10)
    assert first[SHAPING_LAMBDA_KEY] == pytest.approx(0.02) and first[SHAPING_SIGNAL_KEY] == "prob"
    assert late[SHAPING_LAMBDA_KEY] == 0.0 and late[COEF_KEY] == 0.0


@pytest.mark.parametrize("path", ["config/paper-7b.yaml", "config/paper-1.5b.yaml"])
def test_paper_configs_translate_tgpo_r_with_the_schedule_and_signal(path):
    from tgpo.verl.translate import experiment_overrides

    config = load_config(path)
    overrides = dict(o.split("=", 1) for o in experiment_overrides(config, "tgpo_r", seed=0))
    assert overrides["+tgpo.shaping_signal"] == "prob"
    assert float(overrides["+tgpo.delta"]) == 1e-4
    assert float(overrides["+tgpo.shaping_lambda"]) == 0.02
