#!/usr/bin/env bash
# One command for a GPU machine (see ../shared/gpu/README.md): the CUDA tests (fp16 against fp32, pinned
# transfers on streams, colour on the GPU against the CPU path), `vfi bench` in fp16 at 1024x2048 and
# 1080x1920 for each GPU backend, and an end-to-end 1080p conversion whose busy shares (decode, model,
# encode, and the colour conversion within decode and encode) say which stage limits it; all figures in
# one JSON under OUT (default $OUT, else ./gpu-results). Tried on the CPU first with: DEVICE=cpu SMALL=1.
set -u
out=${OUT:-gpu-results}
device=${DEVICE:-cuda}
mkdir -p "$out"
python3 - "$out" "$device" "${SMALL:-0}" <<'PY'
import json, platform, subprocess, sys, time
from pathlib import Path

out, device, small = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
report = {"device": device, "python": platform.python_version(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def run(name, command, timeout):
    started = time.time()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        report[name] = {"rc": done.returncode, "seconds": round(time.time() - started, 1), "tail": (done.stdout + done.stderr)[-3000:]}
    except subprocess.TimeoutExpired:
        report[name] = {"rc": "timeout", "seconds": timeout}
    (out / "gpu-check.json").write_text(json.dumps(report, indent=1) + "\n")
    return report[name]


try:
    import torch
    report["torch"] = torch.__version__
    report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
except Exception as error:  # noqa: BLE001 - recorded, the rest still runs
    report["torch"] = f"unavailable: {error}"

run("cuda_tests", [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests"], 240)
sizes = ["64x96", "72x128"] if small else ["1024x2048", "1080x1920"]
precision = "fp32" if device == "cpu" else "fp16"
for size in sizes:
    json_path = out / f"bench-{size}.json"
    run(f"bench_{size}", [sys.executable, "-m", "vfi_cli", "bench", "--size", size, "--device", device, "--precision", precision,
                          "--backend", "all", "--json", str(json_path), "-q"], 240)
    if json_path.is_file():
        report[f"bench_{size}"]["figures"] = json.loads(json_path.read_text())

# A 1080p clip made from the bundled sample (scaled up), then converted end to end.
clip = out / "clip-1080p.mp4"
height, width, frames = (72, 128, 8) if small else (1080, 1920, 48)
make = f"""
import av, cv2
with av.open('samples/bbb_640x360_25fps.mp4') as source, av.open('{clip}', 'w') as target:
    stream = target.add_stream('libx264', rate=25)
    stream.width, stream.height, stream.pix_fmt = {width}, {height}, 'yuv420p'
    stream.options = {{'preset': 'ultrafast', 'crf': '18'}}
    for number, frame in enumerate(source.decode(video=0)):
        if number == {frames}:
            break
        rgb = cv2.resize(frame.to_ndarray(format='rgb24'), ({width}, {height}), interpolation=cv2.INTER_CUBIC)
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')):
            target.mux(packet)
    for packet in stream.encode():
        target.mux(packet)
"""
run("make_clip", [sys.executable, "-c", make], 120)
e2e_json = out / "bench-e2e.json"
run("e2e_1080p", [sys.executable, "-m", "vfi_cli", "bench", "--size", f"{height}x{width}", "--device", device, "--precision", precision,
                  "--e2e", str(clip), "--json", str(e2e_json), "-q"], 300)
if e2e_json.is_file():
    report["e2e_1080p"]["figures"] = json.loads(e2e_json.read_text())
clip.unlink(missing_ok=True)
figures = report["e2e_1080p"].get("figures", {}).get("e2e", {})
# The bar: the encoder, not the model or the colour conversion, limits the 1080p conversion.
report["e2e_shares"] = {key: figures.get(key) for key in ("output_fps", "busy_share", "colour_share")}
(out / "gpu-check.json").write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps({k: (v.get("rc") if isinstance(v, dict) and "rc" in v else v) for k, v in report.items()}, indent=1))
PY
