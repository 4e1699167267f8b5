"""Exact output timing: counts, times, fractional t and copies for factors and target rates."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vfi_cli.engine.schedule import Schedule, parse_rate


def run(rate_in: Fraction, rate_out: Fraction, times: list[Fraction | None]) -> list:
    schedule = Schedule(rate_in, rate_out)
    out = []
    for time in times:
        out.extend(schedule.add_input(time))
    out.extend(schedule.finish())
    return out


def nominal(count: int, rate: Fraction) -> list[Fraction]:
    return [Fraction(k) / rate for k in range(count)]


def reference(count: int, rate_in: Fraction, rate_out: Fraction) -> list[tuple[int, Fraction, int, Fraction]]:
    """Brute force: each output time j/rate_out against input times k/rate_in."""
    duration = Fraction(count) / rate_in
    total = int(duration * rate_out + Fraction(1, 2))
    rows = []
    for j in range(total):
        time = Fraction(j) / rate_out
        k = min(int(time * rate_in), count - 1)
        t = time * rate_in - k if k < count - 1 else Fraction(0)
        rows.append((j, time, k, t))
    return rows


@pytest.mark.parametrize(
    ("rate_in", "rate_out"),
    [
        (Fraction(24), Fraction(48)),
        (Fraction(25), Fraction(100)),
        (Fraction(24), Fraction(60)),
        (Fraction(25), Fraction(60)),
        (Fraction(30000, 1001), Fraction(60)),
        (Fraction(24000, 1001), Fraction(60000, 1001)),
        (Fraction(30000, 1001), Fraction(60000, 1001)),
        (Fraction(50), Fraction(24)),
    ],
)
def test_matches_brute_force_reference(rate_in: Fraction, rate_out: Fraction) -> None:
    """Every output frame's time, neighbours and t equal an independent computation."""
    count = 37
    got = [(o.number, o.time, o.left, o.t) for o in run(rate_in, rate_out, nominal(count, rate_in))]
    assert got == reference(count, rate_in, rate_out)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_factor_places_t_at_k_over_n_and_keeps_duration(factor: int) -> None:
    rate = Fraction(30000, 1001)
    count = 20
    out = run(rate, rate * factor, nominal(count, rate))
    assert len(out) == count * factor
    for o in out:
        k, m = divmod(o.number, factor)
        assert o.time == Fraction(o.number) / (rate * factor)
        if k < count - 1:
            assert (o.left, o.t) == (k, Fraction(m, factor))
        else:  # the last input frame is held until the end of its display time
            assert (o.left, o.t) == (count - 1, 0)
    copies = [o for o in out if o.is_copy]
    assert [o.left for o in copies if o.number % factor == 0] == list(range(count))


def test_24_to_60_copies_only_coincident_frames() -> None:
    """At 24 -> 60 every second input frame coincides with an output frame (j = 5k/2) and is copied."""
    out = run(Fraction(24), Fraction(60), nominal(24, Fraction(24)))
    assert len(out) == 60
    coincident = {o.number for o in out if o.is_copy and o.number < 57}
    assert coincident == {5 * k // 2 for k in range(0, 24, 2) if 5 * k // 2 < 57}
    middle = [o for o in out if o.number == 1][0]
    assert (middle.left, middle.t) == (0, Fraction(2, 5))


def test_jittery_container_timestamps_snap_to_the_nominal_grid() -> None:
    """Timestamps rounded to a coarse time base (e.g. 1/1000 s at 23.976) still give t = 1/2 exactly."""
    rate = Fraction(24000, 1001)
    rounded = [Fraction(round(k / rate * 1000), 1000) for k in range(30)]
    assert any(r != k / rate for k, r in enumerate(rounded))
    out = run(rate, rate * 2, rounded)
    assert {o.t for o in out} == {Fraction(0), Fraction(1, 2)}
    assert len(out) == 60


def test_missing_or_backwards_timestamps_fall_back_to_nominal_spacing() -> None:
    rate = Fraction(25)
    times = [Fraction(0), None, Fraction(2, 25), Fraction(1, 25), Fraction(4, 25)]
    out = run(rate, Fraction(50), times)
    assert len(out) == 10
    assert all(o.t in (0, Fraction(1, 2)) for o in out)


def test_variable_gap_interpolates_at_the_real_fraction() -> None:
    """A dropped frame (gap of two intervals) gives t over the real gap, not over one interval."""
    rate = Fraction(10)
    times = [Fraction(0), Fraction(1, 10), Fraction(3, 10), Fraction(4, 10)]
    out = run(rate, Fraction(20), times)
    between = [(o.left, o.t) for o in out if o.left == 1]
    assert between == [(1, Fraction(0)), (1, Fraction(1, 4)), (1, Fraction(1, 2)), (1, Fraction(3, 4))]
    assert len(out) == 10  # duration 0.5 s at 20 fps


def test_single_frame_is_held_for_its_duration() -> None:
    out = run(Fraction(25), Fraction(50), [Fraction(0)])
    assert [(o.left, o.t) for o in out] == [(0, 0), (0, 0)]


@pytest.mark.parametrize(
    ("text", "rate"),
    [("60", Fraction(60)), ("60000/1001", Fraction(60000, 1001)), ("59.94", Fraction(60000, 1001)),
     ("23.976", Fraction(24000, 1001)), ("12.5", Fraction(25, 2))],
)
def test_parse_rate(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "-30", "abc", "1/0", ""])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)
