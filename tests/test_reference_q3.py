"""The Q3 torch reference: architecture, a training run that learns and repeats itself per seed,
and an evaluator the grader can trust with a student's weights."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from graders.config import load_profiles
from graders.numerics import relu_mlp
from graders.numerics.datasets import load_scaled, load_split
from graders.questions.api import ExpectationContext, ProbeContext
from graders.questions.q3_fashion_mlp import make_inputs
from graders.questions.q3_fashion_mlp.checks import variants
from graders.questions.q3_fashion_mlp.checks.shared import grader_weights
from graders.questions.q3_fashion_mlp.expected import reference_logits
from reference import q3_mlp as q3

SLICES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
COURSE_KEYS = ("ly1", "ly2", "ly3", "oply")
"""How the seed notebook named its layers: a student's keys need not be ours."""


def full_data_root() -> Path:
    root = Path(os.environ.get("DLGRADER_DATA_ROOT", Path(__file__).resolve().parents[1] / "data"))
    raw = root / "FashionMNIST" / "raw"
    if not all(
        (raw / f).is_file() or (raw / f"{f}.gz").is_file()
        for f in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")
    ):
        pytest.skip(
            f"full Fashion-MNIST not found under {root} (set DLGRADER_DATA_ROOT or run "
            "`dlgrade data`)"
        )
    return root


def slice_config(**changes: object) -> q3.TrainConfig:
    base: dict[str, object] = {"epochs": 3, "seed": 0, "device": "cpu", "threads": 1}
    return q3.TrainConfig(**{**base, **changes})  # type: ignore[arg-type]


def curves(result: q3.TrainResult) -> tuple[list[float], list[float], list[float]]:
    return result.train_losses, result.test_losses, result.test_accuracies


@pytest.fixture(scope="module")
def trained() -> q3.TrainResult:
    return q3.train(slice_config(), SLICES)


@pytest.fixture(scope="module")
def test_slice() -> tuple[np.ndarray, np.ndarray]:
    return load_scaled(SLICES, "FashionMNIST", train=False)


