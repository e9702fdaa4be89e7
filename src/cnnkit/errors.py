"""Errors for users: each message names the file or value, what was expected and how to fix it."""


class CnnkitError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with status 1."""


class DataError(CnnkitError):
    """A data folder or image cannot be used as given."""


class ModelError(CnnkitError):
    """A model name, option or input shape is not valid."""


class RunError(CnnkitError):
    """A run folder is missing, incomplete or broken."""


class ConfigError(CnnkitError):
    """A setting has a value outside what is allowed."""


class OutputError(CnnkitError):
    """An output cannot be written (a read-only folder, a full disk, a file where a folder should be)."""


class Interrupted(CnnkitError):
    """Training was stopped by a signal (Ctrl-C or SIGTERM); the run is marked interrupted and can be resumed."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number


def check_choice(name: str, value: object, allowed: set | list | tuple, owner: str = "cnnkit") -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed`` (scikit-learn's wording)."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in sorted(allowed, key=str))
        raise ConfigError(f"The {name!r} parameter of {owner} must be one of {{{choices}}}. Got {value!r} instead.")
