"""Methods: what makes each one different (`spec`, a leaf), TGPO's three (`tgpo_family`), the registry
that collects them and the baselines (`registry`), and the `methods` verb (`cli`).

The names below keep `tgpo.methods.X` working.
"""

from tgpo.methods.registry import (
    REGISTRANTS,
    get_method,
    list_methods,
    register_method,
    registrant_modules,
)
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
    method_spec,
    resolve_hparams,
    verl_overrides_from_fields,
    with_overrides,
)

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "GUIDANCE_KINDS",
    "HPARAM_NAMES",
    "LOSS_AGG_MODES",
    "MethodSpec",
    "POLICY_LOSSES",
    "REGISTRANTS",
    "REWARD_SOURCES",
    "RKL_KINDS",
    "TEACHER_SIGNALS",
    "VERL_NO_DUAL_CLIP",
    "get_method",
    "list_methods",
    "method_spec",
    "register_method",
    "registrant_modules",
    "resolve_hparams",
    "verl_overrides_from_fields",
    "with_overrides",
]
