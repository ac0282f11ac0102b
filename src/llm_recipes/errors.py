"""The one exception the stages raise for a user's mistake (bad recipe key, bad data line, missing path)."""


class RecipeError(Exception):
    """A problem with the user's recipe or data. Printed as one line (`error: <file>:<line>: <what>`), exit code 2."""
