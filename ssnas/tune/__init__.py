"""`ssnas tune`: an Optuna study over recipe keys, its trials run as ordinary submissions (docs/tune.md).

`tuner` holds the ask-and-tell loop and is the only module that imports optuna. The rest is what a
reader needs without optuna or torch (the report, the dashboard): the study's files under
`RUNS/tune/` (`files`), and each trial's outcome read from the registry (`trials`, `summary`), the
same reading the tuner tells Optuna from.
"""
