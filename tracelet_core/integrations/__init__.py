"""Tracelet for libraries beyond Lightning, through each library's own extension point (no patching).

One module per library; each imports its library only when used, so ``import tracelet_core`` stays free
of them:

- :mod:`tracelet_core.integrations.xgboost`: ``TraceletXGBoostCallback`` (``xgboost.callback.TrainingCallback``)
- :mod:`tracelet_core.integrations.lightgbm`: ``TraceletLightGBMCallback`` (a LightGBM callback)
- :mod:`tracelet_core.integrations.sklearn`: ``track(estimator, ...)``, child runs for hyper-parameter searches
- :mod:`tracelet_core.integrations.transformers`: ``TraceletTrainerCallback`` (``transformers.TrainerCallback``)
"""
