"""Method settings per model family, as data: hparams/<method>.yaml (defaults, then families.<model_type>)."""
