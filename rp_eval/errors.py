"""The one base class for errors meant for a person: the UI shows them, the CLI prints them and exits 2."""


class RpEvalError(ValueError):
    """A request that can not be done, with a message that names what is wrong."""
