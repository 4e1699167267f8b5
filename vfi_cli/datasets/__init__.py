"""Frames from datasets, shared by training and evaluation: the only room that knows dataset layouts.

- :mod:`.base`: a source's triplet types, the ``--data`` spec and the held-out split rule;
- :mod:`.images`: reading and resizing image files;
- :mod:`.cache`: the on-disk cache (decoded clips written frame by frame, per-triplet arrays);
- :mod:`.videos`: any folder of videos and UCF-101 (training triplets);
- :mod:`.cityscapes`: the CityScapes layout, its training source and its scored triplets with trimaps;
- :mod:`.synthetic`: procedural scenes with known motion;
- :mod:`.testsets`: what ``vfi eval`` scores: a video, UCF101 as DVF ships it, Vimeo-90K.

Imports :mod:`vfi_cli.video`, :mod:`vfi_cli.engine.scenes` (the cut and still-pair rules) and
nothing of training or evaluation.
"""
