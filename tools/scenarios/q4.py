"""Q4 scenarios: the numpy backprop notebook with one known mistake each, and one accepted layout.

Scores are for the quick profile on the committed 2,000 training / 1,000 test images, with
enough epochs that its calibrated q4.min_test_accuracy separates a trained network from an
untrained one (10 epochs: threshold 0.478, untrained ~0.10; one epoch cannot, the reference only
reaches ~0.115). The function checks (helpers, forward, backprop_step) run on the grader's own
weights and data, so a broken data pipeline costs only what depends on training.
"""

from __future__ import annotations

from tools.scenarios import Edit, Scenario

NOTEBOOK = "q4_numpy_backprop.ipynb"

DATA_TORCHVISION = """\
mnist_train = torchvision.datasets.MNIST(DATA_ROOT, train=True, download=False)
mnist_test = torchvision.datasets.MNIST(DATA_ROOT, train=False, download=False)
x_train = mnist_train.data.numpy().astype(np.float32) / 255.0
y_train = mnist_train.targets.numpy()
x_test = mnist_test.data.numpy().astype(np.float32) / 255.0
y_test = mnist_test.targets.numpy()
"""

DATA_TENSORFLOW = """\
import tensorflow as tf
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(path="mnist.npz")
x_train = x_train.astype(np.float32) / 255.0
x_test = x_test.astype(np.float32) / 255.0
"""

SCENARIOS = (
    Scenario(
        name="q4_dsigmoid_on_activation",
        description=(
            "The backward pass multiplies by dsigmoid(a) at the activation instead of "
            "dsigmoid(z) at the pre-activation (still learns, but the hidden-layer gradients "
            "are wrong): backprop_step keeps only the output layer's third."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="* dsigmoid(pre_activations[i])",
                new="* dsigmoid(activations[i + 1])",
            ),
        ),
        expected_scores={"q4": 9.333},  # backprop_step: 4 * 1/3, rounded as scored
        expected_failures={"q4.backprop_step": "pre-activation"},
    ),
    Scenario(
        name="q4_wrong_init_variance",
        description=(
            "The standard deviation is set to 1/max(n_in, n_out), i.e. the variance is "
            "1/max(n_in, n_out)^2: init scores 0, and the tiny weights leave the quick "
            "profile's training stuck at chance, so final_accuracy fails too."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old="std = np.sqrt(1 / max(n_in, n_out))", new="std = 1 / max(n_in, n_out)"),),
        expected_scores={"q4": 12 - 2 - 3},
        expected_failures={
            "q4.init": "expected variance 1/784",
            "q4.final_accuracy": "test accuracy",
        },
    ),
    Scenario(
        name="q4_softmax_no_max_subtraction",
        description=(
            "softmax without subtracting the maximum: exp overflows for inputs near +900 "
            "(helpers loses the stability quarter); the network's own logits stay small, so "
            "training, the forward pass and backprop are unaffected."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old="    b = x.max()\n    y = np.exp(x - b)\n", new="    y = np.exp(x)\n"),),
        expected_scores={"q4": 12 - 0.25},
        expected_failures={"q4.helpers": "+900"},
    ),
    Scenario(
        name="q4_missing_flatten",
        description=(
            "The data cell keeps the images 28x28 (no reshape to 784) and train_one_sample uses "
            "the sample as given (no flatten): training raises a shape error, so the weights "
            "stay at their initial values and only final_accuracy fails; the function checks "
            "feed flat 784-vectors, as the assignment specifies, and pass."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="x_train = x_train.reshape(-1, 784)\nx_test = x_test.reshape(-1, 784)\n", new=""
            ),
            Edit(
                old="    a = sample.flatten()\n\n    # We will store",
                new="    a = sample\n\n    # We will store",
            ),
        ),
        expected_scores={"q4": 12 - 3},
        expected_failures={"q4.final_accuracy": "never trained"},
    ),
    Scenario(
        name="q4_tensorflow_loading",
        description=(
            "The seed's data loading with tf.keras.datasets.mnist.load_data() (TensorFlow is "
            "never installed where grading runs): served from the grader's copy of the real "
            "data, exactly what Keras returns, so the notebook trains and scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=DATA_TORCHVISION, new=DATA_TENSORFLOW),),
        expected_notices={"q4": ("load_data() was served from the grader's copy of MNIST",)},
    ),
    Scenario(
        name="q4_course_colab_cells",
        description=(
            "Colab habits: a `!pip install` line and Google Drive mounted before the imports; "
            "the install is skipped and the mount does nothing, and the notebook scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="import numpy as np\nimport matplotlib.pyplot as plt\nimport torchvision",
                new="!pip install -q numpy matplotlib\nfrom google.colab import drive\n"
                "drive.mount('/content/drive')\n"
                "import numpy as np\nimport matplotlib.pyplot as plt\nimport torchvision",
            ),
        ),
        expected_notices={"q4": ("was skipped: the grader installs nothing", "drive.mount()")},
    ),
    Scenario(
        name="q4_weights_out_in",
        description=(
            "Accepted layout: weights stored (n_out, n_in) (the seeded (n_in, n_out) draws, "
            "transposed) and z = W @ a + b; correct, so it must get full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="weights.append(rng.normal(loc=0, scale=std, size=(n_in, n_out)))",
                new="weights.append(rng.normal(loc=0, scale=std, size=(n_in, n_out)).T)",
            ),
            Edit(
                old="z = np.dot(a, weights[i]) + biases[i]",
                new="z = np.dot(weights[i], a) + biases[i]",
            ),
            Edit(
                old="z = np.dot(activations[-1], weights[i]) + biases[i]",
                new="z = np.dot(weights[i], activations[-1]) + biases[i]",
            ),
            Edit(
                old="delta = delta.dot(weights[i + 1].T) * dsigmoid",
                new="delta = weights[i + 1].T.dot(delta) * dsigmoid",
            ),
            Edit(
                old="weight_gradients[i] = np.outer(activations[i], delta)",
                new="weight_gradients[i] = np.outer(delta, activations[i])",
            ),
        ),
        expected_scores={},
    ),
)
