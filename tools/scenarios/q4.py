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
FULL = 13
"""Q4's points in graders/config/rubric.toml (make_scenarios states every score in full)."""

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
        expected_scores={"q4": FULL - 2.667},  # backprop_step keeps 4 * 1/3, as rounded
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
        expected_scores={"q4": FULL - 2 - 3},
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
        expected_scores={"q4": FULL - 0.25},
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
        expected_scores={"q4": FULL - 3},
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
        expected_scores={"q4": FULL - 4 - 3},
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

UPDATE = (
    "weights[i] -= weight_gradients[i] * learning_rate\n"
    "        biases[i] -= bias_gradients[i] * learning_rate"
)
"""The template's update loop body: what a notebook ignoring its learning rate changes."""

BACKWARD_AND_UPDATE = """\
        weight_gradients[i] = np.outer(activations[i], delta)
        bias_gradients[i] = delta

    for i in range(len(weights)):
        weights[i] -= weight_gradients[i] * learning_rate
        biases[i] -= bias_gradients[i] * learning_rate"""

UPDATE_WHILE_BACKPROPAGATING = """\
        weights[i] -= np.outer(activations[i], delta) * learning_rate
        biases[i] -= delta * learning_rate"""

TRAIN_SIGNATURE = "def train_one_sample(sample, y, learning_rate=0.003):"
EPOCH_CALL = "train_one_sample(x_train[i], y_train[i], learning_rate)"
TRAIN_INPUT = "    a = sample.flatten()\n\n    # We will store"
FORWARD_INPUT = "    a = sample.flatten()\n    for i in range(len(weights)):"
TRAIN_Z = "z = np.dot(activations[-1], weights[i]) + biases[i]"
FORWARD_Z = "z = np.dot(a, weights[i]) + biases[i]"
HIDDEN_DELTA = "delta = delta.dot(weights[i + 1].T) * dsigmoid(pre_activations[i])"
WEIGHT_GRADIENT = "weight_gradients[i] = np.outer(activations[i], delta)"
OUTPUT_DELTA = "delta = activations[-1] - integer_to_one_hot(y, 10)"
INIT_DRAW = "weights.append(rng.normal(loc=0, scale=std, size=(n_in, n_out)))"
INIT_BIAS = "biases.append(np.zeros(n_out))"

