import json
import math

import pytest
import torch

from analysis import models
from analysis.training import (
    TrainingDiverged,
    evaluate,
    fit,
    large_batch_recipe,
    learning_rate,
    load_checkpoint,
    squared_hinge_loss,
)


def blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    X = torch.randn(n, 1, 4, 4, generator=g) * 0.5 + y[:, None, None, None].float()
    return X, y


def small(name="mlp"):
    torch.manual_seed(0)
    return models.build(name, width=16, depth=1, in_shape=(1, 4, 4), num_classes=3)


def test_fit_learns_and_records_history():
    data = blobs()
    h = fit(small(), data, test_data=blobs(seed=1), epochs=5, batch_size=20, lr=1e-2,
            progress=False)
    assert len(h) == 5 and h["epoch"] == [1, 2, 3, 4, 5]
    assert h["updates"][-1] == 5 * 10
    assert h.final["test_error"] < 0.1
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_binarized_training_learns_with_squared_hinge():
    h = fit(small("bnn-mlp"), blobs(), test_data=blobs(seed=1), epochs=8, batch_size=20, lr=1e-2,
            loss="squared_hinge", progress=False)
    assert h.final["test_error"] < 0.2


def test_same_seed_same_run():
    a = fit(small(), blobs(), epochs=2, seed=3, progress=False)
    b = fit(small(), blobs(), epochs=2, seed=3, progress=False)
    assert a["train_loss"] == b["train_loss"]


def test_checkpoint_round_trip_and_resume_after_interruption(tmp_path):
    data, test = blobs(), blobs(seed=1)
    full = fit(small(), data, test_data=test, epochs=4, lr=1e-2, run_dir=tmp_path / "full",
               progress=False)

    class Interrupt(Exception):
        pass

    class KillDuringEpoch3:
        def on_step_end(self, state):
            if state.epoch == 2 and state.step == 5:  # mid-way through the third epoch
                raise Interrupt

    run = tmp_path / "run"
    with pytest.raises(Interrupt):
        fit(small(), data, test_data=test, epochs=4, lr=1e-2, run_dir=run,
            callbacks=[KillDuringEpoch3()], progress=False)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 4  # the epoch in progress is lost, no more
    assert len(json.loads((run / "metrics.json").read_text())) == 2
    resumed = fit(small(), data, test_data=test, epochs=4, lr=1e-2, run_dir=run, resume=True,
                  progress=False)
    assert resumed["epoch"] == [1, 2, 3, 4]
    for key in ("train_loss", "test_loss", "updates"):
        assert resumed[key] == pytest.approx(full[key], rel=1e-5)
    assert (run / "metrics.csv").read_text().startswith("epoch,")


@pytest.mark.skipif(torch.cuda.is_available(), reason="faked CUDA; the GPU test below uses the real one")
def test_checkpoint_keeps_and_restores_the_cuda_generators(tmp_path, monkeypatch):
    # GPU dropout draws from the CUDA generators: the checkpoint saved only the CPU one, so a
    # resumed GPU run replayed the dropout masks of its first epochs (faked here: no GPU needed)
    saved = [torch.arange(8, dtype=torch.uint8), torch.arange(8, 16, dtype=torch.uint8)]
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, i: restored.__setitem__(i, s.clone()))
    fit(small(), blobs(), epochs=1, run_dir=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert [s.tolist() for s in ckpt["cuda_rng"]] == [s.tolist() for s in saved]
    fit(small(), blobs(), epochs=2, run_dir=tmp_path, resume=True, progress=False)
    assert {i: s.tolist() for i, s in restored.items()} == {i: s.tolist() for i, s in enumerate(saved)}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resumed_gpu_run_with_dropout_matches_the_uninterrupted_one(tmp_path):
    def net():
        torch.manual_seed(0)
        return models.build("mlp", width=64, depth=2, in_shape=(1, 4, 4), num_classes=3, dropout=0.5)

    kw = dict(epochs=4, lr=1e-2, device="cuda", progress=False)
    full = fit(net(), blobs(), **kw)
    fit(net(), blobs(), **{**kw, "epochs": 2}, run_dir=tmp_path)
    resumed = fit(net(), blobs(), **kw, run_dir=tmp_path, resume=True)
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-4)


def test_checkpoint_loads_without_executing_code(tmp_path):
    fit(small(), blobs(), epochs=1, run_dir=tmp_path, progress=False)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    model = small()
    model.load_state_dict(ckpt["model"])
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


