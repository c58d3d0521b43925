"""The one exception type for problems a user can cause and fix."""


class RagBenchError(Exception):
    """An error caused by input, configuration or environment.

    The message says what went wrong and what to do about it; the CLI prints it
    without a traceback and exits non-zero. Bugs raise anything else.
    """


#: Exit status of a run that finished with failed questions or missing judge scores (status complete_with_failures).
EXIT_INCOMPLETE = 3
