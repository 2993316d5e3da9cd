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
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tgpo.results import io

THINK_OPEN = "<think>"
THINK_START = THINK_OPEN + "\n"
EMBEDDING_PADDING_CAP = 128  # vocabularies are padded to multiples of at most 128 rows (Qwen: 151936 = 1187 * 128)
PREPARE_KEYS = ("rope_theta", "max_position_embeddings", "align_vocab_with", "think_template", "align_ids_to")
VOCAB_MAP_FILE = "vocab_map.json"
# files of a checkpoint's tokenizer: not copied into a student-aligned teacher (it gets the student's)
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
    }
)
TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


# ------------------------------------------------------------------------------------ 1. RoPE, context


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


# ------------------------------------------------------------------------------------- 2. vocabulary


def embedding_padding_multiple(rows: int) -> int:
    """The multiple an embedding matrix of `rows` rows is padded to (power of two, at most 128)."""
    return math.gcd(int(rows), EMBEDDING_PADDING_CAP)


def aligned_vocab_size(student_tokens: int, teacher_tokens: int, student_rows: int, teacher_rows: int) -> int:
    """Rows of both aligned embedding matrices: max(|tok_S|, |tok_T|) rounded up as the larger matrix is."""
    tokens = max(int(student_tokens), int(teacher_tokens))
    multiple = embedding_padding_multiple(max(int(student_rows), int(teacher_rows)))
    return -(-tokens // multiple) * multiple


def shared_id_mismatches(own_tok, other_tok, limit: int = 5) -> list[str]:
    """Tokens of `own_tok` whose id differs in `other_tok` among the ids both have (first `limit`)."""
    other_vocab = other_tok.get_vocab()
    shared = min(len(own_tok), len(other_tok))
    problems = []
    for token, index in sorted(own_tok.get_vocab().items(), key=lambda item: item[1]):
        if index < shared and other_vocab.get(token) != index:
            problems.append(f"{token!r}: id {index} here, {other_vocab.get(token)} in the other tokenizer")
            if len(problems) >= limit:
                break
    return problems


def other_only_tokens(own_tok, other_tok) -> list[str]:
    """The tokens `other_tok` has beyond `len(own_tok)` (Qwen3's four against Qwen2.5), which the aligned
    model does NOT get (module docstring, item 2). Raises ValueError when the ids both tokenizers have
    disagree: then the vocabularies are not one vocabulary padded differently and need `align_ids_to`."""
    problems = shared_id_mismatches(own_tok, other_tok)
    if problems:
        raise ValueError(
            "tokenizers disagree on shared ids, so one embedding size cannot align them (use "
            "prepare.align_ids_to): " + "; ".join(problems)
        )
    return [other_tok.convert_ids_to_tokens(index) for index in range(len(own_tok), len(other_tok))]


def append_token(tokenizer, content: str, flags, expected_id: int) -> None:
    """Add `content` to `tokenizer` (in place) as the other tokenizer has it: `flags` is that tokenizer's
    AddedToken (special or not, stripping), or None for a plain vocabulary token. ValueError unless the
    token gets `expected_id`, its id in the other tokenizer's numbering."""
    if flags is not None:
        tokenizer.add_tokens([flags], special_tokens=bool(flags.special))
    else:
        tokenizer.add_tokens([content])
    new_id = tokenizer.convert_tokens_to_ids(content)
    if new_id != expected_id:
        raise ValueError(f"token {content!r}: id {expected_id} in the other tokenizer but {new_id} after adding it")


def align_vocabularies(model, own_tok, other_tok, other_rows: int) -> dict:
    """Align `model` (in place) with a model whose tokenizer is `other_tok` and whose embedding has
    `other_rows` rows: embeddings resized to `aligned_vocab_size`; `own_tok` is checked, not changed.

    Returns a summary: rows before/after, tokenizer sizes, the other's tokens the student does not get.
    """
    rows_before = model.get_input_embeddings().weight.shape[0]
    tokens_before = len(own_tok)
    other_only = other_only_tokens(own_tok, other_tok)
    rows = aligned_vocab_size(len(own_tok), len(other_tok), rows_before, other_rows)
    if rows < max(len(own_tok), len(other_tok)):
        raise AssertionError(f"aligned vocabulary {rows} smaller than a tokenizer ({len(own_tok)}, {len(other_tok)})")
    if rows != rows_before:
        model.resize_token_embeddings(rows, mean_resizing=False)
    return {
        "rows_before": rows_before,
        "rows_after": rows,
        "tokens_before": tokens_before,
        "tokens_after": len(own_tok),
        "other_tokens": len(other_tok),
        "other_rows": int(other_rows),
        "added_tokens": [],
        "other_only_tokens": other_only,
    }


# ---------------------------------------------------------------------------------- 3. chat template

_GENERATION_BLOCK = re.compile(
    r"\{%-?\s*if\s+add_generation_prompt\s*-?%\}(?P<body>.*?)\{%-?\s*endif\s*-?%\}", re.DOTALL
)


def render_generation_prompt(tokenizer, template: str | None = None) -> str:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)


