"""Q4 scenarios: the numpy backprop notebook with one known mistake each, and one accepted layout.

Scores are for the quick profile on the committed 2,000 training / 1,000 test images, with
enough epochs that its calibrated q4.min_test_accuracy separates a trained network from an
untrained one (10 epochs: threshold 0.478, untrained ~0.10; one epoch cannot, the reference only
reaches ~0.115). The function checks (helpers, forward, backprop_step) run on the grader's own
weights and data, so a broken data pipeline costs only what depends on training.
"""

from __future__ import annotations

from tools.notebooks.cells import BEGIN_SOLUTION, END_SOLUTION
from tools.notebooks.q4_backprop import Q4_BACKWARD, Q4_INIT
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

DATA_COURSE_RAW = """\
import tensorflow as tf
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data(path="mnist.npz")
"""


def solution_of(cell: str) -> str:
    """The code between a template cell's solution markers, without the trailing newline."""
    return cell.split(f"{BEGIN_SOLUTION}\n", 1)[1].split(END_SOLUTION, 1)[0].rstrip()


INIT_GLOBALS_OLD = solution_of(Q4_INIT) + "\n"

INIT_GLOBALS_NEW = """\
w1 = rng.normal(loc=0, scale=np.sqrt(1 / 784), size=(784, 32))
w2 = rng.normal(loc=0, scale=np.sqrt(1 / 32), size=(32, 32))
w3 = rng.normal(loc=0, scale=np.sqrt(1 / 32), size=(32, 10))
b1, b2, b3 = np.zeros(32), np.zeros(32), np.zeros(10)
weights = [w1, w2, w3]
biases = [b1, b2, b3]
"""


FORWARD_OLD = """\
    a = sample.flatten()
    for i in range(len(weights)):
        z = np.dot(a, weights[i]) + biases[i]
        a = sigmoid(z) if i < len(weights) - 1 else softmax(z)
"""

FORWARD_GLOBALS = """\
    a1 = sigmoid(np.dot(sample.flatten(), w1) + b1)
    a2 = sigmoid(np.dot(a1, w2) + b2)
    a = softmax(np.dot(a2, w3) + b3)
"""

TRAIN_OLD = solution_of(Q4_BACKWARD)
"""The reference train_one_sample body, as the all-correct notebook holds it (the cell's end)."""

TRAIN_GLOBALS = """\
    global w1, w2, w3, b1, b2, b3
    z1 = np.dot(a, w1) + b1
    a1 = sigmoid(z1)
    z2 = np.dot(a1, w2) + b2
    a2 = sigmoid(z2)
    a3 = softmax(np.dot(a2, w3) + b3)

    d3 = a3 - integer_to_one_hot(y, 10)
    d2 = d3.dot(w3.T) * dsigmoid(z2)
    d1 = d2.dot(w2.T) * dsigmoid(z1)

    w3 = w3 - np.outer(a2, d3) * learning_rate
    b3 = b3 - d3 * learning_rate
    w2 = w2 - np.outer(a1, d2) * learning_rate
    b2 = b2 - d2 * learning_rate
    w1 = w1 - np.outer(a, d1) * learning_rate
    b1 = b1 - d1 * learning_rate"""

TRAIN_ARGUMENTS = """\
    weights, biases = list(weights), list(biases)
    for i in range(len(weights)):
        z = np.dot(activations[-1], weights[i]) + biases[i]
        pre_activations.append(z)
        activations.append(sigmoid(z) if i < len(weights) - 1 else softmax(z))

    delta = activations[-1] - integer_to_one_hot(y, 10)  # dLoss/dz of the output layer
    for i in range(len(weights) - 1, -1, -1):
        gradient = np.outer(activations[i], delta)
        bias_gradient = delta
        if i > 0:
            delta = delta.dot(weights[i].T) * dsigmoid(pre_activations[i - 1])
        weights[i] = weights[i] - gradient * learning_rate
        biases[i] = biases[i] - bias_gradient * learning_rate
    return weights, biases"""

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
    Scenario(
        name="q4_course_raw_pixels",
        description=(
            "The course's starter loading: tf.keras.datasets.mnist.load_data() and no division "
            "by 255, so the network trains on raw 0-255 pixels. Correct backprop: the grader "
            "measures the trained weights on raw test pixels against the threshold calibrated "
            "for raw pixels, and the notebook scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=DATA_TORCHVISION, new=DATA_COURSE_RAW),),
        expected_notices={"q4": ("load_data() was served from the grader's copy of MNIST",)},
    ),
    Scenario(
        name="q4_course_raw_pixels_ascent",
        description=(
            "Raw 0-255 pixels as the starter loads them, and the update adds the gradient "
            "instead of subtracting it: backprop_step fails, and the network, measured on raw "
            "pixels against the raw-pixel threshold, is no better than chance."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=DATA_TORCHVISION, new=DATA_COURSE_RAW),
            Edit(
                old="weights[i] -= weight_gradients[i] * learning_rate\n"
                "        biases[i] -= bias_gradients[i] * learning_rate",
                new="weights[i] += weight_gradients[i] * learning_rate\n"
                "        biases[i] += bias_gradients[i] * learning_rate",
            ),
        ),
        expected_scores={"q4": 12 - 4 - 3},
        expected_failures={
            "q4.backprop_step": "update",
            "q4.final_accuracy": "raw 0-255 pixels",
        },
    ),
    Scenario(
        name="q4_course_separate_globals",
        description=(
            "The network kept in separate globals w1, w2, w3 and b1, b2, b3 (beside a `weights` "
            "list the functions never read), and train_one_sample rebinding them with "
            "`global`: the grader finds the globals the functions use, injects its weights "
            "there, and the correct notebook scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=INIT_GLOBALS_OLD, new=INIT_GLOBALS_NEW),
            Edit(old=FORWARD_OLD, new=FORWARD_GLOBALS),
            Edit(old=TRAIN_OLD, new=TRAIN_GLOBALS),
        ),
    ),
    Scenario(
        name="q4_course_arrays_as_arguments",
        description=(
            "feed_forward_sample(sample, y, weights, biases) and train_one_sample(sample, y, "
            "weights, biases, lr) returning new lists (the epoch loop rebinds them): the "
            "grader passes its own weights as those arguments, reads the returned lists, and "
            "the correct notebook scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="def feed_forward_sample(sample, y):",
                new="def feed_forward_sample(sample, y, weights, biases):",
            ),
            Edit(
                old="losses[i], one_hot_guesses[i] = feed_forward_sample(x[i], y[i])",
                new="losses[i], one_hot_guesses[i] = feed_forward_sample(\n"
                "            x[i], y[i], weights, biases\n"
                "        )",
            ),
            Edit(
                old="def train_one_sample(sample, y, learning_rate=0.003):",
                new="def train_one_sample(sample, y, weights, biases, learning_rate=0.003):",
            ),
            Edit(old=TRAIN_OLD, new=TRAIN_ARGUMENTS),
            Edit(
                old="        train_one_sample(x_train[i], y_train[i], learning_rate)",
                new="        global weights, biases\n"
                "        weights, biases = train_one_sample(\n"
                "            x_train[i], y_train[i], weights, biases, learning_rate\n"
                "        )",
            ),
        ),
    ),
)
