"""tgpo/settings.py is the one table of settings: the schema's $defs, config/README.md's tables, the
hyper-parameter names and the engine defaults all come from it."""

import json

from tgpo import settings
from tgpo.config.resolve import TRAINING_DEFAULTS
from tgpo.methods import HPARAM_NAMES


def test_schema_defs_are_the_table():
    schema = json.loads(settings.SCHEMA_PATH.read_text())
    for name, generated in settings.schema_defs().items():
        assert schema["$defs"][name] == generated, f"run `python -m tgpo.settings --write` ($defs.{name})"


def test_config_readme_tables_are_the_table():
    written = settings.written_tables(settings.README_PATH.read_text())
    assert written == settings.markdown_tables(), "run `python -m tgpo.settings --write` (config/README.md)"


def test_names_and_defaults_come_from_the_table():
    assert HPARAM_NAMES == tuple(setting.name for setting in settings.HPARAMS)
    assert dict(TRAINING_DEFAULTS) == {setting.name: setting.default for setting in settings.TRAINING}
