"""The one error type for what a user can cause and fix.

A bad file, flag, field, URL or dataset raises a :class:`UserError` whose message names the
culprit and what to do. The command line prints it as one line and exits 2; any other
exception is a programming error and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; the message names it (file, flag, field or URL)."""
