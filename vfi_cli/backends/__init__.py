"""How the network runs: the one model-setup path and, later, other runtimes behind the same seam.

A backend turns weights and :class:`~vfi_cli.config.EngineOptions` into a
:class:`~vfi_cli.results.LoadedModel` (device, then precision, then weights, then threads) that
the engine (:class:`~vfi_cli.engine.runner.FrameInterpolator`) runs. Today that is PyTorch eager
(:mod:`.eager`). A new runtime (torch.compile, ONNX Runtime, TensorRT ...) goes in a module of
its own here, imported only when asked for, and gives the engine the same two calls the eager
network answers: ``features(image)`` and ``network(image1, image2, t, features1, features2,
flow_scale=...)``. Imports :mod:`vfi_cli.model` and nothing above it.
"""
