"""Q3 scenarios: the FashionMNIST MLP notebook with one known mistake each, and accepted ways of
writing a correct model, training it and keeping its losses.

Scores are for the quick profile (20 epochs on the committed 2,000 training images, the
1,000-image test slice, CPU only). Where the student's weights do not fit the reference network,
the grader measures accuracy and probabilities itself in an MLP of the student's layer sizes,
so a wrong architecture costs the architecture test and nothing else. A training set-up other
than the assignment's (optimizer, learning rate, batch size, dropout) costs q3.training_setup
and nothing else while the model still learns; a training-loss history that is not the model's
mean loss costs q3.loss_histories its training-loss share (0.75 of 1).
"""

from __future__ import annotations

from tools.scenarios import Edit, Scenario

NOTEBOOK = "q3_fashion_mlp.ipynb"

CORRECT_CLASS = """\
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = x.reshape(-1, 28 * 28)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        return self.out(x)"""

SMALLER_CLASS = """\
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(28 * 28, 128)
        self.fc2 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = x.reshape(-1, 28 * 28)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.out(x)"""

SEED_CLASS = """\
class DNNReg(torch.nn.Module):
    def __init__(self):
        super(DNNReg, self).__init__()
        self.ly1 = torch.nn.Linear(28*28, 256) # First hidden layer
        self.act1 = torch.nn.ReLU()
        self.ly2 = torch.nn.Linear(256, 128) # Second hidden layer
        self.act2 = torch.nn.ReLU()
        self.ly3 = torch.nn.Linear(128, 64) # Third hidden layer
        self.act3 = torch.nn.ReLU()
        self.oply = torch.nn.Linear(64, 10) # Output layer

    def forward(self, x):
        x = x.view(-1, 28*28)
        x = self.act1(self.ly1(x))
        x = self.act2(self.ly2(x))
        x = self.act3(self.ly3(x))
        x = self.oply(x)
        return x"""

SEQUENTIAL_NET = """\
net = torch.nn.Sequential(
    torch.nn.Flatten(),
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 128), torch.nn.ReLU(),
    torch.nn.Linear(128, 64), torch.nn.ReLU(),
    torch.nn.Linear(64, 10),
).to(DEVICE)"""

OPTIMIZER = "optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)"
TRAIN_LOSS_APPEND = "train_loss_history.append(train_loss / len(trainDataLoader))"
LOSS_SHARE = 0.75
"""What a training-loss history that is not the model's mean loss costs in q3.loss_histories:
its form quarter and the half for really going down."""

SEED_TRAIN_LOSSES = (
    "[1.8004, 0.8813, 0.6920, 0.6010, 0.5480, 0.5138, 0.4884, 0.4696, 0.4544, 0.4415, 0.4294,\n"
    "    0.4186, 0.4102, 0.4014, 0.3928, 0.3852, 0.3781, 0.3720, 0.3650, 0.3588, 0.3511, 0.3471,\n"
    "    0.3397, 0.3352, 0.3291][:EPOCHS]"
)
"""The seed notebook's printed training losses (25 epochs on the full data), as typed in."""

OUT_FIRST_CLASS = CORRECT_CLASS.replace(
    """        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)""",
    """        self.out = torch.nn.Linear(64, 10)
        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)""",
)

REVERSED_CLASS = """\
import torch.nn.functional as F

class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer4 = torch.nn.Linear(64, 10)
        self.layer3 = torch.nn.Linear(128, 64)
        self.layer2 = torch.nn.Linear(256, 128)
        self.layer1 = torch.nn.Linear(784, 256)

    def forward(self, x):
        x = torch.flatten(x, start_dim=1)
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        x = F.relu(self.layer3(x))
        return self.layer4(x)"""

SEQUENTIAL_INSIDE_CLASS = """\
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.layers(torch.flatten(x, 1))"""

DROPOUT_CLASS = """\
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)
        self.dropout = torch.nn.Dropout(p=0.2)

    def forward(self, x):
        x = x.reshape(-1, 28 * 28)
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        x = self.dropout(torch.relu(self.fc3(x)))
        return self.out(x)"""


