"""The engine: the only room that knows both the model and video (scheduling, batching, threads)."""
