"""Token-string alignment of a teacher's vocabulary to a student's (a teacher with its own tokenizer).

The teacher signals of Section 2.1 and Eq. 3 read the teacher at the student's token ids: verl 0.9.1
sends the student's ids to the teacher's vLLM server and gathers the teacher's argmax ids in the
student's logits, with no remapping (verl `experimental/teacher_loop/teacher_manager.py`,
`trainer/distillation/losses.py`). A teacher whose tokenizer gives some strings other ids (DeepSeek-R1-
Distill-Qwen: `<think>` = 151648, which is Qwen2.5's `<|box_start|>`) must therefore be re-indexed: the
*student-aligned teacher* has the teacher's weights with its embedding and output-head rows permuted so
that

    aligned id i < V_S        the student's token i, read from the teacher row of the same string;
    aligned id >= V_S         the teacher rows no student string maps to (teacher-only tokens, then the
                              teacher's padding rows), in ascending teacher id,

where V_S = the student tokenizer's size, the bound above which the guidance term masks teacher ids and
counts them as `tgpo/teacher_oov_frac` (tgpo.verl.losses, tgpo.engine.teacher). Student ids whose string
the teacher lacks ("unmapped") and rows added for padding get a ZERO row in the embedding and in the
output head: the teacher reads such a token as a blank input and gives it logit exactly 0, so its argmax
points there only when every real logit is negative, and no row of the teacher is duplicated (a copied
row would tie with the original in the argmax). The teacher's log-probability of an unmapped student
token is therefore not meaningful; such ids are listed in the vocabulary map beside the checkpoint.

This module is pure: strings and ids in, a row map out (`string_alignment`), and the row gather
(`permute_rows`). tgpo.models.prepare applies it to a checkpoint's shards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ZERO_ROW = -1  # source_rows entry of an aligned id whose row is all zeros


@dataclass(frozen=True)
class VocabAlignment:
    """Row map of a student-aligned teacher.

    source_rows: [R] teacher row copied to aligned id i, or ZERO_ROW; R = aligned_rows.
    aligned_id_of_teacher: [V_T_rows] aligned id of every teacher row (a permutation into [0, R)).
    """

    student_vocab_size: int  # V_S: ids below it are the student's tokens
    teacher_rows: int  # V_T_rows: rows of the teacher's embedding (>= its tokenizer size)
    source_rows: list[int]
    aligned_id_of_teacher: list[int]
    unmapped_student_ids: list[int]  # student ids whose string the teacher lacks (zero rows)
    renumbered_ids: dict[int, int] = field(
        default_factory=dict
    )  # teacher id -> student id, shared strings with different ids
    teacher_only_ids: list[int] = field(default_factory=list)  # teacher ids with a string the student lacks
    teacher_padding_ids: list[int] = field(default_factory=list)  # teacher rows with no string at all

    @property
    def aligned_rows(self) -> int:
        return len(self.source_rows)

    def summary(self, student_strings: Mapping[int, str], teacher_strings: Mapping[int, str]) -> dict:
        """The vocabulary map written beside the checkpoint: counts, and every id that is not the identity."""
        return {
            "student_vocab_size": self.student_vocab_size,
            "teacher_rows": self.teacher_rows,
            "aligned_rows": self.aligned_rows,
            "counts": {
                "mapped_by_string": self.student_vocab_size - len(self.unmapped_student_ids),
                "renumbered": len(self.renumbered_ids),
                "unmapped_student": len(self.unmapped_student_ids),
                "teacher_only": len(self.teacher_only_ids),
                "teacher_padding_rows": len(self.teacher_padding_ids),
                "zero_rows": sum(1 for row in self.source_rows if row == ZERO_ROW),
            },
            "unmapped_student": [{"student_id": i, "token": student_strings[i]} for i in self.unmapped_student_ids],
            "renumbered": [
                {"token": teacher_strings[t], "teacher_id": t, "student_id": s}
                for t, s in sorted(self.renumbered_ids.items())
            ],
            "teacher_only": [
                {"token": teacher_strings[t], "teacher_id": t, "aligned_id": self.aligned_id_of_teacher[t]}
                for t in self.teacher_only_ids
            ],
            "zero_row_policy": "unmapped student ids and padding rows: zero embedding row and zero output-head row",
        }


def ids_by_string(vocab: Mapping[str, int], name: str) -> dict[int, str]:
    """{id: token string} of a tokenizer's `get_vocab()`; raises when two strings share an id."""
    strings: dict[int, str] = {}
    for token, index in vocab.items():
        index = int(index)
        if index in strings:
            raise ValueError(f"{name} tokenizer: id {index} has two strings, {strings[index]!r} and {token!r}")
        strings[index] = token
    return strings