def test_progress_shows_the_batches_of_each_epoch(capsys):
    fit(small(), blobs(), epochs=2, batch_size=20, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1:" in err and "0/10 [" in err and "batch/s" in err  # was: one tick per epoch


class _StopAt:
    """A callback that raises `error` at update `step` (Ctrl-C, or a failure inside the loop)."""

    def __init__(self, step, error):
        self.step, self.error = step, error

    def on_step_end(self, state):
        if state.step == self.step:
            raise self.error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), TrainingDiverged("the loss became nan")])
def test_progress_bars_are_closed_when_the_run_stops(capsys, error):
    """The epoch and batch bars were closed only after a loop that ended normally: after Ctrl-C
    they stayed open and were drawn again when collected, after the CLI's 'interrupted' line."""
    from tqdm import tqdm

    with pytest.raises(type(error)) as stopped:
        fit(small(), blobs(), epochs=3, batch_size=20, progress=True, callbacks=[_StopAt(13, error)])
    assert stopped.traceback  # the frames of fit are kept alive: its bars are not collected
    assert not [bar for bar in tqdm._instances if not bar.disable]
    assert "epoch 2:" in capsys.readouterr().err


def test_nan_loss_stops_the_run_with_a_clear_error():
    X, y = blobs()
    X = X.clone()
    X[5] = math.nan
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1"):
        fit(small(), (X, y), epochs=2, progress=False)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown loss"):
        fit(small(), blobs(), loss="hinge3")
    with pytest.raises(ValueError, match="unknown optimizer"):
        fit(small(), blobs(), optimizer="lbfgs")
    with pytest.raises(ValueError, match="equal length"):
        fit(small(), (torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.long)))
    with pytest.raises(ValueError, match="need base_batch_size"):
        fit(small(), blobs(), lr_scaling="sqrt")
    # these trained on silently (gradient ascent for grad_clip < 0 and for a negative lr_final's
    # last epoch) or failed with a TypeError that named no argument
    with pytest.raises(ValueError, match="grad_clip must be None or a positive"):
        fit(small(), blobs(), grad_clip=-1.0)
    with pytest.raises(ValueError, match="grad_clip must be None or a positive"):
        fit(small(), blobs(), grad_clip=0)
    with pytest.raises(ValueError, match="lr_final must be a number ≥ 0, got -0.001"):
        fit(small(), blobs(), epochs=2, lr_final=-1e-3)
    with pytest.raises(ValueError, match="needs lr > 0 and lr_final > 0"):
        fit(small(), blobs(), epochs=2, lr_final=0.0)
    with pytest.raises(ValueError, match="lr must be a number ≥ 0, got '3e-3'"):  # was torch's
        fit(small(), blobs(), lr="3e-3")  # TypeError from inside Adam
    with pytest.raises(ValueError, match="train_data: y must hold class labels 0, 1, …, got -1"):
        fit(small(), (blobs()[0], blobs()[1] * 2 - 1))  # ±1 labels: was an IndexError in torch
    # labels ≥ the number of classes: were torch's "Target 3 is out of bounds" (cross-entropy),
    # an index error (squared hinge), and a device-side assert on CUDA
    X, y = blobs()
    for loss in ("cross_entropy", "squared_hinge"):
        with pytest.raises(ValueError, match="y holds class 4 but the model gives 3 scores "
                                             "\\(classes 0…2\\)"):
            fit(small(), (X, y + 2), loss=loss)
        with pytest.raises(ValueError, match="y holds class 3 but the model gives 3 scores"):
            evaluate(small(), (X, y + 1), loss=loss)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 2.5"):
        fit(small(), blobs(), epochs=2.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        fit(small(), blobs(), batch_size=0)
    with pytest.raises(ValueError, match="resume=True needs run_dir"):  # trained from scratch
        fit(small(), blobs(), resume=True)
    X, y = blobs()  # numpy arrays were an AttributeError: 'numpy.ndarray' object has no attribute 'to'
    with pytest.raises(ValueError, match="pair \\(X, y\\) of tensors, got ndarray and ndarray"):
        fit(small(), (X.numpy(), y.numpy()))
    with pytest.raises(ValueError, match="data must be a pair .* got Tensor and list"):
        evaluate(small(), (X, y.tolist()))


def test_data_dtypes_are_checked_and_integer_labels_of_any_width_work():
    X, y = blobs(40)
    # numpy data through torch.as_tensor is float64: was "expected m1 and m2 to have the same
    # dtype" from inside F.linear
    with pytest.raises(ValueError, match="train_data: X is torch.float64 but the model's "
                                         "parameters are torch.float32"):
        fit(small(), (X.double(), y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="data: X is torch.float64"):
        evaluate(small(), (X.double(), y))
    # float or (N, 1) labels: were "expected target dtype to be Long" or a scatter index error
    for bad in (y.float(), y[:, None]):
        with pytest.raises(ValueError, match="y must be a 1-D tensor of integer class labels"):
            fit(small(), (X, bad), epochs=1, progress=False)
    # int32 labels (numpy's default integer on Windows) failed with cross-entropy only
    a = fit(small(), (X, y.int()), test_data=(X, y.to(torch.uint8)), epochs=1, batch_size=20,
            progress=False)
    b = fit(small(), (X, y), test_data=(X, y), epochs=1, batch_size=20, progress=False)
    assert a["train_loss"] == b["train_loss"] and a["test_error"] == b["test_error"]


def test_latent_weights_stay_clipped_during_training():
    class Check:
        def on_step_end(self, state):
            for m in state.model.modules():
                if getattr(m, "clip_weights", False):
                    assert m.weight.abs().max() <= 1.0

    fit(small("bnn-mlp"), blobs(), epochs=2, lr=0.5, loss="squared_hinge", callbacks=[Check()],
        progress=False)


def test_schedules():
    assert learning_rate(0, 10, 1e-2, "exp", lr_final=1e-4) == pytest.approx(1e-2)
    assert learning_rate(9, 10, 1e-2, "exp", lr_final=1e-4) == pytest.approx(1e-4)
    assert learning_rate(4, 9, 1e-2, "exp", lr_final=1e-4) == pytest.approx(1e-3)
    assert learning_rate(5, 10, 0.1, "step", milestones=[3, 6]) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown schedule"):
        learning_rate(0, 1, 0.1, "cosine")


def test_large_batch_recipe_arithmetic():
    lr, epochs, ms = large_batch_recipe(4096, 128, 0.1, 10, [5, 8], "sqrt", True)
    assert lr == pytest.approx(0.1 * math.sqrt(32))
    assert epochs == 320 and ms == [160, 256]


def test_lr_scaling_scales_the_whole_exp_schedule():
    X, y = blobs(400)
    h = fit(small(), (X, y), epochs=3, batch_size=400, base_batch_size=100, lr=0.1, lr_final=0.01,
            lr_scaling="sqrt", progress=False)
    # was [0.2, 0.045, 0.01]: only the first epoch's rate was scaled, the decay made steeper
    assert h["lr"] == pytest.approx([0.2, 0.2 * 0.1 ** 0.5, 0.02])


def test_large_batch_recipe_uses_the_batch_really_used_when_it_exceeds_the_data():
    X, y = blobs(400)
    h = fit(small(), (X, y), epochs=1, batch_size=1600, base_batch_size=100, lr=0.1,
            lr_scaling="sqrt", regime_adaptation=True, progress=False)
    # one batch of 400 per epoch: B/B_small = 4, as many updates as 1 epoch at batch 100
    # (was B/B_small = 16 from the nominal 1600: lr 0.4 and 16 epochs, 16 updates)
    assert h["lr"] == pytest.approx([0.2] * 4) and h.final["updates"] == 4


def test_squared_hinge_matches_definition():
    s = torch.tensor([[2.0, -0.5], [0.0, 0.3]])
    y = torch.tensor([0, 1])
    # targets [[1,-1],[-1,1]]: margins 1-ts = [[-1, 0.5], [1, 0.7]] -> relu^2 = [0, .25, 1, .49]
    assert squared_hinge_loss(s, y).item() == pytest.approx((0.25 + 1 + 0.49) / 4)


def test_evaluate_error_rate():
    X, y = blobs()
    model = small()
    loss, err = evaluate(model, (X, y))
    with torch.no_grad():
        model.eval()
        expected = (model(X).argmax(1) != y).float().mean().item()
    assert err == pytest.approx(expected)


def test_train_step_updates_clips_and_refuses_a_nan_loss():
    from analysis.training import train_step

    model = small("bnn-mlp")
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    X, y = blobs(20)
    before = [p.detach().clone() for p in model.parameters()]
    out, loss = train_step(model, opt, X, y, squared_hinge_loss)
    assert out.shape == (20, 3) and not loss.requires_grad
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert all(m.weight.abs().max() <= 1 for m in model.modules() if getattr(m, "clip_weights", False))
    model = small()  # float net: a NaN input reaches the loss (sign() would map it to ±1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    snapshot = [p.detach().clone() for p in model.parameters()]
    X_bad = X.clone()
    X_bad[0] = math.nan
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        train_step(model, opt, X_bad, y, squared_hinge_loss)
    assert all(torch.equal(s, p) for s, p in zip(snapshot, model.parameters()))


def test_cli_refuses_to_start_a_new_run_over_an_existing_one(tmp_path, capsys):
    from analysis.training import cli

    args = ["--model", "mlp", "--dataset", "digits", "--epochs", "1", "--width", "8", "--depth", "1",
            "--out", str(tmp_path), "--name", "run"]
    assert cli(args) == 0
    run = tmp_path / "run"
    config = (run / "config.json").read_text()
    with pytest.raises(SystemExit) as exit_:  # was: resumed the old checkpoint under the new config
        cli(args[:-4] + ["--width", "16", "--out", str(tmp_path), "--name", "run"])
    assert exit_.value.code == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "config.json").read_text() == config
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1


# --------------------------------------------------------------------------- mutation audit

def test_step_schedule_decays_at_the_milestone_epoch_itself():
    """step: η·γ^(number of milestones ≤ epoch), so the decay starts at the milestone epoch."""
    assert learning_rate(2, 10, 0.1, "step", milestones=[3, 6]) == pytest.approx(0.1)
    assert learning_rate(3, 10, 0.1, "step", milestones=[3, 6]) == pytest.approx(0.01)
    assert learning_rate(6, 10, 0.1, "step", milestones=[3, 6]) == pytest.approx(0.001)


def test_evaluate_loss_is_the_mean_over_samples_with_a_partial_last_batch():
    """evaluate's loss is the per-sample mean, also when batch_size does not divide N."""
    X, y = blobs(50)
    model = small()
    loss, _ = evaluate(model, (X, y), batch_size=7)
    with torch.no_grad():
        model.eval()
        expected = torch.nn.functional.cross_entropy(model(X), y).item()
    assert loss == pytest.approx(expected, rel=1e-6)


def test_each_epoch_is_a_new_permutation_in_full_batches():
    """fit: every epoch sees each sample at most once, in a new order, and drops the partial batch."""
    n, batch = 50, 20
    X, y = blobs(n)
    X = X.reshape(n, -1).clone()
    X[:, 0] = torch.arange(n, dtype=X.dtype)  # feature 0 carries the sample's index
    model = torch.nn.Sequential(torch.nn.Linear(16, 3))
    seen = []
    model.register_forward_hook(lambda m, inp, out: seen.append(inp[0][:, 0].long().tolist()))
    h = fit(model, (X, y), epochs=2, batch_size=batch, lr=1e-3, progress=False)
    assert h["updates"] == [2, 4]  # 50 // 20 full batches an epoch
    epochs = [sum(seen[0:2], []), sum(seen[2:4], [])]
    for e in epochs:
        assert len(e) == 40 and len(set(e)) == 40
    assert epochs[0] != epochs[1]


def test_a_resumed_exp_decay_goes_on_from_its_last_rate(tmp_path):
    """--resume with a new total: the decay goes on from the last rate to lr_final. It was spread
    anew over the new total: a finished run taken from 4 to 6 epochs went back up from η_final
    = 1e-3 to 1.6e-3. With the total it was started with, the run's rates are unchanged."""
    kw = dict(lr=1e-2, lr_final=1e-3, progress=False)
    fit(small(), blobs(), epochs=4, run_dir=tmp_path / "done", **kw)
    more = fit(small(), blobs(), epochs=6, run_dir=tmp_path / "done", resume=True, **kw)
    assert more["lr"][4:] == [1e-3, 1e-3]  # a finished decay stays at its end

    class StopAfter2:  # in the third epoch, after the second's checkpoint
        def on_step_end(self, state):
            if state.epoch == 2:
                raise KeyboardInterrupt

    for total in (6, 4):
        with pytest.raises(KeyboardInterrupt):
            fit(small(), blobs(), epochs=6, run_dir=tmp_path / f"cut{total}", callbacks=[StopAfter2()], **kw)
        resumed = fit(small(), blobs(), epochs=total, run_dir=tmp_path / f"cut{total}", resume=True, **kw)
        planned = [learning_rate(e, 6, 1e-2, "exp", 1e-3) for e in range(6)]
        if total == 6:
            assert resumed["lr"] == planned
        else:  # from epoch 2's rate down to 1e-3 in two steps of the same ratio
            assert resumed["lr"][:2] == planned[:2]
            assert resumed["lr"][2:] == pytest.approx([planned[1] * (1e-3 / planned[1]) ** (k / 2)
                                                       for k in (1, 2)], rel=1e-12)


def test_resume_restores_the_rng_of_dropout(tmp_path):
    """A run resumed from its checkpoint draws the same dropout masks as the uninterrupted run."""
    data = blobs(100)

    def net():
        torch.manual_seed(0)
        return models.build("mlp", width=16, depth=1, in_shape=(1, 4, 4), num_classes=3,
                            dropout=0.5)

    full = fit(net(), data, epochs=3, batch_size=20, lr=1e-2, progress=False)
    run = tmp_path / "run"
    fit(net(), data, epochs=1, batch_size=20, lr=1e-2, run_dir=run, progress=False)
    torch.manual_seed(123)  # whatever happens in between must not matter
    resumed = fit(net(), data, epochs=3, batch_size=20, lr=1e-2, run_dir=run, resume=True,
                  progress=False)
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-6)


