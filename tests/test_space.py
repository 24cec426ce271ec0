"""The Space path: with `spaces` installed, as on Hugging Face, each request runs under `spaces.GPU` and the app
serves; outside a ZeroGPU Space the decorator hands the function back as it is, so it runs on the CPU unchanged."""

import math

import soundfile as sf
import spaces
from gradio_client import Client, handle_file

import asr_pt.ui.transcribe as transcribe_tab
from asr_pt.compare import BASE, FINETUNED


def test_requests_run_under_spaces_gpu_and_are_served(
    monkeypatch, serve_demo, tiny_model_dir, other_tiny_model_dir, speech_clips
):
    assert transcribe_tab.spaces is spaces
    asked_seconds = []
    real_gpu = spaces.GPU

    def recording_gpu(*, duration):
        def decorate(function):
            decorated = real_gpu(duration=duration)(function)
            assert decorated is function  # not on ZeroGPU: nothing to wrap

            def run(*args):
                asked_seconds.append(duration(*args))
                return decorated(*args)

            return run

        return decorate

    monkeypatch.setattr(spaces, "GPU", recording_gpu)
    url = serve_demo(str(tiny_model_dir), str(other_tiny_model_dir))
    path, _ = speech_clips[1]
    result = Client(url, verbose=False).predict(handle_file(str(path)), "Portuguese", "", "", api_name="/transcribe")
    assert all(result["runs"][side]["transcript"]["language"] == "Portuguese" for side in (FINETUNED, BASE))
    assert asked_seconds == [math.ceil(30 + sf.info(path).duration / 2)]  # 30 s plus half the clip
