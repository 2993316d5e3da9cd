"""The context of a prepared checkpoint (tgpo.models.prepare, change 1): RoPE base theta and
max_position_embeddings written into config.json itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def apply_rope_and_context(config: Mapping[str, Any], rope_theta: float | None, max_positions: int | None) -> dict:
    """A copy of a config.json dict with RoPE base `rope_theta` and context `max_positions`.

    theta is written where every reader looks: top-level `rope_theta` (transformers 4.x, vLLM) and
    `rope_parameters.rope_theta` / `rope_scaling.rope_theta` (transformers 5) when those dicts exist.
    A model with a RoPE scaling type other than "default" is refused: its theta is not the only knob.
    """
    out = json.loads(json.dumps(config))
    if rope_theta is not None:
        for key in ("rope_parameters", "rope_scaling"):
            block = out.get(key)
            if isinstance(block, dict):
                if block.get("rope_type", block.get("type", "default")) != "default":
                    raise ValueError(
                        f"config.json {key}: RoPE type {block.get('rope_type')!r} is not 'default'; "
                        "refusing to change only its theta"
                    )
                block["rope_theta"] = float(rope_theta)
        out["rope_theta"] = float(rope_theta)
    if max_positions is not None:
        out["max_position_embeddings"] = int(max_positions)
    return out
