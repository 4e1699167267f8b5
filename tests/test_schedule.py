"""Exact output timing: counts, times, fractional t and copies for factors and target rates."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vfi_cli.engine.schedule import Schedule
from vfi_cli.units import parse_rate


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


def test_factor_mode_keeps_real_input_times() -> None:
    """--factor on variable-rate input: every input frame at its own time, N-1 frames evenly inside each gap."""
    times = [Fraction(0), Fraction(40, 1000), Fraction(120, 1000), Fraction(153, 1000)]
    schedule = Schedule(Fraction(25), Fraction(50), factor=2, tolerance=Fraction(1, 1000))
    out = [o for time in times for o in schedule.add_input(time)] + schedule.finish()
    assert [(o.time, o.left, o.t) for o in out] == [
        (Fraction(0), 0, 0), (Fraction(20, 1000), 0, Fraction(1, 2)),
        (Fraction(40, 1000), 1, 0), (Fraction(80, 1000), 1, Fraction(1, 2)),
        (Fraction(120, 1000), 2, 0), (Fraction(273, 2000), 2, Fraction(1, 2)),
        (Fraction(153, 1000), 3, 0), (Fraction(173, 1000), 3, 0),  # the last frame held one nominal frame
    ]
    assert schedule.output_duration == Fraction(193, 1000)
    assert all(o.time / schedule.output_time_base(Fraction(1, 1000)) % 1 == 0 for o in out)


def test_real_times_are_not_snapped_beyond_the_stream_tick() -> None:
    """A variable-rate time 6.7 ms off the 30 fps grid stays where it is (the old quarter-frame snap moved it)."""
    schedule = Schedule(Fraction(30), Fraction(60), tolerance=Fraction(1, 90000))
    schedule.add_input(Fraction(0))
    out = schedule.add_input(Fraction(40, 1000))
    assert [(o.time, o.t) for o in out] == [(Fraction(0), 0), (Fraction(1, 60), Fraction(5, 12)), (Fraction(1, 30), Fraction(5, 6))]


def test_factor_mode_equals_constant_rate_on_constant_rate_input() -> None:
    rate = Fraction(30000, 1001)
    times = [Fraction(round(k / rate * 1000), 1000) for k in range(20)]  # Matroska's millisecond rounding
    a = run(rate, rate * 3, times)
    schedule = Schedule(rate, rate * 3, factor=3)
    b = [o for time in times for o in schedule.add_input(time)] + schedule.finish()
    assert [(o.number, o.time, o.left, o.t) for o in a] == [(o.number, o.time, o.left, o.t) for o in b]


def write_vfr(path, times_ms: list[int]):
    """An x264 clip whose frames sit at the given millisecond times (variable frame rate)."""
    import av

    from tests.conftest import translating_frames

    frames = translating_frames(len(times_ms), 32, 48, step=(2, 0))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = 32, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for rgb, ms in zip(frames, times_ms):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_variable_rate_video_end_to_end(tmp_path, tiny_weights) -> None:
    """--factor 2 keeps each input frame at its real time (copied exactly); --fps 30 gives constant rate."""
    from click.testing import CliRunner

    from tests.conftest import decode_video
    from vfi_cli import cli

    times_ms = [0, 40, 120, 153, 200, 300, 333, 366]
    source = write_vfr(tmp_path / "vfr.mp4", times_ms)
    in_times, in_frames = decode_video(source)
    assert in_times == [Fraction(ms, 1000) for ms in times_ms]
    out = tmp_path / "x2.mp4"
    result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(out), "--weights", str(tiny_weights), "-q",
                                           "--crf", "0", "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    out_times, out_frames = decode_video(out)
    middles = [Fraction(a + b, 2000) for a, b in zip(times_ms, times_ms[1:])]
    expected = sorted([Fraction(ms, 1000) for ms in times_ms] + middles)
    assert out_times[: len(expected)] == expected
    assert len(out_times) == 2 * len(times_ms)
    for k, frame in enumerate(in_frames):
        assert np.array_equal(out_frames[2 * k], frame)

    out = tmp_path / "fps30.mp4"
    result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(out), "--fps", "30", "--weights",
                                           str(tiny_weights), "-q"])
    assert result.exit_code == 0, result.output
    out_times, _ = decode_video(out)
    assert out_times == [Fraction(j, 30) for j in range(len(out_times))]
    assert abs(len(out_times) / 30 - Fraction(366, 1000)) <= Fraction(1, 10)  # duration 0.366 s + one nominal frame
