"""The method registry: what makes each training method different (`spec`), and where each is registered.

The names below keep `tgpo.methods.X` working.
"""

from tgpo.methods.spec import (
    ADVANTAGE_ESTIMATORS,
    GUIDANCE_KINDS,
    HPARAM_NAMES,
    LOSS_AGG_MODES,
    POLICY_LOSSES,
    REWARD_SOURCES,
    RKL_KINDS,
    TEACHER_SIGNALS,
    VERL_NO_DUAL_CLIP,
    MethodSpec,
    get_method,
    list_methods,
    method_spec,
    register_method,
    resolve_hparams,
    verl_overrides_from_fields,
    with_overrides,
)

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "GUIDANCE_KINDS",
    "HPARAM_NAMES",
    "LOSS_AGG_MODES",
    "POLICY_LOSSES",
    "REWARD_SOURCES",
    "RKL_KINDS",
    "TEACHER_SIGNALS",
    "VERL_NO_DUAL_CLIP",
    "MethodSpec",
    "get_method",
    "list_methods",
    "method_spec",
    "register_method",
    "resolve_hparams",
    "verl_overrides_from_fields",
    "with_overrides",
]
