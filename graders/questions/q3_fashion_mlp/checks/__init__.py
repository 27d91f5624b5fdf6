"""Q3's tests: the architecture (by shapes and by behaviour), the loss histories, the grader's
own test accuracy of the trained weights, whether the reported history agrees with it, the loss
plot, and the three random test images with their class probabilities.

No printed number is read, and no number the student's code computed either: accuracy, test
loss and class probabilities are recomputed here, in the grader's own process, from the trained
weights the probe saved, on the grader's own copy of the test set.

One module per thing checked: ``architecture`` (q3.architecture), ``setup``
(q3.training_setup: the optimizer, the training DataLoader and the model's modules, read from
the live objects), ``histories`` (q3.loss_histories, q3.history_consistent), ``accuracy``
(q3.test_accuracy and the grader's measure of the trained weights the others share), ``plots``
(q3.loss_plot) and ``samples`` (q3.random_samples, q3.sample_probabilities); ``shared`` holds
what several of them read, ``variants`` the usual wrong forward passes (to name the one a
student's model computes).
``CHECKS`` is the order of the rubric and of every report.
"""

from __future__ import annotations

from graders.questions.q3_fashion_mlp.checks import (
    accuracy,
    architecture,
    histories,
    plots,
    samples,
    setup,
)

CHECKS = (
    architecture.architecture,
    setup.training_setup,
    histories.loss_histories,
    accuracy.test_accuracy,
    histories.history_consistent,
    plots.loss_plot,
    samples.random_samples,
    samples.sample_probabilities,
)
