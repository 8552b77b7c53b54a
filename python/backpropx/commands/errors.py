"""How the command line fails: exit code 2 for the user's options and data,
1 for failures that are not their input (e.g. training that diverges)."""


class UsageError(Exception):
    """Bad options or data: reported in one line, exit code 2."""


class Failure(Exception):
    """An expected failure that is not the user's input (e.g. divergence): one line, exit code 1."""
