"""The paper's objective terms, one concept per module, and their composition per method (`compose`).

Pure functions of tensors (shapes documented in each module); no I/O, no config, no engine.
"""
