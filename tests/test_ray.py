"""Scale-out on Ray (issue 15): the segments of one file run as Ray tasks in different worker
processes, and a file or a batch converted on Ray is the one converted here (same frames, same
times). Ray runs in this process with 2 CPUs, started once for the module."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import decode_video, translating_frames, write_video
from vfi_cli import api, cli
from vfi_cli.config import ConvertOptions, EncodeSettings, EngineOptions
from vfi_cli.errors import VfiError
from vfi_cli.jobs.cluster import ray_endpoint, ray_module, task_setup
from vfi_cli.jobs.manifest import Journal

ENGINE = EngineOptions(device="cpu", threads=1)  # one thread in both runs: the same arithmetic, bit for bit
OPTIONS = ConvertOptions(factor=2, encode=EncodeSettings(codec="ffv1", crf=None, preset=None))
SEGMENT = Fraction(1, 4)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vfi-zoom[ray]'); the test extra has it")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def clip(path: Path, count: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, translating_frames(count, 32, 48, step=(2, 0), seed=seed), 24, audio_seconds=count / 24)


def same_video(first: Path, second: Path) -> bool:
    (times, frames), (other_times, other_frames) = decode_video(first), decode_video(second)
    return times == other_times and len(frames) == len(other_frames) and all((a == b).all() for a, b in zip(frames, other_frames))


def test_segments_of_one_file_run_on_different_workers(ray_cluster, tmp_path: Path, tiny_weights: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`vfi interpolate IN OUT --ray`: 4 segments as tasks, made by two worker processes at least, joined
    here into what the local run writes; the work folder is gone."""
    source = clip(tmp_path / "in.mp4", 24)
    local = api.convert(source, tmp_path / "local.mkv", OPTIONS, engine=ENGINE, weights=tiny_weights, segment=SEGMENT)
    journals: list[dict[int, dict]] = []
    original = Journal.remove
    monkeypatch.setattr(Journal, "remove", lambda self: journals.append(self.done()) or original(self))
    import vfi_cli.jobs.cluster as cluster

    def slow(plan, index):  # nested: Ray sends it by value. A task that lasts lets the second worker take one
        import time  # (a 0.1 s task could all run on the first worker while the second one starts up)

        from vfi_cli.jobs.cluster import _segment_task

        time.sleep(1.0)
        return _segment_task(plan, index)

    monkeypatch.setattr(cluster, "_segment_task", slow)
    result = CliRunner().invoke(cli.main, ["interpolate", str(source), str(tmp_path / "ray.mkv"), "--weights", str(tiny_weights),
                                           "--codec", "ffv1", "--device", "cpu", "--threads", "1", "--segment", "0.25", "--ray"])
    assert result.exit_code == 0, result.output
    (done,) = journals
    assert sorted(done) == [0, 1, 2, 3]
    assert len({entry["worker"] for entry in done.values()}) >= 2, done
    assert same_video(tmp_path / "ray.mkv", tmp_path / "local.mkv") and local.frames_out == 48
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "local.mkv", "ray.mkv"]


