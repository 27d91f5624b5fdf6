"""Q3 scenarios: the FashionMNIST MLP notebook with one known mistake each, and two accepted
ways of writing a correct model.

Scores are for the quick profile (20 epochs on the committed 2,000 training images, the
1,000-image test slice, CPU only). Where the student's weights do not fit the reference network,
the grader measures accuracy and probabilities itself in an MLP of the student's layer sizes,
so a wrong architecture costs the architecture test and nothing else.
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
        expected_scores={"q3": 10 - 3 - 0.5},
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
)
