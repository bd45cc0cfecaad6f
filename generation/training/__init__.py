"""Train Chibify's own small models from chibi-engine renders (or a community's own captioned art).

- :mod:`generation.training.dataset`: ``chibify dataset build``: renders, captions (English and Chinese), specs.
- :mod:`generation.training.labels`: the attributes a spec is judged by (hair colour, style, expression, items).
- :mod:`generation.training.diffusion`: a tiny latent diffusion model saved as a diffusers pipeline folder.
- :mod:`generation.training.gan`: a conditional GAN, the fast "surprise me" engine.
- :mod:`generation.training.classifier`: the attribute classifier that grades generated images.

Torch is imported by the modules that train, never by this package: the bot imports the dataset code freely.
"""
