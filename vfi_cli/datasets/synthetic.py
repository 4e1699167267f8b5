"""Procedural training scenes with exactly known motion: training runs with no dataset at all."""

from __future__ import annotations

import cv2
import numpy as np

from vfi_cli.datasets.base import Source, Triplet

SYNTHETIC_SCENES = {"train": 4096, "val": 64}
SPRITE_SIDE = (0.03, 0.1)  # small fast objects: side, as a share of the scene's side
SPRITE_SPEED = 0.12  # ... and their largest speed per frame pair, the same way (several times their size)


class SyntheticSource(Source):
    """Procedural scenes with exactly known motion: a panning background and textured layers that
    move and occlude each other, some of them small and fast. The true motion comes with each
    triplet (``Triplet.motion``) and teaches the flows where a network teacher has nothing to say.
    Scene ``index`` is fixed by the seed; augmentation varies per epoch.

    Textures are the natural photographs scikit-image ships when it is installed, else band-limited
    noise, so training runs with no dataset at all.
    """

    kind = "synthetic"

    def __init__(self, split: str, train_scale: float, seed: int, size: int) -> None:
        self.train_scale = train_scale
        self.split = split
        self.seed = seed
        self.size = size  # full-resolution side of the rendered square
        self._textures: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return SYNTHETIC_SCENES[self.split]

    def textures(self) -> list[np.ndarray]:
        if self._textures is None:
            self._textures = _natural_textures() or [_noise_texture(512, seed) for seed in range(8)]
        return self._textures

    def triplet(self, index: int, rng: np.random.Generator, split: str) -> Triplet:
        scene = np.random.default_rng([self.seed, 0 if split == "train" else 1, index])
        t = 0.5 if split == "val" else float(scene.choice([0.5, 0.25, 0.75, 1 / 3, 2 / 3]))
        textures = self.textures()
        size = self.size
        background = _texture_patch(textures[int(scene.integers(len(textures)))], size * 2, scene)
        pan = scene.uniform(-0.08, 0.08, 2) * size
        layers = []
        for _ in range(int(scene.integers(1, 5))):
            side = int(scene.uniform(0.15, 0.5) * size)
            layers.append(_layer(textures, side, scene.uniform(-0.15, 0.15, 2) * size, size, scene))
        # Small objects moving fast (drops, balls, birds): a few pixels wide and moving further than
        # their own size between frames, the case a flow network smooths away (they come out doubled).
        for _ in range(int(scene.integers(0, 4))):
            side = max(4, int(scene.uniform(SPRITE_SIDE[0], SPRITE_SIDE[1]) * size))
            layers.append(_layer(textures, side, scene.uniform(-SPRITE_SPEED, SPRITE_SPEED, 2) * size, size, scene))

        def render(time: float) -> tuple[np.ndarray, np.ndarray]:
            """The frame at ``time`` and the index of the layer seen at each pixel (0: background)."""
            matrix = np.float32([[1, 0, -size / 2 + time * pan[0]], [0, 1, -size / 2 + time * pan[1]]])
            canvas = cv2.warpAffine(background, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
            owner = np.zeros((size, size), np.int32)
            for number, (patch, mask, origin, velocity) in enumerate(layers, start=1):
                x, y = origin + time * velocity
                place = np.float32([[1, 0, x], [0, 1, y]])
                moved = cv2.warpAffine(patch, place, (size, size), flags=cv2.INTER_LINEAR).astype(np.float32)
                alpha = cv2.warpAffine(mask, place, (size, size), flags=cv2.INTER_LINEAR)[..., None]
                canvas = alpha * moved + (1 - alpha) * canvas
                owner[alpha[..., 0] > 0.5] = number
            return canvas.round().clip(0, 255).astype(np.uint8), owner

        (first, owner1), (middle, owner_t), (last, owner2) = render(0.0), render(t), render(1.0)
        velocities = np.stack([pan] + [layer[3] for layer in layers]).astype(np.float32)
        motion = _exact_target(velocities, owner1, owner_t, owner2, t)
        return Triplet(first, middle, last, t, f"synthetic/{split}/{index}", motion=motion)


Layer = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # texture patch, alpha mask, origin (x, y), velocity (x, y)


def _layer(textures: list[np.ndarray], side: int, velocity: np.ndarray, size: int, scene: np.random.Generator) -> Layer:
    """A textured shape of ``side`` pixels placed at random in the frame, moving at ``velocity`` pixels per frame pair."""
    patch = _texture_patch(textures[int(scene.integers(len(textures)))], side, scene)
    mask = _shape_mask(side, scene)
    origin = scene.uniform(0, size - side, 2)
    return patch, mask, origin, velocity


def _exact_target(velocities: np.ndarray, owner1: np.ndarray, owner_t: np.ndarray, owner2: np.ndarray, t: float) -> np.ndarray:
    """The scene's true motion packed as a network teacher's target ([8,H,W] float32: flows from the
    middle frame into the first and last, blending mask, and the weight of each).

    Every layer moves rigidly, so the pixel at x at time t came from x − t·v and goes to x + (1−t)·v,
    v being the velocity of the layer seen there. A flow's weight is 1 where that layer is still the
    one seen at its source (0 where it is hidden there); the mask is 1 − t where both are seen, else
    whichever is, and its weight is 0 where neither is.
    """
    height, width = owner_t.shape
    v = velocities[owner_t]  # [H,W,2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)

    def seen(owner: np.ndarray, shift: float) -> np.ndarray:
        sx = np.clip(np.rint(xs + shift * v[..., 0]), 0, width - 1).astype(np.int64)
        sy = np.clip(np.rint(ys + shift * v[..., 1]), 0, height - 1).astype(np.int64)
        return (owner[sy, sx] == owner_t).astype(np.float32)

    seen1, seen2 = seen(owner1, -t), seen(owner2, 1 - t)
    both = seen1 * seen2
    mask = both * (1 - t) + seen1 * (1 - seen2) + 0.5 * (1 - seen1) * (1 - seen2)
    flow1, flow2 = (-t * v).transpose(2, 0, 1), ((1 - t) * v).transpose(2, 0, 1)
    return np.concatenate([flow1, flow2, mask[None], seen1[None], seen2[None], np.maximum(seen1, seen2)[None]]).astype(np.float32)


def _natural_textures() -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        return []
    images = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel"):
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a picture that needs a download is simply not used
            continue
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(image[..., :3].astype(np.uint8)))
    return images


