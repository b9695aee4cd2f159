"""Learnable policies: one registry (`policies.registry`) of multitask policies sharing observation
encoders (`encoders`), task conditioning (`conditioning`, `text_encoder`) and the normaliser that
travels in their state dict. `diffusion` (conv UNet or transformer denoiser) and `transformer`
(chunk regression) are registered; `checkpoint` saves and loads them, `acting` adapts them to the
evaluation engine's numpy interface."""
