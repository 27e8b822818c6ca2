"""The columnar trainer (whole tensors) gives MadMiner's own trainer's results; early stopping restores the
best epoch.

The samples are synthetic (a Gaussian toy whose joint score and ratio are known in closed form): what is
tested is that both trainers see the same batches in the same order, so every loss and every weight agrees
to the last bit, for each of MadMiner's three ways of splitting off validation data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from madminer_notebooks import compat, training


def _toy(n: int, seed: int = 3) -> dict[str, np.ndarray]:
    """x ~ N(theta, 1) in two dimensions, theta0 ~ N(0, 1): t(x|theta) = x - theta and
    log r(x|theta0, theta1=0) = theta0 . x - |theta0|^2 / 2, exactly."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, 2))
    y = (rng.random(n) < 0.5).astype(np.float64).reshape(-1, 1)
    x = rng.normal(size=(n, 2)) + theta * (1 - y)  # y = 1: drawn at theta1 = 0, y = 0: at theta0
    log_r = np.sum(theta * x, axis=1) - 0.5 * np.sum(theta**2, axis=1)
    return {"theta": theta, "x": x, "y": y, "r_xz": np.exp(log_r).reshape(-1, 1), "t_xz": x - theta}


def _train(trainer: str, method: str, data: dict, **kwargs):
    from madminer.ml import ParameterizedRatioEstimator, ScoreEstimator

    compat.apply()
    training.use(trainer)
    torch.manual_seed(11)
    np.random.seed(11)
    common = dict(n_epochs=3, batch_size=64, n_workers=0, verbose="none", initial_lr=0.01, final_lr=0.001)
    common.update(kwargs)
    if method == "sally":
        estimator = ScoreEstimator(n_hidden=(8,))
        losses = estimator.train(method="sally", x=data["x"], t_xz=data["t_xz"], **common)
        scores = estimator.evaluate_score(data["x"][:50])
    else:
        estimator = ParameterizedRatioEstimator(n_hidden=(8,))
        losses = estimator.train(method=method, theta=data["theta"], x=data["x"], y=data["y"], r_xz=data["r_xz"],
                                 t_xz=data["t_xz"], alpha=2.0, **common)  # fmt: skip
        scores = estimator.evaluate_log_likelihood_ratio(x=data["x"][:50], theta=data["theta"][:3])[0]
    weights = [p.detach().clone() for p in estimator.model.parameters()]
    return losses, scores, weights


@pytest.fixture(autouse=True)
def _madminer_trainer_afterwards():
    yield
    training.use("columnar")  # what begin() installs by default; each test says which one it wants


@pytest.mark.parametrize("method", ["sally", "alice", "alices"])
@pytest.mark.parametrize("validation", ["split", "none", "external"])
def test_columnar_training_is_madminers_to_the_last_bit(method, validation):
    data = _toy(1000)
    kwargs: dict = {"validation_split": 0.25}
    if validation == "none":
        kwargs = {"validation_split": None, "early_stopping": False}
    elif validation == "external":
        val = _toy(300, seed=4)
        kwargs = {"x_val": val["x"], "t_xz_val": val["t_xz"]}
        if method != "sally":
            kwargs.update(theta_val=val["theta"], y_val=val["y"], r_xz_val=val["r_xz"])
    theirs = _train("madminer", method, data, **kwargs)
    ours = _train("columnar", method, data, **kwargs)
    for a, b in zip(theirs[0], ours[0], strict=True):  # training and validation losses of each epoch
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(theirs[1], ours[1])  # the trained network's scores or log ratios
    for a, b in zip(theirs[2], ours[2], strict=True):
        assert torch.equal(a, b)
    assert len(theirs[0][0]) == 3 and np.all(np.isfinite(theirs[0][0]))


def test_the_switch_replaces_the_estimators_trainers_and_back():
    import madminer.ml.parameterized_ratio as parameterized_ratio
    import madminer.ml.score as score
    from madminer.utils.ml import trainer

    training.use("columnar")
    assert issubclass(score.LocalScoreTrainer, training.Columnar)
    assert issubclass(parameterized_ratio.SingleParameterizedRatioTrainer, trainer.SingleParameterizedRatioTrainer)
    training.use("madminer")
    assert score.LocalScoreTrainer is trainer.LocalScoreTrainer
    assert parameterized_ratio.SingleParameterizedRatioTrainer is trainer.SingleParameterizedRatioTrainer
    with pytest.raises(ValueError, match="unknown trainer 'fast'.*columnar, madminer"):
        training.use("fast")


