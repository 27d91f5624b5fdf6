"""Question 4's notebook: forward pass, backpropagation and SGD written by hand in numpy.

The functions read and update the global ``weights`` and ``biases``, so the grader can set
weights of its own choosing and call them. ``tools/scenarios/q4.py`` builds its mistakes from
the answers in ``Q4_INIT`` and ``Q4_BACKWARD``, so those answers are written only here.
"""

from __future__ import annotations

from tools.notebooks.cells import NotebookSpec, code, free_response, md, parameters
from tools.notebooks.instructions import DATA_RULES, HOW_TO_ANSWER

Q4_INTRO = r"""
Here you build and train a small network on MNIST (handwritten digits) with nothing but numpy:
the forward pass, the gradients of the loss with respect to every weight and bias
(backpropagation, written out by hand instead of autodiff), and the SGD updates. torchvision is
used only to read the data files.

The network is 784 -> 32 -> 32 -> 10: sigmoid on both hidden layers, softmax on the output,
cross-entropy loss. Weights are stored as `(n_in, n_out)` matrices, so a layer computes
`z = a @ W + b`. Training goes one sample at a time, in the order of the training set
(no shuffling, no mini-batches).

The functions you write read and update the global lists `weights` and `biases`; the grader
calls them with weights of its own choosing, so they must not rely on anything else that a
training run changes. Keep all the names and signatures below.
"""

Q4_IMPORTS = """
import numpy as np
import matplotlib.pyplot as plt
import torchvision
"""

Q4_PARAMETERS = """
EPOCHS = 3
LEARNING_RATE = 0.003
DATA_ROOT = "./data"   # holds MNIST/raw/
TRAIN_LIMIT = None     # None = all 60,000
TEST_LIMIT = None      # None = all 10,000
"""

Q4_DATA_INTRO = """
## The data

The images become float32 vectors of 784 pixels scaled to [0, 1]; the labels are integers 0-9.
`TRAIN_LIMIT` and `TEST_LIMIT` keep only the first images of each set (useful while you debug).
"""

Q4_DATA = """
mnist_train = torchvision.datasets.MNIST(DATA_ROOT, train=True, download=False)
mnist_test = torchvision.datasets.MNIST(DATA_ROOT, train=False, download=False)
x_train = mnist_train.data.numpy().astype(np.float32) / 255.0
y_train = mnist_train.targets.numpy()
x_test = mnist_test.data.numpy().astype(np.float32) / 255.0
y_test = mnist_test.targets.numpy()
x_train = x_train.reshape(-1, 784)
x_test = x_test.reshape(-1, 784)
x_train, y_train = x_train[:TRAIN_LIMIT], y_train[:TRAIN_LIMIT]
x_test, y_test = x_test[:TEST_LIMIT], y_test[:TEST_LIMIT]
print(x_train.shape, y_train.shape, x_test.shape, y_test.shape)

plt.imshow(x_train[0].reshape(28, 28), cmap="gray")
plt.title(f"Label: {y_train[0]}")
plt.show()
"""

Q4_HELPERS_INTRO = """
## Helper functions

Sigmoid for the hidden neurons, softmax for the output layer and the cross-entropy loss, all
written to avoid overflow. Use them as they are.
"""

Q4_HELPERS = """
def sigmoid(x):
    # Numerically stable sigmoid function based on
    # http://timvieira.github.io/blog/post/2014/02/11/exp-normalize-trick/

    x = np.clip(x, -500, 500) # We get an overflow warning without this

    return np.where(
        x >= 0,
        1 / (1 + np.exp(-x)),
        np.exp(x) / (1 + np.exp(x))
    )

def dsigmoid(x): # Derivative of sigmoid
    return sigmoid(x) * (1 - sigmoid(x))

def softmax(x):
    # Numerically stable softmax based on (same source as sigmoid)
    # http://timvieira.github.io/blog/post/2014/02/11/exp-normalize-trick/
    b = x.max()
    y = np.exp(x - b)
    return y / y.sum()

def cross_entropy_loss(y, yHat):
    return -np.sum(y * np.log(yHat))

def integer_to_one_hot(x, max):
    # x: integer to convert to one hot encoding
    # max: the size of the one hot encoded array
    result = np.zeros(10)
    result[x] = 1
    return result
"""

