"""Training: the end-to-end quickstart today; the Trainer (AMP, DDP, exact resume) next."""

__all__: list[str] = []
