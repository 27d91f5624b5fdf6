"""Question 3's notebook: a multilayer perceptron for Fashion-MNIST, trained with SGD in torch.

The cells keep the course demo's names (``trainingdata``, ``trainDataLoader``, ``loss``,
``optimizer``), which the grader looks up, and every setting the grader may lower on a CPU
(epochs, training images) is in the parameters cell, so no later cell may repeat a number.
"""

from __future__ import annotations

from tools.notebooks.cells import NotebookSpec, code, free_response, md, parameters
from tools.notebooks.instructions import DATA_RULES, HOW_TO_ANSWER

Q3_INTRO = r"""
The course demo trained a logistic-regression classifier on Fashion-MNIST. Here you replace it
with a dense network with **three hidden layers of 256, 128 and 64 neurons, each followed by a
ReLU**, and an output layer of 10 logits (no softmax in the model: `CrossEntropyLoss` applies
it). Train it with plain SGD, plot the train and test loss per epoch, report the test accuracy,
and look at the predicted class probabilities of a few random test images.

Names the grader looks for, so keep them exactly:

| name | what it must be |
|---|---|
| `FashionMLP` | your `torch.nn.Module` class |
| `model` | an instance of it, moved to `DEVICE` |
| `loss` | `torch.nn.CrossEntropyLoss()` |
| `optimizer` | `torch.optim.SGD` over `model.parameters()` with `lr=LEARNING_RATE` |
| `train_loss_history`, `test_loss_history` | one mean loss (a float) per epoch |
| `test_accuracy_history` | test accuracy (a float in [0, 1]) per epoch |
| `random_indices` | the `N_SAMPLES` test-set indices you visualize |
| `sample_probabilities` | one array of 10 class probabilities per visualized image |

The grader recomputes the test accuracy of your trained `model` itself, so report what your
model really does.
"""

Q3_IMPORTS = """
import numpy as np
import torch
import torchvision
import matplotlib.pyplot as plt
from torch.utils.data import DataLoader
"""

Q3_PARAMETERS = """
EPOCHS = 25            # the grader may lower this on a CPU
BATCH_SIZE = 64
LEARNING_RATE = 0.01
DATA_ROOT = "./data"   # holds FashionMNIST/raw/
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRAIN_LIMIT = None     # None = all 60,000 training images; the grader may use fewer
N_SAMPLES = 3          # random test images to visualize
SEED = 0
"""

Q3_SEEDS = """
torch.manual_seed(SEED)
np.random.seed(SEED)
print("device:", DEVICE)
"""

Q3_DATA_INTRO = """
## The data

torchvision reads the Fashion-MNIST files from `DATA_ROOT` (nothing is downloaded).
`ToTensor()` turns each 28x28 image into a float tensor of shape `(1, 28, 28)` with values in
[0, 1]. The labels are the integers 0-9; `CLASS_NAMES` says what they mean.
"""

Q3_DATA = """
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

trainingdata = torchvision.datasets.FashionMNIST(
    DATA_ROOT, train=True, download=False, transform=torchvision.transforms.ToTensor())
testdata = torchvision.datasets.FashionMNIST(
    DATA_ROOT, train=False, download=False, transform=torchvision.transforms.ToTensor())
if TRAIN_LIMIT:
    trainingdata = torch.utils.data.Subset(trainingdata, range(TRAIN_LIMIT))
print(len(trainingdata), "training images,", len(testdata), "test images")

image, label = trainingdata[0]
print(image.shape, label, CLASS_NAMES[label])
"""

Q3_LOADERS = """
trainDataLoader = DataLoader(trainingdata, batch_size=BATCH_SIZE, shuffle=True)
testDataLoader = DataLoader(testdata, batch_size=BATCH_SIZE, shuffle=False)
print(len(trainDataLoader), "training batches,", len(testDataLoader), "test batches")

images, labels = next(iter(trainDataLoader))
plt.figure(figsize=(10, 4))
for index in range(5):
    plt.subplot(1, 5, index + 1)
    plt.title(CLASS_NAMES[labels[index].item()])
    plt.imshow(images[index].squeeze(), cmap=plt.cm.gray)
    plt.axis("off")
plt.show()
"""