Q4_INIT_INTRO = r"""
## Q1. Initialization

Create the layers 784 -> 32 -> 32 -> 10. Store them in two Python lists, in layer order:
`weights[i]` of shape `(n_in, n_out)` and `biases[i]` of shape `(n_out,)`. Draw every weight
matrix from a normal distribution with mean 0 and variance $1/\max(n_{in}, n_{out})$ using the
generator `rng` below, one layer after the other starting with the first (the grader compares
your initial weights with its own draws from the same seed); set all biases to 0.
"""

Q4_INIT = """
from numpy.random import default_rng

rng = default_rng(80085)

# Q1. Fill initialization code here.
### BEGIN SOLUTION
layer_sizes = [784, 32, 32, 10]
weights = []
biases = []
for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
    std = np.sqrt(1 / max(n_in, n_out))
    weights.append(rng.normal(loc=0, scale=std, size=(n_in, n_out)))
    biases.append(np.zeros(n_out))
### END SOLUTION

print([w.shape for w in weights], [b.shape for b in biases])
"""

Q4_FORWARD_INTRO = """
## Q2. The forward pass

`feed_forward_sample(sample, y)` runs one image through the layers (sigmoid after the hidden
layers, softmax after the last) and returns its cross-entropy loss and its prediction as a
one-hot vector of length 10. `feed_forward_dataset(x, y)` fills in the loss and the prediction
of every sample; the given rest of it prints the average loss and the number of correct
predictions and returns both.

With the random initial weights the accuracy should be close to chance (about 1 in 10).
"""

Q4_FORWARD = '''
def feed_forward_sample(sample, y):
    """ Forward pass through the neural network.
    Inputs:
      sample: 1D numpy array of 784 pixels. The input sample (an MNIST digit).
      y: An integer from 0 to 9, the label.

    Returns: the cross entropy loss, the most likely class as a one-hot vector of length 10
    """
    # Q2. Fill code here.
    ### BEGIN SOLUTION
    a = sample.flatten()
    for i in range(len(weights)):
        z = np.dot(a, weights[i]) + biases[i]
        a = sigmoid(z) if i < len(weights) - 1 else softmax(z)
    loss = cross_entropy_loss(integer_to_one_hot(y, 10), a)
    one_hot_guess = np.zeros(10)
    one_hot_guess[np.argmax(a)] = 1
    return loss, one_hot_guess
    ### END SOLUTION


def feed_forward_dataset(x, y):
    losses = np.empty(x.shape[0])
    one_hot_guesses = np.empty((x.shape[0], 10))

    # Q2. Fill code here to calculate losses, one_hot_guesses
    ### BEGIN SOLUTION
    for i in range(x.shape[0]):
        losses[i], one_hot_guesses[i] = feed_forward_sample(x[i], y[i])
    ### END SOLUTION

    y_one_hot = np.zeros((y.size, 10))
    y_one_hot[np.arange(y.size), y] = 1

    correct_guesses = np.sum(y_one_hot * one_hot_guesses)
    correct_guess_percent = format((correct_guesses / y.shape[0]) * 100, ".2f")

    print("\\nAverage loss:", np.round(np.average(losses), decimals=2))
    print("Accuracy (# of correct guesses):", correct_guesses, "/", y.shape[0],
          "(", correct_guess_percent, "%)")
    return float(np.average(losses)), int(correct_guesses)


def feed_forward_training_data():
    print("Feeding forward all training data...")
    result = feed_forward_dataset(x_train, y_train)
    print("")
    return result


def feed_forward_test_data():
    print("Feeding forward all test data...")
    result = feed_forward_dataset(x_test, y_test)
    print("")
    return result
'''

Q4_FORWARD_RUN = """
feed_forward_test_data()
"""

