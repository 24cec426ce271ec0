"""The Space through its API, as `gradio_client` users see it, on two tiny models of different seeds."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import DEMO_MAX_NEW_TOKENS as MAX_NEW_TOKENS
from conftest import DEMO_MAX_SECONDS as MAX_SECONDS
from conftest import free_port
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from asr_pt.audio import load_audio
from asr_pt.compare import BASE, FINETUNED, pair_name
from asr_pt.metrics import score_pair
from asr_pt.models import ASRModel
from asr_pt.text import normalize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client(demo_url):
    return Client(demo_url, verbose=False)


def transcribe(client, path, reference="", language="Portuguese", context=""):
    return client.predict(handle_file(str(path)), language, context, reference, api_name="/transcribe")


def test_a_portuguese_clip_gives_both_texts_and_their_wer(client, tiny_model_dir, other_tiny_model_dir, speech_clips):
    path, _ = speech_clips[3]
    result = transcribe(client, path)
    audio = load_audio(path)
    texts = {side: result["runs"][side]["transcript"]["text"] for side in (FINETUNED, BASE)}
    expected = {
        FINETUNED: ASRModel(str(tiny_model_dir), max_new_tokens=MAX_NEW_TOKENS).transcribe(audio).text,
        BASE: ASRModel(str(other_tiny_model_dir), max_new_tokens=MAX_NEW_TOKENS).transcribe(audio).text,
    }
    assert texts == expected and texts[FINETUNED] != texts[BASE]
    between = result["scores"][pair_name(BASE, FINETUNED)]
    assert between["written"]["wer"] == pytest.approx(score_pair(texts[FINETUNED], texts[BASE], "written").wer)
    assert between["normalized"]["cer"] == pytest.approx(score_pair(texts[FINETUNED], texts[BASE], "normalized").cer)
    assert set(result["scores"]) == {pair_name(BASE, FINETUNED)}  # no reference, no reference scores
    assert result["runs"][FINETUNED]["model_id"] == str(tiny_model_dir)
    assert result["runs"][BASE]["transcript"]["language"] == "Portuguese"
    assert result["runs"][BASE]["transcript"]["rtf"] > 0


def test_a_reference_is_scored_in_both_protocols(client, speech_clips):
    path, sentence = speech_clips[4]
    result = transcribe(client, path, reference=sentence)
    for side in (FINETUNED, BASE):
        text = result["runs"][side]["transcript"]["text"]
        for protocol in ("written", "normalized"):
            scores = result["scores"][pair_name(side, "reference")][protocol]
            assert scores["wer"] == pytest.approx(score_pair(sentence, text, protocol).wer)
        diff = result["diffs"][pair_name(side, "reference")]
        reference_words = [word.split("→")[0] for word, tag in diff if tag != "insertion"]
        assert reference_words == normalize(sentence).split()  # every reference word shows up, in order
        heard_words = [word.split("→")[-1] for word, tag in diff if tag != "deletion"]
        assert heard_words == normalize(text).split()


def test_bad_input_gets_the_librarys_message_and_the_next_request_works(client, speech_clips, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    with pytest.raises(AppError, match="notes.wav is not readable audio"):
        transcribe(client, not_audio)
    long_clip = tmp_path / "long.wav"
    subprocess.run(["sox", str(speech_clips[0][0]), str(long_clip), "repeat", "8"], check=True)
    with pytest.raises(AppError, match=f"the audio is too long: .* the limit is {MAX_SECONDS:g} s"):
        transcribe(client, long_clip)
    with pytest.raises(AppError, match="Klingon is not in the list of choices"):
        client.predict(handle_file(str(speech_clips[0][0])), "Klingon", "", "", api_name="/transcribe")
    assert transcribe(client, speech_clips[0][0])["runs"][BASE]["transcript"]["text"] is not None


def test_status_endpoint_reports_both_models_ready(client):
    status = client.predict(api_name="/status")
    assert {side: status[side]["state"] for side in (FINETUNED, BASE)} == {FINETUNED: "ready", BASE: "ready"}
    for side in (FINETUNED, BASE):
        assert status[side]["dtype"] == "float32" and status[side]["device"] == "cpu"
        assert 0.01 < status[side]["weights_gb"] < 0.05  # the tiny model's 19.7 MB of float32 weights


def test_the_app_serves_int8_on_cpu_unless_asr_pt_dtype_says_otherwise(tiny_model_dir):
    from asr_pt.settings import Settings
    from asr_pt.ui.status import Models

    environ = {"ASR_PT_FINETUNED_MODEL": str(tiny_model_dir), "ASR_PT_BASE_MODEL": str(tiny_model_dir)}
    models = Models.from_settings(Settings.from_env(environ))
    assert {models[side].dtype for side in (FINETUNED, BASE)} == {"int8"}
    assert {models[side].model_id for side in (FINETUNED, BASE)} == {str(tiny_model_dir)}
    models = Models.from_settings(Settings.from_env(environ | {"ASR_PT_DTYPE": "float32"}))
    assert {models[side].dtype for side in (FINETUNED, BASE)} == {"float32"}


def test_a_visitor_is_told_how_long_their_clip_will_take_from_the_measured_speed(tiny_model_dir, speech_clips):
    from asr_pt.ui.status import Models
    from asr_pt.ui.transcribe import seconds_words, wait_markdown

    path = speech_clips[0][0]
    models = Models(ASRModel(str(tiny_model_dir), max_new_tokens=4), ASRModel(str(tiny_model_dir)))
    assert wait_markdown(models, str(path)) == ""  # nothing measured yet
    models.warm_up = path
    models.load()
    rtfs = [models[side].measured_rtf for side in (FINETUNED, BASE)]
    assert all(rtf > 0 for rtf in rtfs)
    assert models.wait_estimate(10.0) == pytest.approx(10 * sum(rtfs))
    seconds = len(load_audio(path)) / 16000
    text = wait_markdown(models, str(path))
    assert f"Audio: **{seconds:.1f} s**" in text
    assert f"about **{seconds_words(round(seconds * sum(rtfs)))}**" in text
    assert wait_markdown(models, "/no/such/file.wav") == ""


def test_a_missing_model_is_explained_and_the_other_still_transcribes(serve_demo, other_tiny_model_dir, speech_clips):
    client = Client(serve_demo("/no/such/checkpoint", str(other_tiny_model_dir)), verbose=False)
    result = transcribe(client, speech_clips[0][0])
    status = client.predict(api_name="/status")
    assert result["runs"][FINETUNED]["transcript"] is None
    assert "Could not load model '/no/such/checkpoint': there is no folder" in result["runs"][FINETUNED]["error"]
    assert result["runs"][BASE]["transcript"]["text"] is not None and result["scores"] == {}
    assert status[FINETUNED]["state"] == "unavailable" and status[BASE]["state"] == "ready"
    assert "ASR_PT_FINETUNED_MODEL=/path/to/folder" in status[FINETUNED]["message"]


def test_python_app_py_offline_says_the_hub_model_could_not_be_fetched(tiny_model_dir, speech_clips, tmp_path):
    """The shipped defaults on a machine without the Hub: the log and the page explain, the other model works."""
    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ASR_PT_FINETUNED_MODEL": str(tiny_model_dir),
        "ASR_PT_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "ASR_PT_DATA_DIR": str(tmp_path / "data"),  # the review store, out of the repository
    }
    env.pop("ASR_PT_BASE_MODEL", None)
    log = tmp_path / "app.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log_file, stderr=log_file)
    try:
        status = wait_until_settled(f"http://127.0.0.1:{port}/", server)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = transcribe(client, speech_clips[0][0])
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Loaded: "busy" while app.py's warm-up transcription runs right after the load.
    assert status[FINETUNED]["state"] in ("ready", "busy") and status[BASE]["state"] == "unavailable"
    message = status[BASE]["message"]
    for words in ("Qwen/Qwen3-ASR-1.7B", "cannot be reached (offline)", "tiny-model", "ASR_PT_BASE_MODEL="):
        assert words in message
    assert message in log.read_text()
    assert result["runs"][FINETUNED]["transcript"]["text"] is not None
    assert "Qwen/Qwen3-ASR-1.7B" in result["runs"][BASE]["error"]


def wait_until_settled(url: str, server: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "app.py exited"
        try:
            status = Client(url, verbose=False).predict(api_name="/status")
        except httpx.ConnectError:  # not listening yet
            time.sleep(0.5)
            continue
        if all(status[side]["state"] != "loading" for side in (FINETUNED, BASE)):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"app.py did not finish loading its models in {timeout} s")


def test_the_readme_api_example_works(demo_url, monkeypatch, capsys):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    demo_section = readme[readme.index("## Demo") : readme.index("## Review")]
    example = re.search(r"```python\n(.*?)```", demo_section, re.S).group(1)
    monkeypatch.chdir(REPO)
    namespace: dict = {}
    exec(example.replace("http://127.0.0.1:7860/", demo_url), namespace)
    texts_line, wer_line, words_line = capsys.readouterr().out.strip().splitlines()[-3:]
    finetuned_text = namespace["result"]["runs"][FINETUNED]["transcript"]["text"]
    base_text = namespace["result"]["runs"][BASE]["transcript"]["text"]
    assert texts_line == f"{finetuned_text} {base_text}" and finetuned_text
    assert float(wer_line) == pytest.approx(score_pair("O gato dorme no sofá.", finetuned_text).wer)
    word, start, end = words_line.split()  # the /word_timings example
    assert word == "O" and 0 <= float(start) <= float(end)