# --- from a mutation audit: the numbers of a history row, and the options of one update ------

def _constant_classifier(n_in=3):
    """A linear model that scores [0, 1] for every input (zero weights): it always says class 1."""
    model = torch.nn.Linear(n_in, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([0.0, 1.0]))
    return model


@pytest.mark.parametrize("loss, per_sample", [
    ("cross_entropy", math.log(1 + math.e)),  # −log softmax([0, 1])[0]
    ("squared_hinge", (1 + 4) / 2),  # targets (1, −1): max(0, 1 − 0)², max(0, 1 + 1)², mean
])
def test_train_loss_and_error_are_per_sample_means_over_the_batches_seen(loss, per_sample):
    """train_loss is the mean loss per sample and train_error the fraction wrong, both over the
    samples of the full batches (a partial last one is dropped), not over all N; test_loss is
    the same loss."""
    X, y = torch.randn(50, 3), torch.zeros(50, dtype=torch.long)  # class 0, always missed
    h = fit(_constant_classifier(), (X, y), test_data=(X, y), epochs=1, batch_size=20, loss=loss,
            optimizer="sgd", lr=0.0, momentum=0.0, progress=False)
    assert h.final["updates"] == 2
    assert h.final["train_loss"] == pytest.approx(per_sample)
    assert h.final["train_error"] == 1.0 and h.final["test_error"] == 1.0
    assert h.final["test_loss"] == pytest.approx(per_sample)


