"""The ``ganstyle`` command line: ``ganstyle train | stylize | push | pull | models | demo``."""
