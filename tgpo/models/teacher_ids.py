"""A student-aligned copy of a teacher (`prepare.align_ids_to`, described in tgpo.models.prepare): its
embedding / output-head rows permuted by token string (tgpo.models.vocab_alignment), written shard by shard
without loading the model, with the student's tokenizer plus the teacher-only strings and `vocab_map.json`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from tgpo.models.rope_context import apply_rope_and_context
from tgpo.models.vocab_size import append_token, embedding_padding_multiple
from tgpo.results import io

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