# `model` -> `net` everywhere it is used; each snippet occurs once in the notebook's code.
RENAME_MODEL = (
    Edit(old="model = FashionMLP().to(DEVICE)", new=SEQUENTIAL_NET),
    Edit(old="SGD(model.parameters()", new="SGD(net.parameters()"),
    Edit(old="print(model)", new="print(net)"),
    Edit(old="    model.train()\n", new="    net.train()\n"),
    Edit(old="fit = loss(model(images), labels)", new="fit = loss(net(images), labels)"),
    Edit(old="    model.eval()\n    test_loss", new="    net.eval()\n    test_loss"),
    Edit(old="logits = model(images)", new="logits = net(images)"),
    Edit(old="model.eval()\nfor idx", new="net.eval()\nfor idx"),
    Edit(old="logits = model(image.unsqueeze(0)", new="logits = net(image.unsqueeze(0)"),
)


def setup_mistake(name: str, description: str, old: str, new: str, phrase: str) -> Scenario:
    """A training set-up other than the assignment's that still trains well: it costs
    q3.training_setup (1 point) and nothing else, with ``phrase`` in the message."""
    return Scenario(
        name=name,
        description=description,
        notebook=NOTEBOOK,
        edits=(Edit(old=old, new=new),),
        expected_scores={"q3": 9.0},
        expected_failures={"q3.training_setup": phrase},
    )


def accepted_model(name: str, description: str, model_class: str) -> Scenario:
    """A correct FashionMLP written another way: full marks."""
    return Scenario(
        name=name,
        description=description,
        notebook=NOTEBOOK,
        edits=(Edit(old=CORRECT_CLASS, new=model_class),),
    )


