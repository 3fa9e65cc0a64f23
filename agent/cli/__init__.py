"""The ``camwatch`` command line."""