def test_memory_mapped_samples_stay_with_madminers_dataset(tmp_path):
    """Arrays MadMiner memory-maps are read batch by batch from disk by its own dataset; the results agree."""
    from madminer.utils.ml.utils import NumpyDataset

    data = _toy(200)
    np.save(tmp_path / "x.npy", data["x"])
    mapped = {"x": np.load(tmp_path / "x.npy", mmap_mode="r"), "t_xz": data["t_xz"]}
    compat.apply()
    training.use("columnar")
    import madminer.ml.score as score
    from madminer.utils.ml.models.score import DenseLocalScoreModel

    trainer = score.LocalScoreTrainer(DenseLocalScoreModel(2, 2, (4,)), n_workers=0)
    _, dataset = trainer.make_dataset(mapped)
    assert isinstance(dataset, NumpyDataset)
    _, dataset = trainer.make_dataset(data)
    assert isinstance(dataset, training.Tensors) and len(dataset) == 200


def test_batches_cover_every_sample_once_per_epoch():
    tensors = training.Tensors([np.arange(10.0).reshape(-1, 1)], torch.float)
    batches = training.Batches(tensors, batch_size=4, indices=[1, 3, 5, 7, 9])
    assert len(batches) == 2
    seen = torch.cat([b[0] for b in batches]).flatten().tolist()
    assert sorted(seen) == [1.0, 3.0, 5.0, 7.0, 9.0]
    with pytest.raises(ValueError, match="different lengths"):
        training.Tensors([np.zeros(3), np.zeros(4)], torch.float)


def test_early_stopping_keeps_the_best_epochs_weights_not_a_view_of_the_live_ones():
    """MadMiner's check_early_stopping keeps ``state_dict()``, whose tensors are the parameters themselves:
    the optimiser's next steps change them, and the "best" model restored at the end is the last one. With
    the fix, the kept weights are those of the epoch with the lowest loss."""
    from madminer.utils.ml.models.score import DenseLocalScoreModel
    from madminer.utils.ml.trainer import LocalScoreTrainer

    compat.apply()
    trainer = LocalScoreTrainer(DenseLocalScoreModel(2, 2, (4,)), n_workers=0)
    best_loss, best_model, best_epoch = trainer.check_early_stopping(None, None, None, 1.0, 0)
    kept = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(1.0)  # what an optimiser step does, in place
    best_loss, best_model, best_epoch = trainer.check_early_stopping(best_loss, best_model, best_epoch, 2.0, 1)
    assert best_epoch == 0 and best_loss == 1.0
    for key, value in kept.items():
        assert torch.equal(best_model[key], value)  # stock MadMiner: value + 1, the live weights
    trainer.wrap_up_early_stopping(best_model, 2.0, best_loss, best_epoch)
    for key, value in kept.items():
        assert torch.equal(trainer.model.state_dict()[key], value)


def test_nan_in_the_training_arrays_is_an_error_naming_the_array():
    """The columnar trainer checks the arrays once, whole (MadMiner checks each batch, stops in the first one
    and saves an untrained network)."""
    data = _toy(200)
    data["t_xz"][[3, 70], 1] = np.nan
    with pytest.raises(ValueError, match=r"'t_xz' has NaN in 2 of its 200 rows"):
        _train("columnar", "alices", data)


def test_a_nan_loss_still_stops_before_the_update_and_an_output_check_is_left_to_it():
    """Per batch, only the losses are checked: a NaN output reaches them (every output enters a mean)."""
    from madminer.utils.ml.models.score import DenseLocalScoreModel
    from madminer.utils.ml.utils import NanException

    training.use("columnar")
    import madminer.ml.score as score

    trainer = score.LocalScoreTrainer(DenseLocalScoreModel(n_observables=2, n_parameters=2, n_hidden=(4,)))
    trainer.make_dataset({"x": np.zeros((5, 2)), "t_xz": np.zeros((5, 2))})
    nan = torch.tensor([[float("nan")]])
    trainer._check_for_nans("Model output", nan)  # left to the loss check
    trainer._check_for_nans("Loss", torch.tensor(0.5), None)
    with pytest.raises(NanException):
        trainer._check_for_nans("Loss", torch.tensor(0.5), torch.tensor(float("nan")))
