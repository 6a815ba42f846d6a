"""Time windows and all-to-all pairs: counts and frame selections against direct enumeration."""

import itertools

import pytest

from neuralops.data.timewindow import AllToAll, TimeWindow, trajectory_frames


def frames_of(s: slice) -> list[int]:
    return list(range(s.start, s.stop, s.step))


@pytest.mark.parametrize(
    "n_in,n_out,stride,dt_stride,n_time",
    [(1, 1, 1, 1, 10), (2, 3, 1, 1, 10), (3, 1, 2, 1, 11), (2, 2, 1, 3, 20), (1, 4, 3, 2, 17)],
)
def test_window_count_and_frames_match_brute_force(n_in, n_out, stride, dt_stride, n_time):
    tw = TimeWindow(n_in, n_out, stride, dt_stride)
    expected = []
    for start in range(0, n_time, stride):
        idx = [start + k * dt_stride for k in range(n_in + n_out)]
        if idx[-1] < n_time:
            expected.append((idx[:n_in], idx[n_in:]))
    got = [(frames_of(f.input), frames_of(f.target)) for f in tw.frames(n_time)]
    assert got == expected
    assert tw.count(n_time) == len(expected) > 0
    assert tw.span == (n_in + n_out - 1) * dt_stride + 1


def test_window_longer_than_trajectory_is_refused():
    tw = TimeWindow(n_in=4, n_out=3, dt_stride=2)
    assert tw.count(12) == 0
    with pytest.raises(ValueError, match="spans 13 snapshots but trajectories have 12"):
        tw.frames(12)


@pytest.mark.parametrize("bad", [dict(n_in=0), dict(n_out=-1), dict(stride=0), dict(dt_stride=1.5)])
def test_window_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=f"TimeWindow.{next(iter(bad))} must be an integer >= 1"):
        TimeWindow(**bad)


@pytest.mark.parametrize("k,step,n_time", [(1, 1, 2), (3, 1, 10), (4, 2, 9), (5, 1, 6)])
def test_all2all_count_is_triangular(k, step, n_time):
    a2a = AllToAll(max_steps=k, step=step)
    pairs = [(frames_of(f.input), frames_of(f.target)) for f in a2a.frames(n_time)]
    expected = [
        ([i * step], [j * step])
        for i, j in itertools.combinations_with_replacement(range(k + 1), 2)
    ]
    assert pairs == expected
    assert a2a.count(n_time) == len(pairs) == (k + 1) * (k + 2) // 2
    assert all(f.squeeze for f in a2a.frames(n_time))


def test_all2all_defaults_and_options():
    assert AllToAll().steps(7) == 6 and AllToAll(step=2).steps(7) == 3
    consecutive = AllToAll(max_steps=4, consecutive_only=True).frames(5)
    assert [(f.input.start, f.target.start) for f in consecutive] == [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
    ]
    with pytest.raises(
        ValueError, match="needs 9 snapshots but trajectories have 6; use max_steps <= 2"
    ):
        AllToAll(max_steps=4, step=2).frames(6)
    with pytest.raises(ValueError, match="t_norm must be > 0"):
        AllToAll(t_norm=0.0)


def test_trajectory_frames_cover_everything():
    (f,) = trajectory_frames(5)
    assert frames_of(f.input) == frames_of(f.target) == [0, 1, 2, 3, 4] and not f.squeeze