def _noise_texture(size: int, seed: int) -> np.ndarray:
    """Multi-scale coloured noise: texture at every frequency, like a photograph but from nothing."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size, 3), np.float32)
    for sigma in (1.0, 3.0, 9.0, 27.0):
        image += cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), sigma) * sigma**0.5
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return (image * 255).astype(np.uint8)


def _texture_patch(texture: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A randomly placed, scaled and possibly flipped square from ``texture``."""
    height, width = texture.shape[:2]
    extent = int(rng.uniform(0.3, 1.0) * min(height, width))
    y, x = int(rng.integers(0, height - extent + 1)), int(rng.integers(0, width - extent + 1))
    patch = cv2.resize(texture[y : y + extent, x : x + extent], (side, side), interpolation=cv2.INTER_AREA if extent > side else cv2.INTER_CUBIC)
    return np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch)


def _shape_mask(side: int, rng: np.random.Generator) -> np.ndarray:
    """An anti-aliased ellipse or polygon filling most of a side×side square, float32 in [0,1]."""
    scale = 4
    big = np.zeros((side * scale, side * scale), np.uint8)
    centre = (side * scale // 2, side * scale // 2)
    if rng.random() < 0.5:
        axes = (int(rng.uniform(0.25, 0.5) * side * scale), int(rng.uniform(0.25, 0.5) * side * scale))
        cv2.ellipse(big, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
        radii = rng.uniform(0.25, 0.5, angles.size) * side * scale
        points = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1).astype(np.int32)
        cv2.fillPoly(big, [points], 255)
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