def test_grad_clip_limits_the_norm_of_the_whole_gradient():
    """grad_clip=c rescales the gradient of all parameters together to norm c: one plain SGD
    step of rate 1 moves the parameters by exactly c when the gradient is larger."""
    from analysis.training import train_step

    model = _constant_classifier()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    X, y = torch.full((4, 3), 10.0), torch.zeros(4, dtype=torch.long)  # a large gradient
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    train_step(model, opt, X, y, torch.nn.functional.cross_entropy, grad_clip=0.25)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.25, rel=1e-4)


def test_milestones_alone_pick_the_step_schedule():
    """schedule=None with milestones (and no lr_final) is "step": η·γ^(milestones passed)."""
    h = fit(small(), blobs(40), epochs=3, batch_size=20, lr=0.1, milestones=[1, 2], gamma=0.5,
            progress=False)
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])


def test_sgd_weight_decay_shrinks_the_weights():
    """optimizer="sgd" with weight_decay λ: where the loss has no gradient, W ← (1 − ηλ)·W."""
    model = torch.nn.Linear(3, 2, bias=False)
    w0 = model.weight.detach().clone()
    X, y = torch.zeros(10, 3), torch.zeros(10, dtype=torch.long)  # zero inputs: zero gradient
    fit(model, (X, y), epochs=1, batch_size=10, optimizer="sgd", lr=0.1, momentum=0.0,
        weight_decay=0.5, progress=False)
    torch.testing.assert_close(model.weight.detach(), 0.95 * w0)


def test_evaluate_leaves_the_model_in_the_mode_it_found_it():
    """evaluate runs in eval mode and then restores train or eval mode as it was."""
    model, data = small(), blobs(20)
    evaluate(model.eval(), data)
    assert not model.training
    evaluate(model.train(), data)
    assert model.training and all(m.training for m in model.modules())
