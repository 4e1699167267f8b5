"""Quality (``vfi eval``: :mod:`.evaluate`, :mod:`.methods`, :mod:`.figures`) and speed (``vfi bench``:
:mod:`.bench`) of the interpolator. Triplets come from :mod:`vfi_cli.datasets`, scores from
:mod:`vfi_cli.metrics`; nothing here prints."""
