"""The cost models against published measurements, and the fits of their calibrated
parameters. Data: ``validation/data/*_measurements.csv`` (each row keeps its source key).

:mod:`~cost_models.validation.train` and :mod:`~cost_models.validation.inference` predict the
rows; :mod:`~cost_models.validation.train_fit` and :mod:`~cost_models.validation.inference_fit`
refit the calibration and report leave-one-out / leave-one-source-out errors
(``python -m cost_models.validation.train_fit``). Imports the models; the models never import
this package.
"""

from __future__ import annotations
