"""Quality (``vfi eval``) and speed (``vfi bench``) of the interpolator."""
