"""Verb `prepare-model`: the paper's checkpoint preparation (Appendix B.1, "Model Configuration").

    python -m tgpo prepare-model --config config/paper-7b.yaml --model qwen25_math_7b \
        --out results/paper-7b/models/qwen25_math_7b [--source <local dir>] [--align-source <local dir>]

Four changes, the first three as the TGPO authors' "aligned" checkpoints (helldog-star/TGPO data/align_tokenizer.py and data/download.sh) and LUFFY's
`Elliott/Qwen2.5-Math-7B-16k-think`:

1. Context: RoPE base theta 10,000 -> `prepare.rope_theta` (40,000) and `max_position_embeddings` ->
   `prepare.max_position_embeddings` (16,384), written into config.json itself, because verl's
   `override_config` does not reach the vLLM rollout (docs/verl-0.9.md section 4).
2. Vocabulary: the embedding matrices are resized to one size with the other model's
   (`prepare.align_vocab_with`),

       V_aligned = ceil(max(|tok_student|, |tok_teacher|) / m) * m,   m = gcd(rows of the larger embedding, 128)

   i.e. the larger tokenizer, padded the way the larger embedding matrix is padded. Rows of existing ids
   are kept, so logits of old token ids are unchanged. The tokenizer is NOT extended: Qwen3's
   `<tool_response>`, `</tool_response>`, `<think>`, `</think>` (ids 151665..151668, after Qwen2.5's
   151,665 tokens) stay out of the student's vocabulary, as in the authors' data/align_tokenizer.py
   (helldog-star/TGPO: `unify_vocab_to_tokenizer_max` resizes both models to the larger tokenizer's length
   and `_unify_special_tokens(..., use_teacher_tokens=False)` only sets eos/pad/bos/unk ids to the student's;
   it adds no token and saves the student's tokenizer unchanged). Added tokens would have embedding rows
   that were never trained (rows 151665.. of Qwen2.5-Math-7B are padding), and the chat template's
   `<think>\n` and the system prompt's `<think>` tags would become those ids; unextended, the student reads
   `<think>` as the byte-pair pieces it was pretrained on. The teacher's ids >= |tok_student| are then
   teacher-only: the student cannot emit them (verl's vLLM masks ids >= len(tokenizer)) and the guidance
   term masks them (tgpo_student_vocab_size = len(student tokenizer), tgpo/verl/trainer.py). The student
   keeps its own EOS / PAD / BOS (the authors' use_teacher_tokens=False).
3. Chat template: the generation prompt ends with `<think>\\n` after the assistant tag (the response
   continues inside the thought section), unless `prepare.think_template: false`.
4. Stop tokens: generation_config.json's eos_token_id gains the chat template's turn end (`generation_eos_ids`:
   Qwen2.5-Math lists <|endoftext|> only, its turns end with <|im_end|>); verl copies this file into every
   checkpoint it saves, so the trained students stop there too.

The tokenizer is saved beside the weights; `prepare.json` records what was changed. The output folder is
written atomically (tgpo.results.io.atomic_dir).

A teacher whose tokenizer gives some token strings other ids than the student's (DeepSeek-R1-Distill-Qwen vs
Qwen2.5: `<think>` = 151648 = Qwen2.5's `<|box_start|>`) gets `prepare.align_ids_to: <student key>` instead:
a student-aligned copy whose embedding / output-head rows are permuted by token string
(tgpo.models.vocab_alignment), written without loading the model: only the safetensors shards holding those
tensors are rewritten, the others are hard-linked (or copied). The copy carries the student's tokenizer
with the teacher-only strings appended at their aligned ids (`tokenizer_with_teacher_only`), and
`vocab_map.json` (the unmapped / renumbered / teacher-only ids and their counts). The appended strings
matter: verl 0.9.1's vLLM server sets the logits of every id >= len(tokenizer) to -inf
(verl/workers/rollout/vllm_rollout/vllm_async_server.py -> utils.monkey_patch_compute_logits), so with
the student's tokenizer alone the teacher pool would never report a teacher-only argmax and the
guidance mask (tgpo/teacher_oov_frac) would see the teacher's best *student* token instead.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tgpo.models.chat_template import generation_eos_ids, think_chat_template
from tgpo.models.rope_context import apply_rope_and_context
from tgpo.models.teacher_ids import align_teacher_ids
from tgpo.models.vocab_size import align_vocabularies
from tgpo.results import io

PREPARE_KEYS = ("rope_theta", "max_position_embeddings", "align_vocab_with", "think_template", "align_ids_to")


def prepare_settings(config: Mapping, model_key: str) -> dict:
    """The `prepare:` block of model `model_key`, checked (unknown keys and self-alignment raise)."""
    models = config["models"]
    if model_key not in models:
        raise KeyError(f"models.{model_key}: no such model; known: {sorted(models)}")
    settings = dict(models[model_key].get("prepare") or {})
    if not settings:
        raise ValueError(f"models.{model_key}.prepare: missing; nothing to prepare for this model")
    unknown = sorted(set(settings) - set(PREPARE_KEYS))
    if unknown:
        raise ValueError(f"models.{model_key}.prepare: unknown keys {unknown}; expected some of {list(PREPARE_KEYS)}")
    for key in ("align_vocab_with", "align_ids_to"):
        other = settings.get(key)
        if other is not None and (other not in models or other == model_key):
            raise ValueError(f"models.{model_key}.prepare.{key}: {other!r} must be another key of `models`")
    if "align_ids_to" in settings:
        clashing = sorted({"align_vocab_with", "think_template"} & set(settings))
        if clashing:
            raise ValueError(
                f"models.{model_key}.prepare: align_ids_to gives the copy the student's tokenizer and "
                f"ids; it cannot be combined with {clashing}"
            )
    return settings


def prepare_model(source: str, out: str | Path, settings: Mapping, *, align_source: str | None = None) -> dict:
    """Load `source`, apply `settings` (a `prepare:` block), write the checkpoint to `out` atomically."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype="auto")
    tokenizer = AutoTokenizer.from_pretrained(source)
    record: dict[str, Any] = {"source": str(source), "settings": dict(settings)}
    if settings.get("align_vocab_with") is not None:
        if align_source is None:
            raise ValueError("prepare.align_vocab_with is set but no source for the other model was given")
        other_tok = AutoTokenizer.from_pretrained(align_source)
        other_config = AutoConfig.from_pretrained(align_source)
        other_rows = getattr(other_config, "vocab_size", None) or other_config.get_text_config().vocab_size
        record["vocabulary"] = align_vocabularies(model, tokenizer, other_tok, int(other_rows))
        record["align_source"] = str(align_source)
    if settings.get("think_template", True):
        tokenizer.chat_template = think_chat_template(tokenizer)
    eos_ids = generation_eos_ids(model.generation_config.eos_token_id, tokenizer)
    record["generation_eos_token_id"] = {"before": model.generation_config.eos_token_id, "after": eos_ids}
    model.generation_config.eos_token_id = eos_ids
    with torch.no_grad(), io.atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        config_path = tmp / "config.json"
        patched = apply_rope_and_context(
            json.loads(config_path.read_text()), settings.get("rope_theta"), settings.get("max_position_embeddings")
        )
        io.write_json(config_path, patched)
        io.write_json(tmp / "prepare.json", record)
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path, help="config YAML (models.<key>.prepare)")
    parser.add_argument("--model", required=True, help="model key with a `prepare:` block")
    parser.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/<name>/models/<key>")
    parser.add_argument("--source", help="local checkpoint folder replacing the model's hub id / path")
    parser.add_argument(
        "--align-source",
        help="local folder (tokenizer + config.json) replacing the location of "
        "the model named by prepare.align_vocab_with / align_ids_to",
    )


def run(args: argparse.Namespace) -> int:
    from tgpo.config import load_config, model_location, model_source

    config = load_config(args.config)
    settings = prepare_settings(config, args.model)
    source = args.source or model_source(config, args.model)
    if settings.get("align_ids_to"):
        # the student as the pipeline prepared it (its tokenizer after prepare-model), not its hub id
        student = args.align_source or model_location(config, settings["align_ids_to"])
        record = align_teacher_ids(source, student, args.out, settings)
    else:
        other = settings.get("align_vocab_with")
        align_source = args.align_source or (model_source(config, other) if other else None)
        record = prepare_model(source, args.out, settings, align_source=align_source)
    print(json.dumps(record, indent=1))
    return 0