def string_alignment(
    student_vocab: Mapping[str, int],
    teacher_vocab: Mapping[str, int],
    teacher_rows: int,
    *,
    min_rows: int = 0,
    row_multiple: int = 1,
) -> VocabAlignment:
    """The row map of the student-aligned teacher (module docstring) from both tokenizers' `get_vocab()`.

    student_vocab: {token string: student id}, ids exactly 0 .. V_S-1.
    teacher_vocab: {token string: teacher id}, ids below `teacher_rows`.
    min_rows: the aligned matrix has at least this many rows (the student's embedding rows, so every id
        the student can emit is a valid teacher input); rows are then rounded up to `row_multiple`.
    """
    student_strings = ids_by_string(student_vocab, "student")
    teacher_strings = ids_by_string(teacher_vocab, "teacher")
    student_size = len(student_strings)
    if set(student_strings) != set(range(student_size)):
        holes = sorted(set(range(student_size)) - set(student_strings))[:5]
        raise ValueError(f"student tokenizer: ids are not 0..{student_size - 1} (missing e.g. {holes})")
    beyond = sorted(i for i in teacher_strings if not 0 <= i < teacher_rows)
    if beyond:
        raise ValueError(f"teacher tokenizer: ids {beyond[:5]} lie outside the teacher's {teacher_rows} embedding rows")

    source_rows = [ZERO_ROW] * student_size
    unmapped, renumbered = [], {}
    for student_id in range(student_size):
        teacher_id = teacher_vocab.get(student_strings[student_id])
        if teacher_id is None:
            unmapped.append(student_id)
            continue
        source_rows[student_id] = int(teacher_id)
        if teacher_id != student_id:
            renumbered[int(teacher_id)] = student_id
    used = {row for row in source_rows if row != ZERO_ROW}
    teacher_only = [t for t in range(teacher_rows) if t not in used and t in teacher_strings]
    padding = [t for t in range(teacher_rows) if t not in used and t not in teacher_strings]
    source_rows.extend(teacher_only + padding)  # teacher-only ids first: V_S, V_S + 1, ... (module docstring)
    rows = max(len(source_rows), int(min_rows))
    rows = -(-rows // int(row_multiple)) * int(row_multiple)
    source_rows.extend([ZERO_ROW] * (rows - len(source_rows)))

    aligned_id_of_teacher = [0] * teacher_rows
    for aligned_id, teacher_id in enumerate(source_rows):
        if teacher_id != ZERO_ROW:
            aligned_id_of_teacher[teacher_id] = aligned_id
    return VocabAlignment(
        student_vocab_size=student_size,
        teacher_rows=int(teacher_rows),
        source_rows=source_rows,
        aligned_id_of_teacher=aligned_id_of_teacher,
        unmapped_student_ids=unmapped,
        renumbered_ids=renumbered,
        teacher_only_ids=teacher_only,
        teacher_padding_ids=padding,
    )


def permute_rows(weight, source_rows: list[int]):
    """weight [V_T_rows, H] -> [R, H]: row i is weight[source_rows[i]], or zeros where it is ZERO_ROW."""
    import torch

    index = torch.tensor(source_rows, dtype=torch.long)
    present = index != ZERO_ROW
    out = weight.new_zeros((len(source_rows), *weight.shape[1:]))
    out[present] = weight[index[present]]
    return out
