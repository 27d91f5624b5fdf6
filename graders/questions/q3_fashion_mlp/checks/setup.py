"""Q3's ``q3.training_setup``: the network was trained the way the assignment says, read from the
live objects the notebook left in its kernel (the probe's ``training_setup.json``), not from its
source text.

The assignment (the seed notebook and the template's parameters cell) trains with plain
``torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)``, LEARNING_RATE = 0.01, no momentum
and no weight decay, on ``DataLoader(trainingdata, batch_size=BATCH_SIZE)`` with BATCH_SIZE =
64, and a network of Linear layers and ReLUs only. A profile that injects LEARNING_RATE or
BATCH_SIZE is what the notebook was asked for instead. An accuracy threshold cannot tell Adam,
a learning rate of 0.1, momentum, dropout or other batches from the assignment's set-up: each
of them trains this network well enough. So each difference is named here, and costs this
check's point once.

A layer the assignment did not ask for is charged where it shows: one that changes what the
model computes at evaluation (a BatchNorm, a sigmoid) makes its outputs with the grader's
weights differ from the reference's, and ``q3.architecture`` charges that; a dropout does
nothing at evaluation, so only this check sees it (a module of its own, or a forward pass that
is random in training mode).

Everything in the file was written by the student's kernel: each value's type is checked before
it is used, and a value of the wrong type is a difference, not a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp.checks.architecture import behaves_as_reference
from graders.questions.q3_fashion_mlp.checks.shared import (
    count,
    injected,
    real,
    text_of,
    why,
)
from graders.render.numbers import number

ASSIGNMENT = {"LEARNING_RATE": 0.01, "BATCH_SIZE": 64}
"""The seed's ``SGD(model.parameters(), lr=0.01)`` and ``DataLoader(..., batch_size=64)``, which
the template's parameters cell carries as LEARNING_RATE and BATCH_SIZE."""
ALLOWED_LAYERS = frozenset(
    {"Linear", "ReLU", "Flatten", "Unflatten", "Identity", "Sequential", "ModuleList", "ModuleDict"}
)
"""torch's module types the assignment's network may hold (the rest of torch's are named)."""
DROPOUTS = frozenset(
    {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"}
)
"""Identity at evaluation, so invisible to ``q3.architecture``: always charged here."""
ACCEPTED_LOSSES = frozenset({"CrossEntropyLoss", "NLLLoss"})
"""NLLLoss on log_softmax outputs trains exactly as CrossEntropyLoss on logits; the
log_softmax in the model is ``q3.architecture``'s to charge."""
RTOL = 1e-6


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One way the set-up departs from the assignment's, in words."""

    text: str
    charged: bool = True
    """False: said here, charged by another check (``q3.architecture``)."""


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What ``q3.training_setup`` found: the differences (charged or not), what matches, and
    why the set-up could not be read at all (then ``differences`` is empty)."""

    differences: tuple[Difference, ...] = ()
    matches: tuple[str, ...] = ()
    unreadable: str = ""

    @property
    def as_assigned(self) -> bool:
        """Read, and no difference at all: the training the reference's calibration stands for."""
        return not self.unreadable and not self.differences


def required(ctx: CheckContext, name: str) -> float:
    """The value the notebook was asked for: the profile's injected one, else the assignment's."""
    value = real(injected(ctx, name))
    return value if value is not None else ASSIGNMENT[name]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)


def _asked(ctx: CheckContext, setup: dict[str, object], name: str, what: str, have: float) -> str:
    """``lr is 0.1 but LEARNING_RATE is 0.01``, or, when the notebook changed its own
    LEARNING_RATE, that too."""
    want = required(ctx, name)
    own = real(setup.get(name))
    if own is not None and not _same(own, want):
        return (
            f"{what} is {number(have)}: {name} was changed to {number(own)} in the notebook; "
            f"the assignment's is {number(want)}"
        )
    return f"{what} is {number(have)} but {name} is {number(want)}"