SCENARIOS += (
    # -- the learning rate the grader passes --------------------------------------------------
    Scenario(
        name="q4_lr_literal",
        description=(
            "train_one_sample updates with a typed-in 0.003 instead of its learning_rate "
            "argument: it trains as the template does, but the grader passes another rate and "
            "backprop_step fails every layer, saying the update did not scale with it."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=UPDATE, new=UPDATE.replace("* learning_rate", "* 0.003")),),
        expected_scores={"q4": FULL - 4},
        expected_failures={"q4.backprop_step": "did not scale with the learning rate passed"},
    ),
    Scenario(
        name="q4_lr_global_ignores_argument",
        description=(
            "train_one_sample takes learning_rate but updates with the global LEARNING_RATE: "
            "backprop_step fails, naming the global the update was made with."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=UPDATE, new=UPDATE.replace("* learning_rate", "* LEARNING_RATE")),),
        expected_scores={"q4": FULL - 4},
        expected_failures={"q4.backprop_step": "the global LEARNING_RATE"},
    ),
    Scenario(
        name="q4_course_rate_global_no_parameter",
        description=(
            "Accepted: train_one_sample(sample, y) with no learning-rate parameter, updating "
            "with a global `eta` the notebook sets from LEARNING_RATE: the grader sets that "
            "global to its own rate before each call, and the notebook scores in full."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=TRAIN_SIGNATURE, new="eta = LEARNING_RATE\n\n\ndef train_one_sample(sample, y):"
            ),
            Edit(old=UPDATE, new=UPDATE.replace("* learning_rate", "* eta")),
            Edit(old=EPOCH_CALL, new="train_one_sample(x_train[i], y_train[i])"),
        ),
    ),
    # -- float32 ------------------------------------------------------------------------------
    Scenario(
        name="q4_weights_float32",
        description=(
            "Accepted: the seeded draws and the zero biases stored as float32 (and trained so): "
            "init compares them with the reference's draws at float32 precision; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=INIT_DRAW, new=INIT_DRAW[:-1] + ".astype(np.float32))"),
            Edit(old=INIT_BIAS, new="biases.append(np.zeros(n_out, dtype=np.float32))"),
        ),
    ),
    Scenario(
        name="q4_float32_arithmetic",
        description=(
            "Accepted: the forward pass and backprop computed in float32 (inputs and weights "
            "cast, the updated weights stored back as float32): correct to float32 precision, "
            "so full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=FORWARD_INPUT,
                new=FORWARD_INPUT.replace("flatten()", "flatten().astype(np.float32)"),
            ),
            Edit(
                old=TRAIN_INPUT,
                new=TRAIN_INPUT.replace("flatten()", "flatten().astype(np.float32)"),
            ),
            Edit(
                old=TRAIN_Z,
                new="z = activations[-1] @ weights[i].astype(np.float32) + biases[i].astype("
                "np.float32)",
            ),
            Edit(
                old=OUTPUT_DELTA,
                new="delta = (activations[-1] - integer_to_one_hot(y, 10)).astype(np.float32)",
            ),
            Edit(
                old=UPDATE,
                new="lr = np.float32(learning_rate)\n"
                "        weights[i] = (weights[i] - weight_gradients[i] * lr).astype(np.float32)\n"
                "        biases[i] = (biases[i] - bias_gradients[i] * lr).astype(np.float32)",
            ),
        ),
    ),
    # -- the numbers the notebook reports -----------------------------------------------------
    Scenario(
        name="q4_reported_typed_in",
        description=(
            "feed_forward_dataset prints a typed-in percentage (91.20 %, from another run) "
            "beside the real count: reported_consistent loses the accuracy's half and names it; "
            "the printed loss still agrees."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old='correct_guess_percent = format((correct_guesses / y.shape[0]) * 100, ".2f")',
                new='correct_guess_percent = "91.20"  # what I got on Colab',
            ),
        ),
        expected_scores={"q4": FULL - 0.5},
        expected_failures={"q4.reported_consistent": "accuracy is wrong"},
    ),
    Scenario(
        name="q4_reports_training_accuracy",
        description=(
            "test_and_train evaluates the training data after each epoch, so the last test "
            "accuracy the notebook printed is the untrained network's: reported_consistent "
            "finds it disagrees with the final weights."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="    train_one_epoch()\n    feed_forward_test_data()",
                new="    train_one_epoch()\n    feed_forward_training_data()",
            ),
        ),
        expected_scores={"q4": FULL - 1},
        expected_failures={"q4.reported_consistent": "does not match the trained weights"},
    ),
    # -- backprop mistakes --------------------------------------------------------------------
    Scenario(
        name="q4_update_inside_backward_loop",
        description=(
            "Each layer is updated inside the backward loop, before the next delta is "
            "propagated through it (the layers in the wrong order: update before backprop): "
            "the hidden layers' updates are off, backprop_step keeps the output layer's third."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=BACKWARD_AND_UPDATE, new=UPDATE_WHILE_BACKPROPAGATING),),
        expected_scores={"q4": FULL - 2.667},
        expected_failures={"q4.backprop_step": "already updated"},
    ),
    Scenario(
        name="q4_missing_bias_update",
        description=(
            "The update loop forgets the biases: they stay zero, backprop_step loses the "
            "biases' half of every layer; the weights alone still learn past the threshold."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=UPDATE,
                new="weights[i] -= weight_gradients[i] * learning_rate",
            ),
        ),
        expected_scores={"q4": FULL - 2},
        expected_failures={"q4.backprop_step": "did not change"},
    ),
    # -- correct, written differently ---------------------------------------------------------
    Scenario(
        name="q4_derivative_from_activation",
        description=(
            "Accepted: the hidden layers' derivative written a * (1 - a) from the stored "
            "activations (equal to dsigmoid(z)), not dsigmoid(z) itself: full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="* dsigmoid(pre_activations[i])",
                new="* activations[i + 1] * (1 - activations[i + 1])",
            ),
        ),
    ),
    Scenario(
        name="q4_vectorized_rows",
        description=(
            "Accepted: samples as (1, 784) rows and the gradients as matrix products "
            "(a.T @ delta, the bias gradient delta summed over the batch axis), with @ for "
            "the layers: full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=FORWARD_Z, new="z = a @ weights[i] + biases[i]"),
            Edit(old=TRAIN_INPUT, new=TRAIN_INPUT.replace("flatten()", "reshape(1, -1)")),
            Edit(old=TRAIN_Z, new="z = activations[-1] @ weights[i] + biases[i]"),
            Edit(old=WEIGHT_GRADIENT, new="weight_gradients[i] = activations[i].T @ delta"),
            Edit(old="bias_gradients[i] = delta", new="bias_gradients[i] = delta.sum(axis=0)"),
        ),
    ),
    Scenario(
        name="q4_einsum_products",
        description=(
            "Accepted: every product written with np.einsum (the layers, the deltas, the outer "
            "products of the gradients): full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=FORWARD_Z, new='z = np.einsum("i,ij->j", a, weights[i]) + biases[i]'),
            Edit(
                old=TRAIN_Z,
                new='z = np.einsum("i,ij->j", activations[-1], weights[i]) + biases[i]',
            ),
            Edit(
                old=HIDDEN_DELTA,
                new='delta = np.einsum("j,ij->i", delta, weights[i + 1]) * '
                "dsigmoid(pre_activations[i])",
            ),
            Edit(
                old=WEIGHT_GRADIENT,
                new='weight_gradients[i] = np.einsum("i,j->ij", activations[i], delta)',
            ),
        ),
    ),
    Scenario(
        name="q4_reshape_products",
        description=(
            "Accepted: the weight gradient as a broadcast product of a column and a row "
            "(reshape(-1, 1) * reshape(1, -1)) instead of np.outer: full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=WEIGHT_GRADIENT,
                new="weight_gradients[i] = activations[i].reshape(-1, 1) * delta.reshape(1, -1)",
            ),
        ),
    ),
    Scenario(
        name="q4_renamed_locals",
        description=(
            "Accepted: the backward pass's local names changed throughout (zs, outputs, err, "
            "grads_w, grads_b): full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old="pre_activations", new="zs", rename=True),
            Edit(old="activations", new="outputs", rename=True),
            Edit(old="delta", new="err", rename=True),
            Edit(old="weight_gradients", new="grads_w", rename=True),
            Edit(old="bias_gradients", new="grads_b", rename=True),
        ),
    ),
    Scenario(
        name="q4_out_in_column_vectors",
        description=(
            "Accepted: weights stored (n_out, n_in), biases and activations as column vectors "
            "(n, 1), z = W @ a + b and the gradient delta @ a.T: full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=INIT_DRAW, new=INIT_DRAW[:-1] + ".T)"),
            Edit(old=INIT_BIAS, new="biases.append(np.zeros((n_out, 1)))"),
            Edit(old=FORWARD_INPUT, new=FORWARD_INPUT.replace("flatten()", "reshape(-1, 1)")),
            Edit(old=FORWARD_Z, new="z = weights[i] @ a + biases[i]"),
            Edit(
                old="loss = cross_entropy_loss(integer_to_one_hot(y, 10), a)",
                new="loss = cross_entropy_loss(integer_to_one_hot(y, 10), a.ravel())",
            ),
            Edit(old=TRAIN_INPUT, new=TRAIN_INPUT.replace("flatten()", "reshape(-1, 1)")),
            Edit(old=TRAIN_Z, new="z = weights[i] @ activations[-1] + biases[i]"),
            Edit(old=OUTPUT_DELTA, new=OUTPUT_DELTA + ".reshape(-1, 1)"),
            Edit(
                old=HIDDEN_DELTA,
                new="delta = weights[i + 1].T @ delta * dsigmoid(pre_activations[i])",
            ),
            Edit(old=WEIGHT_GRADIENT, new="weight_gradients[i] = delta @ activations[i].T"),
        ),
    ),
)