def test_a_worker_that_dies_has_its_segment_run_again(ray_cluster, tmp_path: Path, tiny_weights: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker making segment 1 dies (as if killed) the first time: Ray runs that task again and the
    output is still the local run's."""
    import vfi_cli.jobs.cluster as cluster

    source = clip(tmp_path / "in.mp4", 12)
    api.convert(source, tmp_path / "local.mkv", OPTIONS, engine=ENGINE, weights=tiny_weights, segment=SEGMENT)
    died = tmp_path / "died"

    def dying(plan, index):  # nested: Ray sends it by value, so workers need not import this test
        import os

        from vfi_cli.jobs.cluster import _segment_task

        if index == 1 and not died.exists():
            died.touch()
            os._exit(1)
        return _segment_task(plan, index)

    monkeypatch.setattr(cluster, "_segment_task", dying)
    api.convert(source, tmp_path / "ray.mkv", OPTIONS, engine=ENGINE, weights=tiny_weights, segment=SEGMENT, ray="local")
    assert died.exists() and same_video(tmp_path / "ray.mkv", tmp_path / "local.mkv")


def test_a_batch_on_ray_writes_what_the_local_batch_writes(ray_cluster, tmp_path: Path, tiny_weights: Path) -> None:
    """Files in segments and files in one piece; a file already converted is skipped as locally."""
    for k, count in enumerate((12, 6, 18)):
        clip(tmp_path / "in" / f"c{k}.mp4", count, seed=k)
    common = {"engine": ENGINE, "weights": tiny_weights, "segment": SEGMENT}
    local = api.convert_batch([tmp_path / "in"], tmp_path / "local", OPTIONS, **common)
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "c1_48fps.mp4").write_bytes(b"done before")
    on_ray = api.convert_batch([tmp_path / "in"], tmp_path / "ray", OPTIONS, ray="local", **common)
    assert [r.status for r in local.files] == ["converted"] * 3
    assert [r.status for r in on_ray.files] == ["converted", "skipped", "converted"]
    for k in (0, 2):
        name = f"c{k}_48fps.mp4"
        assert same_video(tmp_path / "ray" / name, tmp_path / "local" / name)
        assert on_ray.files[k].summary.frames_out == local.files[k].summary.frames_out
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["c0_48fps.mp4", "c1_48fps.mp4", "c2_48fps.mp4"]


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(VfiError, match=r"pip install 'vfi-zoom\[ray\]'"):
        ray_module()


def test_each_task_asks_for_one_gpu_or_its_threads() -> None:
    assert task_setup(EngineOptions(device="cpu", threads=3), 4) == ({"num_cpus": 3}, EngineOptions(device="cpu", threads=3))
    assert task_setup(EngineOptions(), 0) == ({"num_cpus": 1}, EngineOptions(device="cpu", threads=1))
    assert task_setup(EngineOptions(), 2) == ({"num_cpus": 1, "num_gpus": 1}, EngineOptions(device="cuda", threads=1))
    assert task_setup(EngineOptions(device="cuda:1"), 0)[0]["num_gpus"] == 1


def test_ray_options_that_make_no_sense_are_refused(tmp_path: Path) -> None:
    source = clip(tmp_path / "in.mp4", 4)
    misplaced = CliRunner().invoke(cli.main, ["interpolate", "--ray", str(source), str(tmp_path / "out.mp4")])
    assert misplaced.exit_code == 2 and "put --ray after the paths" in misplaced.output
    jobs = CliRunner().invoke(cli.main, ["interpolate", str(source), "-o", str(tmp_path / "out"), "--jobs", "2", "--ray"])
    assert jobs.exit_code == 2 and "Ray decides" in jobs.output


def test_an_address_where_nothing_listens_fails_at_once_in_one_line(tmp_path: Path) -> None:
    """A fresh process (Ray not started in it): a loopback port nobody listens on is refused by a plain
    TCP connection before Ray is asked, so no Ray log line and no wait for Ray's minutes of retries."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'vfi-zoom[ray]'); the test extra has it")
    source = clip(tmp_path / "in.mp4", 4)
    with socket.socket() as probe:  # a port that was free a moment ago, on the loopback range only
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "vfi_cli", "interpolate", str(source), str(tmp_path / "out.mp4"),
                             "--ray", f"127.0.0.1:{port}", "--ray-timeout", "5"], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 60 and result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(("address", "endpoint"), [
    ("local", None), ("auto", None), ("10.1.2.3:6380", ("10.1.2.3", 6380)), ("head", ("head", 6379)),
    ("ray://head:10002", ("head", 10002)), ("ray://head", ("head", 10001)), ("[::1]:6379", ("::1", 6379)), ("::1", ("::1", 6379)),
])
def test_cluster_addresses_name_a_host_and_port(address: str, endpoint: tuple[str, int] | None) -> None:
    assert ray_endpoint(address) == endpoint


@pytest.mark.parametrize("address", ["head:port", "head:0", "head:70000", ":6379", "ray://"])
def test_a_malformed_cluster_address_is_refused(address: str) -> None:
    with pytest.raises(VfiError, match="is not a Ray cluster address"):
        ray_endpoint(address)