def think_chat_template(tokenizer) -> str:
    """The tokenizer's chat template with `<think>\\n` appended to the generation prompt (LUFFY's 16k-think).

    Inserted at the end of the last `{% if add_generation_prompt %}` block; checked by rendering. A
    template that already ends its generation prompt with `<think>\\n` is returned unchanged.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template or not isinstance(template, str):
        raise ValueError("tokenizer has no (single) chat template to extend with <think>")
    if render_generation_prompt(tokenizer, template).endswith(THINK_START):
        return template
    blocks = list(_GENERATION_BLOCK.finditer(template))
    if not blocks:
        raise ValueError("chat template has no `{% if add_generation_prompt %}` block to append <think> to")
    end = blocks[-1].end("body")
    new_template = template[:end] + "{{- '<think>\\n' }}" + template[end:]
    rendered = render_generation_prompt(tokenizer, new_template)
    if not rendered.endswith(THINK_START):
        raise ValueError(f"chat template edit failed: generation prompt renders as {rendered[-40:]!r}")
    return new_template


# ------------------------------------------------------------------------------------- 4. stop tokens

_TURN_MARK = "\u00a7ANSWER\u00a7"  # assistant content to find in a rendered chat


def chat_turn_end_id(tokenizer) -> int | None:
    """Id of the added token that closes an assistant turn in the tokenizer's chat template (Qwen's
    `<|im_end|>`, R1-Distill's EOS), None when the template has none or closes a turn with plain text."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _TURN_MARK}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    if _TURN_MARK not in rendered:
        return None
    tail = rendered[rendered.rindex(_TURN_MARK) + len(_TURN_MARK) :]
    added = {token.content: index for index, token in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()}
    for content in sorted(added, key=len, reverse=True):
        if tail.startswith(content):
            return added[content]
    return None


def generation_eos_ids(eos_token_id, tokenizer) -> list[int]:
    """generation_config's eos_token_id (int, list or None) as a list with the tokenizer's EOS and the chat
    template's turn end added: Qwen2.5-Math's generation_config.json lists <|endoftext|> (151643) only
    (https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/generation_config.json) while its chat turns end
    with <|im_end|> (151645). vLLM stops at the tokenizer's EOS and at generation_config.json's eos ids
    (vllm 0.29 SamplingParams.update_from_generation_config), which is what verl's rollout server and our
    evaluation use, so a student prompted through the chat template would otherwise write past its turn."""
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    for extra in (tokenizer.eos_token_id, chat_turn_end_id(tokenizer)):
        if extra is not None and extra not in ids:
            ids.append(extra)
    return ids


# ------------------------------------------------------------------------------------------- the verb


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


def alignment_partner(settings: Mapping) -> str | None:
    """The other model a `prepare:` block reads (align_vocab_with or align_ids_to), if any."""
    return settings.get("align_vocab_with") or settings.get("align_ids_to")


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


# --------------------------------------------------------------- 4. student-aligned teacher (by string)