Q4_BACKWARD_INTRO = """
## Q3. Backpropagation

`train_one_sample(sample, y, learning_rate)` does one SGD step on one image: a forward pass
that keeps each layer's pre-activation `z` and activation `a`, then the gradients of the loss
with respect to every weight matrix and bias vector, from the output layer back to the first,
and finally the update `parameter -= learning_rate * gradient` applied to the global `weights`
and `biases`. Compute all the gradients before changing any parameter.

Useful facts: for softmax followed by cross entropy, the gradient of the loss with respect to
the output layer's `z` is `output - one_hot(y)`; the derivative of a sigmoid layer is
`dsigmoid(z)`, evaluated at that layer's pre-activation `z`.
"""

Q4_BACKWARD = """
def train_one_sample(sample, y, learning_rate=0.003):
    a = sample.flatten()

    # We will store each layer's activations to calculate gradient
    activations = [a]
    pre_activations = []

    # Q3. Fill code here.
    ### BEGIN SOLUTION
    for i in range(len(weights)):
        z = np.dot(activations[-1], weights[i]) + biases[i]
        pre_activations.append(z)
        activations.append(sigmoid(z) if i < len(weights) - 1 else softmax(z))

    delta = activations[-1] - integer_to_one_hot(y, 10)  # dLoss/dz of the output layer
    weight_gradients = [None] * len(weights)
    bias_gradients = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        if i < len(weights) - 1:
            delta = delta.dot(weights[i + 1].T) * dsigmoid(pre_activations[i])
        weight_gradients[i] = np.outer(activations[i], delta)
        bias_gradients[i] = delta

    for i in range(len(weights)):
        weights[i] -= weight_gradients[i] * learning_rate
        biases[i] -= bias_gradients[i] * learning_rate
    ### END SOLUTION
"""

Q4_EPOCH_INTRO = """
## Q4. Training

`train_one_epoch` makes one pass over the whole training set in order, one `train_one_sample`
call per image. The last cell trains for `EPOCHS` epochs and evaluates on the test set after
each one. With the full data the test accuracy should rise well above chance after the first
epoch.
"""

Q4_EPOCH = """
def train_one_epoch(learning_rate=LEARNING_RATE):
    print("Training for one epoch over the training dataset...")

    # Q4. Write the training loop over the epoch here.
    ### BEGIN SOLUTION
    for i in range(x_train.shape[0]):
        train_one_sample(x_train[i], y_train[i], learning_rate)
    ### END SOLUTION

    print("Finished training.\\n")
"""

Q4_TRAIN = """
feed_forward_test_data()

def test_and_train():
    train_one_epoch()
    feed_forward_test_data()

for i in range(EPOCHS):
    test_and_train()
"""

Q4_NOTES = r"""
**Your answer (q4_notes):**

Optional notes. The implementation follows the assignment exactly: weights drawn layer by layer
from `default_rng(80085)`, biases zero, per-sample SGD in the training set's order. The output
delta uses the softmax/cross-entropy shortcut `output - one_hot(y)`, and each hidden layer's
delta is `(delta_next @ W_next.T) * dsigmoid(z)` at that layer's pre-activation.
"""


def spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q4_numpy_backprop.ipynb",
        question="q4",
        cells=(
            md("q4-title", "# Question 4: backpropagation by hand with numpy"),
            md("q4-instructions", Q4_INTRO, HOW_TO_ANSWER, DATA_RULES),
            code("q4-imports", Q4_IMPORTS),
            parameters("q4-parameters", Q4_PARAMETERS),
            md("q4-data-intro", Q4_DATA_INTRO),
            code("q4-data", Q4_DATA),
            md("q4-helpers-intro", Q4_HELPERS_INTRO),
            code("q4-helpers", Q4_HELPERS),
            md("q4-init-intro", Q4_INIT_INTRO),
            code("q4-init", Q4_INIT),
            md("q4-forward-intro", Q4_FORWARD_INTRO),
            code("q4-forward", Q4_FORWARD),
            code("q4-forward-run", Q4_FORWARD_RUN),
            md("q4-backward-intro", Q4_BACKWARD_INTRO),
            code("q4-backward", Q4_BACKWARD),
            md("q4-epoch-intro", Q4_EPOCH_INTRO),
            code("q4-epoch", Q4_EPOCH),
            code("q4-train", Q4_TRAIN),
            md("q4-notes-intro", "**Notes (optional):** anything you want the grader to know."),
            free_response("q4_notes", Q4_NOTES),
        ),
    )
