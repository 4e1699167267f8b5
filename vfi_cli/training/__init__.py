"""Training of the interpolation network (§3.3–3.5): data, proposals, discriminator, losses, loop."""