SCENARIOS = (
    Scenario(
        name="q3_random_indices_from_loader",
        description=(
            "The seed's sampling bug: random_indices drawn from len(testDataLoader) (the "
            "number of batches, 16 here, 157 on the full set) instead of the number of images."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="np.random.choice(len(testdata), N_SAMPLES",
                new="np.random.choice(len(testDataLoader), N_SAMPLES",
            ),
        ),
        expected_scores={"q3": 9.0},
        expected_failures={"q3.random_samples": "number of batches"},
    ),
    Scenario(
        name="q3_hardcoded_cuda",
        description=(
            "The seed's hard-coded .cuda() calls, written on Colab: on a grader without a GPU "
            "they run on the CPU (the report says so), so the notebook trains and scores as "
            "its code deserves."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old="model = FashionMLP().to(DEVICE)", new="model = FashionMLP().cuda()"),
            Edit(
                old="        images, labels = images.to(DEVICE), labels.to(DEVICE)\n"
                "        optimizer.zero_grad()",
                new="        images, labels = images.cuda(), labels.cuda()\n"
                "        optimizer.zero_grad()",
            ),
        ),
        expected_notices={"q3": ("CUDA code ran on the CPU",)},
    ),
    Scenario(
        name="q3_course_download",
        description=(
            "The course's starter loading: torchvision.datasets.FashionMNIST('./FashionMNIST/', "
            "download=True): served from the grader's copy of the real data, no download."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="trainingdata = torchvision.datasets.FashionMNIST(\n"
                "    DATA_ROOT, train=True, download=False,",
                new="trainingdata = torchvision.datasets.FashionMNIST(\n"
                "    './FashionMNIST/', train=True, download=True,",
            ),
            Edit(
                old="testdata = torchvision.datasets.FashionMNIST(\n"
                "    DATA_ROOT, train=False, download=False,",
                new="testdata = torchvision.datasets.FashionMNIST(\n"
                "    './FashionMNIST/', train=False, download=True,",
            ),
        ),
        expected_notices={"q3": ("served from the grader's copy of the real data",)},
    ),
    Scenario(
        name="q3_log_softmax_output",
        description=(
            "forward returns log_softmax(logits), fed to CrossEntropyLoss: it trains the same "
            "(log_softmax is idempotent) but the model no longer outputs logits."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="        return self.out(x)",
                new="        return torch.log_softmax(self.out(x), dim=1)",
            ),
        ),
        expected_scores={"q3": 9.0},
        expected_failures={"q3.architecture": "log-probabilities"},
    ),
    Scenario(
        name="q3_never_learns",
        description=(
            "optimizer.step() is missing, so the weights never change: the grader's accuracy "
            "is at chance and the training loss stays flat (the reported numbers are honest)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="        fit.backward()\n        optimizer.step()\n",
                new="        fit.backward()\n",
            ),
        ),
        expected_scores={"q3": 10 - 2 - 0.5},
        expected_failures={
            "q3.test_accuracy": "untrained",
            "q3.loss_histories": "did not go down",
        },
    ),
    Scenario(
        name="q3_wrong_architecture",
        description=(
            "Two hidden layers (784 -> 128 -> 64 -> 10) instead of three: only the architecture "
            "test fails; the grader measures accuracy and probabilities itself, in an MLP of "
            "the student's layer sizes."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=CORRECT_CLASS, new=SMALLER_CLASS),),
        expected_scores={"q3": 8.0},
        expected_failures={"q3.architecture": "784 -> 128 -> 64 -> 10"},
    ),
    Scenario(
        name="q3_no_plot",
        description="The loss-curve cell prints the last losses instead of plotting them.",
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old='plt.plot(epochs, train_loss_history, "-o", linewidth=2, label="Train loss")\n'
                'plt.plot(epochs, test_loss_history, "-o", linewidth=2, label="Test loss")\n'
                'plt.xlabel("Epoch")\n'
                'plt.ylabel("Cross-entropy loss")\n'
                "plt.grid(True)\n"
                "plt.legend()\n"
                "plt.show()",
                new='print("last losses:", train_loss_history[-1], test_loss_history[-1])',
            ),
        ),
        expected_scores={"q3": 9.0},
        expected_failures={"q3.loss_plot": "no cell plots"},
    ),
    Scenario(
        name="q3_seed_layer_names",
        description=(
            "Accepted: the seed's own model class (DNNReg with ly1..ly3, oply, nn.ReLU modules "
            "and x.view) on DEVICE: full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=CORRECT_CLASS, new=SEED_CLASS),
            Edit(old="model = FashionMLP().to(DEVICE)", new="model = DNNReg().to(DEVICE)"),
        ),
    ),
    Scenario(
        name="q3_sequential_renamed",
        description=(
            "Accepted: an nn.Sequential with nn.Flatten, stored as `net` (no `model` at all): "
            "the probe finds it by type; full marks."
        ),
        notebook=NOTEBOOK,
        edits=RENAME_MODEL,
    ),
    Scenario(
        name="q3_course_names",
        description=(
            "The names real notebooks use: train_losses / test_losses for the histories, "
            "test_accuracies, indices for the sampled test images and probs for their "
            "probabilities. The probe finds each under its own name; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old="train_loss_history", new="train_losses", rename=True),
            Edit(old="test_loss_history", new="test_losses", rename=True),
            Edit(old="test_accuracy_history", new="test_accuracies", rename=True),
            Edit(old="random_indices", new="indices", rename=True),
            Edit(old="sample_probabilities", new="probs", rename=True),
        ),
    ),
    Scenario(
        name="q3_normalized_inputs",
        description=(
            "Both datasets normalized with FashionMNIST's mean and std (Compose([ToTensor(), "
            "Normalize((0.286,), (0.353,))])), as many course notebooks do: the probe reads the "
            "transform from the live dataset and the grader measures the trained weights on "
            "images normalized the same way; full marks (measured on raw pixels, the model "
            "looked half-trained and lost three tests)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="transform=torchvision.transforms.ToTensor())",
                new=(
                    "transform=torchvision.transforms.Compose([\n"
                    "        torchvision.transforms.ToTensor(),\n"
                    "        torchvision.transforms.Normalize((0.286,), (0.353,))]))"
                ),
                rename=True,
            ),
        ),
    ),
    Scenario(
        name="q3_float64_model",
        description=(
            "The model and its inputs in float64 (`.double()`): the probe runs the model on the "
            "grader's images in the model's own dtype; full marks (float32 images failed its "
            "first layer and cost the architecture test)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="model = FashionMLP().to(DEVICE)",
                new="model = FashionMLP().to(DEVICE).double()",
            ),
            Edit(
                old="images, labels = images.to(DEVICE), labels.to(DEVICE)",
                new="images, labels = images.to(DEVICE).double(), labels.to(DEVICE)",
                rename=True,
            ),
            Edit(
                old="logits = model(image.unsqueeze(0).to(DEVICE))",
                new="logits = model(image.unsqueeze(0).to(DEVICE).double())",
            ),
        ),
    ),
    # -- the training set-up (q3.training_setup), read from the live objects --------------------
    setup_mistake(
        "q3_adam_optimizer",
        "Adam instead of the assignment's plain SGD: it trains, the set-up is wrong.",
        OPTIMIZER,
        "optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)",
        "the optimizer is Adam; the assignment asks for SGD",
    ),
    Scenario(
        name="q3_adam_swapped_for_sgd",
        description=(
            "Trained with Adam, then `optimizer` rebound to the assignment's SGD before the "
            "notebook ends: the optimizer left in the notebook is not the one that trained the "
            "model, and the count of optimizer steps says so."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=OPTIMIZER, new="optimizer = torch.optim.Adam(model.parameters(), lr=0.001)"),
            Edit(
                old='print("Final test accuracy:", test_accuracy_history[-1])',
                new=(
                    'print("Final test accuracy:", test_accuracy_history[-1])\n'
                    "optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)"
                ),
            ),
        ),
        expected_scores={"q3": 9.0},
        expected_failures={"q3.training_setup": "the model was trained by Adam"},
    ),
    setup_mistake(
        "q3_hardcoded_lr",
        "A learning rate typed into the optimizer (lr=0.1) instead of LEARNING_RATE.",
        OPTIMIZER,
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
        "lr is 0.1 but LEARNING_RATE is 0.01",
    ),
    setup_mistake(
        "q3_momentum",
        "SGD with momentum=0.9, which the assignment's plain SGD does not have.",
        OPTIMIZER,
        "optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)",
        "momentum is 0.9",
    ),
    setup_mistake(
        "q3_weight_decay",
        "SGD with weight_decay=5e-4: L2 regularisation the assignment did not ask for.",
        OPTIMIZER,
        "optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, weight_decay=5e-4)",
        "weight_decay is 0.0005",
    ),
    setup_mistake(
        "q3_batch_size_32",
        "Training batches of 32 typed into the DataLoader instead of BATCH_SIZE (64).",
        "trainDataLoader = DataLoader(trainingdata, batch_size=BATCH_SIZE",
        "trainDataLoader = DataLoader(trainingdata, batch_size=32",
        "`trainDataLoader`'s batch_size is 32 but BATCH_SIZE is 64",
    ),
    setup_mistake(
        "q3_dropout_layer",
        "Dropout(p=0.2) after each hidden layer: invisible at evaluation (the architecture and "
        "the accuracy pass), named by the set-up check.",
        CORRECT_CLASS,
        DROPOUT_CLASS,
        "a Dropout(p=0.2) layer the assignment did not ask for",
    ),
    Scenario(
        name="q3_optimizer_on_fresh_model",
        description=(
            "The optimizer is built on a fresh FashionMLP()'s parameters, so `model` never "
            "trains: the set-up names it, the accuracy is at chance, the loss stays flat."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=OPTIMIZER,
                new="optimizer = torch.optim.SGD(FashionMLP().to(DEVICE).parameters(), "
                "lr=LEARNING_RATE)",
            ),
        ),
        expected_scores={"q3": 10 - 1 - 2 - 0.5},
        expected_failures={
            "q3.training_setup": "holds none of the model's parameters",
            "q3.test_accuracy": "untrained",
            "q3.loss_histories": "did not go down",
        },
    ),
    # -- the training-loss history against the grader's own loss of the trained weights --------
    Scenario(
        name="q3_train_history_sums",
        description=(
            "The epoch's summed batch losses appended without dividing by the number of batches "
            "(values around 50): not a mean loss, and above chance."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=TRAIN_LOSS_APPEND, new="train_loss_history.append(train_loss)"),),
        expected_scores={"q3": 10 - LOSS_SHARE},
        expected_failures={"q3.loss_histories": "a sum over the epoch's 32 batches"},
    ),
    Scenario(
        name="q3_train_history_over_batch_size",
        description=(
            "The epoch's summed batch losses divided by BATCH_SIZE instead of the number of "
            "batches (the seed's 27.8 -> 3.96 on the full data; half the mean on the slices)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=TRAIN_LOSS_APPEND, new="train_loss_history.append(train_loss / BATCH_SIZE)"),
        ),
        expected_scores={"q3": 10 - LOSS_SHARE},
        expected_failures={
            "q3.loss_histories": "divided by BATCH_SIZE (64) instead of the number of batches"
        },
    ),
    Scenario(
        name="q3_train_history_per_image",
        description=(
            "The mean of batch means divided by the number of images (len(trainingdata)) "
            "instead of the number of batches: 1/64 of the mean loss."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=TRAIN_LOSS_APPEND,
                new="train_loss_history.append(train_loss / len(trainingdata))",
            ),
        ),
        expected_scores={"q3": 10 - LOSS_SHARE},
        expected_failures={"q3.loss_histories": "divided by the number of images"},
    ),
    Scenario(
        name="q3_train_history_typed_in",
        description=(
            "The seed's printed training losses typed in after the loop: they go down and stay "
            "below chance, but they are not this model's loss."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="def visualize_pred(",
                new=f"train_loss_history = {SEED_TRAIN_LOSSES}\n\n\ndef visualize_pred(",
            ),
        ),
        expected_scores={"q3": 10 - LOSS_SHARE},
        expected_failures={"q3.loss_histories": "not this model's mean training loss"},
    ),
    Scenario(
        name="q3_test_history_stale",
        description=(
            "The test set is evaluated every fifth epoch only, the epochs between repeating the "
            "last value: the final test loss is four epochs old."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="test_loss_history.append(test_loss / len(testDataLoader))",
                new="test_loss_history.append(\n"
                "        test_loss / len(testDataLoader) if epoch % 5 == 0 else "
                "test_loss_history[-1])",
            ),
        ),
        expected_scores={"q3": 9.5},
        expected_failures={"q3.history_consistent": "the last test_loss_history entry"},
    ),
    # -- correct variants: full marks ----------------------------------------------------------
    accepted_model(
        "q3_out_layer_created_first",
        "Accepted: `self.out` created before the hidden layers; forward applies them in the "
        "right order, which is the order the grader reads.",
        OUT_FIRST_CLASS,
    ),
    accepted_model(
        "q3_layers_registered_in_reverse",
        "Accepted: layers registered last-first under names of their own (layer4 ... layer1), "
        "F.relu and torch.flatten in forward.",
        REVERSED_CLASS,
    ),
    accepted_model(
        "q3_sequential_inside_module",
        "Accepted: an nn.Sequential kept inside FashionMLP, forward flattens with torch.flatten.",
        SEQUENTIAL_INSIDE_CLASS,
    ),
    Scenario(
        name="q3_loss_weighted_per_image",
        description=(
            "Accepted: each batch's loss weighted by its size, the sum divided by the number of "
            "training images (a per-image mean)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="        train_loss += fit.item()\n",
                new="        train_loss += fit.item() * len(images)\n",
            ),
            Edit(
                old=TRAIN_LOSS_APPEND,
                new="train_loss_history.append(train_loss / len(trainDataLoader.dataset))",
            ),
        ),
    ),
    Scenario(
        name="q3_loss_float64_mean",
        description=(
            "Accepted: the batch losses kept in a list and averaged with np.mean in float64."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old="    train_loss = 0.0\n", new="    batch_losses = []\n"),
            Edit(
                old="        train_loss += fit.item()\n",
                new="        batch_losses.append(fit.item())\n",
            ),
            Edit(
                old=TRAIN_LOSS_APPEND,
                new="train_loss_history.append(np.mean(batch_losses, dtype=np.float64))",
            ),
        ),
    ),
    Scenario(
        name="q3_histories_as_tensors",
        description="Accepted: every history entry appended as a 0-d torch tensor.",
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=TRAIN_LOSS_APPEND,
                new="train_loss_history.append(torch.tensor(train_loss / len(trainDataLoader)))",
            ),
            Edit(
                old="test_loss_history.append(test_loss / len(testDataLoader))",
                new="test_loss_history.append(torch.tensor(test_loss / len(testDataLoader)))",
            ),
        ),
    ),
)