Q3_MODEL_INTRO = """
## The model

Complete `FashionMLP`: 784 inputs (a flattened image) -> 256 -> 128 -> 64 -> 10, with a ReLU
after each of the three hidden layers and none after the output layer. `forward` receives a
batch of images of shape `(N, 1, 28, 28)` and returns logits of shape `(N, 10)`.

Then create `model` on `DEVICE`, the loss function `loss` (cross entropy) and the optimizer
`optimizer` (SGD with learning rate `LEARNING_RATE`).
"""

Q3_MODEL = """
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x.reshape(-1, 28 * 28)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        return self.out(x)
        ### END SOLUTION
"""

Q3_SETUP = """
# Create `model` (on DEVICE), `loss` and `optimizer`.
### BEGIN SOLUTION
model = FashionMLP().to(DEVICE)
loss = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
### END SOLUTION
print(model)
"""

Q3_TRAIN_INTRO = """
## Training

Train for `EPOCHS` epochs. In each epoch, make one pass over `trainDataLoader` with SGD steps,
then evaluate the model on all of `testDataLoader` without computing gradients. After each
epoch append to the three lists below:

* `train_loss_history`: the mean training loss over the epoch's batches,
* `test_loss_history`: the mean test loss,
* `test_accuracy_history`: the fraction of test images classified correctly,

and print the epoch's numbers. Move every batch to `DEVICE` before using it.
"""

Q3_TRAIN = """
train_loss_history = []
test_loss_history = []
test_accuracy_history = []

### BEGIN SOLUTION
for epoch in range(EPOCHS):
    model.train()
    train_loss = 0.0
    for images, labels in trainDataLoader:
        images, labels = images.to(DEVICE), labels.to(DEVICE)
        optimizer.zero_grad()
        fit = loss(model(images), labels)
        fit.backward()
        optimizer.step()
        train_loss += fit.item()

    model.eval()
    test_loss = 0.0
    correct = 0
    with torch.no_grad():
        for images, labels in testDataLoader:
            images, labels = images.to(DEVICE), labels.to(DEVICE)
            logits = model(images)
            test_loss += loss(logits, labels).item()
            correct += (logits.argmax(dim=1) == labels).sum().item()

    train_loss_history.append(train_loss / len(trainDataLoader))
    test_loss_history.append(test_loss / len(testDataLoader))
    test_accuracy_history.append(correct / len(testdata))
    print(f"Epoch {epoch}, Train loss {train_loss_history[-1]:.4f}, "
          f"Test loss {test_loss_history[-1]:.4f}, Test accuracy {test_accuracy_history[-1]:.4f}")
### END SOLUTION
"""

Q3_PLOT_INTRO = """
## Loss curves

Plot the train and the test loss against the epoch in one figure, with axis labels and a
legend, and show it with `plt.show()`.
"""

Q3_PLOT = """
### BEGIN SOLUTION
epochs = range(1, len(train_loss_history) + 1)
plt.plot(epochs, train_loss_history, "-o", linewidth=2, label="Train loss")
plt.plot(epochs, test_loss_history, "-o", linewidth=2, label="Test loss")
plt.xlabel("Epoch")
plt.ylabel("Cross-entropy loss")
plt.grid(True)
plt.legend()
plt.show()
### END SOLUTION
"""

Q3_ACCURACY = """
print("Final test accuracy:", test_accuracy_history[-1])
"""

Q3_TEST_VS_TRAIN = r"""
**Your answer (q3_test_vs_train):**

The weights are fitted to the training images only: every SGD step lowers the loss on the
batch it sees, so the model partly adapts to details (and noise) of the training set that do
not carry over to new images. The test images were never used for fitting, so their loss is
an honest estimate of the error on unseen data and is normally higher; the gap between the two
curves measures this overfitting and tends to widen with more epochs. (Early on the reported
train loss can even be above the test loss, because it averages over the epoch while the model
was still improving, whereas the test loss is measured at the end of the epoch.)
"""

Q3_SAMPLES_INTRO = """
## Predictions on random test images

`visualize_pred` (given) shows an image next to a bar chart of its class probabilities. Draw
`N_SAMPLES` distinct random indices **from the whole test set** into `random_indices` (use
`np.random`, which is seeded above). For each index, take the image and label from `testdata`,
compute the class probabilities with the softmax of your model's logits, append them (an array
of 10 numbers) to `sample_probabilities` and call `visualize_pred(image, true_label,
probabilities)`.
"""

