"""Preparing cluster checkpoints, `python -m tgpo prepare-model` (`prepare`: the verb and its settings).

One module per change it makes: `rope_context` (RoPE base, context), `vocab_size` (one vocabulary size for
two models), `chat_template` (the `<think>` generation prompt, stop tokens), `teacher_ids` (a teacher
re-indexed to the student's token ids, by the string alignment of `vocab_alignment`).
"""
