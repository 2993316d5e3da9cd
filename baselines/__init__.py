"""Baselines of the TGPO paper (Table 1): one module per method, each declaring its `MethodSpec` in `METHODS`.

`tgpo.methods.registry` imports every module here (pkgutil) on first use, so a new module adds a method.
A module holds only what makes its method different (it imports tgpo.methods.spec only); the objective
terms live in `tgpo/objectives/`.
"""
