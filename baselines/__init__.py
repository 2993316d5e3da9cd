"""Baselines of the TGPO paper (Table 1): one module per method, each registering one `MethodSpec`.

`tgpo.methods` imports every module here (pkgutil) on first use, so a new module registers itself.
A module holds only what makes its method different; the objective terms live in `tgpo/`.
"""
