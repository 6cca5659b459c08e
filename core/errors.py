"""Error types. Every message names the file, key or shape at fault and says what to do."""


class GanstyleError(ValueError):
    """Base class of every error ganstyle raises on bad input."""


class WeightsError(GanstyleError):
    """A weights file cannot be used: missing, not safetensors, wrong keys/shapes/architecture,
    checksum mismatch, or not downloadable (offline and not cached)."""


class ConfigError(GanstyleError):
    """A ``config.json`` is missing, unreadable, or has unknown, missing or absurd fields."""


class InputError(GanstyleError):
    """An image or tensor handed to ganstyle has the wrong shape, dtype or values."""