def local_checkpoint(source: str) -> Path:
    """A local folder for `source`: itself when it is one, else the hub snapshot (network, real runs only)."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=str(source)))


def _text_config(config: dict) -> dict:
    """The dict holding vocab_size (config.json itself, or its text_config for multimodal wrappers)."""
    return config if "vocab_size" in config else config.get("text_config", config)


def remap_token_ids(config: dict, aligned_id_of_teacher: list[int]) -> dict:
    """A copy of a config.json / generation_config.json dict with bos/eos/pad ids renumbered to aligned ids."""
    out = json.loads(json.dumps(config))
    for block in (out, out.get("text_config")):
        if not isinstance(block, dict):
            continue
        for key in TOKEN_ID_KEYS:
            value = block.get(key)
            if isinstance(value, int):
                block[key] = aligned_id_of_teacher[value]
            elif isinstance(value, list):
                block[key] = [aligned_id_of_teacher[v] for v in value]
    return out


def weight_map(checkpoint: Path) -> tuple[dict[str, str], Path | None]:
    """({tensor name: shard file}, index file or None) of a safetensors checkpoint."""
    index = checkpoint / "model.safetensors.index.json"
    if index.exists():
        return dict(json.loads(index.read_text())["weight_map"]), index
    single = checkpoint / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{checkpoint}: no model.safetensors(.index.json); align_ids_to reads safetensors only")
    from safetensors import safe_open

    with safe_open(single, framework="pt") as handle:
        return {name: single.name for name in handle.keys()}, None


def vocabulary_tensors(names, config: Mapping, where: Path) -> tuple[str, str | None]:
    """(embedding name, output-head name or None when tied) among a checkpoint's tensor names."""
    embeddings = [name for name in names if name.endswith("embed_tokens.weight")]
    if len(embeddings) != 1:
        raise ValueError(f"{where}: expected one '*embed_tokens.weight' tensor, found {embeddings}")
    heads = [name for name in names if name.endswith("lm_head.weight")]
    if len(heads) > 1:
        raise ValueError(f"{where}: several output heads {heads}")
    if not heads and not config.get("tie_word_embeddings", _text_config(dict(config)).get("tie_word_embeddings")):
        raise ValueError(f"{where}: no lm_head.weight and tie_word_embeddings is not true")
    return embeddings[0], (heads[0] if heads else None)


def _link_or_copy(source: Path, target: Path) -> None:
    import os
    import shutil

    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copy2(source.resolve(), target)


def checkpoint_vocabulary(checkpoint: Path) -> dict[str, int]:
    """{token string: id} of the rows a checkpoint was trained with, read from its own tokenizer.json (model
    vocabulary + added tokens). Not AutoTokenizer: transformers 5 may add tokens of the tokenizer class it
    picks by model type (a Qwen2 model's tokenizer gains `<|endoftext|>` as unk), which have no trained row."""
    from tokenizers import Tokenizer

    path = checkpoint / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: align_ids_to reads the teacher's vocabulary from its tokenizer.json")
    return Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)


def tokenizer_with_teacher_only(student_tokenizer, alignment, teacher_dir: Path):
    """`student_tokenizer` (changed in place and returned) with the teacher-only strings of `alignment`
    (tgpo.models.vocab_alignment.VocabAlignment) appended, each at its aligned id V_S, V_S + 1, ... and with the
    teacher's flags (special or not, stripping): len(tokenizer) covers every real teacher row, and the ids
    below V_S are the student's."""
    from tokenizers import AddedToken, Tokenizer

    if len(student_tokenizer) != alignment.student_vocab_size:
        raise ValueError(
            f"student tokenizer of {len(student_tokenizer)} ids, but the alignment was made for "
            f"V_S = {alignment.student_vocab_size}"
        )
    teacher = Tokenizer.from_file(str(teacher_dir / "tokenizer.json"))
    added_flags = teacher.get_added_tokens_decoder()  # {id: AddedToken} of the teacher's added tokens
    for teacher_id in alignment.teacher_only_ids:
        content = teacher.id_to_token(teacher_id)
        flags = added_flags.get(teacher_id) or AddedToken(content, special=False, normalized=False)
        append_token(student_tokenizer, content, flags, alignment.aligned_id_of_teacher[teacher_id])
    return student_tokenizer