def _optimizer(ctx: CheckContext, setup: dict[str, object]) -> tuple[list[Difference], str]:
    optimizers = setup.get("optimizers")
    found = optimizers[0] if isinstance(optimizers, list) and optimizers else None
    if not isinstance(found, dict):
        return [
            Difference(
                text="no torch.optim optimizer is left in the notebook (expected `optimizer = "
                "torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)`)"
            )
        ], ""
    name = text_of(found.get("name")) or "optimizer"
    kind = text_of(found.get("class")) or "?"
    module = text_of(found.get("module"), 200) or ""
    differences = []
    if kind != "SGD" or not module.startswith("torch.optim"):
        differences.append(Difference(text=f"the optimizer is {kind}; the assignment asks for SGD"))
    held, total = count(found.get("model_params_held")), count(found.get("params"))
    n_model = count(setup.get("model_params"))
    if held is None or total is None or n_model is None:
        differences.append(Difference(text=f"`{name}`'s parameters could not be read"))
    elif held == 0 and n_model:
        differences.append(
            Difference(
                text=f"`{name}` holds none of the model's parameters (it was built on another "
                "model's, e.g. a fresh FashionMLP()), so the model you evaluate is not the one "
                "it trained"
            )
        )
    elif held < n_model or total > held:
        differences.append(
            Difference(
                text=f"`{name}` holds {held} of the model's {n_model} parameter tensors"
                + (f" and {total - held} of another model's" if total > held else "")
            )
        )
    groups = found.get("groups")
    groups = [g for g in groups[:20] if isinstance(g, dict)] if isinstance(groups, list) else []
    if not groups:
        differences.append(Difference(text=f"`{name}` has no parameter groups to read"))
    for index, group in enumerate(groups):
        where = f"parameter group {index}: " if len(groups) > 1 else ""
        differences += [
            Difference(text=where + said) for said in _group_differences(ctx, setup, group)
        ]
    differences += _stepped_differences(setup, kind)
    lr = real(groups[0].get("lr")) if groups else None
    return differences, f"{kind}(lr={number(lr)})" if lr is not None else kind


def _stepped_differences(setup: dict[str, object], kind: str) -> list[Difference]:
    """What the kernel's count of optimizer steps says trained the model: the optimizer left
    under `optimizer` may have been swapped in after training, or a second one (`_adam`) may
    have done the work. ``kind`` is the class already reported for the notebook's optimizer.

    The count is the notebook's own account (kept by the compatibility layer in its process);
    without one (an older kit, a namespace the count was removed from) nothing is added."""
    stepped = setup.get("stepped")
    if not isinstance(stepped, list):
        return []
    entries = [s for s in stepped[:5] if isinstance(s, dict)]
    # Only what stepped on the model's own parameters: a model never stepped (step() left
    # out) is charged by its accuracy and losses, and an experiment on another model is not
    # the set-up of this one.
    on_model = [s for s in entries if count(s.get("model_params_held")) and count(s.get("steps"))]
    said = []
    for entry in on_model:
        trained_by = text_of(entry.get("class")) or "?"
        module = text_of(entry.get("module"), 200) or ""
        if trained_by == "SGD" and module.startswith("torch.optim"):
            continue
        if trained_by == kind:  # already said of the notebook's optimizer
            continue
        name = text_of(entry.get("name"))
        where = f" (`{name}`)" if name and name.isidentifier() else ""
        said.append(
            Difference(
                text=f"the model was trained by {trained_by}{where}, {count(entry.get('steps'))} "
                "steps; the assignment asks for SGD"
            )
        )
    return said


def _group_differences(
    ctx: CheckContext, setup: dict[str, object], group: dict[str, object]
) -> list[str]:
    said = []
    lr, initial = real(group.get("lr")), real(group.get("initial_lr"))
    if lr is None:
        said.append(f"lr is not a number ({text_of(str(group.get('lr')), 40)})")
    else:
        base = initial if initial is not None else lr
        if initial is not None and not _same(initial, lr):
            said.append(
                f"a learning-rate scheduler moved lr from {number(initial)} to {number(lr)}; "
                "the assignment trains at a fixed LEARNING_RATE"
            )
        if not _same(base, required(ctx, "LEARNING_RATE")):
            said.append(_asked(ctx, setup, "LEARNING_RATE", "lr", base))
    for key, words in (("momentum", "plain SGD, without momentum"), ("weight_decay", "none")):
        value = group.get(key)
        amount = real(value)
        if value is not None and (amount is None or amount != 0):
            shown = number(amount) if amount is not None else text_of(str(value), 40)
            said.append(f"{key} is {shown}; the assignment asks for {words}")
    if group.get("nesterov") not in (None, False):
        said.append("nesterov is on; the assignment asks for plain SGD")
    return said


def _loader(ctx: CheckContext, setup: dict[str, object]) -> tuple[list[Difference], str]:
    loader = setup.get("train_loader")
    if not isinstance(loader, dict):
        return [
            Difference(
                text="no training DataLoader was found (expected `trainDataLoader = "
                "DataLoader(trainingdata, batch_size=BATCH_SIZE, shuffle=True)`)"
            )
        ], ""
    name = text_of(loader.get("name")) or "the training DataLoader"
    batch = count(loader.get("batch_size"))
    if batch is None:
        return [Difference(text=f"`{name}` has no fixed batch_size")], ""
    if not _same(batch, required(ctx, "BATCH_SIZE")):
        return [
            Difference(text=_asked(ctx, setup, "BATCH_SIZE", f"`{name}`'s batch_size", batch))
        ], ""
    return [], f"batches of {batch} from `{name}`"


