"""The stage skeleton (ssnas.stages.loop), on a fourth stage small enough to read in the test: a
line fitted by SGD on 16 points, the epoch with the best dev score kept."""

import copy

import pytest
import torch
from torch import nn

from ssnas.reporting import InMemoryReporter
from ssnas.stages.loop import Best, DevCheck, Loop
from ssnas.stages.training import NonFiniteLoss, StageStopped, plan_budget

X = torch.linspace(-1, 1, 24).unsqueeze(1)
Y = 3 * X + 0.5 + 0.1 * torch.sin(17 * X)
TRAIN, DEV = torch.arange(16), torch.arange(16, 24)
STEPS_PER_EPOCH = 4  # 16 rows in batches of 4


def fit_line(reporter, resume=None, epochs=3, patience=0, dev_scores=None):
    """The whole stage: build, then hand the loop one step, the end of an epoch and the checkpoint state.
    `dev_scores` (by epoch) replace the measured dev error, to steer best-on-dev selection."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.2), nn.Linear(8, 1))  # dropout: the global RNG matters
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
    budget = plan_budget(rows=16, batch_size=4, epochs=epochs, min_steps=0)
    best = Best.start("dev_mse", float("inf"), lambda: {"model": copy.deepcopy(model.state_dict())}, lower=True,
                      patience=patience)
    loop = Loop("line", reporter, budget, (TRAIN,), 0, (model,), resume, best=best,
                end=resume["end"] if resume is not None else None)
    modes = []

    def step(batch):
        modes.append(model.training)
        loss = ((model(X[batch[0]]) - Y[batch[0]]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    def end_epoch(epoch, step):
        model.eval()
        with torch.no_grad():
            mse = float(((model(X[DEV]) - Y[DEV]) ** 2).mean())
        score = dev_scores[epoch] if dev_scores is not None else mse
        reporter.metric("mse", score, step=step, epoch=epoch, split="dev")
        return DevCheck(score, {"seen_at_step": step})

    def state():
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "end": loop.end}

    loop.run(step, end_epoch, state)
    return loop, model, modes


def test_the_loop_counts_steps_reports_epochs_and_checkpoints_each_one():
    reporter = InMemoryReporter(keep_checkpoints=10)
    loop, _, modes = fit_line(reporter)
    assert [row.step for row in reporter.metrics if row.key == "loss"] == list(range(1, 13))
    assert [row.epoch for row in reporter.metrics if row.key == "epoch_loss"] == [0, 1, 2]
    assert all(modes)  # each epoch trains in training mode, though the dev check left the model in eval
    assert reporter.steps_seen == 12 and loop.progress == 1.0
    assert [epoch for epoch, _ in reporter.checkpoints] == [0, 1, 2]
    state = reporter.checkpoints[-1][1]
    assert state["stage"] == "line" and set(state) == {"stage", "position", "model", "optimizer", "end", "best"}
    assert (state["position"]["epoch"], state["position"]["index"], state["position"]["step"]) == (3, 0, 12)


def test_best_on_dev_keeps_the_best_epoch_with_its_weights_and_ties_keep_the_earlier():
    reporter = InMemoryReporter(keep_checkpoints=10)
    loop, _, _ = fit_line(reporter, epochs=4, dev_scores=[0.9, 0.3, 0.3, 0.5])
    record = loop.best.record
    assert record["epoch"] == 1 and record["dev_mse"] == 0.3 and record["seen_at_step"] == 8
    weights_after_epoch_1 = reporter.checkpoints[1][1]["model"]
    assert all(torch.equal(record["model"][k], v) for k, v in weights_after_epoch_1.items())
    higher_is_better = Best.start("f1", -1.0, dict, lower=False)
    higher_is_better.offer(DevCheck(0.4), epoch=0)
    higher_is_better.offer(DevCheck(0.2), epoch=1)
    assert higher_is_better.record == {"f1": 0.4, "epoch": 0}


@pytest.mark.parametrize("stop_after", [6, 4])  # mid-epoch, and at an epoch's end
def test_a_stop_request_checkpoints_raises_and_resumes_bit_for_bit(stop_after):
    full_reporter = InMemoryReporter()
    full, full_model, _ = fit_line(full_reporter)
    stopped = InMemoryReporter(stop_after=stop_after)
    with pytest.raises(StageStopped, match=f"line: stopped on request after step {stop_after}"):
        fit_line(stopped)
    state = stopped.checkpoints[-1][1]
    position = state["position"]
    assert (position["epoch"], position["index"], position["step"]) == divmod(stop_after, STEPS_PER_EPOCH) + (
        stop_after,)

    resumed_reporter = InMemoryReporter()
    resumed, resumed_model, _ = fit_line(resumed_reporter, resume=state)
    assert stopped.values("loss") + resumed_reporter.values("loss") == full_reporter.values("loss")
    assert stopped.values("mse") + resumed_reporter.values("mse") == full_reporter.values("mse")
    assert resumed.best.record["epoch"] == full.best.record["epoch"]
    assert all(torch.equal(value, full_model.state_dict()[key]) for key, value in resumed_model.state_dict().items())


def test_patience_ends_the_loop_and_a_resume_after_it_trains_no_more():
    scores = [1.0, 0.5, 0.7, 0.8, 0.1, 0.1, 0.1, 0.1]
    reporter = InMemoryReporter()
    loop, _, _ = fit_line(reporter, epochs=8, patience=2, dev_scores=scores)
    assert reporter.values("mse") == [1.0, 0.5, 0.7, 0.8] and loop.end == 4
    assert ("info", "line: no better dev score for 2 epochs; stopped after epoch 3") in reporter.events
    after_a_crash = InMemoryReporter()  # the worker died after the last checkpoint: resume from it
    resumed, _, _ = fit_line(after_a_crash, resume=reporter.checkpoints[-1][1], epochs=8, patience=2, dev_scores=scores)
    assert after_a_crash.values("loss") == [] and resumed.best.record["epoch"] == 1


def test_a_loop_continues_the_numbering_of_one_before_it():
    """Fine-tune's modes run one loop after another: epochs and steps go on, the schedule restarts."""
    reporter = InMemoryReporter()
    budget = plan_budget(rows=16, batch_size=4, epochs=2, min_steps=0)
    loop = Loop("line", reporter, budget, (TRAIN,), 0, (), first_epoch=3, first_step=5, total=13)
    progress = []

    def step(batch):
        progress.append(loop.progress)
        return torch.tensor(1.0)

    loop.run(step, lambda epoch, step: None, dict)
    assert [(row.epoch, row.step) for row in reporter.metrics if row.key == "epoch_loss"] == [(3, 9), (4, 13)]
    assert progress[0] == 0.0 and progress[-1] == 7 / 8 and loop.end == 5


def test_a_non_finite_loss_names_the_stage_and_epoch():
    loop = Loop("line", InMemoryReporter(), plan_budget(16, 4, 1, 0), (TRAIN,), 0, ())
    with pytest.raises(NonFiniteLoss, match="line: loss became nan in epoch 0"):
        loop.run(lambda batch: torch.tensor(float("nan")), lambda epoch, step: None, dict)
