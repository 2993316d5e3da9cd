"""Two models' embedding matrices brought to one vocabulary size (tgpo.models.prepare, change 2:
`prepare.align_vocab_with`), and tokens appended to a tokenizer at given ids."""

from __future__ import annotations

import math

EMBEDDING_PADDING_CAP = 128  # vocabularies are padded to multiples of at most 128 rows (Qwen: 151936 = 1187 * 128)


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
