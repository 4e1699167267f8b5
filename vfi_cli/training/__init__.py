"""Training of the interpolation network (§3.3–3.5), split by job.

:mod:`.run` does ``vfi train`` from start to end and drives :mod:`.trainer` (the loop), which uses
:mod:`.items` (crops paired with high-resolution truth, flips, proposals, the teacher per item),
:mod:`.sampling` (the seeded, resumable order), :mod:`.distributed` (``torchrun``),
:mod:`.checkpoint` (the run directory, in one place), :mod:`.objective` (losses wired to the
outputs), :mod:`.losses`, :mod:`.proposals`, :mod:`.discriminator` and :mod:`.teachers`;
:mod:`.export` turns a run into weights. Reads its data from :mod:`vfi_cli.datasets`, never from
:mod:`vfi_cli.evaluation`.
"""