def numpy_forward(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The same network written out by hand in float64, independent of torch."""
    h = x.astype(np.float64)
    for name in ("fc1", "fc2", "fc3"):
        h = np.maximum(h @ state[f"{name}.weight"].T + state[f"{name}.bias"], 0)
    return h @ state["out.weight"].T + state["out.bias"]


# --- architecture ---------------------------------------------------------------------------


def test_parameter_count_and_layer_shapes() -> None:
    model = q3.FashionMLP()
    assert q3.parameter_count(model) == 242_762 == q3.N_PARAMETERS
    assert [tuple(t.shape) for t in model.state_dict().values()] == q3.layer_shapes()
    assert q3.layer_shapes()[0] == (256, 784) and q3.layer_shapes()[-1] == (10,)


def test_every_image_layout_gives_the_same_logits() -> None:
    model = q3.build_model(3)
    x = torch.rand(5, 1, 28, 28)
    out = model(x)
    assert out.shape == (5, 10)
    torch.testing.assert_close(model(x.reshape(5, 28, 28)), out)
    torch.testing.assert_close(model(x.reshape(5, 784)), out)
    with pytest.raises(ValueError, match="expected images"):
        model(torch.rand(5, 27, 27))


def test_build_model_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = q3.build_model(1), q3.build_model(1), q3.build_model(2)
    torch.testing.assert_close(torch.rand(3), expected)
    torch.testing.assert_close(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)


# --- training -------------------------------------------------------------------------------


def test_training_on_the_slice_lowers_both_losses(trained: q3.TrainResult) -> None:
    # Measured over seeds 0-7: each epoch lowers both losses by ~0.005 near ln(10), far above
    # the batch-order noise, so a strict decrease is a safe claim even on 2,000 images.
    assert [r.epoch for r in trained.history] == [0, 1, 2]
    train_losses, test_losses, accuracies = curves(trained)
    assert train_losses == sorted(train_losses, reverse=True) and len(set(train_losses)) == 3
    assert test_losses == sorted(test_losses, reverse=True) and len(set(test_losses)) == 3
    assert train_losses[0] < 2.4  # starts near ln(10) = 2.30, not diverging
    assert all(0 <= a <= 1 for a in accuracies)
    assert all(r.seconds > 0 for r in trained.history)
    assert trained.device == "cpu"


def test_result_state_is_plain_numpy_in_our_layout(trained: q3.TrainResult) -> None:
    assert list(trained.state) == list(q3.FashionMLP().state_dict())
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in trained.state.values())
    assert [v.shape for v in trained.state.values()] == q3.layer_shapes()


def test_same_seed_repeats_exactly_and_another_seed_differs() -> None:
    first = q3.train(slice_config(epochs=2, seed=5), SLICES)
    again = q3.train(slice_config(epochs=2, seed=5), SLICES)
    other = q3.train(slice_config(epochs=2, seed=6), SLICES)
    assert curves(first) == curves(again)
    for k, v in first.state.items():
        np.testing.assert_array_equal(v, again.state[k])
    assert curves(first)[0] != curves(other)[0]
    assert not np.array_equal(first.state["fc1.weight"], other.state["fc1.weight"])


def test_progress_sees_every_epoch_and_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    seen: list[tuple[int, q3.EpochRecord]] = []
    result = q3.train(
        slice_config(epochs=2, train_limit=256, test_limit=128, threads=1),
        SLICES,
        progress=lambda epoch, record: seen.append((epoch, record)),
    )
    assert seen == list(enumerate(result.history))
    assert torch.get_num_threads() == threads


# --- evaluation -----------------------------------------------------------------------------


def test_evaluate_agrees_with_a_manual_computation(trained: q3.TrainResult, test_slice) -> None:
    x, y = test_slice
    loss, accuracy, logits = q3.evaluate(trained.state, x, y, device="cpu")
    manual = numpy_forward(trained.state, x)
    shifted = manual - manual.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert logits.shape == (len(y), 10)
    np.testing.assert_allclose(logits, manual, rtol=1e-4, atol=1e-4)
    assert loss == pytest.approx(-log_probs[np.arange(len(y)), y].mean(), rel=1e-5)
    assert accuracy == pytest.approx(float(np.mean(manual.argmax(axis=1) == y)), abs=2 / len(y))
    assert accuracy == trained.final_accuracy


def test_evaluate_takes_uint8_images_and_torch_inputs(trained: q3.TrainResult, test_slice) -> None:
    x, y = test_slice
    images, labels = load_split(SLICES, "FashionMNIST", train=False)
    expected = q3.evaluate(trained.state, x, y)
    from_uint8 = q3.evaluate(trained.state, images, labels)
    from_torch = q3.evaluate(
        q3.model_from_state(trained.state), torch.from_numpy(x), torch.from_numpy(y)
    )
    assert from_uint8[:2] == expected[:2] == from_torch[:2]


def test_student_weights_under_other_names_load_by_position(
    trained: q3.TrainResult, test_slice
) -> None:
    x, y = test_slice
    values = list(trained.state.values())
    renamed = {
        f"{layer}.{part}": values[2 * i + j]
        for i, layer in enumerate(COURSE_KEYS)
        for j, part in enumerate(("weight", "bias"))
    }
    assert q3.evaluate(renamed, x, y)[:2] == q3.evaluate(trained.state, x, y)[:2]
    transposed = {**trained.state, "fc1.weight": trained.state["fc1.weight"].T}
    with pytest.raises(ValueError, match="expected shapes"):
        q3.evaluate(transposed, x, y)
    with pytest.raises(ValueError, match="expected shapes"):
        q3.evaluate(dict(list(trained.state.items())[:6]), x, y)


def test_class_probabilities_are_distributions(trained: q3.TrainResult, test_slice) -> None:
    x, _ = test_slice
    picks = x[[3, 141, 997]]
    probs = q3.class_probabilities(trained.state, picks)
    assert probs.shape == (3, 10)
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    _, _, logits = q3.evaluate(trained.state, picks, np.zeros(3, dtype=np.int64))
    np.testing.assert_array_equal(probs.argmax(axis=1), logits.argmax(axis=1))


# --- the grader's numpy measure holds to the reference's torch one ---------------------------


def test_the_graders_numpy_measure_gives_the_references_numbers(
    trained: q3.TrainResult, test_slice
) -> None:
    """The grader scores a student's weights with ``relu_mlp`` (no torch in the grader); the
    reference trains and calibrates with torch. Same weights, same images: the same loss and
    accuracy (to float32 noise), and logits that agree far inside ``variants.RTOL``."""
    x, y = test_slice
    images, labels = load_split(SLICES, "FashionMNIST", train=False)
    torch_loss, torch_accuracy, torch_logits = q3.evaluate(trained.state, x, y)
    pairs = relu_mlp.fitted_pairs(trained.state)
    for source in (x, images, x.reshape(-1, 784)):  # scaled, uint8 (N, 28, 28), flat
        loss, accuracy, logits = relu_mlp.evaluate(pairs, source, labels)
        assert logits.dtype == np.float32 and logits.shape == (len(y), 10)
        np.testing.assert_allclose(logits, torch_logits, rtol=1e-5, atol=1e-5)
        assert loss == pytest.approx(torch_loss, rel=1e-5)
        assert accuracy == pytest.approx(torch_accuracy, abs=1 / len(y))
    renamed = dict(zip(COURSE_KEYS * 2, trained.state.values(), strict=False))
    assert len(relu_mlp.fitted_pairs(trained.state)) == 4
    with pytest.raises(ValueError, match="expected shapes"):
        relu_mlp.fitted_pairs({**trained.state, "fc1.weight": trained.state["fc1.weight"].T})
    with pytest.raises(ValueError, match="expected shapes"):
        relu_mlp.fitted_pairs(renamed)  # four tensors of eight: no output layer


def test_a_diverged_model_measures_as_nan_without_warnings(
    trained: q3.TrainResult, test_slice
) -> None:
    x, y = test_slice
    state = {**trained.state, "fc1.weight": np.full_like(trained.state["fc1.weight"], np.inf)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, accuracy, _ = relu_mlp.evaluate(relu_mlp.fitted_pairs(state), x, y)
    torch_loss, torch_accuracy, _ = q3.evaluate(state, x, y)
    assert np.isnan(loss) and np.isnan(torch_loss)
    assert 0.0 <= accuracy <= 1.0 and 0.0 <= torch_accuracy <= 1.0


def test_a_wide_chain_of_the_students_own_sizes_is_measured_in_smaller_batches(
    test_slice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback measure takes the student's own layer sizes: a 40,000-wide layer in 4,096-row
    batches would hold 650 MB in the grader; the batches shrink to ``BATCH_BYTES`` instead, and
    the outputs are the same."""
    x, _ = test_slice
    rng = np.random.default_rng(0)
    wide = [
        (rng.normal(0, 0.05, (40_000, 784)).astype(np.float32), np.zeros(40_000, np.float32)),
        (rng.normal(0, 0.01, (10, 40_000)).astype(np.float32), np.zeros(10, np.float32)),
    ]
    rows: list[int] = []
    forward = relu_mlp._forward
    monkeypatch.setattr(relu_mlp, "_forward", lambda p, b: rows.append(len(b)) or forward(p, b))
    got = relu_mlp.logits(wide, x[:1000])
    assert max(rows) * 40_000 * 4 <= relu_mlp.BATCH_BYTES and sum(rows) == 1000
    h = np.maximum(x[:1000].reshape(-1, 784).astype(np.float64) @ wide[0][0].T, 0)
    np.testing.assert_allclose(got, h @ wide[1][0].T, rtol=1e-4, atol=1e-4)


def test_the_reference_logits_expectation_is_the_reference_models_forward_pass() -> None:
    """``reference_logits`` (what a student's model loaded with the grader's weights must give)
    is computed in numpy; the reference module's own model must give the same."""
    quick = load_profiles().get("quick")
    inputs = make_inputs(
        ProbeContext(profile=quick, data_root=SLICES, rng=np.random.default_rng(5))
    )
    arrays = inputs.arrays
    expected = reference_logits.compute(
        ExpectationContext(inputs=inputs, data_root=SLICES, profile=quick), {}
    )["logits"]
    state = {}
    for i, (weight, bias) in enumerate(grader_weights(arrays)):
        state[f"layer{i}.weight"], state[f"layer{i}.bias"] = weight, bias
    with torch.no_grad():
        model = q3.model_from_state(state).eval()
        got = model(torch.from_numpy(np.array(arrays["images"], dtype=np.float32))).double()
    assert expected.shape == (len(arrays["images"]), 10)
    np.testing.assert_allclose(expected, got.numpy(), rtol=1e-5, atol=1e-5)
    assert variants.close(expected, got.numpy())
    assert not variants.close(expected, variants.softmax(got.numpy()))


@pytest.mark.slow
def test_two_full_epochs_learn_fashion_mnist() -> None:
    # Calibrated, not copied: the seed reached 0.699 after 2 epochs, and our reference reached
    # 0.680-0.748 over seeds 0-9 (6 of 10 above 0.70, so 0.70 would fail a correct run).
    # docs/assignment.md: epoch-to-epoch swings of up to +-0.03; the bound sits twice that below
    # the worst seed, and still far above what a model that does not learn gets (~0.10).
    result = q3.train(q3.TrainConfig(epochs=2, seed=0, device="cpu", threads=1), full_data_root())
    assert result.final_accuracy > 0.62
    assert result.test_losses[1] < result.test_losses[0] < 2.0