def _layer_words(kind: str, entries: list[dict[str, object]]) -> str:
    rates = {real(e.get("p")) for e in entries}
    rate = rates.pop() if len(rates) == 1 else None
    shown = f"{kind}(p={number(rate)})" if rate is not None else kind
    if len(entries) == 1:
        return f"a {shown} layer the assignment did not ask for"
    return f"{len(entries)} {shown} layers the assignment did not ask for"


def _layers(ctx: CheckContext, setup: dict[str, object]) -> list[Difference]:
    modules = setup.get("modules")
    entries = [m for m in modules[:200] if isinstance(m, dict)] if isinstance(modules, list) else []
    extra: dict[str, list[dict[str, object]]] = {}
    unused: list[str] = []
    traced = setup.get("traced") is not False  # forward raised: every module counts as used
    for entry in entries:
        kind = text_of(entry.get("type"))
        if kind is None or entry.get("torch") is not True or kind in ALLOWED_LAYERS:
            continue  # the student's own classes are containers; their contents are listed too
        if kind.endswith("Loss"):
            continue  # a loss kept as an attribute computes nothing in forward
        if traced and entry.get("used") is not True:
            unused.append(f"{kind} `{text_of(entry.get('name'))}`")
            continue
        extra.setdefault(kind, []).append(entry)
    differences = []
    function_changed = behaves_as_reference(ctx) is False
    for kind, found in extra.items():
        words = _layer_words(kind, found)
        if kind in DROPOUTS or not function_changed:
            differences.append(Difference(text=words))
        else:
            differences.append(
                Difference(
                    text=f"{words} (charged under q3.architecture: it changes what the model "
                    "computes)",
                    charged=False,
                )
            )
    if setup.get("random_in_training") is True and not any(k in DROPOUTS for k in extra):
        differences.append(
            Difference(
                text="forward is random in training mode (two passes over the same images "
                "differ): dropout the assignment did not ask for (F.dropout?)"
            )
        )
    if unused:
        differences.append(
            Difference(
                text=f"{', '.join(unused[:5])} {'is' if len(unused) == 1 else 'are'} created "
                "but never applied by forward (costs nothing)",
                charged=False,
            )
        )
    return differences


def _loss(setup: dict[str, object]) -> list[Difference]:
    losses = setup.get("losses")
    entries = [e for e in losses[:5] if isinstance(e, dict)] if isinstance(losses, list) else []
    kinds = [text_of(e.get("class")) for e in entries]
    cross = [e for e in entries if e.get("class") == "CrossEntropyLoss"]
    differences = []
    for entry in cross:
        smoothing = real(entry.get("label_smoothing"))
        if smoothing is not None and smoothing != 0:
            differences.append(
                Difference(
                    text=f"the loss is CrossEntropyLoss(label_smoothing={number(smoothing)}); "
                    "the assignment asks for the plain cross entropy"
                )
            )
    if entries and not any(k in ACCEPTED_LOSSES for k in kinds):
        differences.append(
            Difference(text=f"the loss is {kinds[0]}; the assignment asks for CrossEntropyLoss")
        )
    return differences


def read_setup(ctx: CheckContext) -> Reading:
    """The differences between the notebook's training set-up and the assignment's."""
    setup = ctx.json("training_setup")
    if not isinstance(setup, dict):  # the probe reads the set-up only once it found the model
        step = "model" if ctx.probe_errors("model") else "training_setup"
        return Reading(unreadable=why(ctx, step))
    optimizer, optimizer_ok = _optimizer(ctx, setup)
    loader, loader_ok = _loader(ctx, setup)
    differences = (*optimizer, *loader, *_layers(ctx, setup), *_loss(setup))
    matches = []
    if optimizer_ok and not optimizer:
        matches.append(f"{optimizer_ok} over the model's parameters")
    if loader_ok and not loader:
        matches.append(loader_ok)
    return Reading(differences=differences, matches=tuple(matches))


@check("q3.training_setup", "Training set-up: SGD at LEARNING_RATE, BATCH_SIZE batches, no extras")
def training_setup(ctx: CheckContext) -> Outcome:
    reading = read_setup(ctx)
    if reading.unreadable:
        return Outcome.failed(f"The training set-up could not be read: {reading.unreadable}")
    charged = [d.text for d in reading.differences if d.charged]
    noted = [d.text for d in reading.differences if not d.charged]
    details = {k: v for k, v in (("differences", charged), ("noted", noted)) if v}
    also = f" ({'; '.join(noted)})" if noted else ""
    if not charged:
        done = " and ".join(reading.matches) or "the assignment's set-up"
        return Outcome.passed(
            f"Trained as the assignment asks: {done}, and no layers it did not ask for{also}.",
            **details,
        )
    return Outcome.failed(
        f"The training set-up differs from the assignment's: {'; '.join(charged)}{also}.",
        hint="Train with optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE) (no "
        "momentum, weight decay or scheduler), batches from DataLoader(trainingdata, "
        "batch_size=BATCH_SIZE, shuffle=True), and a model of Linear layers and ReLUs only.",
        **details,
    )
