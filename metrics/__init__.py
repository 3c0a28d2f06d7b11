# Quality metrics (FID, KID, precision/recall, IS, PPL) and mode-coverage benchmarks; see metric_main.
