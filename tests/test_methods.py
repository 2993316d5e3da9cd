"""The method registry: twelve names, defaults with sources, verl overrides, the `methods` verb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tgpo.methods import (
    HPARAM_NAMES,
    MethodSpec,
    get_method,
    list_methods,
    method_spec,
    register_method,
    resolve_hparams,
)

ROOT = Path(__file__).resolve().parents[1]
TWELVE = {
    "tgpo",
    "tgpo_r",
    "tgpo_annealing",
    "grpo_pp",
    "simplerl_zero",
    "oat_zero",
    "prime_zero",
    "op_distill",
    "kdrl",
    "rkl_only",
    "sft",
    "luffy",
}


def test_all_twelve_methods_are_registered():
    assert set(list_methods()) == TWELVE
    assert len(list_methods()) == 12


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(KeyError) as error:
        get_method("grpo_plus_plus")
    assert "grpo_plus_plus" in str(error.value)
    for name in TWELVE:
        assert name in str(error.value)


@pytest.mark.parametrize("name", sorted(TWELVE))
def test_every_default_has_a_source_and_a_known_name(name):
    spec = get_method(name)
    assert isinstance(spec, MethodSpec)
    assert set(spec.defaults) <= set(HPARAM_NAMES)
    assert set(spec.defaults) <= set(spec.defaults_source)
    assert all(isinstance(source, str) and source for source in spec.defaults_source.values())
    assert all(isinstance(key, str) and not isinstance(value, dict) for key, value in spec.verl_overrides.items())
    assert spec.display_name and spec.summary


def test_defaults_from_the_notes():
    assert get_method("tgpo").defaults["w_init"] == 2e-3 and get_method("tgpo").defaults["delta"] == 0.0
    assert get_method("tgpo_annealing").defaults["delta"] == 1e-5
    simplerl = get_method("simplerl_zero")
    assert simplerl.defaults["kl_coef"] == 1e-4 and simplerl.defaults["kl_estimator"] == "k3"
    assert simplerl.defaults["entropy_coef"] == 1e-3 and simplerl.needs_reference_model
    oat = get_method("oat_zero")
    assert oat.advantage_estimator == "drgrpo" and oat.loss_agg_mode == "seq-mean-token-sum-norm"
    assert oat.verl_overrides["algorithm.norm_adv_by_std_in_grpo"] is False
    kdrl = get_method("kdrl")
    assert kdrl.defaults["rkl_estimator"] == "k2" and kdrl.rkl == "regulariser"
    assert get_method("luffy").defaults["luffy_gamma"] == 0.1
    assert get_method("sft").rollouts is False and get_method("sft").uses_teacher_traces
    assert get_method("prime_zero").needs_reward_model
    from tgpo.verl.translate import MODEL_SETTINGS  # every RL run's (TGPO's included): the entropy bonus reads it

    assert MODEL_SETTINGS["actor_rollout_ref.actor.calculate_entropy"] is True


@pytest.mark.parametrize("name", list_methods())
def test_verl_overrides_hold_no_hyperparameter_value(name):
    """A hyper-parameter's value lives in its method's defaults only; tgpo.verl.translate maps the resolved
    value onto verl's key (+tgpo.*, +luffy.*, the distillation coefficient and estimator)."""
    overrides = get_method(name).verl_overrides
    assert not [key for key in overrides if key.startswith(("+tgpo.", "+luffy.", "+prime."))]
    if get_method(name).rkl == "regulariser":
        loss = "distillation.distillation_loss."
        assert loss + "distillation_loss_coef" not in overrides and loss + "loss_mode" not in overrides


def test_resolve_hparams_overrides_and_rejects_unknown_keys():
    spec = get_method("tgpo_annealing")
    assert resolve_hparams(spec, {"w_init": 0.1})["w_init"] == 0.1
    assert resolve_hparams(spec, {})["delta"] == 1e-5
    with pytest.raises(KeyError, match="w_int"):
        resolve_hparams(spec, {"w_int": 0.1})


def test_spec_validation_and_duplicate_registration():
    with pytest.raises(ValueError, match="guidance"):
        method_spec("bad", "Bad", "bad", guidance="regulariser")  # no teacher signal
    with pytest.raises(ValueError, match="source"):
        MethodSpec(
            "bad",
            "Bad",
            "bad",
            "grpo",
            "verifier",
            "token-mean",
            "clipped",
            "none",
            "none",
            "none",
            False,
            False,
            False,
            True,
            defaults={"lr": 1.0},
        )
    with pytest.raises(ValueError, match="already registered"):
        register_method(method_spec("tgpo", "Other", "other"))
    register_method(get_method("tgpo"))  # re-registering the same spec is a no-op


def test_methods_verb_prints_every_name():
    result = subprocess.run(
        [sys.executable, "-m", "tgpo", "methods"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert set(result.stdout.split()) == TWELVE and len(result.stdout.splitlines()) == 12
    verbose = subprocess.run(
        [sys.executable, "-m", "tgpo", "methods", "--verbose"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "TGPO-annealing" in verbose.stdout and len(verbose.stdout.splitlines()) == 12
