"""The one error a bad config raises: its message names the file and the key."""


class ConfigError(ValueError):
    """A config is invalid; the message names the file and the key."""