def align_teacher_ids(source: str, student_source: str, out: str | Path, settings: Mapping) -> dict:
    """Write a copy of teacher `source` whose token ids are the student's (`student_source`: a folder with the
    student's tokenizer and config.json), by token string (tgpo.models.vocab_alignment); RoPE/context settings of
    `settings` are applied to config.json as well. Returns the record written to prepare.json."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig, AutoTokenizer

    from tgpo.models.vocab_alignment import ids_by_string, permute_rows, string_alignment

    teacher_dir = local_checkpoint(source)
    student_tokenizer = AutoTokenizer.from_pretrained(student_source)  # the ids verl and vLLM use
    config = json.loads((teacher_dir / "config.json").read_text())
    teacher_rows = int(_text_config(config)["vocab_size"])
    student_config = AutoConfig.from_pretrained(student_source)
    student_rows = int(getattr(student_config, "vocab_size", None) or student_config.get_text_config().vocab_size)
    student_vocab, teacher_vocab = student_tokenizer.get_vocab(), checkpoint_vocabulary(teacher_dir)
    alignment = string_alignment(
        student_vocab,
        teacher_vocab,
        teacher_rows,
        min_rows=student_rows,
        row_multiple=embedding_padding_multiple(teacher_rows),
    )
    vocab_map = alignment.summary(ids_by_string(student_vocab, "student"), ids_by_string(teacher_vocab, "teacher"))

    names, index_path = weight_map(teacher_dir)
    embedding, head = vocabulary_tensors(names, config, teacher_dir)
    shards = sorted({names[embedding]} | ({names[head]} if head else set()))
    with torch.no_grad(), io.atomic_dir(out) as tmp:
        for path in sorted(teacher_dir.iterdir()):
            if path.is_file() and path.name not in TOKENIZER_FILES and path.name not in shards:
                _link_or_copy(path, tmp / path.name)
        added_bytes = 0
        for shard in shards:
            with safe_open(teacher_dir / shard, framework="pt") as handle:
                metadata = handle.metadata()
            tensors = load_file(teacher_dir / shard)
            for name in (embedding, head):
                if name is not None and names[name] == shard:
                    before = tensors[name]
                    tensors[name] = permute_rows(before, alignment.source_rows).contiguous()
                    added_bytes += (tensors[name].numel() - before.numel()) * before.element_size()
            save_file(tensors, str(tmp / shard), metadata=metadata)
        if index_path is not None:
            index = json.loads(index_path.read_text())
            if "total_size" in index.get("metadata", {}):
                index["metadata"]["total_size"] = int(index["metadata"]["total_size"]) + added_bytes
            io.write_json(tmp / index_path.name, index)
        patched = remap_token_ids(config, alignment.aligned_id_of_teacher)
        _text_config(patched)["vocab_size"] = alignment.aligned_rows
        patched = apply_rope_and_context(patched, settings.get("rope_theta"), settings.get("max_position_embeddings"))
        io.write_json(tmp / "config.json", patched)
        if (teacher_dir / "generation_config.json").exists():
            generation = json.loads((teacher_dir / "generation_config.json").read_text())
            io.write_json(tmp / "generation_config.json", remap_token_ids(generation, alignment.aligned_id_of_teacher))
        tokenizer_with_teacher_only(student_tokenizer, alignment, teacher_dir).save_pretrained(tmp)
        io.write_json(tmp / VOCAB_MAP_FILE, vocab_map)
        record = {
            "source": str(source),
            "settings": dict(settings),
            "align_source": str(student_source),
            "vocabulary": {
                "aligned_rows": alignment.aligned_rows,
                "teacher_rows": teacher_rows,
                "student_vocab_size": alignment.student_vocab_size,
                **vocab_map["counts"],
            },
            "rewritten_shards": shards,
            "tied_embeddings": head is None,
        }
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