Q3_VISUALIZE = '''
def visualize_pred(image, true_label, probabilities):
    """Show a test image beside a bar chart of the predicted class probabilities.

    image: a (1, 28, 28) or (28, 28) tensor; probabilities: 10 numbers, shape (10,) or (1, 10).
    """
    probabilities = np.asarray(probabilities).reshape(-1)
    predicted_class = int(np.argmax(probabilities))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.imshow(image.squeeze().cpu().numpy(), cmap=plt.cm.gray)
    ax1.set_title(f"True: {CLASS_NAMES[true_label]}, Pred: {CLASS_NAMES[predicted_class]}")
    ax1.axis("off")
    ax2.bar(range(10), probabilities, color="blue", alpha=0.7)
    ax2.set_xticks(range(10))
    ax2.set_title(f"Class probabilities (Pred: {predicted_class})")
    ax2.set_xlabel("Class")
    ax2.set_ylabel("Probability")
    plt.tight_layout()
    plt.show()
'''

Q3_SAMPLES = """
sample_probabilities = []
### BEGIN SOLUTION
random_indices = np.random.choice(len(testdata), N_SAMPLES, replace=False)
model.eval()
for idx in random_indices:
    image, true_label = testdata[idx]
    with torch.no_grad():
        logits = model(image.unsqueeze(0).to(DEVICE))
    probabilities = torch.softmax(logits, dim=1).squeeze(0).cpu().numpy()
    sample_probabilities.append(probabilities)
    visualize_pred(image, true_label, probabilities)
### END SOLUTION
"""

Q3_OBSERVATIONS = r"""
**Your answer (q3_observations):**

*Loss curves.* Both losses fall quickly in the first epochs and then flatten; the training loss
keeps decreasing steadily while the test loss levels off, with bumps from epoch to epoch
because plain SGD at a fixed learning rate is noisy. The growing gap between them is the start
of overfitting, which also tells us when more epochs stop paying off.

*Sample predictions.* For distinctive classes (trousers, bags, sneakers, ankle boots) the bar
chart is usually one tall bar near 1: the model is confident and right. The mistakes and the
spread-out bar charts concentrate on the upper-body garments (T-shirt/top, pullover, coat,
shirt), which look alike at 28x28 pixels; there the second-highest bar is often the true class.
The probabilities therefore say something useful about how sure the model is, not only which
class it picks.
"""


def spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q3_fashion_mlp.ipynb",
        question="q3",
        cells=(
            md("q3-title", "# Question 3: a multilayer perceptron for Fashion-MNIST"),
            md("q3-instructions", Q3_INTRO, HOW_TO_ANSWER, DATA_RULES),
            code("q3-imports", Q3_IMPORTS),
            parameters("q3-parameters", Q3_PARAMETERS),
            code("q3-seeds", Q3_SEEDS),
            md("q3-data-intro", Q3_DATA_INTRO),
            code("q3-data", Q3_DATA),
            code("q3-loaders", Q3_LOADERS),
            md("q3-model-intro", Q3_MODEL_INTRO),
            code("q3-model", Q3_MODEL),
            code("q3-setup", Q3_SETUP),
            md("q3-train-intro", Q3_TRAIN_INTRO),
            code("q3-train", Q3_TRAIN),
            md("q3-plot-intro", Q3_PLOT_INTRO),
            code("q3-plot", Q3_PLOT),
            code("q3-accuracy", Q3_ACCURACY),
            md(
                "q3-test-vs-train-question",
                "**Why is the test loss higher than the training loss?**",
            ),
            free_response("q3_test_vs_train", Q3_TEST_VS_TRAIN),
            md("q3-samples-intro", Q3_SAMPLES_INTRO),
            code("q3-visualize", Q3_VISUALIZE),
            code("q3-samples", Q3_SAMPLES),
            md(
                "q3-observations-question",
                "**What do you observe in the loss curves and in the "
                "predicted probabilities of the sample images?**",
            ),
            free_response("q3_observations", Q3_OBSERVATIONS),
        ),
    )
