"""Comparisons a careful researcher would trust (learning level 7): studies × seeds through ``run_training``.

A *study* is a list of experiments, each a few settings over a common base config:

- ``architectures``: every model asked, the same recipe and budget, each against the first one named;
- ``techniques``: the original README's ablation table, each technique against its baseline on the same
  model, data and budget;
- ``activations``: every activation of the registry on one model;
- ``regularization``: level 4's augmentations and appendix A's in-network regularizers, each alone
  against the same model without it;
- ``record`` and ``preset_techniques``: the speed preset's ingredients taken out, and level 3-4's
  techniques added to it, on all of the data.

The package, in the order a study runs:

- ``catalogue.py``: the studies, their arms and pairs, the plan of one command, one run's config;
- ``runner.py``: every (experiment, seed) as an ordinary training run in its own folder, resumable;
- ``report.py``: RESULTS.md and results.csv; ``charts.py``: the pictures;
- ``statistics.py``: means, paired and Welch intervals, calibration;
- ``claims.py``: the original README's claimed improvements and a verdict on each, budget by budget.

The benchmark records, per run: the last epoch's test accuracy (the headline) and the best epoch's
(secondary, optimistic: chosen on the test set), raw and EMA; parameters; forward GFLOPs per image;
training time and throughput; peak memory; the expected calibration error of the final model.
"""
from utils.studies.catalogue import (ACTIVATION_BASELINE, EMA, FULL_STUDIES, PRESET_TECHNIQUE_PAIRS,
                                     PRESET_TECHNIQUES, RAW, RECORD_PAIRS, RECORD_RECIPE, REFERENCE_ARM,
                                     REGULARIZATION_PAIRS, REGULARIZERS, STUDIES, TECHNIQUE_PAIRS, TECHNIQUES,
                                     BenchmarkPlan, Experiment, build_experiments, differing_settings,
                                     experiment_config, keep_only, preset_technique_base)
from utils.studies.report import budget_sentence, pair_table, ranking_line, summarize, write_report
from utils.studies.runner import check_same_study, load_results, run_benchmark, run_one
