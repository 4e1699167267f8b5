"""Long work on whole files: one conversion from start to end (:mod:`.convert`).

This is the room for what splits and schedules that work: output-time segments, a journal
(manifest) of the segments done, executors that run segments locally or on a Ray cluster, and
batches of files. Each of them drives :func:`.convert.convert_file` (or its segments) and leaves
the engine as it is. Imports :mod:`vfi_cli.engine`, :mod:`vfi_cli.backends` and :mod:`vfi_cli.video`.
"""
