"""Video input and output with PyAV; knows nothing of torch."""
